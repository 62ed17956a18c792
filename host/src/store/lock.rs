//! The advisory lock on `<state dir>/.lock` (`std::fs::File::lock`).
//!
//! One nosd owns a state directory at a time; a second one fails fast instead of interleaving
//! writes. The lock is released when the file handle drops (or the process dies), so a crash
//! never leaves a stale lock. This module never reads or writes state files.

use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::StoreError;

/// The lock file's name inside the state directory.
pub const LOCK_FILE: &str = ".lock";

/// Holds the exclusive advisory lock for as long as it lives.
pub struct DirLock {
    _file: File,
}

impl DirLock {
    pub fn try_acquire(root: &Path) -> Result<DirLock, StoreError> {
        let path = root.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|source| StoreError::Io {
                op: "open",
                path: path.clone(),
                source,
            })?;
        match file.try_lock() {
            Ok(()) => Ok(DirLock { _file: file }),
            Err(TryLockError::WouldBlock) => Err(StoreError::Busy { path }),
            Err(TryLockError::Error(source)) => Err(StoreError::Io {
                op: "lock",
                path,
                source,
            }),
        }
    }
}
