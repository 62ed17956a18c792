//! Brute force: the distributed spray, forged forwarding headers, restart, trusted device.

use std::sync::Arc;

use nos_host::clock::ManualClock;

use crate::harness::{Client, PASSWORD, T0, TestServer};

/// A tiny join_all without pulling in `futures`.
mod futures_lite_free {
    pub async fn join_all<F: std::future::Future + Send + 'static>(
        futures: Vec<F>,
    ) -> Vec<F::Output>
    where
        F::Output: Send + 'static,
    {
        let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
        let mut outputs = Vec::with_capacity(handles.len());
        for handle in handles {
            outputs.push(handle.await.unwrap());
        }
        outputs
    }
}
pub use futures_lite_free::join_all as spawn_all;

const PROXY: &str = "[http]\ntrust_proxy = [\"127.0.0.1\"]\n";
const ATTACKER: &str = "203.0.113.7";
const OWNER_IP: &str = "198.51.100.20";

#[derive(Default, Debug)]
struct Tally {
    ok: usize,
    unauthorized: usize,
    throttled: usize,
    throttled_without_retry_after: usize,
    other: Vec<u16>,
}

/// `n_attempts` logins across 500 usernames, 50 forged leftmost X-Forwarded-For values, the
/// proxy appending the attacker's real address; concurrency 50. One in 97 tries the real
/// admin password.
async fn spray(server: &TestServer, first_attempt: usize, n_attempts: usize) -> Tally {
    let attempts: Vec<usize> = (first_attempt..first_attempt + n_attempts).collect();
    let mut tally = Tally::default();
    for chunk in attempts.chunks(50) {
        let futures: Vec<_> = chunk
            .iter()
            .map(|attempt_idx| {
                let attempt_idx = *attempt_idx;
                let forged = format!("10.66.{}.{}", attempt_idx % 50, attempt_idx % 50);
                let client = Client::new().with_header("x-forwarded-for", &format!("{forged}, {ATTACKER}"));
                let username = if attempt_idx % 10 == 0 { "admin".to_string() } else { format!("user{}", attempt_idx % 500) };
                let password = if attempt_idx % 97 == 0 { PASSWORD.to_string() } else { format!("guess-{attempt_idx}-xxxxxxxx") };
                let url = server.url("/api/v1/auth/login");
                async move {
                    let body = serde_json::json!({"username": username, "password": password, "code": "000000"});
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
        for reply in spawn_all(futures).await {
            match reply.status {
                200 => tally.ok += 1,
                401 => tally.unauthorized += 1,
                429 => {
                    tally.throttled += 1;
                    if reply.retry_after().is_none_or(|seconds| seconds < 1) {
                        tally.throttled_without_retry_after += 1;
                    }
                }
                other => tally.other.push(other),
            }
        }
    }
    tally
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spray_of_10000_is_throttled_before_hashing_survives_restart_and_owner_gets_in() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let server = TestServer::start(dir.path(), PROXY, clock.clone()).await;
    let owner_client = Client::new().with_header("x-forwarded-for", OWNER_IP);
    let (secret, _codes) = server.setup_admin(&owner_client).await;

    // The owner logs in once from their browser and receives the trusted-device cookie.
    let mut owner = owner_client.clone();
    let reply = owner
        .login(&server, "admin", PASSWORD, Some(&server.totp_now(&secret)))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.raw);
    owner.absorb(&reply);
    assert!(owner.cookies.contains_key("__Host-nos_dev"));

    let hashes_before = server.state.auth.hasher.n_computed();
    let first_half = spray(&server, 0, 5000).await;
    let hashes_first = server.state.auth.hasher.n_computed() - hashes_before;

    // Restart in the middle: counters come back from limits.json.
    server.stop().await;
    let server = TestServer::start(dir.path(), PROXY, clock.clone()).await;
    let hashes_before = server.state.auth.hasher.n_computed();
    let second_half = spray(&server, 5000, 5000).await;
    let hashes_second = server.state.auth.hasher.n_computed() - hashes_before;

    eprintln!(
        "spray: first half {first_half:?} ({hashes_first} hashes), after restart {second_half:?} ({hashes_second} hashes)"
    );
    for tally in [&first_half, &second_half] {
        assert_eq!(tally.ok, 0, "{tally:?}");
        assert!(tally.other.is_empty(), "{tally:?}");
        assert_eq!(tally.throttled_without_retry_after, 0, "{tally:?}");
    }
    // Attempts are counted before hashing, so even 50 concurrent requests cannot push more
    // than the 5 free failures of the attacker's address through argon2.
    assert!(
        hashes_first <= 5,
        "first half hashed {hashes_first} times: {first_half:?}"
    );
    assert_eq!(first_half.unauthorized as u64, hashes_first);
    assert_eq!(hashes_second, 0, "restart forgot the lock: {second_half:?}");
    assert_eq!(second_half.throttled, 5000);

    assert!(
        server.audit.events().is_empty(),
        "the audit sink of the restarted server saw no counted attempt"
    );
    // Forged headers were ignored: only the proxy-appended address has a counter.
    let limits = server.state.auth.limits.lock().await.clone();
    let keys: Vec<&String> = limits.ips.keys().collect();
    assert_eq!(keys, vec![&ATTACKER.to_string()]);

    // A distributed attack on "admin" from 50 real addresses locks the username...
    let mut n_admin_failures = 0;
    for ip_idx in 0..50 {
        let attacker = Client::new().with_header("x-forwarded-for", &format!("192.0.2.{ip_idx}"));
        let reply = attacker
            .login(&server, "admin", "wrong password attempt", Some("123456"))
            .await;
        if reply.status == 401 {
            n_admin_failures += 1;
        }
    }
    assert!(n_admin_failures <= 5, "{n_admin_failures}");
    // ...for untrusted sources, even with the right password, and across a restart...
    server.stop().await;
    let server = TestServer::start(dir.path(), PROXY, clock.clone()).await;
    server.clock.advance(30);
    let code = server.totp_now(&secret);
    let stranger = Client::new().with_header("x-forwarded-for", "198.51.100.99");
    let reply = stranger
        .login(&server, "admin", PASSWORD, Some(&code))
        .await;
    assert_eq!(
        reply.status, 429,
        "the username is locked for untrusted sources"
    );

    // ...but the owner's trusted device has its own budget and still gets in.
    let reply = owner.login(&server, "admin", PASSWORD, Some(&code)).await;
    assert_eq!(reply.status, 200, "owner locked out: {}", reply.raw);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_headers_from_an_untrusted_peer_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), "", Arc::new(ManualClock::new(T0))).await;
    let hashes_before = server.state.auth.hasher.n_computed();
    for forged_idx in 0..50 {
        for header in ["x-forwarded-for", "x-real-ip", "forwarded"] {
            let client = Client::new().with_header(header, &format!("10.0.0.{forged_idx}"));
            let reply = client
                .login(&server, "admin", "whatever password", None)
                .await;
            assert_eq!(reply.status, 400);
            assert_eq!(reply.body["error"]["code"], "proxy.untrusted");
        }
    }
    assert_eq!(server.state.auth.hasher.n_computed(), hashes_before);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockout_escalates_and_responses_are_identical_for_known_and_unknown_users() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let server = TestServer::start(
        dir.path(),
        "[limits]\nip_burst = 1000\nip_refill_ms = 1\n",
        clock.clone(),
    )
    .await;
    let client = Client::new();
    let (_secret, _) = server.setup_admin(&client).await;
    // Different client addresses are impossible without a proxy, so the per-IP counter locks
    // both usernames together here; compare the two after the same history.
    let mut shapes = Vec::new();
    for username in ["admin", "nobody"] {
        server.state.auth.limits.lock().await.ips.clear();
        let mut replies = Vec::new();
        for _ in 0..7 {
            replies.push(
                client
                    .login(&server, username, "wrong password here", Some("123456"))
                    .await,
            );
        }
        let statuses: Vec<u16> = replies.iter().map(|reply| reply.status).collect();
        assert_eq!(statuses, [401, 401, 401, 401, 401, 429, 429], "{username}");
        let shape: Vec<(u16, String, Option<u64>, usize)> = replies
            .iter()
            .map(|reply| {
                (
                    reply.status,
                    reply.raw.clone(),
                    reply.retry_after(),
                    reply.set_cookies().len(),
                )
            })
            .collect();
        shapes.push(shape);
        clock.advance(3600);
    }
    assert_eq!(shapes[0], shapes[1]);
    expect_test::expect![[r#"{"error":{"code":"auth.failed","message":"authentication failed"}}"#]]
        .assert_eq(&shapes[0][0].1);
    expect_test::expect![[
        r#"{"error":{"code":"rate_limited","message":"too many attempts, try again later"}}"#
    ]]
    .assert_eq(&shapes[0][5].1);
    assert_eq!(shapes[0][5].2, Some(60));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hashing_flood_runs_at_most_two_hashes_and_sheds_the_rest_with_503() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(
        dir.path(),
        "[limits]\nip_burst = 10000\nip_refill_ms = 1\nfree_failures = 10000\nhash_queue = 8\nglobal_failures = 100000\n",
        Arc::new(ManualClock::new(T0)),
    )
    .await;
    let mut owner = Client::new();
    let (secret, _) = server.setup_admin(&owner).await;
    let reply = owner
        .login(&server, "admin", PASSWORD, Some(&server.totp_now(&secret)))
        .await;
    assert_eq!(reply.status, 200);
    owner.absorb(&reply);
    server.clock.advance(30);
    let owner_code = server.totp_now(&secret);

    let long_password = "p".repeat(256);
    let flood: Vec<_> = (0..200)
        .map(|attempt_idx| {
            let client = Client::new();
            let url = server.url("/api/v1/auth/login");
            let body = serde_json::json!({"username": format!("user{attempt_idx}"), "password": long_password});
            async move {
                client
                    .send(client.http.post(url).header("content-type", "application/json").header("x-nos-csrf", "1").body(body.to_string()))
                    .await
            }
        })
        .collect();
    let flood = tokio::spawn(spawn_all(flood));
    // The owner's browser (trusted device) logs in while the flood is queued up.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let owner_reply = owner
        .login(&server, "admin", PASSWORD, Some(&owner_code))
        .await;
    let replies = flood.await.unwrap();
    let n_busy = replies.iter().filter(|reply| reply.status == 503).count();
    assert!(
        replies
            .iter()
            .all(|reply| reply.status == 401 || reply.status == 503)
    );
    assert!(n_busy > 0, "the queue never overflowed");
    assert!(
        replies
            .iter()
            .filter(|reply| reply.status == 503)
            .all(|reply| reply.retry_after() == Some(1))
    );
    assert!(
        server.state.auth.hasher.peak_in_flight() <= 2,
        "{}",
        server.state.auth.hasher.peak_in_flight()
    );
    assert_eq!(
        owner_reply.status, 200,
        "the owner was shed: {}",
        owner_reply.raw
    );
    eprintln!(
        "hash flood: 200 requests, {n_busy} shed with 503, peak {} hashes at once",
        server.state.auth.hasher.peak_in_flight()
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spray_from_50_real_addresses_trips_the_global_breaker_but_not_the_owner() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let config = format!("{PROXY}[limits]\nglobal_failures = 50\n");
    let server = TestServer::start(dir.path(), &config, clock.clone()).await;
    let mut owner = Client::new().with_header("x-forwarded-for", OWNER_IP);
    let (secret, _) = server.setup_admin(&owner).await;
    let reply = owner
        .login(&server, "admin", PASSWORD, Some(&server.totp_now(&secret)))
        .await;
    assert_eq!(reply.status, 200);
    owner.absorb(&reply);

    let hashes_before = server.state.auth.hasher.n_computed();
    let mut n_ok = 0;
    for round in 0..40 {
        let futures: Vec<_> = (0..50)
            .map(|ip_idx| {
                let client = Client::new().with_header("x-forwarded-for", &format!("198.18.{ip_idx}.1"));
                let url = server.url("/api/v1/auth/login");
                let body = serde_json::json!({"username": format!("user{}", round * 50 + ip_idx), "password": "spray password 2024"});
                async move {
                    client
                        .send(client.http.post(url).header("content-type", "application/json").header("x-nos-csrf", "1").body(body.to_string()))
                        .await
                        .status
                }
            })
            .collect();
        n_ok += spawn_all(futures)
            .await
            .iter()
            .filter(|status| **status == 200)
            .count();
    }
    let n_hashes = server.state.auth.hasher.n_computed() - hashes_before;
    eprintln!("distributed spray: 2000 attempts from 50 addresses, {n_hashes} argon2 runs");
    assert_eq!(n_ok, 0);
    // Without the breaker: 50 addresses x 5 free failures = 250 hashes. With it: the threshold,
    // then at most one trickle attempt per address (the virtual clock stands still).
    assert!(n_hashes <= 50 + 50 + 10, "{n_hashes} hashes");
    server.clock.advance(30);
    let reply = owner
        .login(&server, "admin", PASSWORD, Some(&server.totp_now(&secret)))
        .await;
    assert_eq!(
        reply.status, 200,
        "the trusted device is exempt from the breaker"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_consecutive_failures_stop_a_username_until_a_trusted_success() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let config = format!("{PROXY}[limits]\nip_burst = 1000\nip_refill_ms = 1\n");
    let server = TestServer::start(dir.path(), &config, clock.clone()).await;
    let mut owner = Client::new().with_header("x-forwarded-for", OWNER_IP);
    let (secret, _) = server.setup_admin(&owner).await;
    let reply = owner
        .login(&server, "admin", PASSWORD, Some(&server.totp_now(&secret)))
        .await;
    assert_eq!(reply.status, 200);
    owner.absorb(&reply);

    let attacker = Client::new().with_header("x-forwarded-for", ATTACKER);
    for failure_idx in 0..100 {
        // Wait out every temporary lock (the longest is 15 minutes) on the virtual clock.
        clock.advance(901);
        let reply = attacker
            .login(&server, "admin", "not the password at all", Some("123456"))
            .await;
        assert_eq!(reply.status, 401, "failure {failure_idx}");
    }
    clock.advance(365 * 24 * 3600);
    let stranger = Client::new().with_header("x-forwarded-for", "198.51.100.77");
    let code = server.totp_now(&secret);
    let reply = stranger
        .login(&server, "admin", PASSWORD, Some(&code))
        .await;
    assert_eq!(
        reply.status, 429,
        "a year later the username is still stopped"
    );
    assert_eq!(reply.retry_after(), Some(3600));

    // The owner's device is not stopped, and its success clears the username.
    let reply = owner.login(&server, "admin", PASSWORD, Some(&code)).await;
    assert_eq!(reply.status, 200);
    clock.advance(30);
    let reply = stranger
        .login(&server, "admin", PASSWORD, Some(&server.totp_now(&secret)))
        .await;
    assert_eq!(reply.status, 200);
    server.stop().await;
}

/// Behind a proxy that writes RFC 7239 `Forwarded`: the lockout keys on the right-most
/// untrusted `for=` (quoted IPv6 with a port here), whatever the client forged to its left;
/// `X-Forwarded-For` is then ignored, and a malformed header is refused (400) without counting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_header_keys_the_lockout_on_the_proxied_client() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(
        dir.path(),
        "[http]\ntrust_proxy = [\"127.0.0.1\", \"10.0.0.0/8\"]\nclient_ip_header = \"forwarded\"\n[limits]\nip_burst = 1000\nip_refill_ms = 1\n",
        Arc::new(ManualClock::new(T0)),
    )
    .await;
    // Each attempt forges another left part and ends with an inner trusted proxy hop.
    let proxied = |forged: usize| {
        Client::new().with_header(
            "forwarded",
            &format!(
                "for=198.18.0.{forged};proto=https, for=\"[2001:db8:cafe::17]:4711\", for=10.1.2.3"
            ),
        )
    };
    // Distinct unknown usernames, so only the address counter fills up.
    let mut statuses = Vec::new();
    for attempt in 0..7 {
        let reply = proxied(attempt)
            .login(
                &server,
                &format!("user{attempt}"),
                "wrong password attempt",
                None,
            )
            .await;
        statuses.push(reply.status);
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429, 429]);

    // Another client behind the same proxy is not locked...
    let neighbour = Client::new().with_header("forwarded", "for=\"[2001:db8:beef::1]:80\"");
    let reply = neighbour
        .login(&server, "neighbour", "wrong password attempt", None)
        .await;
    assert_eq!(reply.status, 401);
    // ...nor is X-Forwarded-For read (it names the locked client, but is not the configured
    // header: the client is the peer). A malformed Forwarded is refused and counts nowhere.
    let xff = Client::new().with_header("x-forwarded-for", "2001:db8:cafe::17");
    assert_eq!(
        xff.login(&server, "xff", "wrong password attempt", None)
            .await
            .status,
        401
    );
    let malformed =
        Client::new().with_header("forwarded", "for=\"[2001:db8:cafe::17]:4711, for=unknown");
    assert_eq!(
        malformed
            .login(&server, "malformed", "wrong password attempt", None)
            .await
            .status,
        400
    );
    let limits = server.state.auth.limits.lock().await.clone();
    let mut keys: Vec<&String> = limits.ips.keys().collect();
    keys.sort();
    assert_eq!(keys, ["127.0.0.1", "2001:db8:beef::", "2001:db8:cafe::"]);
    assert_eq!(limits.ips["2001:db8:cafe::"].consecutive, 5);
    assert_eq!(limits.ips["127.0.0.1"].consecutive, 1);
    server.stop().await;
}
