//! The agent's raw facts (or `nosctl facts`' own) + btrfs sysfs summaries + by-id links →
//! [`Facts`], every device classified. Pure: [`build`] is the one way facts are made from what
//! the machine printed, for nosd and `nosctl facts` alike.

use nos_protocol::Facts as RawFacts;

use super::blkid::{self, Signature};
use super::btrfs_show::{self, ShownFilesystem};
use super::classify::{self, Context};
use nos_machine::proc_text::{self, MountEntry};

use super::{BlockDevice, BtrfsDevice, BtrfsFilesystem, Facts, UNKNOWN_DEVID, lsblk};

/// Parses every raw text with its one parser, merges them and classifies every device.
///
/// `Err` only when there are no facts to speak of: lsblk's output or the mount table does not
/// parse, or the result breaks the size bounds. A missing or unparsable refinement makes what it
/// would have said unknown, never blank: a device whose `blkid -p` probe is missing or failed
/// "holds unknown contents" unless lsblk knew what it holds; without `/proc/swaps` every device "may be active swap"; without
/// `btrfs filesystem show` devids are [`UNKNOWN_DEVID`].
pub fn build(
    raw: &RawFacts,
    summaries: &[BtrfsSummary],
    by_id: &[(String, String)],
) -> Result<Facts, String> {
    build_with_shown(raw, summaries, by_id).map(|(facts, _)| facts)
}

/// [`build`], also handing back the parsed `btrfs filesystem show` (every btrfs filesystem it
/// listed, mounted or not, with its missing devices; empty when it was not read or does not
/// parse), which pool health reads.
pub fn build_with_shown(
    raw: &RawFacts,
    summaries: &[BtrfsSummary],
    by_id: &[(String, String)],
) -> Result<(Facts, Vec<ShownFilesystem>), String> {
    let devices = lsblk::parse(&raw.lsblk, by_id)?;
    // Each device's probe on its own: one that failed or does not parse leaves that device's
    // contents unknown, never blank, and says why.
    let mut signatures: Vec<Signature> = Vec::new();
    let mut probed: Vec<String> = Vec::new();
    let mut unprobed: Vec<(String, String)> = Vec::new();
    for probe in raw.probes.iter().take(super::MAX_DEVICES) {
        match probe
            .output
            .text()
            .map_err(str::to_owned)
            .and_then(blkid::parse)
        {
            Ok(found) => {
                probed.push(probe.device.clone());
                signatures.extend(found.into_iter().filter(|s| s.devname == probe.device));
            }
            Err(reason) => unprobed.push((probe.device.clone(), reason)),
        }
    }
    let mounts = proc_text::parse_mountinfo(
        raw.mountinfo
            .text()
            .map_err(|reason| format!("the mount table is unknown: {reason}"))?,
    );
    let shown = match raw.btrfs_show.text().map(btrfs_show::parse) {
        Ok(Ok(shown)) => shown,
        Ok(Err(reason)) => {
            tracing::warn!(%reason, "btrfs filesystem show does not parse; devids are unknown");
            Vec::new()
        }
        Err(reason) => {
            tracing::warn!(%reason, "no btrfs filesystem show; devids are unknown");
            Vec::new()
        }
    };
    let swaps = raw
        .swaps
        .text()
        .map_err(str::to_owned)
        .and_then(proc_text::parse_swaps);
    let mut facts = assemble(devices, &signatures, &mounts, summaries, &shown);
    let mut mounted_members: Vec<(String, String)> = Vec::new();
    for fs in &facts.filesystems {
        let name = classify::name_of(fs.label.as_deref(), &fs.uuid);
        for member in &fs.devices {
            mounted_members.push((member.path.clone(), format!("{name} at {}", fs.mountpoint)));
        }
    }
    // Mounted where nos cannot see the mount point (another mount namespace): the kernel's own
    // list of the members says so all the same.
    for summary in summaries {
        let name = classify::name_of(summary.label.as_deref(), &summary.uuid);
        for member in &summary.members {
            let path = format!("/dev/{member}");
            if !mounted_members.iter().any(|(known, _)| *known == path) {
                mounted_members.push((path, format!("{name}, mounted outside nos's view")));
            }
        }
    }
    classify::classify(
        &mut facts.block_devices,
        &Context {
            swaps: swaps.as_deref().map_err(String::as_str),
            mounted_members: &mounted_members,
            probed: &probed,
            unprobed: &unprobed,
        },
    );
    facts.validate()?;
    Ok((facts, shown))
}

/// What `/sys/fs/btrfs/<uuid>/allocation` tells about one filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BtrfsSummary {
    pub uuid: String,
    pub data_profile: String,
    pub metadata_profile: String,
    pub size_bytes: u64,
    pub used_bytes: u64,
    /// The filesystem label, when sysfs shows one.
    pub label: Option<String>,
    /// Kernel names of the member devices (`<sysfs>/<uuid>/devices/`).
    pub members: Vec<String>,
}

/// Build facts from what the machine reported. Mounted btrfs filesystems are grouped by UUID;
/// fresh UUIDs and the time are left empty for the caller to fill in just before a call.
///
/// A member's devid comes only from `shown` (parsed `btrfs filesystem show --raw`); a member it
/// does not list, or every member when it could not be read (`shown` empty), gets
/// [`UNKNOWN_DEVID`], never a guess: devids have gaps once a pool lost or replaced a device.
///
/// A device lsblk reports with no filesystem type, UUID or label at all (it had no udev
/// database) takes them from `signatures` (blkid's own probe), so a disk holding data never
/// looks blank for lack of udev.
pub fn assemble(
    block_devices: Vec<BlockDevice>,
    signatures: &[Signature],
    mounts: &[MountEntry],
    summaries: &[BtrfsSummary],
    shown: &[ShownFilesystem],
) -> Facts {
    let mut block_devices = block_devices;
    for device in &mut block_devices {
        let Some(signature) = signatures.iter().find(|s| s.devname == device.path) else {
            continue;
        };
        if device.fstype.is_none() && device.uuid.is_none() && device.label.is_none() {
            device.fstype = signature.fstype.clone();
            device.uuid = signature.uuid.clone();
            device.label = signature.label.clone();
        }
        if device.partition_table.is_none() {
            device.partition_table = signature.pttype.clone();
        }
        device.usage = signature.usage.clone();
    }
    // Without udev (containers), lsblk reports no fstype, UUID or label at all; the kernel's own
    // list of a mounted filesystem's members says which devices hold btrfs.
    for device in &mut block_devices {
        if device.fstype.is_some() {
            continue;
        }
        if let Some(summary) = summaries.iter().find(|s| s.members.contains(&device.kname)) {
            device.fstype = Some("btrfs".into());
            device.uuid = Some(summary.uuid.clone());
            device.label = device.label.take().or_else(|| summary.label.clone());
        }
    }
    let mut filesystems: Vec<BtrfsFilesystem> = Vec::new();
    for device in block_devices
        .iter()
        .filter(|d| d.fstype.as_deref() == Some("btrfs"))
    {
        let Some(uuid) = &device.uuid else { continue };
        let member = BtrfsDevice {
            devid: btrfs_show::devid_of(shown, uuid, &device.path).unwrap_or(UNKNOWN_DEVID),
            path: device.path.clone(),
            size_bytes: device.size_bytes,
        };
        match filesystems.iter_mut().find(|fs| &fs.uuid == uuid) {
            Some(fs) => fs.devices.push(member),
            None => filesystems.push(BtrfsFilesystem {
                uuid: uuid.clone(),
                label: device.label.clone(),
                mountpoint: String::new(),
                devices: vec![member],
                data_profile: "unknown".into(),
                metadata_profile: "unknown".into(),
                size_bytes: 0,
                used_bytes: 0,
                subvolumes: None,
            }),
        }
    }
    for fs in &mut filesystems {
        let paths: Vec<&str> = fs.devices.iter().map(|d| d.path.as_str()).collect();
        if let Some(mount) = mounts
            .iter()
            .find(|m| m.fs_type == "btrfs" && paths.contains(&m.source.as_str()))
        {
            fs.mountpoint = mount.mount_point.clone();
        }
        if let Some(summary) = summaries.iter().find(|s| s.uuid == fs.uuid) {
            fs.data_profile = summary.data_profile.clone();
            fs.metadata_profile = summary.metadata_profile.clone();
            fs.size_bytes = summary.size_bytes;
            fs.used_bytes = summary.used_bytes;
        }
    }
    filesystems.retain(|fs| !fs.mountpoint.is_empty());
    Facts {
        block_devices,
        filesystems,
        fresh_uuids: Vec::new(),
        now_unix_seconds: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::DeviceState;
    use nos_protocol::FactText;

    /// The real capture of a mounted two-disk raid1 (see `real_tests`), as the agent sends it,
    /// without `btrfs filesystem show`.
    fn mounted_raid1() -> RawFacts {
        let mut raw = crate::facts::real_tests::raw("btrfs-mounted", "lsblk-tree.json");
        raw.btrfs_show = FactText::Unavailable {
            reason: "not read".into(),
        };
        raw
    }

    fn signatures(raw: &RawFacts) -> Vec<Signature> {
        raw.probes
            .iter()
            .flat_map(|probe| blkid::parse(probe.output.text().unwrap()).unwrap())
            .collect()
    }

    #[test]
    fn devids_come_from_btrfs_show_only() {
        let raw = mounted_raid1();
        let facts = build(&raw, &[], &[]).unwrap();
        let fs = &facts.filesystems[0];
        assert_eq!(fs.devices.len(), 2);
        assert!(
            fs.devices.iter().all(|d| d.devid == UNKNOWN_DEVID),
            "{fs:?}"
        );
        // The pool lost devid 1 once: its members are devids 2 and 3, not 1 and 2.
        let shown = [ShownFilesystem {
            uuid: fs.uuid.clone(),
            members: vec![
                (3, fs.devices[1].path.clone()),
                (2, fs.devices[0].path.clone()),
            ],
            ..ShownFilesystem::default()
        }];
        let devices = lsblk::parse(&raw.lsblk, &[]).unwrap();
        let signatures = signatures(&raw);
        let mounts = proc_text::parse_mountinfo(raw.mountinfo.text().unwrap());
        let facts = assemble(devices, &signatures, &mounts, &[], &shown);
        let devids: Vec<u64> = facts.filesystems[0]
            .devices
            .iter()
            .map(|d| d.devid)
            .collect();
        assert_eq!(devids, [2, 3]);
    }

    /// A pool mounted where nos cannot see the mount point (another mount namespace) is in use
    /// all the same: the kernel lists its members in sysfs.
    #[test]
    fn members_mounted_elsewhere_are_in_use() {
        let mut raw = mounted_raid1();
        raw.mountinfo = FactText::Text {
            text: String::new(),
        };
        // lsblk read the mount in the capture's namespace; here it must not matter.
        raw.lsblk = raw.lsblk.replace("\"/tmp/", "null, \"/tmp/");
        let without = build(&raw, &[], &[]);
        let members: Vec<String> = lsblk::parse(&raw.lsblk, &[])
            .unwrap()
            .iter()
            .map(|d| d.kname.clone())
            .collect();
        let summary = BtrfsSummary {
            uuid: "x".into(),
            data_profile: "raid1".into(),
            metadata_profile: "raid1".into(),
            size_bytes: 1,
            used_bytes: 0,
            label: Some("fixpool".into()),
            members,
        };
        let facts = build(&raw, &[summary], &[]).unwrap();
        for device in &facts.block_devices {
            assert_eq!(device.state, DeviceState::InUse, "{device:?}");
            assert!(
                device
                    .reasons
                    .iter()
                    .any(|r| r.contains("mounted outside nos's view")),
                "{device:?}"
            );
        }
        assert!(without.is_ok());
    }

    /// blkid fills what lsblk (without udev) left empty and never overrides what it reported.
    #[test]
    fn signatures_fill_what_lsblk_left_blank_and_nothing_else() {
        let raw = mounted_raid1();
        let mut devices = lsblk::parse(&raw.lsblk, &[]).unwrap();
        devices[0].label = Some("from-udev".into());
        let signatures = signatures(&raw);
        let facts = assemble(devices, &signatures, &[], &[], &[]);
        assert_eq!(facts.block_devices[0].fstype, None);
        assert_eq!(facts.block_devices[0].label.as_deref(), Some("from-udev"));
        assert_eq!(facts.block_devices[1].fstype.as_deref(), Some("btrfs"));
        assert_eq!(facts.block_devices[1].label.as_deref(), Some("fixpool"));
        assert_eq!(facts.block_devices[1].usage.as_deref(), Some("filesystem"));
    }
}
