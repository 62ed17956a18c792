//! Sessions: concurrent refresh, reuse after grace, fixation, binding, timeouts, revocation.

use std::sync::Arc;

use nos_host::audit::AuditKind;
use nos_host::clock::ManualClock;
use serde_json::json;

use crate::harness::{Client, PASSWORD, T0, TestServer, logged_in};
use crate::login_limits::spawn_all;

const LOOSE: &str = "[limits]\nip_burst = 1000\nip_refill_ms = 1\nfree_failures = 1000\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_refreshes_rotate_once_and_reuse_after_grace_revokes_the_family() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), LOOSE, Arc::new(ManualClock::new(T0))).await;
    let (secret, _) = server.setup_admin(&Client::new()).await;
    let client = logged_in(&server, &secret).await;
    let stolen_refresh = client.cookies["__Host-nos_rt"].clone();

    let futures: Vec<_> = (0..20)
        .map(|_| {
            let client = client.clone();
            let url = server.url("/api/v1/auth/refresh");
            async move {
                client
                    .send(
                        client
                            .http
                            .post(url)
                            .header("x-nos-csrf", client.csrf.clone().unwrap()),
                    )
                    .await
            }
        })
        .collect();
    let replies = spawn_all(futures).await;
    assert!(
        replies.iter().all(|reply| reply.status == 200),
        "{:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    let successors: std::collections::BTreeSet<_> = replies
        .iter()
        .map(|reply| {
            (
                reply.cookie("__Host-nos_sid").unwrap(),
                reply.cookie("__Host-nos_rt").unwrap(),
            )
        })
        .collect();
    assert_eq!(
        successors.len(),
        1,
        "exactly one rotation, every caller got the same successor"
    );
    let mut tab = client.clone();
    tab.absorb(&replies[0]);
    assert_eq!(tab.get(&server, "/api/v1/me").await.status, 200);
    assert_ne!(tab.cookies["__Host-nos_rt"], stolen_refresh);

    // A lost response retried within the grace window: same successor, no logout.
    server.clock.advance(10);
    let retry = client
        .send(
            client
                .http
                .post(server.url("/api/v1/auth/refresh"))
                .header("x-nos-csrf", "x"),
        )
        .await;
    assert_eq!(retry.status, 200);
    assert_eq!(
        retry.cookie("__Host-nos_rt").unwrap(),
        tab.cookies["__Host-nos_rt"]
    );

    // The copy replayed after the grace window: the whole family is revoked.
    server.clock.advance(10);
    let replay = client
        .send(
            client
                .http
                .post(server.url("/api/v1/auth/refresh"))
                .header("x-nos-csrf", "x"),
        )
        .await;
    assert_eq!(replay.status, 401);
    assert_eq!(
        tab.get(&server, "/api/v1/me").await.status,
        401,
        "the legitimate holder is logged out too"
    );
    let refreshed = tab
        .send(
            tab.http
                .post(server.url("/api/v1/auth/refresh"))
                .header("x-nos-csrf", "x"),
        )
        .await;
    assert_eq!(refreshed.status, 401);
    assert!(
        server
            .audit
            .events()
            .iter()
            .any(|event| event.kind == AuditKind::RefreshReuseDetected)
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixation_binding_timeouts_and_credential_changes() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = format!("{LOOSE}[http]\ntrust_proxy = [\"127.0.0.1\"]\n");
    let server = TestServer::start(dir.path(), &proxy, Arc::new(ManualClock::new(T0))).await;
    let (secret, _) = server.setup_admin(&Client::new()).await;

    // Fixation: a planted session cookie is never adopted, and a valid one is ended by login.
    let planted = "ab".repeat(32);
    let mut victim = Client::new();
    victim
        .cookies
        .insert("__Host-nos_sid".into(), planted.clone());
    victim.cookies.insert("nos_sid".into(), "cd".repeat(32));
    server.clock.advance(30);
    let reply = victim
        .login(&server, "admin", PASSWORD, Some(&server.totp_now(&secret)))
        .await;
    assert_eq!(reply.status, 200);
    assert_ne!(reply.cookie("__Host-nos_sid").unwrap(), planted);
    let mut attacker = Client::new();
    attacker.cookies.insert("__Host-nos_sid".into(), planted);
    assert_eq!(attacker.get(&server, "/api/v1/me").await.status, 401);
    victim.absorb(&reply);
    let old_victim = victim.clone();
    server.clock.advance(30);
    let relogin = victim
        .login(&server, "admin", PASSWORD, Some(&server.totp_now(&secret)))
        .await;
    assert_eq!(relogin.status, 200);
    assert_eq!(
        old_victim.get(&server, "/api/v1/me").await.status,
        401,
        "the session presented at login was ended"
    );
    victim.absorb(&relogin);

    // Binding: a refresh token replayed with another User-Agent ends the session too.
    let thief = logged_in(&server, &secret).await;
    let stolen = thief.clone().with_header("user-agent", "curl/8");
    let replay = stolen
        .post(&server, "/api/v1/auth/refresh", json!({}))
        .await;
    assert_eq!(replay.status, 401);
    assert_eq!(thief.get(&server, "/api/v1/me").await.status, 401);

    // Binding: another User-Agent ends the session.
    let ua_thief = victim.clone().with_header("user-agent", "curl/8");
    assert_eq!(ua_thief.get(&server, "/api/v1/me").await.status, 401);
    assert_eq!(
        victim.get(&server, "/api/v1/me").await.status,
        401,
        "the mismatch ended the session"
    );

    // Binding: another /24 ends the session; the same /24 does not.
    let mut user = logged_in(&server, &secret).await;
    user = user.with_header("x-forwarded-for", "192.0.2.10");
    // The session was bound to 127.0.0.1 (no forwarding header at login): re-login via proxy.
    server.clock.advance(30);
    let reply = user
        .login(&server, "admin", PASSWORD, Some(&server.totp_now(&secret)))
        .await;
    user.absorb(&reply);
    assert_eq!(
        user.clone()
            .with_header("x-forwarded-for", "192.0.2.99")
            .get(&server, "/api/v1/me")
            .await
            .status,
        200
    );
    assert_eq!(
        user.clone()
            .with_header("x-forwarded-for", "198.51.100.10")
            .get(&server, "/api/v1/me")
            .await
            .status,
        401
    );
    assert_eq!(user.get(&server, "/api/v1/me").await.status, 401);

    // Idle timeout: 15 minutes without use ends the session server-side.
    let idle = logged_in(&server, &secret).await;
    server.clock.advance(14 * 60);
    assert_eq!(idle.get(&server, "/api/v1/me").await.status, 200);
    // Housekeeping writes the activity, so a restart would not cut the session short.
    server.state.housekeeping().await.unwrap();
    let file: nos_host::session::store::SessionsFile = server
        .state
        .store
        .load(nos_host::store::StateFile::Sessions)
        .unwrap()
        .unwrap();
    assert!(
        file.families
            .values()
            .any(|family| family.last_seen_at == server.clock_now())
    );
    server.clock.advance(15 * 60);
    assert_eq!(idle.get(&server, "/api/v1/me").await.status, 401);

    // Sensitive actions need a recent authentication; a password change ends the other sessions.
    let session_a = logged_in(&server, &secret).await;
    let session_b = logged_in(&server, &secret).await;
    server.clock.advance(6 * 60);
    let too_late = session_a
        .post(
            &server,
            "/api/v1/auth/password",
            json!({"new_password": "another long passphrase 7"}),
        )
        .await;
    assert_eq!(too_late.status, 401);
    assert_eq!(too_late.body["error"]["code"], "auth.reauth_required");
    let reauth = session_a
        .post(
            &server,
            "/api/v1/auth/reauth",
            json!({"password": PASSWORD, "code": server.totp_now(&secret)}),
        )
        .await;
    assert_eq!(reauth.status, 204, "{}", reauth.raw);
    let weak = session_a
        .post(
            &server,
            "/api/v1/auth/password",
            json!({"new_password": "short"}),
        )
        .await;
    assert_eq!(weak.status, 400);
    let changed = session_a
        .post(
            &server,
            "/api/v1/auth/password",
            json!({"new_password": "another long passphrase 7"}),
        )
        .await;
    assert_eq!(changed.status, 204, "{}", changed.raw);
    assert_eq!(session_a.get(&server, "/api/v1/me").await.status, 200);
    assert_eq!(session_b.get(&server, "/api/v1/me").await.status, 401);

    // Sessions list and revoke (CSRF-checked); logout ends the session.
    let mut session_c = Client::new();
    server.clock.advance(30);
    let reply = session_c
        .login(
            &server,
            "admin",
            "another long passphrase 7",
            Some(&server.totp_now(&secret)),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.raw);
    session_c.absorb(&reply);
    let listed = session_a.get(&server, "/api/v1/auth/sessions").await;
    let sessions = listed.body["sessions"].as_array().unwrap().clone();
    assert_eq!(sessions.len(), 2);
    let other_id = sessions
        .iter()
        .find(|entry| entry["current"] == false)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/api/v1/auth/sessions/{other_id}");
    let no_csrf = session_a
        .send(session_a.http.delete(server.url(&path)))
        .await;
    assert_eq!(no_csrf.status, 403);
    let revoked = session_a
        .send(
            session_a
                .http
                .delete(server.url(&path))
                .header("x-nos-csrf", session_a.csrf.clone().unwrap()),
        )
        .await;
    assert_eq!(revoked.status, 204);
    assert_eq!(session_c.get(&server, "/api/v1/me").await.status, 401);
    let foreign = session_a
        .send(
            session_a
                .http
                .delete(server.url("/api/v1/auth/sessions/nope"))
                .header("x-nos-csrf", session_a.csrf.clone().unwrap()),
        )
        .await;
    assert_eq!(foreign.status, 404);
    let logout = session_a
        .post(&server, "/api/v1/auth/logout", json!({}))
        .await;
    assert_eq!(logout.status, 204);
    assert_eq!(session_a.get(&server, "/api/v1/me").await.status, 401);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absolute_lifetime_holds_even_when_refreshing() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), LOOSE, Arc::new(ManualClock::new(T0))).await;
    let (secret, _) = server.setup_admin(&Client::new()).await;
    let mut client = logged_in(&server, &secret).await;
    let mut n_refreshes = 0;
    loop {
        server.clock.advance(10 * 60);
        let reply = client
            .post(&server, "/api/v1/auth/refresh", json!({}))
            .await;
        if reply.status != 200 {
            break;
        }
        client.absorb(&reply);
        n_refreshes += 1;
    }
    assert_eq!(n_refreshes, 47, "8 h of 10-minute refreshes");
    server.stop().await;
}
