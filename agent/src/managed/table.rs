//! The text of fstab and crypttab as nos edits it: one marked block of entries, everything
//! outside it kept byte for byte. Pure: old text and a change in, new text out; no IO.
//!
//! ```text
//! … the system's own lines …
//! # BEGIN nos managed block: edits inside are overwritten
//! UUID=<uuid> <target> btrfs <options> 0 0          (fstab: keyed by <target>)
//! <name> UUID=<uuid> <key> <options>                 (crypttab: keyed by <name>)
//! # END nos managed block
//! … the system's own lines …
//! ```
//!
//! The options of both come from the allowlist's match, which decides them: an fstab entry's
//! end with `nosuid,nodev,nofail,x-systemd.device-timeout=…`, a crypttab entry's are
//! `luks,nofail,x-systemd.device-timeout=…` by default (`[settings] forced_boot_options`). This
//! module renders what it is given and never adds or drops an option.
//!
//! A table without a block gets one appended; a block left empty is dropped with its markers.

use nos_allowlist::ManagedAction;

pub const BLOCK_BEGIN: &str = "# BEGIN nos managed block: edits inside are overwritten";
pub const BLOCK_END: &str = "# END nos managed block";
/// Most entries one managed block may hold.
pub const MAX_ENTRIES: usize = 256;
/// Most lines that are not comments a table may have after an edit: a full managed block plus
/// 4096 lines of the system's own.
pub const MAX_TABLE_LINES: usize = MAX_ENTRIES + 4096;

/// A table nos manages a block of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Fstab,
    Crypttab,
}

impl Table {
    /// The permission bits the table file is written with.
    pub fn mode(self) -> u32 {
        match self {
            Table::Fstab => 0o644,
            Table::Crypttab => 0o600,
        }
    }

    /// The whitespace-separated field that names an entry: the mount target of an fstab line,
    /// the mapping name of a crypttab line.
    fn key_field(self) -> usize {
        match self {
            Table::Fstab => 1,
            Table::Crypttab => 0,
        }
    }
}

/// One entry of a managed block: its line and the key that names it in its table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub table: Table,
    pub key: String,
    pub line: String,
}

impl Entry {
    /// `UUID=<uuid> <target> btrfs <options> 0 0`, keyed by the target. The fields must already
    /// be single tokens (see `managed::token`).
    pub fn fstab(uuid: &str, target: &str, options: &str) -> Entry {
        Entry {
            table: Table::Fstab,
            key: target.to_owned(),
            line: format!("UUID={uuid} {target} btrfs {options} 0 0"),
        }
    }

    /// `<name> UUID=<device_uuid> <key_path> <options>`, keyed by the name; `options` is the
    /// match's `crypttab_options` (`luks,nofail,…`). The fields must already be single tokens.
    pub fn crypttab(name: &str, device_uuid: &str, key_path: &str, options: &str) -> Entry {
        Entry {
            table: Table::Crypttab,
            key: name.to_owned(),
            line: format!("{name} UUID={device_uuid} {key_path} {options}"),
        }
    }
}

/// Why a table cannot be edited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    #[error("managed block markers are unbalanced or repeated")]
    Unbalanced,
    #[error("more than {MAX_ENTRIES} managed entries")]
    TooManyEntries,
    #[error("more than {MAX_TABLE_LINES} lines that are not comments")]
    TooManyLines,
}

/// The text of `old` after `action` on `entry`: `Ensure` replaces the block's entry with the
/// same key or appends one, `Remove` drops the entry with that key (if any).
pub fn edit(old: &str, action: ManagedAction, entry: &Entry) -> Result<String, EditError> {
    let lines: Vec<&str> = old.lines().collect();
    let positions = |marker: &str| -> Vec<usize> {
        lines
            .iter()
            .enumerate()
            .filter(|(_, line)| **line == marker)
            .map(|(idx, _)| idx)
            .collect()
    };
    let (begins, ends) = (positions(BLOCK_BEGIN), positions(BLOCK_END));
    let (before, mut entries, after): (&[&str], Vec<&str>, &[&str]) =
        match (begins.as_slice(), ends.as_slice()) {
            ([], []) => (&lines, Vec::new(), &[]),
            ([begin], [end]) if begin < end => (
                &lines[..*begin],
                lines[begin + 1..*end].to_vec(),
                &lines[end + 1..],
            ),
            _ => return Err(EditError::Unbalanced),
        };
    let key_field = entry.table.key_field();
    let position = entries
        .iter()
        .position(|line| line.split_whitespace().nth(key_field) == Some(entry.key.as_str()));
    match (position, action) {
        (Some(idx), ManagedAction::Ensure) => entries[idx] = &entry.line,
        (Some(idx), ManagedAction::Remove) => {
            entries.remove(idx);
        }
        (None, ManagedAction::Ensure) => entries.push(&entry.line),
        (None, ManagedAction::Remove) => {}
    }
    if entries.len() > MAX_ENTRIES {
        return Err(EditError::TooManyEntries);
    }
    let block = if entries.is_empty() {
        Vec::new()
    } else {
        std::iter::once(BLOCK_BEGIN)
            .chain(entries)
            .chain(std::iter::once(BLOCK_END))
            .collect()
    };
    let mut text = String::new();
    for line in before.iter().chain(&block).chain(after) {
        text.push_str(line);
        text.push('\n');
    }
    let n_lines = text.lines().filter(|line| !line.starts_with('#')).count();
    if n_lines > MAX_TABLE_LINES {
        return Err(EditError::TooManyLines);
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const UUID: &str = "0b6c0e4a-1111-4222-8333-944455556666";

    /// The options the default allowlist gives each table.
    const FSTAB_OPTIONS: &str = "noatime,nosuid,nodev,nofail,x-systemd.device-timeout=30s";
    const CRYPTTAB_OPTIONS: &str = "luks,nofail,x-systemd.device-timeout=30s";

    fn tank() -> Entry {
        Entry::fstab(UUID, "/srv/tank", FSTAB_OPTIONS)
    }

    fn block(lines: &[&str]) -> String {
        let mut text = format!("{BLOCK_BEGIN}\n");
        for line in lines {
            text.push_str(line);
            text.push('\n');
        }
        text.push_str(BLOCK_END);
        text.push('\n');
        text
    }

    #[test]
    fn lines_are_the_documented_ones() {
        assert_eq!(
            tank().line,
            format!(
                "UUID={UUID} /srv/tank btrfs noatime,nosuid,nodev,nofail,x-systemd.device-timeout=30s 0 0"
            )
        );
        let crypt = Entry::crypttab("tank", UUID, "/etc/nos/keys/tank.key", CRYPTTAB_OPTIONS);
        assert_eq!(
            (crypt.key.as_str(), crypt.line.as_str()),
            (
                "tank",
                "tank UUID=0b6c0e4a-1111-4222-8333-944455556666 /etc/nos/keys/tank.key luks,nofail,x-systemd.device-timeout=30s"
            )
        );
        assert_eq!(
            (Table::Fstab.mode(), Table::Crypttab.mode()),
            (0o644, 0o600)
        );
    }

    #[test]
    fn ensure_appends_a_block_and_keeps_the_rest() {
        let old = "# static\n/dev/vda / ext4 defaults 0 1\n";
        let new = edit(old, ManagedAction::Ensure, &tank()).unwrap();
        assert_eq!(new, format!("{old}{}", block(&[&tank().line])));
        // The same change again changes nothing.
        assert_eq!(edit(&new, ManagedAction::Ensure, &tank()).unwrap(), new);
        // Removing the last entry drops the block and its markers.
        assert_eq!(edit(&new, ManagedAction::Remove, &tank()).unwrap(), old);
        // Removing what is not there changes nothing; an empty table stays empty.
        assert_eq!(edit(old, ManagedAction::Remove, &tank()).unwrap(), old);
        assert_eq!(edit("", ManagedAction::Remove, &tank()).unwrap(), "");
    }

    #[test]
    fn ensure_replaces_the_entry_with_the_same_key_in_place() {
        let other = Entry::fstab(UUID, "/srv/other", "noatime");
        let old = format!(
            "/dev/vda / ext4 defaults 0 1\n{}# after\n",
            block(&[&other.line, "UUID=old /srv/tank btrfs defaults 0 0"])
        );
        let new = edit(&old, ManagedAction::Ensure, &tank()).unwrap();
        assert_eq!(
            new,
            format!(
                "/dev/vda / ext4 defaults 0 1\n{}# after\n",
                block(&[&other.line, &tank().line])
            )
        );
        // A line outside the block with the same key is the system's, never touched.
        let outside = "UUID=x /srv/tank btrfs defaults 0 0\n";
        assert_eq!(
            edit(outside, ManagedAction::Remove, &tank()).unwrap(),
            outside
        );
        // Crypttab entries are keyed by their first field.
        let crypt = block(&["tank UUID=old /k luks", "other UUID=o /o luks"]);
        let removed = edit(
            &crypt,
            ManagedAction::Remove,
            &Entry::crypttab("tank", UUID, "/k", CRYPTTAB_OPTIONS),
        )
        .unwrap();
        assert_eq!(removed, block(&["other UUID=o /o luks"]));
    }

    #[test]
    fn unbalanced_markers_refuse() {
        for old in [
            format!("{BLOCK_BEGIN}\nx\n"),
            format!("x\n{BLOCK_END}\n"),
            format!("{BLOCK_END}\n{BLOCK_BEGIN}\n"),
            format!("{}{}", block(&[]), block(&[])),
        ] {
            assert_eq!(
                edit(&old, ManagedAction::Remove, &tank()),
                Err(EditError::Unbalanced),
                "{old}"
            );
        }
    }

    #[test]
    fn limits_refuse() {
        let lines: Vec<String> = (0..MAX_ENTRIES)
            .map(|idx| format!("UUID={UUID} /srv/t{idx} btrfs noatime 0 0"))
            .collect();
        let full = block(&lines.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(
            edit(&full, ManagedAction::Ensure, &tank()),
            Err(EditError::TooManyEntries)
        );
        // Replacing an entry of a full block is fine.
        let replaced = Entry::fstab(UUID, "/srv/t0", "nodev");
        assert!(edit(&full, ManagedAction::Ensure, &replaced).is_ok());
        let system = "/dev/x /x ext4 defaults 0 0\n".repeat(MAX_TABLE_LINES);
        assert_eq!(
            edit(&system, ManagedAction::Ensure, &tank()),
            Err(EditError::TooManyLines)
        );
        let comments = "# a comment\n".repeat(2 * MAX_TABLE_LINES);
        assert!(edit(&comments, ManagedAction::Ensure, &tank()).is_ok());
    }
}
