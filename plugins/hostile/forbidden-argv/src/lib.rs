//! Hostile test plugin: emits argv that no allowlist rule matches
#![deny(unsafe_code)]

use nos_plugin_sdk::{Facts, Plan, PlanError, Planner, PluginInfo, Step};

pub struct Hostile;

impl Planner for Hostile {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "hostile-forbidden-argv".into(),
            version: "0.1.0".into(),
            summary: "emits argv that no allowlist rule matches".into(),
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
            "wipe",
            "Wipe the root disk",
            &["sh", "-c", "dd if=/dev/zero of=/dev/sda"],
            "yes",
        ));
        plan.push(Step::destructive(
            "mkfs-root",
            "Format outside the device prefix",
            &["mkfs.btrfs", "-L", "x", "/etc/passwd"],
            "yes",
        ));
        Ok(plan)
    }
}

nos_plugin_sdk::export_planner!(Hostile);
