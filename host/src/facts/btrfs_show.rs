//! `btrfs filesystem show --raw` text → each filesystem's devids by member path, and which
//! devices it reports missing. Pure.
//!
//! This is where facts take a member's devid from (lsblk knows nothing of devids). A pool that
//! lost or replaced a device has gaps (devids 2 and 3 after devid 1 was removed, as in the real
//! output the tests parse), so numbering members in lsblk order would name the wrong device to
//! `btrfs device remove`.
//!
//! Its shape (the lines below a `Label:` line start with a tab):
//!
//! ```text
//! Label: 'tank'  uuid: 0b3c1d2e-1111-4000-8000-000000000001
//!     Total devices 3 FS bytes used 147456
//!     devid    2 size 314572800 used 167772160 path /dev/loop1
//!     devid    3 size 0 used 0 path <missing disk> MISSING
//!     *** Some devices missing
//! ```
//!
//! A missing device shows in one of two ways (both captured in
//! `tests/data/health/real/missing-*`): a mounted, degraded pool lists it on its own `devid`
//! line ending in ` MISSING` (path `<missing disk>`, empty, or the node it had), and an
//! unmounted pool leaves it out and adds `\t*** Some devices missing`; `Total devices` counts it
//! either way. Only `uuid:` of a `Label:` line, `Total devices`, the `devid … path` lines and the
//! `***` line are read; anything else (such as the `warning, device 3 is missing` lines
//! btrfs-progs prints to stdout before an unmounted pool) is skipped.

/// The command, as the default allowlist's `btrfs.filesystem.show.all` rule accepts it.
pub const SHOW_ARGV: [&str; 4] = ["btrfs", "filesystem", "show", "--raw"];

/// At most this many bytes of `btrfs filesystem show` output are parsed; longer is refused.
pub const MAX_SHOW_BYTES: usize = 1 << 20;

/// One filesystem as `btrfs filesystem show` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ShownFilesystem {
    pub uuid: String,
    /// (devid, device path) of every member present.
    pub members: Vec<(u64, String)>,
    /// The pool's device count from `Total devices N`, missing ones included; `None` when the
    /// line was absent or did not parse.
    pub total_devices: Option<u64>,
    /// Devids listed on a `devid … MISSING` line (a mounted pool names its missing devices).
    pub missing_devids: Vec<u64>,
    /// Whether `*** Some devices missing` followed the devices (an unmounted pool, whose
    /// missing devices have no line and so no devid).
    pub some_devices_missing: bool,
}

impl ShownFilesystem {
    /// How many devices are missing: those named by devid, or, where btrfs names none, the
    /// difference between `Total devices` and the members listed, and at least one when btrfs
    /// says some are missing.
    pub fn n_missing(&self) -> u64 {
        let n_named = self.missing_devids.len() as u64;
        let n_listed = self.members.len() as u64 + n_named;
        let n_uncounted = self
            .total_devices
            .map_or(0, |total| total.saturating_sub(n_listed));
        let n_missing = n_named + n_uncounted;
        match self.some_devices_missing {
            true => n_missing.max(1),
            false => n_missing,
        }
    }
}

/// Parse the whole output. `Err` only for output larger than [`MAX_SHOW_BYTES`] or a `devid`
/// line before any `Label:` line, which means a format this parser does not know.
///
/// ```ebnf
/// output     = { other-line | filesystem } ;
/// filesystem = "Label: " , label , " uuid: " , uuid , NL ,
///              [ TAB , "Total devices " , count , " FS bytes used " , bytes , NL ] ,
///              { TAB , "devid" , spaces , devid , " size " , bytes , " used " , bytes ,
///                " path " , ( path | missing-path , " MISSING" ) , NL } ,
///              [ TAB , "*** Some devices missing" , NL ] ;
/// ```
pub fn parse(text: &str) -> Result<Vec<ShownFilesystem>, String> {
    if text.len() > MAX_SHOW_BYTES {
        return Err(format!(
            "btrfs filesystem show: {} bytes of output, more than {MAX_SHOW_BYTES}",
            text.len()
        ));
    }
    let mut filesystems: Vec<ShownFilesystem> = Vec::new();
    // Whether a `Label:` line was seen, and whether the latest one named a uuid (the devid
    // lines below a `Label:` line without one belong to no filesystem we know).
    let mut seen_label = false;
    let mut current: Option<usize> = None;
    for line in text.lines() {
        if line.starts_with("Label:") {
            seen_label = true;
            current = None;
            if let Some((_, uuid)) = line.rsplit_once(" uuid: ") {
                current = Some(filesystems.len());
                filesystems.push(ShownFilesystem {
                    uuid: uuid.trim().to_owned(),
                    ..ShownFilesystem::default()
                });
            }
            continue;
        }
        let trimmed = line.trim_start();
        if let Some(filesystem) = current.and_then(|idx| filesystems.get_mut(idx)) {
            if trimmed == "*** Some devices missing" {
                filesystem.some_devices_missing = true;
                continue;
            }
            if let Some(counts) = trimmed.strip_prefix("Total devices ") {
                filesystem.total_devices = counts
                    .split_whitespace()
                    .next()
                    .and_then(|word| word.parse::<u64>().ok());
                continue;
            }
        }
        let Some(rest) = trimmed.strip_prefix("devid ") else {
            continue;
        };
        if !seen_label {
            return Err(format!(
                "btrfs filesystem show: a devid line before any filesystem: {line:?}"
            ));
        }
        let Some(filesystem) = current.and_then(|idx| filesystems.get_mut(idx)) else {
            continue;
        };
        let Some(devid) = rest
            .split_whitespace()
            .next()
            .and_then(|word| word.parse::<u64>().ok())
            .filter(|devid| *devid > 0)
        else {
            continue;
        };
        let Some((_, path)) = rest.split_once(" path ") else {
            continue;
        };
        if path.ends_with(" MISSING") || path.trim() == "MISSING" {
            if !filesystem.missing_devids.contains(&devid) {
                filesystem.missing_devids.push(devid);
            }
            continue;
        }
        if path.starts_with('/') && !path.contains(char::is_whitespace) {
            filesystem.members.push((devid, path.to_owned()));
        }
    }
    Ok(filesystems)
}

/// The devid of `path` in the filesystem `uuid`, if the output listed it.
pub fn devid_of(shown: &[ShownFilesystem], uuid: &str, path: &str) -> Option<u64> {
    shown
        .iter()
        .find(|fs| fs.uuid == uuid)?
        .members
        .iter()
        .find(|(_, member)| member == path)
        .map(|(devid, _)| *devid)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real output of btrfs-progs 6.2 (tests/data/facts/btrfs-show-raw.txt): a degraded raid1
    /// missing devid 2, and a pool whose devid 1 was removed after devid 3 was added.
    #[test]
    fn real_output() {
        let shown = parse(include_str!("../../tests/data/facts/btrfs-show-raw.txt")).unwrap();
        assert_eq!(
            shown,
            vec![
                ShownFilesystem {
                    uuid: "12121212-3434-4565-8787-909090909090".into(),
                    members: vec![(1, "/dev/loop3".into())],
                    total_devices: Some(2),
                    missing_devids: vec![2],
                    some_devices_missing: false,
                },
                ShownFilesystem {
                    uuid: "11111111-2222-4333-8444-555555555555".into(),
                    members: vec![(2, "/dev/loop1".into()), (3, "/dev/loop2".into())],
                    total_devices: Some(2),
                    missing_devids: vec![],
                    some_devices_missing: false,
                },
            ]
        );
        assert_eq!(
            devid_of(&shown, "11111111-2222-4333-8444-555555555555", "/dev/loop2"),
            Some(3)
        );
        assert_eq!(
            devid_of(&shown, "11111111-2222-4333-8444-555555555555", "/dev/loop3"),
            None
        );
    }

    fn health_real(scenario: &str) -> Vec<ShownFilesystem> {
        let path = format!(
            "{}/tests/data/health/real/{scenario}/btrfs-show.txt",
            env!("CARGO_MANIFEST_DIR")
        );
        parse(&std::fs::read_to_string(&path).unwrap()).unwrap()
    }

    /// Captured by `tests/data/health/real/capture.sh`: a raid1 on three devices, whole, then
    /// with the third detached, unmounted (no line for it, a `***` line) and mounted degraded
    /// (a `<missing disk> MISSING` line).
    #[test]
    fn real_missing_devices() {
        let uuid = "7e57ab1e-d15c-4a11-9b0b-5c0bb1e5ca1d";
        let whole = health_real("raid1-never-scrubbed");
        assert_eq!(whole.len(), 1);
        assert_eq!(whole[0].uuid, uuid);
        assert_eq!(whole[0].members.len(), 3);
        assert_eq!(whole[0].total_devices, Some(3));
        assert_eq!(whole[0].n_missing(), 0);

        let unmounted = health_real("missing-unmounted");
        assert_eq!(
            unmounted,
            vec![ShownFilesystem {
                uuid: uuid.into(),
                members: vec![(1, "/dev/loop0".into()), (2, "/dev/loop1".into())],
                total_devices: Some(3),
                missing_devids: vec![],
                some_devices_missing: true,
            }]
        );
        assert_eq!(unmounted[0].n_missing(), 1);

        let degraded = health_real("missing-degraded-mount");
        assert_eq!(
            degraded,
            vec![ShownFilesystem {
                uuid: uuid.into(),
                members: vec![(1, "/dev/loop0".into()), (2, "/dev/loop1".into())],
                total_devices: Some(3),
                missing_devids: vec![3],
                some_devices_missing: false,
            }]
        );
        assert_eq!(degraded[0].n_missing(), 1);
    }

    /// btrfs-progs' own `017-fi-show-missing` moves the node away: the old path, then `MISSING`.
    #[test]
    fn missing_device_with_its_old_path() {
        let text = "Label: none  uuid: u\n\tTotal devices 2 FS bytes used 1\n\
                    \tdevid    1 size 1 used 1 path /dev/loop0\n\
                    \tdevid    2 size 0 used 0 path /dev/loop1 MISSING\n\n";
        let shown = parse(text).unwrap();
        assert_eq!(shown[0].members, vec![(1, "/dev/loop0".into())]);
        assert_eq!(shown[0].missing_devids, vec![2]);
        assert_eq!(shown[0].n_missing(), 1);
        // `***` with a count that does not add up still says at least one is missing.
        let shown = parse("Label: none  uuid: u\n\t*** Some devices missing\n").unwrap();
        assert_eq!(shown[0].n_missing(), 1);
    }

    #[test]
    fn hostile_output() {
        assert!(parse(&"x".repeat(MAX_SHOW_BYTES + 1)).is_err());
        assert!(parse("\tdevid 1 size 1 used 1 path /dev/sdb\n").is_err());
        let odd = "Label: none  uuid: u\n\tdevid 0 size 1 used 1 path /dev/a\n\tdevid x path /dev/b\n\
                   \tdevid 18446744073709551616 path /dev/c\n\tdevid 4 size 1\n\tdevid 5 path rel\n\
                   \tdevid 7 size 1 used 1 path /dev/e\n\
                   Label: no uuid here\n\tdevid 6 path /dev/d\n";
        assert_eq!(
            parse(odd).unwrap(),
            vec![ShownFilesystem {
                uuid: "u".into(),
                members: vec![(7, "/dev/e".into())],
                ..ShownFilesystem::default()
            }]
        );
        assert_eq!(parse("").unwrap(), vec![]);
    }
}
