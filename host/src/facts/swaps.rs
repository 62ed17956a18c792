//! `/proc/swaps` text → the devices that are active swap. Pure.
//!
//! ```text
//! swaps  = header LF *(entry LF)
//! header = "Filename" *(SP / HT) "Type" ...
//! entry  = filename 1*(SP / HT) type 1*(SP / HT) size 1*(SP / HT) used 1*(SP / HT) priority
//! ```
//!
//! The kernel escapes space, tab, newline and backslash in a filename as `\040`, `\011`, `\012`,
//! `\134`, like mountinfo.

use super::mountinfo::unescape;

/// Most entries read; the kernel allows at most 32 swap areas (`MAX_SWAPFILES`), so more means
/// the text is not `/proc/swaps`.
pub const MAX_SWAPS: usize = 64;

/// The active swap areas' filenames (device paths for swap partitions). `Err` for text that is
/// not `/proc/swaps`: no header, a line with fewer than five fields, or too many entries.
pub fn parse(text: &str) -> Result<Vec<String>, String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        let text = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/dev/loop3                              partition\t1048572\t\t0\t\t-2\n/srv/a\\040swap file\t1024\t0\t-3\n";
        assert_eq!(
            parse(text),
            Ok(vec!["/dev/loop3".to_owned(), "/srv/a swap".to_owned()])
        );
        assert_eq!(
            parse("Filename\tType\tSize\tUsed\tPriority\n"),
            Ok(Vec::new())
        );
        assert!(parse("").is_err());
        assert!(parse("/dev/sda1 partition 1 0 -2\n").is_err());
        assert!(parse("Filename Type Size Used Priority\n/dev/sda1 partition\n").is_err());
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in "\\PC{0,300}") {
            let _ = parse(&text);
        }
    }
}
