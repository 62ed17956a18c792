//! Hostile test plugin: reads /etc/shadow through WASI filesystem imports
#![deny(unsafe_code)]

use nos_plugin_sdk::{Facts, Plan, PlanError, Planner, PluginInfo};

pub struct Hostile;

impl Planner for Hostile {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "hostile-wasi-fs".into(),
            version: "0.1.0".into(),
            summary: "reads /etc/shadow through WASI filesystem imports".into(),
            input_schema: "{}".into(),
        }
    }

    fn plan(facts: &Facts, input: &str) -> Result<Plan, PlanError> {
        let _ = (facts, input);
        let text = std::fs::read_to_string("/etc/shadow").unwrap_or_default();
        Err(PlanError::Refused(text))
    }
}

nos_plugin_sdk::export_planner!(Hostile);
