//! btrfs-devices: plan adding, removing or replacing a device in a mounted pool, with the
//! redundancy guards a careful administrator applies: never below the profile's minimum device
//! count, a replacement never smaller than the device it replaces, and a balance with convert
//! filters when the profiles change. Pure logic, unit-tested natively.
//!
//! A device joins a pool only when it is blank ([`Facts::blank_device`]): one that holds data is
//! refused with what it holds and a pointer to the `disk-wipe` planner. There is no force input,
//! and neither `btrfs device add` nor `btrfs replace start` ever gets `-f`.
#![deny(unsafe_code)]

use nos_plugin_sdk::{
    BlockDevice, BtrfsFilesystem, Facts, Plan, PlanError, Planner, PluginInfo, Step,
};
use serde::Deserialize;

/// The input, tagged by `action`.
#[derive(Debug, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Input {
    Add {
        pool: String,
        device: String,
        #[serde(default)]
        data_profile: Option<String>,
        #[serde(default)]
        metadata_profile: Option<String>,
    },
    Remove {
        pool: String,
        #[serde(default)]
        device: Option<String>,
        #[serde(default)]
        devid: Option<u64>,
        #[serde(default)]
        data_profile: Option<String>,
        #[serde(default)]
        metadata_profile: Option<String>,
    },
    Replace {
        pool: String,
        #[serde(default)]
        device: Option<String>,
        #[serde(default)]
        devid: Option<u64>,
        new_device: String,
    },
    /// Drop every missing device of a pool mounted degraded read-write, rebuilding the copies
    /// on the devices that remain.
    RemoveMissing { pool: String },
}

pub const INPUT_SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "Add, remove or replace a pool device",
  "type": "object",
  "required": ["action", "pool"],
  "properties": {
    "action": {"enum": ["add", "remove", "replace", "remove-missing"]},
    "pool": {"type": "string", "description": "mount point, label or UUID of a mounted pool"},
    "device": {"type": "string"},
    "devid": {"type": "integer", "minimum": 1},
    "new_device": {"type": "string"},
    "data_profile": {"enum": ["single", "dup", "raid0", "raid1", "raid1c3", "raid1c4", "raid10"]},
    "metadata_profile": {"enum": ["single", "dup", "raid0", "raid1", "raid1c3", "raid1c4", "raid10"]}
  }
}"#;

pub struct DevicesPlanner;

impl Planner for DevicesPlanner {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "btrfs-devices".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "Add, remove or replace a device in a mounted btrfs pool".into(),
            input_schema: INPUT_SCHEMA.into(),
        }
    }

    fn plan(facts: &Facts, input: &str) -> Result<Plan, PlanError> {
        let input: Input = nos_plugin_sdk::parse_input(input)?;
        plan(facts, &input)
    }
}

nos_plugin_sdk::export_planner!(DevicesPlanner);

fn refused(message: String) -> PlanError {
    PlanError::Refused(message)
}

fn pool<'a>(facts: &'a Facts, name: &str) -> Result<&'a BtrfsFilesystem, PlanError> {
    facts
        .filesystem(name)
        .ok_or_else(|| refused(format!("no mounted btrfs pool {name}")))
}

/// A device that may join a pool: known, blank ([`Facts::blank_device`]) and a disk, partition
/// or loop device.
fn free_device<'a>(facts: &'a Facts, name: &str) -> Result<&'a BlockDevice, PlanError> {
    let device = facts.blank_device(name).map_err(refused)?;
    if !device.can_hold_a_pool() {
        return Err(refused(format!(
            "device {} is a {}, not a disk, partition or loop device",
            device.path, device.device_type
        )));
    }
    Ok(device)
}

/// The member named by path or devid: (devid, path, size).
fn member(
    fs: &BtrfsFilesystem,
    device: Option<&str>,
    devid: Option<u64>,
) -> Result<(u64, String, u64), PlanError> {
    let found = match (device, devid) {
        (Some(path), None) => fs.devices.iter().find(|d| d.path == path),
        (None, Some(devid)) => fs.devid_of_present(devid),
        _ => {
            return Err(PlanError::InvalidInput(
                "give exactly one of device and devid".into(),
            ));
        }
    };
    let found = found.ok_or_else(|| {
        refused(format!(
            "{} is not a member of pool {}",
            device.map_or_else(|| format!("devid {}", devid.unwrap_or(0)), str::to_owned),
            fs.mountpoint
        ))
    })?;
    // Removing or replacing names the member by devid (a missing one has nothing else), and a
    // guessed devid would name the wrong device.
    let Some(known) = found.known_devid() else {
        return Err(refused(format!(
            "the devid of {} in pool {} is unknown (the host could not read `btrfs filesystem show`)",
            found.path, fs.mountpoint
        )));
    };
    Ok((known, found.path.clone(), found.size_bytes))
}

/// The member a replacement takes the place of: (devid, path, size). A devid that no present
/// member has is a missing device (btrfs itself refuses a devid the pool never had): its path
/// is shown as `missing devid N`, and since its size is not in the facts, the size a
/// replacement must reach is the largest present member's, which is always enough.
fn replaced(
    fs: &BtrfsFilesystem,
    device: Option<&str>,
    devid: Option<u64>,
) -> Result<(u64, String, u64), PlanError> {
    match (device, devid) {
        (None, Some(devid)) if devid != 0 && fs.devid_of_present(devid).is_none() => {
            let largest = fs.devices.iter().map(|d| d.size_bytes).max().unwrap_or(0);
            Ok((devid, format!("missing devid {devid}"), largest))
        }
        _ => member(fs, device, devid),
    }
}

fn label(fs: &BtrfsFilesystem) -> &str {
    fs.label.as_deref().unwrap_or("pool")
}

/// Target profiles after the change, checked against the device count they will have; the
/// balance step that converts to them, when they differ from the current ones.
fn convert_step(
    fs: &BtrfsFilesystem,
    data_profile: Option<&str>,
    metadata_profile: Option<&str>,
    n_devices_after: usize,
) -> Result<Option<Step>, PlanError> {
    let data = data_profile.unwrap_or(&fs.data_profile);
    let metadata = metadata_profile.unwrap_or(&fs.metadata_profile);
    nos_plugin_sdk::profile::check_both(data, metadata, n_devices_after).map_err(refused)?;
    let mut argv: Vec<String> = vec!["btrfs".into(), "balance".into(), "start".into()];
    if data != fs.data_profile {
        argv.push(format!("-dconvert={data}"));
    }
    if metadata != fs.metadata_profile {
        argv.push(format!("-mconvert={metadata}"));
    }
    if argv.len() == 3 {
        return Ok(None);
    }
    argv.push(fs.mountpoint.clone());
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    Ok(Some(Step::state(
        "convert",
        format!(
            "Convert {} to {data} data and {metadata} metadata",
            fs.mountpoint
        ),
        &argv,
    )))
}

/// Plan the change. Pure: the same facts and input always give the same plan.
pub fn plan(facts: &Facts, input: &Input) -> Result<Plan, PlanError> {
    let mut plan = Plan::new();
    match input {
        Input::Add {
            pool: name,
            device,
            data_profile,
            metadata_profile,
        } => {
            let fs = pool(facts, name)?;
            let device = free_device(facts, device)?;
            if fs.devices.iter().any(|d| d.path == device.path) {
                return Err(refused(format!(
                    "device {} is already in pool {}",
                    device.path, fs.mountpoint
                )));
            }
            let convert = convert_step(
                fs,
                data_profile.as_deref(),
                metadata_profile.as_deref(),
                fs.devices.len() + 1,
            )?;
            let argv = ["btrfs", "device", "add", &device.path, &fs.mountpoint];
            plan.push(Step::destructive(
                &format!("add-{}", device.kname),
                format!("Add {} to {} (erases it)", device.path, fs.mountpoint),
                &argv,
                &device.kname,
            ));
            plan.extend_steps(convert);
        }
        Input::Remove {
            pool: name,
            device,
            devid,
            data_profile,
            metadata_profile,
        } => {
            let fs = pool(facts, name)?;
            let (devid, path, _) = member(fs, device.as_deref(), *devid)?;
            if fs.devices.len() == 1 {
                return Err(refused(format!(
                    "{path} is the last device of {}",
                    fs.mountpoint
                )));
            }
            // Convert first, while every device is still there to hold the copies.
            let convert = convert_step(
                fs,
                data_profile.as_deref(),
                metadata_profile.as_deref(),
                fs.devices.len() - 1,
            )?;
            plan.extend_steps(convert);
            let devid_text = devid.to_string();
            plan.push(Step::destructive(
                &format!("remove-devid-{devid}"),
                format!(
                    "Move data off {path} (devid {devid}) and remove it from {}",
                    fs.mountpoint
                ),
                &["btrfs", "device", "remove", &devid_text, &fs.mountpoint],
                label(fs),
            ));
        }
        Input::Replace {
            pool: name,
            device,
            devid,
            new_device,
        } => {
            let fs = pool(facts, name)?;
            let (devid, old_path, old_size) = replaced(fs, device.as_deref(), *devid)?;
            let new = free_device(facts, new_device)?;
            if fs.devices.iter().any(|d| d.path == new.path) {
                return Err(refused(format!(
                    "device {} is already in pool {}",
                    new.path, fs.mountpoint
                )));
            }
            if new.size_bytes < old_size {
                return Err(refused(match facts.device(&old_path) {
                    Some(_) => format!(
                        "device {} ({} bytes) is smaller than {old_path} ({old_size} bytes), which it would replace",
                        new.path, new.size_bytes
                    ),
                    None => format!(
                        "device {} ({} bytes) is smaller than the largest member of {} ({old_size} bytes): the size of missing devid {devid} is not known, and btrfs refuses a replacement smaller than the device it replaces",
                        new.path, new.size_bytes, fs.mountpoint
                    ),
                }));
            }
            // A missing device can only be named by devid.
            let source = if facts.device(&old_path).is_some() {
                old_path.clone()
            } else {
                devid.to_string()
            };
            let argv = [
                "btrfs",
                "replace",
                "start",
                &source,
                &new.path,
                &fs.mountpoint,
            ];
            plan.push(Step::destructive(
                &format!("replace-devid-{devid}"),
                format!(
                    "Replace {old_path} (devid {devid}) with {} (erases it)",
                    new.path
                ),
                &argv,
                &new.kname,
            ));
            plan.push(Step::read(
                "replace-status",
                format!("Show the progress of the replacement in {}", fs.mountpoint),
                &["btrfs", "replace", "status", "-1", &fs.mountpoint],
            ));
            if new.size_bytes > old_size {
                plan.warn(format!(
                    "{} is larger than {old_path}; the extra space is usable after `btrfs filesystem resize {devid}:max`",
                    new.path
                ));
            }
        }
        Input::RemoveMissing { pool: name } => {
            let fs = pool(facts, name)?;
            // What stays must hold the profiles: the present devices.
            nos_plugin_sdk::profile::check_both(
                &fs.data_profile,
                &fs.metadata_profile,
                fs.devices.len(),
            )
            .map_err(|why| {
                refused(format!(
                    "{why} once the missing devices are gone: replace the missing device instead, or add one first"
                ))
            })?;
            plan.push(Step::destructive(
                "remove-missing",
                format!(
                    "Drop the missing devices of {} and rebuild their copies on the {} present one(s)",
                    fs.mountpoint,
                    fs.devices.len()
                ),
                &["btrfs", "device", "remove", "missing", &fs.mountpoint],
                label(fs),
            ));
            plan.warn("the pool must be mounted degraded read-write (btrfs-lifecycle mount-degraded); afterwards repair the profiles of chunks written while degraded (btrfs-maintenance repair-profiles)");
        }
    }
    let name = match input {
        Input::Add { pool, .. }
        | Input::Remove { pool, .. }
        | Input::Replace { pool, .. }
        | Input::RemoveMissing { pool } => pool,
    };
    // `btrfs filesystem show` takes a device: name the pool by a member that stays in it.
    if let Some(fs) = facts.filesystem(name) {
        let removed = match input {
            Input::Remove { device, devid, .. } | Input::Replace { device, devid, .. } => {
                member(fs, device.as_deref(), *devid)
                    .ok()
                    .map(|(devid, _, _)| devid)
            }
            Input::Add { .. } | Input::RemoveMissing { .. } => None,
        };
        if let Some(stays) = fs.devices.iter().find(|d| Some(d.devid) != removed) {
            plan.push(Step::read(
                "verify",
                format!("Show the devices of {}", fs.mountpoint),
                &["btrfs", "filesystem", "show", &stays.path],
            ));
        }
    }
    Ok(plan)
}

#[cfg(test)]
mod tests;
