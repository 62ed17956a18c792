use super::*;
use expect_test::{Expect, expect};
use nos_plugin_sdk::DeviceState;

/// The fixture facts: pool `pool` (raid1, sdf + sdg) mounted at /srv/pool, `solo` at /srv/solo.
fn mounted() -> Facts {
    nos_plugin_sdk::testing::classified_fixture(include_str!(
        "../../../host/tests/data/facts/fixture.json"
    ))
    .unwrap()
}

/// The same machine with `pool` unmounted and, when `lost` is set, its member sdg gone.
fn unmounted_pool(lost: bool) -> Facts {
    let mut facts = mounted();
    facts.filesystems.retain(|fs| fs.mountpoint != "/srv/pool");
    facts.block_devices.retain(|d| !(lost && d.kname == "sdg"));
    for device in &mut facts.block_devices {
        if device.label.as_deref() == Some("pool") {
            device.mountpoints.clear();
            device.state = DeviceState::HoldsData;
            device.state_reasons = vec!["member of unmounted btrfs 'pool'".into()];
        }
    }
    facts
}

fn check(facts: &Facts, input: &str, expect: Expect) {
    let actual = match LifecyclePlanner::plan(facts, input) {
        Ok(plan) => plan.render_lines(),
        Err(err) => format!("error: {err:?}\n"),
    };
    expect.assert_eq(&actual);
}

#[test]
fn mount_and_import_an_unmounted_pool() {
    let facts = unmounted_pool(false);
    check(
        &facts,
        r#"{"action": "mount", "pool": "0b3c1d2e-1111-4000-8000-000000000001", "mountpoint": "/srv/pool"}"#,
        expect![[r#"
            scan [state] btrfs device scan /dev/sdf /dev/sdg
            mount-dir [state] ensure mount dir /srv/pool (rollback: remove mount dir /srv/pool)
            mount [state] mount -t btrfs -o compress=zstd:3,noatime /dev/sdf /srv/pool (rollback: umount /srv/pool)
            verify [read] btrfs filesystem show /dev/sdf
        "#]],
    );
    check(
        &facts,
        r#"{"action": "import", "pool": "pool", "mountpoint": "/mnt/moved", "mount_options": ["noatime"]}"#,
        expect![[r#"
            scan [state] btrfs device scan /dev/sdf /dev/sdg
            mount-dir [state] ensure mount dir /mnt/moved (rollback: remove mount dir /mnt/moved)
            mount [state] mount -t btrfs -o noatime /dev/sdf /mnt/moved (rollback: umount /mnt/moved)
            fstab [state] ensure fstab UUID=0b3c1d2e-1111-4000-8000-000000000001 /mnt/moved btrfs noatime (rollback: remove fstab UUID=0b3c1d2e-1111-4000-8000-000000000001 /mnt/moved btrfs noatime)
            verify [read] btrfs filesystem show /dev/sdf
        "#]],
    );
}

#[test]
fn mount_degraded_is_confirmed_and_read_only_by_default() {
    let facts = unmounted_pool(true);
    check(
        &facts,
        r#"{"action": "mount-degraded", "pool": "pool", "mountpoint": "/srv/pool"}"#,
        expect![[r#"
            scan [state] btrfs device scan /dev/sdf
            mount-dir [state] ensure mount dir /srv/pool (rollback: remove mount dir /srv/pool)
            mount-degraded [destructive] mount -t btrfs -o degraded -o ro /dev/sdf /srv/pool (confirm: pool)
            verify [read] btrfs filesystem show /dev/sdf
            warning: read-only: the data can be copied off; replacing the missing device needs a read-write degraded mount
        "#]],
    );
    check(
        &facts,
        r#"{"action": "mount-degraded", "pool": "pool", "mountpoint": "/srv/pool", "read_write": true}"#,
        expect![[r#"
            scan [state] btrfs device scan /dev/sdf
            mount-dir [state] ensure mount dir /srv/pool (rollback: remove mount dir /srv/pool)
            mount-degraded [destructive] mount -t btrfs -o degraded -o rw /dev/sdf /srv/pool (confirm: pool)
            verify [read] btrfs filesystem show /dev/sdf
            warning: read-write while degraded: new data is written without its second copy until the missing device is replaced (btrfs-devices replace) or removed, and the profiles are repaired (btrfs-maintenance repair-profiles)
        "#]],
    );
}

#[test]
fn export_and_destroy() {
    check(
        &mounted(),
        r#"{"action": "export", "pool": "/srv/pool"}"#,
        expect![[r#"
            umount [state] umount /srv/pool
            fstab [state] remove fstab UUID=0b3c1d2e-1111-4000-8000-000000000001 /srv/pool btrfs noatime
            mount-dir [state] remove mount dir /srv/pool
            warning: the data stays on the disks; the pool shows as importable until it is imported again or its disks are wiped
        "#]],
    );
    check(
        &unmounted_pool(false),
        r#"{"action": "destroy", "pool": "pool", "mountpoint": "/srv/pool"}"#,
        expect![[r#"
            fstab [state] remove fstab UUID=0b3c1d2e-1111-4000-8000-000000000001 /srv/pool btrfs noatime
            mount-dir [state] remove mount dir /srv/pool
            wipe-sdf [destructive] wipefs --all /dev/sdf (confirm: pool)
            wipe-sdg [destructive] wipefs --all /dev/sdg (confirm: pool)
            warning: every file in pool pool is lost: 2 device(s) are wiped
        "#]],
    );
}

#[test]
fn refusals() {
    let inputs = [
        // Mounted pools are not mounted again, destroyed or mounted degraded.
        (
            mounted(),
            r#"{"action": "mount", "pool": "pool", "mountpoint": "/srv/pool"}"#,
        ),
        (mounted(), r#"{"action": "destroy", "pool": "pool"}"#),
        (
            mounted(),
            r#"{"action": "mount-degraded", "pool": "/srv/solo", "mountpoint": "/srv/x"}"#,
        ),
        // Nothing on the disks has that UUID.
        (
            unmounted_pool(false),
            r#"{"action": "mount", "pool": "0b3c1d2e-9999-4000-8000-000000000009", "mountpoint": "/srv/x"}"#,
        ),
        // A mount point outside the roots, or taken by another pool.
        (
            unmounted_pool(false),
            r#"{"action": "mount", "pool": "pool", "mountpoint": "/etc"}"#,
        ),
        (
            unmounted_pool(false),
            r#"{"action": "import", "pool": "pool", "mountpoint": "/srv/solo"}"#,
        ),
        // `degraded` only through mount-degraded.
        (
            unmounted_pool(true),
            r#"{"action": "mount", "pool": "pool", "mountpoint": "/srv/pool", "mount_options": ["degraded"]}"#,
        ),
        (
            unmounted_pool(false),
            r#"{"action": "export", "pool": "pool"}"#,
        ),
        (
            unmounted_pool(false),
            r#"{"action": "unmount", "pool": "pool"}"#,
        ),
        (
            unmounted_pool(false),
            r#"{"action": "destroy", "pool": "pool", "force": true}"#,
        ),
    ];
    let out: String = inputs
        .iter()
        .map(
            |(facts, input)| match LifecyclePlanner::plan(facts, input) {
                Ok(plan) => format!("unexpected plan:\n{}", plan.render_lines()),
                Err(err) => format!("{err:?}\n"),
            },
        )
        .collect();
    expect![[r#"
        PlanError::Refused("pool pool is mounted at /srv/pool")
        PlanError::Refused("pool pool is mounted at /srv/pool: unmount it first (action unmount), so that no member is in use")
        PlanError::Refused("pool /srv/solo is mounted at /srv/solo")
        PlanError::Refused("no device holds a btrfs filesystem with UUID or label 0b3c1d2e-9999-4000-8000-000000000009")
        PlanError::InvalidInput("mountpoint \"/etc\" must be directly under /srv/ or /mnt/")
        PlanError::Refused("/srv/solo is where pool solo is mounted")
        PlanError::InvalidInput("mount option \"degraded\": a pool is mounted degraded only by the confirmed degraded mount, and an fstab entry never boots it so")
        PlanError::InvalidInput("pool pool is not mounted: give the mount point it belongs at")
        PlanError::Refused("no mounted btrfs pool pool")
        PlanError::InvalidInput("input: unknown field `force`, expected `pool` or `mountpoint`")
    "#]].assert_eq(&out);
}
