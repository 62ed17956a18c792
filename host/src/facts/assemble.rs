//! Block devices + blkid signatures + mounts + btrfs sysfs summaries + `btrfs filesystem show`
//! → [`Facts`]. Pure.

use super::blkid::Signature;
use super::btrfs_show::{self, ShownFilesystem};
use super::mountinfo::MountEntry;
use super::{BlockDevice, BtrfsDevice, BtrfsFilesystem, Facts, UNKNOWN_DEVID};

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
        if !super::blkid::needs_probe(device) {
            continue;
        }
        if let Some(signature) = signatures.iter().find(|s| s.devname == device.path) {
            device.fstype = Some(signature.fstype.clone());
            device.uuid = signature.uuid.clone();
            device.label = signature.label.clone();
        }
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
    use expect_test::expect;

    #[test]
    fn fixture_machine() {
        let devices =
            super::super::lsblk::parse(include_str!("../../tests/data/facts/lsblk.json"), &[])
                .unwrap();
        let mounts =
            super::super::mountinfo::parse(include_str!("../../tests/data/facts/mountinfo.txt"));
        let summaries = [BtrfsSummary {
            uuid: "0b3c1d2e-1111-4000-8000-000000000001".into(),
            data_profile: "raid1".into(),
            metadata_profile: "raid1".into(),
            size_bytes: 8_001_574_060_032,
            used_bytes: 1 << 40,
            label: Some("tank".into()),
            members: vec!["sdb".into(), "sdc".into()],
        }];
        // The pool lost devid 1 once: its members are devids 2 and 3, not lsblk's 1 and 2.
        let shown = [ShownFilesystem {
            uuid: "0b3c1d2e-1111-4000-8000-000000000001".into(),
            members: vec![(3, "/dev/sdc".into()), (2, "/dev/sdb".into())],
        }];
        let unread = assemble(devices.clone(), &[], &mounts, &summaries, &[]);
        let facts = assemble(devices, &[], &mounts, &summaries, &shown);
        expect![[r#"
            [
                BtrfsFilesystem {
                    uuid: "0b3c1d2e-1111-4000-8000-000000000001",
                    label: Some(
                        "tank",
                    ),
                    mountpoint: "/srv/tank",
                    devices: [
                        BtrfsDevice {
                            devid: 2,
                            path: "/dev/sdb",
                            size_bytes: 4000787030016,
                        },
                        BtrfsDevice {
                            devid: 3,
                            path: "/dev/sdc",
                            size_bytes: 4000787030016,
                        },
                    ],
                    data_profile: "raid1",
                    metadata_profile: "raid1",
                    size_bytes: 8001574060032,
                    used_bytes: 1099511627776,
                },
            ]
        "#]]
        .assert_debug_eq(&facts.filesystems);
        assert_eq!(facts.validate(), Ok(()));
        // Without `btrfs filesystem show` the devids are unknown, not numbered.
        let devids: Vec<u64> = unread.filesystems[0]
            .devices
            .iter()
            .map(|d| d.devid)
            .collect();
        assert_eq!(devids, [UNKNOWN_DEVID, UNKNOWN_DEVID]);
        assert_eq!(
            (
                unread.filesystems[0].devices.len(),
                &unread.filesystems[0].mountpoint
            ),
            (2, &"/srv/tank".to_owned())
        );
    }

    #[test]
    fn members_from_sysfs_when_lsblk_has_no_udev_data() {
        let mut devices =
            super::super::lsblk::parse(include_str!("../../tests/data/facts/lsblk.json"), &[])
                .unwrap();
        for device in &mut devices {
            device.fstype = None;
            device.uuid = None;
            device.label = None;
        }
        let mounts =
            super::super::mountinfo::parse(include_str!("../../tests/data/facts/mountinfo.txt"));
        let summary = |members: Vec<String>| BtrfsSummary {
            uuid: "0b3c1d2e-1111-4000-8000-000000000001".into(),
            data_profile: "raid1".into(),
            metadata_profile: "raid1".into(),
            size_bytes: 1,
            used_bytes: 0,
            label: Some("tank".into()),
            members,
        };
        let facts = assemble(
            devices.clone(),
            &[],
            &mounts,
            &[summary(vec!["sdb".into(), "sdc".into()])],
            &[],
        );
        assert_eq!(facts.filesystems.len(), 1, "{:?}", facts.filesystems);
        let fs = &facts.filesystems[0];
        assert_eq!(
            (
                fs.label.as_deref(),
                fs.mountpoint.as_str(),
                fs.devices.len()
            ),
            (Some("tank"), "/srv/tank", 2)
        );
        // No members listed: nothing is guessed.
        let facts = assemble(devices, &[], &mounts, &[summary(Vec::new())], &[]);
        assert!(facts.filesystems.is_empty(), "{:?}", facts.filesystems);
    }

    #[test]
    fn signatures_fill_what_lsblk_left_blank_and_nothing_else() {
        let mut devices =
            super::super::lsblk::parse(include_str!("../../tests/data/facts/lsblk.json"), &[])
                .unwrap();
        // No udev: lsblk knows no filesystem on any device.
        for device in &mut devices {
            device.fstype = None;
            device.uuid = None;
            device.label = None;
        }
        // ...except one where it does (udev data present): that one is kept as lsblk says.
        devices[5].label = Some("from-udev".into());
        let signature = |devname: &str, fstype: &str| Signature {
            devname: devname.into(),
            fstype: fstype.into(),
            uuid: Some("7d3c1a52-93a4-4c1e-9b56-3f1a2b3c4d5e".into()),
            label: Some("probed".into()),
        };
        let signatures = [
            signature("/dev/sdd", "ext4"),
            signature(&devices[5].path.clone(), "xfs"),
            signature("/dev/not-in-lsblk", "ext4"),
        ];
        let facts = assemble(devices.clone(), &signatures, &[], &[], &[]);
        let sdd = facts
            .block_devices
            .iter()
            .find(|d| d.path == "/dev/sdd")
            .unwrap();
        assert_eq!(
            (sdd.fstype.as_deref(), sdd.label.as_deref()),
            (Some("ext4"), Some("probed")),
            "a disk holding ext4 does not look blank"
        );
        assert_eq!(facts.block_devices[5].fstype, None);
        assert_eq!(facts.block_devices[5].label.as_deref(), Some("from-udev"));
        assert_eq!(facts.block_devices.len(), devices.len());
    }
}
