//! `nosctl plan` and `nosctl plugin inspect` as a user runs them: the real
//! binary, real built plugins, the repository's default allowlist; exit codes and output.

use std::path::Path;
use std::process::{Command, Output};

include!(concat!(env!("OUT_DIR"), "/plugins.rs"));

const FACTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/facts/fixture.json");
const ALLOWLIST: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../allowlist.toml");

fn nosctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nosctl"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run nosctl")
}

fn describe(args: &[&str], output: &Output) -> String {
    format!(
        "nosctl {}\nstatus: {}\nstdout:\n{}\nstderr:\n{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs `nosctl plan` with `input` written to a temporary file.
fn run_plan(plugin: &str, input: &str, extra: &[&str]) -> (Vec<String>, Output) {
    let dir = tempfile::tempdir().unwrap();
    let input_path = dir.path().join("input.json");
    std::fs::write(&input_path, input).unwrap();
    let args: Vec<String> = [
        "plan",
        "--plugin",
        plugin,
        "--facts",
        FACTS,
        "--input",
        input_path.to_str().unwrap(),
        "--allowlist",
        ALLOWLIST,
    ]
    .iter()
    .chain(extra)
    .map(|arg| (*arg).to_owned())
    .collect();
    let output = nosctl(&args.iter().map(String::as_str).collect::<Vec<_>>());
    (args, output)
}

/// `nosctl plan`'s exit code and stdout.
fn plan(plugin: &str, input: &str, extra: &[&str]) -> (i32, String) {
    let (args, output) = run_plan(plugin, input, extra);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let code = output
        .status
        .code()
        .unwrap_or_else(|| panic!("{}", describe(&args, &output)));
    (code, String::from_utf8_lossy(&output.stdout).into_owned())
}

#[test]
fn exit_codes() {
    let pool = r#"{"devices": ["/dev/sdb"], "label": "one", "mountpoint": "/srv/one"}"#;
    assert_eq!(plan(BTRFS_POOL, pool, &[]).0, 0);
    assert_eq!(plan(HOSTILE_OUT_OF_SCOPE, "{}", &[]).0, 1);
    assert_eq!(plan(HOSTILE_FORBIDDEN_ARGV, "{}", &[]).0, 1);
    assert_eq!(
        plan(
            BTRFS_POOL,
            r#"{"devices": ["/dev/sda"], "label": "x", "mountpoint": "/srv/x"}"#,
            &[]
        )
        .0,
        1,
        "a refusal"
    );
    assert_eq!(
        plan(BTRFS_POOL, "not json", &[]).0,
        2,
        "input the planner calls invalid"
    );
    assert_eq!(plan(HOSTILE_PANIC, "{}", &[]).0, 3);
    // The guest's panic text reaches the terminal escaped: no ESC, BEL or CR, no line of its own.
    let (_, panicked) = run_plan(HOSTILE_PANIC, "{}", &[]);
    let stderr = String::from_utf8_lossy(&panicked.stderr);
    assert!(
        stderr.contains("\\u{1b}[2K\\u{d}\\u{a}0 rejected\\u{7}"),
        "{stderr}"
    );
    assert!(!stderr.contains(['\u{1b}', '\u{7}', '\r']), "{stderr:?}");
    assert!(
        !stderr.lines().any(|line| line.starts_with("0 rejected")),
        "{stderr}"
    );
    assert_eq!(plan(HOSTILE_BAD_HASH, "{}", &[]).0, 3);
    assert_eq!(plan(HOSTILE_WASI_SOCKETS, "{}", &[]).0, 3);
    let missing = nosctl(&[
        "plan",
        "--plugin",
        BTRFS_POOL,
        "--facts",
        "/nonexistent",
        "--input",
        FACTS,
    ]);
    assert_eq!(missing.status.code(), Some(2));
}

/// A missing allowlist file is named as missing, with where nosctl looks by default, never
/// called "invalid" (as it was outside a checkout).
#[test]
fn missing_allowlist_is_not_invalid() {
    let args = [
        "plan",
        "--plugin",
        BTRFS_POOL,
        "--facts",
        FACTS,
        "--input",
        FACTS,
        "--allowlist",
        "/nonexistent/allowlist.toml",
    ];
    let output = nosctl(&args);
    assert_eq!(
        output.status.code(),
        Some(2),
        "{}",
        describe(&args, &output)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no allowlist loaded: cannot read /nonexistent/allowlist.toml")
            && stderr.contains("--allowlist")
            && !stderr.contains("invalid allowlist"),
        "{stderr}"
    );
}

#[test]
fn text_report() {
    let (code, stdout) = plan(
        BTRFS_MAINTENANCE,
        r#"{"action": "balance-start", "pool": "/srv/pool"}"#,
        &[],
    );
    assert_eq!(code, 0);
    let stdout = stdout
        .split_once("): ")
        .map(|(_, rest)| rest)
        .unwrap_or(&stdout);
    expect_test::expect![[r#"
        1 steps, 0 rejected
          1. balance [state] Rewrite block groups of /srv/pool that are at most 50% full
             request:  btrfs balance start -dusage=50 -musage=50 /srv/pool
             verdict:  allowed by btrfs.balance.start: /usr/bin/btrfs balance start -dusage=50 -musage=50 -- /srv/pool
    "#]].assert_eq(stdout);
}

#[test]
fn json_report() {
    let (code, stdout) = plan(HOSTILE_OUT_OF_SCOPE, "{}", &["--json"]);
    assert_eq!(code, 1);
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["all_allowed"], false);
    assert_eq!(
        report["steps"][0]["verdict"]["rule_id"],
        "btrfs.filesystem.show"
    );
    assert_eq!(
        report["steps"][1]["verdict"]["reason"],
        "rule btrfs.device.remove.devid is outside the plugin's scope"
    );
}

#[test]
fn plugin_inspect() {
    let output = nosctl(&["plugin", "inspect", BTRFS_POOL, "--json"]);
    assert!(
        output.status.success(),
        "{}",
        describe(&["plugin", "inspect"], &output)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["name"], "btrfs-pool");
    assert_eq!(report["api_version"], "0.3.0");
    assert_eq!(report["exports"][0], "nos:plugin/planning@0.3.0");
    assert_eq!(report["limits"]["fuel"], 200_000_000);

    let refused = nosctl(&["plugin", "inspect", HOSTILE_API_VERSION]);
    assert_eq!(refused.status.code(), Some(3));
    expect_test::expect![[r#"
        refused: plugin hostile-api-version targets planner API 0.9.0; this host supports 0.1.0 to 0.3.0
    "#]]
    .assert_eq(&String::from_utf8_lossy(&refused.stdout));
    assert!(Path::new(HOSTILE_API_VERSION).join("plugin.wasm").is_file());
}
