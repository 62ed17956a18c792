//! Bindings for `wit/since_v0.2.0` (`nos:plugin@0.2.0`): facts carry each block device's
//! parent, identity, partition table, signature usage and the host-derived state with its
//! reasons ([`super::facts_since_v0_2_0`], which 0.3.0 keeps). The glue shared with other
//! versions is [`super::shared_glue`]. Frozen with its WIT directory: released.

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Engine, Store};

use crate::facts::{DeviceState, Facts};
use crate::plan::types as host;
use crate::plugin::PluginInfo;
use crate::plugin::manifest::ApiVersion;
use crate::plugin::policy::{LoginAttempt, LoginDecision, PasswordFeatures, PasswordVerdict};
use crate::plugin::state::{CallState, LogLevel};

pub const VERSION: ApiVersion = ApiVersion::new(0, 2, 0);

mod planner {
    wasmtime::component::bindgen!({
        world: "planner",
        path: "../wit/since_v0.2.0",
    });
}

mod auth {
    wasmtime::component::bindgen!({
        world: "auth-policy",
        path: "../wit/since_v0.2.0",
        with: {
            "nos:plugin/log": super::planner::nos::plugin::log,
            "nos:plugin/meta": super::planner::nos::plugin::meta,
        },
    });
}

use auth::exports::nos::plugin::auth_decisions as wit_auth;
use planner::nos::plugin::{
    facts as wit_facts, log as wit_log, meta as wit_meta, plan as wit_plan,
};

super::shared_glue!();

super::facts_since_v0_2_0!();
