//! Whole-file atomic replacement: write `<name>.tmp.<pid>.<random>`, fsync it, rename it over
//! `<name>`, fsync the directory.
//!
//! After a crash at any point the file holds either the previous or the new bytes, never a mix
//! and never nothing; a crash before the rename leaves a `.tmp.` file that
//! [`remove_leftover_tmp`] deletes at the next start. Callers must hold the directory lock.
//! This module never parses what it writes.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::StoreError;

/// The infix that marks a temporary file.
pub const TMP_INFIX: &str = ".tmp.";

/// Atomically replaces `dir/name` with `bytes`, created with `mode`.
pub fn write(dir: &Path, name: &str, bytes: &[u8], mode: u32) -> Result<(), StoreError> {
    let mut random = [0u8; 8];
    getrandom::fill(&mut random).map_err(|err| StoreError::Io {
        op: "draw randomness for",
        path: dir.join(name),
        source: io::Error::other(err.to_string()),
    })?;
    let tmp_path = dir.join(format!(
        "{name}{TMP_INFIX}{}.{}",
        std::process::id(),
        hex::encode(random)
    ));
    let final_path = dir.join(name);
    let io_err = |op: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| StoreError::Io { op, path, source }
    };
    let result = (|| {
        let mut tmp = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp_path)
            .map_err(io_err("create", &tmp_path))?;
        tmp.write_all(bytes).map_err(io_err("write", &tmp_path))?;
        tmp.sync_all().map_err(io_err("fsync", &tmp_path))?;
        drop(tmp);
        fs::rename(&tmp_path, &final_path).map_err(io_err("rename onto", &final_path))?;
        File::open(dir)
            .and_then(|dir_file| dir_file.sync_all())
            .map_err(io_err("fsync directory", dir))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp_path);
    }
    result
}

/// Deletes every `*.tmp.*` file in `dir` and returns their paths.
///
/// A temporary file is never the committed state (the rename is the commit), so removing it
/// loses nothing that was acknowledged.
pub fn remove_leftover_tmp(dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let entries = fs::read_dir(dir).map_err(|source| StoreError::Io {
        op: "list",
        path: dir.to_path_buf(),
        source,
    })?;
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            continue;
        };
        if file_name.contains(TMP_INFIX) {
            let path = entry.path();
            fs::remove_file(&path).map_err(|source| StoreError::Io {
                op: "remove",
                path: path.clone(),
                source,
            })?;
            removed.push(path);
        }
    }
    Ok(removed)
}
