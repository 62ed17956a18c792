use super::*;
use expect_test::expect;
use nos_plugin_sdk::testing::pool_with_subvolumes;

/// 2026-12-02T19:00:00Z.
const NOW: u64 = 1_796_238_000;

fn run(facts: &Facts, input: &str) -> Result<Plan, PlanError> {
    SnapshotsPlanner::plan(facts, input)
}

fn lines(facts: &Facts, input: &str) -> String {
    match run(facts, input) {
        Ok(plan) => plan.render_lines(),
        Err(err) => format!("error: {err:?}\n"),
    }
}

#[test]
fn take_makes_the_containers_once_then_a_read_only_snapshot() {
    let fresh = pool_with_subvolumes(&["media"], NOW);
    expect![[r#"
        snapshots-dir [state] btrfs subvolume create -- /srv/tank/.snapshots
        share-snapshots-dir [state] btrfs subvolume create -- /srv/tank/.snapshots/media
        snapshot [state] btrfs subvolume snapshot -r -- /srv/tank/media /srv/tank/.snapshots/media/20261202T190000Z
    "#]]
    .assert_eq(&lines(&fresh, r#"{"action": "take", "pool": "tank", "share": "media"}"#));
    let later = pool_with_subvolumes(&["media", ".snapshots", ".snapshots/media"], NOW);
    expect![[r#"
        snapshot [state] btrfs subvolume snapshot -r -- /srv/tank/media /srv/tank/.snapshots/media/20261202T190000Z-nos1
    "#]]
    .assert_eq(&lines(
        &later,
        r#"{"action": "take", "pool": "/srv/tank", "share": "media", "tag": "nos1"}"#,
    ));
}

#[test]
fn take_refuses_what_it_cannot_name_or_find() {
    let facts = pool_with_subvolumes(
        &[
            "media",
            ".snapshots",
            ".snapshots/media",
            ".snapshots/media/20261202T190000Z",
        ],
        NOW,
    );
    expect![[r#"
        error: PlanError::Refused("snapshot 20261202T190000Z of media exists already (one a second at most)")
    "#]]
    .assert_eq(&lines(&facts, r#"{"action": "take", "pool": "tank", "share": "media"}"#));
    expect![[r#"
        error: PlanError::Refused("pool /srv/tank has no share docs")
    "#]]
    .assert_eq(&lines(
        &facts,
        r#"{"action": "take", "pool": "tank", "share": "docs"}"#,
    ));
    expect![[r#"
        error: PlanError::InvalidInput("share name \".snapshots\" must be 1 to 64 of A-Z a-z 0-9 . _ - starting with a letter or digit")
    "#]]
    .assert_eq(&lines(&facts, r#"{"action": "take", "pool": "tank", "share": ".snapshots"}"#));
    expect![[r#"
        error: PlanError::InvalidInput("tag Some(\"Nightly\") must be 1 to 32 of a-z 0-9")
    "#]]
    .assert_eq(&lines(
        &facts,
        r#"{"action": "take", "pool": "tank", "share": "media", "tag": "Nightly"}"#,
    ));
    let mut unknown = facts.clone();
    unknown.filesystems[0].subvolumes = None;
    expect![[r#"
        error: PlanError::Refused("the subvolumes of the pool at /srv/tank could not be read; refresh the facts and try again")
    "#]]
    .assert_eq(&lines(&unknown, r#"{"action": "take", "pool": "tank", "share": "media"}"#));
    let mut no_clock = facts.clone();
    no_clock.now_unix_seconds = 0;
    expect![[r#"
        error: PlanError::Refused("the host gave no time to name the snapshot by")
    "#]]
    .assert_eq(&lines(
        &no_clock,
        r#"{"action": "take", "pool": "tank", "share": "media"}"#,
    ));
}

#[test]
fn delete_refuses_a_locked_or_missing_snapshot() {
    let mut facts = pool_with_subvolumes(
        &[
            "media",
            ".snapshots",
            ".snapshots/media",
            ".snapshots/media/20261201T190000Z",
        ],
        NOW,
    );
    let input =
        r#"{"action": "delete", "pool": "tank", "share": "media", "name": "20261201T190000Z"}"#;
    expect![[r#"
        delete [state] btrfs subvolume delete -- /srv/tank/.snapshots/media/20261201T190000Z
    "#]]
    .assert_eq(&lines(&facts, input));
    if let Some(list) = facts.filesystems[0].subvolumes.as_mut() {
        list[3].locked = true;
    }
    expect![[r#"
        error: PlanError::Refused("snapshot 20261201T190000Z of media is locked: unlock it first")
    "#]]
    .assert_eq(&lines(&facts, input));
    expect![[r#"
        error: PlanError::Refused("share media has no snapshot 20261130T190000Z")
    "#]]
    .assert_eq(&lines(
        &facts,
        r#"{"action": "delete", "pool": "tank", "share": "media", "name": "20261130T190000Z"}"#,
    ));
    expect![[r#"
        error: PlanError::InvalidInput("snapshot name \"../media\" is not YYYYMMDDTHHMMSSZ[-TAG] (TAG: [a-z0-9]{1,32})")
    "#]]
    .assert_eq(&lines(
        &facts,
        r#"{"action": "delete", "pool": "tank", "share": "media", "name": "../media"}"#,
    ));
}

#[test]
fn restore_makes_a_new_share_and_replace_live_keeps_the_live_state_first() {
    let facts = pool_with_subvolumes(
        &[
            "media",
            "media-20261201T190000Z-old",
            ".snapshots",
            ".snapshots/media",
            ".snapshots/media/20261201T190000Z",
            ".snapshots/media/20261201T190000Z-old",
        ],
        NOW,
    );
    expect![[r#"
        restore [state] btrfs subvolume snapshot -- /srv/tank/.snapshots/media/20261201T190000Z /srv/tank/media-20261201T190000Z
        warning: media is not changed; media-20261201T190000Z is a writable copy of media as it was at 20261201T190000Z
    "#]]
    .assert_eq(&lines(
        &facts,
        r#"{"action": "restore", "pool": "tank", "share": "media", "name": "20261201T190000Z"}"#,
    ));
    expect![[r#"
        error: PlanError::Refused("/srv/tank/media-20261201T190000Z-old exists already (subvolume 257): restore into another name")
    "#]]
    .assert_eq(&lines(
        &facts,
        r#"{"action": "restore", "pool": "tank", "share": "media", "name": "20261201T190000Z-old"}"#,
    ));
    expect![[r#"
        snapshot [state] btrfs subvolume snapshot -r -- /srv/tank/media /srv/tank/.snapshots/media/20261202T190000Z-replaced
        delete-live [destructive] btrfs subvolume delete -- /srv/tank/media (confirm: media)
        restore [state] btrfs subvolume snapshot -- /srv/tank/.snapshots/media/20261201T190000Z /srv/tank/media
        warning: media becomes what it was at 20261201T190000Z; its state now is kept as snapshot 20261202T190000Z-replaced
    "#]]
    .assert_eq(&lines(
        &facts,
        r#"{"action": "replace-live", "pool": "tank", "share": "media", "name": "20261201T190000Z"}"#,
    ));
    let nested = pool_with_subvolumes(
        &[
            "media",
            "media/vm",
            ".snapshots",
            ".snapshots/media",
            ".snapshots/media/20261201T190000Z",
        ],
        NOW,
    );
    expect![[r#"
        error: PlanError::Refused("share media holds the subvolume media/vm: nos does not delete it; move it out first")
    "#]]
    .assert_eq(&lines(
        &nested,
        r#"{"action": "replace-live", "pool": "tank", "share": "media", "name": "20261201T190000Z"}"#,
    ));
}

#[test]
fn prune_with_a_tag_touches_only_that_tag_and_never_foreign_names() {
    let facts = pool_with_subvolumes(
        &[
            "media",
            ".snapshots",
            ".snapshots/media",
            ".snapshots/media/20261202T160000Z-nos1",
            ".snapshots/media/20261202T170000Z-nos1",
            ".snapshots/media/20261202T170000Z-nos12",
            ".snapshots/media/20261202T170000Z",
            ".snapshots/media/before-upgrade",
        ],
        NOW,
    );
    expect![[r#"
        snapshot [state] btrfs subvolume snapshot -r -- /srv/tank/media /srv/tank/.snapshots/media/20261202T190000Z-nos1
        prune-0 [state] btrfs subvolume delete -- /srv/tank/.snapshots/media/20261202T160000Z-nos1
        prune-1 [state] btrfs subvolume delete -- /srv/tank/.snapshots/media/20261202T170000Z-nos1
        warning: left alone, not named by nos: before-upgrade
    "#]]
    .assert_eq(&lines(
        &facts,
        r#"{"action": "take", "pool": "tank", "share": "media", "tag": "nos1", "keep": {"hourly": 1}}"#,
    ));
    expect![[r#"
        error: PlanError::InvalidInput("keep.daily is 100000, more than 87600")
    "#]]
    .assert_eq(&lines(
        &facts,
        r#"{"action": "prune", "pool": "tank", "share": "media", "keep": {"daily": 100000}}"#,
    ));
    expect![[r#"
        error: PlanError::InvalidInput("input: unknown field `force`, expected one of `pool`, `share`, `tag`, `keep`")
    "#]]
    .assert_eq(&lines(
        &facts,
        r#"{"action": "prune", "pool": "tank", "share": "media", "force": true, "keep": {}}"#,
    ));
}

/// A year of hourly scheduled runs with the default policy, each plan applied to the simulated
/// pool; one snapshot is locked on the way. The kept set at the end is exactly the GFS set of
/// every snapshot ever taken, plus the locked one.
#[test]
fn a_simulated_year_of_hourly_runs_keeps_exactly_the_gfs_set() {
    let start = 1_767_225_600u64; // 2026-01-01T00:00:00Z
    let hours = 366 * 24;
    let mut pool: Vec<String> = vec![
        "media".into(),
        ".snapshots".into(),
        ".snapshots/media".into(),
    ];
    let mut locked: Option<String> = None;
    let mut every = Vec::new();
    let input = r#"{"action": "take", "pool": "tank", "share": "media", "tag": "nos1", "keep": {"hourly": 24, "daily": 7, "weekly": 4, "monthly": 12, "yearly": 1}}"#;
    for hour in 0..hours {
        let now = start + hour * 3600;
        let paths: Vec<&str> = pool.iter().map(String::as_str).collect();
        let mut facts = pool_with_subvolumes(&paths, now);
        if let Some(list) = facts.filesystems[0].subvolumes.as_mut() {
            for subvolume in list.iter_mut() {
                subvolume.locked = locked.as_deref() == Some(subvolume.path.as_str());
            }
        }
        let plan = run(&facts, input).expect("plans");
        for step in &plan.steps {
            let nos_plugin_sdk::Request::Argv(argv) = &step.request else {
                panic!("only argv steps");
            };
            let target = argv.last().expect("a path");
            let relative = target
                .strip_prefix("/srv/tank/")
                .expect("in the pool")
                .to_owned();
            match argv[2].as_str() {
                "snapshot" => {
                    every.push(relative.rsplit('/').next().unwrap_or_default().to_owned());
                    pool.push(relative);
                }
                "delete" => pool.retain(|p| *p != relative),
                other => panic!("unexpected {other}"),
            }
        }
        if hour == 100 {
            locked = pool.iter().find(|p| p.contains("T0300")).cloned();
        }
    }
    let locked = locked.expect("one locked");
    let now = Timestamp(i64::try_from(start + (hours - 1) * 3600).unwrap_or_default());
    let all: Vec<nos_retention::Snapshot> = every
        .iter()
        .map(|name| nos_retention::Snapshot {
            name: name.clone(),
            locked: locked.ends_with(name.as_str()),
        })
        .collect();
    let gfs = nos_retention::decide(&Policy::DEFAULT, now, &all).expect("decides");
    let mut expected: Vec<String> = gfs
        .keep
        .iter()
        .map(|(name, _)| subvolume::snapshot_path("media", name))
        .collect();
    expected.sort();
    let mut kept: Vec<String> = pool
        .into_iter()
        .filter(|p| p.matches('/').count() == 2)
        .collect();
    kept.sort();
    assert_eq!(kept, expected);
    assert!(kept.contains(&locked), "the locked snapshot is kept");
    // Ending 2027-01-01T23:00Z: 24 hours of Jan 1; Dec 26 to 31 (Jan 1 is a kept hour); the
    // weeks ending Dec 13 and 20 (the two newer weeks' newest are kept already); Feb to Nov 2026
    // (Dec 31 and Jan 1 stand for their months, Jan 1 for 2027); the locked Jan 5.
    assert_eq!(kept.len(), 24 + 6 + 2 + 10 + 1, "{kept:#?}");
}
