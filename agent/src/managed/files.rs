//! The file effects of managed requests: mount directories made and removed, key files made,
//! tables read, backed up and replaced. Every directory on the way is checked first with
//! [`crate::dir_chain`] (root-owned, not group/other-writable, no symlink); because every
//! ancestor passes, no unprivileged user can swap a component between the check and the write.

use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nos_allowlist::ManagedAction;

use super::table::{self, EditError, Entry};
use super::{Applied, ManagedConfig, ManagedError};
use crate::dir_chain;

/// Size of a key file made by a `key_file` request, in bytes.
pub const KEY_FILE_BYTES: usize = 64;
/// Largest fstab/crypttab the agent will read, in bytes.
pub const MAX_TABLE_BYTES: u64 = 1 << 20;

/// Removes an empty mount directory (never a mounted or non-empty one: rmdir refuses both).
pub fn remove_mount_dir(path: &Path) -> Result<bool, ManagedError> {
    if let Some(parent) = path.parent() {
        check_dirs(parent)?;
    }
    match dir_chain::open_dir(path) {
        Err(err) if err.is_missing() => return Ok(false),
        checked => checked.map_err(refused(path))?,
    };
    std::fs::remove_dir(path).map_err(io(path))?;
    if let Some(parent) = path.parent() {
        sync_dir(parent).map_err(io(parent))?;
    }
    Ok(true)
}

pub fn create_mount_dir(config: &ManagedConfig, path: &Path) -> Result<bool, ManagedError> {
    let root = config
        .mount_roots
        .iter()
        .find(|root| path.starts_with(root))
        .ok_or_else(|| ManagedError::OutsideRoots(path.display().to_string()))?;
    check_dirs(root)?;
    let mut prefix = root.clone();
    let mut changed = false;
    for component in path.strip_prefix(root).unwrap_or(path).components() {
        prefix.push(component);
        match std::fs::create_dir(&prefix) {
            Ok(()) => {
                std::fs::set_permissions(&prefix, std::fs::Permissions::from_mode(0o755))
                    .map_err(io(&prefix))?;
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
        check_dirs(&prefix)?;
    }
    Ok(changed)
}

pub fn create_key_file(key_dir: &Path, path: &Path) -> Result<(), ManagedError> {
    if !key_dir.exists() {
        std::fs::create_dir_all(key_dir).map_err(io(key_dir))?;
        std::fs::set_permissions(key_dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io(key_dir))?;
    }
    check_dirs(key_dir)?;
    let key = crate::trust::random_bytes::<KEY_FILE_BYTES>().map_err(|err| ManagedError::Io {
        path: path.into(),
        source: std::io::Error::other(err.to_string()),
    })?;
    nos_fs::create_new(path, &key, 0o400).map_err(|err| match err {
        nos_fs::WriteError::Exists { .. } => ManagedError::Exists(path.into()),
        err => io(path)(err.into_io()),
    })
}

/// Applies `action` on `entry` to the managed block of the table at `path`; a changed table is
/// backed up to `<file>.nos-bak` first (when it existed).
pub fn update_table(
    path: &Path,
    action: ManagedAction,
    entry: &Entry,
    rule_id: String,
) -> Result<Applied, ManagedError> {
    if let Some(dir) = path.parent() {
        check_dirs(dir)?;
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
        Ok(_) => Some(std::fs::read_to_string(path).map_err(io(path))?),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(ManagedError::Io {
                path: path.into(),
                source,
            });
        }
    };
    let new_text = table::edit(old.as_deref().unwrap_or_default(), action, entry).map_err(
        |err| match err {
            // FIXME: a full block is reported as corrupt, as before the table editor was
            // split out; `TooLarge` would name it right.
            EditError::Unbalanced | EditError::TooManyEntries => {
                ManagedError::CorruptBlock(path.into())
            }
            EditError::TooManyLines => ManagedError::TooLarge(path.into()),
        },
    )?;
    let applied = |changed: bool, backup: Option<PathBuf>| Applied {
        rule_id,
        path: path.into(),
        changed,
        backup,
    };
    if old.as_deref() == Some(new_text.as_str()) {
        return Ok(applied(false, None));
    }
    let mode = entry.table.mode();
    let backup = match &old {
        Some(old_text) => {
            let backup = path.with_file_name(format!(
                "{}.nos-bak",
                path.file_name()
                    .map(|name| name.to_string_lossy().into_owned())
                    .unwrap_or_default()
            ));
            write(&backup, old_text, mode)?;
            Some(backup)
        }
        None => None,
    };
    write(path, &new_text, mode)?;
    Ok(applied(true, backup))
}

/// Replaces `path` atomically; a failure names `path` itself, as the agent always has.
fn write(path: &Path, text: &str, mode: u32) -> Result<(), ManagedError> {
    nos_fs::write_atomic(path, text.as_bytes(), mode).map_err(|err| io(path)(err.into_io()))
}

/// `path` and every directory above it are root-owned, not group/other-writable, no symlinks.
fn check_dirs(path: &Path) -> Result<(), ManagedError> {
    dir_chain::open_dir(path).map_err(refused(path))?;
    Ok(())
}

fn refused(path: &Path) -> impl Fn(dir_chain::ChainError) -> ManagedError {
    move |err| ManagedError::UnsafePath {
        path: path.into(),
        reason: err.to_string(),
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> ManagedError {
    move |source| ManagedError::Io {
        path: path.into(),
        source,
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}
