//! `nosctl allowlist …` as an administrator and a CI gate use it: the real binary, real files,
//! exit codes 0 (yes) / 1 (no) / 2 (unusable).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const DEFAULT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../allowlist.toml");
const CORPUS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../agent/allowlist/tests/data/default-cases.toml"
);

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn nosctl(args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_nosctl"))
        .args(args)
        .output()
        .expect("run nosctl");
    Run {
        code: output.status.code().expect("exit code"),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A directory with a copy of the default allowlist and, optionally, overlays beside it.
fn allowlist_dir(overlays: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let main = dir.path().join("allowlist.toml");
    std::fs::copy(DEFAULT, &main).expect("copy allowlist");
    if !overlays.is_empty() {
        std::fs::create_dir(dir.path().join("allowlist.d")).expect("mkdir allowlist.d");
    }
    for (name, text) in overlays {
        std::fs::write(dir.path().join("allowlist.d").join(name), text).expect("write overlay");
    }
    (dir, main)
}

fn path(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// `nosctl allowlist --allowlist DEFAULT check -- <line>`.
fn check(line: &str) -> Run {
    let mut args = vec!["allowlist", "--allowlist", DEFAULT, "check", "--"];
    args.extend(line.split_whitespace());
    nosctl(&args)
}

#[test]
fn check_answers_with_the_exit_code() {
    let allowed = check("btrfs device add /dev/sdb /srv/pool");
    assert_eq!(allowed.code, 0, "{}", allowed.stderr);
    assert_eq!(
        allowed.stdout,
        "allowed by btrfs.device.add (destructive)\nruns: /usr/bin/btrfs device add -- /dev/sdb /srv/pool\n"
    );

    let denied = check("btrfs device add /dev/shm/x /srv/pool");
    assert_eq!(denied.code, 1);
    assert!(
        denied
            .stdout
            .starts_with("denied: token 3: devices `/dev/shm/x` is not a valid disk"),
        "{}",
        denied.stdout
    );

    let json = nosctl(&[
        "allowlist",
        "--allowlist",
        DEFAULT,
        "--json",
        "check",
        "--",
        "umount",
        "/srv",
    ]);
    assert_eq!(json.code, 1);
    let value: serde_json::Value = serde_json::from_str(&json.stdout).expect("json");
    assert_eq!(value["allowed"], false);
    assert_eq!(value["token"], 1);
    assert_eq!(value["rule"], "umount");

    let malformed = nosctl(&["allowlist", "--allowlist", DEFAULT, "check"]);
    assert_eq!(malformed.code, 2, "no argv is a malformed call");
}

#[test]
fn an_invalid_allowlist_is_exit_2_with_its_location() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("allowlist.toml");
    std::fs::write(
        &bad,
        "version = 1\n[[binary]]\nname = \"sh\"\npath = \"sh\"\n",
    )
    .expect("write");
    let run = nosctl(&["allowlist", "--allowlist", path(&bad), "check", "--", "sh"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("allowlist.toml:4:8: binary path `sh` is not an absolute path"),
        "{}",
        run.stderr
    );
    let missing = nosctl(&[
        "allowlist",
        "--allowlist",
        "/nonexistent/allowlist.toml",
        "audit",
    ]);
    assert_eq!(missing.code, 2);
    assert!(
        missing
            .stderr
            .contains("cannot read /nonexistent/allowlist.toml"),
        "{}",
        missing.stderr
    );
}

#[test]
fn overlays_in_allowlist_d_are_merged() {
    let overlay = r#"version = 1
[[rule]]
id = "vendor.subvolume.sync"
binary = "btrfs"
effect = "read"
argv = ["subvolume", "sync", "--", "$pool"]
params.pool = { type = "pool" }
"#;
    let (_dir, main) = allowlist_dir(&[
        ("50-vendor.toml", overlay),
        (".hidden.toml", "not toml at all"),
        ("README", "ignored"),
    ]);
    let run = nosctl(&[
        "allowlist",
        "--allowlist",
        path(&main),
        "check",
        "--",
        "btrfs",
        "subvolume",
        "sync",
        "/srv/pool",
    ]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("vendor.subvolume.sync"));
    // Without the overlay the same argv is denied.
    let plain = check("btrfs subvolume sync /srv/pool");
    assert_eq!(plain.code, 1);
}

#[test]
fn explain_shows_the_language() {
    let run = nosctl(&[
        "allowlist",
        "--allowlist",
        DEFAULT,
        "explain",
        "btrfs.replace.start",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for needle in [
        "request := (\"btrfs\" | \"/usr/bin/btrfs\") \"replace\" \"start\" [\"-B\"] { FLAG } [\"--\"] SOURCE TARGET POOL",
        "SOURCE, TARGET must all differ",
        "renders:\n  /usr/bin/btrfs replace start -B [-f] (given flags, in this order) -- SOURCE TARGET POOL",
        "accepted, for example:",
        "rejected, for example:",
        "option injection",
    ] {
        assert!(
            run.stdout.contains(needle),
            "missing {needle:?} in\n{}",
            run.stdout
        );
    }
    let unknown = nosctl(&[
        "allowlist",
        "--allowlist",
        DEFAULT,
        "explain",
        "btrfs.subvolume.delete",
    ]);
    assert_eq!(unknown.code, 2);
    assert!(unknown.stderr.contains("no rule `btrfs.subvolume.delete`"));
}

#[test]
fn audit_is_a_gate_on_severity() {
    let clean = nosctl(&["allowlist", "--allowlist", DEFAULT, "audit"]);
    assert_eq!(clean.code, 0, "{}", clean.stdout);
    assert!(clean.stdout.contains("binary.unpinned"));
    let strict = nosctl(&[
        "allowlist",
        "--allowlist",
        DEFAULT,
        "audit",
        "--fail-on",
        "low",
    ]);
    assert_eq!(strict.code, 1);
    let bad_level = nosctl(&[
        "allowlist",
        "--allowlist",
        DEFAULT,
        "audit",
        "--fail-on",
        "severe",
    ]);
    assert_eq!(bad_level.code, 2);
}

#[test]
fn audit_finds_unsafe_binaries_and_wrong_pins() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tool = dir.path().join("tool");
    std::fs::write(&tool, b"#!/bin/true\n").expect("write tool");
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let link_dir = dir.path().join("linked");
    std::os::unix::fs::symlink(dir.path(), &link_dir).expect("symlink");
    let allowlist = dir.path().join("allowlist.toml");
    std::fs::write(
        &allowlist,
        format!(
            r#"version = 1
[[binary]]
name = "tool"
path = "{tool}"
sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
[[binary]]
name = "linked"
path = "{linked}/tool"
[[binary]]
name = "gone"
path = "/nonexistent/tool"
[[rule]]
id = "tool.run"
binary = "tool"
effect = "read"
argv = ["run"]
"#,
            tool = tool.display(),
            linked = link_dir.display()
        ),
    )
    .expect("write allowlist");
    let run = nosctl(&[
        "allowlist",
        "--allowlist",
        path(&allowlist),
        "--json",
        "audit",
    ]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    let value: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    let codes: Vec<(String, String)> = value["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|finding| {
            (
                finding["severity"].as_str().unwrap_or_default().to_owned(),
                finding["code"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    for expected in [
        ("critical", "binary.writable"),
        ("critical", "binary.digest"),
        ("critical", "binary.parent"),
        ("medium", "binary.symlink"),
        ("high", "binary.missing"),
    ] {
        assert!(
            codes.contains(&(expected.0.to_owned(), expected.1.to_owned())),
            "missing {expected:?} in {codes:?}"
        );
    }
}

#[test]
fn diff_fails_when_privilege_grows() {
    let same = nosctl(&["allowlist", "diff", DEFAULT, DEFAULT]);
    assert_eq!(same.code, 0, "{}{}", same.stdout, same.stderr);
    assert!(same.stdout.ends_with("privilege does not grow\n"));

    let wider = std::fs::read_to_string(DEFAULT)
        .expect("read")
        .replace(r#"values = ["single", "dup", "raid0", "raid1", "raid1c3", "raid1c4", "raid10"]"#, r#"values = ["single", "dup", "raid0", "raid1", "raid1c3", "raid1c4", "raid10", "raid5"]"#)
        .replace("mount_roots = [\"/srv\", \"/mnt\"]", "mount_roots = [\"/srv\", \"/mnt\", \"/media\"]");
    let dir = tempfile::tempdir().expect("tempdir");
    let new = dir.path().join("allowlist.toml");
    std::fs::write(&new, &wider).expect("write");
    let grows = nosctl(&["allowlist", "diff", DEFAULT, path(&new)]);
    assert_eq!(grows.code, 1, "{}{}", grows.stdout, grows.stderr);
    assert!(
        grows.stdout.contains("+ type (profile)"),
        "{}",
        grows.stdout
    );
    assert!(
        grows.stdout.contains("value `raid5` added"),
        "{}",
        grows.stdout
    );
    assert!(
        grows.stdout.contains("mount root `/media` added"),
        "{}",
        grows.stdout
    );
    assert!(
        grows.stdout.contains("+ mkfs.btrfs -d (profile)"),
        "{}",
        grows.stdout
    );

    // A rule that may now run beside a running job bypasses the pool lock: growth.
    let beside = std::fs::read_to_string(DEFAULT).expect("read").replace(
        "description = \"Show whether a balance runs on a pool\"",
        "description = \"Show whether a balance runs on a pool\"\nbeside_jobs = true",
    );
    let beside_path = dir.path().join("beside.toml");
    std::fs::write(&beside_path, &beside).expect("write");
    let grows = nosctl(&["allowlist", "diff", DEFAULT, path(&beside_path)]);
    assert_eq!(grows.code, 1, "{}{}", grows.stdout, grows.stderr);
    assert!(
        grows.stdout.contains("btrfs.balance.status")
            && grows
                .stdout
                .contains("may now run while a job holds its pool"),
        "{}",
        grows.stdout
    );

    // An overlay that adds a rule is growth; the gate reads overlays beside NEW.
    let (_overlay_dir, with_overlay) = allowlist_dir(&[(
        "10-more.toml",
        "version = 1\n[[rule]]\nid = \"vendor.quota.enable\"\nbinary = \"btrfs\"\neffect = \"state\"\nargv = [\"quota\", \"enable\", \"--\", \"$pool\"]\nparams.pool = { type = \"pool\" }\n",
    )]);
    let added = nosctl(&["allowlist", "--json", "diff", DEFAULT, path(&with_overlay)]);
    assert_eq!(added.code, 1);
    let value: serde_json::Value = serde_json::from_str(&added.stdout).expect("json");
    assert_eq!(value["grows"], true);
    assert_eq!(value["changes"][0]["subject"], "vendor.quota.enable");

    // Removing a rule only shrinks.
    let shrink_only = std::fs::read_to_string(DEFAULT).expect("read");
    let start = shrink_only
        .find("[[rule]]\nid = \"btrfs.balance.cancel\"")
        .expect("rule present");
    let end = start + shrink_only[start..].find("\n\n").expect("rule end");
    let removed = dir.path().join("removed.toml");
    std::fs::write(
        &removed,
        format!("{}{}", &shrink_only[..start], &shrink_only[end..]),
    )
    .expect("write");
    let shrinks = nosctl(&["allowlist", "diff", DEFAULT, path(&removed)]);
    assert_eq!(shrinks.code, 0, "{}{}", shrinks.stdout, shrinks.stderr);
    assert!(
        shrinks.stdout.contains("- btrfs.balance.cancel"),
        "{}",
        shrinks.stdout
    );
}

#[test]
fn test_runs_the_corpus() {
    let run = nosctl(&["allowlist", "--allowlist", DEFAULT, "test", CORPUS]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(
        run.stdout.ends_with(" failed\n") && run.stdout.contains(" passed, 0 failed"),
        "{}",
        run.stdout
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let failing = dir.path().join("cases.toml");
    std::fs::write(
        &failing,
        "[[case]]\nargv = [\"umount\", \"/\"]\nexpect = \"allow\"\n",
    )
    .expect("write");
    let run = nosctl(&["allowlist", "--allowlist", DEFAULT, "test", path(&failing)]);
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("FAIL umount /"), "{}", run.stdout);
}

#[test]
fn allowing_key_removal_grows_privilege_and_is_a_high_finding() {
    let text = std::fs::read_to_string(DEFAULT).expect("read").replace(
        "actions = [\"ensure\"]\nparams.path = { type = \"key\" }",
        "actions = [\"ensure\", \"remove\"]\nparams.path = { type = \"key\" }",
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let new = dir.path().join("allowlist.toml");
    std::fs::write(&new, text).expect("write");
    let diff = nosctl(&["allowlist", "diff", DEFAULT, path(&new)]);
    assert_eq!(diff.code, 1, "{}", diff.stdout);
    assert!(
        diff.stdout.contains("+ managed.key_file") && diff.stdout.contains("action `remove` added"),
        "{}",
        diff.stdout
    );
    let audit = nosctl(&["allowlist", "--allowlist", path(&new), "audit"]);
    assert_eq!(audit.code, 1, "{}", audit.stdout);
    assert!(
        audit.stdout.contains("managed.key_removal"),
        "{}",
        audit.stdout
    );
    let explain = nosctl(&[
        "allowlist",
        "--allowlist",
        path(&new),
        "explain",
        "managed.key_file",
    ]);
    assert_eq!(explain.code, 0);
    assert!(
        explain
            .stdout
            .contains("kind key_file; actions: ensure, remove"),
        "{}",
        explain.stdout
    );
}

#[test]
fn in_use_exemptions_are_explained_and_growth() {
    let run = nosctl(&[
        "allowlist",
        "--allowlist",
        DEFAULT,
        "explain",
        "btrfs.replace.start",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for needle in [
        "SOURCE may be in use (in_use = allowed): the device being replaced is a member of the mounted pool",
        "TARGET refused when in use, just before the spawn",
    ] {
        assert!(
            run.stdout.contains(needle),
            "missing {needle:?} in\n{}",
            run.stdout
        );
    }
    let wipefs = nosctl(&["allowlist", "--allowlist", DEFAULT, "explain", "wipefs"]);
    assert_eq!(wipefs.code, 0, "{}", wipefs.stderr);
    assert!(
        wipefs.stdout.contains("DEVICE refused when in use"),
        "{}",
        wipefs.stdout
    );

    // The audit names every exemption.
    let audit = nosctl(&["allowlist", "--allowlist", DEFAULT, "audit"]);
    assert_eq!(audit.code, 0, "{}", audit.stdout);
    for rule in ["btrfs.device.remove", "btrfs.replace.start"] {
        assert!(
            audit
                .stdout
                .lines()
                .any(|line| line.contains("rule.in_use_allowed") && line.contains(rule)),
            "{rule} exemption not audited:\n{}",
            audit.stdout
        );
    }

    // Exempting mkfs.btrfs's devices from the check is privilege growth.
    let exempt = std::fs::read_to_string(DEFAULT).expect("read").replace(
        "argv = [\"$flags\", \"--\", \"$devices...\"]\nparams.devices = { type = \"disk\", min = 1, max = 32, distinct = true }",
        "argv = [\"$flags\", \"--\", \"$devices...\"]\nparams.devices = { type = \"disk\", min = 1, max = 32, distinct = true, in_use = \"allowed\", in_use_reason = \"trust me\" }",
    );
    assert!(exempt.contains("trust me"), "mkfs.btrfs rule moved");
    let dir = tempfile::tempdir().expect("tempdir");
    let new = dir.path().join("allowlist.toml");
    std::fs::write(&new, &exempt).expect("write");
    let grows = nosctl(&["allowlist", "diff", DEFAULT, path(&new)]);
    assert_eq!(grows.code, 1, "{}{}", grows.stdout, grows.stderr);
    assert!(
        grows
            .stdout
            .lines()
            .any(|line| line.starts_with("+ mkfs.btrfs devices ")
                && line.ends_with(" may now be in use (in_use = allowed: trust me)")),
        "{}",
        grows.stdout
    );
    // And the reverse only shrinks.
    let shrinks = nosctl(&["allowlist", "diff", path(&new), DEFAULT]);
    assert_eq!(shrinks.code, 0, "{}{}", shrinks.stdout, shrinks.stderr);
}
