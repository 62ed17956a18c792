//! The stored pool table, `pools.json`: plain serializable records, the edge counterparts of
//! the health module's types (which are never serialized themselves). Pure: the service loads
//! and saves it through [`crate::store`].

use serde::{Deserialize, Serialize};

use crate::health::LastScrub;
use crate::health::device_stats::{DeviceStats, ErrorCounters, StatsDevice};
use crate::health::scrub_status::{CivilTime, ScrubCounters, ScrubRun, ScrubSince, ScrubState};

/// At most this many pools are registered; a filesystem seen beyond that is not added (and a
/// warning is logged by the service).
pub const MAX_POOLS: usize = 64;

/// At most this many scrubs are kept per pool (a year of monthly scrubs).
pub const MAX_SCRUB_HISTORY: usize = 12;

/// The table, sorted by UUID.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registry {
    pub pools: Vec<PoolRecord>,
}

/// One registered btrfs filesystem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolRecord {
    /// The btrfs filesystem UUID: the key.
    pub uuid: String,
    pub label: Option<String>,
    /// Where nos mounts it (where it was mounted when registered).
    pub mountpoint: String,
    /// Members by devid, as last seen present (a member that went missing keeps its record).
    pub members: Vec<MemberRecord>,
    pub data_profile: String,
    pub metadata_profile: String,
    /// Whether a member is a dm-crypt device.
    pub encrypted: bool,
    pub registered_at: u64,
    /// The last time it was seen mounted at its mount point with no device missing.
    pub last_good: Option<GoodState>,
    pub last_scrub: Option<ScrubRecord>,
    /// Every scrub seen, newest first, at most [`MAX_SCRUB_HISTORY`]: one entry per run (by its
    /// start or resume time), updated while it runs. Absent in a registry written before.
    #[serde(default)]
    pub scrub_history: Vec<ScrubRecord>,
    /// The reading error counters are judged against (see `reconcile`: it moves on only when a
    /// reading shows no counter finding, so growth stays reported until acknowledged).
    pub stats_baseline: Option<Vec<StatsRecord>>,
    /// The latest reading of the error counters.
    pub last_stats: Option<Vec<StatsRecord>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberRecord {
    pub devid: u64,
    pub path: String,
    pub by_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoodState {
    pub at: u64,
    pub n_members: usize,
    pub size_bytes: u64,
}

/// One device's counters in a stored reading; `path` is `None` for a device btrfs reported
/// missing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatsRecord {
    pub devid: u64,
    pub path: Option<String>,
    pub write_io_errs: u64,
    pub read_io_errs: u64,
    pub flush_io_errs: u64,
    pub corruption_errs: u64,
    pub generation_errs: u64,
}

/// The last scrub btrfs recorded, with its counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrubRecord {
    /// `running`, `aborted`, `finished` or `interrupted`.
    pub state: String,
    /// Whether `since` is the last resume rather than the start.
    pub resumed: bool,
    /// The start (or last resume) in Unix seconds.
    pub since_unix_seconds: u64,
    /// The time as btrfs printed it: year, month, day, hour, minute, second.
    pub civil_time: [u16; 6],
    pub duration_seconds: u64,
    pub bytes_scrubbed: u64,
    pub read_errors: u64,
    pub csum_errors: u64,
    pub verify_errors: u64,
    pub corrected_errors: u64,
    pub uncorrectable_errors: u64,
    pub unverified_errors: u64,
}

impl PoolRecord {
    /// Records `scrub` as the last one and in the history: the entry of the same run (same
    /// start or resume time) is replaced, a new run goes first, the oldest beyond
    /// [`MAX_SCRUB_HISTORY`] goes.
    pub fn record_scrub(&mut self, scrub: ScrubRecord) {
        match self
            .scrub_history
            .iter_mut()
            .find(|seen| seen.since_unix_seconds == scrub.since_unix_seconds)
        {
            Some(seen) => *seen = scrub.clone(),
            None => self.scrub_history.push(scrub.clone()),
        }
        self.scrub_history
            .sort_by_key(|run| std::cmp::Reverse(run.since_unix_seconds));
        self.scrub_history.truncate(MAX_SCRUB_HISTORY);
        self.last_scrub = Some(scrub);
    }
}

impl Registry {
    pub fn get(&self, uuid: &str) -> Option<&PoolRecord> {
        self.pools.iter().find(|pool| pool.uuid == uuid)
    }

    /// Drops pool `uuid` (a plan removed its fstab entry: exported or destroyed); `false` for
    /// an unknown pool.
    pub fn forget(&mut self, uuid: &str) -> bool {
        let before = self.pools.len();
        self.pools.retain(|pool| pool.uuid != uuid);
        self.pools.len() != before
    }

    /// Takes pool `uuid`'s latest counters as the baseline growth is judged against (an admin
    /// acknowledged the errors); `false` for an unknown pool or one never read.
    pub fn accept_counters(&mut self, uuid: &str) -> bool {
        let Some(pool) = self.pools.iter_mut().find(|pool| pool.uuid == uuid) else {
            return false;
        };
        match &pool.last_stats {
            Some(latest) => {
                pool.stats_baseline = Some(latest.clone());
                true
            }
            None => false,
        }
    }
}

impl StatsRecord {
    pub fn from_stats(stats: &DeviceStats) -> StatsRecord {
        let counters = stats.counters;
        StatsRecord {
            devid: stats.devid,
            path: match &stats.device {
                StatsDevice::Path(path) => Some(path.clone()),
                StatsDevice::Missing(_) => None,
            },
            write_io_errs: counters.write_io_errs,
            read_io_errs: counters.read_io_errs,
            flush_io_errs: counters.flush_io_errs,
            corruption_errs: counters.corruption_errs,
            generation_errs: counters.generation_errs,
        }
    }

    pub fn to_stats(&self) -> DeviceStats {
        DeviceStats {
            device: match &self.path {
                Some(path) => StatsDevice::Path(path.clone()),
                None => StatsDevice::Missing(format!("devid:{}", self.devid)),
            },
            devid: self.devid,
            counters: self.counters(),
        }
    }

    pub fn counters(&self) -> ErrorCounters {
        ErrorCounters {
            write_io_errs: self.write_io_errs,
            read_io_errs: self.read_io_errs,
            flush_io_errs: self.flush_io_errs,
            corruption_errs: self.corruption_errs,
            generation_errs: self.generation_errs,
        }
    }
}

impl ScrubRecord {
    /// The record of a scrub btrfs recorded; `None` for any other [`LastScrub`].
    pub fn from_last(last: &LastScrub) -> Option<ScrubRecord> {
        let LastScrub::Recorded {
            run,
            counters,
            since_unix_seconds,
        } = last
        else {
            return None;
        };
        let time = run.time;
        Some(ScrubRecord {
            state: state_name(run.state).to_owned(),
            resumed: run.since == ScrubSince::Resumed,
            since_unix_seconds: *since_unix_seconds,
            civil_time: [
                time.year,
                u16::from(time.month),
                u16::from(time.day),
                u16::from(time.hour),
                u16::from(time.minute),
                u16::from(time.second),
            ],
            duration_seconds: run.duration_seconds,
            bytes_scrubbed: counters.bytes_scrubbed(),
            read_errors: counters.read_errors,
            csum_errors: counters.csum_errors,
            verify_errors: counters.verify_errors,
            corrected_errors: counters.corrected_errors,
            uncorrectable_errors: counters.uncorrectable_errors,
            unverified_errors: counters.unverified_errors,
        })
    }

    /// Back to what `health::classify` judges (a pool not mounted now is judged on its record).
    /// `Unknown` when the stored record does not hold a valid time or state.
    pub fn to_last(&self) -> LastScrub {
        let unknown = |what: &str| LastScrub::Unknown {
            reason: format!("the stored scrub record has {what}"),
        };
        let Some(state) = state_of(&self.state) else {
            return unknown("an unknown state");
        };
        let [year, month, day, hour, minute, second] = self.civil_time;
        let narrow = |value: u16| u8::try_from(value).ok();
        let (Some(month), Some(day), Some(hour), Some(minute), Some(second)) = (
            narrow(month),
            narrow(day),
            narrow(hour),
            narrow(minute),
            narrow(second),
        ) else {
            return unknown("an invalid time");
        };
        LastScrub::Recorded {
            run: ScrubRun {
                since: match self.resumed {
                    true => ScrubSince::Resumed,
                    false => ScrubSince::Started,
                },
                time: CivilTime {
                    year,
                    month,
                    day,
                    hour,
                    minute,
                    second,
                },
                state,
                duration_seconds: self.duration_seconds,
            },
            counters: ScrubCounters {
                read_errors: self.read_errors,
                csum_errors: self.csum_errors,
                verify_errors: self.verify_errors,
                corrected_errors: self.corrected_errors,
                uncorrectable_errors: self.uncorrectable_errors,
                unverified_errors: self.unverified_errors,
                ..ScrubCounters::default()
            },
            since_unix_seconds: self.since_unix_seconds,
        }
    }
}

fn state_name(state: ScrubState) -> &'static str {
    match state {
        ScrubState::Running => "running",
        ScrubState::Aborted => "aborted",
        ScrubState::Finished => "finished",
        ScrubState::Interrupted => "interrupted",
    }
}

fn state_of(name: &str) -> Option<ScrubState> {
    [
        ScrubState::Running,
        ScrubState::Aborted,
        ScrubState::Finished,
        ScrubState::Interrupted,
    ]
    .into_iter()
    .find(|state| state_name(*state) == name)
}
