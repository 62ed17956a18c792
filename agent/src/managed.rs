//! The files the agent manages on request, and nothing else: fstab/crypttab entries inside a
//! marked block, random key files, and mount-point directories under the configured roots.
//!
//! Every request is typed ([`ManagedRequest`]) and validated here with closed charsets and
//! bounded lengths; no request carries file content or a free path. Files are replaced atomically
//! ([`write_atomically`]: tmp, fsync, rename, fsync of the directory) after a backup of the
//! previous content (`<file>.nos-bak`, also atomic). Lines outside the managed block are kept
//! byte for byte.
//!
//! FIXME(issue 3): the validation should come from the allowlist's managed-file rules
//! (`check_managed`) once the engine provides them; until then it lives here.
//! This module never spawns.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nos_agent::protocol::{KEY_FILE_BYTES, ManagedRequest};

pub const BLOCK_BEGIN: &str = "# BEGIN nos managed block: edits inside are overwritten";
pub const BLOCK_END: &str = "# END nos managed block";
/// Most entries one managed block may hold.
pub const MAX_ENTRIES: usize = 256;
/// Largest fstab/crypttab the agent will read, in bytes.
pub const MAX_TABLE_BYTES: u64 = 1 << 20;
/// Deepest mount directory below a mount root.
pub const MAX_MOUNT_DEPTH: usize = 4;
/// Options an fstab entry may carry besides the forced `nosuid,nodev`.
const FSTAB_OPTIONS: &[&str] = &[
    "noatime",
    "relatime",
    "nofail",
    "compress=zstd",
    "space_cache=v2",
];

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
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What a request changed.
#[derive(Debug)]
pub struct Applied {
    pub rule_id: &'static str,
    pub path: PathBuf,
    pub changed: bool,
    pub backup: Option<PathBuf>,
}

/// The rule id a managed request is audited under.
pub fn rule_id(request: &ManagedRequest) -> &'static str {
    match request {
        ManagedRequest::MountDir { .. } => "managed.mount_dir",
        ManagedRequest::KeyFile { .. } => "managed.key_file",
        ManagedRequest::FstabEntry { .. } | ManagedRequest::FstabRemove { .. } => "managed.fstab",
        ManagedRequest::CrypttabEntry { .. } | ManagedRequest::CrypttabRemove { .. } => {
            "managed.crypttab"
        }
    }
}

pub fn apply(config: &ManagedConfig, request: &ManagedRequest) -> Result<Applied, ManagedError> {
    let rule_id = rule_id(request);
    match request {
        ManagedRequest::MountDir { path } => {
            let path = mount_path(config, path)?;
            let changed = create_mount_dir(config, &path)?;
            Ok(Applied {
                rule_id,
                path,
                changed,
                backup: None,
            })
        }
        ManagedRequest::KeyFile { name } => {
            let path = config.key_dir.join(file_name("key name", name)?);
            create_key_file(&config.key_dir, &path)?;
            Ok(Applied {
                rule_id,
                path,
                changed: true,
                backup: None,
            })
        }
        ManagedRequest::FstabEntry {
            uuid: fs_uuid,
            mount_path: target,
            options,
        } => {
            let fs_uuid = uuid(fs_uuid)?;
            let target = mount_path(config, target)?;
            let mut rendered = vec!["nosuid", "nodev"];
            for option in options {
                let allowed = FSTAB_OPTIONS.contains(&option.as_str()) || zstd_level(option);
                if !allowed || options.len() > FSTAB_OPTIONS.len() + 1 {
                    return Err(ManagedError::Invalid {
                        field: "mount option",
                        value: option.clone(),
                    });
                }
                if !rendered.contains(&option.as_str()) {
                    rendered.push(option);
                }
            }
            let key = target.display().to_string();
            let line = format!("UUID={fs_uuid} {key} btrfs {} 0 0", rendered.join(","));
            update_table(&config.fstab, 0o644, 1, &key, Some(line), rule_id)
        }
        ManagedRequest::FstabRemove { mount_path: target } => {
            let key = mount_path(config, target)?.display().to_string();
            update_table(&config.fstab, 0o644, 1, &key, None, rule_id)
        }
        ManagedRequest::CrypttabEntry {
            name,
            uuid: luks_uuid,
            key_name,
        } => {
            let name = map_name(name)?;
            let luks_uuid = uuid(luks_uuid)?;
            let key_path = config.key_dir.join(file_name("key name", key_name)?);
            let line = format!("{name} UUID={luks_uuid} {} luks", key_path.display());
            update_table(&config.crypttab, 0o600, 0, name, Some(line), rule_id)
        }
        ManagedRequest::CrypttabRemove { name } => {
            let name = map_name(name)?;
            update_table(&config.crypttab, 0o600, 0, name, None, rule_id)
        }
    }
}

fn zstd_level(option: &str) -> bool {
    option
        .strip_prefix("compress=zstd:")
        .and_then(|level| level.parse::<u8>().ok().filter(|_| !level.starts_with('0')))
        .is_some_and(|level| (1..=15).contains(&level))
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

/// `mapname := [A-Za-z0-9_-]{1,48}`, not starting with `-`.
fn map_name(name: &str) -> Result<&str, ManagedError> {
    let ok = (1..=48).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        && !name.starts_with('-');
    if ok {
        Ok(name)
    } else {
        Err(ManagedError::Invalid {
            field: "mapping name",
            value: name.to_owned(),
        })
    }
}

/// `uuid := hex{8} "-" hex{4} "-" hex{4} "-" hex{4} "-" hex{12}` (lowercase).
fn uuid(text: &str) -> Result<&str, ManagedError> {
    let groups: Vec<&str> = text.split('-').collect();
    let ok = groups.len() == 5
        && groups.iter().zip([8, 4, 4, 4, 12]).all(|(group, len)| {
            group.len() == len
                && group
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
    if ok {
        Ok(text)
    } else {
        Err(ManagedError::Invalid {
            field: "uuid",
            value: text.to_owned(),
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
    rule_id: &'static str,
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

    fn config(dir: &Path) -> ManagedConfig {
        ManagedConfig {
            fstab: dir.join("fstab"),
            crypttab: dir.join("crypttab"),
            key_dir: dir.join("keys"),
            mount_roots: vec![dir.join("mnt")],
        }
    }

    /// A root-owned, 0755 scratch directory (temp dirs under /tmp sit below a 1777 directory).
    fn scratch() -> tempfile::TempDir {
        let dir = tempfile::Builder::new()
            .prefix("nos-managed-")
            .tempdir_in("/run")
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::create_dir(dir.path().join("mnt")).unwrap();
        dir
    }

    #[test]
    fn fstab_block_is_managed_and_backed_up() {
        let dir = scratch();
        let config = config(dir.path());
        std::fs::write(&config.fstab, "# static\n/dev/vda / ext4 defaults 0 1\n").unwrap();
        let tank = dir.path().join("mnt/tank").display().to_string();
        let uuid = "0b6c0e4a-1111-4222-8333-944455556666".to_owned();
        let request = ManagedRequest::FstabEntry {
            uuid: uuid.clone(),
            mount_path: tank.clone(),
            options: vec!["noatime".into(), "compress=zstd:3".into()],
        };
        let applied = apply(&config, &request).unwrap();
        assert!(applied.changed);
        let text = std::fs::read_to_string(&config.fstab).unwrap();
        assert_eq!(
            text,
            format!(
                "# static\n/dev/vda / ext4 defaults 0 1\n{BLOCK_BEGIN}\nUUID={uuid} {tank} btrfs nosuid,nodev,noatime,compress=zstd:3 0 0\n{BLOCK_END}\n"
            )
        );
        assert_eq!(
            std::fs::read_to_string(applied.backup.unwrap()).unwrap(),
            "# static\n/dev/vda / ext4 defaults 0 1\n"
        );
        assert!(!apply(&config, &request).unwrap().changed);
        apply(&config, &ManagedRequest::FstabRemove { mount_path: tank }).unwrap();
        assert_eq!(
            std::fs::read_to_string(&config.fstab).unwrap(),
            "# static\n/dev/vda / ext4 defaults 0 1\n"
        );
    }

    #[test]
    fn hostile_values_are_rejected() {
        let dir = scratch();
        let config = config(dir.path());
        let mnt = dir.path().join("mnt").display().to_string();
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
            ManagedRequest::MountDir {
                path: format!("{mnt}/a/b/c/d/e"),
            },
            ManagedRequest::KeyFile {
                name: "../x".into(),
            },
            ManagedRequest::KeyFile {
                name: ".hidden".into(),
            },
            ManagedRequest::FstabEntry {
                uuid: "x\ny".into(),
                mount_path: format!("{mnt}/t"),
                options: vec![],
            },
            ManagedRequest::FstabEntry {
                uuid: "0b6c0e4a-1111-4222-8333-944455556666".into(),
                mount_path: format!("{mnt}/t"),
                options: vec!["suid".into()],
            },
            ManagedRequest::CrypttabEntry {
                name: "a b".into(),
                uuid: "0b6c0e4a-1111-4222-8333-944455556666".into(),
                key_name: "k".into(),
            },
        ];
        for request in cases {
            assert!(apply(&config, &request).is_err(), "{request:?}");
        }
        assert!(!config.fstab.exists() && !config.crypttab.exists());
    }

    #[test]
    fn key_file_and_mount_dir() {
        let dir = scratch();
        let config = config(dir.path());
        let applied = apply(
            &config,
            &ManagedRequest::KeyFile {
                name: "tank.key".into(),
            },
        )
        .unwrap();
        let metadata = std::fs::metadata(&applied.path).unwrap();
        assert_eq!(
            (metadata.mode() & 0o777, metadata.len()),
            (0o400, KEY_FILE_BYTES as u64)
        );
        assert!(matches!(
            apply(
                &config,
                &ManagedRequest::KeyFile {
                    name: "tank.key".into()
                }
            ),
            Err(ManagedError::Exists(_))
        ));
        let target = dir.path().join("mnt/pools/tank");
        let applied = apply(
            &config,
            &ManagedRequest::MountDir {
                path: target.display().to_string(),
            },
        )
        .unwrap();
        assert!(applied.changed && target.is_dir());
        // A symlinked component is refused.
        std::os::unix::fs::symlink("/etc", dir.path().join("mnt/evil")).unwrap();
        let evil = dir.path().join("mnt/evil/x").display().to_string();
        assert!(matches!(
            apply(&config, &ManagedRequest::MountDir { path: evil }),
            Err(ManagedError::UnsafePath { .. })
        ));
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
