//! The one facts path: the agent hands over what the machine printed (its answer to
//! [`RequestBody::Facts`](nos_protocol::RequestBody::Facts), for nosd and `nosctl facts`
//! alike, through `pipeline::port`), [`gather`] adds what nosd reads itself (btrfs sysfs
//! summaries, `/dev/disk/by-id`) and [`crate::facts::build`] parses it all, once.
//!
//! This module only reads files; it never spawns and never talks to the agent itself.

use std::path::Path;

use nos_protocol::Facts as RawFacts;

use crate::facts::Facts;

/// Where the files nosd reads itself are.
pub struct LocalFiles<'a> {
    /// `/sys/fs/btrfs`.
    pub sysfs_btrfs: &'a Path,
    /// `/dev/disk/by-id`.
    pub by_id: &'a Path,
}

/// The facts of the machine whose raw texts `raw` holds (the agent's answer to
/// `RequestBody::Facts`), with what nosd reads itself from `files`; `Err` says why the texts do
/// not make facts (see [`crate::facts::build`]).
pub fn gather(raw: &RawFacts, files: &LocalFiles<'_>) -> Result<Facts, String> {
    crate::facts::build(
        raw,
        &crate::sysfs_btrfs::summaries(files.sysfs_btrfs),
        &by_id_links(files.by_id),
    )
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
