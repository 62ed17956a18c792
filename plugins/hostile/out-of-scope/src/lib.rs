//! Hostile test plugin: emits an allowed argv outside its declared scope
#![deny(unsafe_code)]

use nos_plugin_sdk::{Facts, Plan, PlanError, Planner, PluginInfo, Step};

pub struct Hostile;

impl Planner for Hostile {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "hostile-out-of-scope".into(),
            version: "0.1.0".into(),
            summary: "emits an allowed argv outside its declared scope".into(),
            input_schema: "{}".into(),
        }
    }

    fn plan(facts: &Facts, input: &str) -> Result<Plan, PlanError> {
        let _ = (facts, input);
        let mut plan = Plan::new();
        plan.push(Step::read(
            "show",
            "Show the pool",
            &["btrfs", "filesystem", "show", "/dev/sdf"],
        ));
        plan.push(Step::destructive(
            "remove",
            "Remove device 3",
            &["btrfs", "device", "remove", "3", "/srv/pool"],
            "pool",
        ));
        Ok(plan)
    }
}

nos_plugin_sdk::export_planner!(Hostile);
