//! `btrfs filesystem show --raw` text → each filesystem's devids by member path. Pure.
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
//!     Total devices 2 FS bytes used 147456
//!     devid    2 size 314572800 used 167772160 path /dev/loop1
//!     devid    3 size 0 used 0 path  MISSING
//! ```
//!
//! Only `uuid:` of a `Label:` line and the `devid … path` lines are read; anything else is
//! skipped. A missing member (an empty path) is left out: it has no path to match.

/// The command, as the default allowlist's `btrfs.filesystem.show.all` rule accepts it.
pub const SHOW_ARGV: [&str; 4] = ["btrfs", "filesystem", "show", "--raw"];

/// At most this many bytes of `btrfs filesystem show` output are parsed; longer is refused.
pub const MAX_SHOW_BYTES: usize = 1 << 20;

/// One filesystem as `btrfs filesystem show` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShownFilesystem {
    pub uuid: String,
    /// (devid, device path) of every member present.
    pub members: Vec<(u64, String)>,
}

/// Parse the whole output. `Err` only for output larger than [`MAX_SHOW_BYTES`] or a `devid`
/// line before any `Label:` line, which means a format this parser does not know.
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
                    members: Vec::new(),
                });
            }
            continue;
        }
        let Some(rest) = line.trim_start().strip_prefix("devid ") else {
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
                },
                ShownFilesystem {
                    uuid: "11111111-2222-4333-8444-555555555555".into(),
                    members: vec![(2, "/dev/loop1".into()), (3, "/dev/loop2".into())],
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
            }]
        );
        assert_eq!(parse("").unwrap(), vec![]);
    }
}
