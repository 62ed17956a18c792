use super::*;
use expect_test::expect;

/// A device in the shape the host lowers it to (values from the captured scenarios in
/// host/tests/data/facts/real: a 1 GiB loop disk with a GPT and one ext4 partition).
fn device(kname: &str, device_type: &str, size_bytes: u64) -> BlockDevice {
    BlockDevice {
        path: format!("/dev/{kname}"),
        kname: kname.into(),
        size_bytes,
        rotational: true,
        device_type: device_type.into(),
        fstype: None,
        label: None,
        uuid: None,
        mountpoints: vec![],
        holders: vec![],
        by_id: vec![],
    }
}

fn facts(mounted: bool, held_by_crypt: bool) -> Facts {
    let mut disk = device("loop1", "loop", 1 << 30);
    disk.holders = vec!["loop1p1".into()];
    let mut part = device("loop1p1", "part", 1_071_644_672);
    part.fstype = Some("ext4".into());
    part.label = Some("data".into());
    if mounted {
        part.mountpoints = vec!["/mnt/data".into()];
    }
    let mut devices = vec![disk, part, device("loop2", "loop", 1 << 30)];
    if held_by_crypt {
        devices[1].holders = vec!["dm-0".into()];
        devices.push(device("dm-0", "crypt", 1 << 29));
    }
    Facts {
        block_devices: devices,
        filesystems: vec![],
        fresh_uuids: vec![],
        now_unix_seconds: 0,
    }
}

fn lines(result: Result<Plan, PlanError>) -> String {
    match result {
        Ok(plan) => plan.render_lines(),
        Err(err) => format!("{err:?}"),
    }
}

#[test]
fn wipes_partitions_then_the_disk_and_says_what_is_destroyed() {
    let input = Input {
        device: "/dev/loop1".into(),
    };
    expect![[r#"
        wipe-loop1p1 [destructive] wipefs --all -- /dev/loop1p1 (confirm: loop1)
        wipe-loop1 [destructive] wipefs --all -- /dev/loop1 (confirm: loop1)
        warning: partition /dev/loop1p1: the ext4 signature 'data' (1022.0 MiB) is destroyed
        warning: /dev/loop1 (1.0 GiB): the partition table (1 partition) and any other signature is destroyed; the data on it cannot be recovered
    "#]]
    .assert_eq(&lines(plan(&facts(false, false), &input)));
}

#[test]
fn refuses_what_is_in_use() {
    let on = |device: &str, mounted, crypt| {
        lines(plan(
            &facts(mounted, crypt),
            &Input {
                device: device.into(),
            },
        ))
    };
    expect![[r#"PlanError::Refused("/dev/loop1p1 is in use: mounted at /mnt/data")"#]]
        .assert_eq(&on("loop1", true, false));
    expect![[r#"PlanError::Refused("/dev/loop1p1 is in use: held by dm-0")"#]].assert_eq(&on(
        "/dev/loop1",
        false,
        true,
    ));
    expect![[r#"PlanError::Refused("/dev/dm-0 is a crypt device, not a disk or partition")"#]]
        .assert_eq(&on("dm-0", false, true));
    expect![[r#"PlanError::Refused("no block device /dev/sdz")"#]]
        .assert_eq(&on("/dev/sdz", false, false));
}

#[test]
fn input_is_exact() {
    let err = WipePlanner::plan(
        &facts(false, false),
        r#"{"device": "loop1", "force": true}"#,
    );
    assert!(matches!(err, Err(PlanError::InvalidInput(_))), "{err:?}");
}
