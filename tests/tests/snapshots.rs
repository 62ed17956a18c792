//! Shares and snapshots through plans (issue 18), over the HTTP API only, on the demo (the real
//! nos-agent in its private mount namespace, the real nosd and Wasm planners, a loop device):
//!
//! * a share is made by the `shares` planner, files are written into it, and the `snapshots`
//!   planner takes a read-only snapshot (a write into it fails with EROFS);
//! * the files change; a restore makes a new share whose files are the snapshot's, byte for
//!   byte, and the live share is untouched;
//! * a locked snapshot cannot be deleted (the planner refuses, and the host's check would);
//!   unlocked, it is deleted;
//! * a share with data is not deleted without its name typed; `replace-live` keeps the live
//!   state as a snapshot before the share becomes the snapshot's.
//!
//! Needs root, loop devices, btrfs-progs, unshare and nsenter; otherwise a named SKIP.

use nos_tests::admin::{Admin, in_ns, pool_labelled, sha256_in_ns, start_demo, write_file};
use nos_tests::demo::Demo;
use serde_json::{Value, json};

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn snapshots(admin: &mut Admin, uuid: &str, share: &str) -> Vec<Value> {
    let reply = admin
        .api
        .get(&format!("/api/v1/pools/{uuid}/shares/{share}/snapshots"));
    assert_eq!(reply.status, 200, "{}", reply.raw);
    reply.body["snapshots"]
        .as_array()
        .expect("snapshots")
        .clone()
}

/// Waits into the next second: snapshot names carry the second they are taken in.
fn next_second() {
    std::thread::sleep(std::time::Duration::from_millis(1100));
}

fn fails_in_ns(demo: &Demo, script: &str) -> String {
    let output = demo.in_agent_ns(&["sh", "-c", script]);
    assert!(!output.status.success(), "{script} succeeded");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn shares_snapshots_restore_and_locks_through_plans() {
    let Some((_serial, demo, mut admin)) = start_demo(
        "shares_snapshots_restore_and_locks_through_plans",
        &SERIAL,
        1,
    ) else {
        return;
    };
    let disk = demo.loops()[0].clone();
    admin.run(
        &demo,
        "btrfs-pool",
        json!({"devices": [disk], "label": "tank", "mountpoint": "/srv/tank",
               "data_profile": "single", "metadata_profile": "dup", "mount_options": ["noatime"]}),
    );
    let uuid = pool_labelled(&admin.pools(), "tank")["uuid"]
        .as_str()
        .expect("uuid")
        .to_owned();
    admin.run(
        &demo,
        "shares",
        json!({"action": "create", "pool": "/srv/tank", "name": "media"}),
    );
    let before = write_file(&demo, "/srv/tank/media/film.bin", 8);
    in_ns(
        &demo,
        &["sh", "-c", "echo first > /srv/tank/media/note.txt"],
    );

    let shares = admin.api.get(&format!("/api/v1/pools/{uuid}/shares"));
    assert_eq!(shares.status, 200, "{}", shares.raw);
    assert_eq!(shares.body["shares"][0]["name"], "media", "{}", shares.raw);
    assert_eq!(shares.body["shares"][0]["snapshots"], 0, "{}", shares.raw);

    // A read-only snapshot: nothing can be written into it.
    admin.run(
        &demo,
        "snapshots",
        json!({"action": "take", "pool": "/srv/tank", "share": "media"}),
    );
    let taken = snapshots(&mut admin, &uuid, "media");
    assert_eq!(taken.len(), 1, "{taken:#?}");
    let name = taken[0]["name"].as_str().expect("name").to_owned();
    let path = taken[0]["path"].as_str().expect("path").to_owned();
    assert_eq!(path, format!(".snapshots/media/{name}"));
    let denied = fails_in_ns(&demo, &format!("echo x > /srv/tank/{path}/note.txt"));
    assert!(denied.contains("Read-only file system"), "{denied}");

    // The live share changes; a restore brings the snapshot's files back as a new share.
    let after = write_file(&demo, "/srv/tank/media/film.bin", 8);
    assert_ne!(before, after);
    in_ns(&demo, &["rm", "/srv/tank/media/note.txt"]);
    admin.run(
        &demo,
        "snapshots",
        json!({"action": "restore", "pool": "/srv/tank", "share": "media", "name": name}),
    );
    let restored = format!("/srv/tank/media-{name}");
    assert_eq!(sha256_in_ns(&demo, &format!("{restored}/film.bin")), before);
    assert_eq!(
        in_ns(&demo, &["cat", &format!("{restored}/note.txt")]),
        "first\n"
    );
    assert_eq!(sha256_in_ns(&demo, "/srv/tank/media/film.bin"), after);
    in_ns(
        &demo,
        &["sh", "-c", &format!("echo writable > {restored}/new.txt")],
    );

    // Locked, it is kept: the planner refuses to delete it.
    let lock = admin.api.post(
        &format!("/api/v1/pools/{uuid}/snapshots/lock"),
        json!({"path": path, "locked": true}),
    );
    assert_eq!(lock.status, 200, "{}", lock.raw);
    assert_eq!(snapshots(&mut admin, &uuid, "media")[0]["locked"], true);
    let delete = json!({"action": "delete", "pool": "/srv/tank", "share": "media", "name": name});
    let refused = admin.api.post(
        "/api/v1/plans",
        json!({"plugin": "snapshots", "input": delete}),
    );
    assert_eq!(refused.status, 422, "{}", refused.raw);
    assert!(refused.raw.contains("locked"), "{}", refused.raw);
    let unknown = admin.api.post(
        &format!("/api/v1/pools/{uuid}/snapshots/lock"),
        json!({"path": "media", "locked": true}),
    );
    assert_eq!(
        unknown.status, 404,
        "a share is no snapshot: {}",
        unknown.raw
    );

    // The share with data is not deleted without its name.
    let plan = admin.plan(
        "shares",
        json!({"action": "delete", "pool": "/srv/tank", "name": "media"}),
    );
    assert_eq!(plan["confirmation"], "media", "{plan:#}");
    let wrong = admin.apply(&plan, "");
    assert_eq!(wrong.status, 400, "{}", wrong.raw);
    assert_eq!(sha256_in_ns(&demo, "/srv/tank/media/film.bin"), after);

    // replace-live: the live state is snapshotted first, then the share is the snapshot's.
    next_second();
    let replace = admin.run(
        &demo,
        "snapshots",
        json!({"action": "replace-live", "pool": "/srv/tank", "share": "media", "name": name}),
    );
    assert_eq!(replace["confirmation"], "media", "{replace:#}");
    assert_eq!(sha256_in_ns(&demo, "/srv/tank/media/film.bin"), before);
    let listed = snapshots(&mut admin, &uuid, "media");
    let kept = listed
        .iter()
        .find(|s| s["tag"] == "replaced")
        .unwrap_or_else(|| panic!("no snapshot of the live state: {listed:#?}"));
    let kept_path = kept["path"].as_str().expect("path");
    assert_eq!(
        sha256_in_ns(&demo, &format!("/srv/tank/{kept_path}/film.bin")),
        after
    );

    // Unlocked (right after a login: the re-authentication is recent), it is deleted.
    let unlock = admin.api.post(
        &format!("/api/v1/pools/{uuid}/snapshots/lock"),
        json!({"path": path, "locked": false}),
    );
    assert_eq!(unlock.status, 200, "{}", unlock.raw);
    admin.run(&demo, "snapshots", delete);
    let left: Vec<Value> = snapshots(&mut admin, &uuid, "media");
    assert!(left.iter().all(|s| s["name"] != name.as_str()), "{left:#?}");
    let gone = demo.in_agent_ns(&["test", "-e", &format!("/srv/tank/{path}")]);
    assert!(!gone.status.success(), "{path} still exists");
}
