//! The default `allowlist.toml` against the project's corpus (`data/default-cases.toml`: every
//! accepted form the issue names with its rule and canonical argv, every forbidden form with the
//! token that fails), plus the limits that are easier to state in code.

use nos_allowlist::testcases::{parse_cases, run_cases};
use nos_allowlist::{Allowlist, Source, Verdict};

fn default_allowlist() -> Allowlist {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../allowlist.toml");
    let text = std::fs::read_to_string(path).expect("read allowlist.toml");
    match Allowlist::load(&[Source {
        name: "allowlist.toml".into(),
        text,
    }]) {
        Ok(allowlist) => allowlist,
        Err(errors) => panic!("default allowlist does not load:\n{errors}"),
    }
}

fn argv(line: &str) -> Vec<String> {
    line.split_whitespace().map(str::to_owned).collect()
}

#[test]
fn corpus_passes() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/default-cases.toml"
    ))
    .expect("read corpus");
    let cases = parse_cases(&text).expect("corpus parses");
    assert!(cases.len() > 100, "the corpus lost cases: {}", cases.len());
    let allowlist = default_allowlist();
    let uncovered: Vec<&str> = allowlist
        .rule_ids()
        .filter(|id| !cases.iter().any(|case| case.rule.as_deref() == Some(*id)))
        .collect();
    assert!(
        uncovered.is_empty(),
        "rules without an accepted corpus case: {uncovered:?}"
    );
    let failures: Vec<String> = run_cases(&default_allowlist(), &cases)
        .into_iter()
        .filter_map(|outcome| {
            outcome
                .failure
                .map(|failure| format!("{}: {failure}", outcome.case.subject()))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} corpus case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn bounds_are_exact() {
    let allowlist = default_allowlist();
    let reason = |argv: &[String]| match allowlist.check(argv) {
        Verdict::Allowed(matched) => format!("allowed by {}", matched.rule_id()),
        Verdict::Rejected(rejection) => rejection.reason.to_string(),
    };
    let devices =
        |n: usize| -> Vec<String> {
            argv("mkfs.btrfs")
                .into_iter()
                .chain((0..n).map(|idx| {
                    format!("/dev/sd{}{}", char::from(b'a' + (idx % 26) as u8), idx / 26)
                }))
                .collect()
        };
    assert_eq!(reason(&devices(32)), "allowed by mkfs.btrfs");
    assert_eq!(
        reason(&devices(33)),
        "devices takes 1 to 32 values, found 33"
    );
    let component = |len: usize| {
        vec![
            "blkid".to_owned(),
            format!("/dev/disk/by-id/{}", "a".repeat(len)),
        ]
    };
    assert_eq!(reason(&component(255)), "allowed by blkid");
    assert_eq!(reason(&component(256)), "device `/dev/disk/by-id/aaaa…` is not a valid disk: it has a path component of 256 bytes (at most 255)".replace("aaaa…", &"a".repeat(256)));
    let tokens = |n: usize| -> Vec<String> { std::iter::repeat_n("x".to_owned(), n).collect() };
    assert_eq!(reason(&tokens(65)), "the argv has 65 tokens (at most 64)");
    let huge = vec!["blkid".to_owned(), "a".repeat(4097)];
    assert_eq!(reason(&huge), "the token has 4097 bytes (at most 4096)");
    let bytes: Vec<String> = argv("mkfs.btrfs")
        .into_iter()
        .chain((0..5).map(|_| format!("/dev/disk/by-id/{}", "a".repeat(3500))))
        .collect();
    assert_eq!(reason(&bytes), "the argv has 17590 bytes (at most 16384)");
    assert_eq!(reason(&[]), "the argv is empty");
    let depth = |n: usize| vec!["umount".to_owned(), format!("/srv{}", "/a".repeat(n))];
    assert_eq!(reason(&depth(4)), "allowed by umount");
    assert_eq!(
        reason(&depth(5)),
        "target `/srv/a/a/a/a/a` is not a valid pool: it is 5 components below its root (at most 4)"
    );
}
