//! btrfs-maintenance: plan routine operations on a mounted pool: a (filtered) balance, its
//! status and cancellation, the repair of profiles after a degraded mount, a scrub (start as a
//! job, status, cancel, resume), and the usage and device reports. Pure logic, unit-tested
//! natively.
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
    /// Convert the chunks written while the pool was degraded (btrfs writes them `single`)
    /// back to the pool's profiles; `soft` leaves chunks already in the profile alone.
    RepairProfiles {
        pool: String,
        /// The profiles the pool should have; the ones the facts show by default.
        #[serde(default)]
        data_profile: Option<String>,
        #[serde(default)]
        metadata_profile: Option<String>,
    },
    ScrubStart {
        pool: String,
    },
    ScrubStatus {
        pool: String,
    },
    ScrubCancel {
        pool: String,
    },
    ScrubResume {
        pool: String,
    },
}

pub const INPUT_SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "Pool maintenance",
  "type": "object",
  "required": ["action", "pool"],
  "properties": {
    "action": {"enum": ["balance-start", "balance-status", "balance-cancel", "usage", "show", "repair-profiles", "scrub-start", "scrub-status", "scrub-cancel", "scrub-resume"]},
    "pool": {"type": "string", "description": "mount point, label or UUID of a mounted pool"},
    "usage_percent": {"type": "integer", "minimum": 0, "maximum": 100, "default": 50},
    "data_profile": {"enum": ["single", "dup", "raid0", "raid1", "raid1c3", "raid1c4", "raid10"], "description": "repair-profiles: the data profile the pool should have (default: its present one)"},
    "metadata_profile": {"enum": ["single", "dup", "raid0", "raid1", "raid1c3", "raid1c4", "raid10"], "description": "repair-profiles: the metadata profile the pool should have"}
  }
}"#;

pub struct MaintenancePlanner;

impl Planner for MaintenancePlanner {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "btrfs-maintenance".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "Balance or scrub a pool, repair its profiles after a degraded mount, report usage and devices".into(),
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
    | Input::Show { pool }
    | Input::RepairProfiles { pool, .. }
    | Input::ScrubStart { pool }
    | Input::ScrubStatus { pool }
    | Input::ScrubCancel { pool }
    | Input::ScrubResume { pool }) = input;
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
        Input::RepairProfiles {
            data_profile,
            metadata_profile,
            ..
        } => {
            let data = data_profile.as_deref().unwrap_or(&fs.data_profile);
            let metadata = metadata_profile.as_deref().unwrap_or(&fs.metadata_profile);
            nos_plugin_sdk::profile::check_both(data, metadata, fs.devices.len())
                .map_err(PlanError::Refused)?;
            let data_filter = format!("-dconvert={data},soft");
            let metadata_filter = format!("-mconvert={metadata},soft");
            plan.push(Step::state(
                "repair-profiles",
                format!(
                    "Rewrite the chunks of {mnt} that are not {data} data or {metadata} metadata (written while degraded)"
                ),
                &["btrfs", "balance", "start", &data_filter, &metadata_filter, mnt],
            ));
        }
        Input::ScrubStart { .. } => plan.push(Step::state(
            "scrub",
            format!("Scrub {mnt}: read every copy, rewrite bad ones from a good copy"),
            &["btrfs", "scrub", "start", "-B", mnt],
        )),
        Input::ScrubStatus { .. } => plan.push(Step::read(
            "scrub-status",
            format!("Show the last scrub of {mnt}"),
            &["btrfs", "scrub", "status", "-R", mnt],
        )),
        Input::ScrubCancel { .. } => plan.push(Step::state(
            "scrub-cancel",
            format!("Cancel the scrub running on {mnt} (it can be resumed)"),
            &["btrfs", "scrub", "cancel", mnt],
        )),
        Input::ScrubResume { .. } => plan.push(Step::state(
            "scrub-resume",
            format!("Resume the cancelled or interrupted scrub of {mnt}"),
            &["btrfs", "scrub", "resume", "-B", mnt],
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
            r#"{"action": "repair-profiles", "pool": "/srv/pool"}"#,
            r#"{"action": "repair-profiles", "pool": "/srv/solo", "data_profile": "raid1"}"#,
            r#"{"action": "scrub-start", "pool": "/srv/pool"}"#,
            r#"{"action": "scrub-status", "pool": "pool"}"#,
            r#"{"action": "scrub-cancel", "pool": "/srv/pool"}"#,
            r#"{"action": "scrub-resume", "pool": "/srv/pool"}"#,
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
            error: PlanError::InvalidInput("input: unknown variant `scrub`, expected one of `balance-start`, `balance-status`, `balance-cancel`, `usage`, `show`, `repair-profiles`, `scrub-start`, `scrub-status`, `scrub-cancel`, `scrub-resume` at line 1 column 18")
            repair-profiles [state] btrfs balance start -dconvert=raid1,soft -mconvert=raid1,soft /srv/pool
            error: PlanError::Refused("data profile raid1 needs at least 2 devices, got 1")
            scrub [state] btrfs scrub start -B /srv/pool
            scrub-status [read] btrfs scrub status -R /srv/pool
            scrub-cancel [state] btrfs scrub cancel /srv/pool
            scrub-resume [state] btrfs scrub resume -B /srv/pool
        "#]].assert_eq(&out);
    }
}
