use super::*;
use expect_test::{Expect, expect};

fn facts() -> Facts {
    nos_plugin_sdk::testing::classified_fixture(include_str!(
        "../../../host/tests/data/facts/fixture.json"
    ))
    .unwrap()
}

fn check(input: &str, expect: Expect) {
    let actual = match DevicesPlanner::plan(&facts(), input) {
        Ok(plan) => plan.render_lines(),
        Err(err) => format!("error: {err:?}\n"),
    };
    expect.assert_eq(&actual);
}

#[test]
fn add_and_convert_single_to_raid1() {
    check(
        r#"{"action": "add", "pool": "/srv/solo", "device": "/dev/sdd", "data_profile": "raid1", "metadata_profile": "raid1"}"#,
        expect![[r#"
            add-sdd [destructive] btrfs device add /dev/sdd /srv/solo (confirm: sdd)
            convert [state] btrfs balance start -dconvert=raid1 -mconvert=raid1 /srv/solo
            verify [read] btrfs filesystem show /dev/sdh
        "#]],
    );
}

#[test]
fn add_keeps_profiles() {
    check(
        r#"{"action": "add", "pool": "pool", "device": "sdd"}"#,
        expect![[r#"
            add-sdd [destructive] btrfs device add /dev/sdd /srv/pool (confirm: sdd)
            verify [read] btrfs filesystem show /dev/sdf
        "#]],
    );
}

#[test]
fn remove_by_devid_with_conversion() {
    check(
        r#"{"action": "remove", "pool": "/srv/pool", "devid": 2, "data_profile": "single", "metadata_profile": "dup"}"#,
        expect![[r#"
            convert [state] btrfs balance start -dconvert=single -mconvert=dup /srv/pool
            remove-devid-2 [destructive] btrfs device remove 2 /srv/pool (confirm: pool)
            verify [read] btrfs filesystem show /dev/sdf
        "#]],
    );
}

#[test]
fn replace_by_path() {
    check(
        r#"{"action": "replace", "pool": "/srv/pool", "device": "/dev/sdf", "new_device": "/dev/sdd"}"#,
        expect![[r#"
            replace-devid-1 [destructive] btrfs replace start /dev/sdf /dev/sdd /srv/pool (confirm: sdd)
            replace-status [read] btrfs replace status -1 /srv/pool
            verify [read] btrfs filesystem show /dev/sdg
        "#]],
    );
}

#[test]
fn guards() {
    let cases = [
        (
            r#"{"action": "remove", "pool": "/srv/pool", "devid": 2}"#,
            "data profile raid1 needs at least 2 devices, got 1",
        ),
        (
            r#"{"action": "remove", "pool": "/srv/solo", "device": "/dev/sdh"}"#,
            "last device",
        ),
        (
            r#"{"action": "remove", "pool": "/srv/pool", "device": "/dev/sdb"}"#,
            "not a member",
        ),
        (
            r#"{"action": "remove", "pool": "/srv/pool", "device": "/dev/sdf", "devid": 1}"#,
            "exactly one of device and devid",
        ),
        (
            r#"{"action": "replace", "pool": "/srv/pool", "devid": 1, "new_device": "/dev/sde"}"#,
            "smaller than /dev/sdf",
        ),
        (
            r#"{"action": "replace", "pool": "/srv/pool", "devid": 1, "new_device": "/dev/sdg"}"#,
            "holds a btrfs signature (btrfs signature); only a blank device is used",
        ),
        (
            r#"{"action": "add", "pool": "/srv/pool", "device": "/dev/sda1"}"#,
            "mounted at /",
        ),
        (
            r#"{"action": "add", "pool": "/srv/pool", "device": "/dev/sdb", "data_profile": "raid5"}"#,
            "raid5/6 is not safe",
        ),
        (
            r#"{"action": "add", "pool": "/srv/pool", "device": "/dev/sdb", "data_profile": "raid1c4"}"#,
            "needs at least 4 devices, got 3",
        ),
        (
            r#"{"action": "add", "pool": "/srv/nope", "device": "/dev/sdb"}"#,
            "no mounted btrfs pool",
        ),
        (
            r#"{"action": "format", "pool": "/srv/pool"}"#,
            "unknown variant",
        ),
    ];
    for (input, needle) in cases {
        let err = DevicesPlanner::plan(&facts(), input).expect_err(input);
        let text = format!("{err:?}");
        assert!(text.contains(needle), "{input}: {text} lacks {needle:?}");
    }
}

#[test]
fn unknown_devids_are_refused_never_guessed() {
    let mut facts = facts();
    for device in &mut facts.filesystems[0].devices {
        device.devid = nos_plugin_sdk::UNKNOWN_DEVID;
    }
    let plan = |input: &str| match DevicesPlanner::plan(&facts, input) {
        Ok(plan) => plan.render_lines(),
        Err(err) => format!("error: {err:?}\n"),
    };
    expect![[r#"
        error: PlanError::Refused("the devid of /dev/sdg in pool /srv/pool is unknown (the host could not read `btrfs filesystem show`)")
    "#]].assert_eq(&plan(
        r#"{"action": "remove", "pool": "/srv/pool", "device": "/dev/sdg"}"#,
    ));
    expect![[r#"
        error: PlanError::Refused("devid 0 is not a member of pool /srv/pool")
    "#]]
    .assert_eq(&plan(
        r#"{"action": "remove", "pool": "/srv/pool", "devid": 0}"#,
    ));
    expect![[r#"
        error: PlanError::Refused("the devid of /dev/sdf in pool /srv/pool is unknown (the host could not read `btrfs filesystem show`)")
    "#]].assert_eq(&plan(
        r#"{"action": "replace", "pool": "/srv/pool", "device": "/dev/sdf", "new_device": "/dev/sdd"}"#,
    ));
    // Adding needs no devid.
    expect![[r#"
        add-sdd [destructive] btrfs device add /dev/sdd /srv/pool (confirm: sdd)
        verify [read] btrfs filesystem show /dev/sdf
    "#]]
    .assert_eq(&plan(
        r#"{"action": "add", "pool": "pool", "device": "sdd"}"#,
    ));
}

/// The devices that once made a planner wipe data: each is refused for add and for replace,
/// by disk and by partition, with its reasons, and never with a force flag.
#[test]
fn only_blank_devices_join_a_pool() {
    for scenario in nos_plugin_sdk::testing::unsafe_scenarios() {
        let mut facts = facts();
        facts.block_devices.extend(scenario.devices.iter().cloned());
        for name in &scenario.names {
            for input in [
                format!(r#"{{"action": "add", "pool": "/srv/pool", "device": "{name}"}}"#),
                format!(
                    r#"{{"action": "replace", "pool": "/srv/pool", "devid": 1, "new_device": "{name}"}}"#
                ),
            ] {
                let err = DevicesPlanner::plan(&facts, &input).expect_err(&input);
                let PlanError::Refused(text) = &err else {
                    panic!("{}: {input}: {err:?}", scenario.what);
                };
                let device = facts.device(name).expect(name);
                for reason in &device.state_reasons {
                    assert!(text.contains(reason.as_str()), "{}: {text}", scenario.what);
                }
                if device.state == nos_plugin_sdk::DeviceState::HoldsData {
                    assert!(text.contains("disk-wipe"), "{}: {text}", scenario.what);
                }
            }
        }
    }
}

/// A blank disk smaller than the member it would replace is refused.
#[test]
fn too_small_a_replacement_is_refused() {
    let mut facts = facts();
    facts
        .block_devices
        .push(nos_plugin_sdk::testing::tiny_disk());
    let input =
        r#"{"action": "replace", "pool": "/srv/pool", "devid": 1, "new_device": "/dev/sdtiny"}"#;
    let err = DevicesPlanner::plan(&facts, input).expect_err(input);
    assert!(format!("{err:?}").contains("is smaller than"), "{err:?}");
}

/// No force-like input exists.
#[test]
fn force_is_not_an_input() {
    let input = r#"{"action": "add", "pool": "/srv/pool", "device": "/dev/sdb", "force": true}"#;
    let err = DevicesPlanner::plan(&facts(), input).expect_err(input);
    assert!(matches!(err, PlanError::InvalidInput(_)), "{err:?}");
    assert!(!INPUT_SCHEMA.contains("force"));
}

/// The fixture's raid1 `pool` mounted degraded: its member sdg (devid 2) is gone.
fn degraded() -> Facts {
    let mut facts = facts();
    facts.block_devices.retain(|d| d.kname != "sdg");
    for fs in &mut facts.filesystems {
        fs.devices.retain(|d| d.path != "/dev/sdg");
    }
    facts
}

#[test]
fn replace_a_missing_device_by_devid() {
    let facts = degraded();
    let run = |input: &str| match DevicesPlanner::plan(&facts, input) {
        Ok(plan) => plan.render_lines(),
        Err(err) => format!("error: {err:?}\n"),
    };
    let out = [
        r#"{"action": "replace", "pool": "/srv/pool", "devid": 2, "new_device": "/dev/sdd"}"#,
        // Smaller than the largest member: the missing device's size is not known.
        r#"{"action": "replace", "pool": "/srv/pool", "devid": 2, "new_device": "/dev/sde"}"#,
        // Only present members are named by path.
        r#"{"action": "replace", "pool": "/srv/pool", "device": "/dev/sdg", "new_device": "/dev/sdd"}"#,
    ]
    .map(run)
    .concat();
    expect![[r#"
        replace-devid-2 [destructive] btrfs replace start 2 /dev/sdd /srv/pool (confirm: sdd)
        replace-status [read] btrfs replace status -1 /srv/pool
        verify [read] btrfs filesystem show /dev/sdf
        error: PlanError::Refused("device /dev/sde (2000398934016 bytes) is smaller than the largest member of /srv/pool (4000787030016 bytes): the size of missing devid 2 is not known, and btrfs refuses a replacement smaller than the device it replaces")
        error: PlanError::Refused("/dev/sdg is not a member of pool /srv/pool")
    "#]].assert_eq(&out);
}

#[test]
fn remove_missing_keeps_the_profiles_possible() {
    let facts = degraded();
    let run = |input: &str| match DevicesPlanner::plan(&facts, input) {
        Ok(plan) => plan.render_lines(),
        Err(err) => format!("error: {err:?}\n"),
    };
    let out = [
        // raid1 on the one present device: refused; single on its one device: allowed.
        run(r#"{"action": "remove-missing", "pool": "/srv/pool"}"#),
        run(r#"{"action": "remove-missing", "pool": "/srv/solo"}"#),
    ]
    .concat();
    expect![[r#"
        error: PlanError::Refused("data profile raid1 needs at least 2 devices, got 1 once the missing devices are gone: replace the missing device instead, or add one first")
        remove-missing [destructive] btrfs device remove missing /srv/solo (confirm: solo)
        verify [read] btrfs filesystem show /dev/sdh
        warning: the pool must be mounted degraded read-write (btrfs-lifecycle mount-degraded); afterwards repair the profiles of chunks written while degraded (btrfs-maintenance repair-profiles)
    "#]].assert_eq(&out);
}
