//! Managed-file requests judged by the default allowlist's `[[managed]]` rules.

use nos_allowlist::{Allowlist, ManagedAction, ManagedRequest, ManagedVerdict, Source};

fn default_allowlist() -> Allowlist {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../allowlist.toml"))
            .expect("read allowlist.toml");
    Allowlist::load(&[Source {
        name: "allowlist.toml".into(),
        text,
    }])
    .expect("default allowlist loads")
}

/// `expect` is the rule id, or the rejection's text.
#[track_caller]
fn check(action: ManagedAction, request: ManagedRequest, expect: &str) {
    let got = match default_allowlist().check_managed(action, &request) {
        ManagedVerdict::Allowed(matched) => matched.rule_id,
        ManagedVerdict::Rejected(rejection) => rejection.to_string(),
    };
    assert_eq!(got, expect, "{request:?}");
}

const UUID: &str = "0123abcd-0000-4000-8000-00000000beef";

#[test]
fn allows_the_entries_storage_needs() {
    use ManagedAction::{Ensure, Remove};
    check(
        Ensure,
        ManagedRequest::MountDir {
            path: "/srv/pool".into(),
        },
        "managed.mount_dir",
    );
    check(
        Remove,
        ManagedRequest::MountDir {
            path: "/mnt/data".into(),
        },
        "managed.mount_dir",
    );
    check(
        Ensure,
        ManagedRequest::KeyFile {
            path: "/etc/nos/keys/pool.key".into(),
        },
        "managed.key_file",
    );
    check(
        Ensure,
        ManagedRequest::FstabEntry {
            uuid: UUID.into(),
            target: "/srv/pool".into(),
            options: "compress=zstd:3,noatime".into(),
        },
        "managed.fstab",
    );
    check(
        Remove,
        ManagedRequest::FstabEntry {
            uuid: UUID.into(),
            target: "/srv/pool".into(),
            options: "noatime".into(),
        },
        "managed.fstab",
    );
    check(
        Ensure,
        ManagedRequest::CrypttabEntry {
            name: "luks-pool-0".into(),
            device_uuid: UUID.into(),
            key: "/etc/nos/keys/pool.key".into(),
        },
        "managed.crypttab",
    );
}

#[test]
fn rejects_entries_outside_the_grammar() {
    use ManagedAction::{Ensure, Remove};
    check(
        Ensure,
        ManagedRequest::MountDir {
            path: "/etc/cron.d".into(),
        },
        "path `/etc/cron.d` is not a valid pool: it is not below /srv or /mnt (closest rule: managed.mount_dir)",
    );
    check(
        Ensure,
        ManagedRequest::MountDir {
            path: "/srv".into(),
        },
        "path `/srv` is not a valid pool: it is the root `/srv` itself, not a path strictly below it (closest rule: managed.mount_dir)",
    );
    check(
        Ensure,
        ManagedRequest::MountDir {
            path: "/srv/../etc".into(),
        },
        "path `/srv/../etc` is not a valid pool: it has a `..` path component (closest rule: managed.mount_dir)",
    );
    check(
        Remove,
        ManagedRequest::KeyFile {
            path: "/etc/nos/keys/pool.key".into(),
        },
        "the action `remove` is not allowed for this managed file (closest rule: managed.key_file)",
    );
    check(
        Ensure,
        ManagedRequest::KeyFile {
            path: "/etc/shadow".into(),
        },
        "path `/etc/shadow` is not a valid key: it is not below /etc/nos/keys (closest rule: managed.key_file)",
    );
    check(
        Ensure,
        ManagedRequest::FstabEntry {
            uuid: UUID.into(),
            target: "/srv/pool".into(),
            options: "noatime suid".into(),
        },
        "options `noatime suid` is not a valid fstab_options: it has the mount option `noatime suid`, which is not allowed (closest rule: managed.fstab)",
    );
    check(
        Ensure,
        ManagedRequest::FstabEntry {
            uuid: UUID.into(),
            target: "/srv/pool".into(),
            options: "noatime\n/dev/sda / ext4".into(),
        },
        "options `noatime\\u{a}/dev/sda / ext4` is not a valid fstab_options: it has the mount option `noatime\\u{a}/dev/sda / ext4`, which is not allowed (closest rule: managed.fstab)",
    );
    check(
        Ensure,
        ManagedRequest::FstabEntry {
            uuid: "not-a-uuid".into(),
            target: "/srv/pool".into(),
            options: "noatime".into(),
        },
        "uuid `not-a-uuid` is not a valid uuid: it is not a canonical lowercase uuid (8-4-4-4-12 hex digits) (closest rule: managed.fstab)",
    );
    check(
        Ensure,
        ManagedRequest::CrypttabEntry {
            name: "a b".into(),
            device_uuid: UUID.into(),
            key: "/etc/nos/keys/p.key".into(),
        },
        "name `a b` is not a valid mapper: it has the character U+0020 at byte 1, outside the allowed set (closest rule: managed.crypttab)",
    );
}

#[test]
fn canonical_fstab_options_carry_the_forced_ones() {
    let verdict = default_allowlist().check_managed(
        ManagedAction::Ensure,
        &ManagedRequest::FstabEntry {
            uuid: UUID.into(),
            target: "/srv/pool".into(),
            options: "noatime".into(),
        },
    );
    let ManagedVerdict::Allowed(matched) = verdict else {
        panic!("rejected")
    };
    assert_eq!(
        matched.request,
        ManagedRequest::FstabEntry {
            uuid: UUID.into(),
            target: "/srv/pool".into(),
            options: "noatime,nosuid,nodev,nofail,x-systemd.device-timeout=30s".into()
        }
    );
    assert_eq!(
        matched.boot_options,
        ["nofail", "x-systemd.device-timeout=30s"]
    );
    assert_eq!(
        matched.to_string(),
        format!(
            "fstab UUID={UUID} /srv/pool btrfs noatime,nosuid,nodev,nofail,x-systemd.device-timeout=30s"
        )
    );
}

/// Issue 14: a crypttab entry is written with `luks` and the boot options; the request as sent
/// still reads `luks`, the match as it will be written.
#[test]
fn issue_14_crypttab_options_carry_the_boot_options() {
    let request = ManagedRequest::CrypttabEntry {
        name: "luks-pool-0".into(),
        device_uuid: UUID.into(),
        key: "/etc/nos/keys/pool.key".into(),
    };
    let ManagedVerdict::Allowed(matched) =
        default_allowlist().check_managed(ManagedAction::Ensure, &request)
    else {
        panic!("rejected")
    };
    assert_eq!(
        matched.crypttab_options(),
        "luks,nofail,x-systemd.device-timeout=30s"
    );
    assert_eq!(
        request.to_string(),
        format!("crypttab luks-pool-0 UUID={UUID} /etc/nos/keys/pool.key luks")
    );
    assert_eq!(
        matched.to_string(),
        format!(
            "crypttab luks-pool-0 UUID={UUID} /etc/nos/keys/pool.key luks,nofail,x-systemd.device-timeout=30s"
        )
    );
    // Other kinds get no boot options.
    let ManagedVerdict::Allowed(dir) = default_allowlist().check_managed(
        ManagedAction::Ensure,
        &ManagedRequest::MountDir {
            path: "/srv/pool".into(),
        },
    ) else {
        panic!("rejected")
    };
    assert!(dir.boot_options.is_empty());
}
