//! The alert book: every alert nos raised, de-duplicated, with its life (raised → acknowledged
//! → cleared). Pure: no IO, no clock (`now` is an argument), no delivery; [`super::service`]
//! persists the book and delivers its [`Transition`]s.
//!
//! De-duplication: there is at most one open alert per (kind, subject) ([`Subject::key`]). A
//! condition that persists updates that alert's `last_seen` (and its message and severity, when
//! the numbers changed); it never raises a second one. A condition that clears and comes back
//! is a new alert, with a new id.
//!
//! Two ways an alert ends ([`AlertKind::ends_on_ack`]):
//! * A *condition* (a pool degraded, a scrub overdue…) clears when an observation of its pool
//!   (or, for a job, the observation of jobs) no longer shows it. Acknowledging it only says an
//!   admin has seen it; it stays open while the condition lasts.
//! * An *event* (device error counters grew, a job failed) has nothing that could go away: the
//!   admin's acknowledgement is what closes it. An observation that still shows the same
//!   occurrence (the same counter values, the same failed job) does not raise it again.

use serde::{Deserialize, Serialize};

/// At most this many alerts are kept; beyond it the oldest cleared ones are dropped first
/// (open alerts are never dropped, nor a cleared event the current observation still shows,
/// which would otherwise be raised again: the cap can be exceeded by those).
pub const MAX_ALERTS: usize = 500;

/// What an alert is about. The names ([`AlertKind::as_str`]) are the API's and the webhook's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AlertKind {
    /// The pool has devices missing: it has lost redundancy.
    PoolDegraded,
    /// One device of a pool is missing (one alert per devid btrfs names).
    DeviceMissing,
    /// A device's error counters grew (or were reset, or were nonzero at the first reading).
    DeviceErrorsGrew,
    /// The last scrub found errors (corrected or not).
    ScrubFoundErrors,
    /// No complete scrub within the threshold (never scrubbed, too old, cancelled or unknown).
    ScrubOverdue,
    /// At or above the nearly-full threshold (default 80 %).
    PoolNearlyFull,
    /// At or above the full threshold (default 90 %).
    PoolFull,
    /// A job ended failed, rolled back or interrupted.
    JobFailed,
    /// A job (a balance, a scrub…) has been running longer than the configured threshold.
    JobStalled,
    /// A schedule's run made a plan outside its approval: held for an admin (`schedules`).
    ScheduleHeld,
}

/// Every kind, in the order of [`AlertKind`].
pub const ALL_KINDS: [AlertKind; 10] = [
    AlertKind::PoolDegraded,
    AlertKind::DeviceMissing,
    AlertKind::DeviceErrorsGrew,
    AlertKind::ScrubFoundErrors,
    AlertKind::ScrubOverdue,
    AlertKind::PoolNearlyFull,
    AlertKind::PoolFull,
    AlertKind::JobFailed,
    AlertKind::JobStalled,
    AlertKind::ScheduleHeld,
];

/// How urgent an alert is, from least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    /// Worth doing something about soon (a scrub overdue).
    Notice,
    /// Something is wrong or will be (errors corrected, nearly full, a job failed).
    Warning,
    /// Data is at risk now (a device missing, uncorrectable errors, full).
    Critical,
}

/// What an alert is about: a pool, one device of a pool, or a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Subject {
    Pool {
        pool_uuid: String,
        pool_label: Option<String>,
    },
    Device {
        pool_uuid: String,
        pool_label: Option<String>,
        devid: u64,
        /// The path btrfs printed, when it printed one (a missing device has none).
        path: Option<String>,
    },
    Job {
        job_id: String,
        /// The pool the job worked on, as the job records it.
        pool: String,
    },
    /// A schedule (standing approval) and its planner.
    Schedule {
        schedule_id: String,
        planner: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// Open, nobody has acknowledged it.
    Raised,
    /// Open, an admin has seen it.
    Acknowledged,
    /// Over: the condition is gone (or, for an event, it was acknowledged).
    Cleared,
}

/// Who acknowledged an alert, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acknowledgement {
    pub by: String,
    pub at: u64,
}

/// One alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// Unique within this state directory, increasing.
    pub id: u64,
    pub kind: AlertKind,
    pub subject: Subject,
    pub severity: Severity,
    pub first_seen: u64,
    pub last_seen: u64,
    /// What an admin reads: the subject and the condition, in words.
    pub message: String,
    pub state: AlertState,
    pub acknowledged: Option<Acknowledgement>,
    pub cleared_at: Option<u64>,
    /// For an event: what identifies this occurrence (counter values, the job id), so the
    /// same occurrence observed again is not raised again after it was acknowledged.
    pub occurrence: Option<String>,
}

/// A condition found in an observation: what an alert would say. Built by
/// [`super::conditions`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub kind: AlertKind,
    pub subject: Subject,
    pub severity: Severity,
    pub message: String,
    /// Set for events ([`AlertKind::ends_on_ack`]), `None` for conditions.
    pub occurrence: Option<String>,
}

/// Which subjects an observation covered: an open condition alert clears only when its
/// scope was observed and did not show it, so a pool that could not be read this time keeps
/// its alerts as they were.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// The pools observed, by filesystem UUID.
    pub pool_uuids: Vec<String>,
    /// Whether jobs were observed (all of them: a job alert clears when its job is not shown
    /// in the state that raised it).
    pub jobs: bool,
}

/// A change of one alert, for the audit log, the journal and the webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub change: Change,
    /// The alert after the change.
    pub alert: Alert,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    Raised,
    Acknowledged,
    Cleared,
}

/// What one observation did: every transition (in order), and whether anything else changed
/// (`last_seen`, a message), so the caller knows whether to persist.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use]
pub struct Changes {
    pub transitions: Vec<Transition>,
    pub n_updated: usize,
}

/// What [`AlertBook::acknowledge`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum AckOutcome {
    /// Acknowledged now: the transitions to record (an event is also cleared).
    Acknowledged(Vec<Transition>),
    /// Already acknowledged, or already cleared: nothing changed.
    Unchanged(Alert),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AckError {
    /// No alert has this id (as given: the API passes on an id that is not even a number).
    #[error("no alert with id {id:?}")]
    Unknown { id: String },
}

/// Every alert kept, and the next id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertBook {
    next_id: u64,
    alerts: Vec<Alert>,
}

impl AlertKind {
    /// The kebab-case name of the API, the webhook and the journal.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::PoolDegraded => "pool-degraded",
            AlertKind::DeviceMissing => "device-missing",
            AlertKind::DeviceErrorsGrew => "device-errors-grew",
            AlertKind::ScrubFoundErrors => "scrub-found-errors",
            AlertKind::ScrubOverdue => "scrub-overdue",
            AlertKind::PoolNearlyFull => "pool-nearly-full",
            AlertKind::PoolFull => "pool-full",
            AlertKind::JobFailed => "job-failed",
            AlertKind::JobStalled => "job-stalled",
            AlertKind::ScheduleHeld => "schedule-held",
        }
    }

    /// Whether this kind is an event, closed by its acknowledgement, rather than a condition
    /// that clears by itself (see the module docs).
    pub fn ends_on_ack(self) -> bool {
        matches!(
            self,
            AlertKind::DeviceErrorsGrew | AlertKind::JobFailed | AlertKind::ScheduleHeld
        )
    }
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Notice => "notice",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Raised => "raised",
            AlertState::Acknowledged => "acknowledged",
            AlertState::Cleared => "cleared",
        }
    }
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Raised => "raised",
            Change::Acknowledged => "acknowledged",
            Change::Cleared => "cleared",
        }
    }
}

impl Subject {
    /// The de-duplication key: a pool by UUID, a device by pool UUID and devid (a path can
    /// change between boots, a devid cannot), a job by id.
    pub fn key(&self) -> String {
        match self {
            Subject::Pool { pool_uuid, .. } => format!("pool/{pool_uuid}"),
            Subject::Device {
                pool_uuid, devid, ..
            } => format!("device/{pool_uuid}/{devid}"),
            Subject::Job { job_id, .. } => format!("job/{job_id}"),
            Subject::Schedule { schedule_id, .. } => format!("schedule/{schedule_id}"),
        }
    }

    /// The pool's filesystem UUID, for a pool or a device.
    pub fn pool_uuid(&self) -> Option<&str> {
        match self {
            Subject::Pool { pool_uuid, .. } | Subject::Device { pool_uuid, .. } => Some(pool_uuid),
            Subject::Job { .. } | Subject::Schedule { .. } => None,
        }
    }

    /// How a message names the subject: `pool tank (uuid)`, `devid 2 (/dev/sdb) of pool tank`,
    /// `job j-1 on /srv/tank`.
    pub fn describe(&self) -> String {
        fn pool(uuid: &str, label: Option<&str>) -> String {
            match label {
                Some(label) => format!("pool {label} ({uuid})"),
                None => format!("pool {uuid}"),
            }
        }
        match self {
            Subject::Pool {
                pool_uuid,
                pool_label,
            } => pool(pool_uuid, pool_label.as_deref()),
            Subject::Device {
                pool_uuid,
                pool_label,
                devid,
                path,
            } => {
                let path = path
                    .as_deref()
                    .map(|path| format!(" ({path})"))
                    .unwrap_or_default();
                format!(
                    "devid {devid}{path} of {}",
                    pool(pool_uuid, pool_label.as_deref())
                )
            }
            Subject::Job { job_id, pool } => format!("job {job_id} on {pool}"),
            Subject::Schedule {
                schedule_id,
                planner,
            } => format!("schedule {schedule_id} ({planner})"),
        }
    }

    fn in_scope(&self, scope: &Scope) -> bool {
        match self {
            Subject::Pool { pool_uuid, .. } | Subject::Device { pool_uuid, .. } => scope
                .pool_uuids
                .iter()
                .any(|observed| observed == pool_uuid),
            Subject::Job { .. } => scope.jobs,
            // An event: never cleared by an observation.
            Subject::Schedule { .. } => false,
        }
    }
}

impl Alert {
    pub fn is_open(&self) -> bool {
        self.state != AlertState::Cleared
    }

    fn matches(&self, condition: &Condition) -> bool {
        self.kind == condition.kind && self.subject.key() == condition.subject.key()
    }
}

impl AlertBook {
    /// Every alert: open ones first (newest first), then cleared ones (most recently cleared
    /// first).
    pub fn list(&self) -> Vec<&Alert> {
        let mut alerts: Vec<&Alert> = self.alerts.iter().collect();
        alerts.sort_by(|a, b| {
            b.is_open()
                .cmp(&a.is_open())
                .then_with(|| b.cleared_at.cmp(&a.cleared_at))
                .then_with(|| b.id.cmp(&a.id))
        });
        alerts
    }

    pub fn get(&self, id: u64) -> Option<&Alert> {
        self.alerts.iter().find(|alert| alert.id == id)
    }

    /// How many alerts are raised and not acknowledged (the dashboard's badge).
    pub fn n_unacknowledged(&self) -> usize {
        self.alerts
            .iter()
            .filter(|alert| alert.state == AlertState::Raised)
            .count()
    }

    /// Applies one observation: raises what is new, updates what persists, clears the open
    /// conditions of the observed `scope` that are gone, then drops the oldest cleared alerts
    /// beyond `cap` ([`MAX_ALERTS`] in nosd).
    pub fn observe(
        &mut self,
        now: u64,
        scope: &Scope,
        conditions: &[Condition],
        cap: usize,
    ) -> Changes {
        let mut changes = Changes::default();
        for condition in conditions {
            if let Some(open) = self
                .alerts
                .iter_mut()
                .find(|alert| alert.is_open() && alert.matches(condition))
            {
                open.last_seen = now;
                open.message.clone_from(&condition.message);
                open.severity = condition.severity;
                open.subject = condition.subject.clone();
                open.occurrence.clone_from(&condition.occurrence);
                changes.n_updated += 1;
                continue;
            }
            let seen_before = condition.occurrence.is_some()
                && self.alerts.iter().any(|alert| {
                    alert.matches(condition) && alert.occurrence == condition.occurrence
                });
            if seen_before {
                continue;
            }
            let alert = Alert {
                id: self.next_id,
                kind: condition.kind,
                subject: condition.subject.clone(),
                severity: condition.severity,
                first_seen: now,
                last_seen: now,
                message: condition.message.clone(),
                state: AlertState::Raised,
                acknowledged: None,
                cleared_at: None,
                occurrence: condition.occurrence.clone(),
            };
            self.next_id += 1;
            changes.transitions.push(Transition {
                change: Change::Raised,
                alert: alert.clone(),
            });
            self.alerts.push(alert);
        }
        for alert in &mut self.alerts {
            let gone = alert.is_open()
                && !alert.kind.ends_on_ack()
                && alert.subject.in_scope(scope)
                && !conditions.iter().any(|condition| alert.matches(condition));
            if gone {
                alert.state = AlertState::Cleared;
                alert.cleared_at = Some(now);
                changes.transitions.push(Transition {
                    change: Change::Cleared,
                    alert: alert.clone(),
                });
            }
        }
        self.prune(cap, conditions);
        changes
    }

    /// An admin acknowledges alert `id`. An event is cleared by it too; an alert already
    /// acknowledged or cleared is left as it is.
    pub fn acknowledge(&mut self, id: u64, by: &str, now: u64) -> Result<AckOutcome, AckError> {
        let alert = self
            .alerts
            .iter_mut()
            .find(|alert| alert.id == id)
            .ok_or_else(|| AckError::Unknown { id: id.to_string() })?;
        if alert.state != AlertState::Raised {
            return Ok(AckOutcome::Unchanged(alert.clone()));
        }
        alert.acknowledged = Some(Acknowledgement {
            by: by.to_owned(),
            at: now,
        });
        alert.state = AlertState::Acknowledged;
        let mut transitions = vec![Transition {
            change: Change::Acknowledged,
            alert: alert.clone(),
        }];
        if alert.kind.ends_on_ack() {
            alert.state = AlertState::Cleared;
            alert.cleared_at = Some(now);
            transitions.push(Transition {
                change: Change::Cleared,
                alert: alert.clone(),
            });
        }
        Ok(AckOutcome::Acknowledged(transitions))
    }

    /// Drops the oldest cleared alerts beyond `cap`, keeping cleared events that `conditions`
    /// still shows (dropping one would raise it again at the next observation).
    fn prune(&mut self, cap: usize, conditions: &[Condition]) {
        let n_excess = self.alerts.len().saturating_sub(cap);
        if n_excess == 0 {
            return;
        }
        let still_shown = |alert: &Alert| {
            alert.occurrence.is_some()
                && conditions.iter().any(|condition| {
                    alert.matches(condition) && alert.occurrence == condition.occurrence
                })
        };
        let mut droppable: Vec<(u64, u64)> = self
            .alerts
            .iter()
            .filter(|alert| !alert.is_open() && !still_shown(alert))
            .map(|alert| (alert.cleared_at.unwrap_or(0), alert.id))
            .collect();
        droppable.sort_unstable();
        let dropped: Vec<u64> = droppable
            .into_iter()
            .take(n_excess)
            .map(|(_, id)| id)
            .collect();
        self.alerts.retain(|alert| !dropped.contains(&alert.id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(uuid: &str) -> Subject {
        Subject::Pool {
            pool_uuid: uuid.into(),
            pool_label: Some("tank".into()),
        }
    }

    fn degraded(uuid: &str) -> Condition {
        Condition {
            kind: AlertKind::PoolDegraded,
            subject: pool(uuid),
            severity: Severity::Critical,
            message: format!("pool tank ({uuid}): 1 of 3 devices missing"),
            occurrence: None,
        }
    }

    fn job_failed(job_id: &str) -> Condition {
        Condition {
            kind: AlertKind::JobFailed,
            subject: Subject::Job {
                job_id: job_id.into(),
                pool: "/srv/tank".into(),
            },
            severity: Severity::Warning,
            message: format!("job {job_id} failed"),
            occurrence: Some(job_id.into()),
        }
    }

    fn scope(uuids: &[&str]) -> Scope {
        Scope {
            pool_uuids: uuids.iter().map(|uuid| uuid.to_string()).collect(),
            jobs: true,
        }
    }

    fn changes(changes: &Changes) -> Vec<(Change, u64)> {
        changes
            .transitions
            .iter()
            .map(|transition| (transition.change, transition.alert.id))
            .collect()
    }

    #[test]
    fn a_persisting_condition_updates_last_seen_and_is_not_raised_again() {
        let mut book = AlertBook::default();
        let first = book.observe(100, &scope(&["u1"]), &[degraded("u1")], MAX_ALERTS);
        assert_eq!(changes(&first), [(Change::Raised, 0)]);
        let again = book.observe(200, &scope(&["u1"]), &[degraded("u1")], MAX_ALERTS);
        assert_eq!(changes(&again), []);
        assert_eq!(again.n_updated, 1);
        let alert = book.get(0).unwrap();
        assert_eq!((alert.first_seen, alert.last_seen), (100, 200));
        assert_eq!(book.list().len(), 1);
    }

    #[test]
    fn a_condition_that_clears_and_comes_back_is_a_new_alert() {
        let mut book = AlertBook::default();
        let _ = book.observe(100, &scope(&["u1"]), &[degraded("u1")], MAX_ALERTS);
        let gone = book.observe(200, &scope(&["u1"]), &[], MAX_ALERTS);
        assert_eq!(changes(&gone), [(Change::Cleared, 0)]);
        assert_eq!(book.get(0).unwrap().cleared_at, Some(200));
        let back = book.observe(300, &scope(&["u1"]), &[degraded("u1")], MAX_ALERTS);
        assert_eq!(changes(&back), [(Change::Raised, 1)]);
        let ids: Vec<(u64, AlertState)> = book
            .list()
            .iter()
            .map(|alert| (alert.id, alert.state))
            .collect();
        assert_eq!(ids, [(1, AlertState::Raised), (0, AlertState::Cleared)]);
    }

    #[test]
    fn a_pool_not_observed_keeps_its_alerts() {
        let mut book = AlertBook::default();
        let _ = book.observe(100, &scope(&["u1"]), &[degraded("u1")], MAX_ALERTS);
        let other = book.observe(200, &scope(&["u2"]), &[], MAX_ALERTS);
        assert_eq!(changes(&other), []);
        assert!(book.get(0).unwrap().is_open());
    }

    #[test]
    fn one_open_alert_per_kind_and_subject() {
        let mut book = AlertBook::default();
        let both = book.observe(
            100,
            &scope(&["u1", "u2"]),
            &[degraded("u1"), degraded("u2"), degraded("u1")],
            MAX_ALERTS,
        );
        assert_eq!(changes(&both), [(Change::Raised, 0), (Change::Raised, 1)]);
    }

    #[test]
    fn acknowledging_a_condition_keeps_it_open_until_it_clears() {
        let mut book = AlertBook::default();
        let _ = book.observe(100, &scope(&["u1"]), &[degraded("u1")], MAX_ALERTS);
        assert_eq!(book.n_unacknowledged(), 1);
        let AckOutcome::Acknowledged(transitions) = book.acknowledge(0, "admin", 150).unwrap()
        else {
            panic!("not acknowledged")
        };
        assert_eq!(transitions.len(), 1);
        let alert = book.get(0).unwrap();
        assert_eq!(alert.state, AlertState::Acknowledged);
        assert_eq!(
            alert.acknowledged,
            Some(Acknowledgement {
                by: "admin".into(),
                at: 150
            })
        );
        assert_eq!(book.n_unacknowledged(), 0);
        assert!(matches!(
            book.acknowledge(0, "other", 160).unwrap(),
            AckOutcome::Unchanged(_)
        ));
        let gone = book.observe(200, &scope(&["u1"]), &[], MAX_ALERTS);
        assert_eq!(changes(&gone), [(Change::Cleared, 0)]);
        assert_eq!(
            book.get(0).unwrap().acknowledged.as_ref().unwrap().by,
            "admin"
        );
    }

    #[test]
    fn an_event_ends_with_its_acknowledgement_and_is_not_raised_again() {
        let mut book = AlertBook::default();
        let raised = book.observe(100, &scope(&[]), &[job_failed("j1")], MAX_ALERTS);
        assert_eq!(changes(&raised), [(Change::Raised, 0)]);
        // Not shown any more: an event does not clear by itself.
        let absent = book.observe(150, &scope(&[]), &[], MAX_ALERTS);
        assert_eq!(changes(&absent), []);
        let AckOutcome::Acknowledged(transitions) = book.acknowledge(0, "admin", 200).unwrap()
        else {
            panic!("not acknowledged")
        };
        let kinds: Vec<Change> = transitions.iter().map(|t| t.change).collect();
        assert_eq!(kinds, [Change::Acknowledged, Change::Cleared]);
        let again = book.observe(300, &scope(&[]), &[job_failed("j1")], MAX_ALERTS);
        assert_eq!(changes(&again), []);
        // A new occurrence on the same subject is a new alert.
        let mut grew = job_failed("j1");
        grew.occurrence = Some("j1 again".into());
        let new = book.observe(400, &scope(&[]), &[grew], MAX_ALERTS);
        assert_eq!(changes(&new), [(Change::Raised, 1)]);
    }

    #[test]
    fn unknown_id_is_a_typed_error() {
        let mut book = AlertBook::default();
        assert_eq!(
            book.acknowledge(7, "admin", 1),
            Err(AckError::Unknown { id: "7".into() })
        );
    }

    #[test]
    fn the_cap_drops_the_oldest_cleared_first_and_never_an_open_one() {
        let mut book = AlertBook::default();
        for n in 0..5u64 {
            let uuid = format!("u{n}");
            let _ = book.observe(n * 10, &scope(&[&uuid]), &[degraded(&uuid)], 3);
        }
        // Five open alerts: none is dropped, whatever the cap.
        assert_eq!(book.list().len(), 5);
        let all: Vec<String> = (0..5).map(|n| format!("u{n}")).collect();
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        // u0 and u1 clear first, then u2: at the cap of 3, u0 and u1 go.
        let _ = book.observe(
            100,
            &scope(&["u0", "u1"]),
            &[degraded("u2"), degraded("u3"), degraded("u4")],
            5,
        );
        let _ = book.observe(200, &scope(&all), &[degraded("u3"), degraded("u4")], 3);
        let ids: Vec<u64> = book.list().iter().map(|alert| alert.id).collect();
        assert_eq!(ids, [4, 3, 2]);
    }

    #[test]
    fn a_cleared_event_still_shown_is_kept_beyond_the_cap() {
        let mut book = AlertBook::default();
        let _ = book.observe(100, &scope(&[]), &[job_failed("j1")], 1);
        let _ = book.acknowledge(0, "admin", 110).unwrap();
        let _ = book.observe(120, &scope(&[]), &[job_failed("j1"), job_failed("j2")], 1);
        let ids: Vec<u64> = book.list().iter().map(|alert| alert.id).collect();
        assert_eq!(ids, [1, 0]);
        // Once j1 is no longer shown, its cleared alert may go.
        let _ = book.observe(130, &scope(&[]), &[job_failed("j2")], 1);
        let ids: Vec<u64> = book.list().iter().map(|alert| alert.id).collect();
        assert_eq!(ids, [1]);
    }

    #[test]
    fn the_book_round_trips_through_json() {
        let mut book = AlertBook::default();
        let _ = book.observe(100, &scope(&["u1"]), &[degraded("u1")], MAX_ALERTS);
        let text = serde_json::to_string(&book).unwrap();
        let back: AlertBook = serde_json::from_str(&text).unwrap();
        assert_eq!(back, book);
    }
}
