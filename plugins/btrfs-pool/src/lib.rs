//! btrfs-pool: plan the creation of a btrfs pool from whole devices.
//!
//! Steps, in order: (encrypted only) a key file, `cryptsetup luksFormat --uuid` and
//! `cryptsetup open` per device; `mkfs.btrfs -U` with a host-supplied UUID; the mount directory;
//! `mount`; the fstab entry (and crypttab entries, naming the LUKS headers by the UUIDs given to
//! luksFormat); a final `btrfs filesystem show` of the first member to verify. Fresh UUIDs: the
//! first for the filesystem, then one per device when encrypted. The logic is a pure
//! function of facts and input, unit-tested natively; the component exports it through the SDK.
//!
//! Only blank devices are used ([`Facts::blank_device`]): one that holds data is refused with
//! what it holds and a pointer to the `disk-wipe` planner, one in use with why. There is no
//! force input and `mkfs.btrfs` never gets `-f`.
#![deny(unsafe_code)]

use nos_plugin_sdk::{
    CrypttabEntry, Facts, FstabEntry, ManagedRequest, Plan, PlanError, Planner, PluginInfo, Step,
};
use serde::Deserialize;

/// Devices smaller than this are refused: btrfs needs room for two metadata chunks per device.
pub const MIN_DEVICE_BYTES: u64 = 1 << 30;
/// At most this many devices in one pool (bounds the plan and the argv).
pub const MAX_DEVICES: usize = 16;
/// Where key files live; the agent creates them with random content.
pub const KEY_DIR: &str = "/etc/nos/keys";
/// Extra default options when every device is non-rotational.
pub const SSD_MOUNT_OPTIONS: [&str; 2] = ["ssd", "discard=async"];

/// The input a caller passes, as JSON (schema in [`INPUT_SCHEMA`]).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Input {
    pub devices: Vec<String>,
    pub label: String,
    pub mountpoint: String,
    #[serde(default)]
    pub data_profile: Option<String>,
    #[serde(default)]
    pub metadata_profile: Option<String>,
    #[serde(default)]
    pub mount_options: Option<Vec<String>>,
    #[serde(default)]
    pub encrypt: bool,
}

pub const INPUT_SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "Create a btrfs pool",
  "type": "object",
  "required": ["devices", "label", "mountpoint"],
  "additionalProperties": false,
  "properties": {
    "label": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$", "title": "Label", "description": "The pool's name: letters, digits, - and _, up to 32 characters. Destroying the pool later asks for this word."},
    "mountpoint": {"type": "string", "pattern": "^/(srv|mnt)/[A-Za-z0-9._-]+$", "title": "Mount point", "description": "Where the pool is mounted, under /srv or /mnt, e.g. /srv/tank."},
    "devices": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 16, "title": "Disks", "description": "Blank whole disks; everything on them is erased. Disks that hold data are not offered until they are wiped."},
    "data_profile": {"enum": ["single", "dup", "raid0", "raid1", "raid1c3", "raid1c4", "raid10"], "title": "Data profile", "description": "How file data is kept: raid1 keeps two copies on different disks (needs 2 disks), raid1c3 three; single and raid0 survive no disk failure."},
    "metadata_profile": {"enum": ["single", "dup", "raid0", "raid1", "raid1c3", "raid1c4", "raid10"], "title": "Metadata profile", "description": "How the filesystem's own structures are kept; at least as redundant as the data is wise."},
    "encrypt": {"type": "boolean", "default": false, "title": "Encrypt (LUKS2)", "description": "Each disk becomes a LUKS2 container with a key file nos keeps; a stolen disk reveals nothing."},
    "mount_options": {"type": "array", "items": {"type": "string"}, "title": "Mount options", "description": "Extra options from the allowlist's list (e.g. compress=zstd:3, noatime); nofail and a device timeout are always added so a missing disk never blocks boot."}
  }
}"#;

pub struct PoolPlanner;

impl Planner for PoolPlanner {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "btrfs-pool".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "Create a btrfs pool from whole devices, optionally LUKS2-encrypted".into(),
            input_schema: INPUT_SCHEMA.into(),
        }
    }

    fn plan(facts: &Facts, input: &str) -> Result<Plan, PlanError> {
        let input: Input = nos_plugin_sdk::parse_input(input)?;
        plan(facts, &input)
    }
}

nos_plugin_sdk::export_planner!(PoolPlanner);

fn refused(message: String) -> PlanError {
    PlanError::Refused(message)
}

fn invalid(message: String) -> PlanError {
    PlanError::InvalidInput(message)
}

fn check_label(label: &str) -> Result<(), PlanError> {
    let mut chars = label.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !first_ok || !rest_ok || label.len() > 32 {
        return Err(invalid(format!(
            "label {label:?} must be 1-32 of [A-Za-z0-9_-], starting alphanumeric"
        )));
    }
    Ok(())
}

fn refused_or_invalid(message: String) -> PlanError {
    if message.starts_with("unknown") {
        PlanError::InvalidInput(message)
    } else {
        PlanError::Refused(message)
    }
}

/// Plan the pool. Pure: the same facts and input always give the same plan.
pub fn plan(facts: &Facts, input: &Input) -> Result<Plan, PlanError> {
    check_label(&input.label)?;
    nos_plugin_sdk::mount::check_mountpoint(&input.mountpoint).map_err(invalid)?;
    if input.devices.is_empty() || input.devices.len() > MAX_DEVICES {
        return Err(invalid(format!(
            "a pool needs 1 to {MAX_DEVICES} devices, got {}",
            input.devices.len()
        )));
    }

    let mut plan = Plan::new();
    let mut devices = Vec::with_capacity(input.devices.len());
    for name in &input.devices {
        let device = facts.blank_device(name).map_err(refused)?;
        if devices
            .iter()
            .any(|d: &&nos_plugin_sdk::BlockDevice| d.path == device.path)
        {
            return Err(refused(format!("device {} appears twice", device.path)));
        }
        if !device.can_hold_a_pool() {
            return Err(refused(format!(
                "device {} is a {}, not a disk, partition or loop device",
                device.path, device.device_type
            )));
        }
        if device.size_bytes < MIN_DEVICE_BYTES {
            return Err(refused(format!(
                "device {} has {} bytes, less than the {MIN_DEVICE_BYTES} a pool member needs",
                device.path, device.size_bytes
            )));
        }
        devices.push(device);
    }
    if facts.filesystem(&input.mountpoint).is_some()
        || facts
            .filesystems
            .iter()
            .any(|fs| fs.label.as_deref() == Some(&input.label))
    {
        return Err(refused(format!(
            "a pool named {} or mounted at {} already exists",
            input.label, input.mountpoint
        )));
    }

    let n_devices = devices.len();
    let default_profile = if n_devices == 1 { "single" } else { "raid1" };
    let data_profile = input.data_profile.as_deref().unwrap_or(default_profile);
    let metadata_profile = input.metadata_profile.as_deref().unwrap_or(default_profile);
    nos_plugin_sdk::profile::check_both(data_profile, metadata_profile, n_devices)
        .map_err(refused_or_invalid)?;

    let mut mount_options =
        nos_plugin_sdk::mount::options_or_default(input.mount_options.as_deref())
            .map_err(invalid)?;
    if input.mount_options.is_none() && devices.iter().all(|d| !d.rotational) {
        mount_options.extend(SSD_MOUNT_OPTIONS.iter().map(|o| (*o).to_owned()));
    }
    let n_uuids = if input.encrypt { 1 + n_devices } else { 1 };
    if facts.fresh_uuids.len() < n_uuids {
        return Err(refused(format!(
            "this plan needs {n_uuids} fresh UUIDs, the host supplied {}",
            facts.fresh_uuids.len()
        )));
    }
    // Indexing below is in bounds: checked just above.
    let fs_uuid = facts.fresh_uuids[0].as_str();

    let label = input.label.as_str();
    let mountpoint = input.mountpoint.as_str();
    let key_path = format!("{KEY_DIR}/{label}.key");

    // The paths mkfs and mount see: the opened LUKS mappings when encrypted.
    let mut members: Vec<String> = Vec::with_capacity(n_devices);
    if input.encrypt {
        plan.push(Step::ensure(
            "key-file",
            format!("Create the key file {key_path}"),
            ManagedRequest::KeyFile(key_path.clone()),
        ));
        for (device_idx, device) in devices.iter().enumerate() {
            let mapping = format!("luks-{label}-{device_idx}");
            let luks_uuid = facts.fresh_uuids[1 + device_idx].as_str();
            plan.push(Step::destructive(
                &format!("luks-format-{}", device.kname),
                format!("Encrypt {} with LUKS2 (erases it)", device.path),
                &[
                    "cryptsetup",
                    "luksFormat",
                    "--type",
                    "luks2",
                    "--batch-mode",
                    "--key-file",
                    &key_path,
                    "--uuid",
                    luks_uuid,
                    &device.path,
                ],
                label,
            ));
            plan.push(
                Step::state(
                    &format!("luks-open-{}", device.kname),
                    format!("Open {} as /dev/mapper/{mapping}", device.path),
                    &[
                        "cryptsetup",
                        "open",
                        "--key-file",
                        &key_path,
                        &device.path,
                        &mapping,
                    ],
                )
                .with_rollback(&["cryptsetup", "close", &mapping]),
            );
            members.push(format!("/dev/mapper/{mapping}"));
        }
    } else {
        members.extend(devices.iter().map(|d| d.path.clone()));
    }

    let mut mkfs: Vec<&str> = vec!["mkfs.btrfs"];
    mkfs.extend([
        "-L",
        label,
        "-U",
        fs_uuid,
        "-d",
        data_profile,
        "-m",
        metadata_profile,
    ]);
    mkfs.extend(members.iter().map(String::as_str));
    plan.push(Step::destructive(
        "mkfs",
        format!(
            "Create btrfs {label} ({data_profile} data, {metadata_profile} metadata) on {}",
            members.join(", ")
        ),
        &mkfs,
        label,
    ));

    plan.push(
        Step::ensure(
            "mount-dir",
            format!("Create the mount directory {mountpoint}"),
            ManagedRequest::MountDir(mountpoint.to_owned()),
        )
        .with_rollback_remove(),
    );
    let options = mount_options.join(",");
    plan.push(
        Step::state(
            "mount",
            format!("Mount {label} at {mountpoint}"),
            &[
                "mount",
                "-t",
                "btrfs",
                "-o",
                &options,
                &members[0],
                mountpoint,
            ],
        )
        .with_rollback(&["umount", mountpoint]),
    );
    if input.encrypt {
        for (device_idx, device) in devices.iter().enumerate() {
            plan.push(
                Step::ensure(
                    &format!("crypttab-{}", device.kname),
                    format!("Unlock {} at boot", device.path),
                    ManagedRequest::CrypttabEntry(CrypttabEntry {
                        name: format!("luks-{label}-{device_idx}"),
                        device_uuid: facts.fresh_uuids[1 + device_idx].clone(),
                        key_file: key_path.clone(),
                    }),
                )
                .with_rollback_remove(),
            );
        }
    }
    plan.push(
        Step::ensure(
            "fstab",
            format!("Mount {label} at boot"),
            ManagedRequest::FstabEntry(FstabEntry {
                uuid: fs_uuid.to_owned(),
                target: mountpoint.to_owned(),
                options: mount_options.clone(),
            }),
        )
        .with_rollback_remove(),
    );
    plan.push(Step::read(
        "verify",
        format!("Show the new pool {label}"),
        &["btrfs", "filesystem", "show", &members[0]],
    ));
    Ok(plan)
}

#[cfg(test)]
mod tests;
