//! The auditor's view of the default allowlist: `explain` of every rule, kept as a snapshot in
//! `data/explain-default.txt` so that any change to what may run as root shows up in review.
//! Refresh with `UPDATE_EXPECT=1 cargo test -p nos-agent --test explain`.

use expect_test::expect_file;
use nos_allowlist::explain::{explain, explain_managed};
use nos_allowlist::{Allowlist, Source};

#[test]
fn explain_every_default_rule() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../allowlist.toml"))
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

#[test]
fn diff_reports_an_allowed_in_use_param_as_growth() {
    use nos_allowlist::diff::{Direction, diff};
    let load = |param: &str| {
        let text = format!(
            "version = 1\n[[binary]]\nname = \"btrfs\"\npath = \"/usr/bin/btrfs\"\n[[type]]\nname = \"disk\"\nkind = \"device\"\n[[type]]\nname = \"pool\"\nkind = \"mount_path\"\n[[rule]]\nid = \"remove\"\nbinary = \"btrfs\"\neffect = \"destructive\"\nargv = [\"device\", \"remove\", \"$device\", \"$pool\"]\nparams.device = {param}\nparams.pool = {{ type = \"pool\" }}\n"
        );
        Allowlist::load(&[Source {
            name: "a.toml".into(),
            text,
        }])
        .expect("loads")
    };
    let refused = load(r#"{ type = "disk" }"#);
    let allowed =
        load(r#"{ type = "disk", in_use = "allowed", in_use_reason = "a member of the pool" }"#);
    let changes = diff(&refused, &allowed);
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0].direction, Direction::Grows);
    assert_eq!(changes[0].subject, "remove device");
    assert_eq!(
        changes[0].message,
        "may now be in use (in_use = allowed: a member of the pool)"
    );
    let changes = diff(&allowed, &refused);
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0].direction, Direction::Shrinks);
    assert!(diff(&allowed, &allowed).is_empty());
}
