//! The pure half of the nos root agent: the allowlist engine (grammar, loader, matcher,
//! renderer, and the text an auditor reads) and the socket protocol (typed messages and a sans-IO
//! frame codec).
//!
//! This library never touches the filesystem, never spawns and never reads the clock: loading
//! takes `&str`, checking takes an argv. The agent binary and the host both call it; the
//! exec-time checks that need the filesystem live in the agent binary.
#![forbid(unsafe_code)]

pub mod allowlist;
pub mod protocol;
