//! The auth-policy plugin inside nosd (`[auth] policy_plugin`): the real `nosd` binary decides
//! through the real `auth-default` component, refuses to start with a policy it cannot load,
//! and a hostile policy leaves the built-in verdicts standing while logins go on.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use nos_host::audit::AuditKind;
use nos_host::clock::ManualClock;

use crate::harness::{Client, NosdProcess, PASSWORD, T0, TestServer, logged_in};

use crate::built::{AUTH_DEFAULT, BTRFS_POOL, HOSTILE_AUTH_POLICY, HOSTILE_BAD_HASH};

/// Loose built-in limits, so any lockout seen comes from the plugin.
const LOOSE_LIMITS: &str =
    "[limits]\nip_burst = 1000\nip_refill_ms = 1\nfree_failures = 50\nglobal_failures = 10000\n";

fn write_config(dir: &Path, auth: &str) -> std::path::PathBuf {
    let path = dir.join("nosd.toml");
    std::fs::write(
        &path,
        format!(
            "[http]\nbind = \"127.0.0.1:0\"\n[state]\ndir = \"{}\"\n[argon2]\nmemory_kib = 19456\niterations = 2\n{LOOSE_LIMITS}{auth}",
            dir.join("state").display()
        ),
    )
    .unwrap();
    path
}

fn start_nosd(dir: &Path, auth: &str) -> NosdProcess {
    NosdProcess::start(&write_config(dir, auth))
}

/// One failed login for `username` against a real nosd: (status, Retry-After).
async fn bad_login(nosd: &NosdProcess, username: &str) -> (u16, Option<u64>) {
    let reply = reqwest::Client::new()
        .post(format!("http://{}/api/v1/auth/login", nosd.addr))
        .header("content-type", "application/json")
        .header("x-nos-csrf", "1")
        .body(
            serde_json::json!({"username": username, "password": "not the password at all"})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    let retry_after = reply
        .headers()
        .get("retry-after")
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.parse().ok());
    (reply.status().as_u16(), retry_after)
}

/// The same six failed logins against nosd with and without `auth-default`: the built-in
/// limits (50 free failures) never lock, the plugin's (5 per user, then 30 s) do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nosd_decides_logins_through_the_auth_default_plugin() {
    let with_dir = tempfile::tempdir().unwrap();
    let without_dir = tempfile::tempdir().unwrap();
    let with_plugin = start_nosd(
        with_dir.path(),
        &format!("[auth]\npolicy_plugin = \"{AUTH_DEFAULT}\"\n"),
    );
    let without_plugin = start_nosd(without_dir.path(), "");
    for (nosd, expect_lock) in [(&with_plugin, true), (&without_plugin, false)] {
        let mut statuses = Vec::new();
        for _ in 0..5 {
            statuses.push(bad_login(nosd, "mallory").await.0);
        }
        assert_eq!(statuses, [401; 5]);
        let (status, retry_after) = bad_login(nosd, "mallory").await;
        if expect_lock {
            assert_eq!(status, 429, "the plugin locks the user after 5 failures");
            let retry_after = retry_after.expect("Retry-After");
            assert!(
                (1..=30).contains(&retry_after),
                "auth-default's 30 s user lockout, got {retry_after}"
            );
            // Another username from the same address is not locked: the lock is per user.
            assert_eq!(bad_login(nosd, "trudy").await.0, 401);
        } else {
            assert_eq!(status, 401, "the built-in policy alone allows 50 failures");
        }
    }
}

/// A configured policy that cannot be loaded stops nosd (and `--check-config`) with a message
/// naming the key; nosd never runs without the policy it was told to use.
#[test]
fn nosd_refuses_to_start_with_an_unloadable_policy() {
    for (policy, expected) in [
        (BTRFS_POOL, "is a planner plugin, not a auth-policy"),
        (HOSTILE_BAD_HASH, "component sha256 is"),
        ("/nonexistent/policy", "cannot read /nonexistent/policy"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let config = write_config(
            dir.path(),
            &format!("[auth]\npolicy_plugin = \"{policy}\"\n"),
        );
        for check_only in [true, false] {
            let mut command = Command::new(env!("CARGO_BIN_EXE_nosd"));
            if check_only {
                command.arg("--check-config");
            }
            let output = command
                .arg("--config")
                .arg(&config)
                .env("NO_COLOR", "1")
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&output.stdout);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(!output.status.success(), "{policy}: {stdout}");
            assert!(
                stderr.contains("[auth] policy_plugin") && stderr.contains(expected),
                "{policy}: {stderr}"
            );
            assert!(!stdout.contains("nosd listening"), "{stdout}");
        }
    }
    // The good one passes --check-config and is named.
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!("[auth]\npolicy_plugin = \"{AUTH_DEFAULT}\"\n"),
    );
    let output = Command::new(env!("CARGO_BIN_EXE_nosd"))
        .arg("--check-config")
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("auth policy auth-default"), "{stdout}");
}

/// A policy that loops in every login decision and traps in every password check: setup,
/// login and lockout all run on the built-in verdicts, each failure is audited, and the next
/// login still works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_policy_leaves_the_built_in_verdicts() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(
        dir.path(),
        &format!(
            "[limits]\nip_burst = 1000\nip_refill_ms = 1\n[auth]\npolicy_plugin = \"{HOSTILE_AUTH_POLICY}\"\n"
        ),
        Arc::new(ManualClock::new(T0)),
    )
    .await;
    // Setup's password check traps in the plugin: the built-in rules decide (and accept).
    let (secret, _codes) = server.setup_admin(&Client::new()).await;
    let failures = |server: &TestServer| {
        server
            .audit
            .events()
            .into_iter()
            .filter(|event| event.kind == AuditKind::AuthPolicyFailed)
            .count()
    };
    assert_eq!(
        failures(&server),
        1,
        "the trapped password check is audited"
    );

    // Logins: the plugin runs out of fuel each time; the built-in verdict (TOTP required) stands.
    let client = logged_in(&server, &secret).await;
    assert_eq!(client.get(&server, "/api/v1/me").await.status, 200);
    assert_eq!(failures(&server), 2);
    let no_code = Client::new().login(&server, "admin", PASSWORD, None).await;
    assert_eq!(no_code.status, 401, "the second factor is still required");

    // The built-in lockout still applies: a failing plugin never loosens it.
    let attacker = Client::new();
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(
            attacker
                .login(&server, "admin", "wrong password attempt", Some("000000"))
                .await
                .status,
        );
    }
    assert_eq!(statuses, [401, 401, 401, 401, 429, 429]);

    // After the lock has passed, the owner logs in again through the same hostile plugin.
    server.clock.advance(3600);
    let again = logged_in(&server, &secret).await;
    assert_eq!(again.get(&server, "/api/v1/me").await.status, 200);
    // Setup, the first login, the login without a code, 4 wrong passwords and the last login;
    // the locked attempts never reached the plugin.
    assert_eq!(failures(&server), 8, "every plugin failure is audited");
    server.stop().await;
}
