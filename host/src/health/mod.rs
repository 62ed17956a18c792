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

#[cfg(test)]
pub(crate) mod captured_tests;
pub mod classify;
pub mod device_stats;
pub mod scrub_status;
pub mod smart;

pub use classify::{
    DEFAULT_THRESHOLDS, Finding, Health, HealthState, LastScrub, PoolReading, StatsReading,
    Thresholds, classify,
};

/// Every captured scenario parses with the one parser of each file, so a recapture that adds
/// a scenario or a field btrfs prints is checked without a test naming it.
#[cfg(test)]
mod real_tests {
    use super::{device_stats, scrub_status};
    use crate::facts::btrfs_show;

    #[test]
    fn every_capture_parses() {
        let root = format!("{}/tests/data/health/real", env!("CARGO_MANIFEST_DIR"));
        let mut n_parsed = 0;
        for entry in std::fs::read_dir(&root).unwrap() {
            let dir = entry.unwrap().path();
            if !dir.is_dir() {
                continue;
            }
            let read = |file: &str| std::fs::read_to_string(dir.join(file)).ok();
            if let Some(text) = read("btrfs-show.txt") {
                let shown = btrfs_show::parse(&text).unwrap();
                assert_eq!(shown.len(), 1, "{}", dir.display());
                n_parsed += 1;
            }
            if let Some(text) = read("device-stats.json") {
                device_stats::parse(&text).unwrap_or_else(|err| panic!("{}: {err}", dir.display()));
                n_parsed += 1;
            }
            if let Some(text) = read("scrub-status.txt") {
                scrub_status::parse(&text).unwrap_or_else(|err| panic!("{}: {err}", dir.display()));
                n_parsed += 1;
            }
        }
        assert_eq!(n_parsed, 15, "3 shows, 4 stats readings, 8 scrub statuses");
    }
}
