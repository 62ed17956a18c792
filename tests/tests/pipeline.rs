//! The pipeline's executor end to end: a checked plan runs through the real agent (its socket,
//! token, allowlist and exec-time checks) on real btrfs over loop devices, with nosd's
//! `AgentSocket` port and job table. A failing step triggers the declared rollbacks in reverse,
//! and the job record and the real filesystem state agree afterwards.
//!
//! Needs root and `/dev/loop-control`; otherwise each test prints a named SKIP line.

use std::path::Path;
use std::sync::Arc;

use nos_host::pipeline::apply::{ApplyContext, execute};
use nos_host::pipeline::jobs::{JobRecord, JobState, JobTable, StepRecord};
use nos_host::pipeline::port::{AgentPort, AgentSocket};
use nos_host::plan::check::{Scope, check};
use nos_host::plan::types::{Effect, ManagedRequest, Plan, Request, Step};
use nos_host::store::StateDir;
use nos_tests::{AgentSetup, LoopDevice, TestAgent};

use nos_tests::DEFAULT_ALLOWLIST;

fn preconditions(test: &str) -> bool {
    nos_tests::real_btrfs_or_skip(
        test,
        &["/usr/sbin/mkfs.btrfs", "/usr/bin/btrfs", "/usr/bin/unshare"],
        "btrfs-progs, util-linux",
    )
}

fn argv(tokens: &[&str]) -> Request {
    Request::Argv(tokens.iter().map(|token| (*token).to_owned()).collect())
}

fn step(id: &str, request: Request, effect: Effect, rollback: Option<Request>) -> Step {
    Step {
        id: id.into(),
        title: id.into(),
        request,
        effect,
        rollback,
        confirmation: (effect == Effect::Destructive).then(|| "CREATE".into()),
    }
}

/// Runs `plan` as job `job-1` and returns its record.
fn run(agent: &TestAgent, plan: Plan, state_dir: &Path) -> JobRecord {
    let allowlist_path = agent.dir.path().join("etc/allowlist.toml");
    let allowlist = nos_allowlist::files::load(&allowlist_path).expect("allowlist");
    let scope = Scope::new(
        [
            "managed.mount_dir",
            "mkfs.btrfs",
            "mount.btrfs",
            "umount",
            "btrfs.device.add",
            "btrfs.balance.start",
        ]
        .map(String::from),
    );
    let token_file = agent.dir.path().join("nosd.token");
    std::fs::write(&token_file, agent.token.clone().unwrap()).unwrap();
    let port = AgentSocket {
        socket: agent.socket.clone(),
        token_file,
        sysfs_btrfs: "/sys/fs/btrfs".into(),
        fixture_facts: None,
    };
    let facts = port.facts().expect("facts through the agent");
    let checked = check(plan, &allowlist, &scope, &facts);
    assert!(checked.all_allowed(), "{checked:#?}");
    let store = Arc::new(StateDir::open(state_dir).unwrap());
    let (jobs, _) = JobTable::open(store, 1).unwrap();
    jobs.insert(JobRecord {
        id: "job-1".into(),
        plan_id: "plan-1".into(),
        plan_sha256: String::new(),
        plugin: "test".into(),
        pool: "tank".into(),
        username: "admin".into(),
        created_at: 1,
        finished_at: None,
        state: JobState::Running,
        steps: checked.steps().iter().map(StepRecord::pending).collect(),
        events: Vec::new(),
    })
    .unwrap();
    let _facts = port.facts().expect("facts through the agent");
    execute(
        &checked,
        &ApplyContext {
            port: &port,
            jobs: &jobs,
            job_id: "job-1",
            now: &|| 2,
            audit: &|_, _, _| {},
        },
    );
    jobs.get("job-1").unwrap()
}

fn states(job: &JobRecord) -> Vec<String> {
    job.steps
        .iter()
        .map(|step| format!("{} {:?}", step.id, step.state))
        .collect()
}

fn start_agent() -> TestAgent {
    let allowlist = DEFAULT_ALLOWLIST
        .replace(
            r#"mount_roots = ["/srv", "/mnt"]"#,
            r#"mount_roots = ["@ROOT@/mnt"]"#,
        )
        .replace(r#"key_dir = "/etc/nos/keys""#, r#"key_dir = "@ROOT@/keys""#);
    let mut agent = TestAgent::start(AgentSetup {
        private_mounts: true,
        ..AgentSetup::new(&allowlist)
    });
    agent.register();
    agent
}

fn mounted_in_agent(agent: &TestAgent, target: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{}/mountinfo", agent.pid()))
        .unwrap()
        .lines()
        .any(|line| line.split(' ').nth(4) == Some(target))
}

#[test]
fn raid1_then_add_and_balance_through_the_executor() {
    if !preconditions("raid1_then_add_and_balance_through_the_executor") {
        return;
    }
    let images = nos_tests::scratch("pipeline-images");
    let loops: Vec<LoopDevice> = ["p1", "p2", "p3"]
        .iter()
        .map(|name| LoopDevice::new(images.path(), name, "1G").expect("loop device"))
        .collect();
    let [a, b, c] = [&loops[0].device, &loops[1].device, &loops[2].device].map(String::as_str);
    let agent = start_agent();
    let tank = agent.dir.path().join("mnt/tank");
    let tank = tank.to_str().unwrap();
    let state = nos_tests::scratch("pipeline-state");
    let plan = Plan {
        steps: vec![
            step(
                "mount-dir",
                Request::Ensure(ManagedRequest::MountDir(tank.into())),
                Effect::State,
                Some(Request::Remove(ManagedRequest::MountDir(tank.into()))),
            ),
            step(
                "mkfs",
                argv(&[
                    "mkfs.btrfs",
                    "-f",
                    "-L",
                    "tank",
                    "-d",
                    "raid1",
                    "-m",
                    "raid1",
                    "--",
                    a,
                    b,
                ]),
                Effect::Destructive,
                None,
            ),
            step(
                "mount",
                argv(&["mount", "-t", "btrfs", "-o", "noatime", "--", a, tank]),
                Effect::State,
                Some(argv(&["umount", "--", tank])),
            ),
            step(
                "add",
                argv(&["btrfs", "device", "add", "-f", "--", c, tank]),
                Effect::Destructive,
                None,
            ),
            step(
                "balance",
                argv(&[
                    "btrfs",
                    "balance",
                    "start",
                    "-dconvert=raid1",
                    "-mconvert=raid1",
                    "--",
                    tank,
                ]),
                Effect::State,
                None,
            ),
        ],
        warnings: Vec::new(),
    };
    let job = run(&agent, plan, state.path());
    assert_eq!(
        job.state,
        JobState::Succeeded,
        "{:#?}\n{}",
        job,
        agent.explain()
    );
    assert!(mounted_in_agent(&agent, tank));
    let show = std::process::Command::new("btrfs")
        .args(["filesystem", "show", "--", a])
        .output()
        .unwrap();
    let show = String::from_utf8_lossy(&show.stdout);
    assert!(show.contains("Total devices 3"), "{show}");
    assert!(
        job.events.iter().any(|event| event.kind == "progress"),
        "the balance was polled: {:#?}",
        job.events
    );
}

#[test]
fn a_failing_step_rolls_back_for_real() {
    if !preconditions("a_failing_step_rolls_back_for_real") {
        return;
    }
    let images = nos_tests::scratch("pipeline-images");
    let loops: Vec<LoopDevice> = ["r1", "r2"]
        .iter()
        .map(|name| LoopDevice::new(images.path(), name, "1G").expect("loop device"))
        .collect();
    let [a, b] = [&loops[0].device, &loops[1].device].map(String::as_str);
    let agent = start_agent();
    let tank_path = agent.dir.path().join("mnt/tank");
    let tank = tank_path.to_str().unwrap();
    let state = nos_tests::scratch("pipeline-state");
    // The last step adds a device that is already a member: btrfs refuses, so the mount and
    // the mount directory are undone, newest first; mkfs declared no rollback.
    let plan = Plan {
        steps: vec![
            step(
                "mount-dir",
                Request::Ensure(ManagedRequest::MountDir(tank.into())),
                Effect::State,
                Some(Request::Remove(ManagedRequest::MountDir(tank.into()))),
            ),
            step(
                "mkfs",
                argv(&[
                    "mkfs.btrfs",
                    "-f",
                    "-L",
                    "tank",
                    "-d",
                    "raid1",
                    "-m",
                    "raid1",
                    "--",
                    a,
                    b,
                ]),
                Effect::Destructive,
                None,
            ),
            step(
                "mount",
                argv(&["mount", "-t", "btrfs", "-o", "noatime", "--", a, tank]),
                Effect::State,
                Some(argv(&["umount", "--", tank])),
            ),
            step(
                "add-again",
                argv(&["btrfs", "device", "add", "--", b, tank]),
                Effect::Destructive,
                None,
            ),
        ],
        warnings: Vec::new(),
    };
    let job = run(&agent, plan, state.path());
    assert_eq!(
        states(&job),
        [
            "mount-dir RolledBack",
            "mkfs NotUndone",
            "mount RolledBack",
            "add-again Failed"
        ],
        "{job:#?}"
    );
    assert_eq!(
        job.state,
        JobState::Failed,
        "mkfs stays done, so not everything was undone"
    );
    let rollbacks: Vec<&str> = job
        .events
        .iter()
        .filter(|event| event.kind == "rollback_finished")
        .filter_map(|event| event.step.as_deref())
        .collect();
    assert_eq!(rollbacks, ["mount", "mount-dir"]);
    assert!(!mounted_in_agent(&agent, tank));
    assert!(!tank_path.exists());
}
