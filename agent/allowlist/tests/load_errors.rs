//! Load-time validation: every diagnostic names the file, line and column, and an invalid
//! allowlist never loads. Snapshots hold the exact words (`UPDATE_EXPECT=1` to refresh).

use expect_test::{Expect, expect};
use nos_allowlist::{Allowlist, Source};

const HEADER: &str = r#"version = 1
[[binary]]
name = "btrfs"
path = "/usr/bin/btrfs"
end_of_options = true
[[type]]
name = "pool"
kind = "mount_path"
[[type]]
name = "disk"
kind = "device"
[[type]]
name = "devid"
kind = "devid"
"#;

/// Loads `HEADER` + `body` as `main.toml` (and `overlay` as `overlay.toml`) and compares the
/// diagnostics, one per line, with `expect`.
#[track_caller]
fn check_errors(body: &str, overlay: Option<&str>, expect: Expect) {
    let mut sources = vec![Source {
        name: "main.toml".into(),
        text: format!("{HEADER}{body}"),
    }];
    sources.extend(overlay.map(|text| Source {
        name: "overlay.toml".into(),
        text: text.into(),
    }));
    match Allowlist::load(&sources) {
        Ok(_) => panic!("loaded, expected diagnostics"),
        Err(errors) => expect.assert_eq(&errors.to_string()),
    }
}

#[test]
fn syntax_and_unknown_keys_name_the_location() {
    check_errors(
        "[[rule]]\nid = \"x\"\nbinary = \"btrfs\"\neffect = \"read\"\nargv = [\"a\"]\ncolour = \"red\"\n",
        None,
        expect![
            "main.toml:20:1: unknown field `colour`, expected one of `id`, `binary`, `effect`, `description`, `argv`, `params`, `flag`, `limits`, `job`, `beside_jobs`, `distinct`, `min_flags`"
        ],
    );
    check_errors(
        "[[rule]]\nid = \"x\"\nbinary = \"btrfs\"\neffect = \"delete\"\nargv = [\"a\"]\n",
        None,
        expect![[r#"
        main.toml:18:10: unknown variant `delete`, expected one of `read`, `state`, `destructive`"#]],
    );
    check_errors(
        "[[rule]\n",
        None,
        expect!["main.toml:15:8: unclosed array table, expected `]`"],
    );
    check_errors(
        "[[type]]\nname = \"n\"\nkind = \"int\"\nmin = \"zero\"\n",
        None,
        expect![[r#"
        main.toml:18:7: invalid type: string "zero", expected u64"#]],
    );
}

#[test]
fn semantic_errors_are_all_collected() {
    check_errors(
        r#"[[binary]]
name = "sh"
path = "bin/sh"
[[binary]]
name = "btrfs"
path = "/usr/bin/btrfs2"
[[type]]
name = "pool"
kind = "label"
[[type]]
name = "weird"
kind = "regex"
[[type]]
name = "range"
kind = "int"
min = 5
max = 1
roots = ["/srv"]
[[rule]]
id = "a"
binary = "nosuch"
effect = "read"
argv = ["$x", "$y..."]
params.y = { type = "nosuchtype", min = 1, max = 99 }
"#,
        None,
        expect![[r#"
            main.toml:17:8: binary path `bin/sh` is not an absolute path
            main.toml:19:8: binary `btrfs` is already defined at main.toml:3:8
            main.toml:22:8: type `pool` is already defined at main.toml:7:8
            main.toml:26:8: unknown type kind `regex` (known: device, mount_path, key_file, label, mapper_name, enum, int, devid, uuid, mount_options, subvolume)
            main.toml:28:8: field `roots` does not apply to a `int` type
            main.toml:28:8: min 5 is above max 1
            main.toml:35:10: unknown binary `nosuch`
            main.toml:34:6: unknown type `nosuchtype`
            main.toml:37:9: unknown param `x`
            main.toml:37:15: unknown param `y`"#]],
    );
}

#[test]
fn template_shapes_are_checked() {
    check_errors(
        r#"[[rule]]
id = "two.variadics"
binary = "btrfs"
effect = "read"
argv = ["$a...", "$b..."]
params.a = { type = "disk", min = 1, max = 2 }
params.b = { type = "disk", min = 1, max = 2 }
[[rule]]
id = "too.many"
binary = "btrfs"
effect = "read"
argv = ["x", "$a..."]
params.a = { type = "disk", min = 1, max = 33 }
[[rule]]
id = "unused"
binary = "btrfs"
effect = "read"
argv = ["y"]
params.a = { type = "disk" }
[[rule]]
id = "dashed.literal"
binary = "btrfs"
effect = "read"
argv = ["z", "$flags", "-t", "$p"]
params.p = { type = "pool" }
[[rule.flag]]
name = "force"
token = "-f"
"#,
        None,
        expect![[r#"
            main.toml:19:18: a rule may have only one variadic param
            main.toml:27:12: param `a` counts must satisfy min <= max, 1 <= max <= 32 (it has min 1, max 33)
            main.toml:29:6: param `a` is declared but not used in argv
            main.toml:38:24: literal `-t` right after `$flags` would read as a flag"#]],
    );
}

#[test]
fn overlapping_rules_are_an_error_with_a_witness() {
    check_errors(
        r#"[[rule]]
id = "remove.by.path"
binary = "btrfs"
effect = "destructive"
argv = ["device", "remove", "--", "$devices...", "$pool"]
params.devices = { type = "disk", min = 1, max = 4 }
params.pool = { type = "pool" }
[[type]]
name = "anything"
kind = "label"
[[rule]]
id = "remove.by.label"
binary = "btrfs"
effect = "destructive"
argv = ["device", "remove", "$what", "$pool"]
params.what = { type = "anything" }
params.pool = { type = "pool" }
[[rule]]
id = "remove.by.devid"
binary = "btrfs"
effect = "destructive"
argv = ["device", "remove", "$ids...", "$pool"]
params.ids = { type = "devid", min = 1, max = 4 }
params.pool = { type = "pool" }
"#,
        None,
        expect![
            "main.toml:33:6: rules `remove.by.label` and `remove.by.devid` overlap: both accept `btrfs device remove 1 /srv/a`"
        ],
    );
}

#[test]
fn overlays_cannot_redefine_or_set_settings() {
    let overlay = r#"version = 1
[settings]
mount_roots = ["/"]
[[binary]]
name = "btrfs"
path = "/tmp/btrfs"
[[rule]]
id = "mine"
binary = "btrfs"
effect = "read"
argv = ["version"]
"#;
    check_errors(
        "",
        Some(overlay),
        expect![[r#"
        overlay.toml:2:1: [settings] may only appear in the main allowlist file, not in an overlay
        overlay.toml:5:8: binary `btrfs` is already defined at main.toml:3:8"#]],
    );
}

#[test]
fn settings_keep_the_forced_mount_options() {
    check_errors(
        "[settings]\nforced_mount_options = [\"nosuid\"]\n",
        None,
        expect![[r#"
        main.toml:16:24: forced_mount_options must contain `nodev`"#]],
    );
    check_errors(
        "[[type]]\nname = \"o\"\nkind = \"mount_options\"\nallow = [\"noatime\", \"suid\"]\n",
        None,
        expect![[r#"
        main.toml:16:8: mount option `suid` contradicts the forced nosuid,nodev"#]],
    );
    let future = Allowlist::load(&[Source {
        name: "future.toml".into(),
        text: "version = 2\n".into(),
    }]);
    expect!["future.toml:1:11: format version 2 is not supported (this engine reads version 1)"]
        .assert_eq(
            &future
                .err()
                .map(|errors| errors.to_string())
                .unwrap_or_default(),
        );
}

#[test]
fn in_use_needs_a_known_value_a_reason_and_a_device_of_a_changing_rule() {
    let rule = |effect: &str, param: &str| {
        format!(
            "[[rule]]\nid = \"x\"\nbinary = \"btrfs\"\neffect = \"{effect}\"\nargv = [\"device\", \"remove\", \"$device\", \"$pool\"]\nparams.device = {param}\nparams.pool = {{ type = \"pool\" }}\n"
        )
    };
    let cases = [
        (
            "destructive",
            r#"{ type = "disk", in_use = "yes" }"#,
            expect!["main.toml:20:17: param `device`: in_use `yes` is not `refused` or `allowed`"],
        ),
        (
            "destructive",
            r#"{ type = "disk", in_use = "allowed" }"#,
            expect![[
                r#"main.toml:20:17: param `device`: in_use = "allowed" needs an in_use_reason"#
            ]],
        ),
        (
            "destructive",
            r#"{ type = "disk", in_use = "allowed", in_use_reason = "" }"#,
            expect![
                "main.toml:20:17: param `device`: in_use_reason must be printable ASCII, 1 to 200 bytes"
            ],
        ),
        (
            "destructive",
            r#"{ type = "disk", in_use = "allowed", in_use_reason = "a\tb" }"#,
            expect![
                "main.toml:20:17: param `device`: in_use_reason must be printable ASCII, 1 to 200 bytes"
            ],
        ),
        (
            "destructive",
            r#"{ type = "disk", in_use_reason = "member" }"#,
            expect![[
                r#"main.toml:20:17: param `device`: in_use_reason is only for in_use = "allowed""#
            ]],
        ),
        (
            "read",
            r#"{ type = "disk", in_use = "allowed", in_use_reason = "member" }"#,
            expect![
                "main.toml:20:17: param `device`: in_use applies only to state or destructive rules (a read rule is never checked)"
            ],
        ),
        (
            "destructive",
            r#"{ type = "pool", in_use = "allowed", in_use_reason = "member" }"#,
            expect![
                "main.toml:20:17: param `device`: in_use applies only to device params, this is a mount_path"
            ],
        ),
        (
            "destructive",
            r#"{ type = "disk", in_use = true }"#,
            expect!["main.toml:20:43: invalid type: boolean `true`, expected a string"],
        ),
    ];
    for (effect, param, expect) in cases {
        check_errors(&rule(effect, param), None, expect);
    }
}

#[test]
fn bounds_name_the_field_the_value_and_the_bounds() {
    check_errors(
        r#"[[type]]
name = "deep"
kind = "mount_path"
max_depth = 20
[[type]]
name = "long"
kind = "label"
max_len = 0
[[type]]
name = "opts"
kind = "mount_options"
allow = ["noatime", "noatime", "Bad", "compress=$deep"]
max_items = 65
[[type]]
name = "colour"
kind = "enum"
values = ["red", "-blue", "red", "red,,blue", "red,soft"]
[[type]]
name = "dev"
kind = "device"
forms = ["kernel", "by-name"]
kernel_names = ["SD"]
[[rule]]
id = "limited"
binary = "btrfs"
effect = "read"
argv = ["version"]
limits = { timeout_s = 0, max_stdout = 999999999, exit_states = { "300" = "odd" } }
"#,
        None,
        expect![[r#"
            main.toml:16:8: `max_depth` is 20; it must be 1 to 16
            main.toml:20:8: `max_len` is 0; it must be 1 to 255
            main.toml:24:8: mount option `noatime` appears twice
            main.toml:24:8: mount option `Bad` is not a plain option word ([a-z][a-z0-9_=:.-]*, then maybe `$` and a type)
            main.toml:24:8: `max_items` is 65; it must be 1 to 64
            main.toml:29:8: enum value `-blue` is not plain words ([A-Za-z0-9._@:+-]+, not starting with `-`) joined by single commas
            main.toml:29:8: enum value `red` appears twice
            main.toml:29:8: enum value `red,,blue` is not plain words ([A-Za-z0-9._@:+-]+, not starting with `-`) joined by single commas
            main.toml:33:8: unknown device form `by-name`
            main.toml:33:8: kernel name prefix `SD` is not [a-z][a-z0-9-]*, at most 16 bytes
            main.toml:24:8: mount option `compress=` takes a `deep`, a mount_path; only int, enum, label or uuid values are allowed
            main.toml:38:6: `timeout_s` is 0; it must be 1 to 86400
            main.toml:38:6: `max_stdout` is 999999999; it must be 0 to 67108864
            main.toml:38:6: exit state `300` is not an exit code from 1 to 255"#]],
    );
}

#[test]
fn flags_and_distinct_are_checked() {
    check_errors(
        r#"[[rule]]
id = "flagged"
binary = "btrfs"
effect = "state"
argv = ["balance", "$flags", "$a", "$b", "$pool"]
params.a = { type = "devid" }
params.b = { type = "devid", min = 1, max = 2 }
params.pool = { type = "pool" }
distinct = ["a", "a", "b"]
min_flags = 20
[[rule.flag]]
name = "data"
token = "-d="
[[rule.flag]]
name = "dconvert"
token = "-dconvert="
value = "devid"
max = 9
[[rule.flag]]
name = "data"
token = "force"
"#,
        None,
        expect![[r#"
            main.toml:25:1: flag `-d=` ends with `=` but declares no value type
            main.toml:28:1: flag `dconvert` max is 9; it must be 1 to 8
            main.toml:33:1: flag token `force` is not `-` followed by a plain word ([A-Za-z0-9._@:+=-]+), and not `--`
            main.toml:33:1: flag `data` (`force`) is declared twice
            main.toml:19:36: param `b` declares min/max, so write `$b...`
            main.toml:16:6: distinct param `a` appears twice
            main.toml:16:6: distinct names `b`, a variadic param (use its own `distinct`)
            main.toml:16:6: distinct needs at least two params
            main.toml:16:6: min_flags 20 cannot be met by the declared flags (they allow at most 11)"#]],
    );
}

#[test]
fn managed_rules_are_checked() {
    check_errors(
        r#"[[managed]]
id = "dirs"
kind = "mount_dir"
effect = "state"
params.path = { type = "pool" }
[[managed]]
id = "dirs.again"
kind = "mount_dir"
effect = "state"
[[managed]]
id = "what"
kind = "symlink"
effect = "state"
[[managed]]
id = "keys"
kind = "key_file"
effect = "state"
actions = []
params.path = { type = "disk", min = 1 }
params.mode = { type = "pool" }
"#,
        None,
        expect![[r#"
            main.toml:22:8: managed kind `mount_dir` already has rule `dirs` at main.toml:16:6
            main.toml:21:6: managed mount_dir needs params.path (a mount_path type)
            main.toml:26:8: unknown managed kind `symlink` (known: mount_dir, key_file, fstab_entry, crypttab_entry)
            main.toml:33:15: params.path of a managed rule takes only a type
            main.toml:33:15: params.path needs a key_file type; `disk` is a device
            main.toml:29:6: managed key_file has no field `mode`
            main.toml:29:6: `actions` needs at least one entry"#]],
    );
}

/// Issue 14: the boot options are closed, each exactly once, and none may be left out.
#[test]
fn issue_14_forced_boot_options_are_nofail_and_one_device_timeout() {
    check_errors(
        "[settings]\nforced_boot_options = [\"nofail\"]\n",
        None,
        expect![[r#"
            main.toml:16:23: forced_boot_options must contain `x-systemd.device-timeout=`"#]],
    );
    check_errors(
        "[settings]\nforced_boot_options = [\"x-systemd.device-timeout=30s\", \"nofail\", \"nofail\"]\n",
        None,
        expect![[r#"
            main.toml:16:23: boot option `nofail` appears twice"#]],
    );
    check_errors(
        "[settings]\nforced_boot_options = [\"nofail\", \"x-systemd.device-timeout=0s\", \"noauto\", \"x-systemd.device-timeout=30\"]\n",
        None,
        expect![[r#"
            main.toml:16:23: forced_boot_options may hold only `nofail` and one `x-systemd.device-timeout=<1 to 600>s` (both valid in fstab and crypttab), not `x-systemd.device-timeout=0s`
            main.toml:16:23: forced_boot_options may hold only `nofail` and one `x-systemd.device-timeout=<1 to 600>s` (both valid in fstab and crypttab), not `noauto`
            main.toml:16:23: forced_boot_options may hold only `nofail` and one `x-systemd.device-timeout=<1 to 600>s` (both valid in fstab and crypttab), not `x-systemd.device-timeout=30`
            main.toml:16:23: forced_boot_options must contain `x-systemd.device-timeout=`"#]],
    );
    check_errors(
        "[settings]\nforced_boot_options = []\n",
        None,
        expect![[r#"
            main.toml:16:23: forced_boot_options must contain `nofail`
            main.toml:16:23: forced_boot_options must contain `x-systemd.device-timeout=`"#]],
    );
}

/// Issue 14: an fstab entry's options type may not allow `degraded` (a pool is never mounted
/// degraded at boot) nor a forced boot option's key (the request cannot change the timeout); a
/// mount rule's type may allow `degraded`.
#[test]
fn issue_14_fstab_options_never_boot_degraded() {
    check_errors(
        r#"[[type]]
name = "uuid"
kind = "uuid"
[[type]]
name = "secs"
kind = "int"
[[type]]
name = "opts"
kind = "mount_options"
allow = ["noatime", "degraded", "x-systemd.device-timeout=$secs", "nofail", "ro"]
[[managed]]
id = "fstab"
kind = "fstab_entry"
effect = "state"
params.uuid = { type = "uuid" }
params.target = { type = "pool" }
params.options = { type = "opts" }
"#,
        None,
        expect![[r#"
            main.toml:31:18: params.options of managed fstab_entry has type `opts`, which allows `degraded`: a pool is never mounted degraded at boot (the mount rule may allow it for a confirmed repair)
            main.toml:31:18: params.options of managed fstab_entry has type `opts`, which allows `x-systemd.device-timeout=<value>`: [settings] forced_boot_options sets it for every fstab entry
            main.toml:31:18: params.options of managed fstab_entry has type `opts`, which allows `nofail`: [settings] forced_boot_options sets it for every fstab entry"#]],
    );
}

/// `beside_jobs` (a rule that may run while a job holds its pool) only on a read or state rule
/// that is not itself a job: a destructive step or a second long operation never bypasses the
/// pool lock.
#[test]
fn beside_jobs_only_for_what_stops_or_reads() {
    check_errors(
        r#"[[rule]]
id = "wipe"
binary = "btrfs"
effect = "destructive"
argv = ["device", "remove", "--", "$pool"]
params.pool = { type = "pool" }
beside_jobs = true
[[rule]]
id = "long"
binary = "btrfs"
effect = "state"
argv = ["scrub", "start", "-B", "--", "$pool"]
params.pool = { type = "pool" }
job = true
beside_jobs = true
[[rule]]
id = "cancel"
binary = "btrfs"
effect = "state"
argv = ["scrub", "cancel", "--", "$pool"]
params.pool = { type = "pool" }
beside_jobs = true
"#,
        None,
        expect![[r#"
            main.toml:16:6: beside_jobs is only for a read or state rule that is not a job (it stops or reads a job's operation)
            main.toml:23:6: beside_jobs is only for a read or state rule that is not a job (it stops or reads a job's operation)"#]],
    );
}

/// Callers match on what went wrong, not on its words.
#[test]
fn diagnostics_are_typed() {
    use nos_allowlist::{DiagnosticKind, InUseProblem, TemplateProblem};
    let errors = Allowlist::load(&[Source {
        name: "main.toml".into(),
        text: format!(
            "{HEADER}[[rule]]\nid = \"x\"\nbinary = \"btrfs\"\neffect = \"read\"\nargv = [\"$flags\", \"$d\"]\nparams.d = {{ type = \"disk\", in_use = \"allowed\", in_use_reason = \"r\" }}\nlimits = {{ kill_after_s = 90000 }}\n"
        ),
    }])
    .expect_err("invalid");
    let kinds: Vec<&DiagnosticKind> = errors.0.iter().map(|diagnostic| &diagnostic.kind).collect();
    assert!(
        matches!(
            kinds[..],
            [
                DiagnosticKind::InUse {
                    problem: InUseProblem::ReadRule,
                    ..
                },
                DiagnosticKind::Template(TemplateProblem::NoFlagDeclared),
                DiagnosticKind::OutOfRange {
                    field: "kill_after_s",
                    value: 90000,
                    min: 0,
                    max: 86400,
                },
            ]
        ),
        "{kinds:?}"
    );
}
