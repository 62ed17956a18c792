//! shares: plan the shares of a pool. A share is a btrfs subvolume directly in a mounted pool
//! (`<pool>/<name>`), which is what its snapshots are taken of. Pure logic over the facts (the
//! pool's subvolumes), unit-tested natively.
//!
//! * `create`: an empty subvolume; refused when anything (a share, a subvolume nos did not
//!   make) is at that name already.
//! * `delete`: destructive whatever it holds, confirmed by the share's name: the allowlist cannot
//!   see whether a share is empty, so the word is always asked. Its snapshots stay (deleted by
//!   the snapshots planner, one by one or by retention); a share holding a nested subvolume is
//!   refused, because the delete would fail on it half way.
//!
//! Not here, and why: renaming a share needs a rename the agent does itself (no rule of the
//! allowlist renames a subvolume), and quotas need a size placeholder the allowlist does not
//! have yet.
#![deny(unsafe_code)]

use nos_plugin_sdk::subvolume;
use nos_plugin_sdk::{BtrfsFilesystem, Facts, Plan, PlanError, Planner, PluginInfo, Step};
use serde::Deserialize;

/// The input, tagged by `action`.
#[derive(Debug, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Input {
    Create { pool: String, name: String },
    Delete { pool: String, name: String },
}

pub const INPUT_SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "Shares of a pool",
  "type": "object",
  "required": ["action", "pool", "name"],
  "properties": {
    "action": {"enum": ["create", "delete"], "title": "Action", "description": "create an empty share; delete a share and everything in it (its snapshots stay)."},
    "pool": {"type": "string", "title": "Pool", "description": "The pool's mount point, label or UUID."},
    "name": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", "title": "Share", "description": "Letters, digits, . _ - (starting with a letter or digit)."}
  }
}"#;

pub struct SharesPlanner;

impl Planner for SharesPlanner {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "shares".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "Create or delete a share (a subvolume of a pool)".into(),
            input_schema: INPUT_SCHEMA.into(),
        }
    }

    fn plan(facts: &Facts, input: &str) -> Result<Plan, PlanError> {
        let input: Input = nos_plugin_sdk::parse_input(input)?;
        plan(facts, &input)
    }
}

nos_plugin_sdk::export_planner!(SharesPlanner);

fn refused(message: String) -> PlanError {
    PlanError::Refused(message)
}

fn pool<'a>(facts: &'a Facts, pool: &str, name: &str) -> Result<&'a BtrfsFilesystem, PlanError> {
    subvolume::check_share_name(name).map_err(PlanError::InvalidInput)?;
    facts
        .filesystem(pool)
        .ok_or_else(|| refused(format!("no mounted btrfs pool {pool}")))
}

pub fn plan(facts: &Facts, input: &Input) -> Result<Plan, PlanError> {
    let mut plan = Plan::new();
    match input {
        Input::Create {
            pool: name_of_pool,
            name,
        } => {
            let fs = pool(facts, name_of_pool, name)?;
            if let Some(there) = fs.subvolume_at(name).map_err(refused)? {
                return Err(refused(format!(
                    "{} exists already (subvolume {})",
                    fs.path_of(&there.path),
                    there.id
                )));
            }
            plan.push(Step::state(
                "create",
                format!("Create the empty share {name} in {}", fs.mountpoint),
                &["btrfs", "subvolume", "create", "--", &fs.path_of(name)],
            ));
        }
        Input::Delete {
            pool: name_of_pool,
            name,
        } => {
            let fs = pool(facts, name_of_pool, name)?;
            fs.share(name).map_err(refused)?;
            fs.no_nested_subvolume(name).map_err(refused)?;
            plan.push(Step::destructive(
                "delete",
                format!("Delete the share {name} and every file in it"),
                &["btrfs", "subvolume", "delete", "--", &fs.path_of(name)],
                name,
            ));
            let snapshots = fs.snapshots_of(name).map_err(refused)?.count();
            if snapshots > 0 {
                plan.warn(format!(
                    "its {snapshots} snapshot(s) in {} stay; delete them with the snapshots planner",
                    fs.path_of(&subvolume::snapshot_dir(name))
                ));
            }
        }
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::expect;
    use nos_plugin_sdk::testing::pool_with_subvolumes;

    fn lines(facts: &Facts, input: &str) -> String {
        match SharesPlanner::plan(facts, input) {
            Ok(plan) => plan.render_lines(),
            Err(err) => format!("error: {err:?}\n"),
        }
    }

    #[test]
    fn create_an_empty_share_never_over_anything() {
        let facts = pool_with_subvolumes(&["media", "docker/btrfs/subvolumes/x"], 1);
        expect![[r#"
            create [state] btrfs subvolume create -- /srv/tank/docs
        "#]]
        .assert_eq(&lines(
            &facts,
            r#"{"action": "create", "pool": "tank", "name": "docs"}"#,
        ));
        expect![[r#"
            error: PlanError::Refused("/srv/tank/media exists already (subvolume 256)")
        "#]]
        .assert_eq(&lines(
            &facts,
            r#"{"action": "create", "pool": "tank", "name": "media"}"#,
        ));
        expect![[r#"
            error: PlanError::InvalidInput("share name \"a/b\" must be 1 to 64 of A-Z a-z 0-9 . _ - starting with a letter or digit")
        "#]]
        .assert_eq(&lines(&facts, r#"{"action": "create", "pool": "tank", "name": "a/b"}"#));
        expect![[r#"
            error: PlanError::Refused("no mounted btrfs pool other")
        "#]]
        .assert_eq(&lines(
            &facts,
            r#"{"action": "create", "pool": "other", "name": "docs"}"#,
        ));
    }

    #[test]
    fn delete_is_destructive_by_name_and_keeps_the_snapshots() {
        let facts = pool_with_subvolumes(
            &[
                "media",
                "vms",
                "vms/disk0",
                ".snapshots",
                ".snapshots/media",
                ".snapshots/media/20261201T190000Z",
            ],
            1,
        );
        expect![[r#"
            delete [destructive] btrfs subvolume delete -- /srv/tank/media (confirm: media)
            warning: its 1 snapshot(s) in /srv/tank/.snapshots/media stay; delete them with the snapshots planner
        "#]]
        .assert_eq(&lines(&facts, r#"{"action": "delete", "pool": "tank", "name": "media"}"#));
        expect![[r#"
            error: PlanError::Refused("share vms holds the subvolume vms/disk0: nos does not delete it; move it out first")
        "#]]
        .assert_eq(&lines(&facts, r#"{"action": "delete", "pool": "tank", "name": "vms"}"#));
        expect![[r#"
            error: PlanError::Refused("pool /srv/tank has no share docs")
        "#]]
        .assert_eq(&lines(
            &facts,
            r#"{"action": "delete", "pool": "tank", "name": "docs"}"#,
        ));
    }
}
