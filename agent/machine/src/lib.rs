//! What nos reads off the live machine, for the agent (its in-use check and its answer to
//! `RequestBody::Facts`) and for `nosctl facts` alike.
//!
//! * [`fact_commands`]: the read-only fact commands (lsblk's columns, `blkid -p` one device per
//!   call, `btrfs filesystem show --raw`), declared once; the agent runs them, nothing here spawns.
//! * [`files`]: bounded reads of the kernel's list of block devices, the mount table and swaps.
//! * [`proc_text`]: the one parser of mountinfo and `/proc/swaps`.
//!
//! This crate only reads: it never writes a file, never spawns and never reads the clock.
#![forbid(unsafe_code)]

pub mod fact_commands;
pub mod files;
pub mod proc_text;
