//! The kernel files facts are gathered from, read with bounds: the list of block devices to
//! probe, `/proc/self/mountinfo` and `/proc/swaps`. Used by the agent (which answers
//! [`nos_protocol::RequestBody::Facts`] with them and the output of
//! [`crate::fact_commands`]) and by `nosctl facts` (locally). Nothing here parses a tool's
//! output: the host does that, once.
//!
//! This module only reads; it never spawns and never writes.

use std::io::Read;
use std::path::Path;

use nos_protocol::{FactText, MAX_FACT_TEXT};

/// Most block devices listed from sysfs for probing.
pub const MAX_BLOCK_DEVICES: usize = 1024;

/// Reads a kernel text file, at most [`MAX_FACT_TEXT`] bytes; longer, unreadable or not UTF-8 is
/// [`FactText::Unavailable`] with the reason.
pub fn read_text(path: &Path) -> FactText {
    let mut bytes = Vec::new();
    let read = std::fs::File::open(path)
        .and_then(|file| file.take(MAX_FACT_TEXT as u64 + 1).read_to_end(&mut bytes));
    let unavailable = |reason: String| FactText::Unavailable {
        reason: format!("{}: {reason}", path.display()),
    };
    match read {
        Err(err) => unavailable(err.to_string()),
        Ok(_) if bytes.len() > MAX_FACT_TEXT => {
            unavailable(format!("more than {MAX_FACT_TEXT} bytes"))
        }
        Ok(_) => match String::from_utf8(bytes) {
            Ok(text) => FactText::Text { text },
            Err(_) => unavailable("not UTF-8".into()),
        },
    }
}

/// The block devices the kernel has (`<sysfs_class_block>/*`, partitions included), as
/// `/dev/<kname>`, sorted, without the ones of size 0 (unbound loop devices, empty drives), which
/// have nothing to probe. At most [`MAX_BLOCK_DEVICES`]; names that are not plain kernel names
/// are skipped.
pub fn block_devices(sysfs_class_block: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(sysfs_class_block) else {
        return Vec::new();
    };
    let mut devices: Vec<String> = entries
        .flatten()
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| {
            !name.is_empty()
                && name.len() <= 64
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        })
        .filter(|name| {
            std::fs::read_to_string(sysfs_class_block.join(name).join("size"))
                .ok()
                .and_then(|size| size.trim().parse::<u64>().ok())
                .is_some_and(|sectors| sectors > 0)
        })
        .take(MAX_BLOCK_DEVICES)
        .map(|name| format!("/dev/{name}"))
        .collect();
    devices.sort();
    devices
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_sized_devices_only() {
        let dir = tempfile::tempdir().unwrap();
        for (name, size) in [("loop0", "2097152\n"), ("loop7", "0\n"), ("sda1", "8\n")] {
            std::fs::create_dir(dir.path().join(name)).unwrap();
            std::fs::write(dir.path().join(name).join("size"), size).unwrap();
        }
        std::fs::create_dir(dir.path().join("no size")).unwrap();
        assert_eq!(block_devices(dir.path()), ["/dev/loop0", "/dev/sda1"]);
        assert_eq!(
            block_devices(&dir.path().join("missing")),
            Vec::<String>::new()
        );
    }

    #[test]
    fn reads_bounded_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("swaps");
        std::fs::write(&path, "Filename\tType\tSize\tUsed\tPriority\n").unwrap();
        assert!(matches!(read_text(&path), FactText::Text { .. }));
        std::fs::write(&path, vec![b'a'; MAX_FACT_TEXT + 1]).unwrap();
        assert!(matches!(read_text(&path), FactText::Unavailable { .. }));
        std::fs::write(&path, [0xff, 0xfe]).unwrap();
        assert!(matches!(read_text(&path), FactText::Unavailable { .. }));
        assert!(matches!(
            read_text(&dir.path().join("nope")),
            FactText::Unavailable { .. }
        ));
    }
}
