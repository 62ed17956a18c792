//! The `/api/v1` HTTP surface: router, layers, routes. Only this module knows HTTP and JSON
//! request shapes.
//!
//! Layer order, outermost first: security headers (and logging of internal errors) → Host
//! check (DNS rebinding, 421) → client-IP resolution (trusted proxies, 400) → Origin /
//! Sec-Fetch-Site / CSRF-header check on unsafe methods (403) → body limit → routes.

pub mod client_ip;
pub mod cookies;
pub mod error;
pub mod extract;
pub mod routes;

use std::net::SocketAddr;

use axum::Router;
use axum::extract::connect_info::MockConnectInfo;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};

use crate::state::AppState;
use client_ip::ClientIp;
use error::{ApiError, InternalDetail};

/// `Content-Security-Policy` of every response.
pub const CSP: &str = "default-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// Builds the whole application; `nosd` only binds it, tests drive it directly.
pub fn app(state: AppState) -> Router {
    let body_limit = state.config.http.body_limit_bytes;
    Router::new()
        .merge(routes::setup::router())
        .merge(routes::auth::router())
        .fallback(|| async { ApiError::NotFound })
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn(check_cross_site))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            resolve_client,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), check_host))
        .layer(middleware::from_fn(security_headers))
        .with_state(state)
}

async fn security_headers(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    if let Some(InternalDetail(detail)) = response.extensions().get::<InternalDetail>() {
        tracing::error!(%detail, "internal error");
    }
    let headers = response.headers_mut();
    let fixed = [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::STRICT_TRANSPORT_SECURITY, "max-age=31536000"),
        (header::CACHE_CONTROL, "no-store"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// The host part of a `Host` value or authority (`name`, `1.2.3.4`, `[::1]`), lowercased.
pub fn host_name(authority: &str) -> Option<String> {
    let host = if authority.starts_with('[') {
        let end = authority.find(']')?;
        &authority[..=end]
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
            Some(_) => return None,
            None => authority,
        }
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

async fn check_host(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let header_host = req
        .headers()
        .get(header::HOST)
        .and_then(|value| value.to_str().ok());
    let uri_host = req.uri().authority().map(|authority| authority.as_str());
    let allowed = |authority: &str| {
        host_name(authority).is_some_and(|name| {
            state
                .config
                .http
                .allowed_hosts
                .iter()
                .any(|allowed| allowed.eq_ignore_ascii_case(&name))
        })
    };
    let ok = match (header_host, uri_host) {
        (None, None) => false,
        (header_host, uri_host) => header_host.is_none_or(allowed) && uri_host.is_none_or(allowed),
    };
    if !ok {
        return ApiError::MisdirectedHost.into_response();
    }
    next.run(req).await
}

async fn resolve_client(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let extensions = req.extensions();
    let peer = match extensions.get::<ConnectInfo<SocketAddr>>() {
        Some(ConnectInfo(peer)) => *peer,
        None => match extensions.get::<MockConnectInfo<SocketAddr>>() {
            Some(MockConnectInfo(peer)) => *peer,
            None => return ApiError::Internal("no peer address".into()).into_response(),
        },
    };
    match client_ip::resolve(peer.ip(), req.headers(), &state.config.http.trust_proxy) {
        Ok(client) => {
            req.extensions_mut().insert(ClientIp(client));
            next.run(req).await
        }
        Err(_) => ApiError::UntrustedProxyHeaders.into_response(),
    }
}

/// Unsafe methods need the CSRF header (which a cross-site form cannot send and a cross-site
/// fetch cannot send without a failing preflight) and must not come from another site by
/// `Sec-Fetch-Site` or `Origin`. Per-session token equality is checked by `AuthSession`.
async fn check_cross_site(req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let headers = req.headers();
    let fetch_site_ok = headers
        .get("sec-fetch-site")
        .map(|value| matches!(value.to_str(), Ok("same-origin") | Ok("none")))
        .unwrap_or(true);
    let origin_ok = match headers.get(header::ORIGIN).map(|value| value.to_str()) {
        None => true,
        Some(Ok(origin)) => {
            let host = headers
                .get(header::HOST)
                .and_then(|value| value.to_str().ok())
                .unwrap_or("");
            let authority = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"));
            authority
                .is_some_and(|authority| !host.is_empty() && authority.eq_ignore_ascii_case(host))
        }
        Some(Err(_)) => false,
    };
    let has_csrf_header = headers
        .get(extract::CSRF_HEADER)
        .is_some_and(|value| !value.is_empty());
    if !(fetch_site_ok && origin_ok && has_csrf_header) {
        return ApiError::CsrfRejected.into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::host_name;

    #[test]
    fn host_names() {
        assert_eq!(host_name("localhost:9000").as_deref(), Some("localhost"));
        assert_eq!(host_name("[::1]:9000").as_deref(), Some("[::1]"));
        assert_eq!(
            host_name("Attacker.Example").as_deref(),
            Some("attacker.example")
        );
        assert_eq!(host_name("a:b:c"), None);
        assert_eq!(host_name(""), None);
    }
}
