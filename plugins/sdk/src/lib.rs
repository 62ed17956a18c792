//! The guest SDK for nos planners: the `nos:plugin@0.3.0` planner bindings, typed step
//! builders, helpers to read facts, and a panic hook that forwards the message to the host.
//!
//! # The safety contract between host, planner and agent
//!
//! What the host guarantees about facts:
//!
//! * Every block device carries a [`DeviceState`] and its `state-reasons`, derived by the host
//!   from lsblk, `blkid -p`, sysfs, `/proc/swaps` and mountinfo. Neither a planner nor its
//!   input can set them, and facts read from a file are classified again.
//! * [`DeviceState::Blank`] means no partition table, no partitions, no filesystem or other
//!   signature, no holders, no mounts, no swap and no btrfs membership. Anything else holds
//!   data ([`DeviceState::HoldsData`]) or is in use ([`DeviceState::InUse`]); a device the host
//!   could not classify is in use, never blank.
//! * Partitions are devices of their own with `parent` set to their disk, and a disk's
//!   `holders` include its partitions, so [`Facts::partitions`] finds them.
//!
//! What a planner must check:
//!
//! * It builds (mkfs, `btrfs device add`, luksFormat, replace) only on blank devices, through
//!   [`Facts::blank_device`], which refuses any other with its reasons and a pointer to the
//!   `disk-wipe` planner. It never passes a force flag (`-f`) and has no force-like input: a
//!   device that holds anything is reused only through a wipe plan whose preview lists what it
//!   destroys.
//! * A refusal names the device and what it holds ([`BlockDevice::describe`]).
//!
//! What the agent re-checks, on its own: just before the spawn it refuses any state-changing or
//! destructive request on a device in use (mounted, swap, held, a member of a mounted btrfs,
//! the root device), whatever the host or the planner decided. `plan::check` on the host also
//! refuses a destructive step on a device that is not blank, unless its rule is the wipe rule.
//! A planner's checks are the first line, not the only one; they exist so a human sees a clear
//! refusal instead of a failed job.
//!
//! A planner is a plain Rust function from facts and input to a plan; [`export_planner!`] wires
//! it to the component exports. The generated types also compile natively (their imports become
//! unreachable stubs), so planner logic is unit-tested with `cargo test` on the build machine.
//! This crate never touches WASI: no files, no clock, no randomness.
//!
//! A planner, whole:
//!
//! ```text
//! use nos_plugin_sdk::{Facts, Plan, PlanError, Planner, PluginInfo, Step};
//!
//! pub struct Show;
//!
//! impl Planner for Show {
//!     fn describe() -> PluginInfo { /* name, version, summary, JSON Schema of the input */ }
//!     fn plan(facts: &Facts, input: &str) -> Result<Plan, PlanError> {
//!         let fs = facts.filesystem(input).ok_or_else(|| PlanError::Refused("no such pool".into()))?;
//!         let mut plan = Plan::new();
//!         plan.push(Step::read("show", "Show the pool", &["btrfs", "filesystem", "show", &fs.devices[0].path]));
//!         Ok(plan)
//!     }
//! }
//!
//! nos_plugin_sdk::export_planner!(Show);
//! ```
//!
//! Build it with `crate-type = ["cdylib", "rlib"]` for `wasm32-wasip2` (the host's build script
//! does this for every plugin in `plugins/`) and describe it in a `plugin.toml` beside its
//! `Cargo.toml`; the build writes the component's sha256 into the built manifest.
// Generated bindings need `unsafe`; everything written by hand here does not.
#![deny(unsafe_code)]

#[allow(unsafe_code)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "planner",
        path: "../../wit/since_v0.3.0",
        pub_export_macro: true,
        export_macro_name: "export_planner_bindings",
        default_bindings_module: "nos_plugin_sdk::bindings",
        additional_derives: [PartialEq, serde::Serialize, serde::Deserialize],
    });
}

mod facts_ext;
pub use facts_ext::{UNKNOWN_DEVID, WIPE_PLANNER};
mod log;
pub mod mount;
pub mod profile;
mod step;
pub mod subvolume;
#[cfg(feature = "testing")]
pub mod testing;

pub use bindings::exports::nos::plugin::planning::Guest;
pub use bindings::nos::plugin::facts::{
    BlockDevice, BtrfsDevice, BtrfsFilesystem, DeviceState, Facts, Subvolume, SubvolumeKind,
};
pub use bindings::nos::plugin::log::Level;
pub use bindings::nos::plugin::meta::PluginInfo;
pub use bindings::nos::plugin::plan::{
    CrypttabEntry, Effect, FstabEntry, ManagedRequest, Plan, PlanError, Request, Step,
};
pub use log::{install_panic_hook, log};

/// What a planner implements; [`export_planner!`] turns it into the component's exports.
pub trait Planner {
    fn describe() -> PluginInfo;
    fn plan(facts: &Facts, input: &str) -> Result<Plan, PlanError>;
}

/// Parses a planner's JSON input; a malformed one is `PlanError::InvalidInput` naming what was
/// wrong, never a panic.
pub fn parse_input<T: serde::de::DeserializeOwned>(input: &str) -> Result<T, PlanError> {
    serde_json::from_str(input).map_err(|err| PlanError::InvalidInput(format!("input: {err}")))
}

/// Export `$planner` (a type implementing [`Planner`]) as this component's `planner` interface,
/// with the panic hook installed before every call.
#[macro_export]
macro_rules! export_planner {
    ($planner:ident) => {
        // The generated export glue is `unsafe` FFI; it stays inside this module. It exists
        // only in the component: natively (unit tests) the export names would not even link.
        #[cfg(target_arch = "wasm32")]
        #[allow(unsafe_code)]
        mod nos_planner_export {
            use super::*;

            struct NosPlannerExport;

            impl $crate::Guest for NosPlannerExport {
                fn describe() -> $crate::PluginInfo {
                    $crate::install_panic_hook();
                    <$planner as $crate::Planner>::describe()
                }

                fn make_plan(
                    facts: $crate::Facts,
                    input: ::std::string::String,
                ) -> ::std::result::Result<$crate::Plan, $crate::PlanError> {
                    $crate::install_panic_hook();
                    <$planner as $crate::Planner>::plan(&facts, &input)
                }
            }

            $crate::bindings::export_planner_bindings!(NosPlannerExport);
        }
    };
}
