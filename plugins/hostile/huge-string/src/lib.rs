//! Hostile test plugin: returns a step whose title is 100 MiB
#![deny(unsafe_code)]

use nos_plugin_sdk::{Facts, Plan, PlanError, Planner, PluginInfo, Step};

pub struct Hostile;

impl Planner for Hostile {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "hostile-huge-string".into(),
            version: "0.1.0".into(),
            // Also too long for describe(): the host bounds what a plugin says about itself.
            summary: "returns a step whose title is 100 MiB ".repeat(100),
            input_schema: "{}".into(),
        }
    }

    fn plan(facts: &Facts, input: &str) -> Result<Plan, PlanError> {
        let _ = (facts, input);
        let mut plan = Plan::new();
        let title = "A".repeat(100 << 20);
        plan.push(Step::read(
            "show",
            title,
            &["btrfs", "filesystem", "show", "/dev/sdf"],
        ));
        Ok(plan)
    }
}

nos_plugin_sdk::export_planner!(Hostile);
