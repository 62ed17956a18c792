use super::*;
use crate::plan::types::{CrypttabEntry, FstabEntry, ManagedRequest};
use expect_test::{Expect, expect};

/// Facts that name no device: the allowlist and scope decide alone (the device rules have
/// their own tests below).
pub(crate) fn no_devices() -> Facts {
    Facts {
        block_devices: Vec::new(),
        filesystems: Vec::new(),
        fresh_uuids: Vec::new(),
        now_unix_seconds: 0,
    }
}

pub(crate) fn default_allowlist() -> &'static Allowlist {
    static ALLOWLIST: std::sync::LazyLock<Allowlist> = std::sync::LazyLock::new(|| {
        let text = include_str!("../../../../allowlist.toml").to_owned();
        Allowlist::load(&[nos_allowlist::Source {
            name: "allowlist.toml".into(),
            text,
        }])
        .expect("the default allowlist loads")
    });
    &ALLOWLIST
}

pub(crate) fn argv(tokens: &str) -> Request {
    Request::Argv(tokens.split(' ').map(str::to_owned).collect())
}

fn step(request: Request, effect: Effect, confirmation: Option<&str>) -> Step {
    Step {
        id: "s".into(),
        title: "t".into(),
        request,
        effect,
        rollback: None,
        confirmation: confirmation.map(str::to_owned),
    }
}

fn scope(ids: &[&str]) -> Scope {
    Scope::new(ids.iter().map(|id| (*id).to_owned()))
}

/// One step, judged; the verdict as one line.
fn check_step(step: Step, scope: &Scope, expect: Expect) {
    let checked = check(
        Plan {
            steps: vec![step],
            warnings: vec![],
        },
        default_allowlist(),
        scope,
        &no_devices(),
    );
    let line = match checked.steps()[0].verdict() {
        StepVerdict::Allowed { rule_id, canonical } => format!("allowed by {rule_id}: {canonical}"),
        StepVerdict::Rejected { reason } => format!("rejected: {reason}"),
    };
    expect.assert_eq(&line);
}

#[test]
fn argv_steps() {
    let all = scope(&[
        "mkfs.btrfs",
        "mount.btrfs",
        "btrfs.device.remove.devid",
        "btrfs.filesystem.show",
    ]);
    check_step(
        step(
            argv("mkfs.btrfs -L data -d raid1 -m raid1 /dev/sdb /dev/sdc"),
            Effect::Destructive,
            Some("data"),
        ),
        &all,
        expect![
            "allowed by mkfs.btrfs: /usr/sbin/mkfs.btrfs -L data -d raid1 -m raid1 -- /dev/sdb /dev/sdc"
        ],
    );
    check_step(
        step(
            argv("mount -t btrfs -o compress=zstd:3,noatime /dev/sdb /srv/pool"),
            Effect::State,
            None,
        ),
        &all,
        expect![
            "allowed by mount.btrfs: /usr/bin/mount --no-canonicalize -t btrfs -o compress=zstd:3,noatime,nosuid,nodev -- /dev/sdb /srv/pool"
        ],
    );
    check_step(
        step(argv("sh -c reboot"), Effect::Read, None),
        &all,
        expect![
            "rejected: token 0: `sh` is not an allowed program (give a binary's name or its exact configured path)"
        ],
    );
    check_step(
        step(
            argv("mkfs.btrfs -L x /etc/passwd"),
            Effect::Destructive,
            Some("x"),
        ),
        &all,
        expect![
            "rejected: token 3: devices `/etc/passwd` is not a valid disk: it is not a device path of an allowed form (/dev/<kernel name>, /dev/disk/by-*/<name>, /dev/mapper/<name>) (closest rule: mkfs.btrfs)"
        ],
    );
}

#[test]
fn scope_and_effect() {
    check_step(
        step(
            argv("btrfs device remove 3 /srv/pool"),
            Effect::Destructive,
            Some("pool"),
        ),
        &scope(&["btrfs.filesystem.show"]),
        expect!["rejected: rule btrfs.device.remove.devid is outside the plugin's scope"],
    );
    check_step(
        step(argv("mkfs.btrfs -L data /dev/sdb"), Effect::State, None),
        &scope(&["mkfs.btrfs"]),
        expect!["rejected: rule mkfs.btrfs is destructive but the step claims to be state"],
    );
    check_step(
        step(
            argv("mkfs.btrfs -L data /dev/sdb"),
            Effect::Destructive,
            None,
        ),
        &scope(&["mkfs.btrfs"]),
        expect!["rejected: rule mkfs.btrfs is destructive and the step has no confirmation word"],
    );
    // Overstating is fine: a read step may be presented as state.
    check_step(
        step(argv("btrfs filesystem show /dev/sdb"), Effect::State, None),
        &scope(&["btrfs.filesystem.show"]),
        expect!["allowed by btrfs.filesystem.show: /usr/bin/btrfs filesystem show -- /dev/sdb"],
    );
}

#[test]
fn managed_steps() {
    let all = scope(&[
        "managed.mount_dir",
        "managed.key_file",
        "managed.fstab",
        "managed.crypttab",
    ]);
    let fstab = ManagedRequest::FstabEntry(FstabEntry {
        uuid: "5f0c7a8e-1b2c-4d3e-8f40-123456789abc".into(),
        target: "/srv/tank".into(),
        options: vec!["compress=zstd:3".into(), "noatime".into()],
    });
    check_step(
        step(Request::Ensure(fstab.clone()), Effect::State, None),
        &all,
        expect![
            "allowed by managed.fstab: ensure fstab UUID=5f0c7a8e-1b2c-4d3e-8f40-123456789abc /srv/tank btrfs compress=zstd:3,noatime,nosuid,nodev,nofail,x-systemd.device-timeout=30s"
        ],
    );
    // Issue 14: a planner cannot have a pool mounted degraded at boot.
    let degraded = ManagedRequest::FstabEntry(FstabEntry {
        uuid: "5f0c7a8e-1b2c-4d3e-8f40-123456789abc".into(),
        target: "/srv/tank".into(),
        options: vec!["degraded".into(), "noatime".into()],
    });
    check_step(
        step(Request::Ensure(degraded), Effect::State, None),
        &all,
        expect![
            "rejected: options `degraded,noatime` is not a valid fstab_options: it has the mount option `degraded`, which is not allowed (closest rule: managed.fstab)"
        ],
    );
    check_step(
        step(Request::Remove(fstab), Effect::State, None),
        &scope(&["managed.mount_dir"]),
        expect!["rejected: rule managed.fstab is outside the plugin's scope"],
    );
    check_step(
        step(
            Request::Ensure(ManagedRequest::MountDir("/etc/cron.d".into())),
            Effect::State,
            None,
        ),
        &all,
        expect![
            "rejected: path `/etc/cron.d` is not a valid pool: it is not below /srv or /mnt (closest rule: managed.mount_dir)"
        ],
    );
    check_step(
        step(
            Request::Remove(ManagedRequest::KeyFile("/etc/nos/keys/tank.key".into())),
            Effect::State,
            None,
        ),
        &all,
        expect![
            "rejected: the action `remove` is not allowed for this managed file (closest rule: managed.key_file)"
        ],
    );
    check_step(
        step(
            Request::Ensure(ManagedRequest::CrypttabEntry(CrypttabEntry {
                name: "luks-tank-0".into(),
                device_uuid: "6a1d8b9f-2c3d-4e4f-9a51-23456789abcd".into(),
                key_file: "/etc/nos/keys/tank.key".into(),
            })),
            Effect::State,
            None,
        ),
        &all,
        expect![
            "allowed by managed.crypttab: ensure crypttab luks-tank-0 UUID=6a1d8b9f-2c3d-4e4f-9a51-23456789abcd /etc/nos/keys/tank.key luks,nofail,x-systemd.device-timeout=30s"
        ],
    );
}

#[test]
fn rejected_rollback_rejects_the_step() {
    let mut mount = step(
        argv("mount -t btrfs -o noatime /dev/sdb /srv/pool"),
        Effect::State,
        None,
    );
    mount.rollback = Some(argv("umount -l /"));
    let checked = check(
        Plan {
            steps: vec![mount],
            warnings: vec!["w".into()],
        },
        default_allowlist(),
        &scope(&["mount.btrfs", "umount"]),
        &no_devices(),
    );
    assert!(!checked.all_allowed());
    assert_eq!(checked.n_rejected(), 1);
    assert_eq!(checked.warnings(), ["w"]);
    let StepVerdict::Rejected { reason } = checked.steps()[0].verdict() else {
        panic!("the step must be rejected");
    };
    assert!(reason.starts_with("rollback: "), "{reason}");
}

proptest::proptest! {
    /// Whatever a plugin emits, an allowed verdict names a rule inside the plugin's scope.
    #[test]
    fn allowed_is_always_in_scope(
        tokens in proptest::collection::vec(
            proptest::sample::select(vec![
                "btrfs", "mkfs.btrfs", "mount", "umount", "cryptsetup", "device", "remove", "add",
                "filesystem", "show", "balance", "start", "-f", "-L", "x", "3", "/dev/sdb",
                "/srv/pool", "--", "-dusage=5", "open", "close", "luks-a", "-t", "btrfs", "-o",
                "noatime",
            ]),
            1..8,
        ),
        scope_ids in proptest::sample::subsequence(
            vec!["btrfs.device.add", "btrfs.device.remove", "btrfs.device.remove.devid",
                 "btrfs.filesystem.show", "btrfs.balance.start", "mount.btrfs", "umount",
                 "cryptsetup.close"],
            0..4,
        ),
    ) {
        let request = Request::Argv(tokens.iter().map(|t| (*t).to_owned()).collect());
        let plan = Plan {
            steps: vec![step(request, Effect::Destructive, Some("yes"))],
            warnings: vec![],
        };
        let scope = scope(&scope_ids);
        let checked = check(plan, default_allowlist(), &scope, &no_devices());
        if let StepVerdict::Allowed { rule_id, .. } = checked.steps()[0].verdict() {
            proptest::prop_assert!(scope.contains(rule_id), "{rule_id} not in {scope:?}");
        }
    }
}

/// The host's own half of snapshot locks: whatever a planner returned, no step deletes a locked
/// snapshot; reading or restoring from it stays allowed, and an unlocked one may be deleted.
#[test]
fn a_locked_snapshot_is_never_deleted() {
    let snapshot = ".snapshots/media/20261201T190000Z";
    let subvolume = |path: &str, kind, locked| crate::facts::Subvolume {
        id: 257,
        path: path.into(),
        kind,
        share: Some("media".into()),
        uuid: "u".into(),
        parent_uuid: None,
        locked,
    };
    let facts = |locked| Facts {
        filesystems: vec![crate::facts::BtrfsFilesystem {
            uuid: "7d9ef6a2-0000-4000-8000-000000000001".into(),
            label: Some("tank".into()),
            mountpoint: "/srv/tank".into(),
            devices: vec![],
            data_profile: "single".into(),
            metadata_profile: "dup".into(),
            size_bytes: 0,
            used_bytes: 0,
            subvolumes: Some(vec![
                subvolume("media", crate::facts::SubvolumeKind::Share, false),
                subvolume(snapshot, crate::facts::SubvolumeKind::Snapshot, locked),
            ]),
        }],
        ..no_devices()
    };
    let judge = |tokens: &str, locked| {
        let checked = check(
            Plan {
                steps: vec![step(argv(tokens), Effect::State, None)],
                warnings: vec![],
            },
            default_allowlist(),
            &scope(&["btrfs.subvolume.delete.snapshot", "btrfs.subvolume.restore"]),
            &facts(locked),
        );
        match checked.steps()[0].verdict() {
            StepVerdict::Allowed { rule_id, .. } => format!("allowed by {rule_id}"),
            StepVerdict::Rejected { reason } => format!("rejected: {reason}"),
        }
    };
    let delete = format!("btrfs subvolume delete -- /srv/tank/{snapshot}");
    let restore = format!("btrfs subvolume snapshot -- /srv/tank/{snapshot} /srv/tank/media-old");
    assert_eq!(
        judge(&delete, true),
        format!("rejected: /srv/tank/{snapshot} is locked in nos: unlock it before deleting it")
    );
    assert_eq!(
        judge(&delete, false),
        "allowed by btrfs.subvolume.delete.snapshot"
    );
    assert_eq!(judge(&restore, true), "allowed by btrfs.subvolume.restore");
}
