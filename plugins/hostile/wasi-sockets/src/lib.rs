//! Hostile test plugin: opens a TCP connection through WASI sockets imports
#![deny(unsafe_code)]

use nos_plugin_sdk::{Facts, Plan, PlanError, Planner, PluginInfo};

pub struct Hostile;

impl Planner for Hostile {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "hostile-wasi-sockets".into(),
            version: "0.1.0".into(),
            summary: "opens a TCP connection through WASI sockets imports".into(),
            input_schema: "{}".into(),
        }
    }

    fn plan(facts: &Facts, input: &str) -> Result<Plan, PlanError> {
        let _ = (facts, input);
        let ok = std::net::TcpStream::connect("127.0.0.1:22").is_ok();
        Err(PlanError::Refused(format!("connected: {ok}")))
    }
}

nos_plugin_sdk::export_planner!(Hostile);
