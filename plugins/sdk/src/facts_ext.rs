//! Helpers to read facts: lookups a planner needs, with the same meaning in every planner.

use crate::{BlockDevice, BtrfsDevice, BtrfsFilesystem, Facts};

/// The devid the host gives a member whose real devid it could not read. btrfs numbers devices
/// from 1, so it never names one; use [`BtrfsDevice::known_devid`].
pub const UNKNOWN_DEVID: u64 = 0;

impl Facts {
    /// The block device whose path, kernel name or by-id link is `name`.
    pub fn device(&self, name: &str) -> Option<&BlockDevice> {
        self.block_devices.iter().find(|device| {
            device.path == name || device.kname == name || device.by_id.iter().any(|l| l == name)
        })
    }

    /// The mounted btrfs filesystem at `mountpoint`, or with that label or UUID.
    pub fn filesystem(&self, name: &str) -> Option<&BtrfsFilesystem> {
        self.filesystems.iter().find(|fs| {
            fs.mountpoint == name || fs.uuid == name || fs.label.as_deref() == Some(name)
        })
    }

    /// The `idx`-th host-supplied fresh UUID.
    pub fn fresh_uuid(&self, idx: usize) -> Option<&str> {
        self.fresh_uuids.get(idx).map(String::as_str)
    }
}

impl BlockDevice {
    pub fn is_mounted(&self) -> bool {
        !self.mountpoints.is_empty()
    }

    /// True when the device carries a filesystem or container signature, or has something
    /// stacked on it (dm-crypt, md, LVM).
    pub fn is_in_use(&self) -> bool {
        self.fstype.is_some() || !self.holders.is_empty()
    }

    /// True for the kinds of block device a pool may be built on: whole disks, partitions and
    /// loop devices. Which device *names* may be used at all is the allowlist's decision (the
    /// demo's accepts only loop devices); a planner only refuses what can never hold a pool
    /// member (a ROM, a dm mapping it did not make).
    pub fn can_hold_a_pool(&self) -> bool {
        matches!(self.device_type.as_str(), "disk" | "part" | "loop")
    }
}

impl BtrfsFilesystem {
    /// The devid of the member at `path`, if it is one and its devid is known.
    pub fn devid_of(&self, path: &str) -> Option<u64> {
        self.devices
            .iter()
            .find(|d| d.path == path)
            .and_then(BtrfsDevice::known_devid)
    }
}

impl BtrfsDevice {
    /// The member's devid; `None` when the host could not read it ([`UNKNOWN_DEVID`]).
    pub fn known_devid(&self) -> Option<u64> {
        (self.devid != UNKNOWN_DEVID).then_some(self.devid)
    }
}
