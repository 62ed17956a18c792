//! `audit` findings: each code has one stable string form and one severity, and a table of
//! findings reads the same as `nosctl allowlist audit` prints it.

use std::collections::BTreeSet;

use expect_test::expect;
use nos_allowlist::audit::{self, BinaryFacts, BinaryState, FindingCode};
use nos_allowlist::{Allowlist, Source};

#[test]
fn codes_are_distinct_and_shaped_area_dot_what() {
    let names: BTreeSet<&str> = FindingCode::ALL.iter().map(|code| code.as_str()).collect();
    assert_eq!(
        names.len(),
        FindingCode::ALL.len(),
        "a code string is reused"
    );
    for code in FindingCode::ALL {
        let (area, what) = code.as_str().split_once('.').expect("area.what");
        assert!(
            ["settings", "binary", "type", "rule", "managed"].contains(&area) && !what.is_empty(),
            "{code}"
        );
        assert_eq!(code.to_string(), code.as_str());
    }
}

#[test]
fn findings_table() {
    let text = r#"version = 1
[settings]
mount_roots = ["/srv", "/var/pools"]
[[binary]]
name = "btrfs"
path = "/usr/bin/btrfs"
[[binary]]
name = "wipefs"
path = "/usr/sbin/wipefs"
sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
[[type]]
name = "disk"
kind = "device"
[[type]]
name = "opts"
kind = "mount_options"
allow = ["noatime", "degraded", "bind"]
[[rule]]
id = "wipe"
binary = "wipefs"
effect = "destructive"
argv = ["$flags", "$devices..."]
params.devices = { type = "disk", min = 1, max = 12 }
[[rule.flag]]
name = "force"
token = "-f"
"#;
    let allowlist = Allowlist::load(&[Source {
        name: "audit.toml".into(),
        text: text.into(),
    }])
    .expect("loads");
    let facts = [BinaryFacts {
        path: "/usr/sbin/wipefs".into(),
        state: BinaryState::Present {
            owner_uid: 1000,
            mode: 0o100775,
            symlinked_component: Some("/usr/sbin".into()),
            unsafe_parent: None,
            sha256: [1; 32],
        },
    }];
    let table: Vec<String> = audit::audit(&allowlist, &facts)
        .iter()
        .map(|finding| {
            assert_eq!(finding.severity, finding.code.severity());
            format!(
                "{:<8} {:<28} {:<26} {}",
                finding.severity.as_str(),
                finding.code,
                finding.subject,
                finding.message
            )
        })
        .collect();
    expect![[r#"
        critical settings.mount_root          /var/pools                 mount root `/var/pools` is or lies in a system directory
        critical binary.owner                 wipefs                     /usr/sbin/wipefs is owned by uid 1000, not root
        critical binary.writable              wipefs                     /usr/sbin/wipefs is writable by group or others (mode 0775)
        critical binary.digest                wipefs                     /usr/sbin/wipefs has sha256 0101010101010101010101010101010101010101010101010101010101010101, not the pinned 0000000000000000000000000000000000000000000000000000000000000000
        high     type.dangerous_mount_option  opts                       allows the mount option `bind`
        medium   rule.repeated_devices        wipe                       devices may repeat the same device
        medium   binary.symlink               wipefs                     /usr/sbin/wipefs is reached through the symlink /usr/sbin
        low      binary.unpinned              btrfs                      /usr/bin/btrfs is not pinned by sha256; a replaced binary would still run
        low      type.device_by_content       disk                       accepts /dev/disk/by-label|by-uuid|by-partuuid names, which whoever formatted a disk chooses; the agent resolves them to kernel names
        low      type.degraded                opts                       allows mounting degraded, which hides a missing device
        low      rule.force_flag              wipe                       allows the force flag `-f`, which overrides the tool's own safety checks
        info     rule.destructive             wipe                       destructive: may destroy data
        info     rule.broad_variadic          wipe                       devices takes up to 12 values"#]]
    .assert_eq(&table.join("\n"));
}
