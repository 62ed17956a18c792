//! Alerts over HTTP and to the webhook: a pool's health from the captured degraded mount
//! raises alerts that the admin lists and acknowledges (session and CSRF like every POST, a
//! typed 404 for an unknown id), every change is audited, the book survives a restart, and a
//! listener on 127.0.0.1 receives each change signed with the shared secret.

use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};
use nos_host::alerts::PoolObservation;
use nos_host::audit::AuditKind;
use nos_host::clock::ManualClock;
use nos_host::facts::{BtrfsFilesystem, btrfs_show};
use nos_host::health::{self, Health, LastScrub, PoolReading, StatsReading};
use serde_json::{Value, json};

use crate::harness::{Client, T0, TestServer, logged_in};

const UUID: &str = "7e57ab1e-d15c-4a11-9b0b-5c0bb1e5ca1d";

fn real(scenario: &str, file: &str) -> String {
    let path = format!(
        "{}/tests/data/health/real/{scenario}/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{path}: {err}"))
}

/// The captured pool's health: `show`'s `btrfs filesystem show`, the scrubbed pool's counters
/// and scrub, judged an hour after that scrub.
fn health_of(show: &str) -> Health {
    let shown = btrfs_show::parse(&real(show, "btrfs-show.txt"))
        .unwrap()
        .remove(0);
    let stats = health::device_stats::parse(&real("raid1-scrubbed", "device-stats.json")).unwrap();
    let last_scrub = LastScrub::from_status(
        &health::scrub_status::parse(&real("raid1-scrubbed", "scrub-status.txt")).unwrap(),
        0,
    );
    let LastScrub::Recorded {
        since_unix_seconds, ..
    } = &last_scrub
    else {
        panic!("the scrubbed capture has a scrub")
    };
    let filesystem = BtrfsFilesystem {
        uuid: UUID.into(),
        label: Some("healthpool".into()),
        mountpoint: "/srv/healthpool".into(),
        devices: Vec::new(),
        data_profile: "raid1".into(),
        metadata_profile: "raid1".into(),
        size_bytes: 3 << 30,
        used_bytes: 1 << 28,
        subvolumes: None,
    };
    health::classify(
        &PoolReading {
            filesystem: &filesystem,
            shown: &shown,
            stats: StatsReading::Read {
                current: &stats,
                recorded: Some(&stats),
            },
            last_scrub: &last_scrub,
            now_unix_seconds: since_unix_seconds + 3600,
            registered_unix_seconds: 0,
        },
        &health::DEFAULT_THRESHOLDS,
    )
}

/// Hands the alerts one observation, as the pipeline's observer does after a refresh.
fn observe(server: &TestServer, show: &str) {
    let health = health_of(show);
    let _changes = server
        .state
        .alerts
        .observe(
            &[PoolObservation {
                uuid: UUID,
                label: Some("healthpool"),
                health: &health,
            }],
            None,
        )
        .unwrap();
}

fn kinds_and_states(reply: &Value) -> Vec<String> {
    reply["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|alert| {
            format!(
                "{} {} {}",
                alert["id"],
                alert["kind"].as_str().unwrap(),
                alert["state"].as_str().unwrap()
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_are_listed_acknowledged_audited_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), "", Arc::new(ManualClock::new(T0))).await;
    let anonymous = Client::new();
    assert_eq!(anonymous.get(&server, "/api/v1/alerts").await.status, 401);
    let (secret, _) = server.setup_admin(&anonymous).await;
    let admin = logged_in(&server, &secret).await;

    observe(&server, "missing-degraded-mount");
    let listed = admin.get(&server, "/api/v1/alerts").await;
    assert_eq!(listed.status, 200, "{}", listed.raw);
    assert_eq!(
        kinds_and_states(&listed.body),
        ["1 device-missing raised", "0 pool-degraded raised"]
    );
    assert_eq!(listed.body["n_unacknowledged"], 2);
    let degraded = &listed.body["alerts"][1];
    assert_eq!(degraded["severity"], "critical");
    assert_eq!(
        degraded["subject"],
        json!({"type": "pool", "pool_uuid": UUID, "pool_label": "healthpool"})
    );
    assert!(
        degraded["message"]
            .as_str()
            .unwrap()
            .contains("1 of 3 devices missing (devid 3)"),
        "{degraded}"
    );

    // The same condition again: no new alert, last_seen moves.
    server.clock.advance(60);
    observe(&server, "missing-degraded-mount");
    let again = admin.get(&server, "/api/v1/alerts").await;
    assert_eq!(kinds_and_states(&again.body).len(), 2);
    assert_eq!(
        again.body["alerts"][1]["last_seen"].as_u64(),
        Some(server.clock_now())
    );

    // Acknowledging is a POST: without the session's CSRF token it is refused.
    let mut forged = admin.clone();
    forged.csrf = Some("not-the-token".into());
    let refused = forged
        .post(&server, "/api/v1/alerts/0/ack", json!({}))
        .await;
    assert_eq!(refused.status, 403, "{}", refused.raw);
    assert_eq!(
        anonymous
            .post(&server, "/api/v1/alerts/0/ack", json!({}))
            .await
            .status,
        401
    );
    let acked = admin.post(&server, "/api/v1/alerts/0/ack", json!({})).await;
    assert_eq!(acked.status, 200, "{}", acked.raw);
    assert_eq!(acked.body["alert"]["state"], "acknowledged");
    assert_eq!(acked.body["alert"]["acknowledged_by"], "admin");
    for unknown in ["999", "abc"] {
        let reply = admin
            .post(&server, &format!("/api/v1/alerts/{unknown}/ack"), json!({}))
            .await;
        assert_eq!(reply.status, 404, "{}", reply.raw);
        assert_eq!(reply.body["error"]["code"], "alert.unknown");
        assert_eq!(
            reply.body["error"]["message"],
            format!("no alert with id {unknown:?}")
        );
    }

    // The device is back: both clear; open ones would be listed first.
    server.clock.advance(60);
    observe(&server, "raid1-never-scrubbed");
    let cleared = admin.get(&server, "/api/v1/alerts").await;
    assert_eq!(
        kinds_and_states(&cleared.body),
        ["1 device-missing cleared", "0 pool-degraded cleared"]
    );
    assert_eq!(cleared.body["n_open"], 0);

    let audited: Vec<(AuditKind, Option<String>)> = server
        .audit
        .events()
        .into_iter()
        .filter(|event| {
            matches!(
                event.kind,
                AuditKind::AlertRaised | AuditKind::AlertAcknowledged | AuditKind::AlertCleared
            )
        })
        .map(|event| (event.kind, event.username))
        .collect();
    assert_eq!(
        audited,
        [
            (AuditKind::AlertRaised, None),
            (AuditKind::AlertRaised, None),
            (AuditKind::AlertAcknowledged, Some("admin".into())),
            (AuditKind::AlertCleared, None),
            (AuditKind::AlertCleared, None),
        ]
    );

    // The book is in the state directory: a restart lists the same alerts.
    let clock = server.clock.clone();
    server.stop().await;
    let server = TestServer::start(dir.path(), "", clock).await;
    let admin = logged_in(&server, &secret).await;
    let restarted = admin.get(&server, "/api/v1/alerts").await;
    assert_eq!(
        kinds_and_states(&restarted.body),
        kinds_and_states(&cleared.body)
    );
    assert_eq!(restarted.body["alerts"][1]["acknowledged_by"], "admin");
}

/// What the receiver got: each request's headers and body.
type Received = Arc<Mutex<Vec<(HeaderMap, Vec<u8>)>>>;

/// A webhook receiver on 127.0.0.1 that answers 503 to the first request and 200 after.
async fn receiver() -> (String, Received, tokio::sync::mpsc::Receiver<()>) {
    let received: Received = Arc::default();
    let (arrived_tx, arrived) = tokio::sync::mpsc::channel(16);
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post({
            let received = received.clone();
            move |headers: HeaderMap, body: axum::body::Bytes| async move {
                let n_before = {
                    let mut received = received.lock().unwrap();
                    received.push((headers, body.to_vec()));
                    received.len() - 1
                };
                let _ = arrived_tx.send(()).await;
                if n_before == 0 {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, received, arrived)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_receives_each_change_signed_and_retries_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let (url, received, mut arrived) = receiver().await;
    let secret_file = dir.path().join("webhook.secret");
    std::fs::write(&secret_file, "shared secret of the test\n").unwrap();
    let config = format!(
        "[alerts]\nwebhook_url = \"{url}\"\nwebhook_secret_file = \"{}\"\n",
        secret_file.display()
    );
    let server = TestServer::start(
        &dir.path().join("state"),
        &config,
        Arc::new(ManualClock::new(T0)),
    )
    .await;
    server.state.start_alert_webhook().unwrap();
    observe(&server, "missing-degraded-mount");
    // Two alerts raised: the first delivery fails once (503) and is retried after the
    // backoff, then the second is delivered.
    for _ in 0..3 {
        tokio::time::timeout(std::time::Duration::from_secs(30), arrived.recv())
            .await
            .expect("a webhook request within 30 s");
    }
    let received = received.lock().unwrap().clone();
    assert_eq!(received.len(), 3);
    assert_eq!(
        received[0].1, received[1].1,
        "the retry posts the same body"
    );
    let mut kinds = Vec::new();
    for (headers, body) in &received {
        assert_eq!(headers["content-type"], "application/json");
        let timestamp: u64 = headers["x-nos-timestamp"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(timestamp, T0, "signed at the server's clock");
        let signature = headers["x-nos-signature"].to_str().unwrap();
        assert!(nos_host::alerts::webhook::verify(
            b"shared secret of the test",
            timestamp,
            body,
            signature
        ));
        assert!(!nos_host::alerts::webhook::verify(
            b"another secret",
            timestamp,
            body,
            signature
        ));
        assert!(!nos_host::alerts::webhook::verify(
            b"shared secret of the test",
            timestamp + 1,
            body,
            signature
        ));
        let body: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(body["change"], "raised");
        assert_eq!(body["alert"]["subject"]["pool_uuid"], UUID);
        kinds.push(body["alert"]["kind"].as_str().unwrap().to_owned());
    }
    assert_eq!(kinds, ["pool-degraded", "pool-degraded", "device-missing"]);
}
