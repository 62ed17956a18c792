//! Granting and revoking a planner plugin over real HTTP: the grant names the component's
//! sha256, needs a session, the CSRF token and a recent re-authentication, is audited, and a
//! revoked plugin can no longer plan. Every refusal leaves the grant as it was.

use nos_host::audit::AuditKind;
use serde_json::json;

use crate::harness::{Client, T0, logged_in};
use crate::pipeline::{code, grant, plan, plugin_sha256, pool_input, start};

fn plan_body() -> serde_json::Value {
    json!({"plugin": "btrfs-pool", "input": pool_input()})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grant_and_revoke_are_guarded_keyed_by_hash_and_audited() {
    let dir = tempfile::tempdir().unwrap();
    let setup = start(dir.path(), None, T0).await;
    let admin = logged_in(&setup.server, &setup.secret).await;
    let sha256 = plugin_sha256(&setup.server, &admin, "btrfs-pool").await;
    let grant_path = "/api/v1/plugins/btrfs-pool/grant";
    let revoke_path = "/api/v1/plugins/btrfs-pool/revoke";
    let body = json!({ "sha256": sha256 });

    // The list shows what the admin reviews: manifest, scope, and describe()'s input schema.
    let listed = admin.get(&setup.server, "/api/v1/plugins").await;
    let pool = listed.body["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["name"] == "btrfs-pool")
        .unwrap()
        .clone();
    assert_eq!(pool["granted"], false, "{pool}");
    assert!(pool["scope"].as_array().unwrap().len() > 2, "{pool}");
    assert_eq!(pool["input_schema"]["type"], "object", "{pool}");
    assert!(
        pool["summary"].as_str().unwrap().contains("btrfs"),
        "{pool}"
    );

    // No session.
    let anonymous = Client::new()
        .post(&setup.server, grant_path, body.clone())
        .await;
    assert_eq!(code(&anonymous), "401 auth.required");
    // A session without its CSRF token (what a cross-site form would send).
    let mut no_csrf = admin.clone();
    no_csrf.csrf = Some("not-the-token".into());
    let forged = no_csrf.post(&setup.server, grant_path, body.clone()).await;
    assert_eq!(code(&forged), "403 csrf.rejected");
    // An unknown plugin.
    let unknown = admin
        .post(
            &setup.server,
            "/api/v1/plugins/no-such-plugin/grant",
            body.clone(),
        )
        .await;
    assert_eq!(code(&unknown), "404 plugin.unknown");
    // A hash that is not the loaded component's (one bit off), and garbage.
    let mut other = sha256.clone().into_bytes();
    other[0] = if other[0] == b'0' { b'1' } else { b'0' };
    for wrong in [String::from_utf8(other).unwrap(), "x".repeat(5000)] {
        let reply = admin
            .post(&setup.server, grant_path, json!({ "sha256": wrong }))
            .await;
        assert_eq!(code(&reply), "409 plugin.hash_mismatch", "{}", reply.raw);
        assert!(reply.raw.contains(&sha256), "{}", reply.raw);
    }
    // No hash at all, or an extra field, is a malformed request.
    for malformed in [
        json!({}),
        json!({"sha256": sha256, "scope": ["btrfs.mkfs"]}),
    ] {
        let reply = admin.post(&setup.server, grant_path, malformed).await;
        assert_eq!(reply.status, 400, "{}", reply.raw);
    }
    // A re-authentication older than the window.
    setup.server.clock.advance(301);
    let stale = admin.post(&setup.server, grant_path, body.clone()).await;
    assert_eq!(code(&stale), "401 auth.reauth_required");

    // None of that granted anything.
    let refused = admin
        .post(&setup.server, "/api/v1/plans", plan_body())
        .await;
    assert_eq!(code(&refused), "403 plugin.not_granted");

    // Granted (fresh login) → plans; revoked → refused again, and persisted by hash.
    let admin = logged_in(&setup.server, &setup.secret).await;
    grant(&setup.server, &admin, "btrfs-pool").await;
    let planned = plan(&setup, &admin, "btrfs-pool", pool_input()).await;
    assert_eq!(planned["applicable"], true, "{planned}");
    let revoked = admin.post(&setup.server, revoke_path, body.clone()).await;
    // A plan made while granted cannot be applied after the revocation either.
    let late = admin
        .post(
            &setup.server,
            &format!("/api/v1/plans/{}/apply", planned["id"].as_str().unwrap()),
            json!({"confirm": planned["confirmation"]}),
        )
        .await;
    assert_eq!(code(&late), "403 plugin.not_granted", "{}", late.raw);
    assert_eq!(revoked.status, 200, "{}", revoked.raw);
    assert_eq!(revoked.body["granted"], false, "{}", revoked.raw);
    let after = admin
        .post(&setup.server, "/api/v1/plans", plan_body())
        .await;
    assert_eq!(code(&after), "403 plugin.not_granted");
    let file = std::fs::read_to_string(dir.path().join("plugins.json")).unwrap();
    let file: serde_json::Value = serde_json::from_str(&file).unwrap();
    assert_eq!(
        file["data"]["by_sha256"][&sha256]["granted"], false,
        "{file}"
    );
    assert!(setup.agent.ran.lock().unwrap().is_empty(), "something ran");

    // Audited: the refused hashes, the grant, the enablement and the revocation.
    let events = setup.server.audit.events();
    let of = |kind: AuditKind, verdict: &str| {
        events
            .iter()
            .filter(|event| event.kind == kind && event.verdict.as_deref() == Some(verdict))
            .count()
    };
    assert_eq!(of(AuditKind::PluginGranted, "refused"), 2, "{events:?}");
    assert_eq!(of(AuditKind::PluginGranted, "ok"), 1, "{events:?}");
    assert_eq!(of(AuditKind::PluginEnabled, "ok"), 1, "{events:?}");
    assert_eq!(of(AuditKind::PluginRevoked, "ok"), 1, "{events:?}");
    setup.server.stop().await;
}
