//! Fixtures for planners' native unit tests (feature `testing`, never in a component): blank
//! disks, the devices that once made a planner wipe data (one scenario each), and a stand-in for
//! the host's classification when a test reads the host's fixture facts.
//!
//! The stand-in is deliberately coarse and never the host's rules: the host's `facts::classify`
//! is the only authority on a device's state, and it is tested on captured tool output there.

use crate::{
    BlockDevice, BtrfsDevice, BtrfsFilesystem, DeviceState, Facts, Subvolume, SubvolumeKind,
};

const GIB: u64 = 1 << 30;

/// A blank whole disk of `size_bytes`.
pub fn blank_disk(kname: &str, size_bytes: u64) -> BlockDevice {
    BlockDevice {
        path: format!("/dev/{kname}"),
        kname: kname.into(),
        size_bytes,
        rotational: true,
        device_type: "disk".into(),
        fstype: None,
        label: None,
        uuid: None,
        mountpoints: vec![],
        holders: vec![],
        by_id: vec![format!("/dev/disk/by-id/ata-DISK-{kname}")],
        parent: None,
        model: Some("TESTDISK".into()),
        serial: Some(format!("SN-{kname}")),
        wwn: None,
        partition_table: None,
        usage: None,
        state: DeviceState::Blank,
        state_reasons: vec![],
    }
}

/// One unsafe device: the devices to add to the facts, and the names a planner is asked to use
/// (the disk, and its partition when it has one). Every name must be refused.
pub struct Scenario {
    pub what: &'static str,
    pub devices: Vec<BlockDevice>,
    pub names: Vec<String>,
}

fn partitioned(
    kname: &str,
    table: &str,
    fstype: &str,
    usage: &str,
    label: Option<&str>,
) -> (BlockDevice, BlockDevice) {
    let part_name = format!("{kname}1");
    let mut disk = blank_disk(kname, 4000 * GIB);
    disk.partition_table = Some(table.into());
    disk.holders = vec![part_name.clone()];
    disk.state = DeviceState::HoldsData;
    disk.state_reasons = vec![
        format!("{table} partition table"),
        format!("partition {part_name} holds {fstype}"),
    ];
    let mut part = blank_disk(&part_name, 4000 * GIB - 2 * 1024 * 1024);
    part.device_type = "part".into();
    part.parent = Some(kname.into());
    part.by_id = vec![format!("/dev/disk/by-id/ata-DISK-{kname}-part1")];
    part.serial = None;
    part.model = None;
    part.fstype = Some(fstype.into());
    part.usage = Some(usage.into());
    part.label = label.map(Into::into);
    part.uuid = Some("11111111-2222-4333-8444-555555555555".into());
    part.state = DeviceState::HoldsData;
    part.state_reasons = vec![format!("{fstype} signature")];
    (disk, part)
}

fn whole(kname: &str, fstype: &str, usage: &str, reason: &str) -> BlockDevice {
    let mut disk = blank_disk(kname, 4000 * GIB);
    disk.fstype = Some(fstype.into());
    disk.usage = Some(usage.into());
    disk.uuid = Some("66666666-7777-4888-9999-000000000000".into());
    disk.state = DeviceState::HoldsData;
    disk.state_reasons = vec![reason.into()];
    disk
}

/// The devices no planner may build on, as the host classifies them.
pub fn unsafe_scenarios() -> Vec<Scenario> {
    let mut scenarios = Vec::new();

    let (disk, part) = partitioned("sdp", "gpt", "ext4", "filesystem", Some("data"));
    scenarios.push(Scenario {
        what: "gpt partition table with an ext4 partition",
        names: vec![disk.path.clone(), part.path.clone(), part.by_id[0].clone()],
        devices: vec![disk, part],
    });

    let (mut disk, mut part) = partitioned("sdq", "gpt", "ext4", "filesystem", None);
    part.mountpoints = vec!["/data".into()];
    part.state = DeviceState::InUse;
    part.state_reasons = vec!["mounted at /data".into()];
    disk.state = DeviceState::InUse;
    disk.state_reasons = vec!["partition sdq1 is mounted at /data".into()];
    scenarios.push(Scenario {
        what: "a partition mounted",
        names: vec![disk.kname.clone(), part.kname.clone()],
        devices: vec![disk, part],
    });

    let (disk, part) = partitioned("sdr", "gpt", "crypto_LUKS", "crypto", None);
    scenarios.push(Scenario {
        what: "LUKS on a partition",
        names: vec![disk.path.clone(), part.path.clone()],
        devices: vec![disk, part],
    });

    let swap = whole("sds", "swap", "other", "swap signature");
    scenarios.push(Scenario {
        what: "a swap signature",
        names: vec![swap.path.clone()],
        devices: vec![swap],
    });

    let member = whole(
        "sdt",
        "btrfs",
        "filesystem",
        "member of the unmounted btrfs 66666666-7777-4888-9999-000000000000",
    );
    scenarios.push(Scenario {
        what: "a member of an unmounted btrfs",
        names: vec![member.path.clone()],
        devices: vec![member],
    });

    let ext4 = whole("sdu", "ext4", "filesystem", "ext4 signature");
    scenarios.push(Scenario {
        what: "whole-disk ext4",
        names: vec![ext4.path.clone(), ext4.by_id[0].clone()],
        devices: vec![ext4],
    });

    scenarios
}

/// A blank disk too small for any pool member (512 MiB).
pub fn tiny_disk() -> BlockDevice {
    blank_disk("sdtiny", GIB / 2)
}

/// Facts from the host's fixture JSON (which carries no state), each device classified by a
/// coarse stand-in for the host: in use when it or a partition is mounted or it is held by
/// something other than its partitions, holding data when it has a signature, partition table
/// or partitions, blank otherwise.
pub fn classified_fixture(json: &str) -> Result<Facts, String> {
    let mut value: serde_json::Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let devices = value
        .get_mut("block_devices")
        .and_then(serde_json::Value::as_array_mut)
        .ok_or("no block_devices")?;
    let mounted: Vec<String> = devices
        .iter()
        .filter(|d| d["mountpoints"].as_array().is_some_and(|m| !m.is_empty()))
        .filter_map(|d| d["kname"].as_str().map(String::from))
        .collect();
    for device in devices.iter_mut() {
        let holders: Vec<String> = device["holders"]
            .as_array()
            .map(|h| {
                h.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let mountpoints: Vec<String> = device["mountpoints"]
            .as_array()
            .map(|m| {
                m.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let (state, reasons) = if !mountpoints.is_empty() {
            (
                "InUse",
                vec![format!("mounted at {}", mountpoints.join(", "))],
            )
        } else if let Some(holder) = holders.iter().find(|h| mounted.contains(h)) {
            ("InUse", vec![format!("{holder} is mounted")])
        } else if let Some(fstype) = device["fstype"].as_str() {
            ("HoldsData", vec![format!("{fstype} signature")])
        } else if !holders.is_empty() {
            ("HoldsData", vec![format!("holders {}", holders.join(", "))])
        } else {
            ("Blank", vec![])
        };
        let object = device.as_object_mut().ok_or("a device is not an object")?;
        object.insert("state".into(), state.into());
        object.insert("state_reasons".into(), reasons.into());
        for key in [
            "parent",
            "model",
            "serial",
            "wwn",
            "partition_table",
            "usage",
        ] {
            object.entry(key).or_insert(serde_json::Value::Null);
        }
    }
    serde_json::from_value(value).map_err(|e| e.to_string())
}

/// A subvolume at `path` (relative to the pool), its kind and share from the path as the host
/// derives them; unlocked.
pub fn subvolume(id: u64, path: &str) -> Subvolume {
    let plain = |name: &str| !name.is_empty() && !name.starts_with('.');
    let components: Vec<&str> = path.split('/').collect();
    let (kind, share) = match components.as_slice() {
        [name] if plain(name) => (SubvolumeKind::Share, Some(*name)),
        [".snapshots"] => (SubvolumeKind::SnapshotDir, None),
        [".snapshots", share] if plain(share) => (SubvolumeKind::SnapshotDir, None),
        [".snapshots", share, name] if plain(share) && plain(name) => {
            (SubvolumeKind::Snapshot, Some(*share))
        }
        _ => (SubvolumeKind::Other, None),
    };
    Subvolume {
        id,
        path: path.into(),
        kind,
        share: share.map(str::to_owned),
        uuid: format!("00000000-0000-4000-8000-{id:012}"),
        parent_uuid: None,
        locked: false,
    }
}

/// Facts with one mounted pool, `tank` at `/srv/tank` on a blank-looking member `sdb`, holding
/// the subvolumes at `paths` (ids from 256), at `now`.
pub fn pool_with_subvolumes(paths: &[&str], now: u64) -> Facts {
    let mut member = blank_disk("sdb", 100 * GIB);
    member.fstype = Some("btrfs".into());
    member.mountpoints = vec!["/srv/tank".into()];
    member.state = DeviceState::InUse;
    member.state_reasons = vec!["mounted at /srv/tank".into()];
    Facts {
        block_devices: vec![member],
        filesystems: vec![BtrfsFilesystem {
            uuid: "7d9ef6a2-0000-4000-8000-000000000001".into(),
            label: Some("tank".into()),
            mountpoint: "/srv/tank".into(),
            devices: vec![BtrfsDevice {
                devid: 1,
                path: "/dev/sdb".into(),
                size_bytes: 100 * GIB,
            }],
            data_profile: "single".into(),
            metadata_profile: "dup".into(),
            size_bytes: 100 * GIB,
            used_bytes: GIB,
            subvolumes: Some(
                paths
                    .iter()
                    .zip(256..)
                    .map(|(path, id)| subvolume(id, path))
                    .collect(),
            ),
        }],
        fresh_uuids: vec![],
        now_unix_seconds: now,
    }
}
