//! `/api/v1/alerts`: the alerts list and an admin's acknowledgement. Both need a live session
//! (every account is an admin); the acknowledgement is a POST, so it also needs the CSRF token,
//! like every other POST. The decisions are `alerts::model`'s.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::alerts::model::AckError;
use crate::alerts::{AlertError, AlertService, AlertState};
use crate::http::api::{AlertAcked, AlertView, AlertsView};
use crate::http::error::ApiError;
use crate::http::extract::AuthSession;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/alerts", get(list))
        .route("/api/v1/alerts/{id}/ack", post(acknowledge))
}

async fn list(
    State(alerts): State<Arc<AlertService>>,
    _session: AuthSession,
) -> Result<Json<AlertsView>, ApiError> {
    let listed = alerts.list();
    let n_open = listed.iter().filter(|alert| alert.is_open()).count();
    let n_unacknowledged = listed
        .iter()
        .filter(|alert| alert.state == AlertState::Raised)
        .count();
    Ok(Json(AlertsView {
        alerts: listed.iter().map(AlertView::from).collect(),
        n_open,
        n_unacknowledged,
    }))
}

async fn acknowledge(
    State(alerts): State<Arc<AlertService>>,
    session: AuthSession,
    Path(id): Path<String>,
) -> Result<Json<AlertAcked>, ApiError> {
    // An id that is not a number names no alert: the same 404 as an unknown one.
    let id = id
        .parse::<u64>()
        .map_err(|_| AlertError::Ack(AckError::Unknown { id }))?;
    let alert = alerts.acknowledge(id, &session.family.username).await?;
    Ok(Json(AlertAcked {
        alert: AlertView::from(&alert),
    }))
}
