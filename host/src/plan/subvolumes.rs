//! What a plan may do to the subvolumes the facts describe. Pure.
//!
//! A snapshot an admin locked in nos is kept out of retention by the planners; this is the
//! host's own half, whatever a planner returned: no step of a rule that deletes a subvolume
//! ([`DELETING_RULES`]) may name a locked one. A lock taken after a plan was made changes the
//! facts' fingerprint, so the plan is refused as stale at apply and must be made again.

use nos_allowlist::Command;

use crate::facts::Facts;

/// The rule that deletes one snapshot.
pub const DELETE_SNAPSHOT_RULE: &str = "btrfs.subvolume.delete.snapshot";
/// The rule that deletes a share (destructive).
pub const DELETE_SHARE_RULE: &str = "btrfs.subvolume.delete.share";
/// The rules that delete a subvolume.
pub const DELETING_RULES: [&str; 2] = [DELETE_SNAPSHOT_RULE, DELETE_SHARE_RULE];

/// Why `command` may not run on the subvolumes as `facts` describe them, if it may not.
pub fn refusal(command: &Command, facts: &Facts) -> Option<String> {
    if !DELETING_RULES.contains(&command.rule_id.as_str()) {
        return None;
    }
    facts.filesystems.iter().find_map(|fs| {
        fs.subvolumes
            .iter()
            .flatten()
            .filter(|subvolume| subvolume.locked)
            .map(|subvolume| fs.subvolume_path(subvolume))
            .find(|path| command.args.contains(path))
            .map(|path| format!("{path} is locked in nos: unlock it before deleting it"))
    })
}
