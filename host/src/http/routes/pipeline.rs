//! `/api/v1` plugins, facts, plans, jobs and audit: the storage pipeline's HTTP surface.
//!
//! Every route needs a live session (`AuthSession`, which also checks the CSRF token on unsafe
//! methods); granting plugins and applying plans also need a re-authentication within
//! `session.reauth_seconds`. A plan is applied by id only: the body carries the confirmation
//! words, never steps. The decisions are the pipeline's (`pipeline::{create_plan, admit_apply,
//! grants}`); this module extracts the request, runs them off the async workers and maps their
//! `Refusal`s, which run nothing.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::{get, post};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::http::api::{
    ApplyRequest, AuditQuery, AuditView, ChainStatus, EnableRequest, FactsQuery, FactsView,
    FailedPluginView, GrantRequest, GrantView, JobEnd, JobStarted, JobSummary, JobView, Jobs,
    PlanReply, PlanRequest, PlanView, PluginView, Plugins, SmartView,
};
use crate::http::error::ApiError;
use crate::http::extract::{AppJson, AuthSession};
use crate::pipeline::grants::{self, GrantChange, PluginGrant};
use crate::pipeline::jobs::JobState;
use crate::pipeline::{self, Pipeline, PipelineSlot, Requester, StoredPlan};
use crate::plugin::Planner;
use crate::session::service::SessionService;
use crate::state::AppState;
use crate::store::StateDir;

/// At most this many records per `GET /audit` (default 200).
pub const MAX_AUDIT_RECORDS: usize = 1000;
/// At most this many jobs per `GET /jobs` (newest first; steps and events left out).
pub const MAX_JOBS_LISTED: usize = 50;
/// How often the SSE stream looks for new job events.
const EVENTS_POLL: Duration = Duration::from_millis(200);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/plugins", get(list_plugins))
        .route("/api/v1/plugins/{name}/grant", post(grant_plugin))
        .route("/api/v1/plugins/{name}/revoke", post(revoke_plugin))
        .route("/api/v1/plugins/{name}/enable", post(enable_plugin))
        .route("/api/v1/facts", get(get_facts))
        .route("/api/v1/disks/{name}/smart", get(get_smart))
        .route("/api/v1/plans", post(create_plan))
        .route("/api/v1/plans/{id}", get(get_plan))
        .route("/api/v1/plans/{id}/apply", post(apply_plan))
        .route("/api/v1/jobs", get(list_jobs))
        .route("/api/v1/jobs/{id}", get(get_job))
        .route("/api/v1/jobs/{id}/events", get(job_events))
        .route("/api/v1/audit", get(get_audit))
}

/// Runs pipeline work (agent round trips, Wasm calls, file reads) off the async workers.
pub(crate) async fn blocking<T: Send + 'static, E: Into<ApiError> + Send + 'static>(
    work: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| ApiError::Internal(err.to_string()))?
        .map_err(Into::into)
}

fn requester(session: &AuthSession, sessions: &SessionService) -> Requester {
    Requester {
        session_id: session.family.id.clone(),
        username: session.family.username.clone(),
        reauth_valid_until: sessions.reauth_valid_until(&session.family),
    }
}

async fn list_plugins(
    State(slot): State<Arc<PipelineSlot>>,
    _session: AuthSession,
) -> Result<Json<Plugins>, ApiError> {
    let pipeline = slot.get()?;
    // `describe()` is a Wasm call: off the async workers.
    let failed = pipeline
        .failed
        .iter()
        .map(|failure| FailedPluginView {
            path: failure.path.clone(),
            reason: failure.reason.clone(),
        })
        .collect();
    let plugins = blocking(move || {
        Ok::<_, ApiError>(
            pipeline
                .plugins_with_grants()
                .into_iter()
                .map(|(name, plugin, grant)| plugin_view(name, &plugin, grant))
                .collect(),
        )
    })
    .await?;
    Ok(Json(Plugins { plugins, failed }))
}

/// One plugin as `GET /plugins` lists it: the manifest, the grant, and what `describe()` says
/// (summary and input schema, from which the UI builds the planner's form).
fn plugin_view(name: String, plugin: &Planner, grant: PluginGrant) -> PluginView {
    let manifest = plugin.manifest();
    let (summary, input_schema, describe_error) = match plugin.describe() {
        // Bounded by MAX_INPUT_SCHEMA_BYTES at describe(); not JSON is shown as no form. Passed
        // on as the planner wrote it, so its fields keep the planner's order in the form.
        Ok(info) => (
            Some(info.summary),
            RawValue::from_string(info.input_schema).ok(),
            None,
        ),
        Err(err) => (None, None, Some(err.to_string())),
    };
    PluginView {
        api_version: manifest.api_version.to_string(),
        describe_error,
        enabled: grant.enabled,
        granted: grant.granted,
        input_schema,
        kind: manifest.kind.to_string(),
        name,
        scope: manifest.scope.iter().map(str::to_string).collect(),
        sha256: manifest.sha256.clone(),
        summary,
        version: manifest.version.clone(),
    }
}

/// Grant, revoke, enable and disable: after a recent re-authentication, through
/// [`grants::change`].
async fn change_grant(
    slot: &PipelineSlot,
    sessions: &SessionService,
    session: &AuthSession,
    name: String,
    reviewed_sha256: Option<String>,
    change: GrantChange,
) -> Result<Json<GrantView>, ApiError> {
    session.require_recent_auth(sessions)?;
    let pipeline = slot.get()?;
    let username = session.family.username.clone();
    let changed = blocking(move || {
        grants::change(
            &pipeline,
            &username,
            &name,
            reviewed_sha256.as_deref(),
            change,
        )
    })
    .await?;
    Ok(Json(GrantView {
        enabled: changed.grant.enabled,
        granted: changed.grant.granted,
        name: changed.name,
        sha256: changed.sha256,
    }))
}

async fn grant_plugin(
    State(slot): State<Arc<PipelineSlot>>,
    State(sessions): State<Arc<SessionService>>,
    session: AuthSession,
    Path(name): Path<String>,
    AppJson(body): AppJson<GrantRequest>,
) -> Result<Json<GrantView>, ApiError> {
    let reviewed = Some(body.sha256);
    change_grant(
        &slot,
        &sessions,
        &session,
        name,
        reviewed,
        GrantChange::Grant,
    )
    .await
}

async fn revoke_plugin(
    State(slot): State<Arc<PipelineSlot>>,
    State(sessions): State<Arc<SessionService>>,
    session: AuthSession,
    Path(name): Path<String>,
    AppJson(body): AppJson<GrantRequest>,
) -> Result<Json<GrantView>, ApiError> {
    let reviewed = Some(body.sha256);
    change_grant(
        &slot,
        &sessions,
        &session,
        name,
        reviewed,
        GrantChange::Revoke,
    )
    .await
}

async fn enable_plugin(
    State(slot): State<Arc<PipelineSlot>>,
    State(sessions): State<Arc<SessionService>>,
    session: AuthSession,
    Path(name): Path<String>,
    AppJson(body): AppJson<EnableRequest>,
) -> Result<Json<GrantView>, ApiError> {
    let change = GrantChange::Enable(body.enabled);
    change_grant(&slot, &sessions, &session, name, None, change).await
}

async fn get_facts(
    State(slot): State<Arc<PipelineSlot>>,
    _session: AuthSession,
    Query(query): Query<FactsQuery>,
) -> Result<Json<FactsView>, ApiError> {
    let pipeline = slot.get()?;
    let facts = blocking(move || pipeline.cached_facts(query.refresh)).await?;
    Ok(Json(FactsView { facts }))
}

/// A disk's SMART reading, made now (never cached: it is the drive's word at this moment).
async fn get_smart(
    State(slot): State<Arc<PipelineSlot>>,
    _session: AuthSession,
    Path(name): Path<String>,
) -> Result<Json<SmartView>, ApiError> {
    let pipeline = slot.get()?;
    let disk = name.clone();
    let report = blocking(move || pipeline.smart(&disk)).await?;
    Ok(Json(SmartView {
        disk: name,
        state: report.state.as_str(),
        reasons: report.reasons,
        model: report.model,
        serial: report.serial,
        protocol: report.protocol,
        temperature_celsius: report.temperature_celsius,
        power_on_hours: report.power_on_hours,
        exit_status: report.exit_status,
    }))
}

fn plan_view(plan: &StoredPlan) -> PlanView {
    PlanView {
        applicable: plan.checked.all_allowed(),
        confirmation: plan.confirmation.clone(),
        created_at: plan.created_at,
        expires_at: plan.expires_at,
        id: plan.id.clone(),
        n_rejected: plan.checked.n_rejected(),
        plugin: plan.plugin.clone(),
        pool: plan.pool.clone(),
        sha256: plan.sha256.clone(),
        steps: pipeline::canonical::steps(&plan.checked),
        warnings: plan.checked.warnings().to_vec(),
    }
}

async fn create_plan(
    State(slot): State<Arc<PipelineSlot>>,
    State(sessions): State<Arc<SessionService>>,
    session: AuthSession,
    AppJson(body): AppJson<PlanRequest>,
) -> Result<Json<PlanReply>, ApiError> {
    let pipeline = slot.get()?;
    let input = match body.input {
        Value::String(text) => text,
        other => other.to_string(),
    };
    let requester = requester(&session, &sessions);
    let plan =
        blocking(move || pipeline::create_plan(&pipeline, &requester, &body.plugin, input)).await?;
    Ok(Json(PlanReply {
        plan: plan_view(&plan),
    }))
}

async fn get_plan(
    State(slot): State<Arc<PipelineSlot>>,
    session: AuthSession,
    Path(id): Path<String>,
) -> Result<Json<PlanReply>, ApiError> {
    let pipeline = slot.get()?;
    let plan = pipeline
        .plan_of(&id, &session.family.id)
        .ok_or(ApiError::NotFound)?;
    Ok(Json(PlanReply {
        plan: plan_view(&plan),
    }))
}

async fn apply_plan(
    State(slot): State<Arc<PipelineSlot>>,
    State(sessions): State<Arc<SessionService>>,
    session: AuthSession,
    Path(id): Path<String>,
    AppJson(body): AppJson<ApplyRequest>,
) -> Result<(StatusCode, Json<JobStarted>), ApiError> {
    let pipeline = slot.get()?;
    let requester = requester(&session, &sessions);
    let admitting = pipeline.clone();
    let admitted =
        blocking(move || pipeline::admit_apply(&admitting, &requester, &id, &body.confirm)).await?;
    let job = pipeline::start_job(&pipeline, admitted)?;
    Ok((StatusCode::ACCEPTED, Json(JobStarted { job })))
}

async fn list_jobs(
    State(slot): State<Arc<PipelineSlot>>,
    _session: AuthSession,
) -> Result<Json<Jobs>, ApiError> {
    let pipeline = slot.get()?;
    let jobs = pipeline
        .jobs
        .recent(MAX_JOBS_LISTED)
        .into_iter()
        .map(|job| JobSummary {
            created_at: job.created_at,
            finished_at: job.finished_at,
            id: job.id,
            plugin: job.plugin,
            pool: job.pool,
            state: job.state,
            username: job.username,
        })
        .collect();
    Ok(Json(Jobs { jobs }))
}

async fn get_job(
    State(slot): State<Arc<PipelineSlot>>,
    _session: AuthSession,
    Path(id): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    let pipeline = slot.get()?;
    let job = pipeline.jobs.get(&id).ok_or(ApiError::NotFound)?;
    Ok(Json(JobView { job }))
}

async fn job_events(
    State(slot): State<Arc<PipelineSlot>>,
    _session: AuthSession,
    Path(id): Path<String>,
) -> Result<Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let pipeline: Arc<Pipeline> = slot.get()?;
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
                    let data =
                        serde_json::to_string(&JobEnd { state: job.state }).unwrap_or_default();
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

async fn get_audit(
    State(store): State<Arc<StateDir>>,
    _session: AuthSession,
    Query(query): Query<AuditQuery>,
) -> Result<Json<AuditView>, ApiError> {
    let filter = crate::audit::Filter {
        username: query.username,
        kind: query.kind,
        verdict: query.verdict,
        since: query.since,
        until: query.until,
        text: query.text,
    };
    let limit = query.limit.unwrap_or(200).clamp(1, MAX_AUDIT_RECORDS);
    let (records, verified) = blocking(move || {
        let dir = store.root();
        Ok::<_, crate::store::StoreError>((
            crate::audit::query(dir, &filter, limit)?,
            crate::audit::verify_dir(dir)?,
        ))
    })
    .await?;
    let chain = match verified {
        Ok(verified) => ChainStatus::Verified {
            files: verified.n_files,
            last_hash: verified.last_hash,
            records: verified.n_records,
            verified: true,
        },
        Err(broken) => ChainStatus::Broken {
            error: broken.to_string(),
            verified: false,
        },
    };
    Ok(Json(AuditView { chain, records }))
}
