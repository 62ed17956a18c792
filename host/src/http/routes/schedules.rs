//! `/api/v1/schedules`: standing approvals. Every route needs a live session (and, being
//! unsafe methods, the CSRF token for the changes); approving, editing and revoking also need a
//! re-authentication within `session.reauth_seconds`, like applying a plan: a schedule is an
//! apply given in advance. The checks are `schedules::service`'s; this module extracts the
//! request, runs them off the async workers (the state write, the planner's `describe()`) and
//! maps the answer.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Json, Router};

use super::pipeline::blocking;
use crate::http::api::{
    ScheduleEditRequest, ScheduleReply, ScheduleRequest, ScheduleRevoked, ScheduleView,
    SchedulesView,
};
use crate::http::error::ApiError;
use crate::http::extract::{AppJson, AuthSession};
use crate::pipeline::PipelineSlot;
use crate::schedules::{ScheduleError, ScheduleService, Terms};
use crate::session::service::SessionService;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/schedules", get(list).post(create))
        .route("/api/v1/schedules/{id}", put(edit).delete(revoke))
}

async fn list(
    State(schedules): State<Arc<ScheduleService>>,
    _session: AuthSession,
) -> Result<Json<SchedulesView>, ApiError> {
    Ok(Json(SchedulesView {
        schedules: schedules.list().iter().map(ScheduleView::from).collect(),
    }))
}

async fn create(
    State(schedules): State<Arc<ScheduleService>>,
    State(slot): State<Arc<PipelineSlot>>,
    State(sessions): State<Arc<SessionService>>,
    session: AuthSession,
    AppJson(request): AppJson<ScheduleRequest>,
) -> Result<(StatusCode, Json<ScheduleReply>), ApiError> {
    session.require_recent_auth(&sessions)?;
    let pipeline = slot.get()?;
    let by = session.family.username;
    let terms = Terms {
        input: request.input,
        rule_ids: request.rule_ids,
        period_seconds: request.period_seconds,
    };
    let created = blocking(move || -> Result<_, ScheduleError> {
        schedules.create(&pipeline, &request.planner, terms, &by)
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(ScheduleReply {
            schedule: ScheduleView::from(&created),
        }),
    ))
}

async fn edit(
    State(schedules): State<Arc<ScheduleService>>,
    State(slot): State<Arc<PipelineSlot>>,
    State(sessions): State<Arc<SessionService>>,
    session: AuthSession,
    Path(id): Path<String>,
    AppJson(request): AppJson<ScheduleEditRequest>,
) -> Result<Json<ScheduleReply>, ApiError> {
    session.require_recent_auth(&sessions)?;
    let pipeline = slot.get()?;
    let by = session.family.username;
    let terms = Terms {
        input: request.input,
        rule_ids: request.rule_ids,
        period_seconds: request.period_seconds,
    };
    let edited = blocking(move || schedules.edit(&pipeline, &id, terms, &by)).await?;
    Ok(Json(ScheduleReply {
        schedule: ScheduleView::from(&edited),
    }))
}

async fn revoke(
    State(schedules): State<Arc<ScheduleService>>,
    State(sessions): State<Arc<SessionService>>,
    session: AuthSession,
    Path(id): Path<String>,
) -> Result<Json<ScheduleRevoked>, ApiError> {
    session.require_recent_auth(&sessions)?;
    let by = session.family.username;
    let revoked = blocking(move || schedules.revoke(&id, &by)).await?;
    Ok(Json(ScheduleRevoked {
        id: revoked.id,
        revoked: true,
    }))
}
