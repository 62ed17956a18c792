//! The decision of a scheduled run: may nosd apply this checked plan under this approval
//! without a human? Pure: a plan, the approved rule ids and the schedule's tag in, a
//! [`Decision`] out; no IO, no clock.
//!
//! A plan is applied only if every step is allowed by the allowlist, is of a rule the
//! approval names, is not destructive and carries no rollback; and a step of
//! [`DELETE_SNAPSHOT_RULE`] only deletes a snapshot this schedule made: its name ends in
//! `-<tag>`, the whole suffix after the last `-` being the tag. Anything else is held for an
//! admin, with every reason. A plan with no step has nothing to do.

use crate::plan::check::{CheckedPlan, CheckedStep, StepVerdict};
use crate::plan::types::{Effect, Request};

/// The one rule whose steps are judged by what they name: deleting a snapshot.
pub use crate::plan::subvolumes::DELETE_SNAPSHOT_RULE;

/// What a scheduled run does with its plan.
#[must_use]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The plan has no step: nothing to apply, nothing to hold.
    NothingToDo,
    /// Every step is within the approval: nosd applies it unattended.
    Apply,
    /// Some step is not: an admin decides; one sentence per offending step and reason.
    Hold { reasons: Vec<String> },
}

/// Decides what a run of the schedule with approved `rule_ids` and `tag` does with `plan`.
pub fn decide(plan: &CheckedPlan, rule_ids: &[String], tag: &str) -> Decision {
    if plan.steps().is_empty() {
        return Decision::NothingToDo;
    }
    let reasons: Vec<String> = plan
        .steps()
        .iter()
        .flat_map(|checked| step_reasons(checked, rule_ids, tag))
        .collect();
    if reasons.is_empty() {
        Decision::Apply
    } else {
        Decision::Hold { reasons }
    }
}

/// Why one step may not run unattended under the approval (empty: it may).
fn step_reasons(checked: &CheckedStep, rule_ids: &[String], tag: &str) -> Vec<String> {
    let step = checked.step();
    let mut reasons = Vec::new();
    match checked.verdict() {
        StepVerdict::Rejected { reason } => {
            reasons.push(format!("step {} was rejected: {reason}", step.id));
        }
        StepVerdict::Allowed { rule_id, .. } => {
            if !rule_ids.iter().any(|approved| approved == rule_id) {
                reasons.push(format!(
                    "step {} uses rule {rule_id}, which the schedule does not approve",
                    step.id
                ));
            }
            if rule_id == DELETE_SNAPSHOT_RULE && !deletes_own_snapshot(&step.request, tag) {
                reasons.push(format!(
                    "step {} deletes a snapshot this schedule did not make (its name does not end in -{tag})",
                    step.id
                ));
            }
        }
    }
    if step.effect == Effect::Destructive {
        reasons.push(format!("step {} is destructive", step.id));
    }
    if step.rollback.is_some() {
        reasons.push(format!("step {} carries a rollback", step.id));
    }
    reasons
}

/// Whether `request` (a step of [`DELETE_SNAPSHOT_RULE`], whose last token is the snapshot)
/// deletes a snapshot tagged `tag`.
fn deletes_own_snapshot(request: &Request, tag: &str) -> bool {
    match request {
        Request::Argv(argv) => argv
            .last()
            .is_some_and(|snapshot| snapshot_tagged(snapshot, tag)),
        Request::Ensure(_) | Request::Remove(_) => false,
    }
}

/// Whether the last path component of `snapshot` is `YYYYMMDDTHHMMSSZ-<tag>`, a name
/// `nos_retention` reads with exactly `tag` (so `-nos12` is not tag `nos1`'s, nor `-xnos1`).
pub fn snapshot_tagged(snapshot: &str, tag: &str) -> bool {
    let name = snapshot.rsplit('/').next().unwrap_or(snapshot);
    nos_retention::tag_of(name) == Some(tag)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::check::tests::{argv, default_allowlist, no_devices};
    use crate::plan::check::{Scope, check};
    use crate::plan::types::{Plan, Step};

    const TAG: &str = "nos1";
    const SNAPSHOTS: &str = "/srv/tank/.snapshots/home";

    fn step(id: &str, tokens: &str, effect: Effect) -> Step {
        Step {
            id: id.into(),
            title: id.into(),
            request: argv(tokens),
            effect,
            rollback: None,
            confirmation: None,
        }
    }

    fn delete(id: &str, name: &str) -> Step {
        step(
            id,
            &format!("btrfs subvolume delete -- {SNAPSHOTS}/{name}"),
            Effect::State,
        )
    }

    fn take(id: &str) -> Step {
        step(
            id,
            &format!(
                "btrfs subvolume snapshot -r -- /srv/tank/home {SNAPSHOTS}/20260101T000000Z-{TAG}"
            ),
            Effect::State,
        )
    }

    /// `steps` checked against the default allowlist with every rule in scope; the decision
    /// under `approved` rule ids, as one line.
    fn decided(steps: Vec<Step>, approved: &[&str]) -> String {
        let scope = Scope::new(default_allowlist().rule_ids().map(str::to_owned));
        let plan = check(
            Plan {
                steps,
                warnings: Vec::new(),
            },
            default_allowlist(),
            &scope,
            &no_devices(),
        );
        let approved: Vec<String> = approved.iter().map(|id| (*id).to_owned()).collect();
        match decide(&plan, &approved, TAG) {
            Decision::NothingToDo => "nothing to do".into(),
            Decision::Apply => "apply".into(),
            Decision::Hold { reasons } => format!("hold: {}", reasons.join("; ")),
        }
    }

    const BOTH: &[&str] = &["btrfs.subvolume.snapshot", DELETE_SNAPSHOT_RULE];

    #[test]
    fn a_plan_is_applied_only_within_its_approval() {
        let mut with_rollback = take("take");
        with_rollback.rollback = Some(argv(&format!(
            "btrfs subvolume delete -- {SNAPSHOTS}/20260101T000000Z-{TAG}"
        )));
        let cases = [
            ("empty plan", decided(Vec::new(), BOTH)),
            (
                "take and prune own",
                decided(
                    vec![take("take"), delete("prune", "20250101T000000Z-nos1")],
                    BOTH,
                ),
            ),
            (
                "other schedule's snapshot",
                decided(vec![delete("prune", "20250101T000000Z-nos2")], BOTH),
            ),
            (
                "untagged snapshot",
                decided(vec![delete("prune", "20250101T000000Z")], BOTH),
            ),
            (
                "longer tag nos12",
                decided(vec![delete("prune", "20250101T000000Z-nos12")], BOTH),
            ),
            (
                "tag as a suffix of another",
                decided(vec![delete("prune", "20250101T000000Z-xnos1")], BOTH),
            ),
            (
                "tag as a prefix of another",
                decided(vec![delete("prune", "20250101T000000Z-nos1x")], BOTH),
            ),
            (
                "rule not approved",
                decided(vec![take("take")], &[DELETE_SNAPSHOT_RULE]),
            ),
            (
                "delete not approved",
                decided(
                    vec![delete("prune", "20250101T000000Z-nos1")],
                    &["btrfs.subvolume.snapshot"],
                ),
            ),
            ("rollback", decided(vec![with_rollback], BOTH)),
            (
                "destructive",
                decided(
                    vec![Step {
                        confirmation: Some("home".into()),
                        ..step(
                            "drop",
                            "btrfs subvolume delete -- /srv/tank/home",
                            Effect::Destructive,
                        )
                    }],
                    &["btrfs.subvolume.delete.share"],
                ),
            ),
            (
                "rejected step",
                decided(vec![step("sh", "sh -c true", Effect::State)], BOTH),
            ),
        ];
        let text: Vec<String> = cases
            .iter()
            .map(|(name, decided)| format!("{name}: {decided}"))
            .collect();
        expect_test::expect![[r#"
            empty plan: nothing to do
            take and prune own: apply
            other schedule's snapshot: hold: step prune deletes a snapshot this schedule did not make (its name does not end in -nos1)
            untagged snapshot: hold: step prune deletes a snapshot this schedule did not make (its name does not end in -nos1)
            longer tag nos12: hold: step prune deletes a snapshot this schedule did not make (its name does not end in -nos1)
            tag as a suffix of another: hold: step prune deletes a snapshot this schedule did not make (its name does not end in -nos1)
            tag as a prefix of another: hold: step prune deletes a snapshot this schedule did not make (its name does not end in -nos1)
            rule not approved: hold: step take uses rule btrfs.subvolume.snapshot, which the schedule does not approve
            delete not approved: hold: step prune uses rule btrfs.subvolume.delete.snapshot, which the schedule does not approve
            rollback: hold: step take carries a rollback
            destructive: hold: step drop is destructive
            rejected step: hold: step sh was rejected: token 0: `sh` is not an allowed program (give a binary's name or its exact configured path)"#]].assert_eq(&text.join("\n"));
    }

    #[test]
    fn a_snapshot_is_this_schedules_only_by_its_whole_tag() {
        let cases = [
            ("/p/.snapshots/s/20260102T030405Z-nos1", true),
            ("20260102T030405Z-nos1", true),
            ("/p/.snapshots/s/20260102T030405Z-nos12", false),
            ("/p/.snapshots/s/20260102T030405Z-anos1", false),
            ("/p/.snapshots/s/20260102T030405Z", false),
            ("/p/.snapshots/s/20260102T030405Z-", false),
            ("/p/.snapshots/s/2026010T030405Z-nos1", false),
            ("/p/.snapshots/s/20260102T030405Z-nos1-nos1", false),
            ("/p/.snapshots/s/-nos1", false),
            ("/p/.snapshots/s/20260102T030405Z-nos1/", false),
        ];
        for (snapshot, tagged) in cases {
            assert_eq!(snapshot_tagged(snapshot, "nos1"), tagged, "{snapshot}");
        }
        // An empty or malformed tag matches nothing.
        assert!(!snapshot_tagged("/p/.snapshots/s/20260102T030405Z-", ""));
        assert!(!snapshot_tagged(
            "/p/.snapshots/s/20260102T030405Z-NOS1",
            "NOS1"
        ));
    }
}
