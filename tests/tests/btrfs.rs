//! End to end on real btrfs: the real agent, in its own private mount namespace, driven through
//! its socket with the repository's default `allowlist.toml` (only the mount roots and key
//! directory are pointed at the test's scratch directory), on loop devices over sparse files.
//! Every step is checked against the filesystem's real state afterwards.
//!
//! Needs root and `/dev/loop-control`; otherwise each test prints a named SKIP line. Loop devices
//! and the namespace (and so the mounts) are released by drop guards even when a step fails.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use nos_protocol::{
    JobState, ManagedAction, ManagedRequest, Outcome, RejectStage, RequestBody, ResponseBody,
    StepResult,
};
use nos_tests::{
    AgentSetup, LoopDevice, TestAgent, device_mapper_available, e2e_allowlist, ran, skip,
};

fn preconditions(test: &str) -> bool {
    nos_tests::real_btrfs_or_skip(
        test,
        &[
            "/usr/sbin/mkfs.btrfs",
            "/usr/bin/btrfs",
            "/usr/sbin/cryptsetup",
            "/usr/bin/unshare",
            "/usr/bin/nsenter",
        ],
        "btrfs-progs, cryptsetup-bin, util-linux",
    )
}

fn start_agent() -> TestAgent {
    let allowlist = e2e_allowlist();
    let mut agent = TestAgent::start(AgentSetup {
        private_mounts: true,
        ..AgentSetup::new(&allowlist)
    });
    agent.register();
    agent
}

fn job(agent: &TestAgent, argv: &[&str]) -> StepResult {
    let argv_owned: Vec<String> = argv.iter().map(|token| (*token).to_owned()).collect();
    let job = match agent.request(RequestBody::Run { argv: argv_owned }) {
        ResponseBody::JobStarted { job, .. } => job,
        other => panic!("{argv:?}: {other:#?}\n{}", agent.explain()),
    };
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        match agent.request(RequestBody::JobStatus { job }) {
            ResponseBody::Job {
                state: JobState::Finished { result },
                ..
            } => {
                assert!(
                    result.succeeded(),
                    "{argv:?}: {result:#?}\n{}",
                    agent.explain()
                );
                return result;
            }
            ResponseBody::Job {
                state: JobState::Running { .. },
                ..
            } if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100));
            }
            other => panic!("{argv:?}: {other:#?}\n{}", agent.explain()),
        }
    }
}

/// Host-side truth: a command run outside the agent.
fn host(argv: &[&str]) -> String {
    let output = Command::new(argv[0]).args(&argv[1..]).output().unwrap();
    assert!(
        output.status.success(),
        "{argv:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The agent namespace's mount entry for `target`, if mounted: (fstype, mount options).
fn agent_mount(agent: &TestAgent, target: &str) -> Option<(String, String)> {
    let mountinfo = std::fs::read_to_string(format!("/proc/{}/mountinfo", agent.pid())).unwrap();
    let (mounts, _) = nos_agent_facts_parse(&mountinfo);
    mounts
        .into_iter()
        .find(|(point, _, _)| point == target)
        .map(|(_, fstype, options)| (fstype, options))
}

/// Minimal mountinfo reading for assertions: (mount point, fstype, per-mount options).
fn nos_agent_facts_parse(text: &str) -> (Vec<(String, String, String)>, ()) {
    let mounts = text
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let separator = fields.iter().position(|field| *field == "-")?;
            Some((
                fields.get(4)?.to_string(),
                fields.get(separator + 1)?.to_string(),
                fields.get(5)?.to_string(),
            ))
        })
        .collect();
    (mounts, ())
}

/// `Total devices N` and the device paths from `btrfs filesystem show` of one member device.
fn fs_devices(member: &str) -> (usize, String) {
    let show = host(&["btrfs", "filesystem", "show", "--", member]);
    let total = show
        .lines()
        .find_map(|line| {
            line.trim()
                .strip_prefix("Total devices ")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0);
    (total, show)
}

/// Removes the empty /dev/disk made for the by-id test (the tmpfs on it lives and dies with the
/// agent's namespace).
struct DevDiskGuard;

impl Drop for DevDiskGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir("/dev/disk");
    }
}

#[test]
fn e2e_btrfs_pool_lifecycle() {
    if !preconditions("e2e_btrfs_pool_lifecycle") {
        return;
    }
    let images = tempfile::tempdir().unwrap();
    // Declared before the agent: dropped after it, once its namespace (and mounts) are gone.
    let loops: Vec<LoopDevice> = ["a", "b", "c", "d"]
        .iter()
        .map(|name| LoopDevice::new(images.path(), name, "1G").expect("loop device"))
        .collect();
    let [a, b, c, d] = [
        &loops[0].device,
        &loops[1].device,
        &loops[2].device,
        &loops[3].device,
    ]
    .map(String::as_str);
    let agent = start_agent();
    let tank_path = agent.dir.path().join("mnt/tank");
    let tank = tank_path.to_str().unwrap();

    // A managed mount directory, then mkfs raid1 on two devices.
    match agent.request(RequestBody::Managed {
        action: ManagedAction::Ensure,
        request: ManagedRequest::MountDir { path: tank.into() },
    }) {
        ResponseBody::Managed { changed: true, .. } => assert!(tank_path.is_dir()),
        other => panic!("{other:?}"),
    }
    let mkfs = ran(
        &agent,
        &[
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
        ],
    );
    assert_eq!(mkfs.argv[0], "/usr/sbin/mkfs.btrfs");
    assert_eq!(
        host(&["blkid", "-s", "TYPE", "-o", "value", a]).trim(),
        "btrfs"
    );
    assert_eq!(fs_devices(a).0, 2);
    let uuid = host(&["blkid", "-s", "UUID", "-o", "value", a])
        .trim()
        .to_owned();

    // Mount: private to the agent's namespace, always nosuid,nodev.
    let mount = ran(
        &agent,
        &["mount", "-t", "btrfs", "-o", "noatime", "--", a, tank],
    );
    assert!(
        mount
            .argv
            .iter()
            .any(|arg| arg.contains("nosuid") && arg.contains("nodev")),
        "{:?}",
        mount.argv
    );
    let (fstype, options) = agent_mount(&agent, tank).expect("mounted in the agent's namespace");
    assert_eq!(fstype, "btrfs");
    assert!(
        options.contains("nosuid") && options.contains("nodev"),
        "{options}"
    );
    assert!(
        !std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .contains(tank),
        "mount leaked to the host"
    );

    // The pool as the agent sees it.
    let usage = ran(&agent, &["btrfs", "filesystem", "usage", "-b", "--", tank]);
    assert!(
        usage.stdout.text.contains("Data,RAID1"),
        "{}",
        usage.stdout.text
    );
    // Facts through the default allowlist's read-only rules, in one round trip, built into
    // facts by the host's one path.
    let ResponseBody::Facts { facts: raw } = agent.request(RequestBody::Facts) else {
        panic!("{}", agent.explain());
    };
    let shown = raw.btrfs_show.text().unwrap();
    assert!(
        shown.contains("Label: 'tank'") && shown.contains(&uuid),
        "{shown}"
    );
    assert!(
        raw.probes.iter().any(|probe| probe.device == *a),
        "{:?}",
        raw.probes
    );
    let facts = nos_host::facts::build(&raw, &[], &[]).unwrap();
    let fs = facts
        .filesystems
        .iter()
        .find(|fs| fs.uuid == uuid)
        .unwrap_or_else(|| panic!("{facts:#?}"));
    assert_eq!(fs.mountpoint, tank);
    // The same round trip read the pool's health, and the host's parsers take it.
    let readings = raw
        .pools
        .iter()
        .find(|pool| pool.mount_path == tank)
        .unwrap_or_else(|| panic!("no readings of {tank}: {:?}", raw.pools));
    let stats = nos_host::health::device_stats::parse(readings.device_stats.text().unwrap())
        .unwrap_or_else(|err| panic!("{err}: {:?}", readings.device_stats));
    assert_eq!(stats.len(), 2, "{stats:?}");
    let scrub = nos_host::health::scrub_status::parse(readings.scrub_status.text().unwrap())
        .unwrap_or_else(|err| panic!("{err}: {:?}", readings.scrub_status));
    assert_eq!(scrub.fsid, uuid);
    let member = facts.block_devices.iter().find(|d| d.path == a).unwrap();
    assert_eq!(
        member.state,
        nos_host::facts::DeviceState::InUse,
        "{member:?}"
    );

    // Managed fstab entry for the new filesystem.
    let fstab_request = ManagedRequest::FstabEntry {
        uuid: uuid.clone(),
        target: tank.into(),
        options: "noatime".into(),
    };
    assert!(matches!(
        agent.request(RequestBody::Managed {
            action: ManagedAction::Ensure,
            request: fstab_request
        }),
        ResponseBody::Managed { changed: true, .. }
    ));
    let fstab = std::fs::read_to_string(agent.dir.path().join("etc/fstab")).unwrap();
    assert!(
        fstab.contains(&format!(
            "UUID={uuid} {tank} btrfs noatime,nosuid,nodev,nofail,x-systemd.device-timeout=30s 0 0"
        )),
        "{fstab}"
    );

    // Add a third device.
    ran(&agent, &["btrfs", "device", "add", "-f", "--", c, tank]);
    assert_eq!(fs_devices(a).0, 3);

    // Balance with convert filters, as a job; balance status maps exit 1 to "running".
    let status = agent.request(RequestBody::Run {
        argv: ["btrfs", "balance", "status", "--", tank]
            .map(String::from)
            .to_vec(),
    });
    assert!(
        matches!(status, ResponseBody::Ran { ref result } if result.succeeded()),
        "{status:?}"
    );
    job(
        &agent,
        &[
            "btrfs",
            "balance",
            "start",
            "-dconvert=single",
            "-mconvert=raid1",
            "--",
            tank,
        ],
    );
    let usage = ran(&agent, &["btrfs", "filesystem", "usage", "-b", "--", tank]);
    assert!(
        usage.stdout.text.contains("Data,single") && usage.stdout.text.contains("Metadata,RAID1"),
        "{}",
        usage.stdout.text
    );

    // Replace b by d: the default rule renders -B (a background replace would die with the
    // command's process group) and runs it as a job; then the read-only status rule.
    job(
        &agent,
        &["btrfs", "replace", "start", "-B", "-f", "--", b, d, tank],
    );
    let status = ran(&agent, &["btrfs", "replace", "status", "-1", "--", tank]);
    assert!(
        status.stdout.text.contains("finished"),
        "{}",
        status.stdout.text
    );
    let (total, show) = fs_devices(a);
    assert_eq!(total, 3, "{show}");
    assert!(
        show.contains(d) && !show.contains(&format!("{b}\n")),
        "{show}"
    );

    // Remove c (a job in the default allowlist).
    job(&agent, &["btrfs", "device", "remove", "--", c, tank]);
    let (total, show) = fs_devices(a);
    assert_eq!(total, 2, "{show}");

    // Exec-time refusals on the real system: a symlinked mount target, a regular file as device.
    let elsewhere = agent.dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, agent.dir.path().join("mnt/evil")).unwrap();
    let evil = agent.dir.path().join("mnt/evil").display().to_string();
    match agent.request(RequestBody::Run {
        argv: ["mount", "-t", "btrfs", "-o", "noatime", "--", d, &evil]
            .map(String::from)
            .to_vec(),
    }) {
        ResponseBody::Rejected { rejection } => {
            assert_eq!(rejection.stage, RejectStage::ExecTime, "{rejection:?}");
            assert_eq!(rejection.token_idx, Some(7));
        }
        other => panic!("symlinked mount target not refused: {other:?}"),
    }
    assert!(
        agent_mount(&agent, &evil).is_none()
            && agent_mount(&agent, elsewhere.to_str().unwrap()).is_none()
    );

    // A /dev/disk/by-id link is resolved to the kernel name before anything runs. This machine
    // has no udev, so the link lives on a tmpfs mounted over /dev/disk inside the agent's
    // namespace only (the empty /dev/disk directory it needs on the shared devtmpfs is removed).
    if Path::new("/dev/disk").exists() {
        skip(
            "e2e_by_id_link",
            "/dev/disk exists (udev): not planting a test link on the host",
        );
    } else {
        let _dev_disk = DevDiskGuard;
        std::fs::create_dir("/dev/disk").unwrap();
        let script = format!(
            "mount -t tmpfs -o mode=0755 nos-e2e /dev/disk && mkdir /dev/disk/by-id && ln -s ../../{} /dev/disk/by-id/nos-e2e-d",
            &d["/dev/".len()..]
        );
        let output = agent.in_agent_ns(&["sh", "-c", &script]);
        assert!(output.status.success(), "{output:?}");
        let show = ran(
            &agent,
            &[
                "btrfs",
                "filesystem",
                "show",
                "--",
                "/dev/disk/by-id/nos-e2e-d",
            ],
        );
        assert_eq!(
            show.argv.last().map(String::as_str),
            Some(d),
            "rendered with the kernel name"
        );
        assert!(show.stdout.text.contains(&uuid));
    }

    // Unmount.
    ran(&agent, &["umount", "--", tank]);
    assert!(agent_mount(&agent, tank).is_none());
    // Mount again through a pinned fd: the agent renders the target as /proc/self/fd/N of the
    // directory it verified, and mount(2) lands exactly there.
    let pinned = ran(
        &agent,
        &[
            "mount",
            "--no-canonicalize",
            "-t",
            "btrfs",
            "-o",
            "noatime",
            "--",
            a,
            tank,
        ],
    );
    assert!(
        pinned.argv.last().unwrap().starts_with("/proc/self/fd/"),
        "{:?}",
        pinned.argv
    );
    let (fstype, options) = agent_mount(&agent, tank).expect("mounted on the verified directory");
    assert_eq!(fstype, "btrfs");
    assert!(
        options.contains("nosuid") && options.contains("nodev"),
        "{options}"
    );
    ran(&agent, &["umount", "--", tank]);
    assert!(agent_mount(&agent, tank).is_none());

    let audit = agent.audit_log();
    for rule in [
        "mkfs.btrfs",
        "mount.btrfs",
        "btrfs.device.add",
        "btrfs.balance.start",
        "btrfs.replace.start",
        "btrfs.device.remove",
        "umount",
    ] {
        assert!(
            audit.contains(&format!("\"rule_id\":\"{rule}\"")),
            "{rule} not audited"
        );
    }
}

/// Issue 15: `umount` only of what mountinfo shows as a btrfs pool mount, through no symlink.
/// Refused at exec time: a tmpfs mounted below the mount root, a symlink to the pool, a plain
/// directory; the pool itself unmounts (in the agent, with `UMOUNT_NOFOLLOW`).
#[test]
fn issue_15_umount_only_of_a_pool_mount() {
    if !preconditions("issue_15_umount_only_of_a_pool_mount") {
        return;
    }
    let images = tempfile::tempdir().unwrap();
    let disk = LoopDevice::new(images.path(), "umount", "256M").expect("loop device");
    let agent = start_agent();
    let mnt = agent.dir.path().join("mnt");
    let path_of = |name: &str| mnt.join(name).display().to_string();
    let (tank, scratch, plain, link) = (
        path_of("tank"),
        path_of("scratch"),
        path_of("plain"),
        path_of("link"),
    );
    for dir in [&tank, &scratch, &plain] {
        std::fs::create_dir(dir).unwrap();
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
    let tmpfs = agent.in_agent_ns(&[
        "mount",
        "-t",
        "tmpfs",
        "-o",
        "mode=0755",
        "nos-e2e",
        &scratch,
    ]);
    assert!(tmpfs.status.success(), "{tmpfs:?}");
    std::os::unix::fs::symlink(&tank, &link).unwrap();

    let refused = |target: &str, why: &str| match agent.request(RequestBody::Run {
        argv: ["umount", "--", target].map(String::from).to_vec(),
    }) {
        ResponseBody::Rejected { rejection } => {
            assert_eq!(
                rejection.stage,
                RejectStage::ExecTime,
                "{why}: {rejection:?}"
            );
            assert_eq!(rejection.token_idx, Some(2), "{why}: {rejection:?}");
            rejection.reason
        }
        other => panic!("{why}: not refused: {other:?}\n{}", agent.explain()),
    };
    let reason = refused(&scratch, "a tmpfs below the mount root");
    assert!(
        reason.contains("not the mount point of a btrfs pool"),
        "{reason}"
    );
    assert_eq!(
        agent_mount(&agent, &scratch)
            .map(|mount| mount.0)
            .as_deref(),
        Some("tmpfs")
    );
    refused(&link, "a symlink to the pool");
    let reason = refused(&plain, "a directory that is no mount point");
    assert!(
        reason.contains("not the mount point of a btrfs pool"),
        "{reason}"
    );
    assert!(
        agent_mount(&agent, &tank).is_some(),
        "the pool stays mounted"
    );

    let unmounted = ran(&agent, &["umount", "--", &tank]);
    assert_eq!(unmounted.exit_code, Some(0));
    assert!(agent_mount(&agent, &tank).is_none());
    // Unmounted now, so a second umount is refused before anything runs.
    refused(&tank, "a pool that is no longer mounted");
    let cleanup = agent.in_agent_ns(&["umount", &scratch]);
    assert!(cleanup.status.success(), "{cleanup:?}");
}

#[test]
fn e2e_luks_format_with_agent_made_key() {
    if !preconditions("e2e_luks_format_with_agent_made_key") {
        return;
    }
    let images = tempfile::tempdir().unwrap();
    let disk = LoopDevice::new(images.path(), "luks", "64M").expect("loop device");
    let agent = start_agent();
    let key_path = agent.dir.path().join("keys/e2e.key").display().to_string();
    let key = match agent.request(RequestBody::Managed {
        action: ManagedAction::Ensure,
        request: ManagedRequest::KeyFile { path: key_path },
    }) {
        ResponseBody::Managed { path, .. } => path,
        other => panic!("{other:?}\n{}", agent.explain()),
    };
    let metadata = std::fs::metadata(&key).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&metadata.permissions()) & 0o777,
        0o400
    );

    // A key readable by others is refused at exec time.
    let loose = agent.dir.path().join("keys/loose.key");
    std::fs::write(&loose, [1u8; 64]).unwrap();
    std::fs::set_permissions(&loose, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let format = |key: &str| {
        agent.request(RequestBody::Run {
            argv: [
                "cryptsetup",
                "luksFormat",
                "--type",
                "luks2",
                "--batch-mode",
                "--pbkdf",
                "pbkdf2",
                "--pbkdf-force-iterations",
                "1000",
                "--key-file",
                key,
                "--",
                &disk.device,
            ]
            .map(String::from)
            .to_vec(),
        })
    };
    match format(loose.to_str().unwrap()) {
        ResponseBody::Rejected { rejection } => assert_eq!(rejection.stage, RejectStage::ExecTime),
        other => panic!("loose key not refused: {other:?}"),
    }
    match format(&key) {
        ResponseBody::Ran { result } => assert_eq!(result.outcome, Outcome::Ok, "{result:#?}"),
        other => panic!("{other:?}\n{}", agent.explain()),
    }
    // Real state: a LUKS2 header, and the agent's key opens it (the key check needs no dm).
    host(&["cryptsetup", "isLuks", "--type", "luks2", &disk.device]);
    host(&[
        "cryptsetup",
        "open",
        "--test-passphrase",
        "--key-file",
        &key,
        &disk.device,
    ]);
    let blkid = ran(&agent, &["blkid", "--", &disk.device]);
    assert!(
        blkid.stdout.text.contains("crypto_LUKS"),
        "{}",
        blkid.stdout.text
    );

    if !device_mapper_available() {
        skip(
            "e2e_luks_open",
            "kernel has no device-mapper (/proc/misc): cryptsetup open/close not exercised",
        );
        return;
    }
    let name = format!("nose2e{}", std::process::id());
    ran(
        &agent,
        &[
            "cryptsetup",
            "open",
            "--key-file",
            &key,
            "--",
            &disk.device,
            &name,
        ],
    );
    assert!(Path::new(&format!("/dev/mapper/{name}")).exists());
    ran(&agent, &["cryptsetup", "close", "--", &name]);
}
