//! Boot safety end to end (issue 14): the real agent writes nos's fstab and crypttab entries
//! through its socket with the repository's default `allowlist.toml` (only the mount roots and
//! key directory moved into the test's scratch directory), and systemd's own generators turn
//! those files into units. A missing pool disk must not stop a boot: each unit is only *wanted*
//! by its target (`nofail`), never required by it nor ordered before it, and the wait for its
//! device is bounded (`x-systemd.device-timeout=`, a `JobRunningTimeoutSec=` drop-in on the
//! device unit). Each test also feeds the generator the same line without the boot options and
//! sees it *required*, so the assertions hold on this systemd and are not vacuous.
//!
//! Needs root (the agent under test) and systemd's generators; otherwise each test prints a named
//! SKIP line. systemd need not run: a generator only reads the table `SYSTEMD_FSTAB` or
//! `SYSTEMD_CRYPTTAB` names and writes units into the directories it is given.

use std::path::{Path, PathBuf};
use std::process::Command;

use nos_protocol::{ManagedAction, ManagedRequest, RejectStage, RequestBody, ResponseBody};
use nos_tests::{AgentSetup, TestAgent, e2e_allowlist, root_or_skip, scratch, skip};

const GENERATORS: &str = "/usr/lib/systemd/system-generators";
const UUID: &str = "0b6c0e4a-1111-4222-8333-944455556666";
/// The device timeout the default allowlist forces, as systemd writes it back.
const TIMEOUT: &str = "JobRunningTimeoutSec=30s";

fn generator_or_skip(test: &str, name: &str) -> Option<PathBuf> {
    let path = Path::new(GENERATORS).join(name);
    if path.exists() {
        Some(path)
    } else {
        skip(
            test,
            &format!("{} missing (install systemd)", path.display()),
        );
        None
    }
}

fn start_agent() -> TestAgent {
    let allowlist = e2e_allowlist();
    let mut agent = TestAgent::start(AgentSetup::new(&allowlist));
    agent.register();
    agent
}

fn ensure(agent: &TestAgent, request: ManagedRequest) -> ResponseBody {
    agent.request(RequestBody::Managed {
        action: ManagedAction::Ensure,
        request,
    })
}

/// Runs `generator` on `table` (named by the environment variable `table_var`) into a fresh
/// directory below `dir`, and returns that directory.
fn generate(generator: &Path, table_var: &str, table: &Path, dir: &Path, name: &str) -> PathBuf {
    let out = dir.join(name);
    std::fs::create_dir(&out).unwrap();
    let output = Command::new(generator)
        .env(table_var, table)
        .args([&out, &out, &out])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{} {table_var}={}: {:?}\n{}",
        generator.display(),
        table.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    out
}

/// The one generated unit file whose name has `suffix` and whose text contains `needle`.
fn unit(out: &Path, suffix: &str, needle: &str) -> (String, String) {
    let mut found = Vec::new();
    for dir_entry in std::fs::read_dir(out).unwrap() {
        let path = dir_entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_file() && name.ends_with(suffix) {
            let text = std::fs::read_to_string(&path).unwrap();
            if text.contains(needle) {
                found.push((name, text));
            }
        }
    }
    assert_eq!(
        found.len(),
        1,
        "units {suffix} with {needle:?} in {out:?}: {found:#?}"
    );
    found.remove(0)
}

/// Whether `target` wants or requires `unit` in `out`: `(wanted, required)`.
fn dependency(out: &Path, target: &str, unit: &str) -> (bool, bool) {
    let link = |kind: &str| {
        out.join(format!("{target}.{kind}"))
            .join(unit)
            .symlink_metadata()
            .is_ok()
    };
    (link("wants"), link("requires"))
}

/// The drop-ins systemd writes for the device unit of `/dev/disk/by-uuid/<uuid>`, concatenated.
fn device_drop_ins(out: &Path, uuid: &str) -> String {
    let dir = out.join(format!(
        "dev-disk-by\\x2duuid-{}.device.d",
        uuid.replace('-', "\\x2d")
    ));
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return String::new();
    };
    entries
        .map(|dir_entry| std::fs::read_to_string(dir_entry.unwrap().path()).unwrap())
        .collect()
}

/// The managed lines of `table` (between nos's markers).
fn managed_lines(table: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(table).unwrap();
    text.lines()
        .skip_while(|line| !line.starts_with("# BEGIN nos managed block"))
        .skip(1)
        .take_while(|line| !line.starts_with("# END nos managed block"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn issue_14_fstab_entry_does_not_block_boot_on_a_missing_disk() {
    const TEST: &str = "issue_14_fstab_entry_does_not_block_boot_on_a_missing_disk";
    if !root_or_skip(TEST) {
        return;
    }
    let Some(generator) = generator_or_skip(TEST, "systemd-fstab-generator") else {
        return;
    };
    let agent = start_agent();
    let tank = agent.dir.path().join("mnt/tank").display().to_string();
    // The caller already gives `nofail`: it is written once, where the caller put it.
    let reply = ensure(
        &agent,
        ManagedRequest::FstabEntry {
            uuid: UUID.into(),
            target: tank.clone(),
            options: "compress=zstd:3,noatime,nofail".into(),
        },
    );
    assert!(
        matches!(reply, ResponseBody::Managed { changed: true, .. }),
        "{reply:#?}\n{}",
        agent.explain()
    );
    // Degraded at boot is refused by the allowlist; the written entry stays as it was.
    let reply = ensure(
        &agent,
        ManagedRequest::FstabEntry {
            uuid: UUID.into(),
            target: tank.clone(),
            options: "degraded,noatime".into(),
        },
    );
    match &reply {
        ResponseBody::Rejected { rejection } => {
            assert_eq!(rejection.stage, RejectStage::Allowlist, "{rejection:?}");
            assert!(
                rejection
                    .reason
                    .contains("has the mount option `degraded`, which is not allowed"),
                "{rejection:?}"
            );
        }
        other => panic!("degraded fstab entry: {other:#?}"),
    }
    let fstab = agent.dir.path().join("etc/fstab");
    let line = format!(
        "UUID={UUID} {tank} btrfs compress=zstd:3,noatime,nofail,nosuid,nodev,x-systemd.device-timeout=30s 0 0"
    );
    assert_eq!(managed_lines(&fstab), [line]);

    let units = scratch("boot-units");
    let out = generate(&generator, "SYSTEMD_FSTAB", &fstab, units.path(), "nos");
    let (mount_unit, text) = unit(&out, ".mount", &format!("Where={tank}\n"));
    assert_eq!(
        dependency(&out, "local-fs.target", &mount_unit),
        (true, false),
        "{mount_unit} must be wanted, not required, by local-fs.target"
    );
    assert!(!text.contains("Before=local-fs.target"), "{text}");
    assert!(
        text.contains(&format!("What=/dev/disk/by-uuid/{UUID}\n")),
        "{text}"
    );
    let drop_ins = device_drop_ins(&out, UUID);
    assert!(drop_ins.contains(TIMEOUT), "device drop-ins: {drop_ins:?}");

    // Control: the same entry without the boot options is required and waits the default.
    let control = units.path().join("fstab.control");
    std::fs::write(
        &control,
        format!("UUID={UUID} {tank} btrfs compress=zstd:3,noatime,nosuid,nodev 0 0\n"),
    )
    .unwrap();
    let out = generate(
        &generator,
        "SYSTEMD_FSTAB",
        &control,
        units.path(),
        "control",
    );
    let (mount_unit, text) = unit(&out, ".mount", &format!("Where={tank}\n"));
    assert_eq!(
        dependency(&out, "local-fs.target", &mount_unit),
        (false, true)
    );
    assert!(text.contains("Before=local-fs.target"), "{text}");
    assert!(!device_drop_ins(&out, UUID).contains(TIMEOUT));
}

#[test]
fn issue_14_crypttab_entry_does_not_block_boot_on_a_missing_disk() {
    const TEST: &str = "issue_14_crypttab_entry_does_not_block_boot_on_a_missing_disk";
    if !root_or_skip(TEST) {
        return;
    }
    let Some(generator) = generator_or_skip(TEST, "systemd-cryptsetup-generator") else {
        return;
    };
    let agent = start_agent();
    let key = agent.dir.path().join("keys/tank.key").display().to_string();
    let reply = ensure(
        &agent,
        ManagedRequest::CrypttabEntry {
            name: "luks-tank-0".into(),
            device_uuid: UUID.into(),
            key: key.clone(),
        },
    );
    assert!(
        matches!(reply, ResponseBody::Managed { changed: true, .. }),
        "{reply:#?}\n{}",
        agent.explain()
    );
    let crypttab = agent.dir.path().join("etc/crypttab");
    assert_eq!(
        managed_lines(&crypttab),
        [format!(
            "luks-tank-0 UUID={UUID} {key} luks,nofail,x-systemd.device-timeout=30s"
        )]
    );

    let units = scratch("boot-units");
    let out = generate(
        &generator,
        "SYSTEMD_CRYPTTAB",
        &crypttab,
        units.path(),
        "nos",
    );
    let (service, text) = unit(&out, ".service", "systemd-cryptsetup attach 'luks-tank-0'");
    assert_eq!(
        dependency(&out, "cryptsetup.target", &service),
        (true, false),
        "{service} must be wanted, not required, by cryptsetup.target"
    );
    assert!(!text.contains("Before=cryptsetup.target"), "{text}");
    assert!(text.contains(&format!("'{key}' 'luks,nofail'")), "{text}");
    let drop_ins = device_drop_ins(&out, UUID);
    assert!(drop_ins.contains(TIMEOUT), "device drop-ins: {drop_ins:?}");

    // Control: the same entry as nos wrote it before issue 14 is required.
    let control = units.path().join("crypttab.control");
    std::fs::write(&control, format!("luks-tank-0 UUID={UUID} {key} luks\n")).unwrap();
    let out = generate(
        &generator,
        "SYSTEMD_CRYPTTAB",
        &control,
        units.path(),
        "control",
    );
    let (service, text) = unit(&out, ".service", "systemd-cryptsetup attach 'luks-tank-0'");
    assert_eq!(
        dependency(&out, "cryptsetup.target", &service),
        (false, true)
    );
    assert!(text.contains("Before=cryptsetup.target"), "{text}");
    assert!(!device_drop_ins(&out, UUID).contains(TIMEOUT));
}
