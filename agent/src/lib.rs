//! The pure half of the nos root agent: the allowlist engine (grammar, loader, matcher,
//! renderer, and the text an auditor reads) and the socket protocol (typed messages and a sans-IO
//! frame codec).
//!
//! `allowlist` never touches the filesystem, never spawns and never reads the clock: loading
//! takes `&str`, checking takes an argv. `allowlist_files` is the one place that reads the
//! allowlist files from disk. The agent binary and the host both call this library; the
//! exec-time checks that need the live system live in the agent binary.
#![forbid(unsafe_code)]

pub mod allowlist;
pub mod allowlist_files;
pub mod protocol;
