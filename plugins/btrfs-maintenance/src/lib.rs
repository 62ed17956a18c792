//! btrfs-maintenance: plan routine operations on a mounted pool: a (filtered) balance, its
//! status and cancellation, and the usage and device reports. Pure logic, unit-tested natively.
#![deny(unsafe_code)]

use nos_plugin_sdk::{Facts, Plan, PlanError, Planner, PluginInfo, Step};
use serde::Deserialize;

/// Default usage filter of a balance, in percent: only rewrite block groups at most this full,
/// which reclaims space without rewriting the whole pool.
pub const DEFAULT_USAGE_PERCENT: u8 = 50;

#[derive(Debug, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Input {
    BalanceStart {
        pool: String,
        /// 0-100; block groups fuller than this are left alone.
        #[serde(default)]
        usage_percent: Option<u8>,
    },
    BalanceStatus {
        pool: String,
    },
    BalanceCancel {
        pool: String,
    },
    Usage {
        pool: String,
    },
    Show {
        pool: String,
    },
}

pub const INPUT_SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "Pool maintenance",
  "type": "object",
  "required": ["action", "pool"],
  "properties": {
    "action": {"enum": ["balance-start", "balance-status", "balance-cancel", "usage", "show"]},
    "pool": {"type": "string", "description": "mount point, label or UUID of a mounted pool"},
    "usage_percent": {"type": "integer", "minimum": 0, "maximum": 100, "default": 50}
  }
}"#;

pub struct MaintenancePlanner;

impl Planner for MaintenancePlanner {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "btrfs-maintenance".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "Balance a pool, follow or cancel a balance, report usage and devices".into(),
            input_schema: INPUT_SCHEMA.into(),
        }
    }

    fn plan(facts: &Facts, input: &str) -> Result<Plan, PlanError> {
        let input: Input = nos_plugin_sdk::parse_input(input)?;
        plan(facts, &input)
    }
}

nos_plugin_sdk::export_planner!(MaintenancePlanner);

/// Plan the operation. Pure: the same facts and input always give the same plan.
pub fn plan(facts: &Facts, input: &Input) -> Result<Plan, PlanError> {
    let (Input::BalanceStart { pool, .. }
    | Input::BalanceStatus { pool }
    | Input::BalanceCancel { pool }
    | Input::Usage { pool }
    | Input::Show { pool }) = input;
    let fs = facts
        .filesystem(pool)
        .ok_or_else(|| PlanError::Refused(format!("no mounted btrfs pool {pool}")))?;
    let mnt = fs.mountpoint.as_str();
    let mut plan = Plan::new();
    match input {
        Input::BalanceStart { usage_percent, .. } => {
            let usage = usage_percent.unwrap_or(DEFAULT_USAGE_PERCENT);
            if usage > 100 {
                return Err(PlanError::InvalidInput(format!(
                    "usage_percent {usage} is above 100"
                )));
            }
            let data = format!("-dusage={usage}");
            let metadata = format!("-musage={usage}");
            plan.push(Step::state(
                "balance",
                format!("Rewrite block groups of {mnt} that are at most {usage}% full"),
                &["btrfs", "balance", "start", &data, &metadata, mnt],
            ));
            if usage == 100 {
                plan.warn("a 100% usage filter rewrites every block group; this can take hours");
            }
        }
        Input::BalanceStatus { .. } => plan.push(Step::read(
            "balance-status",
            format!("Show the balance running on {mnt}"),
            &["btrfs", "balance", "status", mnt],
        )),
        Input::BalanceCancel { .. } => plan.push(Step::state(
            "balance-cancel",
            format!("Cancel the balance running on {mnt}"),
            &["btrfs", "balance", "cancel", mnt],
        )),
        Input::Usage { .. } => plan.push(Step::read(
            "usage",
            format!("Show the space usage of {mnt}"),
            &["btrfs", "filesystem", "usage", mnt],
        )),
        Input::Show { .. } => {
            // `btrfs filesystem show` takes a device: any member names the pool.
            let Some(member) = fs.devices.first() else {
                return Err(PlanError::Refused(format!(
                    "pool {mnt} has no known devices"
                )));
            };
            plan.push(Step::read(
                "show",
                format!("Show the devices of {mnt}"),
                &["btrfs", "filesystem", "show", &member.path],
            ));
        }
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::expect;

    fn facts() -> Facts {
        nos_plugin_sdk::testing::classified_fixture(include_str!(
            "../../../host/tests/data/facts/fixture.json"
        ))
        .unwrap()
    }

    fn run(input: &str) -> String {
        match MaintenancePlanner::plan(&facts(), input) {
            Ok(plan) => plan.render_lines(),
            Err(err) => format!("error: {err:?}\n"),
        }
    }

    #[test]
    fn every_action() {
        let inputs = [
            r#"{"action": "balance-start", "pool": "/srv/pool"}"#,
            r#"{"action": "balance-start", "pool": "pool", "usage_percent": 100}"#,
            r#"{"action": "balance-status", "pool": "/srv/pool"}"#,
            r#"{"action": "balance-cancel", "pool": "0b3c1d2e-1111-4000-8000-000000000001"}"#,
            r#"{"action": "usage", "pool": "/srv/solo"}"#,
            r#"{"action": "show", "pool": "solo"}"#,
            r#"{"action": "balance-start", "pool": "/srv/pool", "usage_percent": 101}"#,
            r#"{"action": "show", "pool": "/srv/nope"}"#,
            r#"{"action": "scrub", "pool": "/srv/pool"}"#,
        ];
        let out: String = inputs.iter().map(|input| run(input)).collect();
        expect![[r#"
            balance [state] btrfs balance start -dusage=50 -musage=50 /srv/pool
            balance [state] btrfs balance start -dusage=100 -musage=100 /srv/pool
            warning: a 100% usage filter rewrites every block group; this can take hours
            balance-status [read] btrfs balance status /srv/pool
            balance-cancel [state] btrfs balance cancel /srv/pool
            usage [read] btrfs filesystem usage /srv/solo
            show [read] btrfs filesystem show /dev/sdh
            error: PlanError::InvalidInput("usage_percent 101 is above 100")
            error: PlanError::Refused("no mounted btrfs pool /srv/nope")
            error: PlanError::InvalidInput("input: unknown variant `scrub`, expected one of `balance-start`, `balance-status`, `balance-cancel`, `usage`, `show` at line 1 column 18")
        "#]].assert_eq(&out);
    }
}
