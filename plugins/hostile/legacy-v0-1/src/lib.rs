//! Test plugin: a planner built against the frozen `nos:plugin@0.1.0` with its own bindings (the
//! SDK follows the latest API), so the host's 0.1.0 module keeps a real guest. It plans one read
//! step, `btrfs filesystem show` of the first mounted btrfs member in the facts, and refuses
//! when there is none.
#![deny(unsafe_code)]

#[allow(unsafe_code)]
mod bindings {
    wit_bindgen::generate!({
        world: "planner",
        path: "../../../wit/since_v0.1.0",
    });
    #[cfg(target_arch = "wasm32")]
    use super::Legacy;
    #[cfg(target_arch = "wasm32")]
    export!(Legacy);
}

use bindings::exports::nos::plugin::planning::Guest;
use bindings::nos::plugin::facts::Facts;
use bindings::nos::plugin::meta::PluginInfo;
use bindings::nos::plugin::plan::{Effect, Plan, PlanError, Request, Step};

pub struct Legacy;

impl Guest for Legacy {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "legacy-v0-1".into(),
            version: "0.1.0".into(),
            summary: "shows the first pool, on the 0.1.0 API".into(),
            input_schema: r#"{"type": "object"}"#.into(),
        }
    }

    fn make_plan(facts: Facts, _input: String) -> Result<Plan, PlanError> {
        let member = facts
            .filesystems
            .iter()
            .flat_map(|fs| fs.devices.iter())
            .next()
            .ok_or_else(|| PlanError::Refused("no btrfs pool in the facts".into()))?;
        Ok(Plan {
            steps: vec![Step {
                id: "show".into(),
                title: format!("Show the pool on {}", member.path),
                request: Request::Argv(vec![
                    "btrfs".into(),
                    "filesystem".into(),
                    "show".into(),
                    member.path.clone(),
                ]),
                effect: Effect::Read,
                rollback: None,
                confirmation: None,
            }],
            warnings: vec![],
        })
    }
}
