//! The pure half of the nos root agent: the allowlist engine (grammar, loader, matcher,
//! renderer, and the text an auditor reads) and the socket protocol (typed messages and a sans-IO
//! frame codec).
//!
//! `allowlist` never touches the filesystem, never spawns and never reads the clock: loading
//! takes `&str`, checking takes an argv. `allowlist_files` and `fact_files` are the only places
//! that touch the filesystem, and they only read (the allowlist files; the kernel's list of block
//! devices, mountinfo and swaps). `fact_commands` declares the read-only fact commands once. The agent binary and the host both call this library; the
//! exec-time checks that need the live system live in the agent binary.
#![forbid(unsafe_code)]

pub mod allowlist;
pub mod allowlist_files;
pub mod fact_commands;
pub mod fact_files;
pub mod proc_text;
pub mod protocol;
