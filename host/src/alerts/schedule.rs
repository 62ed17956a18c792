//! When to scrub: the TrueNAS-style schedule. A check runs every
//! [`SCRUB_CHECK_INTERVAL_SECONDS`] (weekly) and, for each pool, [`decide`] says whether a
//! scrub is due: when the last complete scrub ended longer ago than the threshold (default
//! [`DEFAULT_SCRUB_DUE_AFTER_DAYS`]: the pools' `[pools] scrub_overdue_days`, the same threshold
//! that calls a pool scrub-overdue), or never ran. Pure: the caller
//! passes the pool's [`LastScrub`] (from `btrfs scrub status -R`) and `now`, and starts the
//! scrub job itself (`pools::scrub_schedule`, with `[scrub] auto = true`).
//!
//! What it does not decide: whether the pool is mounted, busy with another job (the job
//! table's pool lock refuses that) or degraded (a scrub of a degraded pool cannot repair from
//! the missing copies; the caller may prefer to repair first).

use crate::health::LastScrub;
use crate::health::scrub_status::ScrubState;

/// How often the schedule is checked: weekly.
pub const SCRUB_CHECK_INTERVAL_SECONDS: u64 = 7 * SECONDS_PER_DAY;

/// Default of [`ScrubSchedule::due_after_seconds`], in days: TrueNAS's default threshold, and
/// the health module's scrub-overdue default, so a pool is scrubbed before it is overdue
/// (checked weekly, a scrub starts between 35 and 42 days after the last).
pub const DEFAULT_SCRUB_DUE_AFTER_DAYS: u64 = crate::health::classify::DEFAULT_SCRUB_OVERDUE_DAYS;

const SECONDS_PER_DAY: u64 = 86_400;

/// The schedule's one setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScrubSchedule {
    /// A scrub is due once the last complete one ended longer ago than this. Unit: seconds;
    /// default [`DEFAULT_SCRUB_DUE_AFTER_DAYS`] days.
    pub due_after_seconds: u64,
}

/// What to do about one pool's scrub.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum ScrubDecision {
    /// Start a scrub (`btrfs scrub start`), and why.
    Start { reason: String },
    /// The last scrub was cancelled or interrupted and is older than the threshold: resume it
    /// (`btrfs scrub resume`), which continues where it stopped.
    Resume { reason: String },
    /// A scrub is running: never start another.
    Running,
    /// Not yet: due after `due_at` (Unix seconds).
    NotDue { due_at: u64 },
    /// The state is unknown (the status could not be read, or its time is in the future):
    /// do nothing rather than start a second scrub; the reason says what to fix.
    Unknown { reason: String },
}

/// Decides one pool. A cancelled or interrupted scrub counts from its last start (or resume),
/// as the health module counts it; a finished one from its end.
pub fn decide(last: &LastScrub, now: u64, schedule: &ScrubSchedule) -> ScrubDecision {
    let (run, since) = match last {
        LastScrub::Never => {
            return ScrubDecision::Start {
                reason: "never scrubbed".to_owned(),
            };
        }
        LastScrub::Unknown { reason } => {
            return ScrubDecision::Unknown {
                reason: format!("the last scrub is unknown: {reason}"),
            };
        }
        LastScrub::Recorded {
            run,
            since_unix_seconds,
            ..
        } => (run, *since_unix_seconds),
    };
    let reference = match run.state {
        ScrubState::Running => return ScrubDecision::Running,
        ScrubState::Finished => since.saturating_add(run.duration_seconds),
        ScrubState::Aborted | ScrubState::Interrupted => since,
    };
    if reference > now {
        return ScrubDecision::Unknown {
            reason: format!(
                "the last scrub's time is {} s in the future (clock or time zone wrong)",
                reference - now
            ),
        };
    }
    let due_at = reference.saturating_add(schedule.due_after_seconds);
    if now <= due_at {
        return ScrubDecision::NotDue { due_at };
    }
    let days_ago = (now - reference) / SECONDS_PER_DAY;
    let threshold_days = schedule.due_after_seconds / SECONDS_PER_DAY;
    match run.state {
        ScrubState::Finished => ScrubDecision::Start {
            reason: format!(
                "the last scrub ended {days_ago} days ago, more than {threshold_days} days"
            ),
        },
        _ => ScrubDecision::Resume {
            reason: format!(
                "the last scrub, {days_ago} days ago, stopped before it finished, more than {threshold_days} days ago"
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::captured_tests::{last_scrub as last, since};

    const DAY: u64 = SECONDS_PER_DAY;
    const SCHEDULE: ScrubSchedule = ScrubSchedule {
        due_after_seconds: DEFAULT_SCRUB_DUE_AFTER_DAYS * DAY,
    };

    #[test]
    fn never_scrubbed_is_due() {
        assert_eq!(
            decide(&last("raid1-never-scrubbed"), 1_800_000_000, &SCHEDULE),
            ScrubDecision::Start {
                reason: "never scrubbed".into()
            }
        );
    }

    #[test]
    fn a_finished_scrub_is_due_after_the_threshold_from_its_end() {
        let last = last("raid1-scrubbed");
        let LastScrub::Recorded { run, .. } = &last else {
            panic!("not recorded")
        };
        let ended = since(&last) + run.duration_seconds;
        assert_eq!(
            decide(&last, ended + DAY, &SCHEDULE),
            ScrubDecision::NotDue {
                due_at: ended + 35 * DAY
            }
        );
        assert!(matches!(
            decide(&last, ended + 35 * DAY, &SCHEDULE),
            ScrubDecision::NotDue { .. }
        ));
        assert_eq!(
            decide(&last, ended + 36 * DAY, &SCHEDULE),
            ScrubDecision::Start {
                reason: "the last scrub ended 36 days ago, more than 35 days".into()
            }
        );
        let weekly = ScrubSchedule {
            due_after_seconds: 7 * DAY,
        };
        assert!(matches!(
            decide(&last, ended + 8 * DAY, &weekly),
            ScrubDecision::Start { .. }
        ));
    }

    #[test]
    fn a_running_scrub_is_not_restarted_however_old() {
        let last = last("raid1-scrub-running");
        assert_eq!(
            decide(&last, since(&last) + 400 * DAY, &SCHEDULE),
            ScrubDecision::Running
        );
    }

    #[test]
    fn a_cancelled_scrub_is_resumed_once_due() {
        let last = last("raid1-scrub-cancelled");
        assert!(matches!(
            decide(&last, since(&last) + DAY, &SCHEDULE),
            ScrubDecision::NotDue { .. }
        ));
        assert!(matches!(
            decide(&last, since(&last) + 36 * DAY, &SCHEDULE),
            ScrubDecision::Resume { .. }
        ));
    }

    #[test]
    fn an_unknown_or_future_scrub_starts_nothing() {
        let unknown = LastScrub::Unknown {
            reason: "btrfs scrub status failed".into(),
        };
        assert!(matches!(
            decide(&unknown, 1_800_000_000, &SCHEDULE),
            ScrubDecision::Unknown { .. }
        ));
        let last = last("raid1-scrubbed");
        assert!(matches!(
            decide(&last, since(&last) - 60, &SCHEDULE),
            ScrubDecision::Unknown { .. }
        ));
    }
}
