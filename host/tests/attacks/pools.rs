//! `/api/v1/pools` over real HTTP, from a stand-in agent serving facts and pool readings
//! captured from real tools (`tests/data/facts/real/`, `tests/data/health/real/`): a pool read
//! at its mount point is registered and shown with its health, members and last scrub; the
//! registry survives a restart and shows the pool not mounted once it is; unknown and malformed
//! UUIDs are typed 404s; every read needs a session; the alerts judge every refresh.

use std::path::Path;
use std::sync::{Arc, Mutex};

use nos_host::clock::ManualClock;
use nos_host::facts::Facts;
use nos_host::gather::Observation;
use nos_host::pipeline::jobs::{JobRecord, JobState};
use nos_host::pipeline::port::{AgentPort, PortError, StepRun};
use nos_host::plan::types::Request;
use nos_host::pools::scrub_schedule::{Outcome, ScrubAction};
use nos_protocol::{FactText, Facts as RawFacts, PoolReadings, Probe};
use serde_json::json;

use crate::built::BTRFS_MAINTENANCE;
use crate::harness::{Client, TestServer, logged_in};
use crate::pipeline::{code, grant};

pub(crate) const UUID: &str = "00b3a85f-67a1-4ead-97e8-a2c61cc26544";
/// A day after the captured scrub (Wed Dec 2 16:40:37 2026, read as UTC).
pub(crate) const NOW: u64 = 1_796_229_637 + 86_400;

/// A stand-in agent that observes what the test set; it runs nothing, records each request
/// and reports it done.
pub(crate) struct ObservingAgent {
    pub(crate) observation: Mutex<Observation>,
    pub(crate) ran: Mutex<Vec<String>>,
}

impl ObservingAgent {
    pub(crate) fn new(observation: Observation) -> Arc<ObservingAgent> {
        Arc::new(ObservingAgent {
            observation: Mutex::new(observation),
            ran: Mutex::default(),
        })
    }
}

impl AgentPort for ObservingAgent {
    fn facts(&self) -> Result<Facts, PortError> {
        self.observe().map(|observation| observation.facts)
    }

    fn observe(&self) -> Result<Observation, PortError> {
        Ok(self.observation.lock().unwrap().clone())
    }

    fn run(&self, request: &Request, _progress: &mut dyn FnMut(String)) -> StepRun {
        self.ran.lock().unwrap().push(request.to_string());
        StepRun {
            ok: true,
            rule_id: None,
            ran: request.to_string(),
            exit_code: Some(0),
            output: String::new(),
        }
    }
}

fn data(path: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

fn text(path: &str) -> FactText {
    FactText::Text { text: data(path) }
}

/// A captured facts scenario as the agent sends it, each mounted filesystem read with the
/// readings (device stats, scrub status) of captured health scenario `readings`, through the
/// one facts path.
pub(crate) fn observation(scenario: &str, readings: &str) -> Observation {
    let dir = format!("facts/real/{scenario}");
    let mut raw = RawFacts {
        lsblk: data(&format!("{dir}/lsblk-tree.json")),
        probes: data(&format!("{dir}/devices.txt"))
            .lines()
            .map(|device| Probe {
                device: device.to_owned(),
                output: text(&format!(
                    "{dir}/blkid-p/{}.txt",
                    device.trim_start_matches("/dev/")
                )),
            })
            .collect(),
        btrfs_show: text(&format!("{dir}/btrfs-show.txt")),
        mountinfo: text(&format!("{dir}/mountinfo.txt")),
        swaps: text(&format!("{dir}/swaps.txt")),
        pools: Vec::new(),
    };
    let mounts = nos_machine::proc_text::parse_mountinfo(raw.mountinfo.text().unwrap());
    raw.pools = nos_machine::proc_text::btrfs_mount_points(&mounts, |_| true)
        .into_iter()
        .map(|mount_path| PoolReadings {
            mount_path,
            device_stats: text(&format!("health/real/{readings}/device-stats.json")),
            scrub_status: text(&format!("health/real/{readings}/scrub-status.txt")),
            subvolumes: FactText::not_read(),
        })
        .collect();
    let files = nos_host::gather::LocalFiles {
        sysfs_btrfs: Path::new("/nonexistent"),
        by_id: Path::new("/nonexistent"),
    };
    nos_host::gather::gather(&raw, &files).unwrap()
}

async fn start(dir: &Path, agent: Arc<ObservingAgent>, now: u64) -> TestServer {
    let allowlist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../allowlist.toml");
    start_with(dir, agent, now, &allowlist, "", "").await
}

/// [`start`] with the allowlist at `allowlist`, the planners `plugins` (a TOML array's
/// items) and `extra` config.
pub(crate) async fn start_with(
    dir: &Path,
    agent: Arc<ObservingAgent>,
    now: u64,
    allowlist: &Path,
    plugins: &str,
    extra: &str,
) -> TestServer {
    let toml = format!(
        "[allowlist]\npath = \"{}\"\n[pipeline]\nagent_socket = \"{dir}/agent.sock\"\ntoken_file = \"{dir}/agent.token\"\nplugins = [{plugins}]\n{extra}",
        allowlist.display(),
        dir = dir.display(),
    );
    let server = TestServer::start(dir, &toml, Arc::new(ManualClock::new(now))).await;
    let config = server.state.config.pipeline.clone().unwrap();
    let port: Arc<dyn AgentPort> = agent;
    let state = server.state.clone();
    let host = server.plugin_host.clone().unwrap();
    tokio::task::spawn_blocking(move || state.start_pipeline(&config, port, &host))
        .await
        .unwrap()
        .unwrap();
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pools_are_registered_reconciled_and_served() {
    let dir = tempfile::tempdir().unwrap();
    let agent = ObservingAgent::new(observation("btrfs-mounted", "raid1-scrubbed"));
    let server = start(dir.path(), agent.clone(), NOW).await;
    let anonymous = Client::new();
    assert_eq!(
        code(&anonymous.get(&server, "/api/v1/pools").await),
        "401 auth.required"
    );
    let secret = server.setup_admin(&anonymous).await.0;
    let admin = logged_in(&server, &secret).await;

    let listed = admin.get(&server, "/api/v1/pools").await;
    assert_eq!(listed.status, 200, "{}", listed.raw);
    let pool = &listed.body["pools"][0];
    assert_eq!(listed.body["pools"].as_array().unwrap().len(), 1);
    assert_eq!(pool["uuid"], UUID);
    assert_eq!(pool["label"], "fixpool");
    assert_eq!(pool["state"], "mounted");
    assert_eq!(pool["health"], "ok");
    assert_eq!(
        pool["reasons"],
        json!(["size unknown: fullness is not judged"])
    );
    assert_eq!(pool["members"][0]["devid"], 1);
    assert_eq!(pool["members"][0]["path"], "/dev/loop6");
    assert_eq!(pool["members"][0]["missing"], false);
    assert_eq!(pool["members"][0]["counters"]["corruption_errs"], 0);
    assert_eq!(pool["members"][1]["devid"], 2);
    assert_eq!(pool["last_scrub"]["state"], "finished");
    assert_eq!(pool["last_scrub"]["since"], 1_796_229_637);
    assert_eq!(pool["last_scrub"]["bytes_scrubbed"], 203_423_744 + 524_288);
    assert_eq!(listed.body["importable"], json!([]));
    assert!(dir.path().join("pools.json").exists());

    let one = admin.get(&server, &format!("/api/v1/pools/{UUID}")).await;
    assert_eq!(one.status, 200, "{}", one.raw);
    assert_eq!(one.body, *pool);
    let upper = admin
        .get(&server, &format!("/api/v1/pools/{}", UUID.to_uppercase()))
        .await;
    assert_eq!(upper.body["uuid"], UUID);
    let unknown = admin
        .get(
            &server,
            "/api/v1/pools/00000000-0000-4000-8000-000000000000",
        )
        .await;
    assert_eq!(code(&unknown), "404 pool.unknown");
    for malformed in [
        "sdb",
        "00b3a85f-67a1-4ead-97e8-a2c61cc2654",
        "..%2F..%2Fetc",
    ] {
        let reply = admin
            .get(&server, &format!("/api/v1/pools/{malformed}"))
            .await;
        assert_eq!(code(&reply), "404 pool.malformed_uuid", "{malformed}");
    }
    assert_eq!(
        code(
            &anonymous
                .get(&server, &format!("/api/v1/pools/{UUID}"))
                .await
        ),
        "401 auth.required"
    );

    // After a restart with the pool unmounted: still registered, shown not mounted with the
    // input of its mount plan, and not importable.
    server.stop().await;
    *agent.observation.lock().unwrap() = observation("btrfs-unmounted", "raid1-scrubbed");
    // Later, so that the login's one-time code is a fresh one.
    let server = start(dir.path(), agent.clone(), NOW + 300).await;
    let admin = logged_in(&server, &secret).await;
    let listed = admin.get(&server, "/api/v1/pools?refresh=true").await;
    assert_eq!(listed.status, 200, "{}", listed.raw);
    let pool = &listed.body["pools"][0];
    assert_eq!(pool["state"], "not-mounted");
    assert_eq!(
        pool["mount_input"],
        json!({"uuid": UUID, "mountpoint": "/tmp/nos-capture.1PB2A1/mnt-fixpool"})
    );
    assert_eq!(pool["members"][0]["counters"], json!(null));
    assert_eq!(pool["last_scrub"]["state"], "finished");
    assert_eq!(listed.body["importable"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unregistered_unmounted_filesystem_is_importable() {
    let dir = tempfile::tempdir().unwrap();
    let agent = ObservingAgent::new(observation("btrfs-unmounted", "raid1-scrubbed"));
    let server = start(dir.path(), agent, NOW).await;
    let secret = server.setup_admin(&Client::new()).await.0;
    let admin = logged_in(&server, &secret).await;
    let listed = admin.get(&server, "/api/v1/pools").await;
    assert_eq!(listed.status, 200, "{}", listed.raw);
    assert_eq!(listed.body["pools"], json!([]));
    assert_eq!(
        listed.body["importable"],
        json!([{
            "uuid": UUID,
            "label": "fixpool",
            "devices": ["/dev/loop6", "/dev/loop7"],
            "total_devices": 2,
            "n_missing": 0,
        }])
    );
}

/// Issue 14: the alerts judge every observation of the pools, not only the periodic refresh: a
/// scrub that found (and corrected) errors is an open alert as soon as `GET
/// /api/v1/pools?refresh=true` has read it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_raises_the_alerts_of_what_it_read() {
    let dir = tempfile::tempdir().unwrap();
    let agent = ObservingAgent::new(observation("btrfs-mounted", "raid1-scrubbed"));
    let server = start(dir.path(), agent.clone(), NOW).await;
    let secret = server.setup_admin(&Client::new()).await.0;
    let admin = logged_in(&server, &secret).await;
    let scrub_alerts = |reply: &crate::harness::Reply| -> Vec<String> {
        reply.body["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|alert| alert["kind"] == "scrub-found-errors")
            .map(|alert| format!("{} {}", alert["state"], alert["subject"]["pool_uuid"]))
            .collect()
    };

    let clean = admin.get(&server, "/api/v1/pools?refresh=true").await;
    assert_eq!(clean.body["pools"][0]["health"], "ok", "{}", clean.raw);
    let alerts = admin.get(&server, "/api/v1/alerts").await;
    assert_eq!(alerts.status, 200, "{}", alerts.raw);
    assert_eq!(scrub_alerts(&alerts), Vec::<String>::new());

    *agent.observation.lock().unwrap() = observation("btrfs-mounted", "raid1-corrupted");
    let corrupted = admin.get(&server, "/api/v1/pools?refresh=true").await;
    assert_eq!(corrupted.status, 200, "{}", corrupted.raw);
    assert_eq!(
        corrupted.body["pools"][0]["last_scrub"]["corrected_errors"],
        16
    );
    let alerts = admin.get(&server, "/api/v1/alerts").await;
    assert_eq!(scrub_alerts(&alerts), [format!("\"raised\" \"{UUID}\"")]);
}

/// Job `job_id`'s record once it no longer runs (within 30 s).
pub(crate) async fn finished_job(server: &TestServer, job_id: &str) -> JobRecord {
    let pipeline = server.state.pipeline.get().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let job = pipeline.jobs.get(job_id).unwrap();
        if job.state != JobState::Running {
            return job;
        }
        assert!(std::time::Instant::now() < deadline, "{job:?}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The default allowlist with /tmp added to the mount roots (the captured pool is mounted
/// below /tmp), written into `dir`; its path.
pub(crate) fn tmp_mount_root_allowlist(dir: &Path) -> std::path::PathBuf {
    let allowlist = dir.join("allowlist.toml");
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../allowlist.toml"))
            .unwrap();
    let roots = "mount_roots = [\"/srv\", \"/mnt\"]";
    assert!(text.contains(roots), "the allowlist's mount roots moved");
    std::fs::write(
        &allowlist,
        text.replace(roots, "mount_roots = [\"/srv\", \"/mnt\", \"/tmp\"]"),
    )
    .unwrap();
    allowlist
}

/// Issue 14: the scrub schedule (`[scrub] auto`) starts a scrub job for a pool whose last
/// scrub is older than `[pools] scrub_overdue_days`, planned by btrfs-maintenance and applied
/// unattended as `nosd:scrub-schedule`, audited like any apply; not before it is due. The
/// captured pool is mounted below /tmp, so the test's allowlist adds /tmp to the mount roots.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scrub_schedule_scrubs_a_pool_when_its_scrub_is_due() {
    let dir = tempfile::tempdir().unwrap();
    let allowlist = tmp_mount_root_allowlist(dir.path());
    let agent = ObservingAgent::new(observation("btrfs-mounted", "raid1-scrubbed"));
    let server = start_with(
        dir.path(),
        agent.clone(),
        NOW,
        &allowlist,
        &format!("\"{BTRFS_MAINTENANCE}\""),
        "[scrub]\nauto = true\n",
    )
    .await;
    let secret = server.setup_admin(&Client::new()).await.0;
    let admin = logged_in(&server, &secret).await;
    grant(&server, &admin, "btrfs-maintenance").await;

    // A day after the last scrub: nothing is due.
    let checked = server.state.check_scrub_schedule().await.unwrap();
    assert!(checked.is_empty(), "{checked:?}");
    assert_eq!(*agent.ran.lock().unwrap(), Vec::<String>::new());

    // 35 days later the last scrub is more than 35 days old.
    server.clock.advance(35 * 86_400);
    let checked = server.state.check_scrub_schedule().await.unwrap();
    let [(due, Outcome::Started { job_id })] = &checked[..] else {
        panic!("one scrub started: {checked:?}")
    };
    assert_eq!(due.uuid, UUID);
    assert_eq!(due.action, ScrubAction::Start);
    assert_eq!(
        due.reason,
        "the last scrub ended 36 days ago, more than 35 days"
    );
    let job = finished_job(&server, job_id).await;
    assert_eq!(job.state, JobState::Succeeded, "{job:?}");
    assert_eq!(job.username, "nosd:scrub-schedule");
    assert_eq!(job.plugin, "btrfs-maintenance");
    assert_eq!(
        *agent.ran.lock().unwrap(),
        [format!("btrfs scrub start -B {}", due.mountpoint)]
    );
    let audited: Vec<String> = server
        .audit
        .events()
        .into_iter()
        .filter(|event| event.username.as_deref() == Some("nosd:scrub-schedule"))
        .map(|event| format!("{:?} {}", event.kind, event.verdict.unwrap_or_default()))
        .collect();
    assert!(
        audited.contains(&"PlanCreated allowed".to_owned()),
        "{audited:#?}"
    );
    assert!(
        audited.contains(&"PlanConfirmed confirmed".to_owned()),
        "{audited:#?}"
    );
}
