//! The files the agent manages on request, and nothing else: fstab/crypttab entries inside a
//! marked block, random key files, and mount-point directories under the configured roots.
//!
//! A request reaches this module only as a [`ManagedMatch`]: judged and canonicalised by the
//! allowlist's `[[managed]]` rules, as argvs are. This module re-checks what only the live
//! filesystem can tell (root-owned, non-writable directory chains; no symlinks; no existing key),
//! refuses any value that would not be one whitespace-free token of a table line (defence in
//! depth), and writes: files are replaced atomically ([`write_atomically`]: tmp, fsync, rename,
//! fsync of the directory) after a backup of the previous content (`<file>.nos-bak`, also
//! atomic). Lines outside the managed block are kept byte for byte.
//!
//! This module never spawns and never decides what is allowed.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nos_allowlist::{ManagedAction, ManagedMatch, ManagedRequest};

/// Size of a key file made by a `key_file` request, in bytes.
pub const KEY_FILE_BYTES: usize = 64;

pub const BLOCK_BEGIN: &str = "# BEGIN nos managed block: edits inside are overwritten";
pub const BLOCK_END: &str = "# END nos managed block";
/// Most entries one managed block may hold.
pub const MAX_ENTRIES: usize = 256;
/// Largest fstab/crypttab the agent will read, in bytes.
pub const MAX_TABLE_BYTES: u64 = 1 << 20;
/// Deepest mount directory below a mount root.
pub const MAX_MOUNT_DEPTH: usize = 4;
#[derive(Debug, Clone)]
pub struct ManagedConfig {
    pub fstab: PathBuf,
    pub crypttab: PathBuf,
    pub key_dir: PathBuf,
    pub mount_roots: Vec<PathBuf>,
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
    let rule_id = matched.rule_id.clone();
    let applied = |path: PathBuf, changed: bool| Applied {
        rule_id: rule_id.clone(),
        path,
        changed,
        backup: None,
    };
    match (&matched.request, matched.action) {
        (ManagedRequest::MountDir { path }, ManagedAction::Ensure) => {
            let path = mount_path(config, path)?;
            let changed = create_mount_dir(config, &path)?;
            Ok(applied(path, changed))
        }
        (ManagedRequest::MountDir { path }, ManagedAction::Remove) => {
            let path = mount_path(config, path)?;
            let changed = remove_mount_dir(&path)?;
            Ok(applied(path, changed))
        }
        (ManagedRequest::KeyFile { path }, ManagedAction::Ensure) => {
            let path = PathBuf::from(token("key path", path)?);
            if path.parent() != Some(config.key_dir.as_path()) {
                return Err(ManagedError::Invalid {
                    field: "key path",
                    value: path.display().to_string(),
                });
            }
            create_key_file(&config.key_dir, &path)?;
            Ok(applied(path, true))
        }
        (ManagedRequest::KeyFile { path }, ManagedAction::Remove) => {
            Err(ManagedError::Unsupported(format!(
                "removing key file {path}: keys are never removed by request"
            )))
        }
        (
            ManagedRequest::FstabEntry {
                uuid,
                target,
                options,
            },
            action,
        ) => {
            let target = mount_path(config, target)?.display().to_string();
            let line = format!(
                "UUID={} {target} btrfs {} 0 0",
                token("uuid", uuid)?,
                token("options", options)?
            );
            let line = (action == ManagedAction::Ensure).then_some(line);
            update_table(&config.fstab, 0o644, 1, &target, line, rule_id)
        }
        (
            ManagedRequest::CrypttabEntry {
                name,
                device_uuid,
                key,
            },
            action,
        ) => {
            let name = token("name", name)?;
            let line = format!(
                "{name} UUID={} {} luks",
                token("device uuid", device_uuid)?,
                token("key", key)?
            );
            let line = (action == ManagedAction::Ensure).then_some(line);
            update_table(&config.crypttab, 0o600, 0, name, line, rule_id)
        }
    }
}

/// One field of a table line: printable ASCII without spaces, at most 4096 bytes. The allowlist
/// has already judged it; this keeps a line-based file well-formed whatever a rule allows.
fn token<'a>(field: &'static str, value: &'a str) -> Result<&'a str, ManagedError> {
    let ok = !value.is_empty()
        && value.len() <= 4096
        && value.bytes().all(|b| b.is_ascii_graphic())
        && !value.starts_with('#');
    if ok {
        Ok(value)
    } else {
        Err(ManagedError::Invalid {
            field,
            value: value.to_owned(),
        })
    }
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
    if ok {
        Ok(name)
    } else {
        Err(ManagedError::Invalid {
            field,
            value: name.to_owned(),
        })
    }
}

/// An absolute path of 1..=[`MAX_MOUNT_DEPTH`] plain components below one of the mount roots.
fn mount_path(config: &ManagedConfig, text: &str) -> Result<PathBuf, ManagedError> {
    let invalid = || ManagedError::Invalid {
        field: "mount path",
        value: text.to_owned(),
    };
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
        if components.len() > MAX_MOUNT_DEPTH {
            return Err(invalid());
        }
        for component in components {
            file_name("mount path component", component)?;
        }
        return Ok(PathBuf::from(text));
    }
    Err(ManagedError::OutsideRoots(text.to_owned()))
}

/// An existing directory that only root can change: root-owned, not group/other-writable, not a
/// symlink. Because every ancestor passes this, no unprivileged user can swap a component.
fn check_root_dir(path: &Path) -> Result<(), ManagedError> {
    let metadata = std::fs::symlink_metadata(path).map_err(|source| ManagedError::Io {
        path: path.into(),
        source,
    })?;
    let reason = if metadata.file_type().is_symlink() {
        "is a symlink"
    } else if !metadata.is_dir() {
        "not a directory"
    } else if metadata.uid() != 0 {
        "not owned by root"
    } else if metadata.mode() & 0o022 != 0 {
        "writable by group or others"
    } else {
        return Ok(());
    };
    Err(ManagedError::UnsafePath {
        path: path.into(),
        reason: reason.into(),
    })
}

fn check_chain(path: &Path) -> Result<(), ManagedError> {
    let mut prefix = PathBuf::from("/");
    check_root_dir(&prefix)?;
    for component in path.components().skip(1) {
        prefix.push(component);
        check_root_dir(&prefix)?;
    }
    Ok(())
}

/// Removes an empty mount directory (never a mounted or non-empty one: rmdir refuses both).
fn remove_mount_dir(path: &Path) -> Result<bool, ManagedError> {
    if let Some(parent) = path.parent() {
        check_chain(parent)?;
    }
    match std::fs::symlink_metadata(path) {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        _ => check_root_dir(path)?,
    }
    std::fs::remove_dir(path).map_err(|source| ManagedError::Io {
        path: path.into(),
        source,
    })?;
    if let Some(parent) = path.parent() {
        sync_dir(parent).map_err(|source| ManagedError::Io {
            path: parent.into(),
            source,
        })?;
    }
    Ok(true)
}

fn create_mount_dir(config: &ManagedConfig, path: &Path) -> Result<bool, ManagedError> {
    let root = config
        .mount_roots
        .iter()
        .find(|root| path.starts_with(root))
        .ok_or_else(|| ManagedError::OutsideRoots(path.display().to_string()))?;
    check_chain(root)?;
    let mut prefix = root.clone();
    let mut changed = false;
    for component in path.strip_prefix(root).unwrap_or(path).components() {
        prefix.push(component);
        match std::fs::create_dir(&prefix) {
            Ok(()) => {
                std::fs::set_permissions(&prefix, std::fs::Permissions::from_mode(0o755)).map_err(
                    |source| ManagedError::Io {
                        path: prefix.clone(),
                        source,
                    },
                )?;
                changed = true;
            }
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(source) => {
                return Err(ManagedError::Io {
                    path: prefix,
                    source,
                });
            }
        }
        check_root_dir(&prefix)?;
    }
    Ok(changed)
}

fn create_key_file(key_dir: &Path, path: &Path) -> Result<(), ManagedError> {
    if !key_dir.exists() {
        std::fs::create_dir_all(key_dir).map_err(|source| ManagedError::Io {
            path: key_dir.into(),
            source,
        })?;
        std::fs::set_permissions(key_dir, std::fs::Permissions::from_mode(0o700)).map_err(
            |source| ManagedError::Io {
                path: key_dir.into(),
                source,
            },
        )?;
    }
    check_chain(key_dir)?;
    let key = crate::trust::random_bytes::<KEY_FILE_BYTES>().map_err(|err| ManagedError::Io {
        path: path.into(),
        source: std::io::Error::other(err.to_string()),
    })?;
    let io = |source| ManagedError::Io {
        path: path.into(),
        source,
    };
    let mut file = match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o400)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)
    {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(ManagedError::Exists(path.into()));
        }
        Err(err) => return Err(io(err)),
    };
    file.write_all(&key)
        .and_then(|()| file.sync_all())
        .map_err(io)?;
    sync_dir(key_dir).map_err(io)
}

/// Rewrites the managed block of `path`: the entry whose field `key_field` equals `key` is
/// replaced by `line` (or removed when `line` is None).
fn update_table(
    path: &Path,
    mode: u32,
    key_field: usize,
    key: &str,
    line: Option<String>,
    rule_id: String,
) -> Result<Applied, ManagedError> {
    if let Some(dir) = path.parent() {
        check_chain(dir)?;
    }
    let old = match std::fs::symlink_metadata(path) {
        Ok(metadata) if metadata.file_type().is_symlink() || !metadata.is_file() => {
            return Err(ManagedError::UnsafePath {
                path: path.into(),
                reason: "not a regular file".into(),
            });
        }
        Ok(metadata) if metadata.len() > MAX_TABLE_BYTES => {
            return Err(ManagedError::TooLarge(path.into()));
        }
        Ok(_) => Some(
            std::fs::read_to_string(path).map_err(|source| ManagedError::Io {
                path: path.into(),
                source,
            })?,
        ),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(ManagedError::Io {
                path: path.into(),
                source,
            });
        }
    };
    let old_text = old.clone().unwrap_or_default();
    let new_text = render_table(&old_text, key_field, key, line)
        .ok_or_else(|| ManagedError::CorruptBlock(path.into()))?;
    if new_text
        .lines()
        .filter(|line| !line.starts_with('#'))
        .count()
        > MAX_ENTRIES + 4096
    {
        return Err(ManagedError::TooLarge(path.into()));
    }
    if old.as_deref() == Some(new_text.as_str()) {
        return Ok(Applied {
            rule_id,
            path: path.into(),
            changed: false,
            backup: None,
        });
    }
    let backup = match &old {
        Some(old_text) => {
            let backup = path.with_file_name(format!(
                "{}.nos-bak",
                path.file_name()
                    .map(|name| name.to_string_lossy().into_owned())
                    .unwrap_or_default()
            ));
            write_atomically(&backup, old_text.as_bytes(), mode).map_err(|source| {
                ManagedError::Io {
                    path: backup.clone(),
                    source,
                }
            })?;
            Some(backup)
        }
        None => None,
    };
    write_atomically(path, new_text.as_bytes(), mode).map_err(|source| ManagedError::Io {
        path: path.into(),
        source,
    })?;
    Ok(Applied {
        rule_id,
        path: path.into(),
        changed: true,
        backup,
    })
}

/// Pure: the new file text, or None when the block markers are unbalanced.
fn render_table(old: &str, key_field: usize, key: &str, line: Option<String>) -> Option<String> {
    let lines: Vec<&str> = old.lines().collect();
    let begins: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| **l == BLOCK_BEGIN)
        .map(|(i, _)| i)
        .collect();
    let ends: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| **l == BLOCK_END)
        .map(|(i, _)| i)
        .collect();
    let (before, mut entries, after): (Vec<&str>, Vec<String>, Vec<&str>) =
        match (begins.as_slice(), ends.as_slice()) {
            ([], []) => (lines.clone(), Vec::new(), Vec::new()),
            ([begin], [end]) if begin < end => (
                lines[..*begin].to_vec(),
                lines[begin + 1..*end]
                    .iter()
                    .map(|l| (*l).to_owned())
                    .collect(),
                lines[end + 1..].to_vec(),
            ),
            _ => return None,
        };
    let position = entries
        .iter()
        .position(|entry| entry.split_whitespace().nth(key_field) == Some(key));
    match (position, line) {
        (Some(idx), Some(line)) => entries[idx] = line,
        (Some(idx), None) => {
            entries.remove(idx);
        }
        (None, Some(line)) => entries.push(line),
        (None, None) => {}
    }
    if entries.len() > MAX_ENTRIES {
        return None;
    }
    let mut text = String::new();
    for line in before {
        text.push_str(line);
        text.push('\n');
    }
    if !entries.is_empty() {
        text.push_str(BLOCK_BEGIN);
        text.push('\n');
        for entry in entries {
            text.push_str(&entry);
            text.push('\n');
        }
        text.push_str(BLOCK_END);
        text.push('\n');
    }
    for line in after {
        text.push_str(line);
        text.push('\n');
    }
    Some(text)
}

/// Replaces `path` with `bytes` so that a crash leaves either the old or the new content: write a
/// temporary sibling, fsync it, rename it over `path`, fsync the directory.
pub fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.nos-tmp"));
    let _ = std::fs::remove_file(&tmp);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(&tmp)?;
    file.write_all(bytes)?;
    file.set_permissions(std::fs::Permissions::from_mode(mode))?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use nos_allowlist::{Allowlist, ManagedVerdict, Source};

    const DEFAULT_ALLOWLIST: &str = include_str!("../../allowlist.toml");

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

    /// A root-owned 0755 scratch directory (temp dirs under /tmp sit below a 1777 directory).
    fn scratch() -> tempfile::TempDir {
        let dir = tempfile::Builder::new()
            .prefix("nos-managed-")
            .tempdir_in("/run")
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
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
                "# static\n/dev/vda / ext4 defaults 0 1\n{BLOCK_BEGIN}\nUUID={UUID} {tank} btrfs noatime,nosuid,nodev 0 0\n{BLOCK_END}\n"
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
            format!("{BLOCK_BEGIN}\ntank UUID={UUID} {key} luks\n{BLOCK_END}\n")
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
            (0o400, KEY_FILE_BYTES as u64)
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
    fn unbalanced_markers_refuse() {
        assert_eq!(
            render_table(&format!("{BLOCK_BEGIN}\nx\n"), 0, "x", None),
            None
        );
        assert_eq!(
            render_table(&format!("{BLOCK_END}\n{BLOCK_BEGIN}\n"), 0, "x", None),
            None
        );
    }
}
