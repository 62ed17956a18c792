//! End to end on real btrfs: shares and snapshots through the real agent and the default
//! allowlist's subvolume rules (issue 18), on a loop device in the agent's private mount
//! namespace. Files are written and read inside that namespace (`nsenter`), where the pool is
//! mounted.
//!
//! Needs root and `/dev/loop-control`; otherwise the test prints a named SKIP line. The loop
//! device and the namespace are released by drop guards even when a step fails.

use nos_protocol::{ManagedAction, ManagedRequest, RejectStage, RequestBody, ResponseBody};
use nos_tests::{AgentSetup, LoopDevice, TestAgent, e2e_allowlist, ran, real_btrfs_or_skip};

/// A shell command inside the agent's mount namespace: (success, stdout, stderr).
fn in_agent_ns(agent: &TestAgent, script: &str) -> (bool, String, String) {
    let output = agent.in_agent_ns(&["sh", "-c", script]);
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn ns_ok(agent: &TestAgent, script: &str) -> String {
    let (ok, stdout, stderr) = in_agent_ns(agent, script);
    assert!(ok, "{script}: {stderr}");
    stdout
}

#[test]
fn e2e_shares_snapshots_restore() {
    if !real_btrfs_or_skip(
        "e2e_shares_snapshots_restore",
        &["/usr/sbin/mkfs.btrfs", "/usr/bin/btrfs", "/usr/bin/nsenter"],
        "btrfs-progs, util-linux",
    ) {
        return;
    }
    let images = tempfile::tempdir().unwrap();
    // Declared before the agent: dropped after it, once its namespace (and mounts) are gone.
    let disk = LoopDevice::new(images.path(), "a", "1G").expect("loop device");
    let allowlist = e2e_allowlist();
    let mut agent = TestAgent::start(AgentSetup {
        private_mounts: true,
        ..AgentSetup::new(&allowlist)
    });
    agent.register();
    let tank_path = agent.dir.path().join("mnt/tank");
    let tank = tank_path.to_str().unwrap().to_owned();
    match agent.request(RequestBody::Managed {
        action: ManagedAction::Ensure,
        request: ManagedRequest::MountDir { path: tank.clone() },
    }) {
        ResponseBody::Managed { changed: true, .. } => {}
        other => panic!("{other:?}"),
    }
    ran(
        &agent,
        &["mkfs.btrfs", "-f", "-L", "tank", "--", &disk.device],
    );
    ran(
        &agent,
        &[
            "mount",
            "-t",
            "btrfs",
            "-o",
            "noatime",
            "--",
            &disk.device,
            &tank,
        ],
    );

    // Two shares with files, written by the share's user (root here) inside the namespace.
    let media = format!("{tank}/media");
    let docs = format!("{tank}/docs");
    ran(&agent, &["btrfs", "subvolume", "create", "--", &media]);
    ran(&agent, &["btrfs", "subvolume", "create", "--", &docs]);
    ns_ok(
        &agent,
        &format!(
            "printf one > {media}/a.txt && mkdir {media}/dir && printf deep > {media}/dir/c.txt && printf doc > {docs}/d.txt"
        ),
    );

    // Snapshot containers, then a read-only snapshot of media.
    let snapshots = format!("{tank}/.snapshots");
    let media_snapshots = format!("{snapshots}/media");
    let snapshot = format!("{media_snapshots}/20261202T190000Z");
    ran(&agent, &["btrfs", "subvolume", "create", "--", &snapshots]);
    ran(
        &agent,
        &["btrfs", "subvolume", "create", "--", &media_snapshots],
    );
    ran(
        &agent,
        &[
            "btrfs",
            "subvolume",
            "snapshot",
            "-r",
            "--",
            &media,
            &snapshot,
        ],
    );
    let ro = ran(
        &agent,
        &["btrfs", "property", "get", "-ts", "--", &snapshot, "ro"],
    );
    assert_eq!(ro.stdout.text.trim(), "ro=true");

    // A write into the snapshot fails: it is read-only.
    let (wrote, _, stderr) = in_agent_ns(&agent, &format!("printf x > {snapshot}/a.txt"));
    assert!(!wrote);
    assert!(stderr.contains("Read-only file system"), "{stderr}");

    // Change the live share, then restore the snapshot into a new share beside it.
    ns_ok(
        &agent,
        &format!(
            "printf two > {media}/a.txt && printf new > {media}/b.txt && rm {media}/dir/c.txt"
        ),
    );
    let restored = format!("{tank}/media-restored");
    ran(
        &agent,
        &["btrfs", "subvolume", "snapshot", "--", &snapshot, &restored],
    );
    let listing = |dir: &str| {
        ns_ok(
            &agent,
            &format!(
                "cd {dir} && find . -type f | sort | while read f; do printf '%s=' \"$f\"; cat \"$f\"; echo; done"
            ),
        )
    };
    assert_eq!(listing(&restored), "./a.txt=one\n./dir/c.txt=deep\n");
    assert_eq!(listing(&snapshot), listing(&restored));
    // The live share is untouched by the restore, the other share too.
    assert_eq!(listing(&media), "./a.txt=two\n./b.txt=new\n");
    assert_eq!(listing(&docs), "./d.txt=doc\n");
    // The restored share is writable; the snapshot it came from stays read-only.
    ns_ok(&agent, &format!("printf three > {restored}/a.txt"));
    assert_eq!(listing(&snapshot), "./a.txt=one\n./dir/c.txt=deep\n");

    // The subvolume list names every share and snapshot.
    let list = ran(&agent, &["btrfs", "subvolume", "list", "--", &tank]);
    for path in [
        "path media\n",
        "path docs\n",
        "path .snapshots/media/20261202T190000Z\n",
        "path media-restored\n",
    ] {
        assert!(
            list.stdout.text.contains(path),
            "{path}: {}",
            list.stdout.text
        );
    }

    // Refused before anything runs: a snapshot that is not at .snapshots/<share>/<timestamp>,
    // making a snapshot writable, and a snapshot rule naming a share.
    for argv in [
        vec![
            "btrfs",
            "subvolume",
            "snapshot",
            "-r",
            "--",
            media.as_str(),
            restored.as_str(),
        ],
        vec![
            "btrfs",
            "property",
            "set",
            "-ts",
            "--",
            snapshot.as_str(),
            "ro",
            "false",
        ],
    ] {
        let argv: Vec<String> = argv.into_iter().map(str::to_owned).collect();
        match agent.request(RequestBody::Run { argv: argv.clone() }) {
            ResponseBody::Rejected { rejection } => {
                assert_eq!(rejection.stage, RejectStage::Allowlist, "{rejection:?}")
            }
            other => panic!("{argv:?}: {other:#?}"),
        }
    }
    // Deleting a share with data is the destructive rule (nosd admits it only in a confirmed
    // plan, the share's name the word); deleting a snapshot is not.
    let allowlist_loaded = nos_allowlist::Allowlist::load(&[nos_allowlist::Source {
        name: "allowlist.toml".into(),
        // The agent's copy has its scratch root in place of the placeholder.
        text: allowlist.replace("@ROOT@", agent.dir.path().to_str().unwrap()),
    }])
    .unwrap();
    let effect_of = |argv: &[&str]| {
        let argv: Vec<String> = argv.iter().map(|token| (*token).to_owned()).collect();
        match allowlist_loaded.check(&argv) {
            nos_allowlist::Verdict::Allowed(matched) => matched.command().effect,
            other => panic!("{argv:?}: {other:?}"),
        }
    };
    assert_eq!(
        effect_of(&["btrfs", "subvolume", "delete", "--", &media]),
        nos_allowlist::Effect::Destructive
    );
    assert_eq!(
        effect_of(&["btrfs", "subvolume", "delete", "--", &snapshot]),
        nos_allowlist::Effect::State
    );

    // Deleting the snapshot leaves the share and the restored copy alone.
    ran(&agent, &["btrfs", "subvolume", "delete", "--", &snapshot]);
    let (exists, _, _) = in_agent_ns(&agent, &format!("test -e {snapshot}"));
    assert!(!exists);
    assert_eq!(listing(&media), "./a.txt=two\n./b.txt=new\n");
    assert_eq!(listing(&restored), "./a.txt=three\n./dir/c.txt=deep\n");
}
