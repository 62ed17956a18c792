//! The schedules' runner: at each check (`[schedules] check_seconds`), every due schedule
//! ([`super::model::due`]) plans with its planner and approved input through the normal plan
//! path ([`pipeline::create_plan`], as nosd's own requester `nosd:schedule:<id>`), and
//! [`super::decide`] says what happens to the plan: applied unattended
//! ([`pipeline::admit_unattended`], every check of an apply but an admin's presence), held
//! for an admin (an alert `schedule-held` with the reasons; the plan's steps in the
//! schedule's last run, for an admin to plan again and apply in their own session), or
//! nothing to do. Every run is recorded as the schedule's last run and audited
//! (`schedule_ran`: approval id, revision, plan sha256, outcome).
//!
//! A pool a job holds is skipped: no run, no record, the schedule stays due for the next
//! check. A schedule revoked or edited while its run was planning never applies: its
//! revision is compared right before admission and again, with the book locked, when the job
//! starts; such a run is audited as `superseded` and not recorded.

use std::sync::Arc;

use super::decide::{Decision, decide};
use super::model::{HeldStep, LastRun, RunOutcome, Schedule};
use super::service::ScheduleService;
use crate::alerts::model::Condition;
use crate::alerts::{AlertKind, AlertService, Severity, Subject};
use crate::audit::AuditKind;
use crate::facts::Facts;
use crate::pipeline::{self, Pipeline, Refusal, Requester, StoredPlan};
use crate::plan::check::StepVerdict;

/// The task of a schedule's unattended requester: the audit log names it
/// `nosd:schedule:<id>`.
pub fn task(schedule_id: &str) -> String {
    format!("schedule:{schedule_id}")
}

/// What one check did about one due schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    /// The run is over and recorded as the schedule's last run.
    Ran(LastRun),
    /// A job holds the pool: nothing was run; the next check looks again.
    Busy,
    /// The schedule was revoked or edited while it ran: nothing applied, nothing recorded.
    Superseded,
}

/// One check: the due schedules at the pipeline's now, each run as the module docs say.
/// Blocks: call it off the async workers, inside the tokio runtime (a job runs on its blocking
/// pool). Facts that cannot be gathered are the error (nothing ran).
pub fn run(
    pipeline: &Arc<Pipeline>,
    schedules: &ScheduleService,
    alerts: &AlertService,
) -> Result<Vec<(String, Checked)>, Refusal> {
    let now = pipeline.now();
    let due = schedules.due(now);
    if due.is_empty() {
        return Ok(Vec::new());
    }
    let facts = pipeline.cached_facts(true)?;
    let checked = due
        .iter()
        .filter_map(|id| schedules.get(id))
        .map(|schedule| {
            let checked = run_one(pipeline, schedules, alerts, &schedule, &facts, now);
            (schedule.id, checked)
        })
        .collect();
    Ok(checked)
}

fn run_one(
    pipeline: &Arc<Pipeline>,
    schedules: &ScheduleService,
    alerts: &AlertService,
    schedule: &Schedule,
    facts: &Facts,
    now: u64,
) -> Checked {
    let requester = Requester::unattended(&task(&schedule.id));
    let input = serde_json::Value::Object(schedule.input.clone()).to_string();
    if pipeline
        .jobs
        .is_pool_locked(&pipeline::pool_key(&input, facts))
    {
        tracing::info!(schedule = %schedule.id, "scheduled run waits: a job holds the pool");
        return Checked::Busy;
    }
    let (plan, outcome) =
        match pipeline::create_plan(pipeline, &requester, &schedule.planner, input) {
            Err(refusal) => (None, failed(&refusal)),
            Ok(plan) => {
                let outcome = match decide(&plan.checked, &schedule.rule_ids, &schedule.tag) {
                    Decision::NothingToDo => RunOutcome::NothingToDo,
                    Decision::Hold { reasons } => RunOutcome::Held {
                        reasons,
                        steps: held_steps(&plan),
                    },
                    Decision::Apply => {
                        match apply(pipeline, schedules, schedule, &requester, &plan) {
                            Applied::Ended(outcome) => outcome,
                            Applied::Busy => return Checked::Busy,
                            Applied::Superseded => {
                                return superseded(schedules, &requester, schedule, Some(&plan));
                            }
                        }
                    }
                };
                (Some(plan), outcome)
            }
        };
    let run = LastRun {
        at: now,
        revision: schedule.revision,
        plan_sha256: plan.as_ref().map(|plan| plan.sha256.clone()),
        outcome,
    };
    match schedules.record_run(&schedule.id, run.clone()) {
        Ok(true) => {}
        Ok(false) => return superseded(schedules, &requester, schedule, plan.as_deref()),
        Err(err) => tracing::error!(schedule = %schedule.id, %err, "scheduled run not recorded"),
    }
    audit_run(
        schedules,
        &requester,
        schedule,
        plan.as_deref(),
        &run.outcome,
    );
    if let RunOutcome::Held { reasons, .. } = &run.outcome
        && let Err(err) = alerts.raise(held_alert(schedule, reasons, now))
    {
        tracing::error!(schedule = %schedule.id, %err, "schedule-held alert not saved");
    }
    Checked::Ran(run)
}

/// What applying a plan the decision allows came to.
enum Applied {
    Ended(RunOutcome),
    /// A job took the pool since the check: not a run.
    Busy,
    /// The schedule was revoked or edited meanwhile: nothing applied.
    Superseded,
}

/// Admits `plan` unattended and starts its job while `schedule` is still at its revision.
fn apply(
    pipeline: &Arc<Pipeline>,
    schedules: &ScheduleService,
    schedule: &Schedule,
    requester: &Requester,
    plan: &StoredPlan,
) -> Applied {
    if !schedules.is_current(&schedule.id, schedule.revision) {
        return Applied::Superseded;
    }
    let admitted = match pipeline::admit_unattended(pipeline, requester, &plan.id) {
        Ok(admitted) => admitted,
        Err(Refusal::PoolBusy { .. }) => return Applied::Busy,
        Err(refusal) => return Applied::Ended(failed(&refusal)),
    };
    // Dropping `admitted` unstarted (superseded) releases the pool; the plan is used up.
    let started = schedules.while_current(&schedule.id, schedule.revision, || {
        pipeline::start_job(pipeline, admitted)
    });
    Applied::Ended(match started {
        None => return Applied::Superseded,
        Some(Ok(job_id)) => RunOutcome::Applied { job_id },
        Some(Err(err)) => RunOutcome::Failed {
            reason: format!("internal: {err}"),
        },
    })
}

fn failed(refusal: &Refusal) -> RunOutcome {
    RunOutcome::Failed {
        reason: format!("{}: {refusal}", refusal.code()),
    }
}

fn superseded(
    schedules: &ScheduleService,
    requester: &Requester,
    schedule: &Schedule,
    plan: Option<&StoredPlan>,
) -> Checked {
    schedules.auditor().decision(
        AuditKind::ScheduleRan,
        Some(&requester.username),
        "superseded",
        format!(
            "{}: revoked or edited during the run, nothing applied",
            run_subject(schedule, plan)
        ),
    );
    Checked::Superseded
}

fn audit_run(
    schedules: &ScheduleService,
    requester: &Requester,
    schedule: &Schedule,
    plan: Option<&StoredPlan>,
    outcome: &RunOutcome,
) {
    let (verdict, detail) = match outcome {
        RunOutcome::Applied { job_id } => ("applied", format!("job {job_id}")),
        RunOutcome::Held { reasons, .. } => ("held", reasons.join("; ")),
        RunOutcome::NothingToDo => ("nothing-to-do", "the plan has no step".to_owned()),
        RunOutcome::Failed { reason } => ("failed", reason.clone()),
    };
    tracing::info!(schedule = %schedule.id, verdict, %detail, "scheduled run");
    schedules.auditor().decision(
        AuditKind::ScheduleRan,
        Some(&requester.username),
        verdict,
        format!("{}: {detail}", run_subject(schedule, plan)),
    );
}

/// `schedule <id> revision <n> plan <id> sha256 <hex>` (or `no plan`).
fn run_subject(schedule: &Schedule, plan: Option<&StoredPlan>) -> String {
    let plan = match plan {
        Some(plan) => format!("plan {} sha256 {}", plan.id, plan.sha256),
        None => "no plan".to_owned(),
    };
    format!(
        "schedule {} revision {} {plan}",
        schedule.id, schedule.revision
    )
}

fn held_steps(plan: &StoredPlan) -> Vec<HeldStep> {
    plan.checked
        .steps()
        .iter()
        .map(|checked| {
            let step = checked.step();
            let (rule_id, detail) = match checked.verdict() {
                StepVerdict::Allowed { rule_id, canonical } => {
                    (Some(rule_id.clone()), canonical.clone())
                }
                StepVerdict::Rejected { reason } => (None, reason.clone()),
            };
            HeldStep {
                id: step.id.clone(),
                title: step.title.clone(),
                effect: step.effect.to_string(),
                rule_id,
                detail,
            }
        })
        .collect()
}

/// The event an admin acknowledges: one per run that held (its revision and time).
fn held_alert(schedule: &Schedule, reasons: &[String], now: u64) -> Condition {
    Condition {
        kind: AlertKind::ScheduleHeld,
        subject: Subject::Schedule {
            schedule_id: schedule.id.clone(),
            planner: schedule.planner.clone(),
        },
        severity: Severity::Warning,
        message: format!(
            "schedule {} ({}) held its plan for an admin: {}",
            schedule.id,
            schedule.planner,
            reasons.join("; ")
        ),
        occurrence: Some(format!("revision {} at {now}", schedule.revision)),
    }
}
