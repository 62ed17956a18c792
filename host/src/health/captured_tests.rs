//! The captured scenarios of `host/tests/data/health/real/` (made by its `capture.sh`) as the
//! unit tests of health, alerts and the scrub schedule read them: one reader of each file.

use super::classify::LastScrub;
use super::device_stats::{self, DeviceStats};
use super::scrub_status;
use crate::facts::BtrfsFilesystem;
use crate::facts::btrfs_show::{self, ShownFilesystem};

/// The captured pool's filesystem UUID.
pub const UUID: &str = "7e57ab1e-d15c-4a11-9b0b-5c0bb1e5ca1d";

/// The text of `file` captured in `scenario`.
pub fn real(scenario: &str, file: &str) -> String {
    let path = format!(
        "{}/tests/data/health/real/{scenario}/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{path}: {err}"))
}

/// The scenario's `btrfs filesystem show`.
pub fn shown(scenario: &str) -> ShownFilesystem {
    btrfs_show::parse(&real(scenario, "btrfs-show.txt"))
        .unwrap()
        .remove(0)
}

/// The scenario's device error counters.
pub fn stats(scenario: &str) -> Vec<DeviceStats> {
    device_stats::parse(&real(scenario, "device-stats.json")).unwrap()
}

/// The scenario's scrub status; the machine that captured it ran in UTC.
pub fn last_scrub(scenario: &str) -> LastScrub {
    LastScrub::from_status(
        &scrub_status::parse(&real(scenario, "scrub-status.txt")).unwrap(),
        0,
    )
}

/// When a recorded scrub started (or resumed).
pub fn since(last: &LastScrub) -> u64 {
    match last {
        LastScrub::Recorded {
            since_unix_seconds, ..
        } => *since_unix_seconds,
        other => panic!("no time in {other:?}"),
    }
}

/// The facts of the captured pool: three 1 GiB devices, `used_bytes` as given.
pub fn filesystem(size_bytes: u64, used_bytes: u64) -> BtrfsFilesystem {
    BtrfsFilesystem {
        uuid: UUID.into(),
        label: Some("healthpool".into()),
        mountpoint: "/srv/healthpool".into(),
        devices: Vec::new(),
        data_profile: "raid1".into(),
        metadata_profile: "raid1".into(),
        size_bytes,
        used_bytes,
        subvolumes: None,
    }
}
