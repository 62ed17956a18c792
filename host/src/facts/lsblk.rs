//! `lsblk --json` text → block devices. Pure.
//!
//! The command nosctl runs (read-only, as any user):
//! `lsblk --json --bytes --list --output PATH,KNAME,PKNAME,SIZE,ROTA,TYPE,FSTYPE,LABEL,UUID,MOUNTPOINTS`.
//! Older util-linux prints `rota` and `size` as strings; both forms are accepted.

use serde::Deserialize;

use super::BlockDevice;

/// The arguments of the lsblk invocation this parser expects.
pub const LSBLK_ARGS: &[&str] = &[
    "--json",
    "--bytes",
    "--list",
    "--output",
    "PATH,KNAME,PKNAME,SIZE,ROTA,TYPE,FSTYPE,LABEL,UUID,MOUNTPOINTS",
];

#[derive(Deserialize)]
struct Output {
    blockdevices: Vec<Row>,
}

#[derive(Deserialize)]
struct Row {
    path: Option<String>,
    kname: String,
    pkname: Option<String>,
    size: Option<Flexible>,
    rota: Option<Flexible>,
    #[serde(rename = "type")]
    device_type: Option<String>,
    fstype: Option<String>,
    label: Option<String>,
    uuid: Option<String>,
    /// `MOUNTPOINT` (what the agent's `lsblk.facts` asks for): one mount point or null.
    #[serde(default)]
    mountpoint: Option<String>,
    /// `MOUNTPOINTS` (util-linux ≥ 2.37): every mount point.
    #[serde(default)]
    mountpoints: Vec<Option<String>>,
}

/// The kernel name of `KNAME`/`PKNAME`: `lsblk --paths` prints them as `/dev/<name>`, the
/// facts (and the planners' step ids and confirmation words) carry the bare name.
fn kernel_name(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

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

/// Parse lsblk's JSON. `by_id` maps `/dev/disk/by-id/*` links to the kernel name they point at.
/// A device's holders are the kernel names whose parent it is (partitions, dm-crypt, md).
pub fn parse(json: &str, by_id: &[(String, String)]) -> Result<Vec<BlockDevice>, String> {
    let output: Output =
        serde_json::from_str(json).map_err(|err| format!("lsblk output: {err}"))?;
    let rows = output.blockdevices;
    let devices = rows
        .iter()
        .map(|row| {
            let kname = kernel_name(&row.kname);
            let mut holders: Vec<String> = rows
                .iter()
                .filter(|other| other.pkname.as_deref().map(kernel_name) == Some(kname))
                .map(|other| kernel_name(&other.kname).to_owned())
                .collect();
            holders.sort();
            holders.dedup();
            let mut links: Vec<String> = by_id
                .iter()
                .filter(|(_, target)| target == kname)
                .map(|(link, _)| link.clone())
                .collect();
            links.sort();
            BlockDevice {
                path: row.path.clone().unwrap_or_else(|| format!("/dev/{kname}")),
                kname: kname.to_owned(),
                size_bytes: row.size.as_ref().map_or(0, Flexible::as_u64),
                rotational: row.rota.as_ref().is_some_and(|r| r.as_u64() != 0),
                device_type: row.device_type.clone().unwrap_or_default(),
                fstype: row.fstype.clone(),
                label: row.label.clone(),
                uuid: row.uuid.clone(),
                mountpoints: {
                    let mut all: Vec<String> = row.mountpoint.iter().cloned().collect();
                    all.extend(row.mountpoints.iter().flatten().cloned());
                    all.sort();
                    all.dedup();
                    all
                },
                holders,
                by_id: links,
                parent: row.pkname.as_deref().map(|p| kernel_name(p).to_owned()),
                model: None,
                serial: None,
                wwn: None,
                partition_table: None,
                usage: None,
                state: super::DeviceState::InUse,
                reasons: Vec::new(),
            }
        })
        .collect();
    Ok(devices)
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::expect;

    #[test]
    fn parses_fixture() {
        let json = include_str!("../../tests/data/facts/lsblk.json");
        let by_id = [(
            "/dev/disk/by-id/ata-WDC_WD40-1".to_owned(),
            "sdb".to_owned(),
        )];
        let devices = parse(json, &by_id).unwrap();
        let lines: Vec<String> = devices
            .iter()
            .map(|d| {
                format!(
                    "{} {} {} rota={} fs={:?} mnt={:?} holders={:?} by_id={:?}",
                    d.path,
                    d.device_type,
                    d.size_bytes,
                    d.rotational,
                    d.fstype,
                    d.mountpoints,
                    d.holders,
                    d.by_id
                )
            })
            .collect();
        expect![[r#"
            /dev/sda disk 256060514304 rota=false fs=None mnt=[] holders=["sda1"] by_id=[]
            /dev/sda1 part 256059465728 rota=false fs=Some("ext4") mnt=["/"] holders=[] by_id=[]
            /dev/sdb disk 4000787030016 rota=true fs=Some("btrfs") mnt=["/srv/tank"] holders=[] by_id=["/dev/disk/by-id/ata-WDC_WD40-1"]
            /dev/sdc disk 4000787030016 rota=true fs=Some("btrfs") mnt=[] holders=[] by_id=[]
            /dev/sdd disk 4000787030016 rota=true fs=None mnt=[] holders=[] by_id=[]
            /dev/nvme0n1 disk 1000204886016 rota=false fs=None mnt=[] holders=[] by_id=[]"#]]
        .assert_eq(&lines.join("\n"));
    }

    #[test]
    fn old_util_linux_strings() {
        let json = r#"{"blockdevices": [{"kname": "sdx", "size": "1024", "rota": "1", "type": "disk", "mountpoints": [null]}]}"#;
        let devices = parse(json, &[]).unwrap();
        assert_eq!((devices[0].size_bytes, devices[0].rotational), (1024, true));
        assert_eq!(devices[0].path, "/dev/sdx");
        assert!(devices[0].mountpoints.is_empty());
    }

    /// What `lsblk.facts` really prints (util-linux 2.38, `--paths`, `MOUNTPOINT`): kernel names
    /// as paths, one `mountpoint` string. A mounted device must read as mounted.
    #[test]
    fn the_agents_real_output_shape() {
        let json = r#"{"blockdevices": [
            {"name": "/dev/loop0", "kname": "/dev/loop0", "path": "/dev/loop0", "size": 1073741824, "rota": false, "type": "loop", "fstype": null, "label": null, "uuid": null, "mountpoint": "/srv/tank", "pkname": null, "maj:min": "7:0"},
            {"name": "/dev/sda", "kname": "/dev/sda", "path": "/dev/sda", "size": 4096, "rota": true, "type": "disk", "fstype": null, "label": null, "uuid": null, "mountpoint": null, "pkname": null, "maj:min": "8:0"},
            {"name": "/dev/sda1", "kname": "/dev/sda1", "path": "/dev/sda1", "size": 4096, "rota": true, "type": "part", "fstype": null, "label": null, "uuid": null, "mountpoint": "/", "pkname": "/dev/sda", "maj:min": "8:1"}
        ]}"#;
        let by_id = [("/dev/disk/by-id/ata-X".to_owned(), "sda".to_owned())];
        let devices = parse(json, &by_id).unwrap();
        let summary: Vec<_> = devices
            .iter()
            .map(|d| {
                (
                    d.kname.as_str(),
                    d.mountpoints.clone(),
                    d.holders.clone(),
                    d.by_id.len(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("loop0", vec!["/srv/tank".to_owned()], vec![], 0),
                ("sda", vec![], vec!["sda1".to_owned()], 1),
                ("sda1", vec!["/".to_owned()], vec![], 0),
            ]
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in "\\PC{0,300}") {
            let _ = parse(&text, &[]);
        }
    }
}
