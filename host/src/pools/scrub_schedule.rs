//! The scrub schedule's runner (`[scrub] auto`, off by default): at each check, every mounted
//! pool whose scrub [`schedule::decide`] says is due gets a scrub job through the normal plan
//! path: planned by [`PLANNER`] like any plan, applied unattended by nosd
//! ([`pipeline::admit_unattended`]: every check of an apply but an admin's presence, audited as
//! `nosd:scrub-schedule`), run and recorded like any job.
//!
//! [`due`] is pure: a report and `now` → the scrubs to start. [`run`] observes, plans, admits
//! and starts; it blocks (facts through the agent, the planner). Neither starts a scrub on a
//! pool that is not mounted where nos registered it or has members missing (a scrub cannot
//! repair from copies that are not there: the repair comes first), nor [`run`] on a pool a job
//! holds; a scrub already running, or a last scrub nobody could read, is left alone.

use std::sync::Arc;

use super::PoolService;
use super::reconcile::{PoolState, Report};
use crate::alerts::schedule::{self, ScrubDecision, ScrubSchedule};
use crate::pipeline::{self, Pipeline, Refusal, Requester};

/// The planner the schedule plans with.
pub const PLANNER: &str = "btrfs-maintenance";
/// The task of the unattended requester: the audit log names it `nosd:scrub-schedule`.
pub const TASK: &str = "scrub-schedule";

/// What the schedule asks of the planner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScrubAction {
    /// `scrub-start`: the last complete scrub is too old, or there was none.
    Start,
    /// `scrub-resume`: the last scrub stopped before it finished, too long ago.
    Resume,
}

impl ScrubAction {
    /// The planner's `action`.
    pub fn as_str(self) -> &'static str {
        match self {
            ScrubAction::Start => "scrub-start",
            ScrubAction::Resume => "scrub-resume",
        }
    }
}

/// A pool whose scrub is due, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueScrub {
    pub uuid: String,
    /// The registered mount point, where the pool is mounted.
    pub mountpoint: String,
    pub action: ScrubAction,
    pub reason: String,
}

impl DueScrub {
    /// The planner input: `{"action": "scrub-start" | "scrub-resume", "pool": <mount point>}`.
    pub fn input(&self) -> String {
        serde_json::json!({"action": self.action.as_str(), "pool": self.mountpoint}).to_string()
    }
}

/// The scrubs `report` shows due at `now`: one per mounted pool (at its registered mount
/// point, no member missing) whose decision is to start or resume. Pure.
pub fn due(report: &Report, now: u64, schedule: &ScrubSchedule) -> Vec<DueScrub> {
    report
        .pools
        .iter()
        .filter(|pool| pool.state == PoolState::Mounted)
        .filter_map(|pool| {
            let (action, reason) = match schedule::decide(&pool.scrub, now, schedule) {
                ScrubDecision::Start { reason } => (ScrubAction::Start, reason),
                ScrubDecision::Resume { reason } => (ScrubAction::Resume, reason),
                ScrubDecision::Running
                | ScrubDecision::NotDue { .. }
                | ScrubDecision::Unknown { .. } => return None,
            };
            Some(DueScrub {
                uuid: pool.uuid.clone(),
                mountpoint: pool.mountpoint.clone(),
                action,
                reason,
            })
        })
        .collect()
}

/// What one check did about one due scrub.
#[derive(Debug)]
pub enum Outcome {
    /// The job runs.
    Started { job_id: String },
    /// A job holds the pool: nothing was planned; the next check looks again.
    Busy,
    /// Planning, admission or the job record refused (audited where a refusal is).
    Refused(Refusal),
}

/// One check: observes the machine now (so the report is fresh) and, for each due scrub whose
/// pool no job holds, plans, admits unattended and starts the job. Blocks: call it off the
/// async workers, inside the tokio runtime (the job runs on its blocking pool). Each outcome
/// is logged; the observation failing is the error.
pub fn run(
    pipeline: &Arc<Pipeline>,
    pools: &PoolService,
    schedule: &ScrubSchedule,
) -> Result<Vec<(DueScrub, Outcome)>, Refusal> {
    let facts = pipeline.cached_facts(true)?;
    let Some(report) = pools.report() else {
        return Ok(Vec::new());
    };
    let requester = Requester::unattended(TASK);
    let checked = due(&report, pipeline.now(), schedule)
        .into_iter()
        .map(|scrub| {
            let input = scrub.input();
            let outcome = if pipeline
                .jobs
                .is_pool_locked(&pipeline::pool_key(&input, &facts))
            {
                Outcome::Busy
            } else {
                match start(pipeline, &requester, input) {
                    Ok(job_id) => Outcome::Started { job_id },
                    Err(refusal) => Outcome::Refused(refusal),
                }
            };
            let (uuid, action, reason) = (&scrub.uuid, scrub.action.as_str(), &scrub.reason);
            match &outcome {
                Outcome::Started { job_id } => {
                    tracing::info!(%uuid, action, %reason, %job_id, "scheduled scrub started");
                }
                Outcome::Busy => {
                    tracing::info!(%uuid, action, %reason, "scheduled scrub waits: a job holds the pool");
                }
                Outcome::Refused(refusal) => {
                    tracing::warn!(%uuid, action, %reason, code = refusal.code(), %refusal, "scheduled scrub refused");
                }
            }
            (scrub, outcome)
        })
        .collect();
    Ok(checked)
}

fn start(
    pipeline: &Arc<Pipeline>,
    requester: &Requester,
    input: String,
) -> Result<String, Refusal> {
    let plan = pipeline::create_plan(pipeline, requester, PLANNER, input)?;
    let admitted = pipeline::admit_unattended(pipeline, requester, &plan.id)?;
    Ok(pipeline::start_job(pipeline, admitted)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pools::reconcile::reconcile;
    use crate::pools::reconcile::tests::{NOW, SETTINGS, observe};
    use crate::pools::registry::Registry;

    const DAY: u64 = 86_400;
    const SCHEDULE: ScrubSchedule = ScrubSchedule {
        due_after_seconds: 35 * DAY,
    };

    /// The captured pool registered, then observed at `now` with the captured scrub status of
    /// `scrub` (`None`: not mounted); what is due.
    fn due_at(scrub: Option<&str>, now: u64) -> Vec<String> {
        let mounted = observe("btrfs-mounted", Some(("raid1-scrubbed", "raid1-scrubbed")));
        let registry = reconcile(&Registry::default(), &mounted, &SETTINGS, NOW).registry;
        let observation = match scrub {
            Some(scrub) => observe("btrfs-mounted", Some(("raid1-scrubbed", scrub))),
            None => observe("btrfs-unmounted", None),
        };
        let report = reconcile(&registry, &observation, &SETTINGS, now).report;
        due(&report, now, &SCHEDULE)
            .iter()
            .map(|scrub| format!("{} {}: {}", scrub.uuid, scrub.input(), scrub.reason))
            .collect()
    }

    #[test]
    fn a_mounted_pool_is_scrubbed_once_its_last_scrub_is_too_old() {
        let cases = [
            ("a day after a scrub", due_at(Some("raid1-scrubbed"), NOW)),
            (
                "36 days after",
                due_at(Some("raid1-scrubbed"), NOW + 35 * DAY),
            ),
            ("36 days after, not mounted", due_at(None, NOW + 35 * DAY)),
            (
                "36 days after a cancelled scrub",
                due_at(Some("raid1-scrub-cancelled"), NOW + 35 * DAY),
            ),
            (
                "while one runs",
                due_at(Some("raid1-scrub-running"), NOW + 35 * DAY),
            ),
            ("never scrubbed", due_at(Some("raid1-never-scrubbed"), NOW)),
        ];
        let text: Vec<String> = cases
            .iter()
            .map(|(name, due)| format!("{name}: {due:?}"))
            .collect();
        expect_test::expect![[r#"
            a day after a scrub: []
            36 days after: ["00b3a85f-67a1-4ead-97e8-a2c61cc26544 {\"action\":\"scrub-start\",\"pool\":\"/tmp/nos-capture.1PB2A1/mnt-fixpool\"}: the last scrub ended 36 days ago, more than 35 days"]
            36 days after, not mounted: []
            36 days after a cancelled scrub: ["00b3a85f-67a1-4ead-97e8-a2c61cc26544 {\"action\":\"scrub-resume\",\"pool\":\"/tmp/nos-capture.1PB2A1/mnt-fixpool\"}: the last scrub, 36 days ago, stopped before it finished, more than 35 days ago"]
            while one runs: []
            never scrubbed: ["00b3a85f-67a1-4ead-97e8-a2c61cc26544 {\"action\":\"scrub-start\",\"pool\":\"/tmp/nos-capture.1PB2A1/mnt-fixpool\"}: never scrubbed"]"#]].assert_eq(&text.join("\n"));
    }
}
