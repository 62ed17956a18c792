//! The pipeline's application layer: making a plan, admitting one to apply, starting its job.
//!
//! Every check of the plan → apply path is here, in the order it runs, and every refusal is a
//! [`Refusal`] (audited where the audit log wants it); `http/` only extracts the request and
//! maps the answer. A plan is applied by the admin session that made it ([`admit_apply`]), or,
//! for what nosd schedules itself (the scrub schedule), by nosd without a human
//! ([`admit_unattended`]): then no step may be destructive or carry a rollback, and every other
//! check is the same. [`create_plan`] and [`admit_apply`] block (they gather facts through the
//! agent and call the planner): run them on the blocking pool. This module knows no HTTP.

use std::sync::Arc;

use super::jobs::{JobRecord, JobState, PoolGuard, StepRecord};
use super::{MAX_INPUT_BYTES, Pipeline, Refusal, StoredPlan};
use crate::audit::AuditKind;
use crate::clock::UnixSeconds;
use crate::plan::check::{CheckedPlan, StepVerdict};
use crate::plan::types::Effect;
use crate::store::StoreError;

/// Who asks: the session that makes or applies a plan, or nosd itself
/// ([`Requester::unattended`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requester {
    pub session_id: String,
    pub username: String,
    /// Until when the session's last login or re-authentication unlocks applying a plan.
    pub reauth_valid_until: UnixSeconds,
}

/// The session id of every unattended requester starts with this; a real session's id is
/// random hexadecimal, so it never does.
const UNATTENDED_SESSION_PREFIX: &str = "unattended:";

impl Requester {
    /// nosd itself, doing `task` (`scrub-schedule`): no session and never re-authenticated,
    /// so [`admit_apply`] refuses it; the audit log names it `nosd:<task>`, a name no account
    /// can have (`auth::valid_username` refuses `:`).
    pub fn unattended(task: &str) -> Requester {
        Requester {
            session_id: format!("{UNATTENDED_SESSION_PREFIX}{task}"),
            username: format!("nosd:{task}"),
            reauth_valid_until: 0,
        }
    }

    fn is_unattended(&self) -> bool {
        self.session_id.starts_with(UNATTENDED_SESSION_PREFIX)
    }
}

/// What stands in for an admin's presence at apply time.
enum Approval<'a> {
    /// The session re-authenticated recently and typed these words.
    Admin { confirm: &'a str },
    /// nosd applies a plan it made itself: nothing destructive, nothing to roll back.
    Unattended,
}

/// A plan that passed every check of [`admit_apply`], with its pool locked: hand it to
/// [`start_job`]. Dropping it releases the pool; the plan is used up either way.
#[must_use = "an admitted plan runs only through start_job"]
pub struct Admitted {
    pub plan: Arc<StoredPlan>,
    /// `None` for a plan that runs beside jobs ([`runs_beside_jobs`]).
    guard: Option<PoolGuard>,
    admitted_at: UnixSeconds,
}

/// Makes a plan with planner `plugin_name` for `input` (the planner's JSON text) on freshly
/// gathered facts, judges every step and stores the checked plan; audits each verdict.
pub fn create_plan(
    pipeline: &Pipeline,
    requester: &Requester,
    plugin_name: &str,
    input: String,
) -> Result<Arc<StoredPlan>, Refusal> {
    if input.len() > MAX_INPUT_BYTES {
        return Err(Refusal::InputTooLarge {
            n_bytes: input.len(),
        });
    }
    let plugin = pipeline
        .plugins
        .get(plugin_name)
        .ok_or_else(|| Refusal::UnknownPlugin {
            name: plugin_name.into(),
        })?;
    if !pipeline.grant(plugin_name).usable() {
        return Err(Refusal::NotGranted {
            name: plugin_name.into(),
        });
    }
    let now = pipeline.now();
    let mut facts = pipeline.fresh_facts(now).map_err(Refusal::unreachable)?;
    facts.fresh_uuids = (0..8).map(|_| super::random_uuid()).collect();
    facts.now_unix_seconds = now;
    let call = plugin.plan(&facts, &input).map_err(Refusal::PluginFailed)?;
    let plan = call.answer.map_err(|refusal| {
        pipeline.auditor.decision(
            AuditKind::PlanCreated,
            Some(&requester.username),
            "refused",
            format!("plugin {plugin_name}: {refusal}"),
        );
        Refusal::PlanRefused {
            plugin: plugin_name.into(),
            reason: refusal.to_string(),
        }
    })?;
    let checked =
        crate::plan::check::check(plan, &pipeline.allowlist, &plugin.manifest().scope, &facts);
    let stored = StoredPlan {
        id: super::random_id(),
        sha256: super::canonical::sha256(plugin_name, &input, &checked),
        plugin: plugin_name.into(),
        pool: super::pool_name(&input),
        lock: super::pool_key(&input, &facts),
        input,
        session_id: requester.session_id.clone(),
        username: requester.username.clone(),
        created_at: now,
        expires_at: now + pipeline.plan_ttl_seconds,
        facts_fingerprint: super::facts_fingerprint(&facts, &checked),
        confirmation: super::confirmation_of(&checked),
        checked: Arc::new(checked),
    };
    for checked_step in stored.checked.steps() {
        let (verdict, why) = match checked_step.verdict() {
            StepVerdict::Allowed { rule_id, canonical } => {
                ("allowed", format!("{rule_id}: {canonical}"))
            }
            StepVerdict::Rejected { reason } => ("rejected", reason.clone()),
        };
        pipeline.auditor.decision(
            AuditKind::PlanCreated,
            Some(&requester.username),
            verdict,
            format!("plan {} step {}: {why}", stored.id, checked_step.step().id),
        );
    }
    pipeline.auditor.decision(
        AuditKind::PlanCreated,
        Some(&requester.username),
        if stored.checked.all_allowed() {
            "allowed"
        } else {
            "rejected"
        },
        format!(
            "plan {} sha256 {} by plugin {} for {}",
            stored.id, stored.sha256, stored.plugin, stored.pool
        ),
    );
    Ok(pipeline.store_plan(stored))
}

/// Decides whether `requester` may apply plan `plan_id` with the words `confirm`, in this
/// order: the plan exists, is the requester's session's, its plugin is still granted and
/// enabled, the session re-authenticated recently, the plan has not expired, no step was
/// rejected, the words are exactly the plan's, its pool is free, and freshly gathered facts
/// match its fingerprint. Every refusal but an unreachable agent is audited. On admission the
/// confirmation is audited and the plan is used up: it cannot be applied a second time.
pub fn admit_apply(
    pipeline: &Pipeline,
    requester: &Requester,
    plan_id: &str,
    confirm: &str,
) -> Result<Admitted, Refusal> {
    admit(
        pipeline,
        requester,
        plan_id,
        Approval::Admin { confirm },
        &format!("confirmed {confirm:?}"),
    )
}

/// [`admit_apply`] for a plan nosd made itself with an unattended `requester`
/// ([`Requester::unattended`]): instead of a recent re-authentication and typed words, no step
/// may be destructive or carry a rollback ([`Refusal::AttendedOnly`]); every other check, the
/// audit and the one use are the same. A plan made by a session is not the unattended
/// requester's ([`Refusal::NotYours`]), and an unattended requester's plan is refused by
/// [`admit_apply`] (never re-authenticated).
pub fn admit_unattended(
    pipeline: &Pipeline,
    requester: &Requester,
    plan_id: &str,
) -> Result<Admitted, Refusal> {
    if !requester.is_unattended() {
        return Err(Refusal::NotYours { id: plan_id.into() });
    }
    admit(
        pipeline,
        requester,
        plan_id,
        Approval::Unattended,
        "unattended: no step is destructive or carries a rollback",
    )
}

fn admit(
    pipeline: &Pipeline,
    requester: &Requester,
    plan_id: &str,
    approval: Approval<'_>,
    confirmed: &str,
) -> Result<Admitted, Refusal> {
    let admitted = judge_apply(pipeline, requester, plan_id, approval).inspect_err(|refusal| {
        let detail = match refusal {
            Refusal::AgentUnreachable(_) | Refusal::Store(_) => return,
            Refusal::ReauthRequired => format!("plan {plan_id}: {}", refusal.code()),
            refusal => format!("plan {plan_id}: {}: {refusal}", refusal.code()),
        };
        pipeline.auditor.decision(
            AuditKind::PlanApplyRefused,
            Some(&requester.username),
            "refused",
            detail,
        );
    })?;
    let plan = &admitted.plan;
    pipeline.auditor.decision(
        AuditKind::PlanConfirmed,
        Some(&requester.username),
        "confirmed",
        format!("plan {} sha256 {}: {confirmed}", plan.id, plan.sha256),
    );
    crate::unpoisoned::lock(&pipeline.plans).remove(&plan.id);
    Ok(admitted)
}

fn judge_apply(
    pipeline: &Pipeline,
    requester: &Requester,
    plan_id: &str,
    approval: Approval<'_>,
) -> Result<Admitted, Refusal> {
    let plan = pipeline
        .plan(plan_id)
        .ok_or_else(|| Refusal::UnknownPlan { id: plan_id.into() })?;
    if plan.session_id != requester.session_id {
        return Err(Refusal::NotYours {
            id: plan.id.clone(),
        });
    }
    if !pipeline.grant(&plan.plugin).usable() {
        return Err(Refusal::GrantWithdrawn {
            name: plan.plugin.clone(),
        });
    }
    let now = pipeline.now();
    match approval {
        Approval::Admin { .. } if now > requester.reauth_valid_until => {
            return Err(Refusal::ReauthRequired);
        }
        Approval::Admin { .. } => {}
        Approval::Unattended => attended_only(&plan.checked)?,
    }
    if now > plan.expires_at {
        return Err(Refusal::Expired {
            seconds_ago: now - plan.expires_at,
        });
    }
    if !plan.checked.all_allowed() {
        return Err(Refusal::RejectedSteps {
            n_rejected: plan.checked.n_rejected(),
        });
    }
    if let Approval::Admin { confirm } = approval
        && confirm != plan.confirmation
    {
        return Err(Refusal::ConfirmationMismatch {
            expected: plan.confirmation.clone(),
        });
    }
    let guard = match runs_beside_jobs(&plan.checked, &pipeline.allowlist) {
        true => None,
        false => {
            Some(
                pipeline
                    .jobs
                    .try_lock_pool(&plan.lock)
                    .ok_or_else(|| Refusal::PoolBusy {
                        pool: plan.pool.clone(),
                    })?,
            )
        }
    };
    let facts = pipeline.fresh_facts(now).map_err(Refusal::unreachable)?;
    if super::facts_fingerprint(&facts, &plan.checked) != plan.facts_fingerprint {
        return Err(Refusal::Stale);
    }
    Ok(Admitted {
        plan,
        guard,
        admitted_at: now,
    })
}

/// Whether a plan may run while a job holds its pool: every step only reads or is of a rule
/// the allowlist marks `beside_jobs` (cancelling the scrub or balance a running job waits for),
/// and every rollback likewise. Such a plan takes no pool lock, so the cancel of a running scrub
/// is not refused as `pool.busy`.
pub fn runs_beside_jobs(plan: &CheckedPlan, allowlist: &nos_allowlist::Allowlist) -> bool {
    plan.steps().iter().all(|checked| {
        let step = checked.step();
        let beside = match checked.verdict() {
            crate::plan::check::StepVerdict::Allowed { rule_id, .. } => allowlist
                .rule(rule_id)
                .is_some_and(|rule| rule.beside_jobs || rule.effect == nos_allowlist::Effect::Read),
            crate::plan::check::StepVerdict::Rejected { .. } => false,
        };
        beside && step.rollback.is_none()
    })
}

/// Refuses a plan no one but an admin may apply: a step that is destructive (a checked step's
/// effect is at least its rule's) or carries a rollback (a rollback's own effect is not
/// judged).
fn attended_only(plan: &CheckedPlan) -> Result<(), Refusal> {
    let steps: Vec<&str> = plan
        .steps()
        .iter()
        .map(|checked| checked.step())
        .filter(|step| step.effect == Effect::Destructive || step.rollback.is_some())
        .map(|step| step.id.as_str())
        .collect();
    if steps.is_empty() {
        Ok(())
    } else {
        Err(Refusal::AttendedOnly {
            steps: steps.join(", "),
        })
    }
}

/// Records a job for an admitted plan and runs it on the blocking pool; returns the job's id
/// at once. The pool stays locked until the job's end is recorded (or its thread unwinds), and
/// every step goes to the audit log as the plan's creator's.
pub fn start_job(pipeline: &Arc<Pipeline>, admitted: Admitted) -> Result<String, StoreError> {
    let Admitted {
        plan,
        guard,
        admitted_at,
    } = admitted;
    let job_id = super::random_id();
    pipeline.jobs.insert(JobRecord {
        id: job_id.clone(),
        plan_id: plan.id.clone(),
        plan_sha256: plan.sha256.clone(),
        plugin: plan.plugin.clone(),
        pool: plan.pool.clone(),
        username: plan.username.clone(),
        created_at: admitted_at,
        finished_at: None,
        state: JobState::Running,
        steps: plan
            .checked
            .steps()
            .iter()
            .map(StepRecord::pending)
            .collect(),
        events: Vec::new(),
    })?;
    let job_pipeline = pipeline.clone();
    let run_id = job_id.clone();
    tokio::task::spawn_blocking(move || {
        let _holding = guard.map(|guard| job_pipeline.jobs.hold(&run_id, guard));
        let now = || job_pipeline.now();
        let audit = |kind: AuditKind, verdict: &str, detail: String| {
            job_pipeline
                .auditor
                .decision(kind, Some(&plan.username), verdict, detail);
        };
        super::apply::execute(
            &plan.checked,
            &super::apply::ApplyContext {
                port: job_pipeline.port.as_ref(),
                jobs: &job_pipeline.jobs,
                job_id: &run_id,
                now: &now,
                audit: &audit,
            },
        );
        job_pipeline.tell_removed_fstab_entries(&plan.checked, &run_id);
        // What the job changed is on the machine now: the next reader observes it.
        job_pipeline.drop_cached_facts();
    });
    Ok(job_id)
}

#[cfg(test)]
mod tests;
