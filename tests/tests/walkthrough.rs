//! The scripted walk-through of the demo, through the HTTP API only: `scripts/demo` itself
//! starts the real nos-agent (private mount namespace, tmpfs over `/srv`, loop devices only) and
//! the real nosd (real HTTP on 127.0.0.1, the real Wasm planners). The test does first-run
//! setup with the setup token, TOTP enrolment and login (codes computed with totp-rs), reads the
//! facts, and plans and applies — through `btrfs-pool`, `btrfs-devices` and
//! `btrfs-maintenance` — a raid1 pool, a third disk with a converting balance, and a replace;
//! after each job the real btrfs state is read from the kernel. A refused apply leaves no trace.
//! The audit chain verifies with `nosctl audit verify`, holds the expected entries in order, and
//! one edited byte breaks it. A second test SIGKILLs nosd in the middle of a balance.
//!
//! Needs root, loop devices, btrfs-progs, unshare and nsenter; otherwise a named SKIP.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nos_tests::admin::{Admin, JOB_TIMEOUT, assert_succeeded, fstype_of, in_ns, start_demo};
use nos_tests::demo::Demo;
use serde_json::{Value, json};

/// The two tests run one at a time: a plan is stale when any block device changed, and the
/// other test's loop devices and pools are block devices too.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// What the kernel says about the pool mounted at `mountpoint`.
#[derive(Debug)]
struct PoolState {
    uuid: String,
    devices: Vec<String>,
    data: String,
    metadata: String,
}

fn pool_state(demo: &Demo, mountpoint: &str) -> PoolState {
    let show = in_ns(demo, &["btrfs", "filesystem", "show", "--", mountpoint]);
    let uuid = show
        .split_whitespace()
        .skip_while(|word| *word != "uuid:")
        .nth(1)
        .unwrap_or_else(|| panic!("no uuid in {show}"))
        .to_string();
    let total: usize = show
        .split("Total devices ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no device count in {show}"));
    let mut devices: Vec<String> = show
        .lines()
        .filter(|line| line.trim_start().starts_with("devid"))
        .filter_map(|line| line.split_whitespace().last().map(str::to_string))
        .collect();
    devices.sort();
    assert_eq!(devices.len(), total, "{show}");
    let df = in_ns(demo, &["btrfs", "filesystem", "df", "--", mountpoint]);
    let profile = |kind: &str| {
        df.lines()
            .find_map(|line| line.strip_prefix(&format!("{kind}, ")))
            .and_then(|rest| rest.split(':').next())
            .unwrap_or_else(|| panic!("no {kind} line in {df}"))
            .to_lowercase()
    };
    PoolState {
        uuid,
        devices,
        data: profile("Data"),
        metadata: profile("Metadata"),
    }
}

fn sorted(devices: &[&String]) -> Vec<String> {
    let mut devices: Vec<String> = devices.iter().map(|device| (*device).clone()).collect();
    devices.sort();
    devices
}

/// nosd's audit log as (kind, verdict, detail), in file order.
fn audit_entries(demo: &Demo) -> Vec<(String, String, String)> {
    std::fs::read_to_string(demo.nosd_state().join("audit.jsonl"))
        .expect("audit log")
        .lines()
        .map(|line| {
            let record: Value = serde_json::from_str(line).expect("audit line is JSON");
            (
                record["kind"].as_str().unwrap_or_default().to_string(),
                record["verdict"].as_str().unwrap_or_default().to_string(),
                record["detail"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Every `(kind, verdict, detail part)` of `expected` appears in `entries`, in this order.
fn assert_in_order(entries: &[(String, String, String)], expected: &[(&str, &str, String)]) {
    let mut at = 0;
    for (kind, verdict, part) in expected {
        let found = entries[at..].iter().position(|(k, v, detail)| {
            k == kind && (verdict.is_empty() || v == verdict) && detail.contains(part.as_str())
        });
        let Some(offset) = found else {
            panic!(
                "audit entry ({kind}, {verdict}, …{part}…) missing after entry {at}:\n{:#?}",
                &entries[at..]
            );
        };
        at += offset + 1;
    }
}

/// The filesystem type `facts` give `device` (null: blank).
fn fstype_in(facts: &Value, device: &str) -> Value {
    device_in(facts, device)["fstype"].clone()
}

/// What `facts` say of `device`.
fn device_in(facts: &Value, device: &str) -> Value {
    facts["block_devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|block| block["path"] == device)
        .cloned()
        .unwrap_or_else(|| panic!("{device} not in the facts: {facts}"))
}

/// Whether nosd's facts show a pool mounted at `mountpoint` (the planners see only those).
fn pool_in_facts(admin: &mut Admin, mountpoint: &str) -> bool {
    admin.facts()["filesystems"]
        .as_array()
        .unwrap()
        .iter()
        .any(|fs| fs["mountpoint"] == mountpoint)
}

/// Edits one byte of the plan-apply refusal in the audit log: verify fails and names it.
fn tampering_is_detected(demo: &Demo) {
    let log_path = demo.nosd_state().join("audit.jsonl");
    let mut bytes = std::fs::read(&log_path).unwrap();
    let text = String::from_utf8(bytes.clone()).unwrap();
    let (line_idx, line) = text
        .lines()
        .enumerate()
        .find(|(_, line)| line.contains("\"plan_apply_refused\""))
        .expect("the refusal is logged");
    let offset: usize = text
        .lines()
        .take(line_idx)
        .map(|line| line.len() + 1)
        .sum::<usize>()
        + line.find("confirmation_mismatch").unwrap();
    bytes[offset] = b'k'; // "confirmation" → "konfirmation"
    std::fs::write(&log_path, &bytes).unwrap();
    let (ok, out) = nosctl_audit_verify(demo);
    assert!(!ok, "an edited entry verified: {out}");
    assert!(
        out.contains(&format!("BROKEN at audit.jsonl line {}:", line_idx + 1)),
        "{out}"
    );
}

fn nosctl_audit_verify(demo: &Demo) -> (bool, String) {
    let output = Command::new(nos_tests::binary("nosctl"))
        .args(["audit", "verify", "--state-dir"])
        .arg(demo.nosd_state())
        .output()
        .expect("nosctl");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
fn demo_walkthrough_over_http_on_loop_devices() {
    let Some((_serial, demo, mut admin)) =
        start_demo("demo_walkthrough_over_http_on_loop_devices", &SERIAL, 4)
    else {
        return;
    };
    let loops = demo.loops();
    let [a, b, c, d] = [&loops[0], &loops[1], &loops[2], &loops[3]];

    // Facts: the demo's loop devices, blank.
    let blank = admin.facts();
    for device in &loops {
        assert!(fstype_in(&blank, device).is_null(), "{device}: {blank}");
    }
    let plugins = admin.api.get("/api/v1/plugins");
    let names: Vec<&str> = plugins.body["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|plugin| plugin["name"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "btrfs-devices",
            "btrfs-lifecycle",
            "btrfs-maintenance",
            "btrfs-pool",
            "disk-wipe",
            "shares",
            "snapshots"
        ],
        "{}",
        plugins.raw
    );

    // A disk that holds data is never free, udev database or not (the agent probes it): a GPT
    // table with an ext4 partition holding a file on the third disk. The pool planner refuses
    // it and has no force-like input; mounted, it is in use and even the wipe is refused; the
    // wipe plan says what it destroys, and only after it is the disk blank again.
    let shell = |argv: &[&str]| {
        let status = Command::new(argv[0]).args(&argv[1..]).status().unwrap();
        assert!(status.success(), "{argv:?}");
    };
    let part = format!("{c}p1");
    let sfdisk = Command::new("sfdisk")
        .args(["-q", c])
        .stdin(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(b"label: gpt\n,\n")?;
            child.wait()
        })
        .unwrap();
    assert!(
        sfdisk.success() || sfdisk.code() == Some(1),
        "sfdisk: {sfdisk}"
    );
    // A partition node left behind by an earlier run would make `partx -a` fail.
    let _ = Command::new("partx").args(["-d", c]).status();
    shell(&["partx", "-a", c]);
    shell(&["mkfs.ext4", "-q", "-L", "data", &part]);
    let disk = device_in(&admin.facts(), c);
    assert_eq!(disk["state"], "holds-data", "{disk:#}");
    let reasons = disk["reasons"].to_string();
    assert!(
        reasons.contains("gpt partition table") && reasons.contains("ext4 'data'"),
        "{disk:#}"
    );
    for (input, why) in [
        (
            json!({"devices": [c, d], "label": "over", "mountpoint": "/srv/over"}),
            format!("device {c} holds {}", part.trim_start_matches("/dev/")),
        ),
        (
            json!({"devices": [&part], "label": "over", "mountpoint": "/srv/over"}),
            format!("device {part} holds a ext4 signature"),
        ),
        (
            json!({"devices": [c, d], "label": "over", "mountpoint": "/srv/over", "force": true}),
            "unknown field `force`".to_owned(),
        ),
    ] {
        let refused = admin.api.post(
            "/api/v1/plans",
            json!({"plugin": "btrfs-pool", "input": input}),
        );
        assert_eq!(refused.status, 422, "{}", refused.raw);
        assert!(refused.raw.contains(&why), "{why}: {}", refused.raw);
    }
    let mnt = demo.in_agent_ns(&["mkdir", "-p", "/run/nos-walkthrough-mnt"]);
    assert!(mnt.status.success(), "{mnt:?}");
    let mounted = demo.in_agent_ns(&["mount", "-t", "ext4", &part, "/run/nos-walkthrough-mnt"]);
    assert!(mounted.status.success(), "{mounted:?}");
    let disk = device_in(&admin.facts(), c);
    assert_eq!(disk["state"], "in-use", "{disk:#}");
    let refused = admin.api.post(
        "/api/v1/plans",
        json!({"plugin": "disk-wipe", "input": {"device": c}}),
    );
    assert_eq!(refused.status, 422, "{}", refused.raw);
    assert!(
        refused
            .raw
            .contains("is in use: is mounted at /run/nos-walkthrough-mnt"),
        "{}",
        refused.raw
    );
    let unmounted = demo.in_agent_ns(&["umount", "/run/nos-walkthrough-mnt"]);
    assert!(unmounted.status.success(), "{unmounted:?}");
    let wipe = admin.plan("disk-wipe", json!({"device": c}));
    let warnings = wipe["warnings"].to_string();
    assert!(
        warnings.contains(&format!("partition {part}: the ext4 signature 'data'"))
            && warnings.contains("partition table"),
        "{wipe:#}"
    );
    assert_eq!(
        wipe["confirmation"],
        c.trim_start_matches("/dev/"),
        "{wipe:#}"
    );
    let wipe_job = admin.apply_confirmed(&wipe);
    let job = admin.wait_job(&wipe_job);
    assert_succeeded(&job, &wipe, &demo);
    let disk = device_in(&admin.facts(), c);
    assert_eq!(disk["state"], "blank", "{disk:#}");
    assert_eq!(fstype_of(c), None);
    assert_eq!(fstype_of(&part), None);
    // The kernel keeps the empty partition of a loop device; drop it so later steps see the
    // disk as a new one would be.
    shell(&["partx", "-d", c]);

    // The other shapes of "holds data", each on the fourth disk: in the facts with what it holds,
    // refused by both planners that take new disks, then cleared outside nos again.
    let key = demo.state_dir().join("walkthrough.key");
    std::fs::write(&key, [7u8; 64]).unwrap();
    let key = key.display().to_string();
    let part = format!("{d}p1");
    let gpt = format!("printf 'label: gpt\\n,\\n' | sfdisk -q {d}");
    let repartx = format!("partx -d {d} 2>/dev/null; partx -a {d}");
    let cases: [(&str, Vec<Vec<&str>>, &str); 4] = [
        (
            "LUKS on a partition",
            vec![
                vec!["sh", "-c", &gpt],
                vec!["sh", "-c", &repartx],
                vec![
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
                    &part,
                ],
            ],
            "crypto_LUKS",
        ),
        (
            "a swap signature",
            vec![vec!["mkswap", "-q", d]],
            "holds a swap signature",
        ),
        (
            "a whole-disk ext4",
            vec![vec!["mkfs.ext4", "-q", "-F", "-L", "whole", d]],
            "ext4 filesystem labelled 'whole'",
        ),
        (
            "a member of an unmounted btrfs",
            vec![vec!["mkfs.btrfs", "-q", "-f", "-L", "elsewhere", d]],
            "btrfs filesystem member labelled 'elsewhere'",
        ),
    ];
    for (what, setup, reason) in cases {
        for argv in &setup {
            shell(argv);
        }
        let disk = device_in(&admin.facts(), d);
        assert_eq!(disk["state"], "holds-data", "{what}: {disk:#}");
        assert!(
            disk["reasons"].to_string().contains(reason),
            "{what}: {disk:#}"
        );
        for (plugin, input) in [
            (
                "btrfs-pool",
                json!({"devices": [d], "label": "no", "mountpoint": "/srv/no"}),
            ),
            (
                "btrfs-pool",
                json!({"devices": [d], "label": "no", "mountpoint": "/srv/no", "force": true}),
            ),
        ] {
            let refused = admin
                .api
                .post("/api/v1/plans", json!({"plugin": plugin, "input": input}));
            assert_eq!(refused.status, 422, "{what}: {}", refused.raw);
        }
        if std::path::Path::new(&part).exists() {
            shell(&["wipefs", "-q", "-a", &part]);
        }
        shell(&["wipefs", "-q", "-a", d]);
        let _ = Command::new("partx").args(["-d", d]).status();
        let _ = Command::new("btrfs")
            .args(["device", "scan", "--forget", d])
            .status();
        assert_eq!(
            device_in(&admin.facts(), d)["state"],
            "blank",
            "{what}: cleared"
        );
    }

    // A blank disk smaller than a pool member must be (512 MiB, under btrfs-pool's 1 GiB): blank
    // in the facts, and still refused by the planner, force-like input or not.
    {
        let tiny = nos_tests::LoopDevice::new(&demo.state_dir(), "tiny", "512M").expect("losetup");
        let disk = device_in(&admin.facts(), &tiny.device);
        assert_eq!(disk["state"], "blank", "{disk:#}");
        // The planner names the reason; with a force-like field the input itself is refused.
        for (input, reason) in [
            (
                json!({"devices": [a, &tiny.device], "label": "small", "mountpoint": "/srv/small"}),
                "less than the 1073741824 a pool member needs",
            ),
            (
                json!({"devices": [a, &tiny.device], "label": "small", "mountpoint": "/srv/small",
                       "force": true}),
                "force",
            ),
        ] {
            let refused = admin.api.post(
                "/api/v1/plans",
                json!({"plugin": "btrfs-pool", "input": input}),
            );
            assert_eq!(refused.status, 422, "{}", refused.raw);
            assert!(refused.raw.contains(reason), "{}", refused.raw);
        }
    }

    // Plan a raid1 pool on two demo disks.
    let pool_plan = admin.plan(
        "btrfs-pool",
        json!({"devices": [a, b], "label": "tank", "mountpoint": "/srv/tank",
               "data_profile": "raid1", "metadata_profile": "raid1"}),
    );
    let rules: Vec<&str> = pool_plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|step| step["verdict"]["rule_id"].as_str())
        .collect();
    assert!(rules.contains(&"mkfs.btrfs"), "{pool_plan:#}");
    // The preview shows the fstab entry as it will be written: never blocking a boot (issue 14).
    let fstab_step = pool_plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|step| step["verdict"]["rule_id"] == "managed.fstab")
        .unwrap_or_else(|| panic!("no fstab step: {pool_plan:#}"));
    let fstab_preview = fstab_step["verdict"]["canonical"].as_str().unwrap();
    assert!(
        fstab_preview.ends_with(",nosuid,nodev,nofail,x-systemd.device-timeout=30s"),
        "{fstab_step:#}"
    );
    let pool_plan_id = pool_plan["id"].as_str().unwrap().to_string();

    // A wrong confirmation word is refused and leaves no trace.
    let wrong = admin.apply(&pool_plan, "yes");
    assert_eq!(
        wrong.code(),
        "400 plan.confirmation_mismatch",
        "{}",
        wrong.raw
    );
    assert_eq!(fstype_of(a), None, "a refused apply formatted {a}");
    assert_eq!(fstype_of(b), None, "a refused apply formatted {b}");
    assert!(
        !demo
            .agent_mounts()
            .iter()
            .any(|(at, _, _)| at == "/srv/tank"),
        "a refused apply mounted /srv/tank"
    );
    assert!(
        !demo
            .in_agent_ns(&["test", "-e", "/srv/tank"])
            .status
            .success()
    );
    let fstab_path = demo.state_dir().join("etc/fstab");
    assert_eq!(std::fs::read_to_string(&fstab_path).unwrap(), "");

    // Apply with the confirmation word after re-authenticating; follow the job's events.
    admin.reauth();
    let job_id = admin.apply_confirmed(&pool_plan);
    let events =
        admin
            .api
            .events_until(&format!("/api/v1/jobs/{job_id}/events"), "end", JOB_TIMEOUT);
    let end = events.last().unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&end.data).unwrap()["state"],
        "succeeded",
        "{events:#?}\n{}",
        demo.explain()
    );
    let finished: Vec<String> = events
        .iter()
        .filter(|event| event.event == "step_finished")
        .map(|event| serde_json::from_str::<Value>(&event.data).unwrap()["step"].to_string())
        .collect();
    let planned: Vec<String> = pool_plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|step| step["id"].to_string())
        .collect();
    assert_eq!(finished, planned, "{events:#?}");
    let job = admin.job(&job_id);
    assert_succeeded(&job, &pool_plan, &demo);
    // The plan is one-use.
    let again = admin.apply(&pool_plan, pool_plan["confirmation"].as_str().unwrap());
    assert_eq!(again.code(), "404 plan.unknown", "{}", again.raw);

    // The real state: two devices, raid1 data and metadata, mounted, in the demo's fstab.
    let state = pool_state(&demo, "/srv/tank");
    assert_eq!(state.devices, sorted(&[a, b]), "{state:?}");
    assert_eq!(
        (state.data.as_str(), state.metadata.as_str()),
        ("raid1", "raid1")
    );
    let mounts = demo.agent_mounts();
    let (_, fstype, source) = mounts
        .iter()
        .find(|(at, _, _)| at == "/srv/tank")
        .unwrap_or_else(|| panic!("/srv/tank is not mounted: {mounts:?}"));
    assert_eq!(fstype, "btrfs");
    assert!(source == a || source == b, "{source}");
    let fstab = std::fs::read_to_string(&fstab_path).unwrap();
    assert!(
        fstab.lines().any(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.len() >= 4
                && fields[0] == format!("UUID={}", state.uuid)
                && fields[1] == "/srv/tank"
                && fields[2] == "btrfs"
                && fields[3].ends_with(",nofail,x-systemd.device-timeout=30s")
        }),
        "no fstab entry for {}:\n{fstab}",
        state.uuid
    );

    // The facts see the mount: a second pool on a member of this one is refused by the planner
    // (there is no force), and planning it leaves the disks alone.
    let reply = admin.api.post(
        "/api/v1/plans",
        json!({"plugin": "btrfs-pool", "input": {"devices": [a, c], "label": "again",
               "mountpoint": "/srv/again"}}),
    );
    assert_eq!(reply.status, 422, "{}", reply.raw);
    assert!(
        reply
            .raw
            .contains(&format!("device {a} is in use (is mounted at /srv/tank")),
        "{}",
        reply.raw
    );
    assert_eq!(fstype_of(c), None, "a refused plan touched {c}");

    // The audit chain so far verifies and tells the story in order.
    let (ok, out) = nosctl_audit_verify(&demo);
    assert!(ok, "{out}");
    let mut expected = vec![
        ("setup_completed", "", String::new()),
        ("second_factor_failed", "", String::new()),
        ("login_succeeded", "", String::new()),
        (
            "plan_created",
            "allowed",
            format!("plan {pool_plan_id} sha256"),
        ),
        (
            "plan_apply_refused",
            "refused",
            format!("plan {pool_plan_id}: plan.confirmation_mismatch"),
        ),
        (
            "plan_confirmed",
            "confirmed",
            format!("plan {pool_plan_id}"),
        ),
    ];
    for step in pool_plan["steps"].as_array().unwrap() {
        let id = step["id"].as_str().unwrap();
        expected.push(("step_ran", "ok", format!("job {job_id} step {id} (")));
    }
    expected.push(("job_finished", "ok", format!("job {job_id}")));
    assert_in_order(&audit_entries(&demo), &expected);
    assert!(
        pool_in_facts(&mut admin, "/srv/tank"),
        "nosd's facts show no pool at /srv/tank although the kernel has it mounted"
    );

    // Add a third disk with a balance that converts metadata to raid1c3.
    let add_plan = admin.plan(
        "btrfs-devices",
        json!({"action": "add", "pool": "/srv/tank", "device": c, "metadata_profile": "raid1c3"}),
    );
    let add_rules: Vec<&str> = add_plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|step| step["verdict"]["rule_id"].as_str())
        .collect();
    assert!(
        add_rules.contains(&"btrfs.device.add") && add_rules.contains(&"btrfs.balance.start"),
        "{add_plan:#}"
    );
    let add_job = admin.apply_confirmed(&add_plan);
    let job = admin.wait_job(&add_job);
    assert_succeeded(&job, &add_plan, &demo);
    let state = pool_state(&demo, "/srv/tank");
    assert_eq!(state.devices, sorted(&[a, b, c]), "{state:?}");
    assert_eq!(
        (state.data.as_str(), state.metadata.as_str()),
        ("raid1", "raid1c3")
    );

    // Replace the second disk by the fourth.
    let replace_plan = admin.plan(
        "btrfs-devices",
        json!({"action": "replace", "pool": "/srv/tank", "device": b, "new_device": d}),
    );
    let replace_job = admin.apply_confirmed(&replace_plan);
    let job = admin.wait_job(&replace_job);
    assert_succeeded(&job, &replace_plan, &demo);
    let state = pool_state(&demo, "/srv/tank");
    assert_eq!(state.devices, sorted(&[a, c, d]), "{state:?}");
    assert_eq!(
        (state.data.as_str(), state.metadata.as_str()),
        ("raid1", "raid1c3")
    );
    assert_eq!(
        fstype_of(b),
        None,
        "the replaced disk keeps no btrfs signature"
    );

    // The whole chain verifies and tells the rest of the story in order.
    let (ok, out) = nosctl_audit_verify(&demo);
    assert!(ok, "{out}");
    let entries = audit_entries(&demo);
    for (plan, job) in [(&add_plan, &add_job), (&replace_plan, &replace_job)] {
        let plan_id = plan["id"].as_str().unwrap();
        expected.push(("plan_created", "allowed", format!("plan {plan_id} sha256")));
        expected.push(("plan_confirmed", "confirmed", format!("plan {plan_id}")));
        for step in plan["steps"].as_array().unwrap() {
            expected.push((
                "step_ran",
                "ok",
                format!("job {job} step {} (", step["id"].as_str().unwrap()),
            ));
        }
        expected.push(("job_finished", "ok", format!("job {job}")));
    }
    assert_in_order(&entries, &expected);

    tampering_is_detected(&demo);
}

#[test]
fn nosd_killed_mid_balance_restarts_with_the_job_interrupted() {
    let Some((_serial, mut demo, mut admin)) = start_demo(
        "nosd_killed_mid_balance_restarts_with_the_job_interrupted",
        &SERIAL,
        2,
    ) else {
        return;
    };
    let loops = demo.loops();
    let pool_plan = admin.plan(
        "btrfs-pool",
        json!({"devices": [&loops[0], &loops[1]], "label": "vault", "mountpoint": "/srv/vault",
               "data_profile": "raid1", "metadata_profile": "raid1", "mount_options": ["noatime"]}),
    );
    let job = admin.apply_confirmed(&pool_plan);
    let job = admin.wait_job(&job);
    assert_succeeded(&job, &pool_plan, &demo);
    assert!(
        pool_in_facts(&mut admin, "/srv/vault"),
        "nosd's facts show no pool at /srv/vault although the kernel has it mounted"
    );
    // Enough data that a full balance takes a while (written in the agent's namespace).
    in_ns(
        &demo,
        &[
            "dd",
            "if=/dev/urandom",
            "of=/srv/vault/fill",
            "bs=1M",
            "count=384",
            "conv=fsync",
            "status=none",
        ],
    );

    let balance_plan = admin.plan(
        "btrfs-maintenance",
        json!({"action": "balance-start", "pool": "/srv/vault", "usage_percent": 100}),
    );
    let balance_job = admin.apply_confirmed(&balance_plan);
    // Kill nosd once the kernel runs the balance.
    let deadline = Instant::now() + JOB_TIMEOUT;
    loop {
        let job = admin.job(&balance_job);
        assert_eq!(
            job["state"], "running",
            "the balance ended before nosd could be killed: {job:#}"
        );
        if job["steps"][0]["state"] == "running"
            && !demo
                .in_agent_ns(&["btrfs", "balance", "status", "/srv/vault"])
                .status
                .success()
        {
            // `btrfs balance status` exits 1 while a balance runs.
            break;
        }
        assert!(Instant::now() < deadline, "the balance never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    demo.kill_nosd();
    demo.restart_nosd();

    // The session survives the restart (server-side, persisted); the job does not run on.
    let job = admin.job(&balance_job);
    assert_eq!(job["state"], "interrupted", "{job:#}");
    assert!(job["finished_at"].is_u64(), "{job:#}");
    assert_ne!(job["steps"][0]["state"], "done", "{job:#}");
    assert!(
        job["steps"][0]["output"]
            .as_str()
            .unwrap()
            .contains("nosd stopped while this step ran"),
        "{job:#}"
    );
    assert_eq!(
        job["events"].as_array().unwrap().last().unwrap()["kind"],
        "job_interrupted",
        "{job:#}"
    );

    // The pool's lock did not survive nosd: a new plan on the pool applies at once (a read-only
    // one, as the kernel may still be balancing), and once the balance is over, a new balance.
    let status_plan = admin.plan(
        "btrfs-maintenance",
        json!({"action": "balance-status", "pool": "/srv/vault"}),
    );
    let status_job = admin.apply_confirmed(&status_plan);
    let job = admin.wait_job(&status_job);
    assert_succeeded(&job, &status_plan, &demo);
    let deadline = Instant::now() + JOB_TIMEOUT;
    while !demo
        .in_agent_ns(&["btrfs", "balance", "status", "/srv/vault"])
        .status
        .success()
    {
        assert!(
            Instant::now() < deadline,
            "the kernel's balance never ended"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // usage 0 only drops empty block groups: it needs no free space on these small, nearly
    // full loop devices (a 10 % balance hit ENOSPC here), so it tests the lock, not the disks.
    let again = admin.plan(
        "btrfs-maintenance",
        json!({"action": "balance-start", "pool": "/srv/vault", "usage_percent": 0}),
    );
    let again_job = admin.apply_confirmed(&again);
    let job = admin.wait_job(&again_job);
    assert_succeeded(&job, &again, &demo);
    let state = pool_state(&demo, "/srv/vault");
    assert_eq!(state.devices, sorted(&[&loops[0], &loops[1]]), "{state:?}");

    // The chain survived the SIGKILL and records the interruption.
    let (ok, out) = nosctl_audit_verify(&demo);
    assert!(ok, "{out}");
    assert_in_order(
        &audit_entries(&demo),
        &[
            (
                "plan_confirmed",
                "confirmed",
                format!("plan {}", balance_plan["id"].as_str().unwrap()),
            ),
            (
                "job_interrupted",
                "interrupted",
                format!("job {balance_job} was running"),
            ),
            ("job_finished", "ok", format!("job {status_job}")),
            ("job_finished", "ok", format!("job {again_job}")),
        ],
    );
}
