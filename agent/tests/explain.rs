//! The auditor's view of the default allowlist: `explain` of every rule, kept as a snapshot in
//! `data/explain-default.txt` so that any change to what may run as root shows up in review.
//! Refresh with `UPDATE_EXPECT=1 cargo test -p nos-agent --test explain`.

use expect_test::expect_file;
use nos_agent::allowlist::explain::{explain, explain_managed};
use nos_agent::allowlist::{Allowlist, Source};

#[test]
fn explain_every_default_rule() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../allowlist.toml"))
        .expect("read allowlist.toml");
    let allowlist = Allowlist::load(&[Source {
        name: "allowlist.toml".into(),
        text,
    }])
    .expect("default allowlist loads");
    let mut out = String::new();
    for rule in allowlist.rules() {
        out.push_str(&explain(&allowlist, rule));
        out.push_str("\n\n");
    }
    for rule in allowlist.managed_rules() {
        out.push_str(&explain_managed(&allowlist, rule));
        out.push_str("\n\n");
    }
    expect_file!["data/explain-default.txt"].assert_eq(&out);
}
