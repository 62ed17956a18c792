//! The `/api/v1` HTTP surface: router, layers, routes. Only this module knows HTTP and JSON
//! request shapes (`api`, the one set of request and response types).
//!
//! Handlers take the services they use (`State<Arc<AuthService>>`, `State<Arc<SessionService>>`,
//! `State<Arc<PipelineSlot>>`…), each derived from the [`AppState`] by `FromRef` below, never
//! the whole state.
//!
//! Layer order, outermost first: security headers (and logging of internal errors) → Host
//! check (DNS rebinding, 421) → client-IP resolution (trusted proxies, 400) → Origin /
//! Sec-Fetch-Site / CSRF-header check on unsafe methods (403) → body limit → routes.

pub mod api;
pub mod client_ip;
pub mod cookies;
pub mod error;
pub mod extract;
pub mod routes;
pub mod serve;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::connect_info::MockConnectInfo;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRef, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};

use crate::alerts::AlertService;
use crate::audit::Auditor;
use crate::auth::service::AuthService;
use crate::config::{Config, HttpConfig};
use crate::pipeline::PipelineSlot;
use crate::pools::PoolService;
use crate::schedules::ScheduleService;
use crate::session::service::SessionService;
use crate::state::AppState;
use crate::store::StateDir;
use client_ip::ClientIp;
use error::{ApiError, InternalDetail};

/// `Content-Security-Policy` of every response. The admin UI loads only its own files: no
/// inline script or style (not even `style=` attributes), no data: or blob: URLs, and with
/// Trusted Types required and no policy allowed, no script can parse an HTML string
/// (`innerHTML` and friends throw), so the UI builds every node with DOM calls.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; font-src 'none'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'; require-trusted-types-for 'script'; trusted-types 'none'";

/// Builds the whole application; `nosd` only binds it, tests drive it directly.
pub fn app(state: AppState) -> Router {
    let body_limit = state.config.http.body_limit_bytes;
    Router::new()
        .merge(routes::setup::router())
        .merge(routes::auth::router())
        .merge(routes::allowlist::router())
        .merge(routes::ui::router())
        .merge(routes::pipeline::router())
        .merge(routes::pools::router())
        .merge(routes::shares::router())
        .merge(routes::alerts::router())
        .merge(routes::schedules::router())
        .fallback(|| async { ApiError::NotFound })
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn_with_state(
            Arc::new(state.config.http.clone()),
            guard,
        ))
        .with_state(state)
}

/// `FromRef` for each service a handler may take from the [`AppState`].
macro_rules! services {
    ($($field:ident: $service:ty),* $(,)?) => {$(
        impl FromRef<AppState> for $service {
            fn from_ref(state: &AppState) -> $service {
                state.$field.clone()
            }
        }
    )*};
}

services! {
    config: Arc<Config>,
    store: Arc<StateDir>,
    auditor: Auditor,
    auth: Arc<AuthService>,
    sessions: Arc<SessionService>,
    pipeline: Arc<PipelineSlot>,
    pools: Arc<PoolService>,
    alerts: Arc<AlertService>,
    schedules: Arc<ScheduleService>,
}

/// The one outer layer, so a request pays for one boxed future instead of four. Checks run in
/// the order of the module doc; every response, refusals included, gets the security headers.
async fn guard(State(http): State<Arc<HttpConfig>>, mut req: Request, next: Next) -> Response {
    let checked = check_host(&http, &req)
        .and_then(|()| peer_of(&req))
        .and_then(|peer| {
            client_ip::resolve(
                peer.ip(),
                req.headers(),
                &http.trust_proxy,
                http.client_ip_header,
            )
            .map_err(|rejection| match rejection {
                client_ip::ProxyRejection::UntrustedPeer => ApiError::UntrustedProxyHeaders,
                client_ip::ProxyRejection::Malformed => ApiError::MalformedProxyHeader,
            })
        })
        .and_then(|client| check_cross_site(&req).map(|()| client));
    let mut response = match checked {
        Ok(client) => {
            req.extensions_mut().insert(ClientIp(client));
            next.run(req).await
        }
        Err(refusal) => refusal.into_response(),
    };
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

/// DNS rebinding: `Host` (and an absolute-form authority) must name this server.
fn check_host(http: &HttpConfig, req: &Request) -> Result<(), ApiError> {
    let header_host = req
        .headers()
        .get(header::HOST)
        .and_then(|value| value.to_str().ok());
    let uri_host = req.uri().authority().map(|authority| authority.as_str());
    let allowed = |authority: &str| {
        host_name(authority).is_some_and(|name| {
            http.allowed_hosts
                .iter()
                .any(|allowed| allowed.eq_ignore_ascii_case(&name))
        })
    };
    let ok = match (header_host, uri_host) {
        (None, None) => false,
        (header_host, uri_host) => header_host.is_none_or(allowed) && uri_host.is_none_or(allowed),
    };
    if ok {
        Ok(())
    } else {
        Err(ApiError::MisdirectedHost)
    }
}

fn peer_of(req: &Request) -> Result<SocketAddr, ApiError> {
    let extensions = req.extensions();
    match extensions.get::<ConnectInfo<SocketAddr>>() {
        Some(ConnectInfo(peer)) => Ok(*peer),
        None => match extensions.get::<MockConnectInfo<SocketAddr>>() {
            Some(MockConnectInfo(peer)) => Ok(*peer),
            None => Err(ApiError::Internal("no peer address".into())),
        },
    }
}

/// Unsafe methods need the CSRF header (which a cross-site form cannot send and a cross-site
/// fetch cannot send without a failing preflight) and must not come from another site by
/// `Sec-Fetch-Site` or `Origin`. Per-session token equality is checked by `AuthSession`.
fn check_cross_site(req: &Request) -> Result<(), ApiError> {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
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
    if fetch_site_ok && origin_ok && has_csrf_header {
        Ok(())
    } else {
        Err(ApiError::CsrfRejected)
    }
}

#[cfg(test)]
mod tests {
    use super::host_name;
    use proptest::prelude::*;

    proptest! {
        /// No header or cookie text makes a parser panic.
        #[test]
        fn parsers_never_panic(text in "\\PC{0,80}", raw in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = host_name(&text);
            let _ = crate::session::token::Token::parse(&text);
            let _ = crate::auth::recovery_codes::canonical(&text);
            let _ = crate::auth::username_key(&text);
            let _ = crate::recovery::cmdline_has_flag(&text);
            let mut headers = axum::http::HeaderMap::new();
            if let Ok(value) = axum::http::HeaderValue::from_bytes(&raw) {
                headers.insert("x-forwarded-for", value.clone());
                headers.insert("forwarded", value.clone());
                headers.insert("cookie", value);
            }
            let trust = [crate::net::Cidr::try_from("127.0.0.0/8".to_string()).unwrap()];
            for header in [crate::net::ForwardingHeader::XForwardedFor, crate::net::ForwardingHeader::Forwarded] {
                let _ = super::client_ip::resolve("127.0.0.1".parse().unwrap(), &headers, &trust, header);
            }
            let _ = super::cookies::read(&headers, super::cookies::SESSION);
            let _ = crate::auth::totp::matched_step(b"12345678901234567890", &text, 1_700_000_000);
        }
    }

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
