//! A pool's health from what was read about it: pure, the clock passed in.
//!
//! Inputs are one filesystem's facts ([`BtrfsFilesystem`]: members, size, used bytes), what
//! `btrfs filesystem show` said of it ([`ShownFilesystem`]: missing devices), the current
//! device error counters with the reading nos recorded before, the last scrub and `now`.
//! The output is a [`Health`]: one [`HealthState`] and every [`Finding`] behind it, each of
//! which an admin can read as a sentence ([`Finding::describe`]).
//!
//! How conditions combine: every condition found is a finding, and each finding argues for one
//! state; the pool's state is the worst of them ([`HealthState`]'s order, `ok` when there are
//! none), and the findings are listed worst first, so nothing found is hidden behind a worse
//! one. Some findings are notes that argue for `ok` (a scrub is running, the counters could
//! not be read): they are reasons, never alarms.
//!
//! This module never reads the clock, a file or the agent, and it never decides what to
//! record: the caller stores the current counters as the next baseline once it has acted on
//! the findings.

use crate::facts::BtrfsFilesystem;
use crate::facts::btrfs_show::ShownFilesystem;

use super::device_stats::{Counter, DeviceStats, StatsDevice};
use super::scrub_status::{ScrubCounters, ScrubRun, ScrubSince, ScrubState, ScrubStatus};

/// Default of [`Thresholds::scrub_overdue_after_seconds`]: 35 days (TrueNAS's default
/// threshold for its scrub task), so a monthly scrub is never overdue.
pub const DEFAULT_SCRUB_OVERDUE_DAYS: u64 = 35;
/// Default of [`Thresholds::nearly_full_percent`].
pub const DEFAULT_NEARLY_FULL_PERCENT: u8 = 80;
/// Default of [`Thresholds::very_full_percent`].
pub const DEFAULT_VERY_FULL_PERCENT: u8 = 90;

/// The thresholds at their documented defaults.
pub const DEFAULT_THRESHOLDS: Thresholds = Thresholds {
    scrub_overdue_after_seconds: DEFAULT_SCRUB_OVERDUE_DAYS * SECONDS_PER_DAY,
    nearly_full_percent: DEFAULT_NEARLY_FULL_PERCENT,
    very_full_percent: DEFAULT_VERY_FULL_PERCENT,
};

const SECONDS_PER_DAY: u64 = 86_400;

/// The health states, from best to worst; a pool is in the worst state any finding argues for.
///
/// The order says what to fix first: a missing device (one more failure can lose data) before
/// growing errors (a device is failing or data is damaged) before a nearly full pool (writes
/// will fail) before an overdue scrub (damage may be going unnoticed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HealthState {
    Ok,
    ScrubOverdue,
    NearlyFull,
    Errors,
    Degraded,
}

/// Where the thresholds of [`classify`] come from (the admin's configuration, or
/// [`DEFAULT_THRESHOLDS`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// A pool whose last completed scrub ended longer ago than this is `scrub-overdue`.
    /// Unit: seconds; default [`DEFAULT_SCRUB_OVERDUE_DAYS`] days.
    pub scrub_overdue_after_seconds: u64,
    /// At or above this share of its size used, a pool is `nearly-full`. Unit: percent;
    /// default [`DEFAULT_NEARLY_FULL_PERCENT`].
    pub nearly_full_percent: u8,
    /// At or above this share, the finding says so (same state, a sharper reason). Unit:
    /// percent; default [`DEFAULT_VERY_FULL_PERCENT`].
    pub very_full_percent: u8,
}

/// Everything read about one pool.
#[derive(Debug, Clone, Copy)]
pub struct PoolReading<'a> {
    /// Members, size and used bytes (facts; `size_bytes` 0 means unknown).
    pub filesystem: &'a BtrfsFilesystem,
    /// `btrfs filesystem show` of the same filesystem: which devices are missing.
    pub shown: &'a ShownFilesystem,
    pub stats: StatsReading<'a>,
    pub last_scrub: &'a LastScrub,
    pub now_unix_seconds: u64,
    /// When nos first saw the pool: one never scrubbed is overdue only once nos has known it
    /// for longer than the scrub threshold (a pool made or imported today is not).
    pub registered_unix_seconds: u64,
}

/// The device error counters.
#[derive(Debug, Clone, Copy)]
pub enum StatsReading<'a> {
    /// Read now; `recorded` is the reading nos stored before (`None` at the first reading).
    Read {
        current: &'a [DeviceStats],
        recorded: Option<&'a [DeviceStats]>,
    },
    /// Not read (the pool is not mounted, or the command failed), and why.
    Unavailable { reason: &'a str },
}

/// The last scrub, as far as anyone knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LastScrub {
    /// btrfs has no record (`no stats available`) and nos recorded none.
    Never,
    /// `btrfs scrub status` could not be read or parsed, and why.
    Unknown { reason: String },
    /// btrfs's record of the last run.
    Recorded {
        run: ScrubRun,
        counters: ScrubCounters,
        /// [`ScrubRun::time`] in Unix seconds (the start, or the last resume).
        since_unix_seconds: u64,
    },
}

/// One condition found, with the numbers behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// Devices are missing. `missing_devids` are those btrfs named (a mounted pool);
    /// `n_missing` counts all of them.
    DevicesMissing {
        missing_devids: Vec<u64>,
        n_missing: u64,
        total_devices: Option<u64>,
    },
    /// A counter is higher than in the recorded reading.
    CounterGrew {
        device: DeviceName,
        counter: Counter,
        recorded: u64,
        current: u64,
    },
    /// A counter is lower than in the recorded reading: someone reset the counters
    /// (`btrfs device stats --reset`, which nos never runs), so whatever happened between the
    /// record and the reset is unknown.
    CounterWentDown {
        device: DeviceName,
        counter: Counter,
        recorded: u64,
        current: u64,
    },
    /// A nonzero counter with nothing recorded to compare it to (the first reading, or a
    /// device new to the pool): errors from before nos looked, still errors.
    ErrorsWithoutRecord {
        device: DeviceName,
        counter: Counter,
        current: u64,
    },
    /// The counters were not read (a note).
    StatsUnavailable { reason: String },
    /// The last scrub found errors it could not repair: some data has no good copy left.
    ScrubUncorrectable { uncorrectable_errors: u64 },
    /// The last scrub repaired errors from a good copy: a device returned bad data.
    ScrubCorrected { corrected_errors: u64 },
    /// No scrub ever ran, and nos has known the pool for longer than the threshold.
    ScrubNever,
    /// No scrub ran yet in the `days_known` days nos has known the pool: not yet due (a note).
    ScrubNotYet {
        days_known: u64,
        threshold_days: u64,
    },
    /// The last completed scrub ended longer ago than the threshold.
    ScrubOverdue { days_ago: u64, threshold_days: u64 },
    /// The last scrub was cancelled or interrupted, so the pool was not fully checked.
    ScrubUnfinished { state: ScrubState, days_ago: u64 },
    /// A scrub is running (a note).
    ScrubRunning {
        since: ScrubSince,
        duration_seconds: u64,
    },
    /// The scrub state is unknown.
    ScrubUnknown { reason: String },
    /// The last scrub's time is after `now` (a wrong clock or time zone), so its age is not
    /// judged (a note).
    ScrubInFuture { seconds_ahead: u64 },
    /// At or above a fullness threshold.
    NearlyFull {
        percent_used: u64,
        threshold_percent: u8,
    },
    /// The size is unknown (0), so fullness is not judged (a note).
    SizeUnknown,
}

/// A device as findings name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceName {
    pub devid: u64,
    /// The path btrfs printed.
    pub path: String,
}

/// A pool's health: the worst state any finding argues for, and every finding, worst first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub state: HealthState,
    pub findings: Vec<Finding>,
}

/// Judge one pool. See the module docs for how findings combine.
pub fn classify(reading: &PoolReading<'_>, thresholds: &Thresholds) -> Health {
    let mut findings = Vec::new();
    missing_devices(reading.shown, &mut findings);
    error_counters(reading.stats, &mut findings);
    scrub(reading, thresholds, &mut findings);
    fullness(reading.filesystem, thresholds, &mut findings);
    // Stable: findings of one state keep the order they were found in.
    findings.sort_by_key(|finding| std::cmp::Reverse(finding.state()));
    let state = findings
        .first()
        .map_or(HealthState::Ok, |finding| finding.state());
    Health { state, findings }
}

impl HealthState {
    /// The name the API and the UI show.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthState::Ok => "ok",
            HealthState::ScrubOverdue => "scrub-overdue",
            HealthState::NearlyFull => "nearly-full",
            HealthState::Errors => "errors",
            HealthState::Degraded => "degraded",
        }
    }
}

impl LastScrub {
    /// From a parsed `btrfs scrub status -R`, its time read in a zone `utc_offset_seconds` east
    /// of UTC (btrfs prints the machine's local time).
    ///
    /// `no stats available` becomes [`LastScrub::Never`]; btrfs also prints it for a second or
    /// so after a scrub starts, so a caller that just started one should say so instead.
    pub fn from_status(status: &ScrubStatus, utc_offset_seconds: i64) -> LastScrub {
        let Some(run) = status.run else {
            return LastScrub::Never;
        };
        match run.time.unix_seconds(utc_offset_seconds) {
            Some(since_unix_seconds) => LastScrub::Recorded {
                run,
                counters: status.counters,
                since_unix_seconds,
            },
            None => LastScrub::Unknown {
                reason: format!("its time {:?} is before 1970", run.time),
            },
        }
    }
}

impl Health {
    /// Every finding as a sentence, worst first.
    pub fn reasons(&self) -> Vec<String> {
        self.findings.iter().map(Finding::describe).collect()
    }
}

impl Finding {
    /// The state this finding argues for.
    pub fn state(&self) -> HealthState {
        match self {
            Finding::DevicesMissing { .. } => HealthState::Degraded,
            Finding::CounterGrew { .. }
            | Finding::CounterWentDown { .. }
            | Finding::ErrorsWithoutRecord { .. }
            | Finding::ScrubUncorrectable { .. }
            | Finding::ScrubCorrected { .. } => HealthState::Errors,
            Finding::NearlyFull { .. } => HealthState::NearlyFull,
            Finding::ScrubNever
            | Finding::ScrubOverdue { .. }
            | Finding::ScrubUnfinished { .. }
            | Finding::ScrubUnknown { .. } => HealthState::ScrubOverdue,
            Finding::StatsUnavailable { .. }
            | Finding::ScrubRunning { .. }
            | Finding::ScrubNotYet { .. }
            | Finding::ScrubInFuture { .. }
            | Finding::SizeUnknown => HealthState::Ok,
        }
    }

    /// The finding as a sentence for an admin (lowercase, no trailing period).
    pub fn describe(&self) -> String {
        match self {
            Finding::DevicesMissing {
                missing_devids,
                n_missing,
                total_devices,
            } => {
                let count = match total_devices {
                    Some(total) => format!("{n_missing} of {total} devices"),
                    None => format!("{n_missing} {}", plural(*n_missing, "device", "devices")),
                };
                let which = match missing_devids.as_slice() {
                    [] => "btrfs names no devid while the pool is not mounted".to_owned(),
                    [devid] => format!("devid {devid}"),
                    devids => format!(
                        "devids {}",
                        devids
                            .iter()
                            .map(u64::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                format!(
                    "{count} missing ({which}): the pool has lost redundancy until {} replaced or removed",
                    plural(
                        *n_missing,
                        "the missing device is",
                        "the missing devices are"
                    ),
                )
            }
            Finding::CounterGrew {
                device,
                counter,
                recorded,
                current,
            } => format!(
                "{device}: {} grew from {recorded} to {current} since the last record",
                counter.name()
            ),
            Finding::CounterWentDown {
                device,
                counter,
                recorded,
                current,
            } => format!(
                "{device}: {} went down from {recorded} to {current}: the counters were reset outside nos (btrfs device stats --reset), so errors between the last record and the reset are unknown",
                counter.name()
            ),
            Finding::ErrorsWithoutRecord {
                device,
                counter,
                current,
            } => format!(
                "{device}: {} is {current}, with no earlier record to compare it to",
                counter.name()
            ),
            Finding::StatsUnavailable { reason } => {
                format!("device error counters not read: {reason}")
            }
            Finding::ScrubUncorrectable {
                uncorrectable_errors,
            } => format!(
                "the last scrub found {uncorrectable_errors} uncorrectable {}: some data has no good copy left",
                plural(*uncorrectable_errors, "error", "errors")
            ),
            Finding::ScrubCorrected { corrected_errors } => format!(
                "the last scrub corrected {corrected_errors} {} from a good copy: a device returned bad data",
                plural(*corrected_errors, "error", "errors")
            ),
            Finding::ScrubNever => "never scrubbed".to_owned(),
            Finding::ScrubNotYet {
                days_known,
                threshold_days,
            } => match threshold_days.saturating_sub(*days_known) {
                0 => "not scrubbed yet; the first scrub is due today".to_owned(),
                left => format!(
                    "not scrubbed yet; the first scrub is due within {left} {}",
                    plural(left, "day", "days")
                ),
            },
            Finding::ScrubOverdue {
                days_ago,
                threshold_days,
            } => format!(
                "the last scrub ended {days_ago} days ago, more than the {threshold_days} days allowed"
            ),
            Finding::ScrubUnfinished { state, days_ago } => {
                let how = match state {
                    ScrubState::Aborted => "was cancelled",
                    _ => "was interrupted",
                };
                format!(
                    "the last scrub ({} ago) {how} before it finished: the pool was not fully checked",
                    days(*days_ago)
                )
            }
            Finding::ScrubRunning {
                since,
                duration_seconds,
            } => {
                let how = match since {
                    ScrubSince::Started => "running",
                    ScrubSince::Resumed => "running (resumed)",
                };
                format!("a scrub is {how}, for {duration_seconds} s so far")
            }
            Finding::ScrubUnknown { reason } => format!("the last scrub is unknown: {reason}"),
            Finding::ScrubInFuture { seconds_ahead } => format!(
                "the last scrub's time is {seconds_ahead} s in the future (clock or time zone wrong): its age is not judged"
            ),
            Finding::NearlyFull {
                percent_used,
                threshold_percent,
            } => format!("{percent_used} % full (at or above {threshold_percent} %)"),
            Finding::SizeUnknown => "size unknown: fullness is not judged".to_owned(),
        }
    }
}

impl std::fmt::Display for DeviceName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (devid {})", self.path, self.devid)
    }
}

fn missing_devices(shown: &ShownFilesystem, findings: &mut Vec<Finding>) {
    let n_missing = shown.n_missing();
    if n_missing > 0 {
        findings.push(Finding::DevicesMissing {
            missing_devids: shown.missing_devids.clone(),
            n_missing,
            total_devices: shown.total_devices,
        });
    }
}

/// Deltas by devid (a path can change between boots, a devid cannot). A missing device is
/// skipped: btrfs reports zeros for it, which would read as a reset, and it is already a
/// finding of its own. A device only in the record has left the pool and is not judged.
fn error_counters(stats: StatsReading<'_>, findings: &mut Vec<Finding>) {
    let (current, recorded) = match stats {
        StatsReading::Read { current, recorded } => (current, recorded),
        StatsReading::Unavailable { reason } => {
            findings.push(Finding::StatsUnavailable {
                reason: reason.to_owned(),
            });
            return;
        }
    };
    for entry in current {
        let StatsDevice::Path(path) = &entry.device else {
            continue;
        };
        let device = DeviceName {
            devid: entry.devid,
            path: path.clone(),
        };
        let before = recorded.and_then(|recorded| super::device_stats::find(recorded, entry.devid));
        for (counter, now) in entry.counters.each() {
            let finding = match before.map(|before| before.counters.get(counter)) {
                Some(then) if now > then => Finding::CounterGrew {
                    device: device.clone(),
                    counter,
                    recorded: then,
                    current: now,
                },
                Some(then) if now < then => Finding::CounterWentDown {
                    device: device.clone(),
                    counter,
                    recorded: then,
                    current: now,
                },
                Some(_) => continue,
                None if now > 0 => Finding::ErrorsWithoutRecord {
                    device: device.clone(),
                    counter,
                    current: now,
                },
                None => continue,
            };
            findings.push(finding);
        }
    }
}

/// The age of a finished scrub counts from its end (its time plus its duration; after a
/// resume, the resume time plus the resumed run's duration). A cancelled or interrupted scrub
/// does not count as a check of the pool, however recent: it is `scrub-overdue` at once.
fn scrub(reading: &PoolReading<'_>, thresholds: &Thresholds, findings: &mut Vec<Finding>) {
    let now = reading.now_unix_seconds;
    let (run, counters, since) = match reading.last_scrub {
        LastScrub::Never => {
            let known = now.saturating_sub(reading.registered_unix_seconds);
            findings.push(match known > thresholds.scrub_overdue_after_seconds {
                true => Finding::ScrubNever,
                false => Finding::ScrubNotYet {
                    days_known: known / SECONDS_PER_DAY,
                    threshold_days: thresholds.scrub_overdue_after_seconds / SECONDS_PER_DAY,
                },
            });
            return;
        }
        LastScrub::Unknown { reason } => {
            findings.push(Finding::ScrubUnknown {
                reason: reason.clone(),
            });
            return;
        }
        LastScrub::Recorded {
            run,
            counters,
            since_unix_seconds,
        } => (run, counters, *since_unix_seconds),
    };
    if counters.uncorrectable_errors > 0 {
        findings.push(Finding::ScrubUncorrectable {
            uncorrectable_errors: counters.uncorrectable_errors,
        });
    }
    if counters.corrected_errors > 0 {
        findings.push(Finding::ScrubCorrected {
            corrected_errors: counters.corrected_errors,
        });
    }
    let ended = since.saturating_add(run.duration_seconds);
    let reference = match run.state {
        ScrubState::Finished => ended,
        _ => since,
    };
    if reference > now {
        findings.push(Finding::ScrubInFuture {
            seconds_ahead: reference - now,
        });
        return;
    }
    let days_ago = (now - reference) / SECONDS_PER_DAY;
    match run.state {
        ScrubState::Running => findings.push(Finding::ScrubRunning {
            since: run.since,
            duration_seconds: run.duration_seconds,
        }),
        ScrubState::Aborted | ScrubState::Interrupted => findings.push(Finding::ScrubUnfinished {
            state: run.state,
            days_ago,
        }),
        ScrubState::Finished => {
            if now - reference > thresholds.scrub_overdue_after_seconds {
                findings.push(Finding::ScrubOverdue {
                    days_ago,
                    threshold_days: thresholds.scrub_overdue_after_seconds / SECONDS_PER_DAY,
                });
            }
        }
    }
}

fn fullness(filesystem: &BtrfsFilesystem, thresholds: &Thresholds, findings: &mut Vec<Finding>) {
    if filesystem.size_bytes == 0 {
        findings.push(Finding::SizeUnknown);
        return;
    }
    let used = u128::from(filesystem.used_bytes) * 100;
    let size = u128::from(filesystem.size_bytes);
    let at_least = |percent: u8| used >= size * u128::from(percent);
    let threshold_percent = if at_least(thresholds.very_full_percent) {
        thresholds.very_full_percent
    } else if at_least(thresholds.nearly_full_percent) {
        thresholds.nearly_full_percent
    } else {
        return;
    };
    findings.push(Finding::NearlyFull {
        percent_used: u64::try_from(used / size).unwrap_or(u64::MAX),
        threshold_percent,
    });
}

fn plural(n: u64, one: &'static str, many: &'static str) -> &'static str {
    match n {
        1 => one,
        _ => many,
    }
}

fn days(n: u64) -> String {
    format!("{n} {}", plural(n, "day", "days"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::captured_tests::{filesystem, last_scrub, shown, since, stats};
    use expect_test::{Expect, expect};

    const GIB: u64 = 1 << 30;
    const DAY: u64 = SECONDS_PER_DAY;

    struct Case<'a> {
        shown: &'a ShownFilesystem,
        stats: StatsReading<'a>,
        last_scrub: &'a LastScrub,
        now: u64,
        used_bytes: u64,
    }

    fn check(case: Case<'_>, expect: Expect) {
        let filesystem = filesystem(3 * GIB, case.used_bytes);
        let reading = PoolReading {
            filesystem: &filesystem,
            shown: case.shown,
            stats: case.stats,
            last_scrub: case.last_scrub,
            now_unix_seconds: case.now,
            // Known since long ago: a pool never scrubbed is overdue.
            registered_unix_seconds: 0,
        };
        let health = classify(&reading, &DEFAULT_THRESHOLDS);
        let mut out = health.state.as_str().to_owned();
        for finding in &health.findings {
            out.push_str(&format!(
                "\n  [{}] {}",
                finding.state().as_str(),
                finding.describe()
            ));
        }
        expect.assert_eq(&out);
    }

    #[test]
    fn never_scrubbed_pool_at_its_first_reading() {
        let shown = shown("raid1-never-scrubbed");
        let current = stats("raid1-never-scrubbed");
        check(
            Case {
                shown: &shown,
                stats: StatsReading::Read {
                    current: &current,
                    recorded: None,
                },
                last_scrub: &last_scrub("raid1-never-scrubbed"),
                now: 1_796_229_600,
                used_bytes: GIB / 10,
            },
            expect![[r#"
                scrub-overdue
                  [scrub-overdue] never scrubbed"#]],
        );
    }

    /// A pool nos made or imported recently is not overdue for never having been scrubbed;
    /// once nos has known it for longer than the threshold, it is.
    #[test]
    fn never_scrubbed_is_overdue_only_after_the_threshold() {
        let shown = shown("raid1-never-scrubbed");
        let current = stats("raid1-never-scrubbed");
        let filesystem = filesystem(3 * GIB, GIB / 10);
        let judged = |registered: u64, now: u64| {
            let health = classify(
                &PoolReading {
                    filesystem: &filesystem,
                    shown: &shown,
                    stats: StatsReading::Read {
                        current: &current,
                        recorded: Some(&current),
                    },
                    last_scrub: &LastScrub::Never,
                    now_unix_seconds: now,
                    registered_unix_seconds: registered,
                },
                &DEFAULT_THRESHOLDS,
            );
            let reasons: Vec<String> = health.findings.iter().map(Finding::describe).collect();
            format!("{} {reasons:?}", health.state.as_str())
        };
        let registered = 1_796_229_600;
        expect![[r#"
            ok ["not scrubbed yet; the first scrub is due within 35 days"]
            ok ["not scrubbed yet; the first scrub is due today"]
            scrub-overdue ["never scrubbed"]"#]]
        .assert_eq(
            &[
                judged(registered, registered + 3600),
                judged(registered, registered + 35 * DAY),
                judged(registered, registered + 35 * DAY + 1),
            ]
            .join("\n"),
        );
    }

    #[test]
    fn scrubbed_pool_is_ok_until_the_scrub_is_overdue() {
        let shown = shown("raid1-never-scrubbed");
        let current = stats("raid1-scrubbed");
        let recorded = stats("raid1-never-scrubbed");
        let last = last_scrub("raid1-scrubbed");
        let case = |now| Case {
            shown: &shown,
            stats: StatsReading::Read {
                current: &current,
                recorded: Some(&recorded),
            },
            last_scrub: &last,
            now,
            used_bytes: GIB / 10,
        };
        check(case(since(&last) + DAY), expect!["ok"]);
        check(case(since(&last) + 35 * DAY), expect!["ok"]);
        check(
            case(since(&last) + 35 * DAY + 1),
            expect![[r#"
                scrub-overdue
                  [scrub-overdue] the last scrub ended 35 days ago, more than the 35 days allowed"#]],
        );
        check(
            case(since(&last) - 60),
            expect![[r#"
                ok
                  [ok] the last scrub's time is 60 s in the future (clock or time zone wrong): its age is not judged"#]],
        );
    }

    #[test]
    fn corruption_repaired_by_scrub() {
        let shown = shown("raid1-never-scrubbed");
        let current = stats("raid1-corrupted");
        let recorded = stats("raid1-scrubbed");
        let last = last_scrub("raid1-corrupted");
        check(
            Case {
                shown: &shown,
                stats: StatsReading::Read {
                    current: &current,
                    recorded: Some(&recorded),
                },
                last_scrub: &last,
                now: since(&last) + 60,
                used_bytes: GIB / 10,
            },
            expect![[r#"
                errors
                  [errors] /dev/loop0 (devid 1): corruption_errs grew from 0 to 16 since the last record
                  [errors] the last scrub corrected 16 errors from a good copy: a device returned bad data"#]],
        );
        // Recorded again, the counters no longer grow, but the last scrub still says it.
        check(
            Case {
                shown: &shown,
                stats: StatsReading::Read {
                    current: &current,
                    recorded: Some(&current),
                },
                last_scrub: &last,
                now: since(&last) + 60,
                used_bytes: GIB / 10,
            },
            expect![[r#"
                errors
                  [errors] the last scrub corrected 16 errors from a good copy: a device returned bad data"#]],
        );
    }

    #[test]
    fn counters_that_went_down_were_reset_elsewhere() {
        let shown = shown("raid1-never-scrubbed");
        let current = stats("raid1-scrubbed");
        let recorded = stats("raid1-corrupted");
        let last = last_scrub("raid1-scrubbed");
        check(
            Case {
                shown: &shown,
                stats: StatsReading::Read {
                    current: &current,
                    recorded: Some(&recorded),
                },
                last_scrub: &last,
                now: since(&last) + 60,
                used_bytes: GIB / 10,
            },
            expect![[r#"
                errors
                  [errors] /dev/loop0 (devid 1): corruption_errs went down from 16 to 0: the counters were reset outside nos (btrfs device stats --reset), so errors between the last record and the reset are unknown"#]],
        );
    }

    #[test]
    fn errors_at_the_first_reading_are_errors() {
        let shown = shown("raid1-never-scrubbed");
        let current = stats("raid1-corrupted");
        let last = last_scrub("raid1-scrubbed");
        check(
            Case {
                shown: &shown,
                stats: StatsReading::Read {
                    current: &current,
                    recorded: None,
                },
                last_scrub: &last,
                now: since(&last) + 60,
                used_bytes: GIB / 10,
            },
            expect![[r#"
                errors
                  [errors] /dev/loop0 (devid 1): corruption_errs is 16, with no earlier record to compare it to"#]],
        );
    }

    #[test]
    fn missing_device_unmounted_and_degraded() {
        let unmounted = shown("missing-unmounted");
        let last = last_scrub("raid1-corrupted");
        check(
            Case {
                shown: &unmounted,
                stats: StatsReading::Unavailable {
                    reason: "the pool is not mounted",
                },
                last_scrub: &last,
                now: since(&last) + 60,
                used_bytes: GIB / 10,
            },
            expect![[r#"
                degraded
                  [degraded] 1 of 3 devices missing (btrfs names no devid while the pool is not mounted): the pool has lost redundancy until the missing device is replaced or removed
                  [errors] the last scrub corrected 16 errors from a good copy: a device returned bad data
                  [ok] device error counters not read: the pool is not mounted"#]],
        );
        // Mounted degraded: btrfs names the devid, and the missing device's zero counters are
        // not taken for a reset of the recorded ones.
        let degraded = shown("missing-degraded-mount");
        let current = stats("missing-degraded-mount");
        let mut recorded = stats("raid1-corrupted");
        recorded[2].counters.write_io_errs = 7;
        check(
            Case {
                shown: &degraded,
                stats: StatsReading::Read {
                    current: &current,
                    recorded: Some(&recorded),
                },
                last_scrub: &last,
                now: since(&last) + 60,
                used_bytes: GIB / 10,
            },
            expect![[r#"
                degraded
                  [degraded] 1 of 3 devices missing (devid 3): the pool has lost redundancy until the missing device is replaced or removed
                  [errors] the last scrub corrected 16 errors from a good copy: a device returned bad data"#]],
        );
    }

    #[test]
    fn scrub_running_cancelled_resumed() {
        let shown = shown("raid1-never-scrubbed");
        let current = stats("raid1-scrubbed");
        let stats = StatsReading::Read {
            current: &current,
            recorded: Some(&current),
        };
        let running = last_scrub("raid1-scrub-running");
        let LastScrub::Recorded { run, .. } = &running else {
            panic!("{running:?}")
        };
        assert_eq!(run.state, ScrubState::Running);
        let health = classify(
            &PoolReading {
                filesystem: &filesystem(3 * GIB, GIB / 10),
                shown: &shown,
                stats,
                last_scrub: &running,
                now_unix_seconds: since(&running) + 10,
                registered_unix_seconds: 0,
            },
            &DEFAULT_THRESHOLDS,
        );
        assert_eq!(health.state, HealthState::Ok);
        assert!(matches!(
            health.findings.as_slice(),
            [Finding::ScrubRunning {
                since: ScrubSince::Started,
                ..
            }]
        ));

        let cancelled = last_scrub("raid1-scrub-cancelled");
        check(
            Case {
                shown: &shown,
                stats,
                last_scrub: &cancelled,
                now: since(&cancelled) + 2 * DAY,
                used_bytes: GIB / 10,
            },
            expect![[r#"
                scrub-overdue
                  [scrub-overdue] the last scrub (2 days ago) was cancelled before it finished: the pool was not fully checked"#]],
        );
        let resumed = last_scrub("raid1-scrub-resumed");
        check(
            Case {
                shown: &shown,
                stats,
                last_scrub: &resumed,
                now: since(&resumed) + DAY,
                used_bytes: GIB / 10,
            },
            expect!["ok"],
        );
        check(
            Case {
                shown: &shown,
                stats,
                last_scrub: &LastScrub::Unknown {
                    reason: "btrfs scrub status exited 1".into(),
                },
                now: 0,
                used_bytes: GIB / 10,
            },
            expect![[r#"
                scrub-overdue
                  [scrub-overdue] the last scrub is unknown: btrfs scrub status exited 1"#]],
        );
    }

    #[test]
    fn fullness_and_the_worst_state_wins() {
        let shown = shown("raid1-never-scrubbed");
        let current = stats("raid1-scrubbed");
        let last = last_scrub("raid1-scrubbed");
        let case = |used_bytes, now| Case {
            shown: &shown,
            stats: StatsReading::Read {
                current: &current,
                recorded: Some(&current),
            },
            last_scrub: &last,
            now,
            used_bytes,
        };
        let soon = since(&last) + DAY;
        let tenth = 3 * GIB / 10;
        check(case(8 * tenth - 1, soon), expect!["ok"]);
        check(case(8 * tenth, soon), expect!["ok"]);
        check(
            case(3 * GIB, since(&last) + 40 * DAY),
            expect![[r#"
                nearly-full
                  [nearly-full] 100 % full (at or above 90 %)
                  [scrub-overdue] the last scrub ended 40 days ago, more than the 35 days allowed"#]],
        );
        let degraded = self::shown("missing-degraded-mount");
        let corrupted = stats("raid1-corrupted");
        check(
            Case {
                shown: &degraded,
                stats: StatsReading::Read {
                    current: &corrupted,
                    recorded: Some(&current),
                },
                last_scrub: &LastScrub::Never,
                now: soon,
                used_bytes: 9 * tenth,
            },
            expect![[r#"
                degraded
                  [degraded] 1 of 3 devices missing (devid 3): the pool has lost redundancy until the missing device is replaced or removed
                  [errors] /dev/loop0 (devid 1): corruption_errs grew from 0 to 16 since the last record
                  [nearly-full] 89 % full (at or above 80 %)
                  [scrub-overdue] never scrubbed"#]],
        );
        let filesystem = filesystem(0, 0);
        let health = classify(
            &PoolReading {
                filesystem: &filesystem,
                shown: &shown,
                stats: StatsReading::Read {
                    current: &current,
                    recorded: Some(&current),
                },
                last_scrub: &last,
                now_unix_seconds: soon,
                registered_unix_seconds: 0,
            },
            &DEFAULT_THRESHOLDS,
        );
        assert_eq!(health.reasons(), ["size unknown: fullness is not judged"]);
        assert_eq!(health.state, HealthState::Ok);
    }
}
