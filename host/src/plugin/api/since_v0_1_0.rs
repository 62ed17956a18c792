//! Bindings for `wit/since_v0.1.0` (`nos:plugin@0.1.0`): the oldest supported version, kept so
//! planners built against it still load. Its facts lack the device state of 0.2.0 (a 0.1.0
//! planner cannot see it); the agent's own in-use refusal and `plan::check`'s device checks
//! still judge every plan it returns. The glue shared with newer versions is
//! [`super::shared_glue`]; only lowering the facts is this module's own.

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Engine, Store};

use crate::facts::Facts;
use crate::plan::types as host;
use crate::plugin::PluginInfo;
use crate::plugin::manifest::ApiVersion;
use crate::plugin::policy::{LoginAttempt, LoginDecision, PasswordFeatures, PasswordVerdict};
use crate::plugin::state::{CallState, LogLevel};

pub const VERSION: ApiVersion = ApiVersion::new(0, 1, 0);

mod planner {
    wasmtime::component::bindgen!({
        world: "planner",
        path: "../wit/since_v0.1.0",
    });
}

mod auth {
    wasmtime::component::bindgen!({
        world: "auth-policy",
        path: "../wit/since_v0.1.0",
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

fn facts_to_wit(facts: &Facts) -> wit_facts::Facts {
    wit_facts::Facts {
        block_devices: facts
            .block_devices
            .iter()
            .map(|d| wit_facts::BlockDevice {
                path: d.path.clone(),
                kname: d.kname.clone(),
                size_bytes: d.size_bytes,
                rotational: d.rotational,
                device_type: d.device_type.clone(),
                fstype: d.fstype.clone(),
                label: d.label.clone(),
                uuid: d.uuid.clone(),
                mountpoints: d.mountpoints.clone(),
                holders: d.holders.clone(),
                by_id: d.by_id.clone(),
            })
            .collect(),
        filesystems: filesystems_to_wit(&facts.filesystems),
        fresh_uuids: facts.fresh_uuids.clone(),
        now_unix_seconds: facts.now_unix_seconds,
    }
}
