//! disk-wipe: plan erasing every signature of a device that holds data, so that it becomes
//! blank and a pool planner may use it. The only way nos reuses a device that holds anything:
//! no planner has a force input.
//!
//! Steps: `wipefs --all -- /dev/<partition>` for each partition, deepest first, then
//! `wipefs --all -- /dev/<device>`; each step's title names what it destroys, the plan's
//! warnings list everything that will be destroyed, and every step's confirmation word is the
//! disk's serial (its kernel name when it has none), so a human reads the disk's label before
//! typing it. A device in use is refused with its reasons (the agent would refuse it too), and
//! a blank one is refused because there is nothing to wipe. This planner never creates a
//! partition table, filesystem or anything else; pure logic, unit-tested natively.
#![deny(unsafe_code)]

use nos_plugin_sdk::{BlockDevice, DeviceState, Facts, Plan, PlanError, Planner, PluginInfo, Step};
use serde::Deserialize;

/// The input a caller passes, as JSON (schema in [`INPUT_SCHEMA`]).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// Kernel name, `/dev` path or `/dev/disk/by-id` link.
    pub device: String,
}

pub const INPUT_SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "Wipe a disk that holds data",
  "type": "object",
  "required": ["device"],
  "additionalProperties": false,
  "properties": {
    "device": {"type": "string", "description": "kernel name, /dev path or /dev/disk/by-id link of the disk or partition to wipe"}
  }
}"#;

/// At most this many partitions (and nesting levels) below the wiped device; more is refused
/// rather than planned, and bounds the plan.
pub const MAX_PARTITIONS: usize = 128;

pub struct WipePlanner;

impl Planner for WipePlanner {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "disk-wipe".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "Erase every signature of a disk that holds data, so it becomes blank".into(),
            input_schema: INPUT_SCHEMA.into(),
        }
    }

    fn plan(facts: &Facts, input: &str) -> Result<Plan, PlanError> {
        let input: Input = nos_plugin_sdk::parse_input(input)?;
        plan(facts, &input)
    }
}

nos_plugin_sdk::export_planner!(WipePlanner);

fn refused(message: String) -> PlanError {
    PlanError::Refused(message)
}

/// Plan the wipe. Pure: the same facts and input always give the same plan.
pub fn plan(facts: &Facts, input: &Input) -> Result<Plan, PlanError> {
    let device = facts
        .device(&input.device)
        .ok_or_else(|| refused(format!("device {} is not in the facts", input.device)))?;
    if !matches!(device.device_type.as_str(), "disk" | "part" | "loop") {
        return Err(refused(format!(
            "device {} is a {}, not a disk, partition or loop device",
            device.path, device.device_type
        )));
    }
    let below = descendants(facts, device)?;
    for target in below.iter().copied().chain([device]) {
        if target.state == DeviceState::InUse {
            return Err(refused(format!(
                "{} is in use: {}; nothing on it is wiped",
                target.path,
                target.describe()
            )));
        }
    }
    if device.is_blank() && below.iter().all(|d| d.is_blank()) {
        return Err(refused(format!(
            "{} is blank: there is nothing to wipe",
            device.path
        )));
    }

    let word = confirmation_word(facts, device);
    let mut plan = Plan::new();
    for partition in &below {
        let what = contents(partition);
        plan.push(Step::destructive(
            &format!("wipe-{}", partition.kname),
            format!("Erase {what} on partition {}", partition.path),
            &["wipefs", "--all", "--", &partition.path],
            word,
        ));
        plan.warn(format!("partition {}: {what} is destroyed", partition.path));
    }
    let own = own_contents(device, below.len());
    plan.push(Step::destructive(
        &format!("wipe-{}", device.kname),
        format!("Erase {own} on {} ({})", device.path, identity(device)),
        &["wipefs", "--all", "--", &device.path],
        word,
    ));
    plan.warn(format!(
        "{} ({}): {own} is destroyed; the data on it cannot be recovered",
        device.path,
        identity(device)
    ));
    Ok(plan)
}

/// Every partition below `device`, deepest first (each device's own partitions, last listed
/// first, before the device itself), so no step wipes a table while a partition on it remains.
fn descendants<'a>(
    facts: &'a Facts,
    device: &'a BlockDevice,
) -> Result<Vec<&'a BlockDevice>, PlanError> {
    let mut ordered = Vec::new();
    let mut stack: Vec<(&BlockDevice, bool)> =
        facts.partitions(device).map(|p| (p, false)).collect();
    while let Some((current, expanded)) = stack.pop() {
        if expanded {
            ordered.push(current);
            continue;
        }
        if ordered.len() + stack.len() > MAX_PARTITIONS {
            return Err(refused(format!(
                "device {} has more than {MAX_PARTITIONS} partitions",
                device.path
            )));
        }
        stack.push((current, true));
        stack.extend(facts.partitions(current).map(|p| (p, false)));
    }
    Ok(ordered)
}

/// The disk's serial, or its kernel name when it has none; a partition's disk is its topmost
/// parent in the facts.
fn confirmation_word<'a>(facts: &'a Facts, device: &'a BlockDevice) -> &'a str {
    let mut disk = device;
    for _ in 0..MAX_PARTITIONS {
        match disk
            .parent
            .as_deref()
            .and_then(|parent| facts.device(parent))
        {
            Some(parent) => disk = parent,
            None => break,
        }
    }
    disk.serial.as_deref().unwrap_or(&disk.kname)
}

/// What the facts show on a partition: `the ext4 signature 'data' (1.0 GiB)`.
fn contents(device: &BlockDevice) -> String {
    let size = human_bytes(device.size_bytes);
    match (&device.fstype, &device.label) {
        (Some(fstype), Some(label)) => format!("the {fstype} signature '{label}' ({size})"),
        (Some(fstype), None) => format!("the {fstype} signature ({size})"),
        (None, _) => format!("whatever it holds ({size})"),
    }
}

/// What wiping the device itself destroys: its partition table (with the count and type) or
/// its own signature, and any other signature on it.
fn own_contents(device: &BlockDevice, n_partitions: usize) -> String {
    let table = device.partition_table.as_deref();
    if n_partitions == 0 && table.is_none() {
        return format!("{} and any other signature", contents(device));
    }
    let noun = if n_partitions == 1 {
        "partition"
    } else {
        "partitions"
    };
    match table {
        Some(table) => format!(
            "the partition table ({n_partitions} {noun}) of type {table} and any other signature"
        ),
        None => format!("the partition table ({n_partitions} {noun}) and any other signature"),
    }
}

/// The device's size, then its model and serial when the kernel reports them:
/// `3.6 TiB, WDC WD40EFRX WD-XYZ123`.
fn identity(device: &BlockDevice) -> String {
    let mut parts = vec![human_bytes(device.size_bytes)];
    parts.extend(
        [device.model.as_deref(), device.serial.as_deref()]
            .into_iter()
            .flatten()
            .map(String::from),
    );
    parts.join(", ")
}

/// `bytes` in binary units with one decimal: `512.0 MiB`, `3.6 TiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut unit_idx = 0;
    let mut whole = bytes;
    while whole >= 1024 * 1024 && unit_idx + 2 < UNITS.len() {
        whole /= 1024;
        unit_idx += 1;
    }
    if whole < 1024 {
        return format!("{whole} {}", UNITS[unit_idx]);
    }
    let tenths = whole * 10 / 1024;
    format!("{}.{} {}", tenths / 10, tenths % 10, UNITS[unit_idx + 1])
}

#[cfg(test)]
mod tests;
