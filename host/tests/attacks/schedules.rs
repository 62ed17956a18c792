//! `/api/v1/schedules` and the schedules' runner over real HTTP, with the real
//! `btrfs-maintenance` planner and the stand-in agent of `pools.rs` (captured facts, every
//! step reported done): approving, editing and revoking need a session, the CSRF token and a
//! recent re-authentication; terms the allowlist or the planner's scope refuse are typed
//! refusals; a due schedule's plan within its approval is applied unattended as
//! `nosd:schedule:<id>`, one outside it is held with an alert; every run is audited; a revoked
//! schedule never runs; a check after many missed periods runs each schedule once.

use std::path::Path;
use std::sync::Arc;

use nos_host::audit::AuditKind;
use nos_host::pipeline::jobs::JobState;
use nos_host::schedules::RunOutcome;
use nos_host::schedules::runner::Checked;
use serde_json::{Value, json};

use crate::built::BTRFS_MAINTENANCE;
use crate::harness::{Client, PASSWORD, Reply, TestServer, logged_in};
use crate::pipeline::{code, grant};
use crate::pools::{
    NOW, ObservingAgent, finished_job, observation, start_with, tmp_mount_root_allowlist,
};

const MOUNTPOINT: &str = "/tmp/nos-capture.1PB2A1/mnt-fixpool";
const DAY: u64 = 86_400;

/// nosd with btrfs-maintenance granted, an admin logged in, and the agent.
async fn start(dir: &Path) -> (TestServer, Client, Arc<ObservingAgent>, Vec<u8>) {
    let agent = ObservingAgent::new(observation("btrfs-mounted", "raid1-scrubbed"));
    let allowlist = tmp_mount_root_allowlist(dir);
    let server = start_with(
        dir,
        agent.clone(),
        NOW,
        &allowlist,
        &format!("\"{BTRFS_MAINTENANCE}\""),
        "",
    )
    .await;
    let secret = server.setup_admin(&Client::new()).await.0;
    let admin = logged_in(&server, &secret).await;
    grant(&server, &admin, "btrfs-maintenance").await;
    (server, admin, agent, secret)
}

fn scrub(action: &str, rule_ids: &[&str], period_seconds: u64) -> Value {
    json!({
        "planner": "btrfs-maintenance",
        "input": {"action": action, "pool": MOUNTPOINT},
        "rule_ids": rule_ids,
        "period_seconds": period_seconds,
    })
}

async fn create(server: &TestServer, admin: &Client, body: Value) -> Reply {
    admin.post(server, "/api/v1/schedules", body).await
}

/// Each audit event of `kind` as `verdict username: detail`.
fn audited(server: &TestServer, kind: AuditKind) -> Vec<String> {
    server
        .audit
        .events()
        .into_iter()
        .filter(|event| event.kind == kind)
        .map(|event| {
            format!(
                "{} {}: {}",
                event.verdict.unwrap_or_default(),
                event.username.unwrap_or_default(),
                event.detail
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_are_guarded_checked_edited_and_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let (server, admin, agent, secret) = start(dir.path()).await;
    let valid = scrub("scrub-start", &["btrfs.scrub.start"], DAY);

    // No session, no CSRF token, a wrong CSRF token.
    let anonymous = Client::new();
    assert_eq!(
        code(&anonymous.get(&server, "/api/v1/schedules").await),
        "401 auth.required"
    );
    assert_eq!(
        code(&create(&server, &anonymous, valid.clone()).await),
        "401 auth.required"
    );
    let no_csrf = admin
        .send(
            admin
                .http
                .post(server.url("/api/v1/schedules"))
                .header("content-type", "application/json")
                .body(valid.to_string()),
        )
        .await;
    assert_eq!(code(&no_csrf), "403 csrf.rejected");
    let mut wrong_csrf = admin.clone();
    wrong_csrf.csrf = Some("A".repeat(43));
    assert_eq!(
        code(&create(&server, &wrong_csrf, valid.clone()).await),
        "403 csrf.rejected"
    );

    // Terms refused, each with its code.
    let refused = [
        (
            scrub("scrub-start", &["btrfs.nope"], DAY),
            "422 schedule.unknown_rule",
        ),
        (
            scrub("scrub-start", &["mkfs.btrfs"], DAY),
            "422 schedule.rule_out_of_scope",
        ),
        (scrub("scrub-start", &[], DAY), "422 schedule.rule_ids"),
        (
            scrub("scrub-start", &["btrfs.scrub.start"], 60),
            "422 schedule.bad_period",
        ),
        (
            scrub("scrub-start", &["btrfs.scrub.start"], 367 * DAY),
            "422 schedule.bad_period",
        ),
        (
            json!({"planner": "btrfs-maintenance", "input": {"action": "scrub-start", "pool": MOUNTPOINT, "tag": "nos9"}, "rule_ids": ["btrfs.scrub.start"], "period_seconds": DAY}),
            "422 schedule.input_has_tag",
        ),
        (
            json!({"planner": "nope", "input": {}, "rule_ids": ["btrfs.scrub.start"], "period_seconds": DAY}),
            "404 plugin.unknown",
        ),
        (
            json!({"planner": "btrfs-maintenance", "input": "scrub", "rule_ids": ["btrfs.scrub.start"], "period_seconds": DAY}),
            "400 request.invalid",
        ),
    ];
    for (body, expected) in refused {
        assert_eq!(
            code(&create(&server, &admin, body.clone()).await),
            expected,
            "{body}"
        );
    }
    assert_eq!(
        admin.get(&server, "/api/v1/schedules").await.body,
        json!({"schedules": []})
    );

    // Approved: listed with its next run (the first check from now) and no run yet.
    let created = create(&server, &admin, valid.clone()).await;
    assert_eq!(created.status, 201, "{}", created.raw);
    let now = server.clock_now();
    let schedule = &created.body["schedule"];
    assert_eq!(schedule["id"], "s1");
    assert_eq!(schedule["tag"], "nos1");
    assert_eq!(schedule["revision"], 1);
    assert_eq!(schedule["created_by"], "admin");
    assert_eq!(schedule["rule_ids"], json!(["btrfs.scrub.start"]));
    assert_eq!(
        schedule["input"],
        json!({"action": "scrub-start", "pool": MOUNTPOINT}),
        "btrfs-maintenance takes no tag"
    );
    let listed = admin.get(&server, "/api/v1/schedules").await;
    assert_eq!(listed.status, 200, "{}", listed.raw);
    assert_eq!(listed.body["schedules"][0]["next_run"], now);
    assert_eq!(listed.body["schedules"][0]["last_run"], Value::Null);
    assert!(dir.path().join("schedules.json").exists());

    // Edited: a new revision.
    let edited = admin
        .put(
            &server,
            "/api/v1/schedules/s1",
            json!({"input": {"action": "scrub-start", "pool": MOUNTPOINT}, "rule_ids": ["btrfs.scrub.start", "btrfs.scrub.status"], "period_seconds": 2 * DAY}),
        )
        .await;
    assert_eq!(edited.status, 200, "{}", edited.raw);
    assert_eq!(edited.body["schedule"]["revision"], 2);
    assert_eq!(edited.body["schedule"]["period_seconds"], 2 * DAY);
    let unknown = admin
        .put(
            &server,
            "/api/v1/schedules/s9",
            json!({"input": {}, "rule_ids": ["btrfs.scrub.start"], "period_seconds": DAY}),
        )
        .await;
    assert_eq!(code(&unknown), "404 schedule.unknown");

    // Five minutes after the login, every change needs a re-authentication.
    server.clock.advance(301);
    assert_eq!(
        code(&create(&server, &admin, valid.clone()).await),
        "401 auth.reauth_required"
    );
    assert_eq!(
        code(
            &admin
                .put(
                    &server,
                    "/api/v1/schedules/s1",
                    json!({"input": {}, "rule_ids": ["btrfs.scrub.start"], "period_seconds": DAY})
                )
                .await
        ),
        "401 auth.reauth_required"
    );
    assert_eq!(
        code(&admin.delete(&server, "/api/v1/schedules/s1").await),
        "401 auth.reauth_required"
    );
    let reauth = admin
        .post(
            &server,
            "/api/v1/auth/reauth",
            json!({"password": PASSWORD, "code": server.totp_now(&secret)}),
        )
        .await;
    assert!(
        reauth.status == 200 || reauth.status == 204,
        "{}",
        reauth.raw
    );

    // Revoked: gone, and its due run does not happen.
    let revoked = admin.delete(&server, "/api/v1/schedules/s1").await;
    assert_eq!(revoked.status, 200, "{}", revoked.raw);
    assert_eq!(revoked.body, json!({"id": "s1", "revoked": true}));
    assert_eq!(
        code(&admin.delete(&server, "/api/v1/schedules/s1").await),
        "404 schedule.unknown"
    );
    assert_eq!(
        admin.get(&server, "/api/v1/schedules").await.body,
        json!({"schedules": []})
    );
    server.clock.advance(10 * DAY);
    let checked = server.state.check_schedules().await.unwrap();
    assert!(checked.is_empty(), "{checked:?}");
    assert_eq!(*agent.ran.lock().unwrap(), Vec::<String>::new());

    // Every change audited, by its admin.
    let changes: Vec<String> = [
        AuditKind::ScheduleCreated,
        AuditKind::ScheduleEdited,
        AuditKind::ScheduleRevoked,
    ]
    .into_iter()
    .flat_map(|kind| audited(&server, kind))
    .map(|line| line.split(" every").next().unwrap_or("").to_owned())
    .collect();
    assert_eq!(
        changes,
        [
            "ok admin: schedule s1 revision 1 planner btrfs-maintenance rules btrfs.scrub.start",
            "ok admin: schedule s1 revision 2 planner btrfs-maintenance rules btrfs.scrub.start,btrfs.scrub.status",
            "ok admin: schedule s1 revision 2 planner btrfs-maintenance rules btrfs.scrub.start,btrfs.scrub.status",
        ]
    );
    assert!(audited(&server, AuditKind::ScheduleRan).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_due_schedule_applies_within_its_approval_and_holds_outside_it() {
    let dir = tempfile::tempdir().unwrap();
    let (server, admin, agent, _secret) = start(dir.path()).await;

    // Approved with the rule its plan uses: applied unattended at the first check.
    let created = create(
        &server,
        &admin,
        scrub("scrub-start", &["btrfs.scrub.start"], DAY),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.raw);
    let checked = server.state.check_schedules().await.unwrap();
    let [(id, Checked::Ran(run))] = &checked[..] else {
        panic!("one run: {checked:?}")
    };
    assert_eq!(id, "s1");
    let RunOutcome::Applied { job_id } = &run.outcome else {
        panic!("applied: {run:?}")
    };
    let job = finished_job(&server, job_id).await;
    assert_eq!(job.state, JobState::Succeeded, "{job:?}");
    assert_eq!(job.username, "nosd:schedule:s1");
    assert_eq!(
        *agent.ran.lock().unwrap(),
        [format!("btrfs scrub start -B {MOUNTPOINT}")]
    );
    let sha256 = run.plan_sha256.clone().unwrap();
    let ran = audited(&server, AuditKind::ScheduleRan);
    assert_eq!(ran.len(), 1, "{ran:#?}");
    assert!(
        ran[0].starts_with("applied nosd:schedule:s1: schedule s1 revision 1 plan "),
        "{ran:#?}"
    );
    assert!(
        ran[0].ends_with(&format!("sha256 {sha256}: job {job_id}")),
        "{ran:#?}"
    );
    let listed = admin.get(&server, "/api/v1/schedules").await;
    let shown = &listed.body["schedules"][0];
    assert_eq!(
        shown["last_run"]["outcome"],
        json!({"result": "applied", "job_id": job_id})
    );
    assert_eq!(shown["last_run"]["plan_sha256"], sha256);
    assert_eq!(shown["next_run"], run.at + DAY);

    // Not due again before its period.
    assert!(server.state.check_schedules().await.unwrap().is_empty());

    // Approved without the rule its plan uses: held for an admin, with an alert.
    let created = create(
        &server,
        &admin,
        scrub("scrub-start", &["btrfs.scrub.status"], DAY),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.raw);
    let checked = server.state.check_schedules().await.unwrap();
    let [(id, Checked::Ran(run))] = &checked[..] else {
        panic!("one run: {checked:?}")
    };
    assert_eq!(id, "s2");
    let RunOutcome::Held { reasons, steps } = &run.outcome else {
        panic!("held: {run:?}")
    };
    assert_eq!(
        reasons,
        &["step scrub uses rule btrfs.scrub.start, which the schedule does not approve"]
    );
    assert_eq!(steps[0].rule_id.as_deref(), Some("btrfs.scrub.start"));
    assert_eq!(agent.ran.lock().unwrap().len(), 1, "nothing more ran");
    let alerts = admin.get(&server, "/api/v1/alerts").await;
    let held: Vec<&Value> = alerts.body["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|alert| alert["kind"] == "schedule-held")
        .collect();
    assert_eq!(held.len(), 1, "{}", alerts.raw);
    assert_eq!(held[0]["state"], "raised");
    assert_eq!(
        held[0]["subject"],
        json!({"type": "schedule", "schedule_id": "s2", "planner": "btrfs-maintenance"})
    );
    assert!(
        held[0]["message"]
            .as_str()
            .unwrap()
            .contains("does not approve")
    );
    let ran = audited(&server, AuditKind::ScheduleRan);
    assert!(
        ran[1].starts_with("held nosd:schedule:s2: schedule s2 revision 1 plan "),
        "{ran:#?}"
    );

    // nosd down for ten periods: each schedule runs once, then not again. s1's job may still
    // hold the pool when s2 is checked: then s2 waits for the next check (not a run).
    server.clock.advance(10 * DAY);
    let checked = server.state.check_schedules().await.unwrap();
    let [(s1, Checked::Ran(run)), (s2, second)] = &checked[..] else {
        panic!("both checked: {checked:?}")
    };
    assert_eq!((s1.as_str(), s2.as_str()), ("s1", "s2"));
    let RunOutcome::Applied { job_id } = &run.outcome else {
        panic!("applied: {run:?}")
    };
    finished_job(&server, job_id).await;
    match second {
        Checked::Busy => {
            let again = server.state.check_schedules().await.unwrap();
            assert!(
                matches!(&again[..], [(id, Checked::Ran(_))] if id == "s2"),
                "{again:?}"
            );
        }
        Checked::Ran(run) => assert!(matches!(run.outcome, RunOutcome::Held { .. })),
        Checked::Superseded => panic!("{second:?}"),
    }
    assert!(server.state.check_schedules().await.unwrap().is_empty());
    assert_eq!(audited(&server, AuditKind::ScheduleRan).len(), 4);
    assert_eq!(agent.ran.lock().unwrap().len(), 2);
}
