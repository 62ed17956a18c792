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
                "device {} is in use ({}); nothing on it is wiped",
                target.path,
                target.describe()
            )));
        }
    }
    if device.is_blank() && below.iter().all(|d| d.is_blank()) {
        return Err(refused(format!(
            "device {} is blank: there is nothing to wipe",
            device.path
        )));
    }

    let word = confirmation_word(facts, device);
    let mut plan = Plan::new();
    for target in below.iter().copied().chain([device]) {
        let what = destroyed(target);
        plan.push(Step::destructive(
            &format!("wipe-{}", target.kname),
            format!("Erase {what} on {}", target.path),
            &["wipefs", "--all", "--", &target.path],
            word,
        ));
        plan.warn(format!("{} will be destroyed on {}", what, target.path));
    }
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

/// What wiping `device` destroys, in words: its partition table, signature type and label,
/// and its size.
fn destroyed(device: &BlockDevice) -> String {
    let mut parts = Vec::new();
    if let Some(table) = &device.partition_table {
        parts.push(format!("the {table} partition table"));
    }
    if let Some(fstype) = &device.fstype {
        match &device.label {
            Some(label) => parts.push(format!("the {fstype} signature labelled \"{label}\"")),
            None => parts.push(format!("the {fstype} signature")),
        }
    }
    if parts.is_empty() {
        parts.push("every signature".into());
    }
    let identity = [device.model.as_deref(), device.serial.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    let size = human_bytes(device.size_bytes);
    if identity.is_empty() {
        format!("{} ({size})", parts.join(" and "))
    } else {
        format!("{} ({size}, {identity})", parts.join(" and "))
    }
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
