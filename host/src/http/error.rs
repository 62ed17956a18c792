//! The one API error type and its one `IntoResponse`.
//!
//! Bodies are `{"error": {"code": "...", "message": "..."}}`. Every credential failure maps to
//! the same status and bytes ([`ApiError::AuthFailed`]); every throttle to 429 with
//! Retry-After. Internal detail never reaches the client: it rides along as a response
//! extension ([`InternalDetail`]) that the outer middleware logs.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::api::{ErrorBody, ErrorDetail};
use crate::auth::AuthError;
use crate::pipeline::Refusal;
use crate::session::service::SessionError;
use crate::store::StoreError;

#[derive(Debug)]
pub enum ApiError {
    AuthFailed,
    Unauthenticated,
    ReauthRequired,
    RateLimited {
        retry_after: u64,
    },
    Busy {
        retry_after: u64,
    },
    BadRequest {
        code: &'static str,
        message: String,
    },
    PayloadTooLarge,
    UnsupportedMediaType,
    CsrfRejected,
    SetupRefused,
    SetupDone,
    NotFound,
    MisdirectedHost,
    UntrustedProxyHeaders,
    /// The configured forwarding header from a trusted proxy cannot be parsed.
    MalformedProxyHeader,
    /// The allowlist file cannot be read or does not load; the message names the file and
    /// the problem (the allowlist is what an auditor reads, so its diagnostics are not secret).
    AllowlistUnavailable(String),
    Internal(String),
    /// A typed refusal of the storage pipeline (409 stale or busy, 403 not yours, 410 expired,
    /// 422 rejected steps, 503 agent unreachable) with its own code and public message.
    Refused {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
}

/// The internal cause of a 500, for the log only.
#[derive(Debug, Clone)]
pub struct InternalDetail(pub String);

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::AuthFailed | ApiError::Unauthenticated | ApiError::ReauthRequired => {
                StatusCode::UNAUTHORIZED
            }
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::BadRequest { .. }
            | ApiError::UntrustedProxyHeaders
            | ApiError::MalformedProxyHeader => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::CsrfRejected | ApiError::SetupRefused => StatusCode::FORBIDDEN,
            ApiError::SetupDone => StatusCode::GONE,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MisdirectedHost => StatusCode::MISDIRECTED_REQUEST,
            ApiError::AllowlistUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Refused { status, .. } => *status,
        }
    }

    fn code_and_message(&self) -> (&'static str, String) {
        match self {
            ApiError::AuthFailed => ("auth.failed", "authentication failed".into()),
            ApiError::Unauthenticated => ("auth.required", "login required".into()),
            ApiError::ReauthRequired => (
                "auth.reauth_required",
                "confirm your password and code first".into(),
            ),
            ApiError::RateLimited { .. } => {
                ("rate_limited", "too many attempts, try again later".into())
            }
            ApiError::Busy { .. } => ("busy", "server busy, try again shortly".into()),
            ApiError::BadRequest { code, message } => (code, message.clone()),
            ApiError::PayloadTooLarge => ("request.too_large", "request body too large".into()),
            ApiError::UnsupportedMediaType => (
                "request.content_type",
                "expected content-type application/json".into(),
            ),
            ApiError::CsrfRejected => ("csrf.rejected", "cross-site request refused".into()),
            ApiError::SetupRefused => (
                "setup.refused",
                "setup token missing, wrong or expired".into(),
            ),
            ApiError::SetupDone => ("setup.complete", "setup is already complete".into()),
            ApiError::NotFound => ("not_found", "no such resource".into()),
            ApiError::MisdirectedHost => ("host.rejected", "host name not served here".into()),
            ApiError::UntrustedProxyHeaders => (
                "proxy.untrusted",
                "forwarding headers from a peer that is not a trusted proxy".into(),
            ),
            ApiError::MalformedProxyHeader => (
                "proxy.malformed",
                "the forwarding header from the trusted proxy cannot be parsed".into(),
            ),
            ApiError::AllowlistUnavailable(message) => ("allowlist.unavailable", message.clone()),
            ApiError::Internal(_) => ("internal", "internal error".into()),
            ApiError::Refused { code, message, .. } => (code, message.clone()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let (code, message) = self.code_and_message();
        let body = ErrorBody {
            error: ErrorDetail { code, message },
        };
        let mut response = (status, axum::Json(body)).into_response();
        match &self {
            ApiError::RateLimited { retry_after } | ApiError::Busy { retry_after } => {
                if let Ok(value) = HeaderValue::from_str(&retry_after.max(&1).to_string()) {
                    response.headers_mut().insert(header::RETRY_AFTER, value);
                }
            }
            ApiError::Internal(detail) => {
                response
                    .extensions_mut()
                    .insert(InternalDetail(detail.clone()));
            }
            _ => {}
        }
        response
    }
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> ApiError {
        match err {
            AuthError::Failed => ApiError::AuthFailed,
            AuthError::Throttled { retry_after } => ApiError::RateLimited { retry_after },
            AuthError::Busy => ApiError::Busy { retry_after: 1 },
            AuthError::Invalid(message) => ApiError::BadRequest {
                code: "request.invalid",
                message,
            },
            AuthError::SetupRefused => ApiError::SetupRefused,
            AuthError::SetupDone => ApiError::SetupDone,
            AuthError::ReauthRequired => ApiError::ReauthRequired,
            AuthError::Store(err) => ApiError::from(err),
            AuthError::Internal(detail) => ApiError::Internal(detail),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> ApiError {
        ApiError::Internal(err.to_string())
    }
}

impl From<SessionError> for ApiError {
    fn from(err: SessionError) -> ApiError {
        ApiError::from(AuthError::from(err))
    }
}

/// An unknown alert is a 404 `alert.unknown` naming the id; a failed write is internal.
impl From<crate::alerts::AlertError> for ApiError {
    fn from(err: crate::alerts::AlertError) -> ApiError {
        match err {
            crate::alerts::AlertError::Ack(unknown) => ApiError::Refused {
                status: StatusCode::NOT_FOUND,
                code: "alert.unknown",
                message: unknown.to_string(),
            },
            crate::alerts::AlertError::Store(err) => ApiError::from(err),
        }
    }
}

/// A refused schedule change: 404 for an unknown schedule or planner, 403 for a planner not
/// granted, 409 for one schedule too many, 413 for an input too large, 422 for terms the
/// allowlist or the planner refuse; a failed write is internal.
impl From<crate::schedules::ScheduleError> for ApiError {
    fn from(err: crate::schedules::ScheduleError) -> ApiError {
        use crate::schedules::TermsError;
        let terms = match err {
            crate::schedules::ScheduleError::Store(err) => return ApiError::from(err),
            crate::schedules::ScheduleError::Terms(terms) => terms,
        };
        let status = match &terms {
            TermsError::Unknown { .. } | TermsError::UnknownPlanner { .. } => StatusCode::NOT_FOUND,
            TermsError::NotGranted { .. } => StatusCode::FORBIDDEN,
            TermsError::TooMany => StatusCode::CONFLICT,
            TermsError::InputTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            TermsError::NoRules
            | TermsError::TooManyRules
            | TermsError::UnknownRule { .. }
            | TermsError::OutsideScope { .. }
            | TermsError::DestructiveRule { .. }
            | TermsError::BadPeriod { .. }
            | TermsError::InputHasTag => StatusCode::UNPROCESSABLE_ENTITY,
        };
        ApiError::Refused {
            status,
            code: terms.code(),
            message: terms.to_string(),
        }
    }
}

/// The pipeline's refusals: the code and message are the refusal's own; only the status is
/// decided here.
impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> ApiError {
        let status = match &refusal {
            Refusal::InputTooLarge { .. } => return ApiError::PayloadTooLarge,
            Refusal::ReauthRequired => return ApiError::ReauthRequired,
            Refusal::Store(err) => return ApiError::Internal(err.to_string()),
            Refusal::Unconfigured | Refusal::AgentUnreachable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Refusal::UnknownPlugin { .. }
            | Refusal::UnknownPlan { .. }
            | Refusal::UnknownDisk { .. }
            | Refusal::UnknownSnapshot { .. } => StatusCode::NOT_FOUND,
            Refusal::TooManyLocks { .. } => StatusCode::CONFLICT,
            Refusal::ReadFailed(_) => StatusCode::BAD_GATEWAY,
            Refusal::HashMismatch { .. } | Refusal::PoolBusy { .. } | Refusal::Stale => {
                StatusCode::CONFLICT
            }
            Refusal::NotGranted { .. }
            | Refusal::GrantWithdrawn { .. }
            | Refusal::NotYours { .. }
            | Refusal::AttendedOnly { .. } => StatusCode::FORBIDDEN,
            Refusal::PluginFailed(_)
            | Refusal::PlanRefused { .. }
            | Refusal::RejectedSteps { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Refusal::Expired { .. } => StatusCode::GONE,
            Refusal::ConfirmationMismatch { .. } => StatusCode::BAD_REQUEST,
        };
        ApiError::Refused {
            status,
            code: refusal.code(),
            message: refusal.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_error_body() {
        let cases = [
            ApiError::AuthFailed,
            ApiError::Unauthenticated,
            ApiError::ReauthRequired,
            ApiError::RateLimited { retry_after: 60 },
            ApiError::Busy { retry_after: 1 },
            ApiError::BadRequest {
                code: "request.invalid",
                message: "bad".into(),
            },
            ApiError::PayloadTooLarge,
            ApiError::UnsupportedMediaType,
            ApiError::CsrfRejected,
            ApiError::SetupRefused,
            ApiError::SetupDone,
            ApiError::NotFound,
            ApiError::MisdirectedHost,
            ApiError::UntrustedProxyHeaders,
            ApiError::MalformedProxyHeader,
            ApiError::AllowlistUnavailable("cannot read /etc/nos/allowlist.toml: not found".into()),
            ApiError::Internal("disk on fire at /var/lib/nos/users.json".into()),
        ];
        let mut lines = Vec::new();
        for case in cases {
            let response = case.into_response();
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get(header::RETRY_AFTER)
                .map(|value| format!(" retry-after={}", value.to_str().unwrap_or("")))
                .unwrap_or_default();
            let bytes = axum::body::to_bytes(response.into_body(), 4096)
                .await
                .unwrap();
            lines.push(format!(
                "{status}{retry_after} {}",
                String::from_utf8_lossy(&bytes)
            ));
        }
        expect_test::expect![[r#"
            401 {"error":{"code":"auth.failed","message":"authentication failed"}}
            401 {"error":{"code":"auth.required","message":"login required"}}
            401 {"error":{"code":"auth.reauth_required","message":"confirm your password and code first"}}
            429 retry-after=60 {"error":{"code":"rate_limited","message":"too many attempts, try again later"}}
            503 retry-after=1 {"error":{"code":"busy","message":"server busy, try again shortly"}}
            400 {"error":{"code":"request.invalid","message":"bad"}}
            413 {"error":{"code":"request.too_large","message":"request body too large"}}
            415 {"error":{"code":"request.content_type","message":"expected content-type application/json"}}
            403 {"error":{"code":"csrf.rejected","message":"cross-site request refused"}}
            403 {"error":{"code":"setup.refused","message":"setup token missing, wrong or expired"}}
            410 {"error":{"code":"setup.complete","message":"setup is already complete"}}
            404 {"error":{"code":"not_found","message":"no such resource"}}
            421 {"error":{"code":"host.rejected","message":"host name not served here"}}
            400 {"error":{"code":"proxy.untrusted","message":"forwarding headers from a peer that is not a trusted proxy"}}
            400 {"error":{"code":"proxy.malformed","message":"the forwarding header from the trusted proxy cannot be parsed"}}
            503 {"error":{"code":"allowlist.unavailable","message":"cannot read /etc/nos/allowlist.toml: not found"}}
            500 {"error":{"code":"internal","message":"internal error"}}"#]].assert_eq(&lines.join("\n"));
    }
}
