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
        expect![[r#"
        main.toml:20:1: unknown field `colour`, expected one of `id`, `binary`, `effect`, `description`, `argv`, `params`, `flag`, `limits`, `job`, `distinct`, `min_flags`"#]],
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
            main.toml:26:8: unknown type kind `regex` (known: device, mount_path, key_file, label, mapper_name, enum, int, devid, uuid, mount_options)
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
            main.toml:27:12: param `a` counts must satisfy min <= max, 1 <= max <= 32
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
    check_errors(
        &rule("destructive", r#"{ type = "disk", in_use = "yes" }"#),
        None,
        expect!["main.toml:20:17: param `device`: in_use `yes` is not `refused` or `allowed`"],
    );
    check_errors(
        &rule("destructive", r#"{ type = "disk", in_use = "allowed" }"#),
        None,
        expect![[r#"main.toml:20:17: param `device`: in_use = "allowed" needs an in_use_reason"#]],
    );
    check_errors(
        &rule(
            "destructive",
            r#"{ type = "disk", in_use = "allowed", in_use_reason = "" }"#,
        ),
        None,
        expect![
            "main.toml:20:17: param `device`: in_use_reason must be printable ASCII, 1 to 200 bytes"
        ],
    );
    check_errors(
        &rule(
            "destructive",
            r#"{ type = "disk", in_use = "allowed", in_use_reason = "a\tb" }"#,
        ),
        None,
        expect![
            "main.toml:20:17: param `device`: in_use_reason must be printable ASCII, 1 to 200 bytes"
        ],
    );
    check_errors(
        &rule(
            "destructive",
            r#"{ type = "disk", in_use_reason = "member" }"#,
        ),
        None,
        expect![[
            r#"main.toml:20:17: param `device`: in_use_reason is only for in_use = "allowed""#
        ]],
    );
    check_errors(
        &rule(
            "read",
            r#"{ type = "disk", in_use = "allowed", in_use_reason = "member" }"#,
        ),
        None,
        expect![
            "main.toml:20:17: param `device`: in_use applies only to state or destructive rules (a read rule is never checked)"
        ],
    );
    check_errors(
        &rule(
            "destructive",
            r#"{ type = "pool", in_use = "allowed", in_use_reason = "member" }"#,
        ),
        None,
        expect![
            "main.toml:20:17: param `device`: in_use applies only to device params, this is a mount_path"
        ],
    );
    check_errors(
        &rule("destructive", r#"{ type = "disk", in_use = true }"#),
        None,
        expect!["main.toml:20:43: invalid type: boolean `true`, expected a string"],
    );
}
