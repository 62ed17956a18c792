//! disk-wipe: the one way a disk that holds data is made blank again, so a pool can be built on
//! it. The plan erases every signature of each partition (`wipefs --all`), then the disk's own
//! (its partition table included), each a destructive step whose title says exactly what it
//! destroys; the plan's warnings list it all once more, and the confirmation word is the disk's
//! kernel name. Pure logic, unit-tested natively.
//!
//! What it refuses: a device that is mounted, or has a partition that is mounted, or is held by
//! anything but its own partitions (dm-crypt, md). The host refuses those too, and the agent
//! refuses a device in use on its own just before the spawn.
#![deny(unsafe_code)]

use nos_plugin_sdk::{BlockDevice, Facts, Plan, PlanError, Planner, PluginInfo, Step};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// Path, kernel name or by-id link of the disk (or one partition) to wipe.
    pub device: String,
}

pub const INPUT_SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "Wipe a disk",
  "type": "object",
  "required": ["device"],
  "additionalProperties": false,
  "properties": {
    "device": {"type": "string", "x-nos-kind": "device", "description": "the disk (or partition) whose data is destroyed"}
  }
}"#;

pub struct WipePlanner;

impl Planner for WipePlanner {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "disk-wipe".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "Erase the partition table and every signature of a disk, to reuse it".into(),
            input_schema: INPUT_SCHEMA.into(),
        }
    }

    fn plan(facts: &Facts, input: &str) -> Result<Plan, PlanError> {
        let input: Input = nos_plugin_sdk::parse_input(input)?;
        plan(facts, &input)
    }
}

nos_plugin_sdk::export_planner!(WipePlanner);

/// Plan the wipe. Pure: the same facts and input always give the same plan.
pub fn plan(facts: &Facts, input: &Input) -> Result<Plan, PlanError> {
    let device = facts
        .device(&input.device)
        .ok_or_else(|| refused(format!("no block device {}", input.device)))?;
    if !matches!(device.device_type.as_str(), "disk" | "part" | "loop") {
        return Err(refused(format!(
            "{} is a {} device, not a disk or partition",
            device.path, device.device_type
        )));
    }
    let mut partitions: Vec<&BlockDevice> = Vec::new();
    for holder in &device.holders {
        let held = facts.device(holder).ok_or_else(|| {
            refused(format!(
                "{} is held by {holder}, which the facts do not show",
                device.path
            ))
        })?;
        if held.device_type != "part" {
            return Err(refused(format!(
                "{} is in use: held by {} ({})",
                device.path, held.kname, held.device_type
            )));
        }
        partitions.push(held);
    }
    for target in partitions.iter().copied().chain([device]) {
        if target.is_mounted() {
            return Err(refused(format!(
                "{} is in use: mounted at {}",
                target.path,
                target.mountpoints.join(", ")
            )));
        }
        if target.kname != device.kname && !target.holders.is_empty() {
            return Err(refused(format!(
                "{} is in use: held by {}",
                target.path,
                target.holders.join(", ")
            )));
        }
    }
    let word = device.kname.as_str();
    let mut plan = Plan::new();
    for partition in &partitions {
        let what = contents(partition);
        plan.push(Step::destructive(
            &format!("wipe-{}", partition.kname),
            format!("Erase {what} on partition {}", partition.path),
            &["wipefs", "--all", "--", &partition.path],
            word,
        ));
        plan.warn(format!("partition {}: {what} is destroyed", partition.path));
    }
    let own = if partitions.is_empty() {
        format!("{} and any other signature", contents(device))
    } else {
        let n_partitions = partitions.len();
        let noun = if n_partitions == 1 {
            "partition"
        } else {
            "partitions"
        };
        format!("the partition table ({n_partitions} {noun}) and any other signature")
    };
    plan.push(Step::destructive(
        &format!("wipe-{}", device.kname),
        format!(
            "Erase {own} on {} ({})",
            device.path,
            size(device.size_bytes)
        ),
        &["wipefs", "--all", "--", &device.path],
        word,
    ));
    plan.warn(format!(
        "{} ({}): {own} is destroyed; the data on it cannot be recovered",
        device.path,
        size(device.size_bytes)
    ));
    Ok(plan)
}

fn refused(message: String) -> PlanError {
    PlanError::Refused(message)
}

/// What the facts show on a device: `the ext4 filesystem 'data' (1.0 GiB)`.
fn contents(device: &BlockDevice) -> String {
    let size = size(device.size_bytes);
    match (&device.fstype, &device.label) {
        (Some(fstype), Some(label)) => format!("the {fstype} signature '{label}' ({size})"),
        (Some(fstype), None) => format!("the {fstype} signature ({size})"),
        (None, _) => format!("whatever it holds ({size})"),
    }
}

/// Bytes in binary units with one decimal (`1.0 GiB`).
fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests;
