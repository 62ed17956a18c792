//! The life of a pool after it was made (issue 14), through the HTTP API only, on the demo
//! (`scripts/demo`: the real nos-agent in its private mount namespace, the real nosd and Wasm
//! planners, loop devices): every change is a plan an admin applies, and after each job the
//! real state is read from the kernel, blkid and the managed fstab.
//!
//! * A raid1 on three disks loses one while unmounted (its loop device is detached, as
//!   btrfs-progs' `017-fi-show-missing` does): nos shows it `degraded` with the missing devid;
//!   the confirmed degraded mount, the replacement of the missing devid by a new disk and the
//!   soft profile repair run through plans; health is `ok` again, no chunk is left `single`,
//!   and both the file written before and the one written while degraded read back intact.
//! * Export keeps the data and makes the pool importable (nos forgets it); import mounts it at
//!   a new place with its fstab entry; a filesystem made outside nos is imported the same way;
//!   destroy leaves blank disks.
//!
//! Needs root, loop devices, btrfs-progs, unshare and nsenter; otherwise a named SKIP.

use std::process::Command;

use nos_tests::admin::{fstype_of, in_ns, pool_labelled, sha256_in_ns, start_demo, write_file};
use nos_tests::demo::Demo;
use serde_json::json;

/// One test at a time: a plan is stale when any block device changed, and the other test's
/// loop devices are block devices too.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn fstab(demo: &Demo) -> String {
    std::fs::read_to_string(demo.state_dir().join("etc/fstab")).expect("the demo's fstab")
}

#[test]
fn degraded_raid1_is_repaired_through_plans() {
    let Some((_serial, demo, mut admin)) =
        start_demo("degraded_raid1_is_repaired_through_plans", &SERIAL, 4)
    else {
        return;
    };
    let loops = demo.loops();
    let [a, b, c, d] = [&loops[0], &loops[1], &loops[2], &loops[3]];

    admin.run(
        &demo,
        "btrfs-pool",
        json!({"devices": [a, b, c], "label": "tank", "mountpoint": "/srv/tank",
               "data_profile": "raid1", "metadata_profile": "raid1", "mount_options": ["noatime"]}),
    );
    let known = write_file(&demo, "/srv/tank/known.bin", 48);
    // Scrubbed through nos (a job): a new pool is not yet checked.
    let scrub = json!({"action": "scrub-start", "pool": "/srv/tank"});
    admin.run(&demo, "btrfs-maintenance", scrub.clone());
    let healthy = pool_labelled(&admin.pools(), "tank");
    assert!(healthy["last_scrub"].is_object(), "{healthy:#}");
    assert_eq!(healthy["state"], "mounted", "{healthy:#}");
    assert_eq!(healthy["health"], "ok", "{healthy:#}");
    let uuid = healthy["uuid"].as_str().expect("uuid").to_owned();
    let lost_devid = healthy["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|member| member["path"] == c.as_str())
        .unwrap_or_else(|| panic!("{c} is no member: {healthy:#}"))["devid"]
        .as_u64()
        .unwrap();

    // Unmounted through nos: registered, not mounted, with the input of its mount plan.
    admin.run(
        &demo,
        "btrfs-lifecycle",
        json!({"action": "unmount", "pool": "/srv/tank"}),
    );
    let unmounted = pool_labelled(&admin.pools(), "tank");
    assert_eq!(unmounted["state"], "not-mounted", "{unmounted:#}");
    assert_eq!(
        unmounted["mount_input"],
        json!({"uuid": uuid, "mountpoint": "/srv/tank"}),
        "{unmounted:#}"
    );
    assert!(fstab(&demo).contains(&uuid), "{}", fstab(&demo));

    // The disk dies: its loop device goes away.
    let detach = Command::new("losetup").args(["-d", c]).status().unwrap();
    assert!(detach.success(), "losetup -d {c}");
    let degraded = pool_labelled(&admin.pools(), "tank");
    assert_eq!(degraded["state"], "members-missing", "{degraded:#}");
    assert_eq!(degraded["health"], "degraded", "{degraded:#}");
    let missing: Vec<u64> = degraded["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|member| member["missing"] == true)
        .map(|member| member["devid"].as_u64().unwrap())
        .collect();
    assert_eq!(missing, [lost_devid], "{degraded:#}");

    // A plain mount is no way around the confirmation: the planner offers none for a pool
    // with a missing member that the kernel would accept, and mount.btrfs takes no `degraded`.
    let sneaky = admin.api.post(
        "/api/v1/plans",
        json!({"plugin": "btrfs-lifecycle", "input": {"action": "mount", "pool": uuid,
               "mountpoint": "/srv/tank", "mount_options": ["degraded"]}}),
    );
    assert_ne!(sneaky.status, 200, "{}", sneaky.raw);

    // The repair, each step a plan: degraded read-write (confirmed by the label), ...
    let mount = admin.run(&demo,
        "btrfs-lifecycle",
        json!({"action": "mount-degraded", "pool": uuid, "mountpoint": "/srv/tank", "read_write": true}),
    );
    assert_eq!(mount["confirmation"], "tank", "{mount:#}");
    let options = in_ns(&demo, &["findmnt", "-n", "-o", "OPTIONS", "/srv/tank"]);
    assert!(
        options.contains("degraded") && options.contains("rw"),
        "{options}"
    );
    assert!(
        !fstab(&demo).contains("degraded"),
        "never at boot: {}",
        fstab(&demo)
    );
    // New chunks written while degraded have no second copy.
    let written_degraded = write_file(&demo, "/srv/tank/while-degraded.bin", 16);
    // ... the missing devid replaced by a new disk, ...
    admin.run(
        &demo,
        "btrfs-devices",
        json!({"action": "replace", "pool": "/srv/tank", "devid": lost_devid, "new_device": d}),
    );
    // ... and the chunks written while degraded converted back.
    admin.run(
        &demo,
        "btrfs-maintenance",
        json!({"action": "repair-profiles", "pool": "/srv/tank"}),
    );

    let show = in_ns(&demo, &["btrfs", "filesystem", "show", "/srv/tank"]);
    assert!(!show.to_lowercase().contains("missing"), "{show}");
    assert!(show.contains(d.as_str()), "{show}");
    let df = in_ns(&demo, &["btrfs", "filesystem", "df", "/srv/tank"]);
    for line in df.lines().filter(|line| !line.starts_with("GlobalReserve")) {
        assert!(
            line.contains("RAID1"),
            "a chunk class not raid1: {line}\n{df}"
        );
    }
    // A scrub reads every copy: all of them are good.
    admin.run(&demo, "btrfs-maintenance", scrub);
    let repaired = pool_labelled(&admin.pools(), "tank");
    assert_eq!(repaired["state"], "mounted", "{repaired:#}");
    assert_eq!(repaired["health"], "ok", "{repaired:#}");
    assert!(
        repaired["members"]
            .as_array()
            .unwrap()
            .iter()
            .any(|member| member["devid"] == lost_devid && member["path"] == d.as_str()),
        "{repaired:#}"
    );
    assert_eq!(sha256_in_ns(&demo, "/srv/tank/known.bin"), known);
    assert_eq!(
        sha256_in_ns(&demo, "/srv/tank/while-degraded.bin"),
        written_degraded
    );
}

#[test]
fn export_import_and_destroy_keep_or_wipe_exactly_what_they_say() {
    let Some((_serial, demo, mut admin)) = start_demo(
        "export_import_and_destroy_keep_or_wipe_exactly_what_they_say",
        &SERIAL,
        3,
    ) else {
        return;
    };
    let loops = demo.loops();
    let [a, b, c] = [&loops[0], &loops[1], &loops[2]];

    admin.run(
        &demo,
        "btrfs-pool",
        json!({"devices": [a, b], "label": "moved", "mountpoint": "/srv/moved",
               "mount_options": ["noatime"]}),
    );
    let digest = write_file(&demo, "/srv/moved/photos.bin", 8);
    let uuid = pool_labelled(&admin.pools(), "moved")["uuid"]
        .as_str()
        .unwrap()
        .to_owned();

    // Export: unmounted, entry and directory gone, forgotten by nos, importable, data kept.
    admin.run(
        &demo,
        "btrfs-lifecycle",
        json!({"action": "export", "pool": "/srv/moved"}),
    );
    assert!(!fstab(&demo).contains(&uuid), "{}", fstab(&demo));
    let after_export = admin.pools();
    assert!(
        after_export["pools"]
            .as_array()
            .unwrap()
            .iter()
            .all(|pool| pool["uuid"] != uuid.as_str()),
        "{after_export:#}"
    );
    assert!(
        after_export["importable"]
            .as_array()
            .unwrap()
            .iter()
            .any(|fs| fs["uuid"] == uuid.as_str()),
        "{after_export:#}"
    );
    assert_eq!(fstype_of(a).as_deref(), Some("btrfs"));

    // Import at a new place: mounted, at boot too (nofail), registered again, data intact.
    admin.run(
        &demo,
        "btrfs-lifecycle",
        json!({"action": "import", "pool": uuid, "mountpoint": "/srv/back"}),
    );
    let table = fstab(&demo);
    let entry = table
        .lines()
        .find(|line| line.contains(&uuid))
        .unwrap_or_else(|| panic!("no fstab entry for {uuid}: {table}"));
    assert!(
        entry.contains("/srv/back") && entry.contains("nofail"),
        "{entry}"
    );
    let back = pool_labelled(&admin.pools(), "moved");
    assert_eq!(back["mountpoint"], "/srv/back", "{back:#}");
    assert_eq!(back["state"], "mounted", "{back:#}");
    assert_eq!(sha256_in_ns(&demo, "/srv/back/photos.bin"), digest);

    // A filesystem made outside nos is importable and imported the same way.
    let mkfs = Command::new("mkfs.btrfs")
        .args(["-q", "-L", "outside", c])
        .output()
        .unwrap();
    assert!(
        mkfs.status.success(),
        "mkfs.btrfs {c}: {}",
        String::from_utf8_lossy(&mkfs.stderr)
    );
    let seen = admin.pools();
    let outside = seen["importable"]
        .as_array()
        .unwrap()
        .iter()
        .find(|fs| fs["label"] == "outside")
        .unwrap_or_else(|| panic!("the pool made outside nos is not importable: {seen:#}"))
        .clone();
    admin.run(
        &demo,
        "btrfs-lifecycle",
        json!({"action": "import", "pool": outside["uuid"], "mountpoint": "/srv/outside"}),
    );
    assert_eq!(pool_labelled(&admin.pools(), "outside")["state"], "mounted");

    // Destroy: refused while mounted; once unmounted, confirmed by the label, the disks are
    // blank and the pool is gone from nos.
    let refused = admin.api.post(
        "/api/v1/plans",
        json!({"plugin": "btrfs-lifecycle", "input": {"action": "destroy", "pool": uuid}}),
    );
    assert!(refused.raw.contains("unmount it first"), "{}", refused.raw);
    admin.run(
        &demo,
        "btrfs-lifecycle",
        json!({"action": "unmount", "pool": "/srv/back"}),
    );
    let destroy = admin.run(
        &demo,
        "btrfs-lifecycle",
        json!({"action": "destroy", "pool": uuid, "mountpoint": "/srv/back"}),
    );
    assert_eq!(destroy["confirmation"], "moved", "{destroy:#}");
    for device in [a, b] {
        assert_eq!(fstype_of(device), None, "{device} still holds a signature");
    }
    assert!(!fstab(&demo).contains(&uuid), "{}", fstab(&demo));
    let after = admin.pools();
    assert!(
        after["pools"]
            .as_array()
            .unwrap()
            .iter()
            .all(|pool| pool["uuid"] != uuid.as_str()),
        "{after:#}"
    );
    let facts = admin.facts();
    for device in [a, b] {
        let state = facts["block_devices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|entry| entry["path"] == device.as_str())
            .map(|entry| entry["state"].clone());
        assert_eq!(state, Some(json!("blank")), "{device}: {facts:#}");
    }
}

/// A reboot (both daemons stopped, the agent's namespace and its mounts gone, the loop devices
/// detached and forgotten by btrfs, then everything started again on the same state) with one
/// pool's only disk absent: nothing blocks, nos shows the registered pool that is present as
/// not mounted with the input of its mount plan and the absent one as missing its member; the
/// fstab entries carry `nofail`; the mount plan (which scans the members first, as udev would)
/// brings the pool back with its data.
#[test]
fn after_a_reboot_registered_pools_come_back_through_their_mount_plan() {
    let Some((_serial, mut demo, mut admin)) = start_demo(
        "after_a_reboot_registered_pools_come_back_through_their_mount_plan",
        &SERIAL,
        3,
    ) else {
        return;
    };
    let loops = demo.loops();
    let [a, b, c] = [&loops[0], &loops[1], &loops[2]];
    admin.run(
        &demo,
        "btrfs-pool",
        json!({"devices": [a, b], "label": "keep", "mountpoint": "/srv/keep",
               "mount_options": ["noatime"]}),
    );
    admin.run(
        &demo,
        "btrfs-pool",
        json!({"devices": [c], "label": "gone", "mountpoint": "/srv/gone",
               "mount_options": ["noatime"]}),
    );
    let digest = write_file(&demo, "/srv/keep/known.bin", 8);
    let before = admin.pools();
    let keep_uuid = pool_labelled(&before, "keep")["uuid"].clone();

    // The third disk does not come back.
    demo.reboot(2);
    let table = fstab(&demo);
    let entries: Vec<&str> = table
        .lines()
        .filter(|line| line.starts_with("UUID="))
        .collect();
    assert_eq!(entries.len(), 2, "{table}");
    for entry in entries {
        assert!(
            entry.contains("nofail") && entry.contains("x-systemd.device-timeout="),
            "{entry}"
        );
    }
    assert!(
        demo.agent_mounts()
            .iter()
            .all(|(_, fstype, _)| fstype != "btrfs"),
        "a pool survived the reboot mounted: {:?}",
        demo.agent_mounts()
    );
    // The session is nosd's persisted state; it survives like the registry does.
    let after = admin.pools();
    let keep = pool_labelled(&after, "keep");
    assert_eq!(keep["state"], "not-mounted", "{keep:#}");
    assert_eq!(keep["mount_input"]["uuid"], keep_uuid, "{keep:#}");
    let gone = pool_labelled(&after, "gone");
    assert_eq!(gone["state"], "members-missing", "{gone:#}");
    assert_eq!(gone["health"], "degraded", "{gone:#}");

    let mount_input = &keep["mount_input"];
    admin.run(&demo,
        "btrfs-lifecycle",
        json!({"action": "mount", "pool": mount_input["uuid"], "mountpoint": mount_input["mountpoint"]}),
    );
    let back = pool_labelled(&admin.pools(), "keep");
    assert_eq!(back["state"], "mounted", "{back:#}");
    assert_eq!(sha256_in_ns(&demo, "/srv/keep/known.bin"), digest);
}
