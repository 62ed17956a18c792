//! Every block device → exactly one [`DeviceState`] with the reasons. Pure.
//!
//! * **in use**: mounted (itself or anything on it), active swap, held by something that is not
//!   one of its partitions (dm-crypt, md, LVM), a member of a mounted btrfs filesystem, or a
//!   disk whose partition or holder is in use. The disk under `/` is in use because `/` is
//!   mounted from it.
//! * **holds data**: anything else that is not nothing: a partition table, partitions, a
//!   filesystem, LUKS, RAID or swap signature, membership of an unmounted btrfs, or contents that
//!   could not be probed at all.
//! * **blank**: none of the above, and probed.
//!
//! The agent refuses a state-changing request on a device in use on its own, whatever this says;
//! planners build only on blank devices; a device that holds data is reused only through an
//! explicit wipe plan.

use super::{BlockDevice, DeviceState};

/// What, besides each device's own fields, decides its state.
pub struct Context<'a> {
    /// Device paths in `/proc/swaps`; `Err` when it could not be read (every device is then
    /// possibly swap, and none is blank).
    pub swaps: Result<&'a [String], &'a str>,
    /// Members of mounted btrfs filesystems: (device path, which filesystem, mounted where).
    pub mounted_members: &'a [(String, String)],
    /// Device paths `blkid -p` looked at; a device outside it has unknown contents.
    pub probed: &'a [String],
    /// Devices whose probe failed, and why.
    pub unprobed: &'a [(String, String)],
}

/// Sets `state` and `reasons` of every device. Reasons are short lowercase phrases that name
/// the device they are about when it is not the device itself (a partition, a holder).
pub fn classify(devices: &mut [BlockDevice], context: &Context<'_>) {
    let own: Vec<(Vec<String>, Vec<String>)> = devices
        .iter()
        .map(|device| own_reasons(device, context))
        .collect();
    let mut stale_holders: Vec<(usize, String)> = Vec::new();
    let states: Vec<(DeviceState, Vec<String>)> = (0..devices.len())
        .map(|idx| {
            let mut in_use = own[idx].0.clone();
            let mut holds = own[idx].1.clone();
            let mut visited = vec![idx];
            let mut pending: std::collections::VecDeque<usize> =
                holder_indices(devices, idx).into();
            while let Some(holder_idx) = pending.pop_front() {
                if visited.contains(&holder_idx) {
                    continue;
                }
                visited.push(holder_idx);
                let holder = &devices[holder_idx];
                let name = &holder.kname;
                if holder.device_type == "part" {
                    // A partition the kernel still lists after its table was wiped (a loop
                    // device re-reads no table) is nothing when it holds nothing either.
                    let stale = devices[idx].partition_table.is_none()
                        && own[holder_idx].0.is_empty()
                        && own[holder_idx].1.is_empty();
                    if stale {
                        stale_holders.push((idx, name.clone()));
                    } else {
                        holds.push(format!("partition {name}: {}", describe(holder)));
                    }
                } else {
                    in_use.push(format!("held by {name} ({})", holder.device_type));
                }
                in_use.extend(
                    own[holder_idx]
                        .0
                        .iter()
                        .map(|reason| format!("{name} {reason}")),
                );
                pending.extend(holder_indices(devices, holder_idx));
            }
            let state = if !in_use.is_empty() {
                DeviceState::InUse
            } else if !holds.is_empty() {
                DeviceState::HoldsData
            } else {
                DeviceState::Blank
            };
            in_use.extend(holds);
            in_use.dedup();
            (state, in_use)
        })
        .collect();
    for (device, (state, reasons)) in devices.iter_mut().zip(states) {
        device.state = state;
        device.reasons = reasons;
    }
    // A stale partition is listed as a (blank) device of its own, but nothing sits on its disk.
    for (idx, holder) in stale_holders {
        devices[idx].holders.retain(|name| *name != holder);
    }
}

/// Classifies facts read from a file (`nosctl plan --facts`, the demo's fixture facts), which
/// carry no raw probe results: the file is taken as complete, so a device it lists with no
/// contents, mounts, holders or pool membership is blank, and swap is only what a device's
/// mount points say (`[SWAP]`).
pub fn classify_file_facts(facts: &mut super::Facts) {
    let probed: Vec<String> = facts.block_devices.iter().map(|d| d.path.clone()).collect();
    let mounted_members: Vec<(String, String)> = facts
        .filesystems
        .iter()
        .flat_map(|fs| {
            let name = format!(
                "{} at {}",
                name_of(fs.label.as_deref(), &fs.uuid),
                fs.mountpoint
            );
            fs.devices
                .iter()
                .map(move |d| (d.path.clone(), name.clone()))
        })
        .collect();
    let swaps: Vec<String> = facts
        .block_devices
        .iter()
        .filter(|d| d.mountpoints.iter().any(|m| m == "[SWAP]"))
        .map(|d| d.path.clone())
        .collect();
    for device in &mut facts.block_devices {
        device.mountpoints.retain(|m| m != "[SWAP]");
    }
    classify(
        &mut facts.block_devices,
        &Context {
            swaps: Ok(&swaps),
            mounted_members: &mounted_members,
            probed: &probed,
            unprobed: &[],
        },
    );
}

fn holder_indices(devices: &[BlockDevice], idx: usize) -> Vec<usize> {
    devices[idx]
        .holders
        .iter()
        .filter_map(|holder| devices.iter().position(|d| &d.kname == holder))
        .collect()
}

/// The device's own reasons: (in use, holds data), without its holders'.
fn own_reasons(device: &BlockDevice, context: &Context<'_>) -> (Vec<String>, Vec<String>) {
    let mut in_use = Vec::new();
    let mut holds = Vec::new();
    for mountpoint in &device.mountpoints {
        in_use.push(format!("is mounted at {mountpoint}"));
    }
    match context.swaps {
        Ok(swaps) if swaps.contains(&device.path) => in_use.push("is active swap".into()),
        Ok(_) => {}
        Err(reason) => in_use.push(format!("may be active swap ({reason})")),
    }
    if let Some((_, filesystem)) = context
        .mounted_members
        .iter()
        .find(|(path, _)| *path == device.path)
    {
        in_use.push(format!(
            "is a member of the mounted btrfs filesystem {filesystem}"
        ));
    }
    if let Some(table) = &device.partition_table {
        holds.push(format!("has a {table} partition table"));
    }
    if let Some(fstype) = &device.fstype {
        holds.push(format!("holds {}", describe_signature(fstype, device)));
    }
    let unknown_by_lsblk = device.fstype.is_none() && device.partition_table.is_none();
    if unknown_by_lsblk && !context.probed.contains(&device.path) {
        let failure = context
            .unprobed
            .iter()
            .find(|(path, _)| *path == device.path)
            .map(|(_, reason)| reason);
        holds.push(match failure {
            Some(reason) => format!("its contents are unknown: {reason}"),
            None => "its contents are unknown: it was not probed".into(),
        });
    }
    (in_use, holds)
}

/// How a filesystem is named in reasons: `'tank' (uuid)`, or the uuid alone.
pub fn name_of(label: Option<&str>, uuid: &str) -> String {
    match label {
        Some(label) => format!("'{label}' ({uuid})"),
        None => uuid.to_owned(),
    }
}

fn describe_signature(fstype: &str, device: &BlockDevice) -> String {
    let what = match fstype {
        "crypto_LUKS" => "a LUKS encrypted volume".to_owned(),
        "swap" => "a swap signature".to_owned(),
        "linux_raid_member" => "an md RAID member signature".to_owned(),
        "btrfs" => "a btrfs filesystem member".to_owned(),
        other if other.starts_with(['a', 'e', 'i', 'o', 'u']) => format!("an {other} filesystem"),
        other => format!("a {other} filesystem"),
    };
    match (&device.label, &device.uuid) {
        (Some(label), _) => format!("{what} labelled '{label}'"),
        (None, Some(uuid)) if fstype == "btrfs" => format!("{what} ({uuid})"),
        _ => what,
    }
}

/// One phrase for what a device holds: its filesystem, label and size (`ext4 'data', 511 MiB`).
pub fn describe(device: &BlockDevice) -> String {
    let size = human_size(device.size_bytes);
    match (&device.fstype, &device.label) {
        (Some(fstype), Some(label)) => format!("{fstype} '{label}', {size}"),
        (Some(fstype), None) => format!("{fstype}, {size}"),
        (None, _) => format!("no filesystem, {size}"),
    }
}

/// Bytes in binary units with one decimal (`1.0 GiB`, `511 MiB`).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 || value >= 100.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
