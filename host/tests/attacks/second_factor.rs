//! TOTP window and replay (also 50 concurrent), recovery codes (double spend, password still
//! required).

use std::sync::Arc;

use nos_host::clock::ManualClock;

use crate::harness::{Client, PASSWORD, T0, TestServer};
use crate::login_limits::spawn_all;

const LOOSE: &str =
    "[limits]\nip_burst = 1000\nip_refill_ms = 1\nfree_failures = 1000\nhash_queue = 64\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn totp_window_replay_and_50_concurrent_submissions() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), LOOSE, Arc::new(ManualClock::new(T0))).await;
    let client = Client::new();
    let (secret, _) = server.setup_admin(&client).await;
    server.clock.advance(300);
    let now = server.clock_now();

    let offsets: [i64; 7] = [-90, -60, -30, 0, 30, 60, 90];
    let mut accepted = Vec::new();
    for offset in offsets {
        let code = nos_host::auth::totp::code_at(&secret, now.saturating_add_signed(offset));
        let reply = client.login(&server, "admin", PASSWORD, Some(&code)).await;
        accepted.push(reply.status == 200);
    }
    assert_eq!(accepted, [false, false, true, true, true, false, false]);

    // After the +30 code, the current and earlier codes are replays.
    for offset in [30i64, 0, -30] {
        let code = nos_host::auth::totp::code_at(&secret, now.saturating_add_signed(offset));
        assert_eq!(
            client
                .login(&server, "admin", PASSWORD, Some(&code))
                .await
                .status,
            401
        );
    }
    // Without any code, with a malformed code, or with the code but a wrong password: refused.
    server.clock.advance(120);
    let code = server.totp_now(&secret);
    assert_eq!(
        client.login(&server, "admin", PASSWORD, None).await.status,
        401
    );
    assert_eq!(
        client
            .login(&server, "admin", PASSWORD, Some("12345x"))
            .await
            .status,
        401
    );
    assert_eq!(
        client
            .login(&server, "admin", "wrong password!!", Some(&code))
            .await
            .status,
        401
    );

    // 50 parallel submissions of one fresh valid code: exactly one wins.
    let futures: Vec<_> = (0..50)
        .map(|_| {
            let client = client.clone();
            let server_url = server.url("/api/v1/auth/login");
            let code = code.clone();
            async move {
                let body =
                    serde_json::json!({"username": "admin", "password": PASSWORD, "code": code});
                client
                    .send(
                        client
                            .http
                            .post(server_url)
                            .header("content-type", "application/json")
                            .header("x-nos-csrf", "1")
                            .body(body.to_string()),
                    )
                    .await
                    .status
            }
        })
        .collect();
    let statuses = spawn_all(futures).await;
    assert_eq!(
        statuses.iter().filter(|status| **status == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|status| *status == 200 || *status == 401),
        "{statuses:?}"
    );

    // The accepted step survived in users.json (persisted before the session was issued).
    let users: nos_host::auth::UsersFile = server
        .state
        .store
        .load(nos_host::store::StateFile::Users)
        .unwrap()
        .unwrap();
    let last_step = users.users["admin"]
        .totp
        .as_ref()
        .unwrap()
        .last_used_step
        .unwrap();
    assert_eq!(last_step, server.clock_now() / 30);

    // "Password right, code wrong" is a compromise signal: the holder sees it at next login.
    let mut session = Client::new();
    server.clock.advance(30);
    let reply = session
        .login(&server, "admin", PASSWORD, Some(&server.totp_now(&secret)))
        .await;
    session.absorb(&reply);
    let me = session.get(&server, "/api/v1/me").await;
    let notices = me.body["notices"].as_array().unwrap();
    assert!(!notices.is_empty());
    assert!(
        notices
            .iter()
            .all(|notice| notice["kind"] == "second_factor_failed")
    );
    let cleared = session
        .post(&server, "/api/v1/auth/notices/clear", serde_json::json!({}))
        .await;
    assert_eq!(cleared.status, 204);
    let me = session.get(&server, "/api/v1/me").await;
    assert_eq!(me.body["notices"], serde_json::json!([]));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_code_is_single_use_even_in_parallel_and_never_replaces_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), LOOSE, Arc::new(ManualClock::new(T0))).await;
    let client = Client::new();
    let (_secret, codes) = server.setup_admin(&client).await;
    assert_eq!(codes.len(), 10);

    // A code alone, without the password, fails.
    assert_eq!(
        client
            .login(&server, "admin", "not the password", Some(&codes[0]))
            .await
            .status,
        401
    );

    // Double spend in parallel: exactly one success.
    let futures: Vec<_> = (0..4)
        .map(|_| {
            let client = client.clone();
            let url = server.url("/api/v1/auth/login");
            let code = codes[0].to_lowercase().replace('-', " ");
            async move {
                let body =
                    serde_json::json!({"username": "admin", "password": PASSWORD, "code": code});
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
            }
        })
        .collect();
    let replies = spawn_all(futures).await;
    let winners: Vec<_> = replies.iter().filter(|reply| reply.status == 200).collect();
    assert_eq!(
        winners.len(),
        1,
        "{:?}",
        replies.iter().map(|reply| reply.status).collect::<Vec<_>>()
    );
    assert_eq!(winners[0].body["recovery_codes_left"], 9);
    // Used once: refused afterwards, also after a restart (it was persisted).
    assert_eq!(
        client
            .login(&server, "admin", PASSWORD, Some(&codes[0]))
            .await
            .status,
        401
    );
    let users: nos_host::auth::UsersFile = server
        .state
        .store
        .load(nos_host::store::StateFile::Users)
        .unwrap()
        .unwrap();
    assert_eq!(users.users["admin"].recovery_codes.len(), 9);
    // Another code still works.
    assert_eq!(
        client
            .login(&server, "admin", PASSWORD, Some(&codes[1]))
            .await
            .status,
        200
    );
    server.stop().await;
}
