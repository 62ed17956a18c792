//! A scrub that repairs (issue 14, "Scrub, device errors, health" and "Alerts"), through the
//! HTTP API only, on the demo (`scripts/demo`: the real nos-agent in its private mount
//! namespace, the real nosd and Wasm planners, loop devices), with real corruption:
//!
//! * a raid1 pool on two disks is made through `btrfs-pool`; a known file is written and its
//!   digest recorded;
//! * the pool is unmounted through `btrfs-lifecycle` (so that no cached page can hide the
//!   damage) and ONE copy of the file's first extent is overwritten on ONE disk, found as the
//!   health capture (`host/tests/data/health/real/capture.sh`, `raid1-corrupted`) finds it:
//!   `filefrag -v` gives the extent's btrfs logical address, `btrfs-map-logical` the physical
//!   offset of each mirror;
//! * the pool is mounted again through `btrfs-lifecycle` with the input `GET /pools` offers,
//!   and scrubbed through `btrfs-maintenance` (a job);
//! * `GET /pools?refresh=true` shows the scrub's corrected errors and the health's judgement of
//!   them; the alert it raised is open at once and an admin acknowledges it; the file reads back
//!   with its recorded digest.
//!
//! Not here: `scrub-cancel` and `scrub-resume`. A scrub through nos is a job that holds its
//! pool's lock until it ends, so a cancel plan for the same pool is refused as busy while the
//! scrub runs; and a scrub of these small disks ends in about a second, too soon to cancel
//! without a race.
//!
//! Needs root, loop devices, btrfs-progs (with btrfs-map-logical), e2fsprogs' filefrag, dd,
//! unshare and nsenter; otherwise a named SKIP.

use std::process::Command;
use std::time::{Duration, Instant};

use nos_tests::admin::{
    in_ns, pool_labelled, preconditions, setup_and_login, sha256_in_ns, write_file,
};
use nos_tests::demo::Demo;
use serde_json::{Value, json};

const LABEL: &str = "scrubbed";
const MOUNTPOINT: &str = "/srv/scrubbed";
const KNOWN: &str = "/srv/scrubbed/known.bin";
/// How much of one copy is overwritten: 64 KiB, 16 data blocks of 4 KiB, as the capture does.
const CORRUPT_BYTES: u64 = 64 * 1024;
/// filefrag prints btrfs logical addresses in blocks of this many bytes.
const FILEFRAG_BLOCK: u64 = 4096;
/// Bounds the wait for the refreshed report to show the finished scrub.
const REPORT_TIMEOUT: Duration = Duration::from_secs(60);

/// One mirror of a logical range: where `btrfs-map-logical` says its bytes are.
#[derive(Debug)]
struct Mirror {
    physical: u64,
    device: String,
}

/// The btrfs logical address of `path`'s first extent (`filefrag -v` in the agent's
/// namespace, where the pool is mounted).
///
/// ```text
/// ext:     logical_offset:        physical_offset: length:   expected: flags:
///   0:        0..     255:     128416..    128671:    256:             last,eof
/// ```
fn first_extent_logical(demo: &Demo, path: &str) -> u64 {
    let shown = in_ns(demo, &["filefrag", "-v", path]);
    let first = shown
        .lines()
        .find(|line| line.split_whitespace().next() == Some("0:"))
        .unwrap_or_else(|| panic!("no first extent in filefrag's output:\n{shown}"));
    let start = first
        .split_whitespace()
        .nth(3)
        .and_then(|field| field.trim_end_matches("..").parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no physical offset in {first:?}"));
    start * FILEFRAG_BLOCK
}

/// Each mirror of `len` bytes at btrfs logical address `logical`, read from `device` (any
/// member of the unmounted pool).
///
/// ```text
/// mirror 1 logical 525991936 physical 67174400 device /dev/loop0
/// ```
fn mirrors(logical: u64, len: u64, device: &str) -> Vec<Mirror> {
    let output = Command::new("btrfs-map-logical")
        .args(["-l", &logical.to_string(), "-b", &len.to_string(), device])
        .output()
        .expect("btrfs-map-logical");
    let shown = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "btrfs-map-logical: {shown}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    shown
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            match fields[..] {
                [
                    "mirror",
                    _,
                    "logical",
                    _,
                    "physical",
                    physical,
                    "device",
                    device,
                ] => Some(Mirror {
                    physical: physical.parse().ok()?,
                    device: device.to_owned(),
                }),
                _ => None,
            }
        })
        .collect()
}

/// Overwrites `len` bytes at byte `offset` of block device `device` with random data, past
/// every cache (`oflag=direct`, then fsync).
fn overwrite(device: &str, offset: u64, len: u64) {
    assert_eq!(
        offset % FILEFRAG_BLOCK,
        0,
        "a physical offset in whole blocks"
    );
    let status = Command::new("dd")
        .args([
            "if=/dev/urandom",
            &format!("of={device}"),
            &format!("bs={FILEFRAG_BLOCK}"),
            &format!("seek={}", offset / FILEFRAG_BLOCK),
            &format!("count={}", len / FILEFRAG_BLOCK),
            "oflag=direct",
            "conv=notrunc,fsync",
            "status=none",
        ])
        .status()
        .expect("dd");
    assert!(status.success(), "dd onto {device}");
}

/// `GET /pools?refresh=true` until the pool's last scrub is a finished one, within
/// [`REPORT_TIMEOUT`] (btrfs-progs writes the scrub's record as the scrub process ends).
fn pool_after_scrub(admin: &mut nos_tests::admin::Admin) -> Value {
    let deadline = Instant::now() + REPORT_TIMEOUT;
    loop {
        let pool = pool_labelled(&admin.pools(), LABEL);
        if pool["last_scrub"]["state"] == "finished" {
            return pool;
        }
        assert!(Instant::now() < deadline, "no finished scrub: {pool:#}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_scrub_repairs_one_corrupted_copy_and_raises_an_alert() {
    let test = "a_scrub_repairs_one_corrupted_copy_and_raises_an_alert";
    if !preconditions(test)
        || !nos_tests::real_btrfs_or_skip(
            test,
            &[
                "/usr/sbin/filefrag",
                "/usr/bin/btrfs-map-logical",
                "/usr/bin/dd",
            ],
            "e2fsprogs, btrfs-progs, coreutils",
        )
    {
        return;
    }
    let demo = Demo::start(2);
    let loops = demo.loops();
    let [a, b] = [&loops[0], &loops[1]];
    let mut admin = setup_and_login(&demo);

    admin.run(
        &demo,
        "btrfs-pool",
        json!({"devices": [a, b], "label": LABEL, "mountpoint": MOUNTPOINT,
               "data_profile": "raid1", "metadata_profile": "raid1"}),
    );
    // 1 MiB in one write: one extent, as in the capture.
    let known = write_file(&demo, KNOWN, 1);
    let logical = first_extent_logical(&demo, KNOWN);

    admin.run(
        &demo,
        "btrfs-lifecycle",
        json!({"action": "unmount", "pool": MOUNTPOINT}),
    );
    let unmounted = pool_labelled(&admin.pools(), LABEL);
    assert_eq!(unmounted["state"], "not-mounted", "{unmounted:#}");
    let uuid = unmounted["uuid"].as_str().expect("uuid").to_owned();
    let mount_input = unmounted["mount_input"].clone();
    assert_eq!(
        mount_input,
        json!({"uuid": uuid, "mountpoint": MOUNTPOINT}),
        "{unmounted:#}"
    );

    let copies = mirrors(logical, CORRUPT_BYTES, a);
    assert_eq!(copies.len(), 2, "raid1 keeps two copies: {copies:?}");
    assert_ne!(copies[0].device, copies[1].device, "{copies:?}");
    let damaged = &copies[0];
    assert!(
        loops.contains(&damaged.device),
        "{damaged:?} is not one of the demo's disks {loops:?}"
    );
    overwrite(&damaged.device, damaged.physical, CORRUPT_BYTES);

    admin.run(
        &demo,
        "btrfs-lifecycle",
        json!({"action": "mount", "pool": mount_input["uuid"],
               "mountpoint": mount_input["mountpoint"]}),
    );
    let scrub = admin.run(
        &demo,
        "btrfs-maintenance",
        json!({"action": "scrub-start", "pool": MOUNTPOINT}),
    );
    assert_eq!(scrub["steps"][0]["id"], "scrub", "{scrub:#}");

    // The report of the refresh: the scrub's counters, the health's judgement, its reason.
    let pool = pool_after_scrub(&mut admin);
    assert_eq!(pool["uuid"], uuid.as_str(), "{pool:#}");
    assert_eq!(pool["state"], "mounted", "{pool:#}");
    let corrected = pool["last_scrub"]["corrected_errors"]
        .as_u64()
        .expect("corrected errors");
    assert!(corrected > 0, "{pool:#}");
    assert_eq!(pool["last_scrub"]["uncorrectable_errors"], 0, "{pool:#}");
    // health::classify: corrected scrub errors argue for `errors` (as does the corruption
    // counter of the damaged device, which the scrub raised).
    assert_eq!(pool["health"], "errors", "{pool:#}");
    let reasons: Vec<&str> = pool["reasons"]
        .as_array()
        .expect("reasons")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let corrected_reason = format!(
        "the last scrub corrected {corrected} errors from a good copy: a device returned bad data"
    );
    assert!(reasons.contains(&corrected_reason.as_str()), "{reasons:#?}");
    let damaged_member = pool["members"]
        .as_array()
        .expect("members")
        .iter()
        .find(|member| member["path"] == damaged.device.as_str())
        .unwrap_or_else(|| panic!("{} is no member: {pool:#}", damaged.device));
    assert!(
        damaged_member["counters"]["corruption_errs"]
            .as_u64()
            .is_some_and(|n| n > 0),
        "{damaged_member:#}"
    );

    // The alert was raised by that same refresh: no periodic tick needed.
    let listed = admin.api.get("/api/v1/alerts");
    assert_eq!(listed.status, 200, "{}", listed.raw);
    let alert = listed.body["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .find(|alert| {
            alert["kind"] == "scrub-found-errors" && alert["subject"]["pool_uuid"] == uuid.as_str()
        })
        .cloned()
        .unwrap_or_else(|| panic!("no scrub-found-errors alert: {:#}", listed.body));
    assert_eq!(alert["state"], "raised", "{alert:#}");
    assert_eq!(alert["severity"], "warning", "{alert:#}");
    assert_eq!(alert["subject"]["pool_label"], LABEL, "{alert:#}");
    assert!(
        alert["message"]
            .as_str()
            .is_some_and(|message| message.contains(&corrected_reason)),
        "{alert:#}"
    );
    // The damaged device's grown corruption counter is an alert of its own.
    assert!(
        listed.body["alerts"]
            .as_array()
            .expect("alerts")
            .iter()
            .any(|alert| {
                alert["kind"] == "device-errors-grew"
                    && alert["state"] == "raised"
                    && alert["subject"]["pool_uuid"] == uuid.as_str()
                    && alert["subject"]["devid"] == damaged_member["devid"]
            }),
        "{:#}",
        listed.body
    );
    let id = alert["id"].as_u64().expect("alert id");
    let acked = admin
        .api
        .post(&format!("/api/v1/alerts/{id}/ack"), json!({}));
    assert_eq!(acked.status, 200, "{}", acked.raw);
    assert_eq!(
        acked.body["alert"]["state"], "acknowledged",
        "{}",
        acked.raw
    );
    assert_eq!(
        acked.body["alert"]["acknowledged_by"], "admin",
        "{}",
        acked.raw
    );

    // The good copy was written over the bad one: the file reads back intact.
    assert_eq!(sha256_in_ns(&demo, KNOWN), known);
}
