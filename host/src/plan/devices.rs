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

use nos_agent::allowlist::{Command, Effect, ExecCheck};

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
        let why = device.reasons.join("; ");
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
