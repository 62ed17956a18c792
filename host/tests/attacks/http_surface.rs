//! The HTTP surface: CSRF, cookie attributes, security headers, Host check, setup races,
//! hostile bodies. Some cases drive `app(state)` with `oneshot`, the rest a real server.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::Request;
use nos_host::clock::ManualClock;
use serde_json::json;
use tower::ServiceExt;

use crate::harness::{Client, PASSWORD, T0, TestServer, logged_in};
use crate::login_limits::spawn_all;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csrf_cookie_attributes_headers_and_host() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), "", Arc::new(ManualClock::new(T0))).await;
    let (secret, _) = server.setup_admin(&Client::new()).await;
    server.clock.advance(30);
    let code = server.totp_now(&secret);
    let login_body = json!({"username": "admin", "password": PASSWORD, "code": code}).to_string();
    let client = Client::new();

    // Login CSRF: a cross-site form post (no custom header, foreign Origin) is refused.
    let form = client
        .send(
            client
                .http
                .post(server.url("/api/v1/auth/login"))
                .header("content-type", "application/json")
                .header("origin", "https://evil.example")
                .body(login_body.clone()),
        )
        .await;
    assert_eq!(form.status, 403);
    let no_header = client
        .send(
            client
                .http
                .post(server.url("/api/v1/auth/login"))
                .header("content-type", "application/json")
                .body(login_body.clone()),
        )
        .await;
    assert_eq!(no_header.status, 403);
    let foreign_origin = client
        .send(
            client
                .http
                .post(server.url("/api/v1/auth/login"))
                .header("content-type", "application/json")
                .header("x-nos-csrf", "1")
                .header("origin", "http://attacker.example:9000")
                .body(login_body.clone()),
        )
        .await;
    assert_eq!(foreign_origin.status, 403);
    let cross_site = client
        .send(
            client
                .http
                .post(server.url("/api/v1/auth/login"))
                .header("content-type", "application/json")
                .header("x-nos-csrf", "1")
                .header("sec-fetch-site", "cross-site")
                .body(login_body.clone()),
        )
        .await;
    assert_eq!(cross_site.status, 403);
    let form_encoded = client
        .send(
            client
                .http
                .post(server.url("/api/v1/auth/login"))
                .header("x-nos-csrf", "1")
                .header("content-type", "application/x-www-form-urlencoded")
                .body("username=admin"),
        )
        .await;
    assert_eq!(form_encoded.status, 415);
    expect_test::expect![[
        r#"{"error":{"code":"csrf.rejected","message":"cross-site request refused"}}"#
    ]]
    .assert_eq(&cross_site.raw);

    // Same-origin login with Origin matching Host: accepted; inspect every cookie.
    let same_origin = client
        .send(
            client
                .http
                .post(server.url("/api/v1/auth/login"))
                .header("content-type", "application/json")
                .header("x-nos-csrf", "1")
                .header("origin", format!("http://{}", server.addr))
                .header("sec-fetch-site", "same-origin")
                .body(login_body),
        )
        .await;
    assert_eq!(same_origin.status, 200, "{}", same_origin.raw);
    let cookies = same_origin.set_cookies();
    assert_eq!(cookies.len(), 4);
    for cookie in &cookies {
        assert!(cookie.starts_with("__Host-"), "{cookie}");
        assert!(
            cookie.contains("; Path=/")
                && cookie.contains("; Secure")
                && cookie.contains("; SameSite=Strict"),
            "{cookie}"
        );
        assert!(!cookie.to_lowercase().contains("domain="), "{cookie}");
        assert_eq!(
            cookie.contains("HttpOnly"),
            !cookie.starts_with("__Host-nos_csrf="),
            "{cookie}"
        );
        assert!(cookie.len() < 4096);
    }
    let headers = &same_origin.headers;
    assert_eq!(headers["strict-transport-security"], "max-age=31536000");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("object-src 'none'")
            && csp.contains("base-uri 'none'")
            && csp.contains("frame-ancestors 'none'")
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(headers["cache-control"], "no-store");

    // An authenticated unsafe request needs the session's CSRF token, not just any header.
    let mut session = client.clone();
    session.absorb(&same_origin);
    let mut wrong_token = session.clone();
    wrong_token.csrf = Some("00".repeat(32));
    assert_eq!(
        wrong_token
            .post(&server, "/api/v1/auth/logout", json!({}))
            .await
            .status,
        403
    );
    let mut any_header = session.clone();
    any_header.csrf = Some("1".into());
    assert_eq!(
        any_header
            .post(&server, "/api/v1/auth/logout", json!({}))
            .await
            .status,
        403
    );

    // DNS rebinding: a foreign Host is refused, also in absolute form.
    let rebound = session
        .send(
            session
                .http
                .get(server.url("/api/v1/me"))
                .header("host", "attacker.example"),
        )
        .await;
    assert_eq!(rebound.status, 421);
    assert_eq!(session.get(&server, "/api/v1/me").await.status, 200);

    assert_eq!(
        session
            .post(&server, "/api/v1/auth/logout", json!({}))
            .await
            .status,
        204
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_needs_the_token_admits_exactly_one_admin_then_answers_410() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(
        dir.path(),
        "[limits]\nip_burst = 1000\nip_refill_ms = 1\n",
        Arc::new(ManualClock::new(T0)),
    )
    .await;
    let client = Client::new();
    assert_eq!(client.get(&server, "/api/v1/setup").await.status, 200);
    let token = nos_host::auth::setup::ensure_setup_token(&server.state.auth)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(server.state.store.mode("setup-token"), Some(0o600));
    let no_token = client
        .post(
            &server,
            "/api/v1/setup/totp",
            json!({"token": "", "username": "admin"}),
        )
        .await;
    assert_eq!(no_token.status, 403);
    let wrong = client
        .post(
            &server,
            "/api/v1/setup/totp",
            json!({"token": "0".repeat(32), "username": "admin"}),
        )
        .await;
    assert_eq!(wrong.status, 403);
    let begin = client
        .post(
            &server,
            "/api/v1/setup/totp",
            json!({"token": token, "username": "admin"}),
        )
        .await;
    assert_eq!(begin.status, 200);
    assert!(begin.body["qr_svg"].as_str().unwrap().contains("<svg"));
    assert!(
        begin.body["otpauth_uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/nos:admin?secret=")
    );
    let secret =
        nos_host::auth::totp::decode_secret(begin.body["secret"].as_str().unwrap()).unwrap();
    let code = server.totp_now(&secret);

    let weak = client
        .post(
            &server,
            "/api/v1/setup/admin",
            json!({"token": token, "username": "admin", "password": "password1234", "code": code}),
        )
        .await;
    assert_eq!(weak.status, 400);

    let futures: Vec<_> = ["admin", "root2"]
        .into_iter()
        .map(|username| {
            let client = client.clone();
            let url = server.url("/api/v1/setup/admin");
            let body =
                json!({"token": token, "username": username, "password": PASSWORD, "code": code});
            async move {
                client
                    .send(
                        client
                            .http
                            .post(url)
                            .header("content-type", "application/json")
                            .header("x-nos-csrf", "1")
                            .body(body.to_string()),
                    )
                    .await
                    .status
            }
        })
        .collect();
    let mut statuses = spawn_all(futures).await;
    statuses.sort();
    assert_eq!(statuses, [201, 410]);
    assert_eq!(client.get(&server, "/api/v1/setup").await.status, 410);
    let again = client
        .post(
            &server,
            "/api/v1/setup/totp",
            json!({"token": token, "username": "admin"}),
        )
        .await;
    assert_eq!(again.status, 410);
    assert_eq!(server.state.store.mode("setup-token"), None);
    server.stop().await;
}

/// Hostile bodies through `oneshot`, without binding a port.
#[tokio::test]
async fn hostile_bodies_get_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let text = crate::harness::config_toml(dir.path(), "");
    let config =
        nos_host::config::Config::from_toml_str(&text, std::path::Path::new("t.toml")).unwrap();
    let state = nos_host::state::AppState::open(nos_host::state::StateDeps {
        config,
        clock: Arc::new(ManualClock::new(T0)),
        audit: Arc::new(nos_host::audit::MemoryAudit::default()),
        policy: None,
    })
    .unwrap();
    let app = nos_host::app(state).layer(MockConnectInfo(SocketAddr::from(([127, 0, 0, 1], 1))));
    let cases: [(&str, String, u16); 5] = [
        ("/api/v1/auth/login", "{".into(), 400),
        (
            "/api/v1/auth/login",
            json!({"username": "a", "password": "b", "extra": 1}).to_string(),
            400,
        ),
        (
            "/api/v1/auth/login",
            json!({"username": "a", "password": "x".repeat(9000)}).to_string(),
            413,
        ),
        ("/api/v1/auth/login", "[]".into(), 400),
        ("/api/v1/nope", "{}".into(), 404),
    ];
    for (path, body, expected) in cases {
        let request = Request::post(path)
            .header("host", "localhost:9000")
            .header("content-type", "application/json")
            .header("x-nos-csrf", "1")
            .body(Body::from(body))
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        assert_eq!(
            status,
            expected,
            "{path} {}",
            String::from_utf8_lossy(&bytes)
        );
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert!(value["error"]["code"].is_string(), "{value}");
    }
    let no_host = Request::get("/api/v1/me").body(Body::empty()).unwrap();
    assert_eq!(
        app.clone()
            .oneshot(no_host)
            .await
            .unwrap()
            .status()
            .as_u16(),
        421
    );
    let me = Request::get("/api/v1/me")
        .header("host", "localhost")
        .body(Body::empty())
        .unwrap();
    let response = app.oneshot(me).await.unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
        .await
        .unwrap();
    expect_test::expect![[r#"{"error":{"code":"auth.required","message":"login required"}}"#]]
        .assert_eq(std::str::from_utf8(&bytes).unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn totp_reenrolment_and_recovery_code_regeneration_need_recent_auth() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(
        dir.path(),
        "[limits]\nip_burst = 1000\nip_refill_ms = 1\n",
        Arc::new(ManualClock::new(T0)),
    )
    .await;
    let (secret, old_codes) = server.setup_admin(&Client::new()).await;
    let session = logged_in(&server, &secret).await;
    let other = logged_in(&server, &secret).await;
    let enrol = session
        .post(&server, "/api/v1/auth/totp/enrol", json!({}))
        .await;
    assert_eq!(enrol.status, 200);
    let new_secret =
        nos_host::auth::totp::decode_secret(enrol.body["secret"].as_str().unwrap()).unwrap();
    server.clock.advance(30);
    let confirm = session
        .post(
            &server,
            "/api/v1/auth/totp/confirm",
            json!({"code": server.totp_now(&new_secret)}),
        )
        .await;
    assert_eq!(confirm.status, 204, "{}", confirm.raw);
    assert_eq!(
        other.get(&server, "/api/v1/me").await.status,
        401,
        "2FA change ends other sessions"
    );
    let regenerated = session
        .post(&server, "/api/v1/auth/recovery-codes", json!({}))
        .await;
    assert_eq!(regenerated.status, 200);
    let fresh = Client::new();
    assert_eq!(
        fresh
            .login(&server, "admin", PASSWORD, Some(&old_codes[3]))
            .await
            .status,
        401,
        "old codes are void"
    );
    let new_code = regenerated.body["recovery_codes"][0].as_str().unwrap();
    assert_eq!(
        fresh
            .login(&server, "admin", PASSWORD, Some(new_code))
            .await
            .status,
        200
    );
    server.stop().await;
}
