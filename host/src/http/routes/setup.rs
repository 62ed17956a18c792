//! `/api/v1/setup`: first-run setup, answered 410 once an admin exists.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::setup;
use crate::http::client_ip::ClientIp;
use crate::http::error::ApiError;
use crate::http::extract::AppJson;
use crate::state::{AppState, RateKey};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/setup", get(status))
        .route("/api/v1/setup/totp", post(begin))
        .route("/api/v1/setup/admin", post(complete))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BeginBody {
    token: String,
    username: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CompleteBody {
    token: String,
    username: String,
    password: String,
    code: String,
}

async fn status(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    if !state.users.lock().await.users.is_empty() {
        return Err(ApiError::SetupDone);
    }
    Ok(Json(json!({"setup_required": true})))
}

fn throttle(state: &AppState, client: ClientIp) -> Result<(), ApiError> {
    state
        .check_flood(RateKey::Setup(crate::auth::login::client_key(client.0)))
        .map_err(|retry_after| ApiError::RateLimited { retry_after })
}

async fn begin(
    State(state): State<AppState>,
    Extension(client): Extension<ClientIp>,
    AppJson(body): AppJson<BeginBody>,
) -> Result<Json<Value>, ApiError> {
    throttle(&state, client)?;
    let enrolment = setup::begin(&state, &body.token, &body.username).await?;
    Ok(Json(json!({
        "secret": enrolment.secret_base32,
        "otpauth_uri": enrolment.otpauth_uri,
        "qr_svg": enrolment.qr_svg,
    })))
}

async fn complete(
    State(state): State<AppState>,
    Extension(client): Extension<ClientIp>,
    AppJson(body): AppJson<CompleteBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    throttle(&state, client)?;
    let codes = setup::complete(
        &state,
        &body.token,
        &body.username,
        &body.password,
        &body.code,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"username": body.username, "recovery_codes": codes})),
    ))
}
