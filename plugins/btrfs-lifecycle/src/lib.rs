//! btrfs-lifecycle: plan the life of a pool after it was made: mount and unmount it, mount it
//! degraded when a device is missing (a repair an admin confirms), import a filesystem made
//! elsewhere, export it (unmount and forget it, data kept) and destroy it (wipe its members).
//! Pure logic, unit-tested natively.
//!
//! A pool is named by its filesystem UUID (or its label): an unmounted pool has no mount point
//! in the facts, and its present members are the block devices whose btrfs signature carries
//! that UUID. The registry in nosd knows where a registered pool belongs; the caller passes that
//! mount point.
//!
//! * `mount`: `btrfs device scan` of the present members (what udev does at boot), the mount
//!   directory and a mount of a present member; nothing is written to fstab (a registered pool
//!   has its entry already).
//! * `import`: `mount` plus the pool's fstab entry (with `nofail` and a device timeout, which
//!   the allowlist adds): how a filesystem from another machine becomes a pool of this one.
//! * `mount-degraded`: `-o degraded`, read-only unless `read_write` is set; destructive, the
//!   confirmation word is the pool's label, because a read-write degraded mount writes new chunks
//!   without their second copy. It never touches fstab: a pool is never booted degraded.
//! * `unmount`: unmounts a mounted pool; its fstab entry stays.
//! * `export`: unmounts if mounted, drops the fstab entry and the empty mount directory. The data
//!   stays on the disks, which then show as importable; nosd forgets the pool when the fstab
//!   entry is removed.
//! * `destroy`: for an unmounted pool (unmount it first, so that no member is in use when the
//!   plan is checked): drops the fstab entry and mount directory, then wipes every present member
//!   through the wipe rule. Destructive; the confirmation word is the pool's label.
#![deny(unsafe_code)]

use nos_plugin_sdk::{
    BlockDevice, BtrfsFilesystem, Facts, FstabEntry, ManagedRequest, Plan, PlanError, Planner,
    PluginInfo, Step,
};
use serde::Deserialize;

/// The input, tagged by `action`.
#[derive(Debug, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Input {
    Mount {
        pool: String,
        mountpoint: String,
        #[serde(default)]
        mount_options: Option<Vec<String>>,
    },
    Import {
        pool: String,
        mountpoint: String,
        #[serde(default)]
        mount_options: Option<Vec<String>>,
    },
    MountDegraded {
        pool: String,
        mountpoint: String,
        #[serde(default)]
        read_write: bool,
    },
    Unmount {
        pool: String,
    },
    Export {
        pool: String,
        /// Where the pool belongs when it is not mounted now.
        #[serde(default)]
        mountpoint: Option<String>,
    },
    Destroy {
        pool: String,
        #[serde(default)]
        mountpoint: Option<String>,
    },
}

pub const INPUT_SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "Mount, import, export or destroy a pool",
  "type": "object",
  "required": ["action", "pool"],
  "properties": {
    "action": {"enum": ["mount", "import", "mount-degraded", "unmount", "export", "destroy"], "title": "Action", "description": "mount or unmount a registered pool; import one made elsewhere; mount one with a missing device degraded (a repair); export (forget it, keep the data); destroy (wipe its disks)."},
    "pool": {"type": "string", "title": "Pool", "description": "The pool's filesystem UUID or label (its mount point when mounted)."},
    "mountpoint": {"type": "string", "pattern": "^/(srv|mnt)/[A-Za-z0-9._-]+$", "title": "Mount point", "description": "Where the pool is (or was) mounted, under /srv or /mnt."},
    "read_write": {"type": "boolean", "default": false, "title": "Read-write", "description": "Mount degraded read-write, to replace or remove the missing device; read-only otherwise."},
    "mount_options": {"type": "array", "items": {"type": "string"}, "title": "Mount options", "description": "Options from the allowlist's list; compress=zstd:3,noatime when none are given."}
  }
}"#;

pub struct LifecyclePlanner;

impl Planner for LifecyclePlanner {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "btrfs-lifecycle".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "Mount, unmount, mount degraded, import, export or destroy a btrfs pool"
                .into(),
            input_schema: INPUT_SCHEMA.into(),
        }
    }

    fn plan(facts: &Facts, input: &str) -> Result<Plan, PlanError> {
        let input: Input = nos_plugin_sdk::parse_input(input)?;
        plan(facts, &input)
    }
}

nos_plugin_sdk::export_planner!(LifecyclePlanner);

fn refused(message: String) -> PlanError {
    PlanError::Refused(message)
}

fn invalid(message: String) -> PlanError {
    PlanError::InvalidInput(message)
}

/// A pool on the disks that no mount shows: its UUID, label and present members.
struct Unmounted<'a> {
    uuid: &'a str,
    label: Option<&'a str>,
    members: Vec<&'a BlockDevice>,
}

impl Unmounted<'_> {
    fn name(&self) -> &str {
        self.label.unwrap_or(self.uuid)
    }
}

/// The unmounted pool `name` (UUID or label) names; refused when it is mounted or not found.
fn unmounted<'a>(facts: &'a Facts, name: &str) -> Result<Unmounted<'a>, PlanError> {
    if let Some(fs) = facts.filesystem(name) {
        return Err(refused(format!(
            "pool {name} is mounted at {}",
            fs.mountpoint
        )));
    }
    let members: Vec<&BlockDevice> = facts
        .block_devices
        .iter()
        .filter(|device| {
            device.fstype.as_deref() == Some("btrfs")
                && (device.uuid.as_deref() == Some(name) || device.label.as_deref() == Some(name))
        })
        .collect();
    let Some(first) = members.first() else {
        return Err(refused(format!(
            "no device holds a btrfs filesystem with UUID or label {name}"
        )));
    };
    // A btrfs member always has a UUID; one without is not named by this pool's UUID anyway.
    let Some(uuid) = first.uuid.as_deref() else {
        return Err(refused(format!("device {} has no btrfs UUID", first.path)));
    };
    if let Some(other) = members.iter().find(|d| d.uuid.as_deref() != Some(uuid)) {
        return Err(refused(format!(
            "label {name} names more than one btrfs filesystem ({uuid} and {}): name the pool by its UUID",
            other.uuid.as_deref().unwrap_or("no UUID")
        )));
    }
    Ok(Unmounted {
        uuid,
        label: first.label.as_deref(),
        members,
    })
}

fn mounted<'a>(facts: &'a Facts, name: &str) -> Result<&'a BtrfsFilesystem, PlanError> {
    facts
        .filesystem(name)
        .ok_or_else(|| refused(format!("no mounted btrfs pool {name}")))
}

fn mountpoint(mountpoint: &str) -> Result<&str, PlanError> {
    nos_plugin_sdk::mount::check_mountpoint(mountpoint).map_err(invalid)?;
    Ok(mountpoint)
}

/// The member a mount names: the first present one (btrfs finds the others by their UUID).
fn mount_device<'a>(pool: &Unmounted<'a>) -> &'a BlockDevice {
    pool.members[0]
}

/// `btrfs device scan` of the present members: without it a multi-device pool does not mount
/// where no udev registered its members since they appeared (after a reboot, in a container).
fn scan_step(pool: &Unmounted<'_>) -> Step {
    let mut argv = vec!["btrfs", "device", "scan"];
    argv.extend(pool.members.iter().map(|member| member.path.as_str()));
    Step::state(
        "scan",
        format!(
            "Tell the kernel the {} present member(s) of {}",
            pool.members.len(),
            pool.name()
        ),
        &argv,
    )
}

fn mount_dir_step(target: &str) -> Step {
    Step::ensure(
        "mount-dir",
        format!("Create the mount directory {target}"),
        ManagedRequest::MountDir(target.to_owned()),
    )
    .with_rollback_remove()
}

fn fstab_entry(uuid: &str, target: &str, options: &[String]) -> ManagedRequest {
    ManagedRequest::FstabEntry(FstabEntry {
        uuid: uuid.to_owned(),
        target: target.to_owned(),
        options: options.to_vec(),
    })
}

/// The steps that forget a pool at `target`: its fstab entry, then its (empty) mount directory.
fn forget_steps(plan: &mut Plan, uuid: &str, target: &str) {
    // Removal goes by the UUID; the options only have to be valid.
    plan.push(Step::remove(
        "fstab",
        format!("Remove the fstab entry of {target}"),
        fstab_entry(uuid, target, &["noatime".to_owned()]),
    ));
    plan.push(Step::remove(
        "mount-dir",
        format!("Remove the mount directory {target} (only when empty)"),
        ManagedRequest::MountDir(target.to_owned()),
    ));
}

/// Plan the operation. Pure: the same facts and input always give the same plan.
pub fn plan(facts: &Facts, input: &Input) -> Result<Plan, PlanError> {
    let mut plan = Plan::new();
    match input {
        Input::Mount {
            pool,
            mountpoint: target,
            mount_options,
        }
        | Input::Import {
            pool,
            mountpoint: target,
            mount_options,
        } => {
            let target = mountpoint(target)?;
            let options = nos_plugin_sdk::mount::options_or_default(mount_options.as_deref())
                .map_err(invalid)?;
            let pool = unmounted(facts, pool)?;
            if let Some(fs) = facts.filesystem(target) {
                return Err(refused(format!(
                    "{target} is where pool {} is mounted",
                    fs.label.as_deref().unwrap_or(&fs.uuid)
                )));
            }
            let device = mount_device(&pool);
            plan.push(scan_step(&pool));
            plan.push(mount_dir_step(target));
            let joined = options.join(",");
            plan.push(
                Step::state(
                    "mount",
                    format!("Mount {} at {target}", pool.name()),
                    &["mount", "-t", "btrfs", "-o", &joined, &device.path, target],
                )
                .with_rollback(&["umount", target]),
            );
            if matches!(input, Input::Import { .. }) {
                plan.push(
                    Step::ensure(
                        "fstab",
                        format!("Mount {} at {target} at boot (nofail)", pool.name()),
                        fstab_entry(pool.uuid, target, &options),
                    )
                    .with_rollback_remove(),
                );
            }
            plan.push(verify_step(&device.path, pool.name()));
        }
        Input::MountDegraded {
            pool,
            mountpoint: target,
            read_write,
        } => {
            let target = mountpoint(target)?;
            let pool = unmounted(facts, pool)?;
            let device = mount_device(&pool);
            let mode = if *read_write { "rw" } else { "ro" };
            plan.push(scan_step(&pool));
            plan.push(mount_dir_step(target));
            plan.push(Step::destructive(
                "mount-degraded",
                format!(
                    "Mount {} at {target} degraded, {} (a device is missing)",
                    pool.name(),
                    if *read_write {
                        "read-write"
                    } else {
                        "read-only"
                    }
                ),
                &[
                    "mount",
                    "-t",
                    "btrfs",
                    "-o",
                    "degraded",
                    "-o",
                    mode,
                    &device.path,
                    target,
                ],
                pool.name(),
            ));
            plan.push(verify_step(&device.path, pool.name()));
            if *read_write {
                plan.warn(
                    "read-write while degraded: new data is written without its second copy until the missing device is replaced (btrfs-devices replace) or removed, and the profiles are repaired (btrfs-maintenance repair-profiles)",
                );
            } else {
                plan.warn(
                    "read-only: the data can be copied off; replacing the missing device needs a read-write degraded mount",
                );
            }
        }
        Input::Unmount { pool } => {
            let fs = mounted(facts, pool)?;
            plan.push(Step::state(
                "umount",
                format!("Unmount {} (its fstab entry stays)", fs.mountpoint),
                &["umount", &fs.mountpoint],
            ));
        }
        Input::Export {
            pool,
            mountpoint: given,
        } => {
            let (uuid, target) = match facts.filesystem(pool) {
                Some(fs) => {
                    plan.push(Step::state(
                        "umount",
                        format!("Unmount {}", fs.mountpoint),
                        &["umount", &fs.mountpoint],
                    ));
                    (fs.uuid.clone(), fs.mountpoint.clone())
                }
                None => {
                    let found = unmounted(facts, pool)?;
                    let Some(given) = given else {
                        return Err(invalid(format!(
                            "pool {pool} is not mounted: give the mount point it belongs at"
                        )));
                    };
                    (found.uuid.to_owned(), mountpoint(given)?.to_owned())
                }
            };
            forget_steps(&mut plan, &uuid, &target);
            plan.warn(
                "the data stays on the disks; the pool shows as importable until it is imported again or its disks are wiped",
            );
        }
        Input::Destroy {
            pool,
            mountpoint: given,
        } => {
            let found = unmounted(facts, pool).map_err(|err| match err {
                PlanError::Refused(why) if facts.filesystem(pool).is_some() => refused(format!(
                    "{why}: unmount it first (action unmount), so that no member is in use"
                )),
                other => other,
            })?;
            if let Some(given) = given {
                forget_steps(&mut plan, found.uuid, mountpoint(given)?);
            }
            // Partitions of a member are not members: a member is the device btrfs is on.
            for member in &found.members {
                plan.push(Step::destructive(
                    &format!("wipe-{}", member.kname),
                    format!(
                        "Erase {} ({} bytes): its btrfs signature of pool {}",
                        member.path,
                        member.size_bytes,
                        found.name()
                    ),
                    &["wipefs", "--all", &member.path],
                    found.name(),
                ));
            }
            plan.warn(format!(
                "every file in pool {} is lost: {} device(s) are wiped",
                found.name(),
                found.members.len()
            ));
        }
    }
    Ok(plan)
}

fn verify_step(device: &str, name: &str) -> Step {
    Step::read(
        "verify",
        format!("Show the devices of {name}"),
        &["btrfs", "filesystem", "show", device],
    )
}

#[cfg(test)]
mod tests;
