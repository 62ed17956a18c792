//! End to end: the agent refuses, on its own and just before the spawn, a destructive request
//! on a device that is in use, whatever nosd checked (regression: a disk whose partition was
//! mounted got `mkfs.btrfs -f`; only btrfs-progs' own exclusive open stopped it).
//!
//! The real agent binary runs in its own private mount namespace with the default
//! `allowlist.toml` and a registered token; every request goes straight to its socket. Mounts are
//! made in a *third* mount namespace (a holder process), so the agent cannot see them in its own
//! mount table and must find them through kernel-wide signals. After each refusal the test checks
//! that nothing ran (no decision in the audit log) and that the data is intact.
//!
//! Nothing here is skipped: a missing precondition (root, loop devices, a tool) fails the test.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use nos_protocol::{
    JobState, ManagedAction, ManagedRequest, RejectStage, RequestBody, ResponseBody,
};
use nos_tests::{AgentSetup, LoopDevice, TestAgent, e2e_allowlist};

/// Fails (never skips) when this machine cannot run the tests.
fn require_preconditions() {
    assert!(
        nos_tests::is_root(),
        "not root: these tests need loop devices, mounts and swap; they are never skipped"
    );
    assert!(
        nos_tests::loop_devices_available(),
        "no /dev/loop-control: loop devices unavailable; these tests are never skipped"
    );
    for tool in [
        "/usr/sbin/mkfs.btrfs",
        "/usr/bin/btrfs",
        "/usr/sbin/cryptsetup",
        "/usr/sbin/wipefs",
        "/usr/sbin/mkfs.ext4",
        "/usr/sbin/mkswap",
        "/usr/sbin/swapon",
        "/usr/sbin/sfdisk",
        "/usr/bin/partx",
        "/usr/sbin/blkid",
        "/usr/bin/unshare",
        "/usr/bin/nsenter",
    ] {
        assert!(
            Path::new(tool).exists(),
            "{tool} missing (btrfs-progs, cryptsetup-bin, e2fsprogs, fdisk, util-linux): these tests are never skipped"
        );
    }
}

fn strings(argv: &[&str]) -> Vec<String> {
    argv.iter().map(|token| (*token).to_owned()).collect()
}

/// A command run by the test itself (setup and host-side truth); must succeed.
fn host(argv: &[&str]) -> String {
    let output = Command::new(argv[0]).args(&argv[1..]).output().unwrap();
    assert!(
        output.status.success(),
        "{argv:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `blkid -p` of a device: (exit code, output). Exit 2 means no signature at all.
fn probe(device: &str) -> (Option<i32>, String) {
    let output = Command::new("blkid")
        .args(["-p", "-o", "export", "--", device])
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

/// The `TYPE` (or `PTTYPE`) blkid -p finds on a device.
fn signature(device: &str, key: &str) -> String {
    let (_, export) = probe(device);
    export
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{key}=")))
        .unwrap_or_default()
        .to_owned()
}

/// Partitions the kernel still lists under a loop device (`/sys/class/block/<name>/<name>pN`).
fn partitions_of(device: &str) -> Vec<String> {
    let dir = Path::new("/sys/class/block").join(device.trim_start_matches("/dev/"));
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|entry| entry.path().join("partition").exists())
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// A loop device without partitions. Partitions added with partx survive `losetup -d`, so a
/// device number another test (of this or another suite on this machine) used may come back
/// with stale, even mounted, partitions: those are deleted, or the device is set aside and
/// another one attached.
fn fresh_loop(dir: &Path, name: &str, size: &str) -> LoopDevice {
    let mut set_aside = Vec::new();
    for attempt in 0..8 {
        let device = LoopDevice::new(dir, &format!("{name}-{attempt}"), size).expect("loop device");
        if !partitions_of(&device.device).is_empty() {
            let _ = Command::new("partx")
                .args(["-d", &device.device])
                .stderr(Stdio::null())
                .status();
        }
        if partitions_of(&device.device).is_empty() {
            return device;
        }
        set_aside.push(device);
    }
    panic!(
        "every loop device attached has stale partitions: {:?}",
        set_aside
            .iter()
            .map(|device| (device.device.clone(), partitions_of(&device.device)))
            .collect::<Vec<_>>()
    );
}

/// Waits (up to 10 s) until nothing claims `device` exclusively any more: a killed holder's
/// namespace, and with it the mount, is torn down asynchronously.
fn wait_unclaimed(device: &str) {
    use std::os::unix::fs::OpenOptionsExt;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_EXCL)
        .open(device)
        .is_err()
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A loop device with a GPT holding one partition (`<disk>p1`), added with partx (no udev,
/// no partscan); the partitions are deleted again on drop, before the loop device is detached.
struct Partitioned {
    disk: String,
    partition: String,
}

impl Partitioned {
    fn new(disk: &str) -> Partitioned {
        let mut sfdisk = Command::new("sfdisk")
            .args(["--quiet", "--no-reread", "--no-tell-kernel", disk])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        sfdisk
            .stdin
            .take()
            .unwrap()
            .write_all(b"label: gpt\n,\n")
            .unwrap();
        let output = sfdisk.wait_with_output().unwrap();
        assert!(output.status.success(), "sfdisk: {output:?}");
        host(&["partx", "-a", disk]);
        let partition = format!("{disk}p1");
        assert!(
            Path::new(&partition).exists(),
            "partx -a made no {partition}"
        );
        Partitioned {
            disk: disk.to_owned(),
            partition,
        }
    }
}

impl Drop for Partitioned {
    fn drop(&mut self) {
        wait_unclaimed(&self.partition);
        for _ in 0..50 {
            let _ = Command::new("partx")
                .args(["-d", &self.disk])
                .stderr(Stdio::null())
                .status();
            if partitions_of(&self.disk).is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

/// A filesystem mounted in a mount namespace of its own (neither the agent's nor the test's),
/// with a marker file written on it; unmounted when the holder is killed on drop.
struct Mounted {
    holder: Child,
    dir: PathBuf,
    device: String,
}

const MARKER: &str = "nos in-use test data\n";

impl Mounted {
    fn new(device: &str, options: &str, dir: &Path) -> Mounted {
        std::fs::create_dir_all(dir).unwrap();
        // Test fixture only (the agent never runs a shell).
        let mut holder = Command::new("unshare")
            .args(["-m", "--propagation", "private", "--", "sh", "-c"])
            .arg(
                "mount -o \"$2\" -- \"$0\" \"$1\" && printf '%s' \"$3\" > \"$1/marker\" && sync \
                 && echo mounted && exec sleep 600",
            )
            .args([device, dir.to_str().unwrap(), options, MARKER])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(holder.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        if line.trim() != "mounted" {
            let _ = holder.kill();
            let output = holder.wait_with_output().unwrap();
            panic!("mounting {device} failed: {output:?}");
        }
        Mounted {
            holder,
            dir: dir.to_owned(),
            device: device.to_owned(),
        }
    }

    /// The marker, read inside the holder's namespace: the data is still there.
    fn marker(&self) -> String {
        let output = Command::new("nsenter")
            .arg(format!("--mount=/proc/{}/ns/mnt", self.holder.id()))
            .args(["--", "cat"])
            .arg(self.dir.join("marker"))
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
        wait_unclaimed(&self.device);
    }
}

/// Active swap on a device; swapped off on drop.
struct Swap(String);

impl Swap {
    fn new(device: &str) -> Swap {
        host(&["mkswap", "--", device]);
        host(&["swapon", "--", device]);
        Swap(device.to_owned())
    }
}

impl Drop for Swap {
    fn drop(&mut self) {
        let _ = Command::new("swapoff").arg(&self.0).status();
    }
}

/// The real agent in its own private mount namespace, registered.
fn start_agent() -> TestAgent {
    let allowlist = e2e_allowlist();
    let mut agent = TestAgent::start(AgentSetup {
        private_mounts: true,
        ..AgentSetup::new(&allowlist)
    });
    agent.register();
    agent
}

/// The running agent, a mounted pool of its own (for `btrfs device add`) and a key file.
struct Fixture {
    agent: TestAgent,
    pool: String,
    key: String,
}

impl Fixture {
    /// Starts the agent; makes, through it, a btrfs pool on `pool_device`, mounted in the agent's
    /// namespace, and a key file.
    fn new(pool_device: &str) -> Fixture {
        let agent = start_agent();
        let pool = agent.dir.path().join("mnt/pool").display().to_string();
        match agent.request(RequestBody::Managed {
            action: ManagedAction::Ensure,
            request: ManagedRequest::MountDir { path: pool.clone() },
        }) {
            ResponseBody::Managed { .. } => {}
            other => panic!("{other:?}\n{}", agent.explain()),
        }
        let key_path = agent.dir.path().join("keys/test.key").display().to_string();
        let key = match agent.request(RequestBody::Managed {
            action: ManagedAction::Ensure,
            request: ManagedRequest::KeyFile { path: key_path },
        }) {
            ResponseBody::Managed { path, .. } => path,
            other => panic!("{other:?}\n{}", agent.explain()),
        };
        let fixture = Fixture { agent, pool, key };
        fixture.ran(&["mkfs.btrfs", "-f", "-L", "pool", "--", pool_device]);
        let pool = fixture.pool.clone();
        fixture.ran(&[
            "mount",
            "-t",
            "btrfs",
            "-o",
            "noatime",
            "--",
            pool_device,
            &pool,
        ]);
        fixture
    }

    fn ran(&self, argv: &[&str]) {
        match self.agent.request(RequestBody::Run {
            argv: strings(argv),
        }) {
            ResponseBody::Ran { result } if result.succeeded() => {}
            other => panic!("{argv:?}: {other:#?}\n{}", self.agent.explain()),
        }
    }

    /// The four destructive requests against `device`, each with the argv index of the device.
    fn destructive_requests(&self, device: &str) -> Vec<(Vec<String>, usize)> {
        vec![
            (strings(&["mkfs.btrfs", "-f", "--", device]), 3),
            (
                strings(&["btrfs", "device", "add", "-f", "--", device, &self.pool]),
                5,
            ),
            (
                strings(&[
                    "cryptsetup",
                    "luksFormat",
                    "--type",
                    "luks2",
                    "--batch-mode",
                    "--key-file",
                    &self.key,
                    "--",
                    device,
                ]),
                8,
            ),
            (strings(&["wipefs", "--all", "--", device]), 3),
        ]
    }

    /// Every destructive request on `device` is refused at exec time with `expected` (the whole
    /// message), audited as a rejection, and nothing is decided or run.
    #[track_caller]
    fn assert_all_refused(&self, device: &str, expected: &str) {
        for (argv, device_idx) in self.destructive_requests(device) {
            let decided_before = self.count("\"verdict\":\"decided\"");
            let rejected_before = self.count(expected);
            match self.agent.request(RequestBody::Run { argv: argv.clone() }) {
                ResponseBody::Rejected { rejection } => {
                    assert_eq!(rejection.stage, RejectStage::ExecTime, "{argv:?}");
                    assert_eq!(rejection.reason, expected, "{argv:?}");
                    assert_eq!(rejection.token_idx, Some(device_idx), "{argv:?}");
                }
                other => panic!("{argv:?} not refused: {other:#?}\n{}", self.agent.explain()),
            }
            assert_eq!(
                self.count("\"verdict\":\"decided\""),
                decided_before,
                "{argv:?}: a decision was recorded, so something was about to run"
            );
            assert_eq!(
                self.count(expected),
                rejected_before + 1,
                "{argv:?}: the refusal is not in the audit log"
            );
        }
    }

    /// Audit lines containing `needle` (the messages here need no JSON escaping).
    fn count(&self, needle: &str) -> usize {
        self.agent
            .audit_log()
            .lines()
            .filter(|line| line.contains(needle))
            .count()
    }
}

fn name(device: &str) -> &str {
    device.trim_start_matches("/dev/")
}

#[test]
fn a_disk_whose_partition_is_mounted_is_refused_and_so_is_the_partition() {
    require_preconditions();
    let images = tempfile::tempdir().unwrap();
    let pool_disk = fresh_loop(images.path(), "pool", "256M");
    let disk = fresh_loop(images.path(), "disk", "64M");
    let partitioned = Partitioned::new(&disk.device);
    host(&["mkfs.ext4", "-q", "-F", "--", &partitioned.partition]);
    let fixture = Fixture::new(&pool_disk.device);
    let mounted = Mounted::new(&partitioned.partition, "rw", &images.path().join("mounted"));

    // (a) The disk: its partition is mounted in a namespace the agent cannot see.
    fixture.assert_all_refused(
        &disk.device,
        &format!(
            "device in use: {}: partition {} is mounted as ext4 (claimed exclusively)",
            disk.device,
            name(&partitioned.partition)
        ),
    );
    // (e) The mounted partition itself.
    fixture.assert_all_refused(
        &partitioned.partition,
        &format!(
            "device in use: {}: {} is mounted as ext4 (claimed exclusively)",
            partitioned.partition,
            name(&partitioned.partition)
        ),
    );
    assert_eq!(mounted.marker(), MARKER);
    assert_eq!(signature(&disk.device, "PTTYPE"), "gpt");
    assert_eq!(signature(&partitioned.partition, "TYPE"), "ext4");
}

#[test]
fn a_mounted_whole_disk_filesystem_is_refused() {
    require_preconditions();
    let images = tempfile::tempdir().unwrap();
    let pool_disk = fresh_loop(images.path(), "pool", "256M");
    let disk = fresh_loop(images.path(), "disk", "64M");
    host(&["mkfs.ext4", "-q", "-F", "--", &disk.device]);
    let fixture = Fixture::new(&pool_disk.device);
    let mounted = Mounted::new(&disk.device, "rw", &images.path().join("mounted"));

    // (b)
    fixture.assert_all_refused(
        &disk.device,
        &format!(
            "device in use: {}: {} is mounted as ext4 (claimed exclusively)",
            disk.device,
            name(&disk.device)
        ),
    );
    assert_eq!(mounted.marker(), MARKER);
    assert_eq!(signature(&disk.device, "TYPE"), "ext4");
}

#[test]
fn active_swap_is_refused() {
    require_preconditions();
    let images = tempfile::tempdir().unwrap();
    let pool_disk = fresh_loop(images.path(), "pool", "256M");
    let disk = fresh_loop(images.path(), "swap", "64M");
    let fixture = Fixture::new(&pool_disk.device);
    let swap = Swap::new(&disk.device);

    // (c)
    fixture.assert_all_refused(
        &disk.device,
        &format!(
            "device in use: {}: {} is active swap",
            disk.device,
            name(&disk.device)
        ),
    );
    assert!(
        std::fs::read_to_string("/proc/swaps")
            .unwrap()
            .contains(&format!("{} ", swap.0)),
        "swap still active"
    );
    assert_eq!(signature(&disk.device, "TYPE"), "swap");
}

#[test]
fn a_member_of_a_mounted_btrfs_is_refused() {
    require_preconditions();
    let images = tempfile::tempdir().unwrap();
    let pool_disk = fresh_loop(images.path(), "pool", "256M");
    let first = fresh_loop(images.path(), "first", "256M");
    let second = fresh_loop(images.path(), "second", "256M");
    host(&[
        "mkfs.btrfs",
        "-q",
        "-f",
        "-d",
        "raid1",
        "-m",
        "raid1",
        "--",
        &first.device,
        &second.device,
    ]);
    let uuid = host(&["blkid", "-p", "-s", "UUID", "-o", "value", &first.device])
        .trim()
        .to_owned();
    let fixture = Fixture::new(&pool_disk.device);
    // Mounted through the first device only: the second is a member nobody named.
    let mounted = Mounted::new(
        &first.device,
        &format!("device={}", second.device),
        &images.path().join("mounted"),
    );

    // (d)
    fixture.assert_all_refused(
        &second.device,
        &format!(
            "device in use: {}: {} is a member of the mounted btrfs {uuid} (claimed exclusively)",
            second.device,
            name(&second.device)
        ),
    );
    assert_eq!(mounted.marker(), MARKER);
    assert_eq!(signature(&second.device, "TYPE"), "btrfs");
    // The agent's own pool is in use too: mounting it a second time is refused.
    let elsewhere = fixture.agent.dir.path().join("mnt/again");
    std::fs::create_dir(&elsewhere).unwrap();
    match fixture.agent.request(RequestBody::Run {
        argv: strings(&[
            "mount",
            "-t",
            "btrfs",
            "-o",
            "noatime",
            "--",
            &pool_disk.device,
            elsewhere.to_str().unwrap(),
        ]),
    }) {
        ResponseBody::Rejected { rejection } => assert!(
            rejection.reason.starts_with(&format!(
                "device in use: {}: {} is a member of the mounted btrfs ",
                pool_disk.device,
                name(&pool_disk.device)
            )),
            "{rejection:?}"
        ),
        other => panic!("second mount not refused: {other:#?}"),
    }
}

#[test]
fn a_blank_disk_passes_the_check_and_the_requests_run() {
    require_preconditions();
    let images = tempfile::tempdir().unwrap();
    let pool_disk = fresh_loop(images.path(), "pool", "256M");
    let blank = fresh_loop(images.path(), "blank", "256M");
    let added = fresh_loop(images.path(), "added", "256M");
    let fixture = Fixture::new(&pool_disk.device);
    let key = fixture.key.clone();
    let pool = fixture.pool.clone();

    fixture.ran(&[
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
        &key,
        "--",
        &blank.device,
    ]);
    assert_eq!(signature(&blank.device, "TYPE"), "crypto_LUKS");
    fixture.ran(&["wipefs", "--all", "--", &blank.device]);
    assert_eq!(
        probe(&blank.device).0,
        Some(2),
        "{:?}",
        probe(&blank.device)
    );
    fixture.ran(&["mkfs.btrfs", "-f", "--", &blank.device]);
    assert_eq!(signature(&blank.device, "TYPE"), "btrfs");
    fixture.ran(&["btrfs", "device", "add", "-f", "--", &added.device, &pool]);
    let show = host(&["btrfs", "filesystem", "show", "--", &pool_disk.device]);
    assert!(
        show.contains("Total devices 2") && show.contains(&added.device),
        "{show}"
    );
    // Removing a member of the mounted pool is allowed by the allowlist (in_use = "allowed").
    let job = match fixture.agent.request(RequestBody::Run {
        argv: strings(&["btrfs", "device", "remove", "--", &added.device, &pool]),
    }) {
        ResponseBody::JobStarted { job, .. } => job,
        other => panic!(
            "device remove refused: {other:#?}\n{}",
            fixture.agent.explain()
        ),
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        match fixture.agent.request(RequestBody::JobStatus { job }) {
            ResponseBody::Job {
                state: JobState::Finished { result },
                ..
            } => {
                assert!(result.succeeded(), "{result:#?}");
                break;
            }
            ResponseBody::Job {
                state: JobState::Running { .. },
                ..
            } if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            other => panic!("{other:#?}\n{}", fixture.agent.explain()),
        }
    }
    let show = host(&["btrfs", "filesystem", "show", "--", &pool_disk.device]);
    assert!(show.contains("Total devices 1"), "{show}");
}

#[test]
fn wipefs_clears_an_unmounted_partitioned_disk_partition_first() {
    require_preconditions();
    let images = tempfile::tempdir().unwrap();
    let pool_disk = fresh_loop(images.path(), "pool", "256M");
    let disk = fresh_loop(images.path(), "disk", "64M");
    let partitioned = Partitioned::new(&disk.device);
    host(&["mkfs.ext4", "-q", "-F", "--", &partitioned.partition]);
    assert_eq!(signature(&partitioned.partition, "TYPE"), "ext4");
    assert_eq!(signature(&disk.device, "PTTYPE"), "gpt");
    let fixture = Fixture::new(&pool_disk.device);

    match fixture.agent.request(RequestBody::RunSteps {
        steps: vec![
            strings(&["wipefs", "--all", "--", &partitioned.partition]),
            strings(&["wipefs", "--all", "--", &disk.device]),
        ],
    }) {
        ResponseBody::Steps {
            results,
            completed: true,
            rejection: None,
        } => {
            assert_eq!(results.len(), 2);
            assert!(results.iter().all(|result| result.rule_id == "wipefs"));
        }
        other => panic!("{other:#?}\n{}", fixture.agent.explain()),
    }
    for device in [&partitioned.partition, &disk.device] {
        let (code, export) = probe(device);
        assert_eq!(code, Some(2), "{device} is not blank: {export}");
    }
}

/// A device that backs a loop device is refused: loop takes no exclusive claim and registers no
/// holder, so only `/sys/block/loop*/loop/backing_file` tells.
#[test]
fn a_device_backing_a_loop_device_is_refused() {
    require_preconditions();
    let images = tempfile::tempdir().unwrap();
    let pool_disk = fresh_loop(images.path(), "pool", "256M");
    let disk = fresh_loop(images.path(), "backing", "64M");
    host(&["mkfs.ext4", "-q", "-F", "--", &disk.device]);
    let fixture = Fixture::new(&pool_disk.device);
    let over = host(&["losetup", "-f", "--show", &disk.device])
        .trim()
        .to_owned();
    let _detach = Detach(over.clone());

    fixture.assert_all_refused(
        &disk.device,
        &format!(
            "device in use: {}: {} backs {}",
            disk.device,
            name(&disk.device),
            name(&over)
        ),
    );
    assert_eq!(signature(&disk.device, "TYPE"), "ext4");
}

/// Detaches a loop device on drop.
struct Detach(String);

impl Drop for Detach {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.0]).status();
    }
}

/// The device under `/` is refused, found through the kernel (`stat("/")`, the mountinfo source
/// of `/`). Tried with a mount, which could not harm the root filesystem even if the check failed.
#[test]
fn the_device_under_root_is_refused() {
    require_preconditions();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let source = mountinfo
        .lines()
        .filter(|line| line.split(' ').nth(4) == Some("/"))
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let separator = fields.iter().position(|field| *field == "-")?;
            fields.get(separator + 2).map(|source| (*source).to_owned())
        })
        .next_back()
        .unwrap_or_default();
    let is_block = std::fs::metadata(&source).is_ok_and(|metadata| {
        std::os::unix::fs::FileTypeExt::is_block_device(&metadata.file_type())
    });
    assert!(
        is_block,
        "`/` is mounted from {source:?}, not a block device node: this test needs a machine whose root is a disk; it is never skipped"
    );
    let agent = start_agent();
    let target = agent.dir.path().join("mnt/root-again");
    std::fs::create_dir(&target).unwrap();
    let argv = strings(&[
        "mount",
        "-t",
        "btrfs",
        "-o",
        "ro",
        "--",
        &source,
        target.to_str().unwrap(),
    ]);
    match agent.request(RequestBody::Run { argv }) {
        ResponseBody::Rejected { rejection } => {
            assert_eq!(rejection.stage, RejectStage::ExecTime);
            assert_eq!(
                rejection.reason,
                format!(
                    "device in use: {source}: {} holds the root filesystem",
                    name(&source)
                )
            );
            assert_eq!(rejection.token_idx, Some(6));
        }
        other => panic!(
            "mounting the root device was not refused: {other:#?}\n{}",
            agent.explain()
        ),
    }
    assert!(!agent.audit_log().contains("\"verdict\":\"decided\""));
}
