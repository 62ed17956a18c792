//! Observations → [`Condition`]s: what each pool's health findings and each job's state say,
//! as alerts would say it. Pure.
//!
//! From a pool's [`Health`] (every [`Finding`], see `health::classify`):
//! * devices missing → `pool-degraded` for the pool, and `device-missing` for each devid btrfs
//!   names (an unmounted pool names none);
//! * a device's counters grew, went down (a reset done elsewhere) or are nonzero at the first
//!   reading → one `device-errors-grew` per device, whose occurrence is the counter values;
//! * the last scrub corrected or could not correct errors → `scrub-found-errors`;
//! * never scrubbed, the last scrub too old, cancelled or interrupted, or unknown →
//!   `scrub-overdue`;
//! * at or above the full threshold → `pool-full`, else at or above the nearly-full one →
//!   `pool-nearly-full`;
//! * notes (a scrub running, the counters not read, a size unknown, a scrub time in the
//!   future) raise nothing.
//!
//! From jobs: a job that ended `failed`, `rolled_back` or `interrupted` → `job-failed`; a job
//! still running after [`Rules::job_stalled_after_seconds`] since its current step started →
//! `job-stalled`.

use crate::health::{Finding, Health};
use crate::pipeline::jobs::{JobRecord, JobState, StepState};

use super::model::{AlertKind, Condition, Scope, Severity, Subject};

/// Default of [`Rules::job_stalled_after_seconds`]: 24 hours. A scrub of a large disk runs
/// for many hours (about 2 h per TB at 150 MB/s), so the default waits for a full day.
pub const DEFAULT_JOB_STALLED_AFTER_HOURS: u64 = 24;

/// The thresholds of the conditions that are not the health module's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// A job whose current step has run longer than this is stalled. Unit: seconds; default
    /// [`DEFAULT_JOB_STALLED_AFTER_HOURS`] hours (`[alerts] job_stalled_after_hours`).
    pub job_stalled_after_seconds: u64,
    /// The health thresholds' `very_full_percent`: a `nearly-full` finding at or above it is
    /// `pool-full`.
    pub very_full_percent: u8,
}

/// One pool as the registry sees it now.
#[derive(Debug, Clone, Copy)]
pub struct PoolObservation<'a> {
    /// The btrfs filesystem UUID.
    pub uuid: &'a str,
    pub label: Option<&'a str>,
    pub health: &'a Health,
}

/// One job as the job table has it now ([`JobObservation::from_record`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobObservation {
    pub id: String,
    pub pool: String,
    pub plugin: String,
    pub state: JobState,
    /// For a running job: the running step's title and when it started (the job's start
    /// when no step has started yet).
    pub running: Option<RunningStep>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningStep {
    pub title: String,
    pub since: u64,
}

impl JobObservation {
    /// What the alerts need of a job record.
    pub fn from_record(job: &JobRecord) -> JobObservation {
        let running = (job.state == JobState::Running).then(|| {
            let step = job
                .steps
                .iter()
                .find(|step| step.state == StepState::Running);
            let since = step
                .and_then(|step| {
                    job.events.iter().rev().find(|event| {
                        event.kind == "step_started" && event.step.as_deref() == Some(&step.id)
                    })
                })
                .map_or(job.created_at, |event| event.at);
            RunningStep {
                title: step.map_or_else(|| "starting".to_owned(), |step| step.title.clone()),
                since,
            }
        });
        JobObservation {
            id: job.id.clone(),
            pool: job.pool.clone(),
            plugin: job.plugin.clone(),
            state: job.state,
            running,
        }
    }
}

/// Every condition the observations show, and the scope they cover (every pool given; jobs
/// when `jobs` is `Some`, which must then hold every job the table has).
pub fn conditions(
    now: u64,
    pools: &[PoolObservation<'_>],
    jobs: Option<&[JobObservation]>,
    rules: &Rules,
) -> (Scope, Vec<Condition>) {
    let mut found = Vec::new();
    for pool in pools {
        pool_conditions(pool, rules, &mut found);
    }
    for job in jobs.unwrap_or_default() {
        job_conditions(now, job, rules, &mut found);
    }
    let scope = Scope {
        pool_uuids: pools.iter().map(|pool| pool.uuid.to_owned()).collect(),
        jobs: jobs.is_some(),
    };
    (scope, found)
}

fn pool_conditions(pool: &PoolObservation<'_>, rules: &Rules, found: &mut Vec<Condition>) {
    let pool_subject = Subject::Pool {
        pool_uuid: pool.uuid.to_owned(),
        pool_label: pool.label.map(str::to_owned),
    };
    let device_subject = |devid: u64, path: Option<&str>| Subject::Device {
        pool_uuid: pool.uuid.to_owned(),
        pool_label: pool.label.map(str::to_owned),
        devid,
        path: path.map(str::to_owned),
    };
    // Per device: every counter finding, joined into one alert.
    let mut device_errors: Vec<(u64, String, Vec<String>, Vec<String>)> = Vec::new();
    let mut scrub_errors: Vec<(Severity, String)> = Vec::new();
    let mut scrub_overdue: Vec<String> = Vec::new();
    for finding in &pool.health.findings {
        match finding {
            Finding::DevicesMissing { missing_devids, .. } => {
                found.push(Condition {
                    kind: AlertKind::PoolDegraded,
                    subject: pool_subject.clone(),
                    severity: Severity::Critical,
                    message: format!("{}: {}", pool_subject.describe(), finding.describe()),
                    occurrence: None,
                });
                for devid in missing_devids {
                    let subject = device_subject(*devid, None);
                    found.push(Condition {
                        kind: AlertKind::DeviceMissing,
                        message: format!(
                            "{} is missing: replace it or remove it from the pool",
                            subject.describe()
                        ),
                        subject,
                        severity: Severity::Critical,
                        occurrence: None,
                    });
                }
            }
            Finding::CounterGrew {
                device,
                counter,
                current,
                ..
            }
            | Finding::CounterWentDown {
                device,
                counter,
                current,
                ..
            }
            | Finding::ErrorsWithoutRecord {
                device,
                counter,
                current,
            } => {
                let value = format!("{}={current}", counter.name());
                match device_errors
                    .iter_mut()
                    .find(|(devid, ..)| *devid == device.devid)
                {
                    Some((_, _, values, reasons)) => {
                        values.push(value);
                        reasons.push(finding.describe());
                    }
                    None => device_errors.push((
                        device.devid,
                        device.path.clone(),
                        vec![value],
                        vec![finding.describe()],
                    )),
                }
            }
            Finding::ScrubUncorrectable { .. } => {
                scrub_errors.push((Severity::Critical, finding.describe()));
            }
            Finding::ScrubCorrected { .. } => {
                scrub_errors.push((Severity::Warning, finding.describe()));
            }
            Finding::ScrubNever
            | Finding::ScrubOverdue { .. }
            | Finding::ScrubUnfinished { .. }
            | Finding::ScrubUnknown { .. } => scrub_overdue.push(finding.describe()),
            Finding::NearlyFull {
                threshold_percent, ..
            } => {
                let (kind, severity) = if *threshold_percent >= rules.very_full_percent {
                    (AlertKind::PoolFull, Severity::Critical)
                } else {
                    (AlertKind::PoolNearlyFull, Severity::Warning)
                };
                found.push(Condition {
                    kind,
                    subject: pool_subject.clone(),
                    severity,
                    message: format!(
                        "{} is {}: free space or add a device before writes fail",
                        pool_subject.describe(),
                        finding.describe()
                    ),
                    occurrence: None,
                });
            }
            Finding::StatsUnavailable { .. }
            | Finding::ScrubRunning { .. }
            | Finding::ScrubNotYet { .. }
            | Finding::ScrubInFuture { .. }
            | Finding::SizeUnknown => {}
        }
    }
    for (devid, path, values, reasons) in device_errors {
        let subject = device_subject(devid, Some(&path));
        found.push(Condition {
            kind: AlertKind::DeviceErrorsGrew,
            message: format!("{}: {}", pool_subject.describe(), reasons.join("; ")),
            subject,
            severity: Severity::Warning,
            occurrence: Some(values.join(",")),
        });
    }
    if let Some(severity) = scrub_errors.iter().map(|(severity, _)| *severity).max() {
        let reasons: Vec<String> = scrub_errors.into_iter().map(|(_, reason)| reason).collect();
        found.push(Condition {
            kind: AlertKind::ScrubFoundErrors,
            subject: pool_subject.clone(),
            severity,
            message: format!("{}: {}", pool_subject.describe(), reasons.join("; ")),
            occurrence: None,
        });
    }
    if !scrub_overdue.is_empty() {
        found.push(Condition {
            kind: AlertKind::ScrubOverdue,
            subject: pool_subject.clone(),
            severity: Severity::Notice,
            message: format!(
                "{}: {}: run a scrub to find damaged data while a good copy exists",
                pool_subject.describe(),
                scrub_overdue.join("; ")
            ),
            occurrence: None,
        });
    }
}

fn job_conditions(now: u64, job: &JobObservation, rules: &Rules, found: &mut Vec<Condition>) {
    let subject = Subject::Job {
        job_id: job.id.clone(),
        pool: job.pool.clone(),
    };
    let failed = match job.state {
        JobState::Failed => Some((
            Severity::Critical,
            "failed and was not fully rolled back: check the pool before retrying",
        )),
        JobState::RolledBack => {
            Some((Severity::Warning, "failed; every step done was rolled back"))
        }
        JobState::Interrupted => Some((
            Severity::Warning,
            "was interrupted when nosd stopped: check the pool before retrying",
        )),
        JobState::Running | JobState::Succeeded => None,
    };
    if let Some((severity, how)) = failed {
        found.push(Condition {
            kind: AlertKind::JobFailed,
            message: format!("{} ({}) {how}", subject.describe(), job.plugin),
            subject: subject.clone(),
            severity,
            occurrence: Some(job.id.clone()),
        });
    }
    if let Some(running) = &job.running {
        let running_for = now.saturating_sub(running.since);
        if running_for > rules.job_stalled_after_seconds {
            found.push(Condition {
                kind: AlertKind::JobStalled,
                message: format!(
                    "{} ({}): step \"{}\" has been running for {} hours: check whether the balance or scrub it runs is paused or stuck",
                    subject.describe(),
                    job.plugin,
                    running.title,
                    running_for / 3600
                ),
                subject,
                severity: Severity::Warning,
                occurrence: None,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::captured_tests::{self as captured, UUID};
    use crate::health::{DEFAULT_THRESHOLDS, LastScrub, PoolReading, StatsReading, classify};
    use expect_test::{Expect, expect};
    const RULES: Rules = Rules {
        job_stalled_after_seconds: DEFAULT_JOB_STALLED_AFTER_HOURS * 3600,
        very_full_percent: 90,
    };

    /// The health of a captured scenario: its `btrfs filesystem show` (or the never-scrubbed
    /// pool's), its counters against `recorded`'s, its scrub status (captured in UTC) and
    /// `used_percent` of 3 GiB used.
    fn health(scenario: &str, show: &str, recorded: Option<&str>, used_percent: u64) -> Health {
        let shown = captured::shown(show);
        let current = captured::stats(scenario);
        let recorded = recorded.map(captured::stats);
        let last_scrub = captured::last_scrub(scenario);
        let size_bytes = 3u64 << 30;
        let filesystem = captured::filesystem(size_bytes, size_bytes / 100 * used_percent);
        let since = match &last_scrub {
            LastScrub::Recorded {
                since_unix_seconds, ..
            } => *since_unix_seconds,
            _ => 1_796_229_600,
        };
        classify(
            &PoolReading {
                filesystem: &filesystem,
                shown: &shown,
                stats: StatsReading::Read {
                    current: &current,
                    recorded: recorded.as_deref(),
                },
                last_scrub: &last_scrub,
                now_unix_seconds: since + 3600,
                registered_unix_seconds: 0,
            },
            &DEFAULT_THRESHOLDS,
        )
    }

    fn check(health: &Health, jobs: Option<&[JobObservation]>, expect: Expect) {
        let pools = [PoolObservation {
            uuid: UUID,
            label: Some("healthpool"),
            health,
        }];
        let (scope, found) = conditions(1_800_000_000, &pools, jobs, &RULES);
        assert_eq!(scope.pool_uuids, [UUID]);
        let lines: Vec<String> = found
            .iter()
            .map(|condition| {
                format!(
                    "{} {} [{}] {}{}",
                    condition.kind.as_str(),
                    condition.subject.key(),
                    condition.severity.as_str(),
                    condition.message,
                    condition
                        .occurrence
                        .as_ref()
                        .map(|occurrence| format!(" <{occurrence}>"))
                        .unwrap_or_default()
                )
            })
            .collect();
        expect.assert_eq(&lines.join("\n"));
    }

    #[test]
    fn a_degraded_mount_is_a_degraded_pool_and_a_missing_device() {
        check(
            &health(
                "missing-degraded-mount",
                "missing-degraded-mount",
                Some("raid1-scrubbed"),
                10,
            ),
            None,
            expect![[r#"
                pool-degraded pool/7e57ab1e-d15c-4a11-9b0b-5c0bb1e5ca1d [critical] pool healthpool (7e57ab1e-d15c-4a11-9b0b-5c0bb1e5ca1d): 1 of 3 devices missing (devid 3): the pool has lost redundancy until the missing device is replaced or removed
                device-missing device/7e57ab1e-d15c-4a11-9b0b-5c0bb1e5ca1d/3 [critical] devid 3 of pool healthpool (7e57ab1e-d15c-4a11-9b0b-5c0bb1e5ca1d) is missing: replace it or remove it from the pool
                device-errors-grew device/7e57ab1e-d15c-4a11-9b0b-5c0bb1e5ca1d/1 [warning] pool healthpool (7e57ab1e-d15c-4a11-9b0b-5c0bb1e5ca1d): /dev/loop0 (devid 1): corruption_errs grew from 0 to 16 since the last record <corruption_errs=16>
                scrub-found-errors pool/7e57ab1e-d15c-4a11-9b0b-5c0bb1e5ca1d [warning] pool healthpool (7e57ab1e-d15c-4a11-9b0b-5c0bb1e5ca1d): the last scrub corrected 16 errors from a good copy: a device returned bad data"#]],
        );
    }

    #[test]
    fn repaired_corruption_is_errors_grew_and_scrub_found_errors() {
        check(
            &health(
                "raid1-corrupted",
                "raid1-never-scrubbed",
                Some("raid1-scrubbed"),
                85,
            ),
            None,
            expect![[r#"
                pool-nearly-full pool/7e57ab1e-d15c-4a11-9b0b-5c0bb1e5ca1d [warning] pool healthpool (7e57ab1e-d15c-4a11-9b0b-5c0bb1e5ca1d) is 84 % full (at or above 80 %): free space or add a device before writes fail
                device-errors-grew device/7e57ab1e-d15c-4a11-9b0b-5c0bb1e5ca1d/1 [warning] pool healthpool (7e57ab1e-d15c-4a11-9b0b-5c0bb1e5ca1d): /dev/loop0 (devid 1): corruption_errs grew from 0 to 16 since the last record <corruption_errs=16>
                scrub-found-errors pool/7e57ab1e-d15c-4a11-9b0b-5c0bb1e5ca1d [warning] pool healthpool (7e57ab1e-d15c-4a11-9b0b-5c0bb1e5ca1d): the last scrub corrected 16 errors from a good copy: a device returned bad data"#]],
        );
    }

    #[test]
    fn a_full_never_scrubbed_pool() {
        check(
            &health("raid1-never-scrubbed", "raid1-never-scrubbed", None, 95),
            None,
            expect![[r#"
                pool-full pool/7e57ab1e-d15c-4a11-9b0b-5c0bb1e5ca1d [critical] pool healthpool (7e57ab1e-d15c-4a11-9b0b-5c0bb1e5ca1d) is 94 % full (at or above 90 %): free space or add a device before writes fail
                scrub-overdue pool/7e57ab1e-d15c-4a11-9b0b-5c0bb1e5ca1d [notice] pool healthpool (7e57ab1e-d15c-4a11-9b0b-5c0bb1e5ca1d): never scrubbed: run a scrub to find damaged data while a good copy exists"#]],
        );
    }

    fn job(state: JobState, running_since: Option<u64>) -> JobObservation {
        JobObservation {
            id: "j1".into(),
            pool: "/srv/healthpool".into(),
            plugin: "btrfs-maintenance".into(),
            state,
            running: running_since.map(|since| RunningStep {
                title: "scrub /srv/healthpool".into(),
                since,
            }),
        }
    }

    #[test]
    fn failed_and_stalled_jobs() {
        let ok = health(
            "raid1-scrubbed",
            "raid1-never-scrubbed",
            Some("raid1-scrubbed"),
            10,
        );
        let now = 1_800_000_000;
        let jobs = [
            job(JobState::Failed, None),
            JobObservation {
                id: "j2".into(),
                ..job(JobState::RolledBack, None)
            },
            JobObservation {
                id: "j3".into(),
                ..job(JobState::Running, Some(now - 25 * 3600))
            },
            JobObservation {
                id: "j4".into(),
                ..job(JobState::Running, Some(now - 23 * 3600))
            },
            JobObservation {
                id: "j5".into(),
                ..job(JobState::Succeeded, None)
            },
        ];
        check(
            &ok,
            Some(&jobs),
            expect![[r#"
            job-failed job/j1 [critical] job j1 on /srv/healthpool (btrfs-maintenance) failed and was not fully rolled back: check the pool before retrying <j1>
            job-failed job/j2 [warning] job j2 on /srv/healthpool (btrfs-maintenance) failed; every step done was rolled back <j2>
            job-stalled job/j3 [warning] job j3 on /srv/healthpool (btrfs-maintenance): step "scrub /srv/healthpool" has been running for 25 hours: check whether the balance or scrub it runs is paused or stuck"#]],
        );
    }
}
