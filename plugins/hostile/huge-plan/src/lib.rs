//! Hostile test plugin: returns a plan of one million steps
#![deny(unsafe_code)]

use nos_plugin_sdk::{Facts, Plan, PlanError, Planner, PluginInfo, Step};

pub struct Hostile;

impl Planner for Hostile {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "hostile-huge-plan".into(),
            version: "0.1.0".into(),
            summary: "returns a plan of one million steps".into(),
            input_schema: "{}".into(),
        }
    }

    fn plan(facts: &Facts, input: &str) -> Result<Plan, PlanError> {
        let _ = (facts, input);
        // Reserved up front so the plan fits the 256 MiB it asks for and reaches the host.
        let mut plan = Plan {
            steps: Vec::with_capacity(1_000_000),
            warnings: Vec::new(),
        };
        for _ in 0..1_000_000 {
            plan.push(Step::read("", "", &[]));
        }
        Ok(plan)
    }
}

nos_plugin_sdk::export_planner!(Hostile);
