//! Whole-file replacement of the state directory's files, through the one writer nos has
//! ([`nos_fs::write_atomic`]: a temporary sibling with the exact mode, fsync, rename over the
//! target, fsync of the directory), with its failures as [`StoreError`]s.
//!
//! After a crash at any point the file holds either the previous or the new bytes, never a mix
//! and never nothing; a crash before the rename leaves a temporary that
//! [`remove_leftover_tmp`] deletes at the next start. Callers must hold the directory lock.
//! This module never parses what it writes.

use std::path::{Path, PathBuf};

use nos_fs::WriteError;

use super::StoreError;

/// The infix that marks a temporary file.
pub const TMP_INFIX: &str = nos_fs::TEMP_INFIX;

/// Atomically replaces `dir/name` with `bytes`, created with `mode`.
pub fn write(dir: &Path, name: &str, bytes: &[u8], mode: u32) -> Result<(), StoreError> {
    let path = dir.join(name);
    nos_fs::write_atomic(&path, bytes, mode).map_err(|err| store_error("write", path, err))
}

/// Deletes every temporary file in `dir` and returns their paths.
///
/// A temporary file is never the committed state (the rename is the commit), so removing it
/// loses nothing that was acknowledged.
pub fn remove_leftover_tmp(dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    nos_fs::remove_leftover_temps(dir).map_err(|err| store_error("list", dir.to_path_buf(), err))
}

fn store_error(op: &'static str, path: PathBuf, err: WriteError) -> StoreError {
    match err {
        WriteError::Io { op, path, source } => StoreError::Io { op, path, source },
        other => StoreError::Io {
            op,
            path,
            source: other.into_io(),
        },
    }
}
