//! `/api/v1/auth/*` and `/api/v1/me`: login, refresh, logout, sessions, re-authentication,
//! password, TOTP and recovery codes.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::audit::AuditKind;
use crate::auth::login::{self, LoginAttempt};
use crate::auth::{AuthError, TotpState, password, setup, totp};
use crate::http::client_ip::ClientIp;
use crate::http::cookies;
use crate::http::error::ApiError;
use crate::http::extract::{AppJson, AuthSession};
use crate::session::store::{IssuedTokens, Presenter, RefreshOutcome};
use crate::session::token::Token;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/auth/login", post(login_handler))
        .route("/api/v1/auth/refresh", post(refresh))
        .route("/api/v1/auth/logout", post(logout))
        .route("/api/v1/me", get(me))
        .route("/api/v1/auth/sessions", get(list_sessions))
        .route("/api/v1/auth/sessions/{id}", delete(revoke_session))
        .route("/api/v1/auth/reauth", post(reauth))
        .route("/api/v1/auth/password", post(change_password))
        .route("/api/v1/auth/totp/enrol", post(totp_enrol))
        .route("/api/v1/auth/totp/confirm", post(totp_confirm))
        .route("/api/v1/auth/totp/disable", post(totp_disable))
        .route("/api/v1/auth/recovery-codes", post(regenerate_codes))
        .route("/api/v1/auth/notices/clear", post(clear_notices))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    username: String,
    password: String,
    #[serde(default)]
    code: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReauthBody {
    password: String,
    code: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordBody {
    new_password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeBody {
    code: String,
}

fn user_agent(headers: &HeaderMap) -> String {
    headers
        .get(header::USER_AGENT)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .chars()
        .take(512)
        .collect()
}

fn session_cookies(response: &mut Response, tokens: &IssuedTokens, refresh_max_age: u64) {
    let values = [
        cookies::set(cookies::SESSION, &tokens.access.encode(), true, None),
        cookies::set(
            cookies::REFRESH,
            &tokens.refresh.encode(),
            true,
            Some(refresh_max_age),
        ),
        cookies::set(cookies::CSRF, &tokens.csrf.encode(), false, None),
    ];
    for value in values {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
}

fn clear_session_cookies(response: &mut Response) {
    for (name, http_only) in [
        (cookies::SESSION, true),
        (cookies::REFRESH, true),
        (cookies::CSRF, false),
    ] {
        if let Ok(value) = HeaderValue::from_str(&cookies::clear(name, http_only)) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
}

async fn login_handler(
    State(state): State<AppState>,
    Extension(client): Extension<ClientIp>,
    headers: HeaderMap,
    AppJson(body): AppJson<LoginBody>,
) -> Result<Response, ApiError> {
    // A session presented at login is ended: the new one never reuses it (fixation).
    if let Some(planted) = cookies::read(&headers, cookies::SESSION).and_then(Token::parse) {
        let planted_hash = planted.hash();
        let revoked = state.with_sessions(|table| {
            let family_id = table.family_of_access(&planted_hash);
            family_id.and_then(|family_id| table.revoke(&family_id))
        });
        if revoked.is_some() {
            state.persist_sessions().await?;
        }
    }
    let attempt = LoginAttempt {
        username: body.username,
        password: body.password,
        code: body.code,
        client_ip: client.0,
        user_agent: user_agent(&headers),
        device_token: cookies::read(&headers, cookies::DEVICE).and_then(Token::parse),
    };
    let success = login::login(&state, attempt).await?;
    let mut response = Json(json!({
        "username": success.username,
        "csrf_token": success.tokens.csrf.encode(),
        "recovery_codes_left": success.recovery_codes_left,
    }))
    .into_response();
    session_cookies(
        &mut response,
        &success.tokens,
        state.config.session.idle_seconds,
    );
    if let Some(device) = &success.new_device {
        let value = cookies::set(
            cookies::DEVICE,
            &device.encode(),
            true,
            Some(cookies::DEVICE_MAX_AGE),
        );
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    Ok(response)
}

async fn refresh(
    State(state): State<AppState>,
    Extension(client): Extension<ClientIp>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let presented = cookies::read(&headers, cookies::REFRESH)
        .and_then(Token::parse)
        .ok_or(ApiError::Unauthenticated)?;
    let rules = state.session_rules();
    let now = state.now();
    let user_agent = user_agent(&headers);
    // Drawn before taking the table lock, used only if this call rotates.
    let fresh = login::fresh_tokens("")?;
    let outcome = state.with_sessions(|table| {
        let presenter = Presenter {
            user_agent: &user_agent,
            client_ip: client.0,
        };
        table.refresh(&presented, &presenter, &rules, now, |family_id| {
            IssuedTokens {
                family_id: family_id.to_string(),
                ..fresh
            }
        })
    });
    let tokens = match outcome {
        RefreshOutcome::Rotated(tokens) => {
            // Durable before the client sees the successor.
            state.persist_sessions().await?;
            tokens
        }
        RefreshOutcome::Replayed(tokens) => tokens,
        RefreshOutcome::Revoked {
            family_id,
            username,
        } => {
            state.persist_sessions().await?;
            state.audit(
                AuditKind::RefreshReuseDetected,
                Some(&username),
                Some(client.0),
                format!("family {family_id} revoked"),
            );
            state
                .notify(
                    &username,
                    AuditKind::RefreshReuseDetected,
                    "a used session token was presented again; that session was ended",
                )
                .await;
            return Err(ApiError::Unauthenticated);
        }
        RefreshOutcome::BindingMismatch { username } => {
            state.persist_sessions().await?;
            state.audit(
                AuditKind::SessionBindingMismatch,
                Some(&username),
                Some(client.0),
                "refresh token presented from another browser or network; session ended",
            );
            return Err(ApiError::Unauthenticated);
        }
        RefreshOutcome::Refused => return Err(ApiError::Unauthenticated),
    };
    let mut response = Json(json!({"csrf_token": tokens.csrf.encode()})).into_response();
    session_cookies(&mut response, &tokens, state.config.session.idle_seconds);
    Ok(response)
}

async fn logout(State(state): State<AppState>, session: AuthSession) -> Result<Response, ApiError> {
    state.with_sessions(|table| table.revoke(&session.family.id));
    state.persist_sessions().await?;
    state.audit(
        AuditKind::SessionRevoked,
        Some(&session.family.username),
        None,
        "logout",
    );
    let mut response = StatusCode::NO_CONTENT.into_response();
    clear_session_cookies(&mut response);
    Ok(response)
}

async fn me(State(state): State<AppState>, session: AuthSession) -> Result<Json<Value>, ApiError> {
    let family = &session.family;
    let (totp_enrolled, recovery_codes_left, notices) = {
        let users = state.users.lock().await;
        users
            .users
            .get(&family.username)
            .map(|user| {
                (
                    user.totp.is_some(),
                    user.recovery_codes.len(),
                    user.notices.clone(),
                )
            })
            .unwrap_or((false, 0, Vec::new()))
    };
    let session_config = &state.config.session;
    Ok(Json(json!({
        "username": family.username,
        "session_id": family.id,
        "totp_enrolled": totp_enrolled,
        "recovery_codes_left": recovery_codes_left,
        "expires_at": family.created_at + session_config.absolute_seconds,
        "reauth_valid_until": family.authenticated_at + session_config.reauth_seconds,
        "notices": notices,
    })))
}

async fn list_sessions(State(state): State<AppState>, session: AuthSession) -> Json<Value> {
    let families = state.with_sessions(|table| table.list(&session.family.username));
    let listed: Vec<Value> = families
        .iter()
        .map(|family| {
            json!({
                "id": family.id,
                "created_at": family.created_at,
                "last_seen_at": family.last_seen_at,
                "client_ip": family.client_ip.to_string(),
                "device": family.device,
                "current": family.id == session.family.id,
            })
        })
        .collect();
    Json(json!({"sessions": listed}))
}

async fn revoke_session(
    State(state): State<AppState>,
    session: AuthSession,
    Path(family_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let owned = state.with_sessions(|table| {
        let owned = table
            .get(&family_id)
            .is_some_and(|family| family.username == session.family.username);
        if owned {
            table.revoke(&family_id);
        }
        owned
    });
    if !owned {
        return Err(ApiError::NotFound);
    }
    state.persist_sessions().await?;
    state.audit(
        AuditKind::SessionRevoked,
        Some(&session.family.username),
        None,
        format!("family {family_id}"),
    );
    Ok(StatusCode::NO_CONTENT)
}

async fn reauth(
    State(state): State<AppState>,
    Extension(client): Extension<ClientIp>,
    headers: HeaderMap,
    session: AuthSession,
    AppJson(body): AppJson<ReauthBody>,
) -> Result<StatusCode, ApiError> {
    let attempt = LoginAttempt {
        username: session.family.username.clone(),
        password: body.password,
        code: Some(body.code),
        client_ip: client.0,
        user_agent: user_agent(&headers),
        device_token: cookies::read(&headers, cookies::DEVICE).and_then(Token::parse),
    };
    login::verify_credentials(&state, &attempt).await?;
    let now = state.now();
    state.with_sessions(|table| table.mark_authenticated(&session.family.id, now));
    state.persist_sessions().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ends every other session of the user after a credential change.
async fn revoke_others(state: &AppState, session: &AuthSession, why: &str) -> Result<(), ApiError> {
    let n_revoked = state.with_sessions(|table| {
        table.revoke_user(&session.family.username, Some(&session.family.id))
    });
    state.persist_sessions().await?;
    state.audit(
        AuditKind::SessionRevoked,
        Some(&session.family.username),
        None,
        format!("{n_revoked} other sessions ended after {why}"),
    );
    Ok(())
}

async fn change_password(
    State(state): State<AppState>,
    session: AuthSession,
    AppJson(body): AppJson<PasswordBody>,
) -> Result<StatusCode, ApiError> {
    session.require_recent_auth(&state)?;
    let username = session.family.username.clone();
    let new_password = password::normalize(&body.new_password);
    login::check_new_password(&state, &username, &new_password)
        .await
        .map_err(|rejection| ApiError::BadRequest {
            code: "password.rejected",
            message: rejection.to_string(),
        })?;
    let hash = state
        .hasher
        .hash(&new_password)
        .await
        .map_err(AuthError::from)?;
    {
        let mut users = state.users.lock().await;
        let user = users
            .users
            .get_mut(&username)
            .ok_or(ApiError::Unauthenticated)?;
        user.password_hash = hash;
        user.password_changed_at = state.now();
        state.persist_users(&users).await?;
    }
    state.audit(AuditKind::PasswordChanged, Some(&username), None, "");
    revoke_others(&state, &session, "a password change").await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn totp_enrol(
    State(state): State<AppState>,
    session: AuthSession,
) -> Result<Json<Value>, ApiError> {
    session.require_recent_auth(&state)?;
    let secret = totp::generate_secret().map_err(AuthError::from)?;
    let enrolment = setup::enrolment(&secret, &session.family.username);
    if let Ok(mut pending) = state.pending_totp.lock() {
        pending.insert(session.family.username.clone(), secret);
    }
    Ok(Json(json!({
        "secret": enrolment.secret_base32,
        "otpauth_uri": enrolment.otpauth_uri,
        "qr_svg": enrolment.qr_svg,
    })))
}

async fn totp_confirm(
    State(state): State<AppState>,
    session: AuthSession,
    AppJson(body): AppJson<CodeBody>,
) -> Result<StatusCode, ApiError> {
    session.require_recent_auth(&state)?;
    let username = session.family.username.clone();
    let secret = state
        .pending_totp
        .lock()
        .ok()
        .and_then(|pending| pending.get(&username).cloned())
        .ok_or(ApiError::BadRequest {
            code: "totp.not_pending",
            message: "call /api/v1/auth/totp/enrol first".into(),
        })?;
    let step =
        totp::accept(&secret, &body.code, state.now(), None).map_err(|_| ApiError::BadRequest {
            code: "totp.mismatch",
            message: "code does not match the new secret".into(),
        })?;
    {
        let mut users = state.users.lock().await;
        let user = users
            .users
            .get_mut(&username)
            .ok_or(ApiError::Unauthenticated)?;
        user.totp = Some(TotpState {
            secret: totp::encode_secret(&secret),
            last_used_step: Some(step),
        });
        state.persist_users(&users).await?;
    }
    if let Ok(mut pending) = state.pending_totp.lock() {
        pending.remove(&username);
    }
    state.audit(AuditKind::TotpChanged, Some(&username), None, "enrolled");
    revoke_others(&state, &session, "a TOTP change").await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn totp_disable(
    State(state): State<AppState>,
    session: AuthSession,
) -> Result<StatusCode, ApiError> {
    session.require_recent_auth(&state)?;
    let username = session.family.username.clone();
    {
        let mut users = state.users.lock().await;
        let user = users
            .users
            .get_mut(&username)
            .ok_or(ApiError::Unauthenticated)?;
        user.totp = None;
        state.persist_users(&users).await?;
    }
    state.audit(AuditKind::TotpChanged, Some(&username), None, "disabled");
    revoke_others(&state, &session, "disabling TOTP").await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn regenerate_codes(
    State(state): State<AppState>,
    session: AuthSession,
) -> Result<Json<Value>, ApiError> {
    session.require_recent_auth(&state)?;
    let username = session.family.username.clone();
    let codes = crate::auth::recovery_codes::generate().map_err(AuthError::from)?;
    let hashes = setup::hash_codes(&state, &codes).await?;
    {
        let mut users = state.users.lock().await;
        let user = users
            .users
            .get_mut(&username)
            .ok_or(ApiError::Unauthenticated)?;
        user.recovery_codes = hashes;
        state.persist_users(&users).await?;
    }
    state.audit(
        AuditKind::RecoveryCodesRegenerated,
        Some(&username),
        None,
        "",
    );
    Ok(Json(json!({"recovery_codes": codes})))
}

async fn clear_notices(
    State(state): State<AppState>,
    session: AuthSession,
) -> Result<StatusCode, ApiError> {
    let mut users = state.users.lock().await;
    if let Some(user) = users.users.get_mut(&session.family.username) {
        user.notices.clear();
        state.persist_users(&users).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}
