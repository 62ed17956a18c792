//! The files the agent manages on request, and nothing else: fstab/crypttab entries inside a
//! marked block, random key files, and mount-point directories under the configured roots.
//!
//! A request reaches this module only as a [`ManagedMatch`]: judged and canonicalised by the
//! allowlist's `[[managed]]` rules, as argvs are. [`apply`] then refuses any value that would not
//! be one whitespace-free token of a table line, and any mount path deeper below its root than
//! the rule's `mount_path` type allows (defence in depth), and hands over to two halves:
//!
//! * [`table`] edits the text of a managed block (pure: old text and a change in, new text out;
//!   lines outside the block are kept byte for byte);
//! * [`files`] re-checks what only the live filesystem can tell (root-owned, non-writable
//!   directory chains, [`crate::dir_chain`]; no symlinks; no existing key) and writes: a table
//!   is replaced atomically ([`nos_fs::write_atomic`]: temporary, fsync, rename, fsync of the
//!   directory) after a backup of the previous content (`<file>.nos-bak`, also atomic).
//!
//! This module never spawns and never decides what is allowed.

mod files;
pub mod table;

use std::path::PathBuf;

use nos_allowlist::{ManagedAction, ManagedMatch, ManagedRequest};

use table::{Entry, Table};

#[derive(Debug, Clone)]
pub struct ManagedConfig {
    pub fstab: PathBuf,
    pub crypttab: PathBuf,
    pub key_dir: PathBuf,
    pub mount_roots: Vec<PathBuf>,
}

impl ManagedConfig {
    /// The file of `table`.
    fn path_of(&self, table: Table) -> &PathBuf {
        match table {
            Table::Fstab => &self.fstab,
            Table::Crypttab => &self.crypttab,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ManagedError {
    #[error("invalid {field}: {value:?}")]
    Invalid { field: &'static str, value: String },
    #[error("{0}: not under a configured mount root")]
    OutsideRoots(String),
    #[error("{path}: {reason}")]
    UnsafePath { path: PathBuf, reason: String },
    #[error("{0}: already exists")]
    Exists(PathBuf),
    #[error("{0}: managed block markers are unbalanced or repeated")]
    CorruptBlock(PathBuf),
    #[error("{0}: too large or too many managed entries")]
    TooLarge(PathBuf),
    #[error("{0}")]
    Unsupported(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What a request changed.
#[derive(Debug)]
pub struct Applied {
    pub rule_id: String,
    pub path: PathBuf,
    pub changed: bool,
    pub backup: Option<PathBuf>,
}

/// Applies a judged managed request.
pub fn apply(config: &ManagedConfig, matched: &ManagedMatch) -> Result<Applied, ManagedError> {
    let applied = |path: PathBuf, changed: bool| Applied {
        rule_id: matched.rule_id.clone(),
        path,
        changed,
        backup: None,
    };
    let entry = match (&matched.request, matched.action) {
        (ManagedRequest::MountDir { path }, ManagedAction::Ensure) => {
            let path = mount_path(config, matched, path)?;
            let changed = files::create_mount_dir(config, &path)?;
            return Ok(applied(path, changed));
        }
        (ManagedRequest::MountDir { path }, ManagedAction::Remove) => {
            let path = mount_path(config, matched, path)?;
            let changed = files::remove_mount_dir(&path)?;
            return Ok(applied(path, changed));
        }
        (ManagedRequest::KeyFile { path }, ManagedAction::Ensure) => {
            let path = PathBuf::from(token("key path", path)?);
            if path.parent() != Some(config.key_dir.as_path()) {
                return Err(ManagedError::Invalid {
                    field: "key path",
                    value: path.display().to_string(),
                });
            }
            files::create_key_file(&config.key_dir, &path)?;
            return Ok(applied(path, true));
        }
        (ManagedRequest::KeyFile { path }, ManagedAction::Remove) => {
            return Err(ManagedError::Unsupported(format!(
                "removing key file {path}: keys are never removed by request"
            )));
        }
        (
            ManagedRequest::FstabEntry {
                uuid,
                target,
                options,
            },
            _,
        ) => {
            let target = mount_path(config, matched, target)?.display().to_string();
            Entry::fstab(token("uuid", uuid)?, &target, token("options", options)?)
        }
        (
            ManagedRequest::CrypttabEntry {
                name,
                device_uuid,
                key,
            },
            _,
        ) => Entry::crypttab(
            token("name", name)?,
            token("device uuid", device_uuid)?,
            token("key", key)?,
            token("crypttab options", &matched.crypttab_options())?,
        ),
    };
    let path = config.path_of(entry.table);
    files::update_table(path, matched.action, &entry, matched.rule_id.clone())
}

/// `value` if it is `ok`, else an invalid `field`.
fn valid<'a>(field: &'static str, value: &'a str, ok: bool) -> Result<&'a str, ManagedError> {
    if ok {
        Ok(value)
    } else {
        Err(ManagedError::Invalid {
            field,
            value: value.to_owned(),
        })
    }
}

/// One field of a table line: printable ASCII without spaces, at most 4096 bytes. The allowlist
/// has already judged it; this keeps a line-based file well-formed whatever a rule allows.
fn token<'a>(field: &'static str, value: &'a str) -> Result<&'a str, ManagedError> {
    let ok = !value.is_empty()
        && value.len() <= 4096
        && value.bytes().all(|b| b.is_ascii_graphic())
        && !value.starts_with('#');
    valid(field, value, ok)
}

fn is_name_char(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-' || byte == b'.'
}

/// `name := [A-Za-z0-9_.-]{1,64}`, not starting with `-` or `.`.
fn file_name<'a>(field: &'static str, name: &'a str) -> Result<&'a str, ManagedError> {
    let ok = (1..=64).contains(&name.len())
        && name.bytes().all(is_name_char)
        && !name.starts_with('-')
        && !name.starts_with('.');
    valid(field, name, ok)
}

/// An absolute path of 1 ..= `matched.mount_depth` plain components below one of the mount
/// roots: the depth is the `max_depth` of the rule's `mount_path` type (what `nosctl allowlist
/// explain` prints), not a setting of the agent.
fn mount_path(
    config: &ManagedConfig,
    matched: &ManagedMatch,
    text: &str,
) -> Result<PathBuf, ManagedError> {
    let invalid = || ManagedError::Invalid {
        field: "mount path",
        value: text.to_owned(),
    };
    let max_depth = matched.mount_depth.ok_or_else(|| {
        ManagedError::Unsupported(format!(
            "rule {}: its mount path field has no mount_path type",
            matched.rule_id
        ))
    })?;
    if text.len() > 1024 || !text.starts_with('/') {
        return Err(invalid());
    }
    for root in &config.mount_roots {
        let root_text = root.to_string_lossy();
        let Some(rest) = text
            .strip_prefix(root_text.as_ref())
            .and_then(|rest| rest.strip_prefix('/'))
        else {
            continue;
        };
        let components: Vec<&str> = rest.split('/').collect();
        if components.len() > max_depth {
            return Err(invalid());
        }
        for component in components {
            file_name("mount path component", component)?;
        }
        return Ok(PathBuf::from(text));
    }
    Err(ManagedError::OutsideRoots(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::table::{BLOCK_BEGIN, BLOCK_END};
    use super::*;
    use nos_allowlist::{Allowlist, ManagedVerdict, Source};
    use std::os::unix::fs::MetadataExt;
    use std::path::Path;

    const DEFAULT_ALLOWLIST: &str = include_str!("../../../allowlist.toml");

    /// The default allowlist with its roots moved into `dir`.
    fn allowlist(dir: &Path) -> Allowlist {
        let root = dir.display();
        let text = DEFAULT_ALLOWLIST
            .replace(
                r#"mount_roots = ["/srv", "/mnt"]"#,
                &format!(r#"mount_roots = ["{root}/mnt"]"#),
            )
            .replace(
                r#"key_dir = "/etc/nos/keys""#,
                &format!(r#"key_dir = "{root}/keys""#),
            );
        Allowlist::load(&[Source {
            name: "allowlist.toml".into(),
            text,
        }])
        .unwrap()
    }

    fn config(dir: &Path) -> ManagedConfig {
        ManagedConfig {
            fstab: dir.join("fstab"),
            crypttab: dir.join("crypttab"),
            key_dir: dir.join("keys"),
            mount_roots: vec![dir.join("mnt")],
        }
    }

    /// Judges with the real allowlist, then applies.
    fn check(
        dir: &Path,
        action: ManagedAction,
        request: ManagedRequest,
    ) -> Result<Applied, String> {
        match allowlist(dir).check_managed(action, &request) {
            ManagedVerdict::Allowed(matched) => {
                apply(&config(dir), &matched).map_err(|err| err.to_string())
            }
            ManagedVerdict::Rejected(rejection) => Err(format!("rejected: {rejection}")),
        }
    }

    /// A root-owned scratch directory with an empty mount root `mnt`.
    fn scratch() -> tempfile::TempDir {
        let dir = crate::tests::scratch("nos-managed-");
        std::fs::create_dir(dir.path().join("mnt")).unwrap();
        dir
    }

    const UUID: &str = "0b6c0e4a-1111-4222-8333-944455556666";

    #[test]
    fn fstab_block_is_managed_and_backed_up() {
        let dir = scratch();
        let fstab = dir.path().join("fstab");
        std::fs::write(&fstab, "# static\n/dev/vda / ext4 defaults 0 1\n").unwrap();
        let tank = dir.path().join("mnt/tank").display().to_string();
        let request = ManagedRequest::FstabEntry {
            uuid: UUID.into(),
            target: tank.clone(),
            options: "noatime".into(),
        };
        let applied = check(dir.path(), ManagedAction::Ensure, request.clone()).unwrap();
        assert!(applied.changed);
        assert_eq!(applied.rule_id, "managed.fstab");
        let text = std::fs::read_to_string(&fstab).unwrap();
        assert_eq!(
            text,
            format!(
                "# static\n/dev/vda / ext4 defaults 0 1\n{BLOCK_BEGIN}\nUUID={UUID} {tank} btrfs noatime,nosuid,nodev,nofail,x-systemd.device-timeout=30s 0 0\n{BLOCK_END}\n"
            )
        );
        assert_eq!(
            std::fs::read_to_string(applied.backup.unwrap()).unwrap(),
            "# static\n/dev/vda / ext4 defaults 0 1\n"
        );
        assert!(
            !check(dir.path(), ManagedAction::Ensure, request.clone())
                .unwrap()
                .changed
        );
        check(dir.path(), ManagedAction::Remove, request).unwrap();
        assert_eq!(
            std::fs::read_to_string(&fstab).unwrap(),
            "# static\n/dev/vda / ext4 defaults 0 1\n"
        );
    }

    /// Issue 14: whatever boot options the request gives, the line carries each exactly once,
    /// and an fstab entry never mounts degraded.
    #[test]
    fn issue_14_boot_options_are_written_once() {
        let dir = scratch();
        let tank = dir.path().join("mnt/tank").display().to_string();
        let fstab_entry = |options: &str| ManagedRequest::FstabEntry {
            uuid: UUID.into(),
            target: tank.clone(),
            options: options.into(),
        };
        for options in [
            "noatime",
            "noatime,nofail",
            "x-systemd.device-timeout=30s,noatime",
            "nofail,x-systemd.device-timeout=30s,nosuid,nodev,noatime",
        ] {
            check(dir.path(), ManagedAction::Ensure, fstab_entry(options)).unwrap();
            let text = std::fs::read_to_string(dir.path().join("fstab")).unwrap();
            let line = text.lines().find(|line| line.starts_with("UUID=")).unwrap();
            let fields: Vec<&str> = line.split_whitespace().collect();
            let written: Vec<&str> = fields[3].split(',').collect();
            for forced in ["nofail", "x-systemd.device-timeout=30s", "nosuid", "nodev"] {
                assert_eq!(
                    written.iter().filter(|item| **item == forced).count(),
                    1,
                    "{options}: {line}"
                );
            }
            assert!(written.contains(&"noatime"), "{line}");
        }
        for options in ["noatime,degraded", "x-systemd.device-timeout=1s", "noauto"] {
            let err = check(dir.path(), ManagedAction::Ensure, fstab_entry(options)).unwrap_err();
            assert!(err.starts_with("rejected: "), "{options}: {err}");
        }
        // The rejected requests left the last good line alone.
        let text = std::fs::read_to_string(dir.path().join("fstab")).unwrap();
        assert!(
            !text.contains("degraded") && text.contains("nofail"),
            "{text}"
        );
    }

    #[test]
    fn crypttab_entry() {
        let dir = scratch();
        let key = dir.path().join("keys/tank.key").display().to_string();
        let request = ManagedRequest::CrypttabEntry {
            name: "tank".into(),
            device_uuid: UUID.into(),
            key: key.clone(),
        };
        check(dir.path(), ManagedAction::Ensure, request).unwrap();
        let text = std::fs::read_to_string(dir.path().join("crypttab")).unwrap();
        assert_eq!(
            text,
            format!(
                "{BLOCK_BEGIN}\ntank UUID={UUID} {key} luks,nofail,x-systemd.device-timeout=30s\n{BLOCK_END}\n"
            )
        );
        let metadata = std::fs::metadata(dir.path().join("crypttab")).unwrap();
        assert_eq!(metadata.mode() & 0o777, 0o600);
    }

    #[test]
    fn hostile_values_are_rejected() {
        let dir = scratch();
        let mnt = dir.path().join("mnt").display().to_string();
        let keys = dir.path().join("keys").display().to_string();
        let cases = [
            ManagedRequest::MountDir {
                path: "/etc/x".into(),
            },
            ManagedRequest::MountDir {
                path: format!("{mnt}/../etc"),
            },
            ManagedRequest::MountDir {
                path: format!("{mnt}/a b"),
            },
            ManagedRequest::MountDir {
                path: format!("{mnt}/-o"),
            },
            ManagedRequest::MountDir { path: mnt.clone() },
            ManagedRequest::KeyFile {
                path: format!("{keys}/../x.key"),
            },
            ManagedRequest::KeyFile {
                path: "/etc/shadow".into(),
            },
            ManagedRequest::FstabEntry {
                uuid: "x\ny".into(),
                target: format!("{mnt}/t"),
                options: "noatime".into(),
            },
            ManagedRequest::FstabEntry {
                uuid: UUID.into(),
                target: format!("{mnt}/t"),
                options: "suid".into(),
            },
            ManagedRequest::FstabEntry {
                uuid: UUID.into(),
                target: format!("{mnt}/t"),
                options: "noatime 0 0\n/dev/x /".into(),
            },
            ManagedRequest::CrypttabEntry {
                name: "a b".into(),
                device_uuid: UUID.into(),
                key: format!("{keys}/k.key"),
            },
        ];
        for request in cases {
            assert!(
                check(dir.path(), ManagedAction::Ensure, request.clone()).is_err(),
                "{request:?}"
            );
        }
        assert!(!dir.path().join("fstab").exists() && !dir.path().join("crypttab").exists());
    }

    #[test]
    fn key_file_and_mount_dir() {
        let dir = scratch();
        let key = dir.path().join("keys/tank.key").display().to_string();
        let applied = check(
            dir.path(),
            ManagedAction::Ensure,
            ManagedRequest::KeyFile { path: key.clone() },
        )
        .unwrap();
        let metadata = std::fs::metadata(&applied.path).unwrap();
        assert_eq!(
            (metadata.mode() & 0o777, metadata.len()),
            (0o400, files::KEY_FILE_BYTES as u64)
        );
        let again = check(
            dir.path(),
            ManagedAction::Ensure,
            ManagedRequest::KeyFile { path: key.clone() },
        );
        assert!(again.unwrap_err().contains("already exists"));
        assert!(
            check(
                dir.path(),
                ManagedAction::Remove,
                ManagedRequest::KeyFile { path: key }
            )
            .is_err()
        );
        let target = dir.path().join("mnt/pools/tank");
        let request = ManagedRequest::MountDir {
            path: target.display().to_string(),
        };
        assert!(
            check(dir.path(), ManagedAction::Ensure, request.clone())
                .unwrap()
                .changed
                && target.is_dir()
        );
        assert_eq!(std::fs::metadata(&target).unwrap().mode() & 0o777, 0o755);
        assert!(
            check(dir.path(), ManagedAction::Remove, request)
                .unwrap()
                .changed
                && !target.exists()
        );
        // A symlinked component is refused.
        std::os::unix::fs::symlink("/etc", dir.path().join("mnt/evil")).unwrap();
        let evil = dir.path().join("mnt/evil/x").display().to_string();
        let err = check(
            dir.path(),
            ManagedAction::Ensure,
            ManagedRequest::MountDir { path: evil },
        )
        .unwrap_err();
        assert!(err.contains("symlink"), "{err}");
    }

    #[test]
    fn mount_depth_is_the_rules_type_depth() {
        let dir = scratch();
        let path = |depth: usize| {
            let mut path = dir.path().join("mnt");
            for idx in 0..depth {
                path.push(format!("d{idx}"));
            }
            path.display().to_string()
        };
        // The default allowlist's `pool` type says max_depth = 4, and so does the match.
        let ManagedVerdict::Allowed(mut matched) = allowlist(dir.path()).check_managed(
            ManagedAction::Ensure,
            &ManagedRequest::MountDir { path: path(2) },
        ) else {
            panic!("the default allowlist allows a mount dir two deep");
        };
        assert_eq!(matched.mount_depth, Some(4));
        // The agent re-checks against the match's depth, not a constant of its own.
        matched.mount_depth = Some(1);
        let err = apply(&config(dir.path()), &matched).unwrap_err();
        assert!(
            matches!(
                &err,
                ManagedError::Invalid {
                    field: "mount path",
                    ..
                }
            ),
            "{err}"
        );
        matched.mount_depth = None;
        assert!(matches!(
            apply(&config(dir.path()), &matched),
            Err(ManagedError::Unsupported(_))
        ));
        matched.mount_depth = Some(2);
        assert!(apply(&config(dir.path()), &matched).unwrap().changed);
        // Crypttab rules have no mount path.
        let ManagedVerdict::Allowed(crypt) = allowlist(dir.path()).check_managed(
            ManagedAction::Ensure,
            &ManagedRequest::CrypttabEntry {
                name: "tank".into(),
                device_uuid: UUID.into(),
                key: dir.path().join("keys/tank.key").display().to_string(),
            },
        ) else {
            panic!("the default allowlist allows a crypttab entry");
        };
        assert_eq!(crypt.mount_depth, None);
    }
}
