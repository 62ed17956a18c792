//! The admin UI's server side: the pages and assets carry the strict CSP, and the read-only
//! allowlist API needs a login (and the CSRF token for the check), answers typed errors, and
//! judges argvs with the engine.

use std::sync::Arc;

use nos_host::clock::ManualClock;
use serde_json::json;

use crate::harness::{Client, T0, TestServer, logged_in};

fn allowlist_config(path: &str) -> String {
    format!("[allowlist]\npath = \"{path}\"\n")
}

fn repo_allowlist() -> String {
    format!("{}/../allowlist.toml", env!("CARGO_MANIFEST_DIR"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_and_assets_are_served_with_the_strict_csp() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), "", Arc::new(ManualClock::new(T0))).await;
    let client = Client::new();
    for (path, media_type) in [
        ("/", "text/html; charset=utf-8"),
        ("/login", "text/html; charset=utf-8"),
        ("/allowlist", "text/html; charset=utf-8"),
        ("/ui/main.js", "text/javascript; charset=utf-8"),
        ("/ui/app.css", "text/css; charset=utf-8"),
    ] {
        let reply = client.get(&server, path).await;
        assert_eq!(reply.status, 200, "{path}");
        assert_eq!(reply.headers["content-type"], media_type, "{path}");
        let csp = reply.headers["content-security-policy"].to_str().unwrap();
        for directive in [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "frame-ancestors 'none'",
            "require-trusted-types-for 'script'",
        ] {
            assert!(csp.contains(directive), "{path}: {csp}");
        }
        assert!(!csp.contains("unsafe-"), "{csp}");
    }
    // Unknown UI paths are the API's 404, not a page.
    let missing = client.get(&server, "/ui/missing.js").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body["error"]["code"], "not_found");
    // Pages never contain session data: the shell is the same before and after login.
    let page = client.get(&server, "/sessions").await;
    assert!(
        page.raw
            .contains("<script type=\"module\" src=\"/ui/main.js\"></script>")
    );
    assert!(page.raw.contains("aria-current=\"page\">Sessions<"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowlist_api_needs_login_and_csrf_and_judges_argvs() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(
        dir.path(),
        &allowlist_config(&repo_allowlist()),
        Arc::new(ManualClock::new(T0)),
    )
    .await;
    let anonymous = Client::new();
    assert_eq!(
        anonymous.get(&server, "/api/v1/allowlist").await.status,
        401
    );
    let check_body = json!({"argv": ["btrfs", "device", "add", "/dev/sdb", "/srv/pool"]});
    assert_eq!(
        anonymous
            .post(&server, "/api/v1/allowlist/check", check_body.clone())
            .await
            .status,
        401
    );

    let (secret, _) = server.setup_admin(&Client::new()).await;
    let admin = logged_in(&server, &secret).await;
    let listing = admin.get(&server, "/api/v1/allowlist").await;
    assert_eq!(listing.status, 200, "{}", listing.raw);
    let rules = listing.body["rules"].as_array().unwrap();
    let add = rules
        .iter()
        .find(|rule| rule["id"] == "btrfs.device.add")
        .unwrap();
    assert_eq!(add["effect"], "destructive");
    assert!(
        add["explain"]
            .as_str()
            .unwrap()
            .contains("btrfs.device.add")
    );
    assert!(rules.iter().any(|rule| rule["kind"] == "managed"));
    assert!(!listing.body["findings"].as_array().unwrap().is_empty());

    let allowed = admin
        .post(&server, "/api/v1/allowlist/check", check_body.clone())
        .await;
    assert_eq!(allowed.status, 200, "{}", allowed.raw);
    expect_test::expect![[r#"{"allowed":true,"argv":["/usr/bin/btrfs","device","add","--","/dev/sdb","/srv/pool"],"effect":"destructive","rule":"btrfs.device.add"}"#]]
        .assert_eq(&allowed.raw);
    let denied = admin
        .post(
            &server,
            "/api/v1/allowlist/check",
            json!({"argv": ["mount", "-t", "btrfs", "-o", "bind", "/dev/sdb", "/srv/pool"]}),
        )
        .await;
    assert_eq!(denied.status, 200);
    assert_eq!(denied.body["allowed"], false);
    assert_eq!(denied.body["token"], 4);
    assert_eq!(denied.body["rule"], "mount.btrfs");

    // The check is a POST: the session's CSRF token is required.
    let mut forged = admin.clone();
    forged.csrf = Some("0".repeat(43));
    let refused = forged
        .post(&server, "/api/v1/allowlist/check", check_body)
        .await;
    assert_eq!(refused.status, 403, "{}", refused.raw);

    // Hostile bodies get typed errors.
    let unknown_field = admin
        .post(
            &server,
            "/api/v1/allowlist/check",
            json!({"argv": ["ls"], "shell": true}),
        )
        .await;
    assert_eq!(unknown_field.status, 400);
    assert_eq!(unknown_field.body["error"]["code"], "request.invalid");
    let huge = admin
        .post(
            &server,
            "/api/v1/allowlist/check",
            json!({"argv": vec!["a".repeat(100); 200]}),
        )
        .await;
    assert_eq!(huge.status, 413);
    let empty = admin
        .post(&server, "/api/v1/allowlist/check", json!({"argv": []}))
        .await;
    assert_eq!(empty.body["allowed"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_allowlist_is_a_typed_503_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere/allowlist.toml");
    let server = TestServer::start(
        dir.path(),
        &allowlist_config(&missing.display().to_string()),
        Arc::new(ManualClock::new(T0)),
    )
    .await;
    let (secret, _) = server.setup_admin(&Client::new()).await;
    let admin = logged_in(&server, &secret).await;
    let reply = admin.get(&server, "/api/v1/allowlist").await;
    assert_eq!(reply.status, 503);
    assert_eq!(reply.body["error"]["code"], "allowlist.unavailable");
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nowhere/allowlist.toml")
    );
}
