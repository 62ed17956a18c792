//! `/api/v1` plugins, facts, plans, jobs and audit: the storage pipeline's HTTP surface.
//!
//! Every route needs a live session (`AuthSession`, which also checks the CSRF token on unsafe
//! methods); granting plugins and applying plans also need a re-authentication within
//! `session.reauth_seconds`. A plan is applied by id only: the body carries the confirmation
//! words, never steps. Refusals are typed `{"error":{code,message}}` bodies and run nothing.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::audit::{AuditEvent, AuditKind};
use crate::http::error::ApiError;
use crate::http::extract::{AppJson, AuthSession};
use crate::pipeline::jobs::{JobRecord, JobState, StepRecord};
use crate::pipeline::{self, Pipeline, StoredPlan};
use crate::plugin::Planner;
use crate::state::AppState;
use crate::store::StateFile;

/// At most this many bytes of planner input.
pub const MAX_INPUT_BYTES: usize = 16 * 1024;
/// At most this many records per `GET /audit` (default 200).
pub const MAX_AUDIT_RECORDS: usize = 1000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/plugins", get(list_plugins))
        .route("/api/v1/plugins/{name}/grant", post(grant_plugin))
        .route("/api/v1/plugins/{name}/revoke", post(revoke_plugin))
        .route("/api/v1/plugins/{name}/enable", post(enable_plugin))
        .route("/api/v1/facts", get(get_facts))
        .route("/api/v1/plans", post(create_plan))
        .route("/api/v1/plans/{id}", get(get_plan))
        .route("/api/v1/plans/{id}/apply", post(apply_plan))
        .route("/api/v1/jobs", get(list_jobs))
        .route("/api/v1/jobs/{id}", get(get_job))
        .route("/api/v1/jobs/{id}/events", get(job_events))
        .route("/api/v1/audit", get(get_audit))
}

fn refused(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::Refused {
        status,
        code,
        message: message.into(),
    }
}

fn pipeline_of(state: &AppState) -> Result<Arc<Pipeline>, ApiError> {
    state.pipeline.get().cloned().ok_or_else(|| {
        refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "pipeline.unavailable",
            "no agent is configured for this nosd",
        )
    })
}

fn record(state: &AppState, session: &AuthSession, kind: AuditKind, verdict: &str, detail: String) {
    state.audit.record(AuditEvent {
        at: state.now(),
        kind,
        username: Some(session.family.username.clone()),
        client: None,
        verdict: Some(verdict.to_string()),
        detail,
    });
}

/// What `plugins.json` holds: grants and enablement by component sha256, so a changed
/// component is a new plugin that nobody granted.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct PluginsFile {
    pub by_sha256: BTreeMap<String, PluginGrant>,
}

#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize)]
pub struct PluginGrant {
    pub enabled: bool,
    pub granted: bool,
}

async fn list_plugins(
    State(state): State<AppState>,
    _session: AuthSession,
) -> Result<Json<Value>, ApiError> {
    let pipeline = pipeline_of(&state)?;
    let entries: Vec<(String, Arc<Planner>, bool, bool)> = pipeline::lock(&pipeline.plugins)
        .iter()
        .map(|(name, entry)| {
            (
                name.clone(),
                entry.plugin.clone(),
                entry.granted,
                entry.enabled,
            )
        })
        .collect();
    // `describe()` is a Wasm call: off the async workers, outside the plugin table's lock.
    let list = tokio::task::spawn_blocking(move || {
        entries
            .into_iter()
            .map(|(name, plugin, granted, enabled)| plugin_json(&name, &plugin, granted, enabled))
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|err| ApiError::Internal(err.to_string()))?;
    Ok(Json(json!({ "plugins": list })))
}

/// One plugin as `GET /plugins` lists it: the manifest, the grant, and what `describe()` says
/// (summary and input schema, from which the UI builds the planner's form). A plugin whose
/// `describe()` fails is still listed, with `describe_error`, so it can be revoked.
fn plugin_json(name: &str, plugin: &Planner, granted: bool, enabled: bool) -> Value {
    let manifest = plugin.manifest();
    let mut out = json!({
        "name": name,
        "version": manifest.version,
        "kind": format!("{:?}", manifest.kind).to_lowercase(),
        "api_version": manifest.api_version.to_string(),
        "sha256": manifest.sha256,
        "scope": manifest.scope.iter().collect::<Vec<_>>(),
        "granted": granted,
        "enabled": enabled,
    });
    match plugin.describe() {
        Ok(info) => {
            out["summary"] = json!(info.summary);
            // Bounded by MAX_INPUT_SCHEMA_BYTES at describe(); not JSON is shown as no form.
            out["input_schema"] = serde_json::from_str(&info.input_schema).unwrap_or(Value::Null);
        }
        Err(err) => out["describe_error"] = json!(err.to_string()),
    }
    out
}

/// Grant and revoke name the component hash the admin reviewed: a grant for a component
/// that is not the loaded one is refused, never transferred.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantBody {
    sha256: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnableBody {
    enabled: bool,
}

/// Applies `change` to plugin `name` (after a recent re-authentication, and only when
/// `expect_sha256` is the loaded component's hash), persists it by hash and audits it.
async fn change_plugin(
    state: &AppState,
    session: &AuthSession,
    name: &str,
    expect_sha256: Option<&str>,
    kind: AuditKind,
    change: impl FnOnce(&mut PluginGrant),
) -> Result<Json<Value>, ApiError> {
    session.require_recent_auth(state)?;
    let pipeline = pipeline_of(state)?;
    let (sha256, grant) = {
        let mut plugins = pipeline::lock(&pipeline.plugins);
        let entry = plugins.get_mut(name).ok_or_else(|| {
            refused(
                StatusCode::NOT_FOUND,
                "plugin.unknown",
                format!("no plugin named {name:?}"),
            )
        })?;
        let sha256 = entry.plugin.manifest().sha256.clone();
        if let Some(expected) = expect_sha256
            && expected != sha256
        {
            drop(plugins);
            record(
                state,
                session,
                kind,
                "refused",
                format!("plugin {name}: asked for sha256 {expected:.64}, loaded is {sha256}"),
            );
            return Err(refused(
                StatusCode::CONFLICT,
                "plugin.hash_mismatch",
                format!(
                    "plugin {name} is the component with sha256 {sha256}, not the one you reviewed; reload the list and review it again"
                ),
            ));
        }
        let mut grant = PluginGrant {
            enabled: entry.enabled,
            granted: entry.granted,
        };
        change(&mut grant);
        entry.enabled = grant.enabled;
        entry.granted = grant.granted;
        (sha256, grant)
    };
    let mut file: PluginsFile = state.store.load(StateFile::Plugins)?.unwrap_or_default();
    file.by_sha256.insert(sha256.clone(), grant);
    state.store.save(StateFile::Plugins, &file)?;
    record(
        state,
        session,
        kind,
        "ok",
        format!(
            "plugin {name} ({sha256}): granted={} enabled={}",
            grant.granted, grant.enabled
        ),
    );
    Ok(Json(
        json!({"name": name, "sha256": sha256, "granted": grant.granted, "enabled": grant.enabled}),
    ))
}

async fn grant_plugin(
    State(state): State<AppState>,
    session: AuthSession,
    Path(name): Path<String>,
    AppJson(body): AppJson<GrantBody>,
) -> Result<Json<Value>, ApiError> {
    change_plugin(
        &state,
        &session,
        &name,
        Some(&body.sha256),
        AuditKind::PluginGranted,
        |grant| grant.granted = true,
    )
    .await
}

async fn revoke_plugin(
    State(state): State<AppState>,
    session: AuthSession,
    Path(name): Path<String>,
    AppJson(body): AppJson<GrantBody>,
) -> Result<Json<Value>, ApiError> {
    change_plugin(
        &state,
        &session,
        &name,
        Some(&body.sha256),
        AuditKind::PluginRevoked,
        |grant| grant.granted = false,
    )
    .await
}

async fn enable_plugin(
    State(state): State<AppState>,
    session: AuthSession,
    Path(name): Path<String>,
    AppJson(body): AppJson<EnableBody>,
) -> Result<Json<Value>, ApiError> {
    let kind = if body.enabled {
        AuditKind::PluginEnabled
    } else {
        AuditKind::PluginDisabled
    };
    change_plugin(&state, &session, &name, None, kind, |grant| {
        grant.enabled = body.enabled
    })
    .await
}

#[derive(Deserialize)]
struct FactsQuery {
    #[serde(default)]
    refresh: bool,
}

fn agent_unreachable(err: pipeline::port::PortError) -> ApiError {
    tracing::error!(%err, "cannot gather facts");
    refused(
        StatusCode::SERVICE_UNAVAILABLE,
        "agent.unavailable",
        "cannot gather facts through the agent",
    )
}

async fn get_facts(
    State(state): State<AppState>,
    _session: AuthSession,
    Query(query): Query<FactsQuery>,
) -> Result<Json<Value>, ApiError> {
    let pipeline = pipeline_of(&state)?;
    let now = state.now();
    let facts = tokio::task::spawn_blocking(move || pipeline.cached_facts(now, query.refresh))
        .await
        .map_err(|err| ApiError::Internal(err.to_string()))?
        .map_err(agent_unreachable)?;
    Ok(Json(json!({"facts": facts})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanBody {
    plugin: String,
    /// The planner's input: a JSON object (or a string holding one).
    input: Value,
}

fn plan_json(plan: &StoredPlan) -> Value {
    json!({
        "id": plan.id,
        "sha256": plan.sha256,
        "plugin": plan.plugin,
        "pool": plan.pool,
        "created_at": plan.created_at,
        "expires_at": plan.expires_at,
        "confirmation": plan.confirmation,
        "applicable": plan.checked.all_allowed(),
        "n_rejected": plan.checked.n_rejected(),
        "warnings": plan.checked.warnings(),
        "steps": plan.checked.steps().iter().map(pipeline::step_json).collect::<Vec<_>>(),
    })
}

async fn create_plan(
    State(state): State<AppState>,
    session: AuthSession,
    AppJson(body): AppJson<PlanBody>,
) -> Result<Json<Value>, ApiError> {
    let pipeline = pipeline_of(&state)?;
    let input = match body.input {
        Value::String(text) => text,
        other => other.to_string(),
    };
    if input.len() > MAX_INPUT_BYTES {
        return Err(ApiError::PayloadTooLarge);
    }
    let plugin = {
        let plugins = pipeline::lock(&pipeline.plugins);
        let entry = plugins.get(&body.plugin).ok_or_else(|| {
            refused(
                StatusCode::NOT_FOUND,
                "plugin.unknown",
                format!("no plugin named {:?}", body.plugin),
            )
        })?;
        if !entry.enabled || !entry.granted {
            return Err(refused(
                StatusCode::FORBIDDEN,
                "plugin.not_granted",
                format!("plugin {} is not enabled and granted", body.plugin),
            ));
        }
        entry.plugin.clone()
    };
    let now = state.now();
    let planner_pipeline = pipeline.clone();
    let planner_input = input.clone();
    let (facts, call) = tokio::task::spawn_blocking(move || {
        let mut facts = planner_pipeline.fresh_facts(now)?;
        facts.fresh_uuids = (0..8).map(|_| pipeline::random_uuid()).collect();
        facts.now_unix_seconds = now;
        let call = plugin.plan(&facts, &planner_input);
        Ok::<_, pipeline::port::PortError>((facts, call.map(|call| (call, plugin))))
    })
    .await
    .map_err(|err| ApiError::Internal(err.to_string()))?
    .map_err(agent_unreachable)?;
    let (call, plugin) = call.map_err(|err| {
        refused(
            StatusCode::UNPROCESSABLE_ENTITY,
            "plugin.failed",
            err.to_string(),
        )
    })?;
    let plan = match call.answer {
        Ok(plan) => plan,
        Err(refusal) => {
            record(
                &state,
                &session,
                AuditKind::PlanCreated,
                "refused",
                format!("plugin {}: {refusal}", body.plugin),
            );
            return Err(refused(
                StatusCode::UNPROCESSABLE_ENTITY,
                "plan.refused",
                refusal.to_string(),
            ));
        }
    };
    let checked =
        crate::plan::check::check(plan, &pipeline.allowlist, &plugin.manifest().scope, &facts);
    let canonical = pipeline::canonical_json(&body.plugin, &input, &checked);
    let stored = StoredPlan {
        id: pipeline::random_id(),
        sha256: pipeline::plan_sha256(&canonical),
        plugin: body.plugin.clone(),
        pool: pipeline::pool_key(&input),
        input,
        session_id: session.family.id.clone(),
        username: session.family.username.clone(),
        created_at: now,
        expires_at: now + pipeline.plan_ttl_seconds,
        facts_fingerprint: pipeline::facts_fingerprint(&facts, &checked),
        confirmation: pipeline::confirmation_of(&checked),
        checked: Arc::new(checked),
    };
    for checked_step in stored.checked.steps() {
        let (verdict, why) = match checked_step.verdict() {
            crate::plan::check::StepVerdict::Allowed { rule_id, canonical } => {
                ("allowed", format!("{rule_id}: {canonical}"))
            }
            crate::plan::check::StepVerdict::Rejected { reason } => ("rejected", reason.clone()),
        };
        record(
            &state,
            &session,
            AuditKind::PlanCreated,
            verdict,
            format!("plan {} step {}: {why}", stored.id, checked_step.step().id),
        );
    }
    record(
        &state,
        &session,
        AuditKind::PlanCreated,
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
    let stored = pipeline.store_plan(stored);
    Ok(Json(json!({"plan": plan_json(&stored)})))
}

async fn get_plan(
    State(state): State<AppState>,
    session: AuthSession,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let pipeline = pipeline_of(&state)?;
    let plan = pipeline.plan(&id).ok_or(ApiError::NotFound)?;
    if plan.session_id != session.family.id {
        return Err(ApiError::NotFound);
    }
    Ok(Json(json!({"plan": plan_json(&plan)})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApplyBody {
    confirm: String,
}

async fn apply_plan(
    State(state): State<AppState>,
    session: AuthSession,
    Path(id): Path<String>,
    AppJson(body): AppJson<ApplyBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let pipeline = pipeline_of(&state)?;
    let refuse = |code: &'static str, status: StatusCode, message: String| {
        record(
            &state,
            &session,
            AuditKind::PlanApplyRefused,
            "refused",
            format!("plan {id}: {code}: {message}"),
        );
        refused(status, code, message)
    };
    let plan = pipeline
        .plan(&id)
        .ok_or_else(|| refuse("plan.unknown", StatusCode::NOT_FOUND, "no such plan".into()))?;
    if plan.session_id != session.family.id {
        return Err(refuse(
            "plan.not_yours",
            StatusCode::FORBIDDEN,
            "only the session that created a plan may apply it".into(),
        ));
    }
    let still_granted = pipeline::lock(&pipeline.plugins)
        .get(&plan.plugin)
        .is_some_and(|entry| entry.granted && entry.enabled);
    if !still_granted {
        return Err(refuse(
            "plugin.not_granted",
            StatusCode::FORBIDDEN,
            format!(
                "plugin {} was revoked or disabled since this plan was made",
                plan.plugin
            ),
        ));
    }
    if let Err(err) = session.require_recent_auth(&state) {
        record(
            &state,
            &session,
            AuditKind::PlanApplyRefused,
            "refused",
            format!("plan {id}: auth.reauth_required"),
        );
        return Err(err);
    }
    let now = state.now();
    if now > plan.expires_at {
        return Err(refuse(
            "plan.expired",
            StatusCode::GONE,
            format!("plan expired {} s ago; plan again", now - plan.expires_at),
        ));
    }
    if !plan.checked.all_allowed() {
        return Err(refuse(
            "plan.rejected_steps",
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "{} step(s) were rejected; this plan cannot be applied",
                plan.checked.n_rejected()
            ),
        ));
    }
    if body.confirm != plan.confirmation {
        return Err(refuse(
            "plan.confirmation_mismatch",
            StatusCode::BAD_REQUEST,
            format!("type exactly {:?} to apply", plan.confirmation),
        ));
    }
    let Some(guard) = pipeline.jobs.try_lock_pool(&plan.pool) else {
        return Err(refuse(
            "pool.busy",
            StatusCode::CONFLICT,
            format!("a job is already running on {}", plan.pool),
        ));
    };
    let facts_pipeline = pipeline.clone();
    let facts = tokio::task::spawn_blocking(move || facts_pipeline.fresh_facts(now))
        .await
        .map_err(|err| ApiError::Internal(err.to_string()))?
        .map_err(agent_unreachable)?;
    if pipeline::facts_fingerprint(&facts, &plan.checked) != plan.facts_fingerprint {
        return Err(refuse(
            "plan.stale",
            StatusCode::CONFLICT,
            "the devices changed since this plan was made; plan again".into(),
        ));
    }
    record(
        &state,
        &session,
        AuditKind::PlanConfirmed,
        "confirmed",
        format!(
            "plan {} sha256 {}: confirmed {:?}",
            plan.id, plan.sha256, body.confirm
        ),
    );
    // One use: a confirmed plan cannot be applied a second time.
    pipeline::lock(&pipeline.plans).remove(&plan.id);
    let job_id = pipeline::random_id();
    let job = JobRecord {
        id: job_id.clone(),
        plan_id: plan.id.clone(),
        plan_sha256: plan.sha256.clone(),
        plugin: plan.plugin.clone(),
        pool: plan.pool.clone(),
        username: plan.username.clone(),
        created_at: now,
        finished_at: None,
        state: JobState::Running,
        steps: plan
            .checked
            .steps()
            .iter()
            .map(StepRecord::pending)
            .collect(),
        events: Vec::new(),
    };
    pipeline.jobs.insert(job)?;
    let job_state = state.clone();
    let job_pipeline = pipeline.clone();
    let run_id = job_id.clone();
    let username = session.family.username.clone();
    tokio::task::spawn_blocking(move || {
        // The guard lives as long as the job, and is dropped on return or unwinding.
        let _guard = guard;
        let clock_state = job_state.clone();
        let now = move || clock_state.now();
        let audit_state = job_state.clone();
        let audit = move |kind: AuditKind, verdict: &str, detail: String| {
            audit_state.audit.record(AuditEvent {
                at: audit_state.now(),
                kind,
                username: Some(username.clone()),
                client: None,
                verdict: Some(verdict.to_string()),
                detail,
            });
        };
        pipeline::apply::execute(
            &plan.checked,
            &pipeline::apply::ApplyContext {
                port: job_pipeline.port.as_ref(),
                jobs: &job_pipeline.jobs,
                job_id: &run_id,
                now: &now,
                audit: &audit,
            },
        );
    });
    Ok((StatusCode::ACCEPTED, Json(json!({"job": job_id}))))
}

/// At most this many jobs per `GET /jobs` (newest first; steps and events left out).
pub const MAX_JOBS_LISTED: usize = 50;

async fn list_jobs(
    State(state): State<AppState>,
    _session: AuthSession,
) -> Result<Json<Value>, ApiError> {
    let pipeline = pipeline_of(&state)?;
    let jobs: Vec<Value> = pipeline
        .jobs
        .recent(MAX_JOBS_LISTED)
        .iter()
        .map(|job| {
            json!({
                "id": job.id,
                "plugin": job.plugin,
                "pool": job.pool,
                "username": job.username,
                "state": job.state,
                "created_at": job.created_at,
                "finished_at": job.finished_at,
            })
        })
        .collect();
    Ok(Json(json!({ "jobs": jobs })))
}

async fn get_job(
    State(state): State<AppState>,
    _session: AuthSession,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let pipeline = pipeline_of(&state)?;
    let job = pipeline.jobs.get(&id).ok_or(ApiError::NotFound)?;
    Ok(Json(json!({"job": job})))
}

/// How often the SSE stream looks for new job events.
const EVENTS_POLL: Duration = Duration::from_millis(200);

async fn job_events(
    State(state): State<AppState>,
    _session: AuthSession,
    Path(id): Path<String>,
) -> Result<Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let pipeline = pipeline_of(&state)?;
    pipeline.jobs.get(&id).ok_or(ApiError::NotFound)?;
    let stream = futures_util::stream::unfold(
        (pipeline, id, 0usize, false),
        |(pipeline, id, next_idx, ended)| async move {
            if ended {
                return None;
            }
            loop {
                let job = pipeline.jobs.get(&id)?;
                if let Some(event) = job.events.get(next_idx) {
                    let data = serde_json::to_string(event).unwrap_or_default();
                    let sse = Event::default()
                        .event(event.kind.clone())
                        .id(event.seq.to_string())
                        .data(data);
                    return Some((Ok(sse), (pipeline, id, next_idx + 1, false)));
                }
                if job.state != JobState::Running {
                    let data = json!({"state": job.state}).to_string();
                    return Some((
                        Ok(Event::default().event("end").data(data)),
                        (pipeline, id, next_idx, true),
                    ));
                }
                tokio::time::sleep(EVENTS_POLL).await;
            }
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    username: Option<String>,
    kind: Option<String>,
    verdict: Option<String>,
    since: Option<u64>,
    until: Option<u64>,
    text: Option<String>,
    limit: Option<usize>,
}

async fn get_audit(
    State(state): State<AppState>,
    _session: AuthSession,
    Query(query): Query<AuditQuery>,
) -> Result<Json<Value>, ApiError> {
    let filter = crate::audit::Filter {
        username: query.username,
        kind: query.kind,
        verdict: query.verdict,
        since: query.since,
        until: query.until,
        text: query.text,
    };
    let limit = query.limit.unwrap_or(200).clamp(1, MAX_AUDIT_RECORDS);
    let dir = state.store.root().to_path_buf();
    let (records, verified) = tokio::task::spawn_blocking(move || {
        Ok::<_, crate::store::StoreError>((
            crate::audit::query(&dir, &filter, limit)?,
            crate::audit::verify_dir(&dir)?,
        ))
    })
    .await
    .map_err(|err| ApiError::Internal(err.to_string()))??;
    let chain = match verified {
        Ok(verified) => {
            json!({"verified": true, "records": verified.n_records, "files": verified.n_files, "last_hash": verified.last_hash})
        }
        Err(broken) => json!({"verified": false, "error": broken.to_string()}),
    };
    Ok(Json(json!({"records": records, "chain": chain})))
}
