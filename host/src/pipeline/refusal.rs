//! Why the pipeline did not do what it was asked: one variant per reason, with its data.
//!
//! A refusal is decided here and mapped to the API's status and body in one place, in
//! `http/` (`impl From<Refusal> for ApiError`). [`Refusal::code`] is the stable name of the
//! reason: the API's error code and the word the audit log records, so both say the same.

use super::MAX_INPUT_BYTES;
use super::port::PortError;
use crate::plugin::PluginError;
use crate::store::StoreError;

/// Why a plan was not made, a plan not applied, or a grant not changed.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// nosd has no `[pipeline]`: there is no agent to plan or apply with.
    #[error("no agent is configured for this nosd")]
    Unconfigured,
    #[error("no plugin named {name:?}")]
    UnknownPlugin { name: String },
    /// A grant or revoke named another component than the loaded one (audited).
    #[error(
        "plugin {name} is the component with sha256 {loaded}, not the one you reviewed; reload the list and review it again"
    )]
    HashMismatch { name: String, loaded: String },
    /// A plan asked of a plugin that is not granted and enabled.
    #[error("plugin {name} is not enabled and granted")]
    NotGranted { name: String },
    /// The plan's plugin was revoked or disabled after the plan was made (audited).
    #[error("plugin {name} was revoked or disabled since this plan was made")]
    GrantWithdrawn { name: String },
    /// The planner input is over [`MAX_INPUT_BYTES`].
    #[error("planner input of {n_bytes} bytes is over {MAX_INPUT_BYTES}")]
    InputTooLarge { n_bytes: usize },
    /// Facts could not be gathered (logged where it happened; the cause stays in the log).
    #[error("cannot gather facts through the agent")]
    AgentUnreachable(#[source] PortError),
    /// The planner trapped, ran out of fuel or time, or answered what the host cannot read.
    #[error("{0}")]
    PluginFailed(PluginError),
    /// The planner refused the input (audited).
    #[error("{reason}")]
    PlanRefused { plugin: String, reason: String },
    #[error("no such plan")]
    UnknownPlan { id: String },
    #[error("only the session that created a plan may apply it")]
    NotYours { id: String },
    /// The session's last login or re-authentication is older than `session.reauth_seconds`.
    #[error("re-authentication required")]
    ReauthRequired,
    #[error("plan expired {seconds_ago} s ago; plan again")]
    Expired { seconds_ago: u64 },
    #[error("{n_rejected} step(s) were rejected; this plan cannot be applied")]
    RejectedSteps { n_rejected: usize },
    #[error("type exactly {expected:?} to apply")]
    ConfirmationMismatch { expected: String },
    #[error("a job is already running on {pool}")]
    PoolBusy { pool: String },
    /// nosd was to apply, unattended, a plan with a destructive step or a rollback (see
    /// `admission::admit_unattended`); `steps` names them.
    #[error("step(s) {steps} destroy data or carry a rollback: only an admin applies this plan")]
    AttendedOnly { steps: String },
    /// A reading asked of a disk the facts do not list (or of a partition, not a disk).
    #[error("no disk named {name:?} in the facts")]
    UnknownDisk { name: String },
    /// A lock asked for a snapshot the fresh facts do not show in that pool.
    #[error("pool {pool} has no snapshot {path:?}")]
    UnknownSnapshot { pool: String, path: String },
    /// More snapshot locks than `pipeline::locks::MAX_LOCKS`.
    #[error("at most {max} snapshots can be locked")]
    TooManyLocks { max: usize },
    /// A reading the agent refused or did not run, or whose output does not parse.
    #[error("{0}")]
    ReadFailed(String),
    /// Freshly gathered facts do not match the plan's fingerprint.
    #[error("the devices changed since this plan was made; plan again")]
    Stale,
    /// The state directory could not be read or written: nosd's failure, not the caller's.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Refusal {
    /// The stable name of the reason (the API's error code; the audit log's word).
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Unconfigured => "pipeline.unavailable",
            Refusal::UnknownPlugin { .. } => "plugin.unknown",
            Refusal::HashMismatch { .. } => "plugin.hash_mismatch",
            Refusal::NotGranted { .. } | Refusal::GrantWithdrawn { .. } => "plugin.not_granted",
            Refusal::InputTooLarge { .. } => "request.too_large",
            Refusal::AgentUnreachable(_) => "agent.unavailable",
            Refusal::PluginFailed(_) => "plugin.failed",
            Refusal::PlanRefused { .. } => "plan.refused",
            Refusal::UnknownPlan { .. } => "plan.unknown",
            Refusal::NotYours { .. } => "plan.not_yours",
            Refusal::ReauthRequired => "auth.reauth_required",
            Refusal::Expired { .. } => "plan.expired",
            Refusal::RejectedSteps { .. } => "plan.rejected_steps",
            Refusal::ConfirmationMismatch { .. } => "plan.confirmation_mismatch",
            Refusal::PoolBusy { .. } => "pool.busy",
            Refusal::AttendedOnly { .. } => "plan.attended_only",
            Refusal::UnknownDisk { .. } => "disk.unknown",
            Refusal::UnknownSnapshot { .. } => "snapshot.unknown",
            Refusal::TooManyLocks { .. } => "snapshot.too_many_locks",
            Refusal::ReadFailed(_) => "agent.read_failed",
            Refusal::Stale => "plan.stale",
            Refusal::Store(_) => "internal",
        }
    }

    /// Logs a failure to gather facts and refuses with it.
    pub(super) fn unreachable(err: PortError) -> Refusal {
        tracing::error!(%err, "cannot gather facts");
        Refusal::AgentUnreachable(err)
    }
}
