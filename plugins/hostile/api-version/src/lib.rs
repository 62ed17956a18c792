//! Hostile test plugin: built against `nos:plugin@0.9.0`, a version this host does not support.
#![allow(unsafe_code)]

wit_bindgen::generate!({ world: "planner", path: "wit" });

struct Future;

impl exports::nos::plugin::planning::Guest for Future {
    fn make_plan(input: String) -> Result<String, String> {
        nos::plugin::log::log("called");
        Ok(input)
    }
}

export!(Future);
