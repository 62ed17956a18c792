//! Pool health: the parsers of the tools that tell how a btrfs pool is doing
//! ([`device_stats`]: `btrfs --format json device stats`; [`scrub_status`]:
//! `btrfs scrub status -R`; missing devices come from [`crate::facts::btrfs_show`]) and the
//! pure judgement of one pool from them ([`classify`]).
//!
//! This module never runs a program, reads a file or reads the clock: callers hand it the
//! texts the agent returned, the reading recorded before and `now`. It keeps no state either:
//! storing readings and scrub results per pool, and raising alerts from findings, belong to
//! the caller.
//!
//! The parsers are tested on output captured from btrfs-progs 6.2 on a real raid1 over loop
//! devices (`host/tests/data/health/real/`, made by its `capture.sh`), never on a shape typed
//! by hand.

#![forbid(unsafe_code)]

pub mod classify;
pub mod device_stats;
pub mod scrub_status;

pub use classify::{
    DEFAULT_THRESHOLDS, Finding, Health, HealthState, LastScrub, PoolReading, StatsReading,
    Thresholds, classify,
};
