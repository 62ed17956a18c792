//! Hostile test plugin: allocates and touches 1 GiB, past any memory limit
#![deny(unsafe_code)]

use nos_plugin_sdk::{Facts, Plan, PlanError, Planner, PluginInfo};

pub struct Hostile;

impl Planner for Hostile {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "hostile-memory-hog".into(),
            version: "0.1.0".into(),
            summary: "allocates and touches 1 GiB, past any memory limit".into(),
            input_schema: "{}".into(),
        }
    }

    fn plan(facts: &Facts, input: &str) -> Result<Plan, PlanError> {
        let _ = (facts, input);
        let mut hog: Vec<u8> = Vec::new();
        for _ in 0..1024 {
            hog.extend(std::iter::repeat_n(1u8, 1 << 20));
        }
        Err(PlanError::Refused(format!("unreachable: {}", hog.len())))
    }
}

nos_plugin_sdk::export_planner!(Hostile);
