//! What a plan may do to the block devices the facts describe. Pure.
//!
//! The host's half of "nothing that holds data is ever destroyed by mistake", checked on every
//! step of every plan whatever its planner returned (the agent's half refuses a device in use
//! just before the spawn, on its own):
//!
//! * a device the allowlist marks for the in-use check (`ExecCheck::NotInUse`: every device
//!   argument of a state-changing or destructive rule, except pool members a rule declares
//!   `in_use = "allowed"` for) must not be in use;
//! * a destructive rule's such device must be blank, except for the wipe rule ([`WIPE_RULE`]),
//!   whose very purpose is a device that holds data, and which an admin confirms after seeing
//!   exactly what it destroys.
//!
//! A device the facts do not list does not exist yet (a LUKS mapping the plan opens first); the
//! agent checks it when it does.

use nos_allowlist::{Command, Effect, ExecCheck};

use crate::facts::{DeviceState, Facts};

/// The one destructive rule that may name a device that holds data.
pub const WIPE_RULE: &str = "wipefs";

/// Why `command` may not run on the devices as `facts` describe them, if it may not.
pub fn refusal(command: &Command, facts: &Facts) -> Option<String> {
    command.checks.iter().find_map(|check| {
        let ExecCheck::NotInUse { arg_idx } = check else {
            return None;
        };
        let name = command.args.get(*arg_idx)?;
        let device = facts.block_devices.iter().find(|device| {
            device.path == *name
                || format!("/dev/{}", device.kname) == *name
                || device.by_id.iter().any(|link| link == name)
        })?;
        let why = match device.reasons.is_empty() {
            true => "the facts never classified it".to_owned(),
            false => device.reasons.join("; "),
        };
        match device.state {
            DeviceState::InUse => Some(format!("device in use: {name}: {why}")),
            DeviceState::HoldsData
                if command.effect == Effect::Destructive && command.rule_id != WIPE_RULE =>
            {
                Some(format!(
                    "device holds data: {name}: {why}; only a wipe plan, confirmed after \
                     seeing what it destroys, may reuse it"
                ))
            }
            DeviceState::HoldsData | DeviceState::Blank => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::real_tests::raw;
    use nos_allowlist::{Allowlist, Source, Verdict};

    fn allowlist() -> Allowlist {
        Allowlist::load(&[Source {
            name: "allowlist.toml".into(),
            text: include_str!("../../../allowlist.toml").into(),
        }])
        .unwrap()
    }

    /// The verdict on `argv` (with `{0}`, `{1}` for the scenario's devices) on the devices of
    /// a captured scenario.
    fn verdict(scenario: &str, argv: &str) -> String {
        let facts = crate::facts::build(&raw(scenario, "lsblk-tree.json"), &[], &[]).unwrap();
        let mut line = argv.to_owned();
        for (idx, device) in facts.block_devices.iter().enumerate() {
            line = line.replace(&format!("{{{idx}}}"), &device.path);
        }
        let argv: Vec<String> = line.split(' ').map(str::to_owned).collect();
        let Verdict::Allowed(matched) = allowlist().check(&argv) else {
            panic!("{line}: refused by the allowlist");
        };
        match refusal(matched.command(), &facts) {
            Some(reason) => {
                // Loop numbers and uuids differ between captures.
                let mut names: Vec<(usize, &str)> = facts
                    .block_devices
                    .iter()
                    .enumerate()
                    .map(|(idx, device)| (idx, device.kname.as_str()))
                    .collect();
                names.sort_by_key(|(_, name)| std::cmp::Reverse(name.len()));
                let mut reason = reason;
                for (idx, name) in names {
                    let placeholder = if idx == 0 {
                        "DISK".to_owned()
                    } else {
                        format!("DEV{idx}")
                    };
                    reason = reason.replace(name, &placeholder);
                }
                let reason = reason.split(" at /tmp").next().unwrap().to_owned();
                match reason.find(" (") {
                    Some(start) if reason.contains("btrfs filesystem") => {
                        reason[..start].to_owned()
                    }
                    _ => reason,
                }
            }
            None => "allowed".into(),
        }
    }

    #[test]
    fn nothing_that_holds_data_is_destroyed() {
        for (scenario, argv, expected) in [
            ("blank", "mkfs.btrfs -- {0}", "allowed"),
            (
                "blank",
                "cryptsetup luksFormat --type luks2 --batch-mode --key-file /etc/nos/keys/x.key -- {0}",
                "allowed",
            ),
            (
                "gpt-ext4-unmounted",
                "mkfs.btrfs -f -- {0}",
                "device holds data: /dev/DISK: has a gpt partition table; partition DEV1: ext4 'data', 1022 MiB; only a wipe plan, confirmed after seeing what it destroys, may reuse it",
            ),
            (
                "gpt-ext4-unmounted",
                "mkfs.btrfs -- {1}",
                "device holds data: /dev/DEV1: holds an ext4 filesystem labelled 'data'; only a wipe plan, confirmed after seeing what it destroys, may reuse it",
            ),
            ("gpt-ext4-unmounted", "wipefs --all -- {1}", "allowed"),
            ("gpt-ext4-unmounted", "wipefs --all -- {0}", "allowed"),
            (
                "gpt-ext4-mounted",
                "wipefs --all -- {0}",
                "device in use: /dev/DISK: DEV1 is mounted",
            ),
            (
                "gpt-ext4-mounted",
                "mkfs.btrfs -f -- {0}",
                "device in use: /dev/DISK: DEV1 is mounted",
            ),
            (
                "gpt-empty",
                "mkfs.btrfs -- {0}",
                "device holds data: /dev/DISK: has a gpt partition table; only a wipe plan, confirmed after seeing what it destroys, may reuse it",
            ),
            (
                "luks-on-partition",
                "cryptsetup luksFormat --type luks2 --batch-mode --key-file /etc/nos/keys/x.key -- {1}",
                "device holds data: /dev/DEV1: holds a LUKS encrypted volume; only a wipe plan, confirmed after seeing what it destroys, may reuse it",
            ),
            (
                "swap",
                "mkfs.btrfs -- {0}",
                "device holds data: /dev/DISK: holds a swap signature; only a wipe plan, confirmed after seeing what it destroys, may reuse it",
            ),
            (
                "swap-active",
                "wipefs --all -- {0}",
                "device in use: /dev/DISK: is active swap; holds a swap signature",
            ),
            (
                "ext4-whole-disk",
                "btrfs device add -f -- {0} /srv/tank",
                "device holds data: /dev/DISK: holds an ext4 filesystem labelled 'whole'; only a wipe plan, confirmed after seeing what it destroys, may reuse it",
            ),
            // An unmounted pool's members may be mounted; a mounted pool's may not be again.
            (
                "btrfs-unmounted",
                "mount -t btrfs -o noatime -- {0} /srv/fixpool",
                "allowed",
            ),
            (
                "btrfs-mounted",
                "mount -t btrfs -o noatime -- {1} /srv/fixpool",
                "device in use: /dev/DEV1: is a member of the mounted btrfs filesystem 'fixpool'",
            ),
            // A member the rule declares may be in use: removing it from its own pool.
            (
                "btrfs-mounted",
                "btrfs device remove -- {1} /srv/fixpool",
                "allowed",
            ),
        ] {
            assert_eq!(verdict(scenario, argv), expected, "{scenario}: {argv}");
        }
    }
}
