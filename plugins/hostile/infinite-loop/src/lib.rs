//! Hostile test plugin: loops forever in make-plan
#![deny(unsafe_code)]

use nos_plugin_sdk::{Facts, Plan, PlanError, Planner, PluginInfo};

pub struct Hostile;

impl Planner for Hostile {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "hostile-infinite-loop".into(),
            version: "0.1.0".into(),
            summary: "loops forever in make-plan".into(),
            input_schema: "{}".into(),
        }
    }

    fn plan(facts: &Facts, input: &str) -> Result<Plan, PlanError> {
        let _ = (facts, input);
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }
}

nos_plugin_sdk::export_planner!(Hostile);
