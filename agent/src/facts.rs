//! Read-only facts for the planners: the argv of the fact commands (which still go through the
//! allowlist like every other command) and a bounded parser of `/proc/self/mountinfo`.
//!
//! This module never spawns; the pipeline runs the fact commands through `exec`.

use std::io::Read;

use nos_agent::protocol::MountEntry;

/// `lsblk` in JSON with the columns the planners read (the default allowlist's `lsblk.facts`).
pub const LSBLK_ARGV: &[&str] = &[
    "lsblk",
    "--json",
    "--bytes",
    "--paths",
    "--output",
    "NAME,KNAME,PATH,SIZE,ROTA,TYPE,FSTYPE,LABEL,UUID,MOUNTPOINT,PKNAME,MAJ:MIN",
];
/// `btrfs filesystem show --raw` (the default allowlist's `btrfs.filesystem.show.all`).
pub const BTRFS_SHOW_ARGV: &[&str] = &["btrfs", "filesystem", "show", "--raw"];

/// Most bytes of mountinfo read; the rest is dropped and reported as truncated.
pub const MAX_MOUNTINFO_BYTES: u64 = 1 << 20;
/// Most mounts reported.
pub const MAX_MOUNTS: usize = 4096;
/// Longest field kept (a longer field makes the line count as malformed and be skipped).
pub const MAX_FIELD: usize = 4096;

/// Reads and parses this process's mountinfo. Returns the entries and whether anything was cut.
pub fn read_mounts() -> std::io::Result<(Vec<MountEntry>, bool)> {
    let mut text = Vec::new();
    std::fs::File::open("/proc/self/mountinfo")?
        .take(MAX_MOUNTINFO_BYTES + 1)
        .read_to_end(&mut text)?;
    let cut = text.len() as u64 > MAX_MOUNTINFO_BYTES;
    text.truncate(MAX_MOUNTINFO_BYTES as usize);
    let (mounts, truncated) = parse_mountinfo(&String::from_utf8_lossy(&text));
    Ok((mounts, cut || truncated))
}

/// Parses proc(5) mountinfo lines:
///
/// ```text
/// line := mount_id SP parent_id SP major ":" minor SP root SP mount_point SP options
///         (SP optional_field)* SP "-" SP fstype SP source SP super_options
/// ```
///
/// Malformed or oversized lines are skipped (counted as truncation), never a panic.
pub fn parse_mountinfo(text: &str) -> (Vec<MountEntry>, bool) {
    let mut mounts = Vec::new();
    let mut truncated = false;
    for line in text.lines() {
        if mounts.len() == MAX_MOUNTS {
            truncated = true;
            break;
        }
        match parse_line(line) {
            Some(entry) => mounts.push(entry),
            None => truncated = true,
        }
    }
    (mounts, truncated)
}

fn parse_line(line: &str) -> Option<MountEntry> {
    let fields: Vec<&str> = line.split(' ').collect();
    if fields.iter().any(|field| field.len() > MAX_FIELD) {
        return None;
    }
    let separator = fields.iter().position(|field| *field == "-")?;
    if separator < 6 || fields.len() != separator + 4 {
        return None;
    }
    Some(MountEntry {
        mount_id: fields[0].parse().ok()?,
        parent_id: fields[1].parse().ok()?,
        dev: fields[2].to_owned(),
        root: unescape(fields[3]),
        mount_point: unescape(fields[4]),
        options: fields[5].to_owned(),
        fstype: unescape(fields[separator + 1]),
        source: unescape(fields[separator + 2]),
        super_options: fields[separator + 3].to_owned(),
    })
}

/// Decodes the kernel's `\ooo` octal escapes (space, tab, newline, backslash).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut idx = 0;
    while idx < bytes.len() {
        let octal = bytes
            .get(idx + 1..idx + 4)
            .filter(|digits| digits.iter().all(|d| (b'0'..=b'7').contains(d)));
        match (bytes[idx], octal) {
            (b'\\', Some(digits)) => {
                let value = digits
                    .iter()
                    .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                out.push(u8::try_from(value).unwrap_or(b'?'));
                idx += 4;
            }
            (byte, _) => {
                out.push(byte);
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
    fn parses_and_bounds() {
        let text = "36 35 98:0 /mnt1 /mnt/a\\040b rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n\
                    garbage line\n\
                    37 36 0:5 / /x rw - btrfs /dev/loop0 rw,space_cache=v2";
        let (mounts, truncated) = parse_mountinfo(text);
        assert!(truncated);
        assert_eq!(mounts.len(), 2);
        assert_eq!(mounts[0].mount_point, "/mnt/a b");
        assert_eq!(mounts[0].fstype, "ext3");
        assert_eq!(mounts[1].source, "/dev/loop0");
        assert_eq!(unescape("\\777\\1"), "?\\1");
        let (mounts, truncated) = read_mounts().unwrap();
        assert!(!truncated && mounts.iter().any(|mount| mount.mount_point == "/"));
    }
}
