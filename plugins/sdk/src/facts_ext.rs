//! Helpers to read facts: lookups a planner needs, with the same meaning in every planner.

use crate::{BlockDevice, BtrfsDevice, BtrfsFilesystem, DeviceState, Facts};

/// The planner that turns a device that holds data back into a blank one; refusals point to it.
pub const WIPE_PLANNER: &str = "disk-wipe";

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

    /// The partitions on `disk` (devices whose parent is its kernel name), in facts order.
    pub fn partitions<'a>(
        &'a self,
        disk: &'a BlockDevice,
    ) -> impl Iterator<Item = &'a BlockDevice> {
        self.block_devices
            .iter()
            .filter(move |device| device.parent.as_deref() == Some(disk.kname.as_str()))
    }

    /// The device `name` names, when it is blank; otherwise why not, as a refusal message: a
    /// device that holds data names what it holds and points to the wipe planner, one in use
    /// names why. The one check a planner makes before building on a device.
    pub fn blank_device(&self, name: &str) -> Result<&BlockDevice, String> {
        let device = self
            .device(name)
            .ok_or_else(|| format!("device {name} is not in the facts"))?;
        match device.state {
            DeviceState::Blank => Ok(device),
            DeviceState::HoldsData => {
                let partitions: Vec<&str> =
                    self.partitions(device).map(|p| p.kname.as_str()).collect();
                let what = match (&device.fstype, partitions.is_empty()) {
                    (_, false) => partitions.join(", "),
                    (Some(fstype), true) => format!("a {fstype} signature"),
                    (None, true) => "data".into(),
                };
                Err(format!(
                    "device {} holds {what} ({}); only a blank device is used: wipe it first with the {WIPE_PLANNER} planner",
                    device.path,
                    device.describe()
                ))
            }
            DeviceState::InUse => Err(format!(
                "device {} is in use ({}); unmount or stop what uses it first",
                device.path,
                device.describe()
            )),
        }
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

    /// True when the host found nothing on the device ([`DeviceState::Blank`]): the only
    /// devices a planner may build on.
    pub fn is_blank(&self) -> bool {
        self.state == DeviceState::Blank
    }

    /// What the device holds, on one line, for refusals and warnings: the host's reasons, or
    /// `blank`.
    pub fn describe(&self) -> String {
        if self.state_reasons.is_empty() {
            match self.state {
                DeviceState::Blank => "blank".into(),
                DeviceState::HoldsData => "holds data".into(),
                DeviceState::InUse => "in use".into(),
            }
        } else {
            self.state_reasons.join("; ")
        }
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

    /// The present member with devid `devid`, if there is one (a missing device has none).
    pub fn devid_of_present(&self, devid: u64) -> Option<&BtrfsDevice> {
        self.devices.iter().find(|d| d.known_devid() == Some(devid))
    }
}

impl BtrfsDevice {
    /// The member's devid; `None` when the host could not read it ([`UNKNOWN_DEVID`]).
    pub fn known_devid(&self) -> Option<u64> {
        (self.devid != UNKNOWN_DEVID).then_some(self.devid)
    }
}
