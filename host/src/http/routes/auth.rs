//! `/api/v1/auth/*` and `/api/v1/me`: login, refresh, logout, sessions, re-authentication,
//! password, TOTP and recovery codes.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};

use crate::audit::AuditKind;
use crate::auth::login::{self, LoginAttempt};
use crate::auth::service::AuthService;
use crate::auth::{AuthError, TotpState, password, setup, totp};
use crate::config::Config;
use crate::http::api::{
    CodeRequest, LoginReply, LoginRequest, Me, PasswordRequest, ReauthRequest, RecoveryCodes,
    RefreshReply, SessionEntry, Sessions, TotpEnrolment,
};
use crate::http::client_ip::ClientIp;
use crate::http::cookies;
use crate::http::error::ApiError;
use crate::http::extract::{AppJson, AuthSession, UserAgent};
use crate::session::service::{SessionService, fresh_tokens};
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
    State(auth): State<Arc<AuthService>>,
    State(sessions): State<Arc<SessionService>>,
    Extension(client): Extension<ClientIp>,
    UserAgent(user_agent): UserAgent,
    headers: HeaderMap,
    AppJson(body): AppJson<LoginRequest>,
) -> Result<Response, ApiError> {
    // A session presented at login is ended: the new one never reuses it (fixation).
    if let Some(planted) = cookies::read(&headers, cookies::SESSION).and_then(Token::parse) {
        let planted_hash = planted.hash();
        let revoked = sessions.with_table(|table| {
            let family_id = table.family_of_access(&planted_hash);
            family_id.and_then(|family_id| table.revoke(&family_id))
        });
        if revoked.is_some() {
            sessions.persist().await?;
        }
    }
    let attempt = LoginAttempt {
        username: body.username,
        password: body.password,
        code: body.code,
        client_ip: client.0,
        user_agent,
        device_token: cookies::read(&headers, cookies::DEVICE).and_then(Token::parse),
    };
    let success = login::login(&auth, &sessions, attempt).await?;
    let mut response = Json(LoginReply {
        csrf_token: success.tokens.csrf.encode(),
        recovery_codes_left: success.recovery_codes_left,
        username: success.username,
    })
    .into_response();
    session_cookies(
        &mut response,
        &success.tokens,
        sessions.rules().idle_seconds,
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
    State(auth): State<Arc<AuthService>>,
    State(sessions): State<Arc<SessionService>>,
    Extension(client): Extension<ClientIp>,
    UserAgent(user_agent): UserAgent,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let presented = cookies::read(&headers, cookies::REFRESH)
        .and_then(Token::parse)
        .ok_or(ApiError::Unauthenticated)?;
    let rules = sessions.rules();
    let now = sessions.now();
    // Drawn before taking the table lock, used only if this call rotates.
    let fresh = fresh_tokens("").map_err(AuthError::from)?;
    let outcome = sessions.with_table(|table| {
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
            sessions.persist().await?;
            tokens
        }
        RefreshOutcome::Replayed(tokens) => tokens,
        RefreshOutcome::Revoked {
            family_id,
            username,
        } => {
            sessions.persist().await?;
            auth.auditor.record(
                AuditKind::RefreshReuseDetected,
                Some(&username),
                Some(client.0),
                format!("family {family_id} revoked"),
            );
            auth.notify(
                &username,
                AuditKind::RefreshReuseDetected,
                "a used session token was presented again; that session was ended",
            )
            .await;
            return Err(ApiError::Unauthenticated);
        }
        RefreshOutcome::BindingMismatch { username } => {
            sessions.persist().await?;
            auth.auditor.record(
                AuditKind::SessionBindingMismatch,
                Some(&username),
                Some(client.0),
                "refresh token presented from another browser or network; session ended",
            );
            return Err(ApiError::Unauthenticated);
        }
        RefreshOutcome::Refused => return Err(ApiError::Unauthenticated),
    };
    let mut response = Json(RefreshReply {
        csrf_token: tokens.csrf.encode(),
    })
    .into_response();
    session_cookies(&mut response, &tokens, rules.idle_seconds);
    Ok(response)
}

async fn logout(
    State(auth): State<Arc<AuthService>>,
    State(sessions): State<Arc<SessionService>>,
    session: AuthSession,
) -> Result<Response, ApiError> {
    sessions.with_table(|table| table.revoke(&session.family.id));
    sessions.persist().await?;
    auth.auditor.record(
        AuditKind::SessionRevoked,
        Some(&session.family.username),
        None,
        "logout",
    );
    let mut response = StatusCode::NO_CONTENT.into_response();
    clear_session_cookies(&mut response);
    Ok(response)
}

async fn me(
    State(config): State<Arc<Config>>,
    State(auth): State<Arc<AuthService>>,
    State(sessions): State<Arc<SessionService>>,
    session: AuthSession,
) -> Result<Json<Me>, ApiError> {
    let family = &session.family;
    let (totp_enrolled, recovery_codes_left, notices) = {
        let users = auth.users.lock().await;
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
    Ok(Json(Me {
        expires_at: family.created_at + sessions.rules().absolute_seconds,
        fixture_facts: config
            .pipeline
            .as_ref()
            .is_some_and(|pipeline| pipeline.fixture_facts.is_some()),
        notices,
        reauth_valid_until: sessions.reauth_valid_until(family),
        recovery_codes_left,
        session_id: family.id.clone(),
        totp_enrolled,
        username: family.username.clone(),
    }))
}

async fn list_sessions(
    State(sessions): State<Arc<SessionService>>,
    session: AuthSession,
) -> Json<Sessions> {
    let families = sessions.with_table(|table| table.list(&session.family.username));
    let listed = families
        .into_iter()
        .map(|family| SessionEntry {
            client_ip: family.client_ip.to_string(),
            created_at: family.created_at,
            current: family.id == session.family.id,
            device: family.device,
            id: family.id,
            last_seen_at: family.last_seen_at,
        })
        .collect();
    Json(Sessions { sessions: listed })
}

async fn revoke_session(
    State(auth): State<Arc<AuthService>>,
    State(sessions): State<Arc<SessionService>>,
    session: AuthSession,
    Path(family_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let owned = sessions.with_table(|table| {
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
    sessions.persist().await?;
    auth.auditor.record(
        AuditKind::SessionRevoked,
        Some(&session.family.username),
        None,
        format!("family {family_id}"),
    );
    Ok(StatusCode::NO_CONTENT)
}

async fn reauth(
    State(auth): State<Arc<AuthService>>,
    State(sessions): State<Arc<SessionService>>,
    Extension(client): Extension<ClientIp>,
    UserAgent(user_agent): UserAgent,
    headers: HeaderMap,
    session: AuthSession,
    AppJson(body): AppJson<ReauthRequest>,
) -> Result<StatusCode, ApiError> {
    let attempt = LoginAttempt {
        username: session.family.username.clone(),
        password: body.password,
        code: Some(body.code),
        client_ip: client.0,
        user_agent,
        device_token: cookies::read(&headers, cookies::DEVICE).and_then(Token::parse),
    };
    login::verify_credentials(&auth, &attempt).await?;
    let now = sessions.now();
    sessions.with_table(|table| table.mark_authenticated(&session.family.id, now));
    sessions.persist().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ends every other session of the user after a credential change.
async fn revoke_others(
    auth: &AuthService,
    sessions: &SessionService,
    session: &AuthSession,
    why: &str,
) -> Result<(), ApiError> {
    let n_revoked = sessions
        .with_table(|table| table.revoke_user(&session.family.username, Some(&session.family.id)));
    sessions.persist().await?;
    auth.auditor.record(
        AuditKind::SessionRevoked,
        Some(&session.family.username),
        None,
        format!("{n_revoked} other sessions ended after {why}"),
    );
    Ok(())
}

async fn change_password(
    State(auth): State<Arc<AuthService>>,
    State(sessions): State<Arc<SessionService>>,
    session: AuthSession,
    AppJson(body): AppJson<PasswordRequest>,
) -> Result<StatusCode, ApiError> {
    session.require_recent_auth(&sessions)?;
    let username = session.family.username.clone();
    let new_password = password::normalize(&body.new_password);
    login::check_new_password(&auth, &username, &new_password)
        .await
        .map_err(|rejection| ApiError::BadRequest {
            code: "password.rejected",
            message: rejection.to_string(),
        })?;
    let hash = auth
        .hasher
        .hash(&new_password)
        .await
        .map_err(AuthError::from)?;
    {
        let mut users = auth.users.lock().await;
        let user = users
            .users
            .get_mut(&username)
            .ok_or(ApiError::Unauthenticated)?;
        user.password_hash = hash;
        user.password_changed_at = auth.now();
        auth.persist_users(&users).await?;
    }
    auth.auditor
        .record(AuditKind::PasswordChanged, Some(&username), None, "");
    revoke_others(&auth, &sessions, &session, "a password change").await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn totp_enrol(
    State(auth): State<Arc<AuthService>>,
    State(sessions): State<Arc<SessionService>>,
    session: AuthSession,
) -> Result<Json<TotpEnrolment>, ApiError> {
    session.require_recent_auth(&sessions)?;
    let secret = totp::generate_secret().map_err(AuthError::from)?;
    let enrolment = setup::enrolment(&secret, &session.family.username);
    if let Ok(mut pending) = auth.pending_totp.lock() {
        pending.insert(session.family.username.clone(), secret);
    }
    Ok(Json(enrolment.into()))
}

async fn totp_confirm(
    State(auth): State<Arc<AuthService>>,
    State(sessions): State<Arc<SessionService>>,
    session: AuthSession,
    AppJson(body): AppJson<CodeRequest>,
) -> Result<StatusCode, ApiError> {
    session.require_recent_auth(&sessions)?;
    let username = session.family.username.clone();
    let secret = auth
        .pending_totp
        .lock()
        .ok()
        .and_then(|pending| pending.get(&username).cloned())
        .ok_or(ApiError::BadRequest {
            code: "totp.not_pending",
            message: "call /api/v1/auth/totp/enrol first".into(),
        })?;
    let step =
        totp::accept(&secret, &body.code, auth.now(), None).map_err(|_| ApiError::BadRequest {
            code: "totp.mismatch",
            message: "code does not match the new secret".into(),
        })?;
    {
        let mut users = auth.users.lock().await;
        let user = users
            .users
            .get_mut(&username)
            .ok_or(ApiError::Unauthenticated)?;
        user.totp = Some(TotpState {
            secret: totp::encode_secret(&secret),
            last_used_step: Some(step),
        });
        auth.persist_users(&users).await?;
    }
    if let Ok(mut pending) = auth.pending_totp.lock() {
        pending.remove(&username);
    }
    auth.auditor
        .record(AuditKind::TotpChanged, Some(&username), None, "enrolled");
    revoke_others(&auth, &sessions, &session, "a TOTP change").await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn totp_disable(
    State(auth): State<Arc<AuthService>>,
    State(sessions): State<Arc<SessionService>>,
    session: AuthSession,
) -> Result<StatusCode, ApiError> {
    session.require_recent_auth(&sessions)?;
    let username = session.family.username.clone();
    {
        let mut users = auth.users.lock().await;
        let user = users
            .users
            .get_mut(&username)
            .ok_or(ApiError::Unauthenticated)?;
        user.totp = None;
        auth.persist_users(&users).await?;
    }
    auth.auditor
        .record(AuditKind::TotpChanged, Some(&username), None, "disabled");
    revoke_others(&auth, &sessions, &session, "disabling TOTP").await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn regenerate_codes(
    State(auth): State<Arc<AuthService>>,
    State(sessions): State<Arc<SessionService>>,
    session: AuthSession,
) -> Result<Json<RecoveryCodes>, ApiError> {
    session.require_recent_auth(&sessions)?;
    let username = session.family.username.clone();
    let codes = crate::auth::recovery_codes::generate().map_err(AuthError::from)?;
    let hashes = setup::hash_codes(&auth, &codes).await?;
    {
        let mut users = auth.users.lock().await;
        let user = users
            .users
            .get_mut(&username)
            .ok_or(ApiError::Unauthenticated)?;
        user.recovery_codes = hashes;
        auth.persist_users(&users).await?;
    }
    auth.auditor.record(
        AuditKind::RecoveryCodesRegenerated,
        Some(&username),
        None,
        "",
    );
    Ok(Json(RecoveryCodes {
        recovery_codes: codes,
    }))
}

async fn clear_notices(
    State(auth): State<Arc<AuthService>>,
    session: AuthSession,
) -> Result<StatusCode, ApiError> {
    let mut users = auth.users.lock().await;
    if let Some(user) = users.users.get_mut(&session.family.username) {
        user.notices.clear();
        auth.persist_users(&users).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}
