//! `lsblk --json` text → block devices. Pure.
//!
//! The one invocation is [`nos_machine::fact_commands::LSBLK_ARGV`]: tree form, where partitions
//! and the devices stacked on a device (dm-crypt, md) are nested under `children`, and an md
//! array appears under each of its members. Its list form (`--list`, flat, with `pkname`) parses
//! the same way. Every field lsblk may print for those columns is known here and an unknown one
//! is an error (`deny_unknown_fields`): a field dropped in silence is how every partition of a
//! disk once went missing.
//!
//! ```text
//! output   = "{" "blockdevices" ":" "[" device *("," device) "]" "}"
//! device   = "{" column-fields ["," "children" ":" "[" device *("," device) "]"] "}"
//! ```

use serde::Deserialize;

use super::{BlockDevice, DeviceState, MAX_DEVICES};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Output {
    blockdevices: Vec<Row>,
}

/// One device as lsblk prints it for [`nos_machine::fact_commands::LSBLK_COLUMNS`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Row {
    #[allow(dead_code, reason = "a known column the facts do not carry")]
    name: String,
    kname: String,
    path: Option<String>,
    pkname: Option<String>,
    #[allow(dead_code, reason = "a known column the facts do not carry")]
    #[serde(rename = "maj:min")]
    maj_min: Option<String>,
    #[serde(rename = "type")]
    device_type: Option<String>,
    size: Option<Flexible>,
    rota: Option<Flexible>,
    #[allow(dead_code, reason = "a known column the facts do not carry")]
    rm: Option<Flexible>,
    #[allow(dead_code, reason = "a known column the facts do not carry")]
    ro: Option<Flexible>,
    model: Option<String>,
    serial: Option<String>,
    wwn: Option<String>,
    pttype: Option<String>,
    #[allow(dead_code, reason = "a known column the facts do not carry")]
    ptuuid: Option<String>,
    #[allow(dead_code, reason = "a known column the facts do not carry")]
    parttype: Option<String>,
    #[allow(dead_code, reason = "a known column the facts do not carry")]
    partlabel: Option<String>,
    #[allow(dead_code, reason = "a known column the facts do not carry")]
    partuuid: Option<String>,
    fstype: Option<String>,
    label: Option<String>,
    uuid: Option<String>,
    /// Every mount point (`[null]` when unmounted).
    #[serde(default)]
    mountpoints: Vec<Option<String>>,
    #[serde(default)]
    children: Vec<Row>,
}

/// The kernel name of `KNAME`/`PKNAME`: `lsblk --paths` prints them as `/dev/<name>`, the
/// facts (and the planners' step ids and confirmation words) carry the bare name.
fn kernel_name(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// util-linux < 2.37 prints numbers and booleans as strings; both forms are accepted.
#[derive(Deserialize)]
#[serde(untagged)]
enum Flexible {
    Bool(bool),
    Number(u64),
    Text(String),
}

impl Flexible {
    fn as_u64(&self) -> u64 {
        match self {
            Flexible::Bool(b) => u64::from(*b),
            Flexible::Number(n) => *n,
            Flexible::Text(text) => text.trim().parse().unwrap_or(0),
        }
    }
}

fn text(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|value| !value.is_empty())
        .map(str::to_owned)
}

/// Parse lsblk's JSON, tree or list form, into one entry per kernel name (an md array listed
/// under each member is one device whose parent is the first member seen). `by_id` maps
/// `/dev/disk/by-id/*` links to the kernel name they point at. A device's holders are the
/// kernel names nested under it, or naming it as `pkname`: partitions, dm-crypt, md.
/// The state is left [`DeviceState::InUse`] for [`super::classify`] to decide.
pub fn parse(json: &str, by_id: &[(String, String)]) -> Result<Vec<BlockDevice>, String> {
    let output: Output =
        serde_json::from_str(json).map_err(|err| format!("lsblk output: {err}"))?;
    let mut devices: Vec<BlockDevice> = Vec::new();
    let mut stack: Vec<(&Row, Option<String>)> = output
        .blockdevices
        .iter()
        .rev()
        .map(|row| (row, None))
        .collect();
    while let Some((row, tree_parent)) = stack.pop() {
        let kname = kernel_name(&row.kname).to_owned();
        let parent = row
            .pkname
            .as_deref()
            .map(|p| kernel_name(p).to_owned())
            .or(tree_parent);
        if let Some(parent) = &parent
            && let Some(parent_device) = devices.iter_mut().find(|d| &d.kname == parent)
            && !parent_device.holders.contains(&kname)
        {
            parent_device.holders.push(kname.clone());
        }
        stack.extend(
            row.children
                .iter()
                .rev()
                .map(|child| (child, Some(kname.clone()))),
        );
        if devices.iter().any(|d| d.kname == kname) {
            continue;
        }
        if devices.len() == MAX_DEVICES {
            return Err(format!("lsblk output: more than {MAX_DEVICES} devices"));
        }
        // `[SWAP]` is lsblk's marker for active swap, not a mount point; swap comes from
        // `/proc/swaps`, where lsblk takes it from too.
        let mut mountpoints: Vec<String> = row
            .mountpoints
            .iter()
            .flatten()
            .filter(|mountpoint| *mountpoint != "[SWAP]")
            .cloned()
            .collect();
        mountpoints.sort();
        mountpoints.dedup();
        let mut links: Vec<String> = by_id
            .iter()
            .filter(|(_, target)| *target == kname)
            .map(|(link, _)| link.clone())
            .collect();
        links.sort();
        devices.push(BlockDevice {
            path: row.path.clone().unwrap_or_else(|| format!("/dev/{kname}")),
            size_bytes: row.size.as_ref().map_or(0, Flexible::as_u64),
            rotational: row.rota.as_ref().is_some_and(|r| r.as_u64() != 0),
            device_type: row.device_type.clone().unwrap_or_default(),
            fstype: text(&row.fstype),
            label: text(&row.label),
            uuid: text(&row.uuid),
            mountpoints,
            holders: Vec::new(),
            by_id: links,
            parent,
            model: text(&row.model),
            serial: text(&row.serial),
            wwn: text(&row.wwn),
            partition_table: text(&row.pttype),
            usage: None,
            state: DeviceState::InUse,
            reasons: Vec::new(),
            kname,
        });
    }
    // Holders recorded before their holder was listed (list form: a partition before its disk
    // is impossible, but an md array's second member comes after the array).
    let pairs: Vec<(String, String)> = devices
        .iter()
        .filter_map(|d| d.parent.clone().map(|p| (p, d.kname.clone())))
        .collect();
    for (parent, holder) in pairs {
        if let Some(device) = devices.iter_mut().find(|d| d.kname == parent)
            && !device.holders.contains(&holder)
        {
            device.holders.push(holder);
        }
    }
    for device in &mut devices {
        device.holders.sort();
    }
    Ok(devices)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn real(scenario: &str, file: &str) -> String {
        std::fs::read_to_string(format!(
            "{}/tests/data/facts/real/{scenario}/{file}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    /// Tree and list form of a partitioned disk give the same devices: partitions are devices
    /// of their own, with their disk as parent and among the disk's holders.
    #[test]
    fn partitions_in_tree_and_list_form() {
        for file in ["lsblk-tree.json", "lsblk-list.json"] {
            let devices = parse(&real("dos-two-partitions", file), &[]).unwrap();
            let disk = &devices[0];
            assert_eq!(
                disk.holders,
                [format!("{}p1", disk.kname), format!("{}p2", disk.kname)]
            );
            assert_eq!(devices.len(), 3, "{file}");
            for part in &devices[1..] {
                assert_eq!(part.parent.as_deref(), Some(disk.kname.as_str()), "{file}");
                assert_eq!(part.device_type, "part");
                assert!(part.path.starts_with("/dev/"));
            }
            assert!(
                devices[1].size_bytes == 300 << 20,
                "{file}: {}",
                devices[1].size_bytes
            );
        }
    }

    #[test]
    fn mount_points_and_swap() {
        let devices = parse(&real("gpt-ext4-mounted", "lsblk-tree.json"), &[]).unwrap();
        assert!(devices[0].mountpoints.is_empty());
        assert_eq!(devices[1].mountpoints.len(), 1);
        let devices = parse(&real("swap-active", "lsblk-tree.json"), &[]).unwrap();
        assert!(
            devices[0].mountpoints.is_empty(),
            "[SWAP] is not a mount point"
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in "\\PC{0,300}") {
            let _ = parse(&text, &[]);
        }
    }
}
