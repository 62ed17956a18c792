//! Hostile test plugin: a harmless planner whose manifest carries a wrong sha256
#![deny(unsafe_code)]

use nos_plugin_sdk::{Facts, Plan, PlanError, Planner, PluginInfo, Step};

pub struct Hostile;

impl Planner for Hostile {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "hostile-bad-hash".into(),
            version: "0.1.0".into(),
            summary: "a harmless planner whose manifest carries a wrong sha256".into(),
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
        Ok(plan)
    }
}

nos_plugin_sdk::export_planner!(Hostile);
