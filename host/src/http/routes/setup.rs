//! `/api/v1/setup`: first-run setup, answered 410 once an admin exists.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};

use crate::auth::service::{AuthService, RateKey};
use crate::auth::setup;
use crate::http::api::{SetupBeginRequest, SetupCompleteRequest, SetupCompleted, SetupStatus};
use crate::http::client_ip::ClientIp;
use crate::http::error::ApiError;
use crate::http::extract::AppJson;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/setup", get(status))
        .route("/api/v1/setup/totp", post(begin))
        .route("/api/v1/setup/admin", post(complete))
}

async fn status(State(auth): State<Arc<AuthService>>) -> Result<Json<SetupStatus>, ApiError> {
    if !auth.users.lock().await.users.is_empty() {
        return Err(ApiError::SetupDone);
    }
    Ok(Json(SetupStatus {
        setup_required: true,
    }))
}

fn throttle(auth: &AuthService, client: ClientIp) -> Result<(), ApiError> {
    auth.check_flood(RateKey::Setup(crate::net::client_key(client.0)))
        .map_err(|retry_after| ApiError::RateLimited { retry_after })
}

async fn begin(
    State(auth): State<Arc<AuthService>>,
    Extension(client): Extension<ClientIp>,
    AppJson(body): AppJson<SetupBeginRequest>,
) -> Result<Json<crate::http::api::TotpEnrolment>, ApiError> {
    throttle(&auth, client)?;
    let enrolment = setup::begin(&auth, &body.token, &body.username).await?;
    Ok(Json(enrolment.into()))
}

async fn complete(
    State(auth): State<Arc<AuthService>>,
    Extension(client): Extension<ClientIp>,
    AppJson(body): AppJson<SetupCompleteRequest>,
) -> Result<(StatusCode, Json<SetupCompleted>), ApiError> {
    throttle(&auth, client)?;
    let codes = setup::complete(
        &auth,
        &body.token,
        &body.username,
        &body.password,
        &body.code,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(SetupCompleted {
            recovery_codes: codes,
            username: body.username,
        }),
    ))
}
