//! Hostile test plugin: recurses until the wasm stack overflows
#![deny(unsafe_code)]

use nos_plugin_sdk::{Facts, Plan, PlanError, Planner, PluginInfo};

pub struct Hostile;

impl Planner for Hostile {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "hostile-stack-overflow".into(),
            version: "0.1.0".into(),
            summary: "recurses until the wasm stack overflows".into(),
            input_schema: "{}".into(),
        }
    }

    fn plan(facts: &Facts, input: &str) -> Result<Plan, PlanError> {
        let _ = (facts, input);
        Err(PlanError::Refused(format!(
            "depth {}",
            recurse(std::hint::black_box(1))
        )))
    }
}

/// Unbounded recursion whose frames live on the wasm stack (no address-taken locals, so
/// nothing goes to the shadow stack in linear memory); `black_box` keeps LLVM from turning it
/// into a loop.
fn recurse(depth: u64) -> u64 {
    if std::hint::black_box(depth) == 0 {
        return 0;
    }
    std::hint::black_box(recurse(std::hint::black_box(depth + 1))) ^ depth
}

nos_plugin_sdk::export_planner!(Hostile);
