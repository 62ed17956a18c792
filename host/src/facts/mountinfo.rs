//! `/proc/self/mountinfo` text → mount entries. Pure.

/// One mount: what is mounted where, with which filesystem type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub mount_point: String,
    pub fs_type: String,
    pub source: String,
}

/// Parse mountinfo; lines that do not follow the format are skipped (the kernel writes it,
/// so a bad line means a newer format, not an attack).
///
/// ```text
/// line   = id SP parent SP major:minor SP root SP mount-point SP options *(SP optional) SP "-" SP fstype SP source SP super-options
/// ```
/// Fields escape space, tab, newline and backslash as `\040`, `\011`, `\012`, `\134`.
pub fn parse(text: &str) -> Vec<MountEntry> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<MountEntry> {
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

/// Decodes the kernel's `\ooo` octal escapes (space, tab, newline, backslash); an escape above
/// `\377` is kept as it is.
pub fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut idx = 0;
    while idx < bytes.len() {
        if bytes[idx] == b'\\'
            && idx + 3 < bytes.len()
            && bytes[idx + 1..idx + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let value = (bytes[idx + 1] - b'0') as u32 * 64
                + (bytes[idx + 2] - b'0') as u32 * 8
                + (bytes[idx + 3] - b'0') as u32;
            if let Ok(byte) = u8::try_from(value) {
                out.push(byte);
                idx += 4;
                continue;
            }
        }
        out.push(bytes[idx]);
        idx += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fixture() {
        let text = include_str!("../../tests/data/facts/mountinfo.txt");
        let entries = parse(text);
        let btrfs: Vec<_> = entries.iter().filter(|e| e.fs_type == "btrfs").collect();
        assert_eq!(
            btrfs,
            [
                &MountEntry {
                    mount_point: "/srv/tank".into(),
                    fs_type: "btrfs".into(),
                    source: "/dev/sdb".into()
                },
                &MountEntry {
                    mount_point: "/srv/my pool".into(),
                    fs_type: "btrfs".into(),
                    source: "/dev/mapper/luks-vault-0".into()
                },
            ]
        );
        assert_eq!(entries.len(), 6);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in "\\PC{0,300}") {
            let _ = parse(&text);
        }
    }
}
