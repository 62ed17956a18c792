//! Hostile test plugin: panics with a message that carries terminal escapes and a forged line
#![deny(unsafe_code)]

use nos_plugin_sdk::{Facts, Plan, PlanError, Planner, PluginInfo};

pub struct Hostile;

impl Planner for Hostile {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "hostile-panic".into(),
            version: "0.1.0".into(),
            summary: "panics with a message".into(),
            input_schema: "{}".into(),
        }
    }

    fn plan(facts: &Facts, input: &str) -> Result<Plan, PlanError> {
        let _ = (facts, input);
        let devices = facts.block_devices.len();
        // Terminal escapes and a forged line: whoever shows this text must not let it draw.
        panic!("planner bug: cannot handle {devices} devices\u{1b}[2K\r\n0 rejected\u{7}")
    }
}

nos_plugin_sdk::export_planner!(Hostile);
