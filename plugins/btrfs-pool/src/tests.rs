use super::*;
use expect_test::{Expect, expect};
use nos_plugin_sdk::testing::{blank_disk, tiny_disk, unsafe_scenarios};
use nos_plugin_sdk::{BlockDevice, BtrfsDevice, BtrfsFilesystem, DeviceState};

const GIB: u64 = 1 << 30;

fn disk(kname: &str, size_bytes: u64, rotational: bool) -> BlockDevice {
    let mut device = blank_disk(kname, size_bytes);
    device.rotational = rotational;
    device
}

/// The host's classification of a device with a signature: it holds data, or is in use when
/// mounted.
fn holding(mut device: BlockDevice, fstype: &str) -> BlockDevice {
    device.fstype = Some(fstype.into());
    device.state = DeviceState::HoldsData;
    device.state_reasons = vec![format!("{fstype} signature")];
    device
}

fn facts() -> Facts {
    let mut sda = holding(disk("sda", 100 * GIB, false), "ext4");
    sda.mountpoints = vec!["/".into()];
    sda.state = DeviceState::InUse;
    sda.state_reasons = vec!["mounted at /".into()];
    let sde = holding(disk("sde", 500 * GIB, true), "ext4");
    let kind = |mut device: BlockDevice, device_type: &str| {
        device.device_type = device_type.into();
        device.by_id = vec![];
        device
    };
    Facts {
        block_devices: vec![
            sda,
            disk("sdb", 4000 * GIB, true),
            disk("sdc", 4000 * GIB, true),
            disk("sdd", 4000 * GIB, true),
            sde,
            disk("nvme0n1", 1000 * GIB, false),
            disk("nvme1n1", 1000 * GIB, false),
            tiny_disk(),
            kind(disk("loop0", 2 * GIB, true), "loop"),
            kind(disk("loop1", 2 * GIB, true), "loop"),
            kind(disk("sr0", 4 * GIB, true), "rom"),
        ],
        filesystems: vec![BtrfsFilesystem {
            uuid: "0b3c1d2e-0000-4000-8000-000000000001".into(),
            label: Some("old".into()),
            mountpoint: "/srv/old".into(),
            devices: vec![BtrfsDevice {
                devid: 1,
                path: "/dev/sdf".into(),
                size_bytes: 100 * GIB,
            }],
            data_profile: "single".into(),
            metadata_profile: "dup".into(),
            size_bytes: 100 * GIB,
            used_bytes: GIB,
            subvolumes: Some(vec![]),
        }],
        fresh_uuids: vec![
            "5f0c7a8e-1b2c-4d3e-8f40-123456789abc".into(),
            "6a1d8b9f-2c3d-4e4f-9a51-23456789abcd".into(),
            "7b2e9c0a-3d4e-4f50-8b62-3456789abcde".into(),
        ],
        now_unix_seconds: 1_800_000_000,
    }
}

fn check(input: &str, expect: Expect) {
    let actual = match PoolPlanner::plan(&facts(), input) {
        Ok(plan) => plan.render_lines(),
        Err(err) => format!("error: {err:?}\n"),
    };
    expect.assert_eq(&actual);
}

#[test]
fn raid1_two_disks_defaults() {
    check(
        r#"{"devices": ["/dev/sdb", "/dev/sdc"], "label": "tank", "mountpoint": "/srv/tank"}"#,
        expect![[r#"
            mkfs [destructive] mkfs.btrfs -L tank -U 5f0c7a8e-1b2c-4d3e-8f40-123456789abc -d raid1 -m raid1 /dev/sdb /dev/sdc (confirm: tank)
            mount-dir [state] ensure mount dir /srv/tank (rollback: remove mount dir /srv/tank)
            mount [state] mount -t btrfs -o compress=zstd:3,noatime /dev/sdb /srv/tank (rollback: umount /srv/tank)
            fstab [state] ensure fstab UUID=5f0c7a8e-1b2c-4d3e-8f40-123456789abc /srv/tank btrfs compress=zstd:3,noatime (rollback: remove fstab UUID=5f0c7a8e-1b2c-4d3e-8f40-123456789abc /srv/tank btrfs compress=zstd:3,noatime)
            verify [read] btrfs filesystem show /dev/sdb
        "#]],
    );
}

#[test]
fn single_ssd_gets_ssd_options_and_single_profile() {
    check(
        r#"{"devices": ["nvme0n1"], "label": "fast", "mountpoint": "/mnt/fast"}"#,
        expect![[r#"
            mkfs [destructive] mkfs.btrfs -L fast -U 5f0c7a8e-1b2c-4d3e-8f40-123456789abc -d single -m single /dev/nvme0n1 (confirm: fast)
            mount-dir [state] ensure mount dir /mnt/fast (rollback: remove mount dir /mnt/fast)
            mount [state] mount -t btrfs -o compress=zstd:3,noatime,ssd,discard=async /dev/nvme0n1 /mnt/fast (rollback: umount /mnt/fast)
            fstab [state] ensure fstab UUID=5f0c7a8e-1b2c-4d3e-8f40-123456789abc /mnt/fast btrfs compress=zstd:3,noatime,ssd,discard=async (rollback: remove fstab UUID=5f0c7a8e-1b2c-4d3e-8f40-123456789abc /mnt/fast btrfs compress=zstd:3,noatime,ssd,discard=async)
            verify [read] btrfs filesystem show /dev/nvme0n1
        "#]],
    );
}

#[test]
fn encrypted_raid1() {
    check(
        r#"{"devices": ["/dev/sdb", "/dev/disk/by-id/ata-DISK-sdc"], "label": "vault", "mountpoint": "/srv/vault", "encrypt": true}"#,
        expect![[r#"
            key-file [state] ensure key file /etc/nos/keys/vault.key
            luks-format-sdb [destructive] cryptsetup luksFormat --type luks2 --batch-mode --key-file /etc/nos/keys/vault.key --uuid 6a1d8b9f-2c3d-4e4f-9a51-23456789abcd /dev/sdb (confirm: vault)
            luks-open-sdb [state] cryptsetup open --key-file /etc/nos/keys/vault.key /dev/sdb luks-vault-0 (rollback: cryptsetup close luks-vault-0)
            luks-format-sdc [destructive] cryptsetup luksFormat --type luks2 --batch-mode --key-file /etc/nos/keys/vault.key --uuid 7b2e9c0a-3d4e-4f50-8b62-3456789abcde /dev/sdc (confirm: vault)
            luks-open-sdc [state] cryptsetup open --key-file /etc/nos/keys/vault.key /dev/sdc luks-vault-1 (rollback: cryptsetup close luks-vault-1)
            mkfs [destructive] mkfs.btrfs -L vault -U 5f0c7a8e-1b2c-4d3e-8f40-123456789abc -d raid1 -m raid1 /dev/mapper/luks-vault-0 /dev/mapper/luks-vault-1 (confirm: vault)
            mount-dir [state] ensure mount dir /srv/vault (rollback: remove mount dir /srv/vault)
            mount [state] mount -t btrfs -o compress=zstd:3,noatime /dev/mapper/luks-vault-0 /srv/vault (rollback: umount /srv/vault)
            crypttab-sdb [state] ensure crypttab luks-vault-0 UUID=6a1d8b9f-2c3d-4e4f-9a51-23456789abcd /etc/nos/keys/vault.key luks (rollback: remove crypttab luks-vault-0 UUID=6a1d8b9f-2c3d-4e4f-9a51-23456789abcd /etc/nos/keys/vault.key luks)
            crypttab-sdc [state] ensure crypttab luks-vault-1 UUID=7b2e9c0a-3d4e-4f50-8b62-3456789abcde /etc/nos/keys/vault.key luks (rollback: remove crypttab luks-vault-1 UUID=7b2e9c0a-3d4e-4f50-8b62-3456789abcde /etc/nos/keys/vault.key luks)
            fstab [state] ensure fstab UUID=5f0c7a8e-1b2c-4d3e-8f40-123456789abc /srv/vault btrfs compress=zstd:3,noatime (rollback: remove fstab UUID=5f0c7a8e-1b2c-4d3e-8f40-123456789abc /srv/vault btrfs compress=zstd:3,noatime)
            verify [read] btrfs filesystem show /dev/mapper/luks-vault-0
        "#]],
    );
}

/// No force-like input exists: a device that holds anything is reused only through a wipe.
#[test]
fn force_is_not_an_input() {
    let input =
        r#"{"devices": ["/dev/sde"], "label": "reuse", "mountpoint": "/srv/reuse", "force": true}"#;
    let err = PoolPlanner::plan(&facts(), input).expect_err(input);
    assert!(matches!(err, PlanError::InvalidInput(_)), "{err:?}");
    assert!(!INPUT_SCHEMA.contains("force"));
}

/// The devices that once made a pool wipe data: each is refused with its reasons, by disk and
/// by partition, and a device that holds data points to the wipe planner.
#[test]
fn only_blank_devices_are_used() {
    for scenario in unsafe_scenarios() {
        let mut facts = facts();
        facts.block_devices.extend(scenario.devices.iter().cloned());
        for name in &scenario.names {
            let input = format!(
                r#"{{"devices": ["/dev/sdb", "{name}"], "label": "a", "mountpoint": "/srv/a"}}"#
            );
            let err = PoolPlanner::plan(&facts, &input).expect_err(&input);
            let PlanError::Refused(text) = &err else {
                panic!("{}: {name}: {err:?}", scenario.what);
            };
            let device = facts.device(name).expect(name);
            for reason in &device.state_reasons {
                assert!(
                    text.contains(reason.as_str()),
                    "{}: {text} lacks {reason:?}",
                    scenario.what
                );
            }
            if device.state == DeviceState::HoldsData {
                assert!(text.contains("disk-wipe"), "{}: {text}", scenario.what);
            }
            assert!(!text.contains("force"), "{text}");
        }
    }
}

#[test]
fn refusals() {
    let cases = [
        (
            r#"{"devices": ["/dev/sda"], "label": "a", "mountpoint": "/srv/a"}"#,
            "is in use (mounted at /)",
        ),
        (
            r#"{"devices": ["/dev/sde"], "label": "a", "mountpoint": "/srv/a"}"#,
            "holds a ext4 signature (ext4 signature); only a blank device is used: wipe it first with the disk-wipe planner",
        ),
        (
            r#"{"devices": ["/dev/sdtiny"], "label": "a", "mountpoint": "/srv/a"}"#,
            "less than the 1073741824",
        ),
        (
            r#"{"devices": ["/dev/sdb", "sdb"], "label": "a", "mountpoint": "/srv/a"}"#,
            "appears twice",
        ),
        (
            r#"{"devices": ["/dev/sdz"], "label": "a", "mountpoint": "/srv/a"}"#,
            "not in the facts",
        ),
        (
            r#"{"devices": ["/dev/sr0"], "label": "a", "mountpoint": "/srv/a"}"#,
            "is a rom, not a disk, partition or loop device",
        ),
        (
            r#"{"devices": ["/dev/sdb", "/dev/sdc", "/dev/sdd"], "label": "a", "mountpoint": "/srv/a", "data_profile": "raid5"}"#,
            "raid5/6 is not safe",
        ),
        (
            r#"{"devices": ["/dev/sdb", "/dev/sdc"], "label": "a", "mountpoint": "/srv/a", "metadata_profile": "raid6"}"#,
            "raid5/6 is not safe",
        ),
        (
            r#"{"devices": ["/dev/sdb"], "label": "a", "mountpoint": "/srv/a", "data_profile": "raid1"}"#,
            "needs at least 2 devices",
        ),
        (
            r#"{"devices": ["/dev/sdb"], "label": "a", "mountpoint": "/etc/a"}"#,
            "directly under /srv/ or /mnt/",
        ),
        (
            r#"{"devices": ["/dev/sdb"], "label": "a", "mountpoint": "/srv/../etc"}"#,
            "one component",
        ),
        (
            r#"{"devices": ["/dev/sdb"], "label": "-rf", "mountpoint": "/srv/a"}"#,
            "label",
        ),
        (
            r#"{"devices": ["/dev/sdb"], "label": "old", "mountpoint": "/srv/x"}"#,
            "already exists",
        ),
        (
            r#"{"devices": [], "label": "a", "mountpoint": "/srv/a"}"#,
            "1 to 16 devices",
        ),
        (
            r#"{"devices": ["/dev/sdb"], "label": "a", "mountpoint": "/srv/a", "shell": "rm -rf /"}"#,
            "unknown field",
        ),
        // Issue 14: the fstab entry would boot the pool degraded.
        (
            r#"{"devices": ["/dev/sdb"], "label": "a", "mountpoint": "/srv/a", "mount_options": ["noatime", "degraded"]}"#,
            "mounted degraded only by the confirmed degraded mount",
        ),
    ];
    for (input, needle) in cases {
        let err = PoolPlanner::plan(&facts(), input).expect_err(input);
        let text = format!("{err:?}");
        assert!(text.contains(needle), "{input}: {text} lacks {needle:?}");
    }
}

#[test]
fn no_fresh_uuid_is_refused() {
    let mut facts = facts();
    facts.fresh_uuids.clear();
    let input = r#"{"devices": ["/dev/sdb"], "label": "a", "mountpoint": "/srv/a"}"#;
    let err = PoolPlanner::plan(&facts, input).unwrap_err();
    assert_eq!(
        err,
        PlanError::Refused("this plan needs 1 fresh UUIDs, the host supplied 0".into())
    );
}

#[test]
fn deterministic() {
    let input = r#"{"devices": ["/dev/sdb", "/dev/sdc"], "label": "tank", "mountpoint": "/srv/tank", "encrypt": true}"#;
    assert_eq!(
        PoolPlanner::plan(&facts(), input),
        PoolPlanner::plan(&facts(), input)
    );
}

/// The demo and the test rigs build pools on loop devices; which device names may be used at
/// all is the allowlist's call (the demo's accepts only loop devices), not the planner's.
#[test]
fn loop_devices_make_a_pool() {
    let plan = PoolPlanner::plan(
        &facts(),
        r#"{"devices": ["/dev/loop0", "/dev/loop1"], "label": "demo", "mountpoint": "/srv/demo"}"#,
    )
    .expect("a raid1 pool on two loop devices");
    let lines = plan.render_lines();
    assert!(
        lines.contains("mkfs.btrfs")
            && lines.contains("/dev/loop0")
            && lines.contains("/dev/loop1")
            && lines.contains("raid1"),
        "{lines}"
    );
}
