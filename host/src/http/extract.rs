//! Extractors: `AppJson` (bounded, typed JSON with the API's error shape), `UserAgent` (the
//! one reader of the `User-Agent` header) and `AuthSession` (a live, bound session; for unsafe
//! methods also the CSRF token).

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;

use super::client_ip::ClientIp;
use super::cookies;
use super::error::ApiError;
use crate::audit::{AuditKind, Auditor};
use crate::session::service::SessionService;
use crate::session::store::{AccessDenied, SessionView};
use crate::session::token::Token;

/// The CSRF header every unsafe request carries.
pub const CSRF_HEADER: &str = "x-nos-csrf";

/// JSON body: `application/json`, within the body limit, `deny_unknown_fields` on the types.
pub struct AppJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for AppJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| {
                value
                    .split(';')
                    .next()
                    .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
            });
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        // Over the body limit is 413; a body that stops arriving (the server's body-read
        // deadline, a dropped connection) is the client's fault too, but not a size problem.
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            match rejection.status() {
                StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
                _ => ApiError::BadRequest {
                    code: "request.incomplete",
                    message: "request body not received in full".into(),
                },
            }
        })?;
        serde_json::from_slice(&bytes)
            .map(AppJson)
            .map_err(|err| ApiError::BadRequest {
                code: "request.invalid",
                message: format!("invalid request body: {err}"),
            })
    }
}

/// The client address resolved by the outer middleware.
pub fn client_ip(parts: &Parts) -> Result<std::net::IpAddr, ApiError> {
    parts
        .extensions
        .get::<ClientIp>()
        .map(|client| client.0)
        .ok_or_else(|| ApiError::Internal("client ip middleware missing".into()))
}

/// Most characters of a `User-Agent` kept: the session binding hashes it and the sessions
/// list labels the browser from it; the rest is dropped.
pub const MAX_USER_AGENT_CHARS: usize = 512;

/// The request's `User-Agent`, at most [`MAX_USER_AGENT_CHARS`] characters; empty when the
/// header is missing or not visible ASCII.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserAgent(pub String);

impl<S: Send + Sync> FromRequestParts<S> for UserAgent {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
        let text = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("");
        Ok(UserAgent(text.chars().take(MAX_USER_AGENT_CHARS).collect()))
    }
}

/// A request authenticated by the session cookie.
pub struct AuthSession {
    pub family: SessionView,
}

impl AuthSession {
    /// Sensitive actions (password, 2FA and recovery-code changes, applying destructive plans)
    /// need a login or re-authentication (`POST /api/v1/auth/reauth`) within
    /// `session.reauth_seconds` (default 300); otherwise 401 `auth.reauth_required`.
    pub fn require_recent_auth(&self, sessions: &SessionService) -> Result<(), ApiError> {
        if sessions.now() > sessions.reauth_valid_until(&self.family) {
            return Err(ApiError::ReauthRequired);
        }
        Ok(())
    }
}

impl<S> FromRequestParts<S> for AuthSession
where
    S: Send + Sync,
    Arc<SessionService>: FromRef<S>,
    Auditor: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let client = client_ip(parts)?;
        let token = cookies::read(&parts.headers, cookies::SESSION)
            .and_then(Token::parse)
            .ok_or(ApiError::Unauthenticated)?;
        let Ok(UserAgent(user_agent)) = UserAgent::from_request_parts(parts, state).await;
        let sessions = Arc::<SessionService>::from_ref(state);
        let rules = sessions.rules();
        let now = sessions.now();
        let verdict = sessions
            .with_table(|table| table.authenticate(&token, &rules, &user_agent, client, now));
        let family = match verdict {
            Ok(family) => family,
            Err(AccessDenied::Unknown) => return Err(ApiError::Unauthenticated),
            Err(AccessDenied::Ended {
                rejection,
                username,
            }) => {
                Auditor::from_ref(state).record(
                    AuditKind::SessionBindingMismatch,
                    Some(&username),
                    Some(client),
                    format!("{rejection:?}; session ended"),
                );
                sessions.persist().await?;
                return Err(ApiError::Unauthenticated);
            }
        };
        if !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
            let presented = parts
                .headers
                .get(CSRF_HEADER)
                .and_then(|value| value.to_str().ok())
                .and_then(Token::parse)
                .ok_or(ApiError::CsrfRejected)?;
            let expected = String::from(family.csrf_hash);
            let got = String::from(presented.hash());
            if !bool::from(expected.as_bytes().ct_eq(got.as_bytes())) {
                return Err(ApiError::CsrfRejected);
            }
        }
        Ok(AuthSession { family })
    }
}
