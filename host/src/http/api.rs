//! The `/api/v1` request and response bodies: the one set of types at the API edge.
//!
//! Plain serde structs, so they can carry OpenAPI derives later; nothing below `http/` sees
//! them. Requests are `deny_unknown_fields` (a typo is a 400, not a silently ignored field).
//! Responses declare their fields in alphabetical order and serialize the domain records
//! they embed (facts, jobs, audit records, notices) through [`sorted`]: the API has always
//! answered with sorted keys at every depth, and clients and tests see the same bytes.

use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::audit::chain::Record;
use crate::auth::Notice;
use crate::facts::Facts;
use crate::pipeline::canonical::StepForm;
use crate::pipeline::jobs::{JobRecord, JobState};

/// Serializes a domain record with its keys sorted at every depth.
fn sorted<T: Serialize, S: Serializer>(value: &T, serializer: S) -> Result<S::Ok, S::Error> {
    serde_json::to_value(value)
        .map_err(serde::ser::Error::custom)?
        .serialize(serializer)
}

// ---- errors ----

/// Every refusal: `{"error":{"code","message"}}`.
#[derive(Debug, Serialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize)]
pub struct ErrorDetail {
    /// A stable, dotted code (`auth.failed`, `plan.stale`).
    pub code: &'static str,
    /// A public message; never internal detail.
    pub message: String,
}

// ---- first-run setup: /api/v1/setup ----

/// `GET /setup` while no admin exists.
#[derive(Debug, Serialize)]
pub struct SetupStatus {
    pub setup_required: bool,
}

/// `POST /setup/totp`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetupBeginRequest {
    pub token: String,
    pub username: String,
}

/// `POST /setup/admin`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetupCompleteRequest {
    pub token: String,
    pub username: String,
    pub password: String,
    pub code: String,
}

/// `POST /setup/admin` answered: the admin exists; its recovery codes are shown once.
#[derive(Debug, Serialize)]
pub struct SetupCompleted {
    pub recovery_codes: Vec<String>,
    pub username: String,
}

/// A new TOTP secret for an authenticator app (`POST /setup/totp`, `POST /auth/totp/enrol`).
#[derive(Debug, Serialize)]
pub struct TotpEnrolment {
    pub otpauth_uri: String,
    /// The `otpauth_uri` as an SVG QR code.
    pub qr_svg: String,
    /// The secret in base32, to type in by hand.
    pub secret: String,
}

// ---- identity: /api/v1/auth, /api/v1/me ----

/// `POST /auth/login`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
    /// A TOTP or recovery code, once TOTP is enrolled.
    #[serde(default)]
    pub code: Option<String>,
}

/// `POST /auth/login` answered (the tokens themselves are cookies).
#[derive(Debug, Serialize)]
pub struct LoginReply {
    /// The CSRF token to send as `x-nos-csrf` on unsafe requests.
    pub csrf_token: String,
    pub recovery_codes_left: usize,
    pub username: String,
}

/// `POST /auth/refresh` answered: the rotated CSRF token.
#[derive(Debug, Serialize)]
pub struct RefreshReply {
    pub csrf_token: String,
}

/// `POST /auth/reauth`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReauthRequest {
    pub password: String,
    pub code: String,
}

/// `POST /auth/password`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordRequest {
    pub new_password: String,
}

/// `POST /auth/totp/confirm`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    pub code: String,
}

/// `POST /auth/recovery-codes` answered: the new codes, shown once.
#[derive(Debug, Serialize)]
pub struct RecoveryCodes {
    pub recovery_codes: Vec<String>,
}

/// `GET /me`.
#[derive(Debug, Serialize)]
pub struct Me {
    /// When the session ends whatever its activity.
    pub expires_at: u64,
    /// The disks nosd shows are a fixture file (`[pipeline] fixture_facts`: the demo's dry-run
    /// mode, beside a `--dry-run` agent), not this machine's: every page says so.
    pub fixture_facts: bool,
    #[serde(serialize_with = "sorted")]
    pub notices: Vec<Notice>,
    /// Until when sensitive actions need no re-authentication.
    pub reauth_valid_until: u64,
    pub recovery_codes_left: usize,
    pub session_id: String,
    pub totp_enrolled: bool,
    pub username: String,
}

/// `GET /auth/sessions`.
#[derive(Debug, Serialize)]
pub struct Sessions {
    pub sessions: Vec<SessionEntry>,
}

/// One session of the user.
#[derive(Debug, Serialize)]
pub struct SessionEntry {
    pub client_ip: String,
    pub created_at: u64,
    /// Whether this is the session that asked.
    pub current: bool,
    /// A short label of the browser ("Chrome on Linux").
    pub device: String,
    pub id: String,
    pub last_seen_at: u64,
}

// ---- the allowlist: /api/v1/allowlist ----

/// `GET /allowlist`: every rule explained, and the audit's findings.
#[derive(Debug, Serialize)]
pub struct AllowlistView {
    pub findings: Vec<Finding>,
    /// The allowlist file read.
    pub path: String,
    pub rules: Vec<RuleEntry>,
}

#[derive(Debug, Serialize)]
pub struct RuleEntry {
    pub description: String,
    pub effect: &'static str,
    pub explain: String,
    pub id: String,
    /// `command` or `managed`.
    pub kind: &'static str,
}

#[derive(Debug, Serialize)]
pub struct Finding {
    pub code: &'static str,
    pub message: String,
    pub severity: &'static str,
    pub subject: String,
}

/// `POST /allowlist/check`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckRequest {
    /// The program and its arguments. Its size is bounded by the body limit; the matcher
    /// bounds token count and length again.
    pub argv: Vec<String>,
}

/// `POST /allowlist/check` answered.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum CheckReply {
    Allowed {
        /// Always `true`.
        allowed: bool,
        /// The canonical argv the agent would run.
        argv: Vec<String>,
        effect: &'static str,
        rule: String,
    },
    Rejected {
        /// Always `false`.
        allowed: bool,
        reason: String,
        /// The rule that got furthest, when the program was known.
        rule: Option<String>,
        /// The argv index of the token that failed.
        token: Option<usize>,
    },
}

// ---- the storage pipeline: plugins, facts, plans, jobs, audit ----

/// `GET /plugins`.
#[derive(Debug, Serialize)]
pub struct Plugins {
    pub plugins: Vec<PluginView>,
    /// Configured planners that did not load, each with its reason.
    pub failed: Vec<FailedPluginView>,
}

/// A configured planner that did not load at start.
#[derive(Debug, Serialize)]
pub struct FailedPluginView {
    pub path: String,
    pub reason: String,
}

/// One planner: its manifest, its grant and what its `describe()` says. A plugin whose
/// `describe()` fails is still listed, with `describe_error`, so it can be revoked.
#[derive(Debug, Serialize)]
pub struct PluginView {
    pub api_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub describe_error: Option<String>,
    pub enabled: bool,
    pub granted: bool,
    /// The planner's input schema (what the UI builds its form from), in the planner's own text
    /// so its properties keep their order; absent if not JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_schema: Option<Box<RawValue>>,
    pub kind: String,
    pub name: String,
    pub scope: Vec<String>,
    pub sha256: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    pub version: String,
}

/// `POST /plugins/{name}/grant` and `/revoke`: the component hash the admin reviewed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantRequest {
    pub sha256: String,
}

/// `POST /plugins/{name}/enable`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnableRequest {
    pub enabled: bool,
}

/// A plugin's grant after a change.
#[derive(Debug, Serialize)]
pub struct GrantView {
    pub enabled: bool,
    pub granted: bool,
    pub name: String,
    pub sha256: String,
}

/// `GET /facts?refresh=true`.
#[derive(Debug, Deserialize)]
pub struct FactsQuery {
    /// Gather now instead of serving the few seconds old cache.
    #[serde(default)]
    pub refresh: bool,
}

/// `GET /facts` answered.
#[derive(Debug, Serialize)]
pub struct FactsView {
    #[serde(serialize_with = "sorted")]
    pub facts: Facts,
}

/// `GET /disks/{name}/smart` answered: `health::smart`'s judgement of the reading made now.
#[derive(Debug, Serialize)]
pub struct SmartView {
    pub disk: String,
    /// `ok`, `warning`, `failing` or `not-available`.
    pub state: &'static str,
    /// Why, one sentence each (smartctl's own messages when SMART is not available).
    pub reasons: Vec<String>,
    pub model: Option<String>,
    pub serial: Option<String>,
    pub protocol: Option<String>,
    pub temperature_celsius: Option<u64>,
    pub power_on_hours: Option<u64>,
    /// smartctl's exit status, a bit mask (smartctl(8)).
    pub exit_status: u8,
}

/// `POST /plans`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanRequest {
    pub plugin: String,
    /// The planner's input: a JSON object (or a string holding one).
    pub input: Value,
}

/// `POST /plans` and `GET /plans/{id}` answered.
#[derive(Debug, Serialize)]
pub struct PlanReply {
    pub plan: PlanView,
}

/// A stored plan as the API shows it.
#[derive(Debug, Serialize)]
pub struct PlanView {
    /// Whether every step was allowed (a plan with a rejected step cannot be applied).
    pub applicable: bool,
    /// The words to type to apply it.
    pub confirmation: String,
    pub created_at: u64,
    pub expires_at: u64,
    pub id: String,
    pub n_rejected: usize,
    pub plugin: String,
    /// The pool its job locks.
    pub pool: String,
    /// The sha256 of the plan's canonical form (plugin, input, steps with their verdicts).
    pub sha256: String,
    /// Each step in its canonical form, the one the sha256 covers.
    pub steps: Vec<StepForm>,
    pub warnings: Vec<String>,
}

/// `POST /plans/{id}/apply`: the confirmation words, never steps.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplyRequest {
    pub confirm: String,
}

/// `POST /plans/{id}/apply` answered (202): the job that runs it.
#[derive(Debug, Serialize)]
pub struct JobStarted {
    pub job: String,
}

/// `GET /jobs`: the newest jobs, without steps and events.
#[derive(Debug, Serialize)]
pub struct Jobs {
    pub jobs: Vec<JobSummary>,
}

#[derive(Debug, Serialize)]
pub struct JobSummary {
    pub created_at: u64,
    pub finished_at: Option<u64>,
    pub id: String,
    pub plugin: String,
    pub pool: String,
    pub state: JobState,
    pub username: String,
}

/// `GET /jobs/{id}`: the whole record.
#[derive(Debug, Serialize)]
pub struct JobView {
    #[serde(serialize_with = "sorted")]
    pub job: JobRecord,
}

/// The last event of `GET /jobs/{id}/events` (`event: end`).
#[derive(Debug, Serialize)]
pub struct JobEnd {
    pub state: JobState,
}

/// `GET /audit?username=&kind=&verdict=&since=&until=&text=&limit=`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    pub username: Option<String>,
    pub kind: Option<String>,
    pub verdict: Option<String>,
    pub since: Option<u64>,
    pub until: Option<u64>,
    /// A substring of the detail.
    pub text: Option<String>,
    pub limit: Option<usize>,
}

/// `GET /audit` answered: the matching records and whether the whole chain verifies.
#[derive(Debug, Serialize)]
pub struct AuditView {
    pub chain: ChainStatus,
    #[serde(serialize_with = "sorted")]
    pub records: Vec<Record>,
}

/// The audit chain's verification.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum ChainStatus {
    Verified {
        files: usize,
        /// The last record's hash: the anchor to copy elsewhere.
        last_hash: String,
        records: u64,
        /// Always `true`.
        verified: bool,
    },
    Broken {
        /// The first bad entry.
        error: String,
        /// Always `false`.
        verified: bool,
    },
}

impl From<crate::auth::setup::TotpEnrolment> for TotpEnrolment {
    fn from(enrolment: crate::auth::setup::TotpEnrolment) -> TotpEnrolment {
        TotpEnrolment {
            otpauth_uri: enrolment.otpauth_uri,
            qr_svg: enrolment.qr_svg,
            secret: enrolment.secret_base32,
        }
    }
}

// ---- pools: /api/v1/pools ----

/// `GET /pools` answered: every registered pool, and the btrfs filesystems that could be
/// imported (on the disks, not registered, not mounted).
#[derive(Debug, Serialize)]
pub struct PoolsView {
    pub importable: Vec<ImportableView>,
    /// When the machine was last observed (Unix seconds).
    pub observed_at: u64,
    pub pools: Vec<PoolView>,
}

/// One registered pool (`GET /pools/{uuid}`, and each entry of `GET /pools`).
#[derive(Debug, Serialize)]
pub struct PoolView {
    pub data_profile: String,
    pub encrypted: bool,
    /// `ok`, `scrub-overdue`, `nearly-full`, `errors` or `degraded`.
    pub health: &'static str,
    pub label: Option<String>,
    pub last_good: Option<LastGoodView>,
    pub last_scrub: Option<ScrubView>,
    /// Every scrub nos has seen, newest first (at most 12).
    pub scrub_history: Vec<ScrubView>,
    pub members: Vec<MemberView>,
    pub metadata_profile: String,
    /// Where nos mounts it (its registered mount point).
    pub mountpoint: String,
    /// Whether it is mounted now, anywhere (a pool with members missing may be, degraded).
    pub mounted: bool,
    /// Where it is mounted instead, when `state` is `mounted-elsewhere` (`null` there when it
    /// is mounted outside the agent's view, in another mount namespace).
    pub mounted_at: Option<String>,
    /// The input of a mount plan, when `state` is `not-mounted`.
    pub mount_input: Option<MountInputView>,
    /// Every finding behind `health`, as a sentence, worst first.
    pub reasons: Vec<String>,
    /// `mounted`, `not-mounted`, `mounted-elsewhere` or `members-missing`.
    pub state: &'static str,
    pub uuid: String,
}

#[derive(Debug, Serialize)]
pub struct MemberView {
    pub by_id: Option<String>,
    /// The latest device error counters (`null` when not read: the pool is not mounted).
    pub counters: Option<CountersView>,
    pub devid: u64,
    pub missing: bool,
    pub path: String,
}

/// `btrfs device stats`' five counters, by btrfs's names.
#[derive(Debug, Serialize)]
pub struct CountersView {
    pub corruption_errs: u64,
    pub flush_io_errs: u64,
    pub generation_errs: u64,
    pub read_io_errs: u64,
    pub write_io_errs: u64,
}

#[derive(Debug, Serialize)]
pub struct ScrubView {
    pub bytes_scrubbed: u64,
    pub corrected_errors: u64,
    pub duration_seconds: u64,
    pub resumed: bool,
    /// Unix seconds of the start (or the last resume).
    pub since: u64,
    /// `running`, `aborted`, `finished` or `interrupted`.
    pub state: String,
    pub uncorrectable_errors: u64,
}

#[derive(Debug, Serialize)]
pub struct LastGoodView {
    pub at: u64,
    pub n_members: usize,
    pub size_bytes: u64,
}

#[derive(Debug, Serialize)]
pub struct MountInputView {
    pub mountpoint: String,
    pub uuid: String,
}

#[derive(Debug, Serialize)]
pub struct ImportableView {
    pub devices: Vec<String>,
    pub label: Option<String>,
    pub n_missing: u64,
    pub total_devices: Option<u64>,
    pub uuid: String,
}

/// `GET /pools?refresh=true`.
#[derive(Debug, Deserialize)]
pub struct PoolsQuery {
    /// Observe the machine now instead of serving the few seconds old facts.
    #[serde(default)]
    pub refresh: bool,
}

// ---- shares and snapshots: /api/v1/pools/{uuid}/shares… ----

/// `GET /pools/{uuid}/shares`: the shares of a mounted pool, from the latest facts.
#[derive(Debug, Serialize)]
pub struct SharesView {
    pub mountpoint: String,
    /// Subvolumes that are neither shares nor nos's snapshots (another tool's): shown, never
    /// touched.
    pub other: Vec<String>,
    pub pool_uuid: String,
    pub shares: Vec<ShareView>,
}

/// One share; its size is not known without quotas, which nos does not turn on.
#[derive(Debug, Serialize)]
pub struct ShareView {
    pub id: u64,
    /// The newest snapshot's name, if any.
    pub latest_snapshot: Option<String>,
    pub locked_snapshots: usize,
    pub name: String,
    pub path: String,
    pub snapshots: usize,
}

/// `GET /pools/{uuid}/shares/{name}/snapshots`: newest first.
#[derive(Debug, Serialize)]
pub struct SnapshotsView {
    pub share: String,
    pub snapshots: Vec<SnapshotView>,
}

#[derive(Debug, Serialize)]
pub struct SnapshotView {
    pub id: u64,
    pub locked: bool,
    pub name: String,
    /// Relative to the pool: what `POST …/snapshots/lock` takes.
    pub path: String,
    /// The tag in its name (a schedule's, `replaced`, …).
    pub tag: Option<String>,
    /// From its name (UTC); `None` for a name nos did not make.
    pub taken_at: Option<i64>,
}

/// `POST /pools/{uuid}/snapshots/lock`: lock or unlock one snapshot. An unlock needs a recent
/// re-authentication (it makes the snapshot deletable again).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockRequest {
    pub locked: bool,
    pub path: String,
}

/// A lock request answered.
#[derive(Debug, Serialize)]
pub struct LockView {
    pub locked: bool,
    pub path: String,
}

// ---- alerts: /api/v1/alerts ----

/// `GET /alerts`: open alerts first (newest first), then cleared ones (most recently cleared
/// first), and the counts the dashboard's badge shows.
#[derive(Debug, Serialize)]
pub struct AlertsView {
    pub alerts: Vec<AlertView>,
    /// Alerts raised or acknowledged, not cleared.
    pub n_open: usize,
    /// Alerts raised and not acknowledged (the badge).
    pub n_unacknowledged: usize,
}

/// One alert. `kind` is one of `pool-degraded`, `device-missing`, `device-errors-grew`,
/// `scrub-found-errors`, `scrub-overdue`, `pool-nearly-full`, `pool-full`, `job-failed`,
/// `job-stalled`, `schedule-held`; `state` one of `raised`, `acknowledged`, `cleared`; `severity` one of
/// `notice`, `warning`, `critical`.
#[derive(Debug, Serialize)]
pub struct AlertView {
    pub acknowledged_at: Option<u64>,
    pub acknowledged_by: Option<String>,
    pub cleared_at: Option<u64>,
    pub first_seen: u64,
    pub id: u64,
    pub kind: &'static str,
    pub last_seen: u64,
    pub message: String,
    pub severity: &'static str,
    pub state: &'static str,
    /// `{"type":"pool","pool_uuid","pool_label"}`, `{"type":"device","pool_uuid",
    /// "pool_label","devid","path"}`, `{"type":"job","job_id","pool"}` or
    /// `{"type":"schedule","schedule_id","planner"}`.
    #[serde(serialize_with = "sorted")]
    pub subject: crate::alerts::Subject,
}

/// `POST /alerts/{id}/ack` answered: the alert afterwards (an event is also cleared).
#[derive(Debug, Serialize)]
pub struct AlertAcked {
    pub alert: AlertView,
}

impl From<&crate::alerts::Alert> for AlertView {
    fn from(alert: &crate::alerts::Alert) -> AlertView {
        AlertView {
            acknowledged_at: alert.acknowledged.as_ref().map(|ack| ack.at),
            acknowledged_by: alert.acknowledged.as_ref().map(|ack| ack.by.clone()),
            cleared_at: alert.cleared_at,
            first_seen: alert.first_seen,
            id: alert.id,
            kind: alert.kind.as_str(),
            last_seen: alert.last_seen,
            message: alert.message.clone(),
            severity: alert.severity.as_str(),
            state: alert.state.as_str(),
            subject: alert.subject.clone(),
        }
    }
}

// ---- schedules: /api/v1/schedules ----

/// `POST /schedules`: a standing approval of `planner` on `input` (a JSON object without
/// `tag`: nosd adds the schedule's own when the planner takes one), applying unattended only
/// plans whose every step is of one of `rule_ids`, every `period_seconds` (300..=31622400).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleRequest {
    pub planner: String,
    pub input: serde_json::Map<String, Value>,
    pub rule_ids: Vec<String>,
    pub period_seconds: u64,
}

/// `PUT /schedules/{id}`: new terms for a schedule (its planner stays); its revision goes up.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleEditRequest {
    pub input: serde_json::Map<String, Value>,
    pub rule_ids: Vec<String>,
    pub period_seconds: u64,
}

/// `GET /schedules`: every schedule, oldest first.
#[derive(Debug, Serialize)]
pub struct SchedulesView {
    pub schedules: Vec<ScheduleView>,
}

/// One schedule: its terms, when it runs next and what its last run did (`last_run.outcome`
/// is `{"result": "applied", "job_id"}`, `{"result": "held", "reasons", "steps"}`,
/// `{"result": "nothing-to-do"}` or `{"result": "failed", "reason"}`).
#[derive(Debug, Serialize)]
pub struct ScheduleView {
    pub created_at: u64,
    pub created_by: String,
    pub id: String,
    #[serde(serialize_with = "sorted")]
    pub input: serde_json::Map<String, Value>,
    #[serde(serialize_with = "sorted")]
    pub last_run: Option<crate::schedules::LastRun>,
    /// When the first check at or after this time runs it (it may be in the past: due now).
    pub next_run: u64,
    pub period_seconds: u64,
    pub planner: String,
    pub revision: u32,
    pub rule_ids: Vec<String>,
    pub tag: String,
    pub updated_at: u64,
    pub updated_by: String,
}

/// `POST /schedules` and `PUT /schedules/{id}` answered: the schedule afterwards.
#[derive(Debug, Serialize)]
pub struct ScheduleReply {
    pub schedule: ScheduleView,
}

/// `DELETE /schedules/{id}` answered: the schedule is gone.
#[derive(Debug, Serialize)]
pub struct ScheduleRevoked {
    pub id: String,
    pub revoked: bool,
}

impl From<&crate::schedules::Schedule> for ScheduleView {
    fn from(schedule: &crate::schedules::Schedule) -> ScheduleView {
        ScheduleView {
            created_at: schedule.created_at,
            created_by: schedule.created_by.clone(),
            id: schedule.id.clone(),
            input: schedule.input.clone(),
            last_run: schedule.last_run.clone(),
            next_run: crate::schedules::model::next_run(schedule),
            period_seconds: schedule.period_seconds,
            planner: schedule.planner.clone(),
            revision: schedule.revision,
            rule_ids: schedule.rule_ids.clone(),
            tag: schedule.tag.clone(),
            updated_at: schedule.updated_at,
            updated_by: schedule.updated_by.clone(),
        }
    }
}
