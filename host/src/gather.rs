//! The one facts path: the agent hands over what the machine printed (its answer to
//! [`RequestBody::Facts`](nos_protocol::RequestBody::Facts), for nosd and `nosctl facts`
//! alike, through `pipeline::port`), [`gather`] adds what nosd reads itself (btrfs sysfs
//! summaries, `/dev/disk/by-id`) and [`crate::facts::build`] parses it all, once.
//!
//! This module only reads files; it never spawns and never talks to the agent itself.

use std::path::Path;

use nos_protocol::{Facts as RawFacts, PoolReadings};

use crate::facts::Facts;
use crate::facts::btrfs_show::ShownFilesystem;

/// Where the files nosd reads itself are.
pub struct LocalFiles<'a> {
    /// `/sys/fs/btrfs`.
    pub sysfs_btrfs: &'a Path,
    /// `/dev/disk/by-id`.
    pub by_id: &'a Path,
}

/// One refresh's view of the machine: the planners' facts, plus what pool health reads beside
/// them (`btrfs filesystem show`'s missing devices, each mounted pool's raw readings, parsed by
/// `crate::health` where they are judged).
#[derive(Debug, Clone)]
pub struct Observation {
    pub facts: Facts,
    /// Every btrfs filesystem `btrfs filesystem show` listed (empty when unknown).
    pub shown: Vec<ShownFilesystem>,
    /// The agent's raw readings of each mounted pool under the mount roots.
    pub pools: Vec<PoolReadings>,
}

impl Observation {
    /// Facts alone (a fixture file, a fake agent): nothing shown, nothing read.
    pub fn of_facts(facts: Facts) -> Observation {
        Observation {
            facts,
            shown: Vec::new(),
            pools: Vec::new(),
        }
    }
}

/// The facts of the machine whose raw texts `raw` holds (the agent's answer to
/// `RequestBody::Facts`), with what nosd reads itself from `files`; `Err` says why the texts do
/// not make facts (see [`crate::facts::build`]).
pub fn gather(raw: &RawFacts, files: &LocalFiles<'_>) -> Result<Observation, String> {
    let (mut facts, shown) = crate::facts::build_with_shown(
        raw,
        &crate::sysfs_btrfs::summaries(files.sysfs_btrfs),
        &by_id_links(files.by_id),
    )?;
    attach_subvolumes(&mut facts, &raw.pools);
    Ok(Observation {
        facts,
        shown,
        pools: raw
            .pools
            .iter()
            .take(nos_protocol::MAX_POOL_READINGS)
            .cloned()
            .collect(),
    })
}

/// Each mounted pool's subvolumes, from the agent's listing of the path it is mounted at; a
/// listing that failed or does not parse leaves the pool's `subvolumes` unknown (`None`).
fn attach_subvolumes(facts: &mut Facts, readings: &[PoolReadings]) {
    for reading in readings {
        let Some(fs) = facts
            .filesystems
            .iter_mut()
            .find(|fs| fs.mountpoint == reading.mount_path)
        else {
            continue;
        };
        match reading
            .subvolumes
            .text()
            .map_err(str::to_owned)
            .and_then(|text| crate::facts::subvolumes::parse(text).map_err(|e| e.to_string()))
        {
            Ok(list) => fs.subvolumes = Some(crate::facts::subvolumes::to_facts(list)),
            Err(reason) => {
                tracing::warn!(pool = %reading.mount_path, %reason, "subvolumes not read");
            }
        }
    }
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
