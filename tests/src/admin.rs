//! An administrator of the demo over HTTP: first-run setup with the setup token, TOTP
//! enrolment and login (codes computed here with totp-rs, not by nosd's code), re-authentication,
//! plans and their jobs, and reading the real state in the agent's mount namespace. Shared by
//! the end-to-end tests that drive `scripts/demo` ([`crate::demo::Demo`]).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::demo::Demo;
use crate::http::{Api, Reply};

pub const PASSWORD: &str = "correct horse battery staple 42";
pub const TOTP_STEP: u64 = 30;
/// A job on loop devices ends in seconds; this bounds a hung one.
pub const JOB_TIMEOUT: Duration = Duration::from_secs(300);

/// The start of an end-to-end test on the demo: its preconditions (`None` after a named SKIP),
/// then, holding `serial` (a test file's lock: a plan is stale when any block device changed, and
/// another test's loop devices are block devices too), the demo with `n_disks` loop devices and
/// an admin after first-run setup and a TOTP login. Keep the guard alive for the whole test.
pub fn start_demo(
    test: &str,
    serial: &'static std::sync::Mutex<()>,
    n_disks: usize,
) -> Option<(std::sync::MutexGuard<'static, ()>, Demo, Admin)> {
    if !preconditions(test) {
        return None;
    }
    let guard = serial
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let demo = Demo::start(n_disks);
    let admin = setup_and_login(&demo);
    Some((guard, demo, admin))
}

/// The filesystem type `blkid -p` reads on `device` (in this namespace), `None` when blank.
pub fn fstype_of(device: &str) -> Option<String> {
    let output = std::process::Command::new("blkid")
        .args(["-p", "-o", "value", "-s", "TYPE", "--", device])
        .output()
        .expect("blkid");
    let text = String::from_utf8_lossy(&output.stdout).trim().to_string();
    (!text.is_empty()).then_some(text)
}

/// Root, loop devices and the tools the demo runs; otherwise a named SKIP.
pub fn preconditions(test: &str) -> bool {
    crate::real_btrfs_or_skip(
        test,
        &[
            "/usr/sbin/mkfs.btrfs",
            "/usr/bin/btrfs",
            "/usr/bin/unshare",
            "/usr/bin/nsenter",
            "/usr/sbin/losetup",
            "/bin/bash",
        ],
        "btrfs-progs, util-linux",
    )
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// The code of TOTP step `step`, computed here with totp-rs (SHA-1, 6 digits, 30 s), not by
/// nosd's own code.
pub fn totp(secret: &[u8], step: u64) -> String {
    totp_rs::TOTP::new_unchecked(totp_rs::Algorithm::SHA1, 6, 1, TOTP_STEP, secret.to_vec())
        .generate(step * TOTP_STEP)
}

/// Blocks until the wall clock is in TOTP step `step` (a code of `step + 1` is then within
/// the accepted skew). Waiting for time itself: nothing to poll.
pub fn wait_for_step(step: u64) {
    let start = step * TOTP_STEP;
    let now = unix_now();
    if now < start {
        std::thread::sleep(Duration::from_secs(start - now));
    }
}

/// An admin after first-run setup and a TOTP login, with the last TOTP step used.
pub struct Admin {
    pub api: Api,
    pub secret: Vec<u8>,
    pub last_step: u64,
}

/// First-run setup with the demo's one-time token, TOTP enrolment, then login with TOTP.
pub fn setup_and_login(demo: &Demo) -> Admin {
    let mut api = Api::new(&demo.url());
    let status = api.get("/api/v1/setup");
    assert_eq!(status.body["setup_required"], true, "{}", status.raw);
    let token = demo.setup_token();
    let begin = api.post(
        "/api/v1/setup/totp",
        json!({"token": token, "username": "admin"}),
    );
    assert_eq!(begin.status, 200, "{}", begin.raw);
    let secret = nos_host::auth::totp::decode_secret(begin.body["secret"].as_str().unwrap())
        .expect("base32 secret");
    assert!(
        begin.body["otpauth_uri"]
            .as_str()
            .is_some_and(|uri| uri.starts_with("otpauth://totp/")),
        "{}",
        begin.raw
    );
    let setup_step = unix_now() / TOTP_STEP;
    let done = api.post(
        "/api/v1/setup/admin",
        json!({"token": token, "username": "admin", "password": PASSWORD, "code": totp(&secret, setup_step)}),
    );
    assert_eq!(done.status, 201, "{}", done.raw);
    assert_eq!(
        done.body["recovery_codes"].as_array().map(Vec::len),
        Some(10)
    );
    // The token is one-time.
    let again = api.post(
        "/api/v1/setup/totp",
        json!({"token": token, "username": "admin"}),
    );
    assert_ne!(again.status, 200, "{}", again.raw);
    // The setup's step is spent; the next one is within the accepted skew.
    let login_step = setup_step + 1;
    let replayed = api.post(
        "/api/v1/auth/login",
        json!({"username": "admin", "password": PASSWORD, "code": totp(&secret, setup_step)}),
    );
    assert_eq!(replayed.status, 401, "a spent code: {}", replayed.raw);
    let login = api.post(
        "/api/v1/auth/login",
        json!({"username": "admin", "password": PASSWORD, "code": totp(&secret, login_step)}),
    );
    assert_eq!(login.status, 200, "{}", login.raw);
    let me = api.get("/api/v1/me");
    assert_eq!(me.status, 200, "{}", me.raw);
    assert_eq!(me.body["username"], "admin", "{}", me.raw);
    Admin {
        api,
        secret,
        last_step: login_step,
    }
}

impl Admin {
    /// Re-authenticates with the password and a fresh TOTP code.
    pub fn reauth(&mut self) {
        let step = self.last_step + 1;
        wait_for_step(step - 1);
        let reply = self.api.post(
            "/api/v1/auth/reauth",
            json!({"password": PASSWORD, "code": totp(&self.secret, step)}),
        );
        assert_eq!(reply.status, 204, "{}", reply.raw);
        self.last_step = step;
    }

    /// Plans with `plugin`; the plan must be applicable, every step allowed by a named rule.
    pub fn plan(&mut self, plugin: &str, input: Value) -> Value {
        let reply = self
            .api
            .post("/api/v1/plans", json!({"plugin": plugin, "input": input}));
        assert_eq!(reply.status, 200, "{}", reply.raw);
        let plan = reply.body["plan"].clone();
        assert_eq!(plan["applicable"], true, "{plan:#}");
        for step in plan["steps"].as_array().expect("steps") {
            assert_eq!(step["verdict"]["allowed"], true, "{step:#}");
            assert!(step["verdict"]["rule_id"].is_string(), "{step:#}");
        }
        plan
    }

    /// The facts, observed now.
    pub fn facts(&mut self) -> Value {
        let facts = self.api.get("/api/v1/facts?refresh=true");
        assert_eq!(facts.status, 200, "{}", facts.raw);
        facts.body["facts"].clone()
    }

    pub fn apply(&mut self, plan: &Value, confirm: &str) -> Reply {
        let id = plan["id"].as_str().expect("plan id");
        self.api.post(
            &format!("/api/v1/plans/{id}/apply"),
            json!({"confirm": confirm}),
        )
    }

    /// Applies with the plan's own confirmation words; returns the job id.
    pub fn apply_confirmed(&mut self, plan: &Value) -> String {
        let confirm = plan["confirmation"].as_str().expect("confirmation");
        let reply = self.apply(plan, confirm);
        assert_eq!(reply.status, 202, "{}", reply.raw);
        reply.body["job"].as_str().expect("job id").to_string()
    }

    pub fn job(&mut self, id: &str) -> Value {
        let reply = self.api.get(&format!("/api/v1/jobs/{id}"));
        assert_eq!(reply.status, 200, "{}", reply.raw);
        reply.body["job"].clone()
    }

    /// Plans with `plugin`, applies with the plan's confirmation and waits: the job must
    /// succeed. The plan.
    pub fn run(&mut self, demo: &Demo, plugin: &str, input: Value) -> Value {
        let plan = self.plan(plugin, input);
        let job = self.apply_confirmed(&plan);
        let job = self.wait_job(&job);
        assert_succeeded(&job, &plan, demo);
        plan
    }

    /// `GET /pools?refresh=true`: the registry reconciled with facts observed now.
    pub fn pools(&mut self) -> Value {
        let reply = self.api.get("/api/v1/pools?refresh=true");
        assert_eq!(reply.status, 200, "{}", reply.raw);
        reply.body
    }

    /// Polls the job until it is no longer running.
    pub fn wait_job(&mut self, id: &str) -> Value {
        let deadline = Instant::now() + JOB_TIMEOUT;
        loop {
            let job = self.job(id);
            if job["state"] != "running" {
                return job;
            }
            assert!(Instant::now() < deadline, "job still running: {job:#}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

pub fn assert_succeeded(job: &Value, plan: &Value, demo: &Demo) {
    assert_eq!(job["state"], "succeeded", "{job:#}\n{}", demo.explain());
    let plan_steps: Vec<&Value> = plan["steps"].as_array().unwrap().iter().collect();
    let job_steps = job["steps"].as_array().unwrap();
    assert_eq!(job_steps.len(), plan_steps.len(), "{job:#}");
    for (step, planned) in job_steps.iter().zip(plan_steps) {
        assert_eq!(step["id"], planned["id"], "{job:#}");
        assert_eq!(step["state"], "done", "{job:#}");
        assert_eq!(step["rule_id"], planned["verdict"]["rule_id"], "{job:#}");
    }
}

/// Runs `argv` in the agent's mount namespace; its stdout, or a panic with stderr.
pub fn in_ns(demo: &Demo, argv: &[&str]) -> String {
    let output = demo.in_agent_ns(argv);
    assert!(
        output.status.success(),
        "{argv:?}: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        demo.explain()
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The registered pool labelled `label` in a `GET /pools` body.
pub fn pool_labelled(pools: &Value, label: &str) -> Value {
    pools["pools"]
        .as_array()
        .expect("pools")
        .iter()
        .find(|pool| pool["label"] == label)
        .cloned()
        .unwrap_or_else(|| panic!("no registered pool {label}: {pools:#}"))
}

/// The SHA-256 of `path` in the agent's namespace.
pub fn sha256_in_ns(demo: &Demo, path: &str) -> String {
    in_ns(demo, &["sha256sum", path])
        .split_whitespace()
        .next()
        .expect("digest")
        .to_owned()
}

/// Writes `mib` MiB of random data to `path` in the agent's namespace and syncs; its digest.
pub fn write_file(demo: &Demo, path: &str, mib: u32) -> String {
    in_ns(
        demo,
        &[
            "dd",
            "if=/dev/urandom",
            &format!("of={path}"),
            "bs=1M",
            &format!("count={mib}"),
            "status=none",
        ],
    );
    in_ns(demo, &["sync"]);
    sha256_in_ns(demo, path)
}
