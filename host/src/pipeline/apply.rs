//! The executor: runs a checked plan's steps in order through the agent; on a failed step,
//! runs the declared rollbacks of the steps already done, in reverse order. Every transition
//! is written to the job record before the next one starts, and every step result goes to the
//! audit log.
//!
//! Only a [`CheckedPlan`] is accepted, and a plan with any rejected step runs nothing (the
//! API refuses it earlier; this is the second lock on the same door). The agent re-judges
//! every request whatever this module believes.

use super::jobs::{JobState, JobTable, StepState};
use super::port::AgentPort;
use crate::audit::AuditKind;
use crate::plan::check::CheckedPlan;

/// What the executor reports to besides the job record.
pub struct ApplyContext<'a> {
    pub port: &'a dyn AgentPort,
    pub jobs: &'a JobTable,
    pub job_id: &'a str,
    pub now: &'a (dyn Fn() -> u64 + Sync),
    /// (kind, verdict, detail) into the audit log.
    pub audit: &'a (dyn Fn(AuditKind, &str, String) + Sync),
}

impl ApplyContext<'_> {
    fn event(&self, kind: &str, step: Option<&str>, message: String) {
        let at = (self.now)();
        self.update(|job| job.push_event(at, kind, step, message));
    }

    fn update(&self, change: impl FnOnce(&mut super::jobs::JobRecord)) {
        if let Err(err) = self.jobs.update(self.job_id, change) {
            tracing::error!(%err, job = self.job_id, "cannot persist the job record");
        }
    }
}

/// Runs the plan; returns the job's final state (also written to its record).
pub fn execute(plan: &CheckedPlan, cx: &ApplyContext<'_>) -> JobState {
    if !plan.all_allowed() {
        cx.event(
            "job_finished",
            None,
            format!(
                "refused: {} step(s) rejected, nothing ran",
                plan.n_rejected()
            ),
        );
        return finish(cx, JobState::Failed);
    }
    let mut n_done = 0;
    let mut failed = false;
    for (step_idx, checked) in plan.steps().iter().enumerate() {
        let step = checked.step();
        cx.update(|job| job.steps[step_idx].state = StepState::Running);
        cx.event("step_started", Some(&step.id), step.title.clone());
        let job_id = cx.job_id;
        let mut progress = |message: String| cx.event("progress", Some(&step.id), message);
        let run = cx.port.run(&step.request, &mut progress);
        let verdict = if run.ok { "ok" } else { "failed" };
        (cx.audit)(
            AuditKind::StepRan,
            verdict,
            format!(
                "job {job_id} step {} ({}): {}{}",
                step.id,
                run.rule_id.as_deref().unwrap_or("no rule"),
                run.ran,
                run.exit_code
                    .map(|code| format!(" exit {code}"))
                    .unwrap_or_default()
            ),
        );
        let state = if run.ok {
            StepState::Done
        } else {
            StepState::Failed
        };
        let message = if run.ok {
            format!("done: {}", run.ran)
        } else {
            format!("failed: {}: {}", run.ran, run.output)
        };
        cx.update(|job| {
            let record = &mut job.steps[step_idx];
            record.state = state;
            record.rule_id = run.rule_id.clone();
            record.ran = Some(run.ran.clone());
            record.exit_code = run.exit_code;
            record.output = run.output.clone();
        });
        cx.event(
            if run.ok {
                "step_finished"
            } else {
                "step_failed"
            },
            Some(&step.id),
            message,
        );
        if !run.ok {
            failed = true;
            break;
        }
        n_done = step_idx + 1;
    }
    if !failed {
        cx.event("job_finished", None, "every step succeeded".into());
        return finish(cx, JobState::Succeeded);
    }
    let failed_idx = n_done;
    cx.update(|job| {
        for record in job.steps.iter_mut().skip(failed_idx + 1) {
            record.state = StepState::Skipped;
        }
    });
    let mut all_undone = true;
    // Rollbacks undo steps that succeeded, newest first; the failed step's own rollback is not
    // run, because it undoes a change that did not complete.
    for step_idx in (0..failed_idx).rev() {
        let checked = &plan.steps()[step_idx];
        let step = checked.step();
        let Some(rollback) = &step.rollback else {
            if step.effect != crate::plan::types::Effect::Read {
                all_undone = false;
            }
            cx.update(|job| job.steps[step_idx].state = StepState::NotUndone);
            cx.event(
                "rollback_skipped",
                Some(&step.id),
                "no rollback declared: this step stays done".into(),
            );
            continue;
        };
        cx.event("rollback_started", Some(&step.id), rollback.to_string());
        let mut progress = |message: String| cx.event("progress", Some(&step.id), message);
        let run = cx.port.run(rollback, &mut progress);
        (cx.audit)(
            AuditKind::RollbackRan,
            if run.ok { "ok" } else { "failed" },
            format!("job {} rollback of {}: {}", cx.job_id, step.id, run.ran),
        );
        cx.update(|job| {
            let record = &mut job.steps[step_idx];
            record.rollback_ran = Some(run.ran.clone());
            record.rollback_output = Some(run.output.clone());
            record.state = if run.ok {
                StepState::RolledBack
            } else {
                StepState::RollbackFailed
            };
        });
        if run.ok {
            cx.event(
                "rollback_finished",
                Some(&step.id),
                format!("undone: {}", run.ran),
            );
        } else {
            all_undone = false;
            cx.event(
                "rollback_failed",
                Some(&step.id),
                format!("rollback failed: {}: {}", run.ran, run.output),
            );
        }
    }
    let state = if all_undone {
        JobState::RolledBack
    } else {
        JobState::Failed
    };
    cx.event(
        "job_finished",
        None,
        match state {
            JobState::RolledBack => "a step failed; everything done was rolled back".into(),
            _ => "a step failed; some changes remain (see the steps)".into(),
        },
    );
    finish(cx, state)
}

fn finish(cx: &ApplyContext<'_>, state: JobState) -> JobState {
    let at = (cx.now)();
    cx.update(|job| {
        job.state = state;
        job.finished_at = Some(at);
    });
    (cx.audit)(
        AuditKind::JobFinished,
        match state {
            JobState::Succeeded => "ok",
            JobState::RolledBack => "rolled_back",
            _ => "failed",
        },
        format!("job {}", cx.job_id),
    );
    state
}
