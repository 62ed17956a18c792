//! The storage pipeline over real HTTP with the real planner plugins and a fake agent port:
//! plan → apply refusals (wrong confirmation, expired, another session's plan, stale facts,
//! rejected steps) run nothing; a failing step rolls back in reverse with an exact record; the
//! pool lock is released; a job left running is marked interrupted at restart; the audit chain
//! verifies and an edited byte is found. The real agent and loop devices are `nos-tests`' job.

use std::path::Path;
use std::sync::{Arc, Mutex};

use nos_host::audit::HashChainAudit;
use nos_host::clock::ManualClock;
use nos_host::facts::Facts;
use nos_host::pipeline::port::{AgentPort, PortError, StepRun};
use nos_host::plan::types::Request;
use serde_json::{Value, json};

use crate::harness::{Client, T0, TestServer, logged_in};

use crate::built::{BTRFS_DEVICES, BTRFS_POOL, HOSTILE_FORBIDDEN_ARGV};

/// A stand-in agent: serves fixture facts, records every request, fails the first request
/// whose text contains `fail_on`.
#[derive(Default)]
pub(crate) struct FakeAgent {
    facts: Mutex<Option<Facts>>,
    pub(crate) ran: Mutex<Vec<String>>,
    fail_on: Mutex<Option<String>>,
}

impl AgentPort for FakeAgent {
    fn facts(&self) -> Result<Facts, PortError> {
        self.facts
            .lock()
            .unwrap()
            .clone()
            .ok_or_else(|| PortError::Unreachable("no facts".into()))
    }

    fn run(&self, request: &Request, _progress: &mut dyn FnMut(String)) -> StepRun {
        let text = request.to_string();
        self.ran.lock().unwrap().push(text.clone());
        let fail = self
            .fail_on
            .lock()
            .unwrap()
            .as_deref()
            .is_some_and(|needle| text.contains(needle));
        StepRun {
            ok: !fail,
            rule_id: Some("fake".into()),
            ran: text,
            exit_code: Some(if fail { 1 } else { 0 }),
            output: if fail {
                "simulated failure".into()
            } else {
                String::new()
            },
        }
    }
}

fn fixture_facts() -> Facts {
    let text =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/facts/fixture.json"))
            .unwrap();
    Facts::from_file_json(&text).unwrap()
}

fn pipeline_toml(dir: &Path) -> String {
    let allowlist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../allowlist.toml");
    format!(
        "[allowlist]\npath = \"{}\"\n[pipeline]\nagent_socket = \"{}/agent.sock\"\ntoken_file = \"{}/agent.token\"\nplugins = [\"{BTRFS_POOL}\", \"{}/missing-plugin\", \"{BTRFS_DEVICES}\", \"{HOSTILE_FORBIDDEN_ARGV}\"]\nplan_ttl_seconds = 600\n",
        allowlist.display(),
        dir.display(),
        dir.display(),
        dir.display(),
    )
}

pub(crate) struct Setup {
    pub(crate) server: TestServer,
    pub(crate) agent: Arc<FakeAgent>,
    pub(crate) secret: Vec<u8>,
}

pub(crate) async fn start(dir: &Path, secret: Option<Vec<u8>>, now: u64) -> Setup {
    let clock = Arc::new(ManualClock::new(now));
    let server = TestServer::start(dir, &pipeline_toml(dir), clock).await;
    let agent = Arc::new(FakeAgent::default());
    *agent.facts.lock().unwrap() = Some(fixture_facts());
    let config = server.state.config.pipeline.clone().unwrap();
    let port: Arc<dyn AgentPort> = agent.clone();
    let state = server.state.clone();
    let host = server
        .plugin_host
        .clone()
        .expect("[pipeline] makes a plugin host");
    tokio::task::spawn_blocking(move || state.start_pipeline(&config, port, &host))
        .await
        .unwrap()
        .unwrap();
    let secret = match secret {
        Some(secret) => secret,
        None => server.setup_admin(&Client::new()).await.0,
    };
    Setup {
        server,
        agent,
        secret,
    }
}

/// The loaded component hash of `plugin`, as `GET /plugins` lists it.
pub(crate) async fn plugin_sha256(server: &TestServer, client: &Client, plugin: &str) -> String {
    let listed = client.get(server, "/api/v1/plugins").await;
    assert_eq!(listed.status, 200, "{}", listed.raw);
    listed.body["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["name"] == plugin)
        .and_then(|entry| entry["sha256"].as_str())
        .unwrap_or_else(|| panic!("{plugin} is not listed: {}", listed.raw))
        .to_string()
}

/// Grants `plugin` (by the hash it is listed with) and enables it.
pub(crate) async fn grant(server: &TestServer, client: &Client, plugin: &str) {
    let sha256 = plugin_sha256(server, client, plugin).await;
    for (path, body) in [
        (
            format!("/api/v1/plugins/{plugin}/grant"),
            json!({ "sha256": sha256 }),
        ),
        (
            format!("/api/v1/plugins/{plugin}/enable"),
            json!({"enabled": true}),
        ),
    ] {
        let reply = client.post(server, &path, body).await;
        assert_eq!(reply.status, 200, "{}", reply.raw);
    }
}

pub(crate) fn pool_input() -> Value {
    json!({"devices": ["/dev/sdb", "/dev/sdc"], "label": "tank", "mountpoint": "/srv/tank"})
}

pub(crate) async fn plan(setup: &Setup, client: &Client, plugin: &str, input: Value) -> Value {
    let reply = client
        .post(
            &setup.server,
            "/api/v1/plans",
            json!({"plugin": plugin, "input": input}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.raw);
    reply.body["plan"].clone()
}

async fn wait_job(setup: &Setup, client: &Client, job: &str) -> Value {
    for _ in 0..500 {
        let reply = client
            .get(&setup.server, &format!("/api/v1/jobs/{job}"))
            .await;
        assert_eq!(reply.status, 200, "{}", reply.raw);
        if reply.body["job"]["state"] != "running" {
            return reply.body["job"].clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("job {job} never finished");
}

pub(crate) fn code(reply: &crate::harness::Reply) -> String {
    format!(
        "{} {}",
        reply.status,
        reply.body["error"]["code"].as_str().unwrap_or("-")
    )
}

/// Every setup here lists a plugin directory that does not exist between good ones: nosd
/// starts, serves the others and lists the broken one as failed with its reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_16_a_broken_plugin_never_stops_nosd() {
    let dir = tempfile::tempdir().unwrap();
    let setup = start(dir.path(), None, T0).await;
    let admin = logged_in(&setup.server, &setup.secret).await;
    let listed = admin.get(&setup.server, "/api/v1/plugins").await;
    assert_eq!(listed.status, 200, "{}", listed.raw);
    let names: Vec<&str> = listed.body["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|entry| entry["name"].as_str())
        .collect();
    assert!(names.contains(&"btrfs-pool"), "{}", listed.raw);
    assert!(names.contains(&"btrfs-devices"), "{}", listed.raw);
    let failed = listed.body["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{}", listed.raw);
    let missing = format!("{}/missing-plugin", dir.path().display());
    assert_eq!(failed[0]["path"], missing.as_str());
    let reason = failed[0]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with(&format!("cannot read {missing}")),
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_refusals_run_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let setup = start(dir.path(), None, T0).await;
    let admin = logged_in(&setup.server, &setup.secret).await;
    let before_grant = admin
        .post(
            &setup.server,
            "/api/v1/plans",
            json!({"plugin": "btrfs-pool", "input": pool_input()}),
        )
        .await;
    assert_eq!(code(&before_grant), "403 plugin.not_granted");
    grant(&setup.server, &admin, "btrfs-pool").await;
    let listed = admin.get(&setup.server, "/api/v1/plugins").await;
    assert_eq!(listed.status, 200);
    assert!(listed.raw.contains("\"granted\":true"), "{}", listed.raw);

    let created = plan(&setup, &admin, "btrfs-pool", pool_input()).await;
    let id = created["id"].as_str().unwrap().to_string();
    let confirmation = created["confirmation"].as_str().unwrap().to_string();
    assert_eq!(created["applicable"], true, "{created}");
    assert_eq!(created["sha256"].as_str().unwrap().len(), 64);
    let apply = |confirm: &str| json!({ "confirm": confirm });
    let apply_path = format!("/api/v1/plans/{id}/apply");

    // A wrong confirmation word.
    let wrong = admin.post(&setup.server, &apply_path, apply("yes")).await;
    assert_eq!(code(&wrong), "400 plan.confirmation_mismatch");
    assert!(wrong.raw.contains(&confirmation), "{}", wrong.raw);

    // Another session's plan (the same admin, logged in a second time).
    let other = logged_in(&setup.server, &setup.secret).await;
    let foreign = other
        .post(&setup.server, &apply_path, apply(&confirmation))
        .await;
    assert_eq!(code(&foreign), "403 plan.not_yours");

    // A stale plan: a device changed after planning.
    let mut changed = fixture_facts();
    changed.block_devices[2].fstype = Some("ext4".into());
    *setup.agent.facts.lock().unwrap() = Some(changed);
    let stale = admin
        .post(&setup.server, &apply_path, apply(&confirmation))
        .await;
    assert_eq!(code(&stale), "409 plan.stale");
    *setup.agent.facts.lock().unwrap() = Some(fixture_facts());

    // A plan with rejected steps (a hostile planner asking for `sh -c …`): shown, not applied.
    grant(&setup.server, &admin, "hostile-forbidden-argv").await;
    let rejected_plan = plan(&setup, &admin, "hostile-forbidden-argv", json!({})).await;
    assert_eq!(rejected_plan["applicable"], false, "{rejected_plan}");
    assert!(rejected_plan.to_string().contains("\"allowed\":false"));
    let rejected = admin
        .post(
            &setup.server,
            &format!(
                "/api/v1/plans/{}/apply",
                rejected_plan["id"].as_str().unwrap()
            ),
            apply(rejected_plan["confirmation"].as_str().unwrap()),
        )
        .await;
    assert_eq!(code(&rejected), "422 plan.rejected_steps");

    // Re-authentication older than 5 minutes.
    setup.server.clock.advance(301);
    let old_auth = admin
        .post(&setup.server, &apply_path, apply(&confirmation))
        .await;
    assert_eq!(code(&old_auth), "401 auth.reauth_required");

    // Expired: past the plan's 10 minutes (re-authenticated, so only expiry is in the way).
    setup.server.clock.advance(300);
    let reauth = admin
        .post(
            &setup.server,
            "/api/v1/auth/reauth",
            json!({"password": crate::harness::PASSWORD, "code": setup.server.totp_now(&setup.secret)}),
        )
        .await;
    assert!(
        reauth.status == 200 || reauth.status == 204,
        "{}",
        reauth.raw
    );
    let expired = admin
        .post(&setup.server, &apply_path, apply(&confirmation))
        .await;
    assert_eq!(code(&expired), "410 plan.expired");

    assert!(setup.agent.ran.lock().unwrap().is_empty(), "something ran");
    let audit = admin
        .get(&setup.server, "/api/v1/audit?kind=plan_apply_refused")
        .await;
    assert_eq!(audit.status, 200, "{}", audit.raw);
    let n_refusals = setup
        .server
        .audit
        .events()
        .iter()
        .filter(|event| event.kind == nos_host::audit::AuditKind::PlanApplyRefused)
        .count();
    assert_eq!(n_refusals, 6);
    setup.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_step_rolls_back_in_reverse_and_the_record_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let setup = start(dir.path(), None, T0).await;
    let admin = logged_in(&setup.server, &setup.secret).await;
    grant(&setup.server, &admin, "btrfs-pool").await;
    let created = plan(&setup, &admin, "btrfs-pool", pool_input()).await;
    let steps: Vec<String> = created["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|step| step["id"].as_str().unwrap().to_string())
        .collect();
    // Fail the mount: everything before it that declared a rollback is undone.
    *setup.agent.fail_on.lock().unwrap() = Some("mount -t btrfs".into());
    let reply = admin
        .post(
            &setup.server,
            &format!("/api/v1/plans/{}/apply", created["id"].as_str().unwrap()),
            json!({"confirm": created["confirmation"]}),
        )
        .await;
    assert_eq!(reply.status, 202, "{}", reply.raw);
    let job = wait_job(&setup, &admin, reply.body["job"].as_str().unwrap()).await;
    let states: Vec<String> = job["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|step| {
            format!(
                "{} {}",
                step["id"].as_str().unwrap(),
                step["state"].as_str().unwrap()
            )
        })
        .collect();
    let ran = setup.agent.ran.lock().unwrap().clone();
    let failed_idx = states
        .iter()
        .position(|line| line.ends_with(" failed"))
        .unwrap();
    assert!(
        states[failed_idx + 1..]
            .iter()
            .all(|line| line.ends_with(" skipped")),
        "{states:?}"
    );
    assert!(
        states[..failed_idx]
            .iter()
            .all(|line| line.ends_with(" rolled_back") || line.ends_with(" not_undone")),
        "{states:?}"
    );
    // The requests: the steps up to the failed one, then the rollbacks newest first.
    let n_rolled_back = states
        .iter()
        .filter(|line| line.ends_with(" rolled_back"))
        .count();
    assert_eq!(ran.len(), failed_idx + 1 + n_rolled_back, "{ran:#?}");
    let rollback_events: Vec<&str> = job["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["kind"] == "rollback_finished")
        .map(|event| event["step"].as_str().unwrap())
        .collect();
    let mut expected: Vec<&str> = steps[..failed_idx]
        .iter()
        .zip(&states)
        .filter(|(_, state)| state.ends_with(" rolled_back"))
        .map(|(id, _)| id.as_str())
        .collect();
    expected.reverse();
    assert_eq!(rollback_events, expected);
    assert!(
        job["state"] == "rolled_back" || job["state"] == "failed",
        "{job}"
    );
    // The lock is released: the same pool can be planned and applied again.
    assert!(!setup.state_pool_locked("/srv/tank"));
    setup.server.stop().await;
}

impl Setup {
    fn state_pool_locked(&self, pool: &str) -> bool {
        self.server
            .state
            .pipeline
            .get()
            .unwrap()
            .jobs
            .is_pool_locked(pool)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_running_at_restart_is_interrupted_and_the_audit_chain_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let setup = start(dir.path(), None, T0).await;
    let admin = logged_in(&setup.server, &setup.secret).await;
    grant(&setup.server, &admin, "btrfs-pool").await;
    let created = plan(&setup, &admin, "btrfs-pool", pool_input()).await;
    let reply = admin
        .post(
            &setup.server,
            &format!("/api/v1/plans/{}/apply", created["id"].as_str().unwrap()),
            json!({"confirm": created["confirmation"]}),
        )
        .await;
    assert_eq!(reply.status, 202, "{}", reply.raw);
    let job_id = reply.body["job"].as_str().unwrap().to_string();
    let done = wait_job(&setup, &admin, &job_id).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    // Simulate nosd dying mid-job: the persisted record says running.
    let jobs_path = dir.path().join("jobs.json");
    let text = std::fs::read_to_string(&jobs_path).unwrap();
    std::fs::write(
        &jobs_path,
        text.replace("\"state\":\"succeeded\"", "\"state\":\"running\""),
    )
    .unwrap();
    let secret = setup.secret.clone();
    let later = setup.server.clock_now() + 60;
    setup.server.stop().await;
    let restarted = start(dir.path(), Some(secret), later).await;
    let admin = logged_in(&restarted.server, &restarted.secret).await;
    let job = admin
        .get(&restarted.server, &format!("/api/v1/jobs/{job_id}"))
        .await;
    assert_eq!(job.body["job"]["state"], "interrupted", "{}", job.raw);
    assert!(!restarted.state_pool_locked("/srv/tank"));
    restarted.server.stop().await;

    // The chain: a real HashChainAudit over the same directory verifies, then one edited
    // byte is named.
    let audit_dir = tempfile::tempdir().unwrap();
    let audit = HashChainAudit::open(audit_dir.path(), 1 << 20, T0).unwrap();
    for idx in 0..10 {
        nos_host::audit::AuditSink::record(
            &audit,
            nos_host::audit::AuditEvent {
                at: T0 + idx,
                kind: nos_host::audit::AuditKind::StepRan,
                username: Some("admin".into()),
                client: None,
                verdict: Some("ok".into()),
                detail: format!("step {idx}"),
            },
        );
    }
    drop(audit);
    assert_eq!(
        nos_host::audit::verify_dir(audit_dir.path())
            .unwrap()
            .unwrap()
            .n_records,
        10
    );
    let log = audit_dir.path().join("audit.jsonl");
    let mut bytes = std::fs::read(&log).unwrap();
    let at = bytes.windows(6).position(|w| w == b"step 4").unwrap() + 5;
    bytes[at] = b'5';
    std::fs::write(&log, bytes).unwrap();
    let broken = nos_host::audit::verify_dir(audit_dir.path())
        .unwrap()
        .unwrap_err();
    assert_eq!(broken.line, 5, "{broken}");
}
