//! The read-only commands facts are gathered with, declared once: the agent runs them for nosd,
//! `nosctl facts` runs them locally, and the host's parsers read exactly their output. Each is
//! tied to its rule of the default allowlist by a test, so a changed argv that the allowlist
//! would refuse fails in CI, not on an appliance.
//!
//! The per-pool readings ([`device_stats_argv`], [`scrub_status_argv`], [`subvolume_list_argv`])
//! take a mount path; the agent reads them for each mounted btrfs filesystem whose path their
//! rules accept.
//!
//! This module does no IO: it only names argvs.

/// `lsblk` in JSON, tree form (partitions and holders nested under `children`), sizes in bytes,
/// bare kernel names. The columns are the ones `nos_host::facts::lsblk` knows; it refuses
/// output with any other field. Rule `lsblk.facts`.
pub const LSBLK_ARGV: &[&str] = &["lsblk", "--json", "--bytes", "--output", LSBLK_COLUMNS];

/// The columns of [`LSBLK_ARGV`].
pub const LSBLK_COLUMNS: &str = "NAME,KNAME,PATH,PKNAME,MAJ:MIN,TYPE,SIZE,ROTA,RM,RO,MODEL,SERIAL,WWN,PTTYPE,PTUUID,PARTTYPE,PARTLABEL,PARTUUID,FSTYPE,LABEL,UUID,MOUNTPOINTS";

/// `btrfs filesystem show --raw`: every btrfs filesystem with its members and devids, mounted
/// or not. Rule `btrfs.filesystem.show.all`.
pub const BTRFS_SHOW_ARGV: &[&str] = &["btrfs", "filesystem", "show", "--raw"];

/// What comes before the device in a `blkid -p` probe: read the superblocks and partition
/// table directly (never blkid's cache, which trusted a stale entry after a loop device was
/// reattached), as `KEY=value` lines. Rule `blkid.probe`.
///
/// One device per call, always: given several, blkid stops at the first one on which it finds
/// nothing and never looks at the rest (exit 2, captured in
/// `host/tests/data/facts/real/blkid-stops-at-blank`), so every device after a blank one would
/// look blank too.
pub const BLKID_PROBE_PREFIX: &[&str] = &["blkid", "-p", "-o", "export", "--"];

/// The `blkid -p` argv that probes `device`.
pub fn blkid_probe_argv(device: &str) -> Vec<String> {
    with_operand(BLKID_PROBE_PREFIX, device)
}

/// How many `blkid -p` probes of one facts request run at once: a refresh over many disks waits
/// for the slowest of a few spawns rather than for all of them in a row.
pub const PROBE_THREADS: usize = 4;

/// `blkid -p`'s exit status when the device has no signature and no partition table at all.
pub const BLKID_NOTHING_FOUND: i32 = 2;

/// What comes before the mount path in a reading of a mounted pool's per-device error counters:
/// JSON, never `-z`/`--reset` (the rule has no such flag). Rule `btrfs.device.stats`; parsed by
/// `nos_host::health::device_stats`.
pub const DEVICE_STATS_PREFIX: &[&str] = &["btrfs", "--format", "json", "device", "stats", "--"];

/// What comes before the mount path in a reading of a mounted pool's last scrub, with its raw
/// counters (`-R`). Rule `btrfs.scrub.status`; parsed by `nos_host::health::scrub_status`.
pub const SCRUB_STATUS_PREFIX: &[&str] = &["btrfs", "scrub", "status", "-R", "--"];

/// What comes before the mount path in a listing of a mounted pool's subvolumes, with each one's
/// parent, UUID and parent UUID (a snapshot's source). Rule `btrfs.subvolume.list`; parsed by
/// `nos_host::facts::subvolumes`.
pub const SUBVOLUME_LIST_PREFIX: &[&str] = &["btrfs", "subvolume", "list", "-p", "-u", "-q", "--"];

/// The subvolume-list argv of the pool mounted at `mount_path`.
pub fn subvolume_list_argv(mount_path: &str) -> Vec<String> {
    with_operand(SUBVOLUME_LIST_PREFIX, mount_path)
}

/// The device-stats argv of the pool mounted at `mount_path`.
pub fn device_stats_argv(mount_path: &str) -> Vec<String> {
    with_operand(DEVICE_STATS_PREFIX, mount_path)
}

/// The scrub-status argv of the pool mounted at `mount_path`.
pub fn scrub_status_argv(mount_path: &str) -> Vec<String> {
    with_operand(SCRUB_STATUS_PREFIX, mount_path)
}

/// What comes before the device in a SMART reading: JSON (compact), identity, overall health,
/// attributes and the error log, and `--nocheck=standby` so a reading never spins up a sleeping
/// drive (it then reports the standby). Rule `smartctl.health`; parsed by
/// `nos_host::health::smart`. Read on demand, never in the facts round trip.
pub const SMART_PREFIX: &[&str] = &[
    "smartctl",
    "--json=c",
    "--info",
    "--health",
    "--attributes",
    "--nocheck=standby",
    "--log=error",
    "--",
];

/// The SMART argv of `device`.
pub fn smart_argv(device: &str) -> Vec<String> {
    with_operand(SMART_PREFIX, device)
}

fn with_operand(prefix: &[&str], operand: &str) -> Vec<String> {
    prefix
        .iter()
        .map(|token| (*token).to_owned())
        .chain([operand.to_owned()])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use nos_allowlist::{Allowlist, Source, Verdict};

    fn rule_of(allowlist: &Allowlist, argv: &[String]) -> String {
        match allowlist.check(argv) {
            Verdict::Allowed(found) => found.rule_id().to_owned(),
            Verdict::Rejected(rejection) => panic!("{argv:?} refused: {}", rejection.reason),
        }
    }

    /// Every fact command is allowed by its read-only rule of the default allowlist.
    #[test]
    fn each_command_matches_its_rule() {
        let text = include_str!("../../../allowlist.toml");
        let allowlist = Allowlist::load(&[Source {
            name: "allowlist.toml".into(),
            text: text.into(),
        }])
        .expect("the default allowlist loads");
        let owned = |argv: &[&str]| argv.iter().map(|t| (*t).to_owned()).collect::<Vec<_>>();
        assert_eq!(rule_of(&allowlist, &owned(LSBLK_ARGV)), "lsblk.facts");
        assert_eq!(
            rule_of(&allowlist, &owned(BTRFS_SHOW_ARGV)),
            "btrfs.filesystem.show.all"
        );
        assert_eq!(
            rule_of(&allowlist, &blkid_probe_argv("/dev/loop0p1")),
            "blkid.probe"
        );
        assert_eq!(
            rule_of(&allowlist, &device_stats_argv("/srv/tank")),
            "btrfs.device.stats"
        );
        assert_eq!(
            rule_of(&allowlist, &scrub_status_argv("/mnt/pools/tank")),
            "btrfs.scrub.status"
        );
        assert_eq!(
            rule_of(&allowlist, &subvolume_list_argv("/mnt/pools/tank")),
            "btrfs.subvolume.list"
        );
        assert_eq!(
            rule_of(&allowlist, &smart_argv("/dev/sda")),
            "smartctl.health"
        );
        // A mount path outside the mount roots is not read at all: the agent leaves it out.
        assert!(matches!(
            allowlist.check(&device_stats_argv("/home/tank")),
            Verdict::Rejected(_)
        ));
        // The rule takes one device, so no caller can make the call that stops early.
        let mut two = blkid_probe_argv("/dev/loop0");
        two.push("/dev/loop1".into());
        assert!(matches!(allowlist.check(&two), Verdict::Rejected(_)));
    }
}
