//! The kernel's text tables that both the agent (its in-use check) and the host (facts) read:
//! `/proc/*/mountinfo` and `/proc/swaps`, one parser each, with the kernel's octal escapes
//! undone the same way everywhere. Pure: callers hand in the text.

/// One mount: what is mounted where, with which filesystem type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub mount_point: String,
    pub fs_type: String,
    pub source: String,
}

/// Parse mountinfo; lines that do not follow the format are skipped (the kernel writes it, so
/// a bad line means a newer format, not an attack; callers bound the text's size).
///
/// ```text
/// line   = id SP parent SP major:minor SP root SP mount-point SP options *(SP optional) SP "-" SP fstype SP source SP super-options
/// ```
pub fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines().filter_map(mountinfo_line).collect()
}

fn mountinfo_line(line: &str) -> Option<MountEntry> {
    let (left, right) = line.split_once(" - ")?;
    let mount_point = left.split(' ').nth(4)?;
    let mut right = right.split(' ');
    let fs_type = right.next()?;
    let source = right.next()?;
    Some(MountEntry {
        mount_point: unescape(mount_point),
        fs_type: unescape(fs_type),
        source: unescape(source),
    })
}

/// The mount points of the mounted btrfs filesystems that `accept` takes, one per mounted
/// device (the first accepted mount of each source, in mountinfo order): a filesystem mounted
/// twice, or a subvolume mounted beside it, is read once.
pub fn btrfs_mount_points(mounts: &[MountEntry], accept: impl Fn(&str) -> bool) -> Vec<String> {
    let mut seen_sources: Vec<&str> = Vec::new();
    let mut points = Vec::new();
    for mount in mounts.iter().filter(|mount| mount.fs_type == "btrfs") {
        if seen_sources.contains(&mount.source.as_str()) || !accept(&mount.mount_point) {
            continue;
        }
        seen_sources.push(&mount.source);
        points.push(mount.mount_point.clone());
    }
    points
}

/// The source of the mount on `/` (the last, topmost one).
pub fn root_source(mountinfo: &str) -> Option<String> {
    parse_mountinfo(mountinfo)
        .into_iter()
        .filter(|mount| mount.mount_point == "/")
        .map(|mount| mount.source)
        .next_back()
}

/// Most entries in `/proc/swaps`: the kernel allows at most 32 swap areas (`MAX_SWAPFILES`),
/// so more means the text is not `/proc/swaps`.
pub const MAX_SWAPS: usize = 64;

/// The active swap areas' filenames (device paths for swap partitions). `Err` for text that is
/// not `/proc/swaps`: no header, a line with other than five fields, or too many entries.
///
/// ```text
/// swaps  = header LF *(entry LF)
/// entry  = filename 1*WS type 1*WS size 1*WS used 1*WS priority
/// ```
pub fn parse_swaps(text: &str) -> Result<Vec<String>, String> {
    let mut lines = text.lines();
    match lines.next() {
        Some(header) if header.split_whitespace().next() == Some("Filename") => {}
        _ => return Err("/proc/swaps: no header line".into()),
    }
    let mut swaps = Vec::new();
    for (idx, line) in lines
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
    {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(format!(
                "/proc/swaps: line {} has {} fields, not 5",
                idx + 2,
                fields.len()
            ));
        }
        if swaps.len() == MAX_SWAPS {
            return Err(format!("/proc/swaps: more than {MAX_SWAPS} entries"));
        }
        swaps.push(unescape(fields[0]));
    }
    Ok(swaps)
}

/// Undoes the kernel's `\ooo` octal escapes (space, tab, newline, backslash); an escape above
/// `\377` becomes `?`, a lone or short backslash stays as it is.
pub fn unescape(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut idx = 0;
    while idx < bytes.len() {
        let octal = bytes.get(idx + 1..idx + 4).filter(|digits| {
            bytes[idx] == b'\\' && digits.iter().all(|digit| (b'0'..=b'7').contains(digit))
        });
        match octal {
            Some(digits) => {
                let value = digits
                    .iter()
                    .fold(0u32, |acc, digit| acc * 8 + u32::from(digit - b'0'));
                out.push(u8::try_from(value).unwrap_or(b'?'));
                idx += 4;
            }
            None => {
                out.push(bytes[idx]);
                idx += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo() {
        let text = "\
22 1 8:2 / / rw,relatime shared:1 - ext4 /dev/sda2 rw
30 22 0:5 / /dev rw - devtmpfs udev rw
41 22 0:41 / /srv/my\\040pool rw - btrfs /dev/mapper/luks-vault-0 rw
garbage
40 22 0:40 / / rw - overlay overlay rw,lowerdir=/x
";
        let mounts = parse_mountinfo(text);
        assert_eq!(mounts.len(), 4);
        assert_eq!(mounts[2].mount_point, "/srv/my pool");
        assert_eq!(mounts[2].fs_type, "btrfs");
        assert_eq!(root_source(text).as_deref(), Some("overlay"));
        assert_eq!(
            root_source("22 1 8:2 / / rw - ext4 /dev/disk/by-label/a\\040b rw\n").as_deref(),
            Some("/dev/disk/by-label/a b")
        );
        assert_eq!(
            root_source("garbage\n22 1 8:2 / /srv rw - ext4 /dev/sdb rw"),
            None
        );
    }

    #[test]
    fn btrfs_mount_points_one_per_source() {
        let text = "\
22 1 8:2 / / rw,relatime shared:1 - ext4 /dev/sda2 rw
41 22 0:41 / /srv/tank rw - btrfs /dev/loop0 rw
42 22 0:41 /data /srv/data rw - btrfs /dev/loop0 rw
43 22 0:42 / /home/other rw - btrfs /dev/loop3 rw
44 22 0:43 / /home/x rw - btrfs /dev/loop5 rw
45 22 0:43 / /mnt/x rw - btrfs /dev/loop5 rw
";
        let mounts = parse_mountinfo(text);
        let points = btrfs_mount_points(&mounts, |path| !path.starts_with("/home/"));
        assert_eq!(points, ["/srv/tank", "/mnt/x"]);
    }

    #[test]
    fn swaps() {
        let text = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/dev/loop3                              partition\t1048572\t\t0\t\t-2\n/srv/a\\040b\\134c file 1024 0 -3\n";
        assert_eq!(
            parse_swaps(text),
            Ok(vec!["/dev/loop3".to_owned(), "/srv/a b\\c".to_owned()])
        );
        assert_eq!(
            parse_swaps("Filename\tType\tSize\tUsed\tPriority\n"),
            Ok(Vec::new())
        );
        assert!(parse_swaps("").is_err());
        assert!(parse_swaps("/dev/sda1 partition 1 0 -2\n").is_err());
        assert!(parse_swaps("Filename Type Size Used Priority\n/dev/sda1 partition\n").is_err());
    }

    #[test]
    fn escapes() {
        assert_eq!(unescape("\\"), "\\");
        assert_eq!(unescape("a\\04"), "a\\04");
        assert_eq!(unescape("\\777"), "?");
        assert_eq!(unescape("\\040\\011\\012\\134"), " \t\n\\");
    }
}
