//! snapshots: plan read-only snapshots of a share, their retention, their deletion and restores.
//! Pure logic over the facts (the pool's subvolumes, nos's locks, the host's `now`), unit-tested
//! natively; retention is `nos-retention`'s GFS decision, the same code nosd's tests use.
//!
//! A snapshot of share `S` in the pool mounted at `P` is `P/.snapshots/S/<YYYYMMDDTHHMMSSZ[-tag]>`,
//! named from the host's clock (UTC), read-only from the moment it is made (`snapshot -r`).
//!
//! * `take`: the containers `.snapshots` and `.snapshots/S` when missing, then the snapshot.
//!   With `keep`, the share's snapshots (only those with `tag`, when one is given) are pruned in
//!   the same plan, the new one counted: how a schedule runs.
//! * `prune`: deletes what the GFS decision does not keep. Locked snapshots are never deleted and
//!   never fill a bucket; names nos did not make are left alone (and named in a warning); the
//!   newest is always kept.
//! * `delete`: one snapshot, refused when it is locked.
//! * `restore`: a writable copy of a snapshot as a new share beside the live one (by default
//!   `S-<snapshot>`); the live share and the snapshot are untouched.
//! * `replace-live`: the live share replaced by a snapshot. Destructive, confirmed by the share's
//!   name; the live state is snapshotted first (tag `replaced`), so nothing is lost.
//!
//! Every step is state-changing but the live share's deletion, and none carries a rollback: a
//! failed step leaves what was done (an extra container or snapshot), never less data.
#![deny(unsafe_code)]

use nos_plugin_sdk::subvolume::{self, SNAPSHOTS_DIR};
use nos_plugin_sdk::{
    BtrfsFilesystem, Facts, Plan, PlanError, Planner, PluginInfo, Step, Subvolume,
};
use nos_retention::{Policy, Timestamp};
use serde::Deserialize;

/// The tag of the snapshot `replace-live` takes of the live state first.
pub const REPLACED_TAG: &str = "replaced";

/// Most periods of any kind a policy may keep: ten years of hours.
pub const MAX_KEEP: u32 = 87_600;

/// The input, tagged by `action`.
#[derive(Debug, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Input {
    Take {
        pool: String,
        share: String,
        #[serde(default)]
        tag: Option<String>,
        #[serde(default)]
        keep: Option<Keep>,
    },
    Prune {
        pool: String,
        share: String,
        #[serde(default)]
        tag: Option<String>,
        keep: Keep,
    },
    Delete {
        pool: String,
        share: String,
        name: String,
    },
    Restore {
        pool: String,
        share: String,
        name: String,
        #[serde(default)]
        into: Option<String>,
    },
    ReplaceLive {
        pool: String,
        share: String,
        name: String,
    },
}

/// How many periods of each kind keep a snapshot (0 when not given), and the cap on the total.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keep {
    #[serde(default)]
    pub hourly: u32,
    #[serde(default)]
    pub daily: u32,
    #[serde(default)]
    pub weekly: u32,
    #[serde(default)]
    pub monthly: u32,
    #[serde(default)]
    pub yearly: u32,
    #[serde(default = "default_max_total")]
    pub max_total: u32,
}

fn default_max_total() -> u32 {
    nos_retention::DEFAULT_MAX_TOTAL
}

impl Keep {
    fn policy(&self) -> Result<Policy, PlanError> {
        let counts = [
            ("hourly", self.hourly),
            ("daily", self.daily),
            ("weekly", self.weekly),
            ("monthly", self.monthly),
            ("yearly", self.yearly),
            ("max_total", self.max_total),
        ];
        if let Some((what, count)) = counts.iter().find(|(_, count)| *count > MAX_KEEP) {
            return Err(invalid(format!(
                "keep.{what} is {count}, more than {MAX_KEEP}"
            )));
        }
        Ok(Policy {
            hourly: self.hourly,
            daily: self.daily,
            weekly: self.weekly,
            monthly: self.monthly,
            yearly: self.yearly,
            max_total: self.max_total,
        })
    }
}

pub const INPUT_SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "Snapshots of a share",
  "type": "object",
  "required": ["action", "pool", "share"],
  "properties": {
    "action": {"enum": ["take", "prune", "delete", "restore", "replace-live"], "title": "Action", "description": "take a read-only snapshot now; prune by retention; delete one; restore one into a new share; replace the live share by one (destructive, the live state is snapshotted first)."},
    "pool": {"type": "string", "title": "Pool", "description": "The pool's mount point, label or UUID."},
    "share": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", "title": "Share"},
    "name": {"type": "string", "pattern": "^[0-9]{8}T[0-9]{6}Z(-[a-z0-9]{1,32})?$", "title": "Snapshot", "description": "The snapshot's name, e.g. 20261202T190000Z."},
    "into": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", "title": "Restore into", "description": "The new share a restore makes; <share>-<snapshot> when not given."},
    "tag": {"type": "string", "pattern": "^[a-z0-9]{1,32}$", "title": "Tag", "description": "Added to the snapshot's name; with keep, only snapshots with this tag are pruned."},
    "keep": {
      "type": "object",
      "title": "Keep",
      "description": "Retention: the newest snapshot of each of the last N hours, days, weeks, months and years (0 when not given), at most max_total (default 100). Locked snapshots are always kept.",
      "properties": {
        "hourly": {"type": "integer", "minimum": 0, "maximum": 87600},
        "daily": {"type": "integer", "minimum": 0, "maximum": 87600},
        "weekly": {"type": "integer", "minimum": 0, "maximum": 87600},
        "monthly": {"type": "integer", "minimum": 0, "maximum": 87600},
        "yearly": {"type": "integer", "minimum": 0, "maximum": 87600},
        "max_total": {"type": "integer", "minimum": 0, "maximum": 87600}
      }
    }
  }
}"#;

pub struct SnapshotsPlanner;

impl Planner for SnapshotsPlanner {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "snapshots".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "Take, prune, delete and restore read-only snapshots of a share".into(),
            input_schema: INPUT_SCHEMA.into(),
        }
    }

    fn plan(facts: &Facts, input: &str) -> Result<Plan, PlanError> {
        let input: Input = nos_plugin_sdk::parse_input(input)?;
        plan(facts, &input)
    }
}

nos_plugin_sdk::export_planner!(SnapshotsPlanner);

fn refused(message: String) -> PlanError {
    PlanError::Refused(message)
}

fn invalid(message: String) -> PlanError {
    PlanError::InvalidInput(message)
}

/// The mounted pool and its share, both checked.
fn share_of<'a>(
    facts: &'a Facts,
    pool: &str,
    share: &str,
) -> Result<&'a BtrfsFilesystem, PlanError> {
    subvolume::check_share_name(share).map_err(invalid)?;
    let fs = facts
        .filesystem(pool)
        .ok_or_else(|| refused(format!("no mounted btrfs pool {pool}")))?;
    fs.share(share).map_err(refused)?;
    Ok(fs)
}

fn check_tag(tag: Option<&str>) -> Result<(), PlanError> {
    if tag.is_none_or(nos_retention::is_tag) {
        Ok(())
    } else {
        Err(invalid(format!(
            "tag {tag:?} must be 1 to {} of a-z 0-9",
            nos_retention::MAX_TAG_LEN
        )))
    }
}

fn check_name(name: &str) -> Result<(), PlanError> {
    nos_retention::parse_name(name)
        .map(|_| ())
        .map_err(|err| invalid(err.to_string()))
}

pub fn plan(facts: &Facts, input: &Input) -> Result<Plan, PlanError> {
    let now = Timestamp(i64::try_from(facts.now_unix_seconds).unwrap_or(i64::MAX));
    match input {
        Input::Take {
            pool,
            share,
            tag,
            keep,
        } => {
            check_tag(tag.as_deref())?;
            let fs = share_of(facts, pool, share)?;
            let mut plan = Plan::new();
            let name = take(&mut plan, fs, share, now, tag.as_deref())?;
            if let Some(keep) = keep {
                prune(&mut plan, fs, share, now, tag.as_deref(), keep, Some(&name))?;
            }
            Ok(plan)
        }
        Input::Prune {
            pool,
            share,
            tag,
            keep,
        } => {
            check_tag(tag.as_deref())?;
            let fs = share_of(facts, pool, share)?;
            let mut plan = Plan::new();
            prune(&mut plan, fs, share, now, tag.as_deref(), keep, None)?;
            Ok(plan)
        }
        Input::Delete { pool, share, name } => {
            check_name(name)?;
            let fs = share_of(facts, pool, share)?;
            let snapshot = existing_snapshot(fs, share, name)?;
            if snapshot.locked {
                return Err(refused(format!(
                    "snapshot {name} of {share} is locked: unlock it first"
                )));
            }
            let mut plan = Plan::new();
            plan.push(delete_step("delete", fs, &snapshot.path));
            Ok(plan)
        }
        Input::Restore {
            pool,
            share,
            name,
            into,
        } => {
            check_name(name)?;
            let fs = share_of(facts, pool, share)?;
            let snapshot = fs.path_of(&existing_snapshot(fs, share, name)?.path);
            let into = into.clone().unwrap_or_else(|| format!("{share}-{name}"));
            subvolume::check_share_name(&into).map_err(invalid)?;
            if let Some(there) = fs.subvolume_at(&into).map_err(refused)? {
                return Err(refused(format!(
                    "{} exists already (subvolume {}): restore into another name",
                    fs.path_of(&there.path),
                    there.id
                )));
            }
            let mut plan = Plan::new();
            plan.push(Step::state(
                "restore",
                format!("Restore snapshot {name} of {share} as the new share {into}"),
                &[
                    "btrfs",
                    "subvolume",
                    "snapshot",
                    "--",
                    &snapshot,
                    &fs.path_of(&into),
                ],
            ));
            plan.warn(format!(
                "{share} is not changed; {into} is a writable copy of {share} as it was at {name}"
            ));
            Ok(plan)
        }
        Input::ReplaceLive { pool, share, name } => {
            check_name(name)?;
            let fs = share_of(facts, pool, share)?;
            let snapshot = fs.path_of(&existing_snapshot(fs, share, name)?.path);
            fs.no_nested_subvolume(share).map_err(refused)?;
            let mut plan = Plan::new();
            let kept = take(&mut plan, fs, share, now, Some(REPLACED_TAG))?;
            if &kept == name {
                return Err(refused(format!(
                    "snapshot {name} is the one replace-live takes of the live state now"
                )));
            }
            let live = fs.path_of(share);
            plan.push(Step::destructive(
                "delete-live",
                format!("Delete the live share {share} (its state is kept in snapshot {kept})"),
                &["btrfs", "subvolume", "delete", "--", &live],
                share,
            ));
            plan.push(Step::state(
                "restore",
                format!("Restore snapshot {name} as the share {share}"),
                &["btrfs", "subvolume", "snapshot", "--", &snapshot, &live],
            ));
            plan.warn(format!(
                "{share} becomes what it was at {name}; its state now is kept as snapshot {kept}"
            ));
            Ok(plan)
        }
    }
}

/// The snapshot `name` of `share`; refused when the share has no such snapshot.
fn existing_snapshot<'a>(
    fs: &'a BtrfsFilesystem,
    share: &str,
    name: &str,
) -> Result<&'a Subvolume, PlanError> {
    let relative = subvolume::snapshot_path(share, name);
    fs.snapshots_of(share)
        .map_err(refused)?
        .find(|s| s.path == relative)
        .ok_or_else(|| refused(format!("share {share} has no snapshot {name}")))
}

/// Pushes the steps that take a snapshot of `share` now (the containers first when missing);
/// returns its name.
fn take(
    plan: &mut Plan,
    fs: &BtrfsFilesystem,
    share: &str,
    now: Timestamp,
    tag: Option<&str>,
) -> Result<String, PlanError> {
    if now.0 <= 0 {
        return Err(refused(
            "the host gave no time to name the snapshot by".into(),
        ));
    }
    let name = nos_retention::format_name(now, tag);
    let relative = subvolume::snapshot_path(share, &name);
    if fs.subvolume_at(&relative).map_err(refused)?.is_some() {
        return Err(refused(format!(
            "snapshot {name} of {share} exists already (one a second at most)"
        )));
    }
    for (id, dir) in [
        ("snapshots-dir", SNAPSHOTS_DIR.to_owned()),
        ("share-snapshots-dir", subvolume::snapshot_dir(share)),
    ] {
        if fs.subvolume_at(&dir).map_err(refused)?.is_none() {
            plan.push(Step::state(
                id,
                format!("Create the snapshot container {dir}"),
                &["btrfs", "subvolume", "create", "--", &fs.path_of(&dir)],
            ));
        }
    }
    plan.push(Step::state(
        "snapshot",
        format!("Take the read-only snapshot {name} of {share}"),
        &[
            "btrfs",
            "subvolume",
            "snapshot",
            "-r",
            "--",
            &fs.path_of(share),
            &fs.path_of(&relative),
        ],
    ));
    Ok(name)
}

/// Pushes a delete step for each snapshot of `share` (with `tag`, when given) that the policy
/// does not keep; `taken` is a snapshot this plan takes first, counted as the newest.
fn prune(
    plan: &mut Plan,
    fs: &BtrfsFilesystem,
    share: &str,
    now: Timestamp,
    tag: Option<&str>,
    keep: &Keep,
    taken: Option<&str>,
) -> Result<(), PlanError> {
    let policy = keep.policy()?;
    let mut candidates = Vec::new();
    let mut foreign = Vec::new();
    for snapshot in fs.snapshots_of(share).map_err(refused)? {
        let name = snapshot.name();
        if nos_retention::parse_name(name).is_err() {
            foreign.push(name.to_owned());
        } else if tag.is_none() || nos_retention::tag_of(name) == tag {
            candidates.push(nos_retention::Snapshot {
                name: name.to_owned(),
                locked: snapshot.locked,
            });
        }
    }
    if let Some(taken) = taken {
        candidates.push(nos_retention::Snapshot {
            name: taken.to_owned(),
            locked: false,
        });
    }
    let decision =
        nos_retention::decide(&policy, now, &candidates).map_err(|err| refused(err.to_string()))?;
    for (idx, name) in decision.delete.iter().enumerate() {
        let relative = subvolume::snapshot_path(share, name);
        plan.push(delete_step(&format!("prune-{idx}"), fs, &relative));
    }
    if !foreign.is_empty() {
        plan.warn(format!(
            "left alone, not named by nos: {}",
            foreign.join(", ")
        ));
    }
    Ok(())
}

fn delete_step(id: &str, fs: &BtrfsFilesystem, relative: &str) -> Step {
    Step::state(
        id,
        format!("Delete the snapshot {relative}"),
        &["btrfs", "subvolume", "delete", "--", &fs.path_of(relative)],
    )
}

#[cfg(test)]
mod tests;
