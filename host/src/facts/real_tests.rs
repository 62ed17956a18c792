//! The facts path on output captured from the real tools (`host/tests/data/facts/real/`,
//! util-linux 2.38.1, btrfs-progs 6.2, no udev; `capture.sh` there makes them again): every
//! scenario's devices in exactly one state, with the reasons, in tree and list form alike.

use expect_test::{Expect, expect};
use nos_protocol::{FactText, Facts as RawFacts, Probe};

use super::{DeviceState, build, lsblk};

fn real(scenario: &str, file: &str) -> String {
    let path = format!(
        "{}/tests/data/facts/real/{scenario}/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{path}: {err}"))
}

/// A captured scenario as the agent would send it.
pub(crate) fn raw(scenario: &str, lsblk_file: &str) -> RawFacts {
    let text = |file: &str| FactText::Text {
        text: real(scenario, file),
    };
    let dir = format!(
        "{}/tests/data/facts/real/{scenario}",
        env!("CARGO_MANIFEST_DIR")
    );
    RawFacts {
        lsblk: real(scenario, lsblk_file),
        probes: real(scenario, "devices.txt")
            .lines()
            .map(|device| Probe {
                device: device.to_owned(),
                output: text(&format!(
                    "blkid-p/{}.txt",
                    device.trim_start_matches("/dev/")
                )),
            })
            .collect(),
        btrfs_show: match std::path::Path::new(&dir).join("btrfs-show.txt").exists() {
            true => text("btrfs-show.txt"),
            false => FactText::Unavailable {
                reason: "no btrfs in this scenario".into(),
            },
        },
        mountinfo: text("mountinfo.txt"),
        swaps: text("swaps.txt"),
        pools: Vec::new(),
    }
}

/// One line per device: kernel name, state, reasons.
fn states(raw: &RawFacts) -> String {
    let facts = build(raw, &[], &[]).unwrap();
    facts
        .block_devices
        .iter()
        .map(|device| {
            format!(
                "{} {:?}: {}",
                device.kname,
                device.state,
                device.reasons.join("; ")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Loop device numbers and temporary mount points differ between captures; the shape does not.
fn check(scenario: &str, expect: Expect) {
    let tree = states(&raw(scenario, "lsblk-tree.json"));
    let list = states(&raw(scenario, "lsblk-list.json"));
    assert_eq!(tree, list, "{scenario}: tree and list form disagree");
    let mut normalised = tree.clone();
    for (idx, device) in real(scenario, "devices.txt").lines().enumerate() {
        let kname = device.trim_start_matches("/dev/");
        normalised = normalised.replace(kname, &format!("dev{idx}"));
    }
    let normalised: String = normalised
        .split(" (")
        .map(|part| match part.find(") ") {
            // A btrfs filesystem's uuid differs between captures.
            Some(end) if part[..end].len() == 36 => format!("(uuid{}", &part[end..]),
            _ => part.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" ");
    let normalised: String = normalised
        .split(' ')
        .map(|word| match word.find("/tmp/") {
            Some(start) => {
                let end = if word.ends_with(';') { ";" } else { "" };
                format!("{}/tmp/…{end}", &word[..start])
            }
            None => word.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" ");
    expect.assert_eq(&normalised);
}

#[test]
fn blank() {
    check("blank", expect![[r#"dev0 Blank: "#]]);
}

#[test]
fn gpt_ext4_unmounted() {
    check(
        "gpt-ext4-unmounted",
        expect![[r#"
            dev0 HoldsData: has a gpt partition table; partition dev0p1: ext4 'data', 1022 MiB
            dev0p1 HoldsData: holds an ext4 filesystem labelled 'data'"#]],
    );
}

#[test]
fn gpt_ext4_mounted() {
    check(
        "gpt-ext4-mounted",
        expect![[r#"
        dev0 InUse: dev0p1 is mounted at /tmp/…; has a gpt partition table; partition dev0p1: ext4 'data', 1022 MiB
        dev0p1 InUse: is mounted at /tmp/…; holds an ext4 filesystem labelled 'data'"#]],
    );
}

#[test]
fn gpt_empty() {
    check(
        "gpt-empty",
        expect!["dev0 HoldsData: has a gpt partition table"],
    );
}

#[test]
fn luks_on_partition() {
    check(
        "luks-on-partition",
        expect![[r#"
        dev0 HoldsData: has a gpt partition table; partition dev0p1: crypto_LUKS, 1022 MiB
        dev0p1 HoldsData: holds a LUKS encrypted volume"#]],
    );
}

#[test]
fn swap() {
    check("swap", expect!["dev0 HoldsData: holds a swap signature"]);
    check(
        "swap-active",
        expect!["dev0 InUse: is active swap; holds a swap signature"],
    );
}

#[test]
fn ext4_whole_disk() {
    check(
        "ext4-whole-disk",
        expect!["dev0 HoldsData: holds an ext4 filesystem labelled 'whole'"],
    );
}

#[test]
fn btrfs_members() {
    check(
        "btrfs-unmounted",
        expect![[r#"
        dev0 HoldsData: holds a btrfs filesystem member labelled 'fixpool'
        dev1 HoldsData: holds a btrfs filesystem member labelled 'fixpool'"#]],
    );
    check(
        "btrfs-mounted",
        expect![[r#"
            dev0 InUse: is mounted at /tmp/…; is a member of the mounted btrfs filesystem 'fixpool' (uuid) at /tmp/…; holds a btrfs filesystem member labelled 'fixpool'
            dev1 InUse: is a member of the mounted btrfs filesystem 'fixpool' (uuid) at /tmp/…; holds a btrfs filesystem member labelled 'fixpool'"#]],
    );
}

#[test]
fn blkid_stops_at_blank() {
    check(
        "blkid-stops-at-blank",
        expect![[r#"
        dev0 HoldsData: holds an ext4 filesystem labelled 'before'
        dev1 Blank: 
        dev2 HoldsData: holds a swap signature"#]],
    );
}

#[test]
fn gpt_wiped() {
    check(
        "gpt-wiped",
        expect![[r#"
        dev0 Blank: 
        dev0p1 Blank: "#]],
    );
}

#[test]
fn dos_two_partitions() {
    check(
        "dos-two-partitions",
        expect![[r#"
            dev0 HoldsData: has a dos partition table; partition dev0p1: ext4 'first', 300 MiB; partition dev0p2: vfat 'SECOND', 723 MiB
            dev0p1 HoldsData: holds an ext4 filesystem labelled 'first'
            dev0p2 HoldsData: holds a vfat filesystem labelled 'SECOND'"#]],
    );
}

/// Without blkid (the agent could not probe) nothing lsblk knows nothing about is blank.
#[test]
fn without_blkid_nothing_is_blank() {
    let mut facts = raw("blank", "lsblk-tree.json");
    facts.probes[0].output = FactText::Unavailable {
        reason: "blkid.probe failed: x".into(),
    };
    let built = build(&facts, &[], &[]).unwrap();
    assert_eq!(built.block_devices[0].state, DeviceState::HoldsData);
    assert!(built.block_devices[0].reasons[0].contains("blkid.probe failed: x"));
    facts.probes.clear();
    let built = build(&facts, &[], &[]).unwrap();
    assert_eq!(built.block_devices[0].state, DeviceState::HoldsData);
    // ...and without /proc/swaps every device may be swap.
    let mut facts = raw("blank", "lsblk-tree.json");
    facts.swaps = FactText::Unavailable {
        reason: "/proc/swaps: gone".into(),
    };
    let built = build(&facts, &[], &[]).unwrap();
    assert_eq!(built.block_devices[0].state, DeviceState::InUse);
}

/// A field the parser does not know is an error naming it, never dropped in silence (that is
/// how every partition of a disk once went missing).
#[test]
fn unknown_lsblk_fields_are_refused() {
    let text = real("gpt-ext4-unmounted", "lsblk-tree.json");
    let with_extra = text.replacen("\"name\":", "\"fsavail\": null, \"name\":", 1);
    let err = lsblk::parse(&with_extra, &[]).unwrap_err();
    assert!(err.contains("fsavail"), "{err}");
    let nested = text.replacen("\"pkname\": \"", "\"zoned\": \"none\", \"pkname\": \"", 1);
    let err = lsblk::parse(&nested, &[]).unwrap_err();
    assert!(err.contains("zoned"), "{err}");
}

/// Every blkid key in the captured output is one the parser keeps or knowingly skips.
#[test]
fn every_blkid_key_is_known() {
    const KEPT: &[&str] = &["DEVNAME", "TYPE", "USAGE", "UUID", "LABEL", "PTTYPE"];
    const SKIPPED: &[&str] = &[
        "PTUUID",
        "UUID_SUB",
        "BLOCK_SIZE",
        "VERSION",
        "LABEL_FATBOOT",
    ];
    let dir = format!("{}/tests/data/facts/real", env!("CARGO_MANIFEST_DIR"));
    let mut n_files = 0;
    for scenario in std::fs::read_dir(&dir).unwrap().flatten() {
        let Ok(probes) = std::fs::read_dir(scenario.path().join("blkid-p")) else {
            continue;
        };
        for probe in probes
            .flatten()
            .filter(|p| p.path().extension() == Some("txt".as_ref()))
        {
            n_files += 1;
            let text = std::fs::read_to_string(probe.path()).unwrap();
            for line in text.lines().filter(|line| !line.is_empty()) {
                let key = line.split_once('=').unwrap().0;
                assert!(
                    KEPT.contains(&key) || SKIPPED.contains(&key) || key.starts_with("PART_ENTRY_"),
                    "{}: blkid key {key} is unknown",
                    probe.path().display()
                );
            }
        }
    }
    assert!(n_files >= 15, "only {n_files} captured probes");
}

/// Why nos probes one device per call: given several, blkid stops at the first one on which it
/// finds nothing (here: ext4, blank, swap; the swap is never looked at).
#[test]
fn blkid_stops_at_the_first_blank_device() {
    let one_call = super::blkid::parse(&real("blkid-stops-at-blank", "blkid-p-one-call.txt"));
    let devices = real("blkid-stops-at-blank", "devices.txt");
    let swap = devices.lines().nth(2).unwrap();
    assert!(one_call.unwrap().iter().all(|s| s.devname != swap));
    let facts = build(&raw("blkid-stops-at-blank", "lsblk-tree.json"), &[], &[]).unwrap();
    let swap = facts.block_devices.iter().find(|d| d.path == swap).unwrap();
    assert_eq!(swap.state, DeviceState::HoldsData, "{swap:?}");
}
