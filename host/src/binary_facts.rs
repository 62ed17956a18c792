//! What the disk says about the binaries an allowlist names: owner, mode, symlinked components,
//! unsafe parent directories and the sha256 digest. These are the facts `allowlist::audit`
//! takes as arguments (the engine itself does no IO).
//!
//! Shared by `nosctl allowlist audit` and nosd's `GET /api/v1/allowlist`, so both report the
//! same findings. This module only reads; it never follows a decision of its own.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nos_allowlist::Allowlist;
use nos_allowlist::audit::{BinaryFacts, BinaryState};
use sha2::{Digest, Sha256};

/// The facts of every binary of `allowlist`, in the allowlist's order.
pub fn of_allowlist(allowlist: &Allowlist) -> Vec<BinaryFacts> {
    allowlist
        .binaries()
        .iter()
        .map(|binary| binary_facts(&binary.path))
        .collect()
}

/// What the disk says about one binary: ownership, mode, symlinks on the way, digest.
pub fn binary_facts(path: &str) -> BinaryFacts {
    let state = match (std::fs::metadata(path), std::fs::read(path)) {
        (Ok(meta), _) if !meta.is_file() => BinaryState::NotRegularFile,
        (Ok(meta), Ok(bytes)) => {
            let (symlinked_component, unsafe_parent) = walk_path(Path::new(path));
            let sha256 = Sha256::digest(&bytes).into();
            BinaryState::Present {
                owner_uid: meta.uid(),
                mode: meta.permissions().mode(),
                symlinked_component,
                unsafe_parent,
                sha256,
            }
        }
        _ => BinaryState::Missing,
    };
    BinaryFacts {
        path: path.to_owned(),
        state,
    }
}

/// The first component of `path` that is a symlink, and the first directory on the way that is
/// not root-owned or is writable by group or others.
fn walk_path(path: &Path) -> (Option<String>, Option<String>) {
    let mut symlinked_component = None;
    let mut unsafe_parent = None;
    let mut prefix = PathBuf::from("/");
    for component in path.components().skip(1) {
        if unsafe_parent.is_none()
            && let Ok(meta) = std::fs::metadata(&prefix)
            && (meta.uid() != 0 || meta.permissions().mode() & 0o022 != 0)
        {
            unsafe_parent = Some(prefix.display().to_string());
        }
        prefix.push(component);
        if symlinked_component.is_none()
            && std::fs::symlink_metadata(&prefix).is_ok_and(|meta| meta.file_type().is_symlink())
        {
            symlinked_component = Some(prefix.display().to_string());
        }
    }
    (symlinked_component, unsafe_parent)
}
