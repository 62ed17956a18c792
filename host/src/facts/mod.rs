//! Facts: the description of the machine a planner receives, in the JSON form that
//! `nosctl facts` prints and `nosctl plan --facts` reads, plus the one parser of each tool's
//! output ([`lsblk`], [`blkid`], [`btrfs_show`]; mountinfo and `/proc/swaps` in
//! [`nos_machine::proc_text`], which the agent's in-use check shares), the merge
//! ([`assemble`]) and the state of every device ([`classify`]). [`build`] is the one way from
//! the raw texts (the agent's [`nos_protocol::Facts`]) to facts.
//!
//! This module never reads a file or runs a program: callers hand it the text. The field names
//! are the snake_case forms of the WIT record fields, so a facts file reads like the WIT.

pub mod assemble;
pub mod blkid;
pub mod btrfs_show;
pub mod classify;
pub mod lsblk;
pub mod subvolumes;

#[cfg(test)]
pub(crate) mod real_tests;

pub use assemble::{build, build_with_shown};

use serde::{Deserialize, Serialize};

/// At most this many block devices or filesystems in facts.
pub const MAX_DEVICES: usize = 1024;
/// At most this many fresh UUIDs.
pub const MAX_FRESH_UUIDS: usize = 64;
/// At most this many bytes in any string of the facts.
pub const MAX_FIELD_BYTES: usize = 4096;
/// At most this many entries in any list inside one device or filesystem.
pub const MAX_LIST_LEN: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Facts {
    pub block_devices: Vec<BlockDevice>,
    #[serde(default)]
    pub filesystems: Vec<BtrfsFilesystem>,
    /// Filled in by the host before each call when empty.
    #[serde(default)]
    pub fresh_uuids: Vec<String>,
    /// Filled in by the host before each call when zero.
    #[serde(default)]
    pub now_unix_seconds: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockDevice {
    pub path: String,
    pub kname: String,
    pub size_bytes: u64,
    pub rotational: bool,
    pub device_type: String,
    #[serde(default)]
    pub fstype: Option<String>,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub uuid: Option<String>,
    #[serde(default)]
    pub mountpoints: Vec<String>,
    #[serde(default)]
    pub holders: Vec<String>,
    #[serde(default)]
    pub by_id: Vec<String>,
    /// Kernel name of the device this one sits on (a partition's disk), lsblk's `PKNAME`.
    #[serde(default)]
    pub parent: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub serial: Option<String>,
    #[serde(default)]
    pub wwn: Option<String>,
    /// The partition table on this device (`gpt`, `dos`), from lsblk's `PTTYPE` or `blkid -p`.
    #[serde(default)]
    pub partition_table: Option<String>,
    /// What the signature is for, from `blkid -p`'s `USAGE`: `filesystem`, `crypto`, `raid`,
    /// `other` (swap is `other`).
    #[serde(default)]
    pub usage: Option<String>,
    /// Whether the device is blank, holds data or is in use. Always derived by the host from the
    /// rest of the facts ([`classify::classify`]), never taken from input.
    #[serde(default)]
    pub state: DeviceState,
    /// Why the device is not blank, one short sentence each (empty when blank).
    #[serde(default)]
    pub reasons: Vec<String>,
}

/// The one state a block device is in. Planners may build on [`DeviceState::Blank`] devices only;
/// reusing one that holds data takes an explicit wipe plan; one in use is refused by the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceState {
    /// No partition table, partitions, signature, holders, mounts, swap or btrfs membership.
    Blank,
    /// Carries data nothing uses right now: a partition table, a filesystem, LUKS, RAID, swap
    /// signature, or membership of an unmounted btrfs.
    HoldsData,
    /// Mounted (itself or a partition), active swap, held by dm/md/loop, a member of a mounted
    /// btrfs, or the disk under `/`. The default, so facts that were never classified are
    /// never taken for blank.
    #[default]
    InUse,
}

/// The devid of a member whose real devid the host could not read (`btrfs filesystem show`
/// failed or did not list it). btrfs numbers devices from 1, so 0 never names one; a planner
/// that needs a devid refuses a member with this one.
pub const UNKNOWN_DEVID: u64 = 0;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BtrfsDevice {
    /// [`UNKNOWN_DEVID`] when unknown.
    pub devid: u64,
    pub path: String,
    pub size_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BtrfsFilesystem {
    pub uuid: String,
    #[serde(default)]
    pub label: Option<String>,
    pub mountpoint: String,
    pub devices: Vec<BtrfsDevice>,
    pub data_profile: String,
    pub metadata_profile: String,
    #[serde(default)]
    pub size_bytes: u64,
    #[serde(default)]
    pub used_bytes: u64,
    /// The pool's subvolumes (shares, snapshot containers, snapshots and others); `None` when
    /// they were not read (the pool is not mounted where the agent reads pools, or the listing
    /// failed), which is never "no subvolumes".
    #[serde(default)]
    pub subvolumes: Option<Vec<Subvolume>>,
}

/// One subvolume of a mounted pool, as nos sees it (`btrfs subvolume list`, its role from its
/// path alone, and nos's own lock).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subvolume {
    pub id: u64,
    /// Relative to the pool's top level: `media`, `.snapshots/media/20261202T190000Z-nos1`.
    pub path: String,
    pub kind: SubvolumeKind,
    /// The share a share or a snapshot belongs to.
    #[serde(default)]
    pub share: Option<String>,
    pub uuid: String,
    /// The subvolume this one was snapshotted from.
    #[serde(default)]
    pub parent_uuid: Option<String>,
    /// Locked by an admin in nos: kept out of retention, never deleted by a plan.
    #[serde(default)]
    pub locked: bool,
}

/// What a subvolume is to nos, from its path (see [`subvolumes`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SubvolumeKind {
    /// `<share>`, directly in the pool.
    Share,
    /// `.snapshots` or `.snapshots/<share>`.
    SnapshotDir,
    /// `.snapshots/<share>/<name>`.
    Snapshot,
    /// Anything else: shown, never touched.
    Other,
}

impl Subvolume {
    /// The last component of its path: a share's or snapshot's name.
    pub fn name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }
}

impl BtrfsFilesystem {
    /// The absolute path of one of its subvolumes (`<mountpoint>/<path>`).
    pub fn subvolume_path(&self, subvolume: &Subvolume) -> String {
        format!(
            "{}/{}",
            self.mountpoint.trim_end_matches('/'),
            subvolume.path
        )
    }
}

impl Facts {
    /// Facts from a JSON file (`nosctl facts`' output, the demo's fixture facts), validated and
    /// classified again ([`classify::classify_file_facts`]): a state in the file is never
    /// trusted.
    pub fn from_file_json(text: &[u8]) -> Result<Facts, String> {
        let mut facts: Facts = serde_json::from_slice(text).map_err(|err| err.to_string())?;
        facts.validate()?;
        classify::classify_file_facts(&mut facts);
        Ok(facts)
    }

    /// Check the size bounds above; `Err` names the first offending field.
    pub fn validate(&self) -> Result<(), String> {
        if self.block_devices.len() > MAX_DEVICES || self.filesystems.len() > MAX_DEVICES {
            return Err(format!("more than {MAX_DEVICES} devices or filesystems"));
        }
        if self.fresh_uuids.len() > MAX_FRESH_UUIDS {
            return Err(format!("more than {MAX_FRESH_UUIDS} fresh UUIDs"));
        }
        let mut strings: Vec<&str> = self.fresh_uuids.iter().map(String::as_str).collect();
        for device in &self.block_devices {
            strings.extend([device.path.as_str(), &device.kname, &device.device_type]);
            strings.extend(device.fstype.as_deref());
            strings.extend(device.label.as_deref());
            strings.extend(device.uuid.as_deref());
            for list in [&device.mountpoints, &device.holders, &device.by_id] {
                if list.len() > MAX_LIST_LEN {
                    return Err(format!(
                        "device {}: a list longer than {MAX_LIST_LEN}",
                        device.path
                    ));
                }
                strings.extend(list.iter().map(String::as_str));
            }
        }
        for fs in &self.filesystems {
            if fs.devices.len() > MAX_LIST_LEN {
                return Err(format!(
                    "filesystem {}: more than {MAX_LIST_LEN} devices",
                    fs.uuid
                ));
            }
            strings.extend([
                fs.uuid.as_str(),
                &fs.mountpoint,
                &fs.data_profile,
                &fs.metadata_profile,
            ]);
            strings.extend(fs.label.as_deref());
            strings.extend(fs.devices.iter().map(|d| d.path.as_str()));
            let subvolumes = fs.subvolumes.as_deref().unwrap_or_default();
            if subvolumes.len() > subvolumes::MAX_SUBVOLUMES {
                return Err(format!(
                    "filesystem {}: more than {} subvolumes",
                    fs.uuid,
                    subvolumes::MAX_SUBVOLUMES
                ));
            }
            for subvolume in subvolumes {
                strings.extend([subvolume.path.as_str(), &subvolume.uuid]);
                strings.extend(subvolume.share.as_deref());
                strings.extend(subvolume.parent_uuid.as_deref());
            }
        }
        match strings.iter().find(|s| s.len() > MAX_FIELD_BYTES) {
            Some(long) => Err(format!(
                "a field of {} bytes, more than {MAX_FIELD_BYTES}",
                long.len()
            )),
            None => Ok(()),
        }
    }
}
