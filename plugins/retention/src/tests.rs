use proptest::prelude::*;

use super::*;

const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;

fn at(name: &str) -> Timestamp {
    parse_name(name).unwrap()
}

fn unlocked(name: String) -> Snapshot {
    Snapshot {
        name,
        locked: false,
    }
}

#[test]
fn names_round_trip_and_bad_names_are_refused() {
    for name in [
        "19700101T000000Z",
        "20240229T235959Z",
        "20261202T190000Z-hourly",
        "21000301T120000Z",
    ] {
        assert_eq!(format_name(at(name), name.get(17..)), name);
    }
    assert_eq!(at("19700102T000000Z"), Timestamp(DAY));
    for bad in [
        "",
        "20261202T190000",
        "20261202T190000Z-",
        "20261202T190000Z-UP",
        "20261202T190000Z_x",
        "20230229T000000Z",
        "20261302T000000Z",
        "20261202T240000Z",
        "2026120aT000000Z",
        "-0261202T000000Z",
    ] {
        assert_eq!(
            parse_name(bad),
            Err(NameError {
                name: bad.to_owned()
            }),
            "{bad:?}"
        );
    }
}

#[test]
fn a_bad_name_is_an_error_not_a_deletion() {
    let snapshots = [unlocked("20261202T190000Z".into()), unlocked("x".into())];
    let error = decide(&Policy::DEFAULT, Timestamp(0), &snapshots).unwrap_err();
    assert_eq!(
        error.to_string(),
        "snapshot name \"x\" is not YYYYMMDDTHHMMSSZ[-TAG] (TAG: [a-z0-9]{1,32})"
    );
}

/// A simulated year of hourly snapshots, each run pruning what the previous left: the kept set
/// is exactly the GFS set computed by hand (the newest per hour/day/week/month/year).
#[test]
fn a_year_of_hourly_runs_keeps_exactly_the_gfs_set() {
    let start = at("20250101T000000Z");
    let mut kept: Vec<Snapshot> = Vec::new();
    let mut now = start;
    let mut n_runs = 0;
    while now < Timestamp(start.0 + 365 * DAY) {
        kept.push(unlocked(format_name(now, Some("hourly"))));
        if n_runs == 100 {
            kept.push(Snapshot {
                name: format_name(Timestamp(now.0 + 1), Some("locked")),
                locked: true,
            });
        }
        let decision = decide(&Policy::DEFAULT, now, &kept).unwrap();
        kept.retain(|snapshot| !decision.delete.contains(&snapshot.name));
        n_runs += 1;
        now = Timestamp(now.0 + HOUR);
    }
    let last = Timestamp(now.0 - HOUR);
    let mut expected: Vec<String> = Vec::new();
    // 24 hours: the last 24 runs.
    for hour_idx in 0..24 {
        expected.push(format_name(
            Timestamp(last.0 - hour_idx * HOUR),
            Some("hourly"),
        ));
    }
    // 7 days: the last run of each of the last 7 days (23:00, today's is the last run itself).
    for day_idx in 0..7 {
        expected.push(format_name(
            Timestamp(last.0 - day_idx * DAY),
            Some("hourly"),
        ));
    }
    // 4 weeks: the last run of each Monday-based week; 2025-12-31 is a Wednesday, so the
    // previous weeks end on the Sundays 12-28, 12-21, 12-14 at 23:00.
    for name in ["20251228T230000Z", "20251221T230000Z", "20251214T230000Z"] {
        expected.push(format!("{name}-hourly"));
    }
    // 12 months: the last run of each month; 1 year: the last run, already kept.
    for (month, day) in [
        (1, 31),
        (2, 28),
        (3, 31),
        (4, 30),
        (5, 31),
        (6, 30),
        (7, 31),
        (8, 31),
        (9, 30),
        (10, 31),
        (11, 30),
    ] {
        expected.push(format!("2025{month:02}{day:02}T230000Z-hourly"));
    }
    expected.push(format_name(
        Timestamp(start.0 + 100 * HOUR + 1),
        Some("locked"),
    ));
    expected.sort();
    expected.dedup();
    let mut kept_names: Vec<String> = kept.into_iter().map(|snapshot| snapshot.name).collect();
    kept_names.sort();
    assert_eq!(kept_names, expected);
}

#[test]
fn the_cap_drops_the_oldest_and_never_the_newest() {
    let policy = Policy {
        hourly: 10,
        max_total: 3,
        ..Policy::DEFAULT
    };
    let snapshots: Vec<Snapshot> = (0..10)
        .map(|hour_idx| unlocked(format_name(Timestamp(hour_idx * HOUR), None)))
        .collect();
    let decision = decide(&policy, Timestamp(10 * HOUR), &snapshots).unwrap();
    let kept: Vec<&str> = decision
        .keep
        .iter()
        .map(|(name, _)| name.as_str())
        .collect();
    assert_eq!(
        kept,
        ["19700101T070000Z", "19700101T080000Z", "19700101T090000Z"]
    );
    let zero = Policy {
        hourly: 0,
        daily: 0,
        weekly: 0,
        monthly: 0,
        yearly: 0,
        max_total: 0,
    };
    let decision = decide(&zero, Timestamp(10 * HOUR), &snapshots).unwrap();
    assert_eq!(
        decision.keep,
        [("19700101T090000Z".to_owned(), Reason::Newest)]
    );
}

#[test]
fn future_snapshots_are_kept() {
    let snapshots = [
        unlocked("20300101T000000Z".into()),
        unlocked("20200101T000000Z".into()),
        unlocked("20200101T010000Z".into()),
    ];
    let policy = Policy {
        hourly: 1,
        daily: 0,
        weekly: 0,
        monthly: 0,
        yearly: 0,
        max_total: 1,
    };
    let decision = decide(&policy, at("20250101T000000Z"), &snapshots).unwrap();
    assert_eq!(decision.delete, ["20200101T000000Z"]);
}

fn arb_snapshots() -> impl Strategy<Value = Vec<Snapshot>> {
    // Up to 300 snapshots over about three years, some at the same second, some locked.
    prop::collection::vec((0i64..(3 * 365 * 24 * 4), any::<bool>(), 0u8..10), 0..300).prop_map(
        |entries| {
            let base = at("20240101T000000Z").0;
            let mut seen = std::collections::BTreeSet::new();
            entries
                .into_iter()
                .filter_map(|(quarter_hours, locked_roll, tag)| {
                    let name = format_name(
                        Timestamp(base + quarter_hours * 900),
                        Some(&format!("t{tag}")),
                    );
                    seen.insert(name.clone()).then_some(Snapshot {
                        name,
                        locked: locked_roll && tag == 0,
                    })
                })
                .collect()
        },
    )
}

fn arb_policy() -> impl Strategy<Value = Policy> {
    (0u32..30, 0u32..10, 0u32..6, 0u32..14, 0u32..3, 0u32..60).prop_map(
        |(hourly, daily, weekly, monthly, yearly, max_total)| Policy {
            hourly,
            daily,
            weekly,
            monthly,
            yearly,
            max_total,
        },
    )
}

proptest! {
    #[test]
    fn deciding_again_over_the_kept_set_deletes_nothing(
        policy in arb_policy(),
        snapshots in arb_snapshots(),
        now_offset in 0i64..(4 * 365 * DAY),
    ) {
        let now = Timestamp(at("20240101T000000Z").0 + now_offset);
        let first = decide(&policy, now, &snapshots).unwrap();
        let kept: Vec<Snapshot> = snapshots
            .iter()
            .filter(|snapshot| !first.delete.contains(&snapshot.name))
            .cloned()
            .collect();
        let second = decide(&policy, now, &kept).unwrap();
        prop_assert!(second.delete.is_empty(), "second run deletes {:?}", second.delete);
        prop_assert_eq!(second.keep.len(), kept.len());
    }

    #[test]
    fn never_deletes_a_locked_snapshot_and_keeps_the_newest(
        policy in arb_policy(),
        snapshots in arb_snapshots(),
        now_offset in 0i64..(4 * 365 * DAY),
    ) {
        let now = Timestamp(at("20240101T000000Z").0 + now_offset);
        let decision = decide(&policy, now, &snapshots).unwrap();
        for snapshot in &snapshots {
            if snapshot.locked {
                prop_assert!(!decision.delete.contains(&snapshot.name));
            }
        }
        let newest = snapshots
            .iter()
            .filter(|snapshot| !snapshot.locked && parse_name(&snapshot.name).unwrap() <= now)
            .max_by(|a, b| {
                parse_name(&a.name).unwrap().cmp(&parse_name(&b.name).unwrap()).then(a.name.cmp(&b.name))
            });
        if let Some(newest) = newest {
            prop_assert!(!decision.delete.contains(&newest.name));
        }
        let n_unlocked_kept = decision
            .keep
            .iter()
            .filter(|(_, reason)| !matches!(reason, Reason::Locked | Reason::Future))
            .count();
        prop_assert!(n_unlocked_kept <= policy.max_total.max(1) as usize);
        prop_assert_eq!(decision.keep.len() + decision.delete.len(), snapshots.len());
    }

    #[test]
    fn names_never_panic(name in "\\PC{0,40}") {
        let _ = parse_name(&name);
    }
}

#[test]
fn tag_of_reads_the_whole_tag_of_a_valid_name_only() {
    assert_eq!(tag_of("20261202T190000Z-nos1"), Some("nos1"));
    assert_eq!(tag_of("20261202T190000Z-nos12"), Some("nos12"));
    assert_eq!(tag_of("20261202T190000Z"), None);
    assert_eq!(tag_of("20261302T190000Z-nos1"), None, "not a real month");
    assert_eq!(tag_of("latest-nos1"), None);
    assert_eq!(tag_of("20261202T190000Z-NOS1"), None, "tags are lowercase");
    assert_eq!(
        tag_of("20261202T190000Zé"),
        None,
        "byte 16 inside a character"
    );
    assert!(parse_name("20261202T19000\u{e9}Z").is_err());
}
