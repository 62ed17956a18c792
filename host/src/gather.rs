//! The one facts path: a [`RawSource`] hands over what the machine printed (the agent's answer
//! to [`RequestBody::Facts`](nos_protocol::RequestBody::Facts) for nosd, the same
//! commands run locally for `nosctl facts`), [`gather`] adds what nosd reads itself (btrfs
//! sysfs summaries, `/dev/disk/by-id`) and [`crate::facts::build`] parses it all, once.
//!
//! This module only reads files; it never spawns and never talks to the agent itself.

use std::path::Path;

use nos_protocol::Facts as RawFacts;

use crate::facts::Facts;

/// Where raw facts come from.
pub trait RawSource {
    /// Why there are no raw facts at all (the agent is unreachable, lsblk failed).
    type Error;
    /// Everything [`crate::facts::build`] needs from the machine, in one go.
    fn raw_facts(&self) -> Result<RawFacts, Self::Error>;
}

/// Why [`gather`] has no facts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatherError<E> {
    #[error(transparent)]
    Source(E),
    /// The raw facts do not make facts (see [`crate::facts::build`]).
    #[error("facts unusable: {0}")]
    Facts(String),
}

/// Where the files nosd reads itself are.
pub struct LocalFiles<'a> {
    /// `/sys/fs/btrfs`.
    pub sysfs_btrfs: &'a Path,
    /// `/dev/disk/by-id`.
    pub by_id: &'a Path,
}

/// The facts of the machine `source` describes.
pub fn gather<S: RawSource>(
    source: &S,
    files: &LocalFiles<'_>,
) -> Result<Facts, GatherError<S::Error>> {
    let raw = source.raw_facts().map_err(GatherError::Source)?;
    crate::facts::build(
        &raw,
        &crate::sysfs_btrfs::summaries(files.sysfs_btrfs),
        &by_id_links(files.by_id),
    )
    .map_err(GatherError::Facts)
}

/// `<dir>/*` symlinks → the kernel name each points at (`/dev/disk/by-id/ata-X` → `sdb`).
/// Empty when the directory is missing (no udev).
pub fn by_id_links(dir: &Path) -> Vec<(String, String)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut links: Vec<(String, String)> = entries
        .flatten()
        .take(crate::facts::MAX_DEVICES)
        .filter_map(|entry| {
            let target = std::fs::read_link(entry.path()).ok()?;
            let kname = target.file_name()?.to_str()?.to_owned();
            Some((entry.path().display().to_string(), kname))
        })
        .collect();
    links.sort();
    links
}
