use super::*;
use expect_test::{Expect, expect};
use nos_plugin_sdk::testing::{blank_disk, unsafe_scenarios};

fn facts() -> Facts {
    let mut block_devices = vec![blank_disk("sdb", 4000 << 30)];
    for scenario in unsafe_scenarios() {
        block_devices.extend(scenario.devices);
    }
    Facts {
        block_devices,
        filesystems: vec![],
        fresh_uuids: vec![],
        now_unix_seconds: 1_800_000_000,
    }
}

/// Each step with its title, then the warnings.
fn check(device: &str, expect: Expect) {
    let input = format!(r#"{{"device": "{device}"}}"#);
    let actual = match WipePlanner::plan(&facts(), &input) {
        Ok(plan) => {
            let titles: String = plan
                .steps
                .iter()
                .map(|s| format!("{}: {}\n", s.id, s.title))
                .collect();
            titles + &plan.render_lines()
        }
        Err(err) => format!("error: {err:?}\n"),
    };
    expect.assert_eq(&actual);
}

#[test]
fn gpt_disk_with_an_ext4_partition_partition_first() {
    check(
        "/dev/sdp",
        expect![[r#"
            wipe-sdp1: Erase the ext4 signature 'data' (3.9 TiB) on partition /dev/sdp1
            wipe-sdp: Erase the partition table (1 partition) of type gpt and any other signature on /dev/sdp (3.9 TiB, TESTDISK, SN-sdp)
            wipe-sdp1 [destructive] wipefs --all -- /dev/sdp1 (confirm: SN-sdp)
            wipe-sdp [destructive] wipefs --all -- /dev/sdp (confirm: SN-sdp)
            warning: partition /dev/sdp1: the ext4 signature 'data' (3.9 TiB) is destroyed
            warning: /dev/sdp (3.9 TiB, TESTDISK, SN-sdp): the partition table (1 partition) of type gpt and any other signature is destroyed; the data on it cannot be recovered
        "#]],
    );
}

#[test]
fn by_id_and_kname_name_the_same_disk() {
    check(
        "sdu",
        expect![[r#"
            wipe-sdu: Erase the ext4 signature (3.9 TiB) and any other signature on /dev/sdu (3.9 TiB, TESTDISK, SN-sdu)
            wipe-sdu [destructive] wipefs --all -- /dev/sdu (confirm: SN-sdu)
            warning: /dev/sdu (3.9 TiB, TESTDISK, SN-sdu): the ext4 signature (3.9 TiB) and any other signature is destroyed; the data on it cannot be recovered
        "#]],
    );
    check(
        "/dev/disk/by-id/ata-DISK-sdp-part1",
        expect![[r#"
            wipe-sdp1: Erase the ext4 signature 'data' (3.9 TiB) and any other signature on /dev/sdp1 (3.9 TiB)
            wipe-sdp1 [destructive] wipefs --all -- /dev/sdp1 (confirm: SN-sdp)
            warning: /dev/sdp1 (3.9 TiB): the ext4 signature 'data' (3.9 TiB) and any other signature is destroyed; the data on it cannot be recovered
        "#]],
    );
}

#[test]
fn luks_swap_and_an_unmounted_btrfs_member_are_wiped() {
    check(
        "sdr",
        expect![[r#"
            wipe-sdr1: Erase the crypto_LUKS signature (3.9 TiB) on partition /dev/sdr1
            wipe-sdr: Erase the partition table (1 partition) of type gpt and any other signature on /dev/sdr (3.9 TiB, TESTDISK, SN-sdr)
            wipe-sdr1 [destructive] wipefs --all -- /dev/sdr1 (confirm: SN-sdr)
            wipe-sdr [destructive] wipefs --all -- /dev/sdr (confirm: SN-sdr)
            warning: partition /dev/sdr1: the crypto_LUKS signature (3.9 TiB) is destroyed
            warning: /dev/sdr (3.9 TiB, TESTDISK, SN-sdr): the partition table (1 partition) of type gpt and any other signature is destroyed; the data on it cannot be recovered
        "#]],
    );
    check(
        "sds",
        expect![[r#"
            wipe-sds: Erase the swap signature (3.9 TiB) and any other signature on /dev/sds (3.9 TiB, TESTDISK, SN-sds)
            wipe-sds [destructive] wipefs --all -- /dev/sds (confirm: SN-sds)
            warning: /dev/sds (3.9 TiB, TESTDISK, SN-sds): the swap signature (3.9 TiB) and any other signature is destroyed; the data on it cannot be recovered
        "#]],
    );
    check(
        "sdt",
        expect![[r#"
            wipe-sdt: Erase the btrfs signature (3.9 TiB) and any other signature on /dev/sdt (3.9 TiB, TESTDISK, SN-sdt)
            wipe-sdt [destructive] wipefs --all -- /dev/sdt (confirm: SN-sdt)
            warning: /dev/sdt (3.9 TiB, TESTDISK, SN-sdt): the btrfs signature (3.9 TiB) and any other signature is destroyed; the data on it cannot be recovered
        "#]],
    );
}

#[test]
fn refusals() {
    let cases = [
        ("sdq", "/dev/sdq1 is in use: mounted at /data"),
        ("sdq1", "/dev/sdq1 is in use: mounted at /data"),
        ("sdb", "/dev/sdb is blank: there is nothing to wipe"),
        ("sdz", "device sdz is not in the facts"),
    ];
    for (device, needle) in cases {
        let input = format!(r#"{{"device": "{device}"}}"#);
        let err = WipePlanner::plan(&facts(), &input).expect_err(&input);
        assert!(
            format!("{err:?}").contains(needle),
            "{device}: {err:?} lacks {needle:?}"
        );
    }
    let err =
        WipePlanner::plan(&facts(), r#"{"device": "sdp", "force": true}"#).expect_err("force");
    assert!(matches!(err, PlanError::InvalidInput(_)), "{err:?}");
}

#[test]
fn sizes_in_human_units() {
    assert_eq!(human_bytes(512), "512 B");
    assert_eq!(human_bytes(512 << 20), "512.0 MiB");
    assert_eq!(human_bytes(4000 << 30), "3.9 TiB");
    assert_eq!(human_bytes(1536 << 30), "1.5 TiB");
}

#[test]
fn deterministic() {
    let input = r#"{"device": "sdp"}"#;
    assert_eq!(
        WipePlanner::plan(&facts(), input),
        WipePlanner::plan(&facts(), input)
    );
}
