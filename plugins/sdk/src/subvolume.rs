//! Shares and snapshots: where they live in a pool and how they are named, the same in every
//! planner, matching the allowlist's `subvolume` types (`<pool>/<share>`,
//! `<pool>/.snapshots[/<share>]`, `<pool>/.snapshots/<share>/<YYYYMMDDTHHMMSSZ[-tag]>`).

use crate::{BtrfsFilesystem, Subvolume, SubvolumeKind};

/// The container of a pool's snapshots, directly in the pool.
pub const SNAPSHOTS_DIR: &str = ".snapshots";

/// Longest share name, in bytes.
pub const MAX_SHARE_NAME: usize = 64;

/// Checks a share name: 1 to [`MAX_SHARE_NAME`] of `[A-Za-z0-9._-]`, starting with a letter or
/// digit (so never `.snapshots`, `.` or `..`). Stricter than the allowlist's path component, so
/// every name a planner accepts is one the agent accepts. `Err` says what is wrong.
pub fn check_share_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_SHARE_NAME
        && name.starts_with(|ch: char| ch.is_ascii_alphanumeric())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "share name {name:?} must be 1 to {MAX_SHARE_NAME} of A-Z a-z 0-9 . _ - starting with a letter or digit"
        ))
    }
}

impl Subvolume {
    /// The last component of its path: a share's or snapshot's name.
    pub fn name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }
}

impl BtrfsFilesystem {
    /// Its subvolumes, or a refusal when the host could not read them: a planner never treats
    /// an unknown list as an empty one.
    pub fn known_subvolumes(&self) -> Result<&[Subvolume], String> {
        self.subvolumes.as_deref().ok_or_else(|| {
            format!(
                "the subvolumes of the pool at {} could not be read; refresh the facts and try again",
                self.mountpoint
            )
        })
    }

    /// The absolute path of `relative` (a subvolume's path) in this pool.
    pub fn path_of(&self, relative: &str) -> String {
        format!("{}/{relative}", self.mountpoint.trim_end_matches('/'))
    }

    /// The subvolume at `relative`, if the pool has one there.
    pub fn subvolume_at(&self, relative: &str) -> Result<Option<&Subvolume>, String> {
        Ok(self.known_subvolumes()?.iter().find(|s| s.path == relative))
    }

    /// The share `name`; a refusal when there is none.
    pub fn share(&self, name: &str) -> Result<&Subvolume, String> {
        match self.subvolume_at(name)? {
            Some(subvolume) if subvolume.kind == SubvolumeKind::Share => Ok(subvolume),
            Some(_) => Err(format!(
                "{name} in {} is a subvolume nos did not make, not a share",
                self.mountpoint
            )),
            None => Err(format!("pool {} has no share {name}", self.mountpoint)),
        }
    }

    /// Whether share `share` can be deleted whole: a refusal naming the first subvolume nested
    /// in it, which `btrfs subvolume delete` would fail on half way (and nos never deletes).
    pub fn no_nested_subvolume(&self, share: &str) -> Result<(), String> {
        let prefix = format!("{share}/");
        match self
            .known_subvolumes()?
            .iter()
            .find(|s| s.path.starts_with(&prefix))
        {
            Some(nested) => Err(format!(
                "share {share} holds the subvolume {}: nos does not delete it; move it out first",
                nested.path
            )),
            None => Ok(()),
        }
    }

    /// The snapshots of share `share`, in the host's order.
    pub fn snapshots_of<'a>(
        &'a self,
        share: &str,
    ) -> Result<impl Iterator<Item = &'a Subvolume> + 'a, String> {
        let share = share.to_owned();
        Ok(self.known_subvolumes()?.iter().filter(move |s| {
            s.kind == SubvolumeKind::Snapshot && s.share.as_deref() == Some(share.as_str())
        }))
    }
}

/// `.snapshots/<share>`, relative to the pool.
pub fn snapshot_dir(share: &str) -> String {
    format!("{SNAPSHOTS_DIR}/{share}")
}

/// `.snapshots/<share>/<name>`, relative to the pool.
pub fn snapshot_path(share: &str, name: &str) -> String {
    format!("{SNAPSHOTS_DIR}/{share}/{name}")
}
