//! The canonical form of a plan: what its sha256 covers, and the steps as the API shows them
//! (so the hash a reviewer sees covers exactly the steps shown).
//!
//! Plain serde data built from a [`CheckedPlan`]; fields are declared in alphabetical order
//! because the form was first defined as sorted JSON maps, and a plan's sha256 must not change
//! with a refactor (a test holds it to that definition). Pure: no IO.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::plan::check::{CheckedPlan, CheckedStep, StepVerdict};
use crate::plan::types::Request;

/// A whole plan: the planner, its input and every judged step.
#[derive(Debug, Serialize)]
pub struct CanonicalPlan<'a> {
    pub input: &'a str,
    pub plugin: &'a str,
    pub steps: Vec<StepForm>,
    pub warnings: &'a [String],
}

/// One step with its verdict (and its rollback's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepForm {
    /// The word a human types before a destructive step runs.
    pub confirmation: Option<String>,
    pub effect: String,
    pub id: String,
    pub request: RequestForm,
    pub rollback: Option<RequestForm>,
    pub rollback_verdict: Option<VerdictForm>,
    pub title: String,
    pub verdict: VerdictForm,
}

/// What a step asks the agent: `{"argv": [...]}` or `{"managed": "<the change in words>"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestForm {
    Argv(Vec<String>),
    Managed(String),
}

/// The allowlist's verdict on a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum VerdictForm {
    Allowed {
        /// Always `true`.
        allowed: bool,
        /// What will run, as one line for people.
        canonical: String,
        rule_id: String,
    },
    Rejected {
        /// Always `false`.
        allowed: bool,
        reason: String,
    },
}

impl From<&Request> for RequestForm {
    fn from(request: &Request) -> RequestForm {
        match request {
            Request::Argv(argv) => RequestForm::Argv(argv.clone()),
            Request::Ensure(_) | Request::Remove(_) => RequestForm::Managed(request.to_string()),
        }
    }
}

impl From<&StepVerdict> for VerdictForm {
    fn from(verdict: &StepVerdict) -> VerdictForm {
        match verdict {
            StepVerdict::Allowed { rule_id, canonical } => VerdictForm::Allowed {
                allowed: true,
                canonical: canonical.clone(),
                rule_id: rule_id.clone(),
            },
            StepVerdict::Rejected { reason } => VerdictForm::Rejected {
                allowed: false,
                reason: reason.clone(),
            },
        }
    }
}

impl From<&CheckedStep> for StepForm {
    fn from(checked: &CheckedStep) -> StepForm {
        let step = checked.step();
        StepForm {
            confirmation: step.confirmation.clone(),
            effect: step.effect.to_string(),
            id: step.id.clone(),
            request: RequestForm::from(&step.request),
            rollback: step.rollback.as_ref().map(RequestForm::from),
            rollback_verdict: checked.rollback().map(VerdictForm::from),
            title: step.title.clone(),
            verdict: VerdictForm::from(checked.verdict()),
        }
    }
}

/// Every step of `plan` in its canonical form.
pub fn steps(plan: &CheckedPlan) -> Vec<StepForm> {
    plan.steps().iter().map(StepForm::from).collect()
}

/// The sha256 (hex) of the plan's canonical JSON.
pub fn sha256(plugin: &str, input: &str, plan: &CheckedPlan) -> String {
    let canonical = CanonicalPlan {
        input,
        plugin,
        steps: steps(plan),
        warnings: plan.warnings(),
    };
    hex::encode(Sha256::digest(
        serde_json::to_vec(&canonical).unwrap_or_default(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::types::{Effect, Plan, Step};

    /// The form's first definition, as sorted JSON maps: the hash must stay this one.
    mod first_definition {
        use super::*;
        use crate::plan::types::Request;

        /// The canonical form of a plan (what its sha256 covers): plugin, input, and every step with
        /// its verdict.
        pub(super) fn canonical_json(
            plugin: &str,
            input: &str,
            plan: &CheckedPlan,
        ) -> serde_json::Value {
            serde_json::json!({
                "plugin": plugin,
                "input": input,
                "steps": plan.steps().iter().map(step_json).collect::<Vec<_>>(),
                "warnings": plan.warnings(),
            })
        }

        pub(super) fn plan_sha256(canonical: &serde_json::Value) -> String {
            hex::encode(Sha256::digest(
                serde_json::to_vec(canonical).unwrap_or_default(),
            ))
        }

        fn request_json(request: &Request) -> serde_json::Value {
            match request {
                Request::Argv(argv) => serde_json::json!({"argv": argv}),
                Request::Ensure(_) | Request::Remove(_) => {
                    serde_json::json!({"managed": request.to_string()})
                }
            }
        }

        fn verdict_json(verdict: &StepVerdict) -> serde_json::Value {
            match verdict {
                StepVerdict::Allowed { rule_id, canonical } => {
                    serde_json::json!({"allowed": true, "rule_id": rule_id, "canonical": canonical})
                }
                StepVerdict::Rejected { reason } => {
                    serde_json::json!({"allowed": false, "reason": reason})
                }
            }
        }

        /// One step as the API shows it.
        pub(super) fn step_json(checked: &CheckedStep) -> serde_json::Value {
            let step = checked.step();
            serde_json::json!({
                "id": step.id,
                "title": step.title,
                "effect": step.effect.to_string(),
                "request": request_json(&step.request),
                "rollback": step.rollback.as_ref().map(request_json),
                "confirmation": step.confirmation,
                "verdict": verdict_json(checked.verdict()),
                "rollback_verdict": checked.rollback().map(verdict_json),
            })
        }
    }

    #[test]
    fn the_sha256_is_the_first_definitions() {
        let allowlist = nos_allowlist::Allowlist::load(&[nos_allowlist::Source {
            name: "allowlist.toml".into(),
            text: include_str!("../../../allowlist.toml").to_owned(),
        }])
        .unwrap();
        let facts = crate::facts::Facts::from_file_json(include_bytes!(
            "../../tests/data/facts/fixture.json"
        ))
        .unwrap();
        let argv = |words: &[&str]| Request::Argv(words.iter().map(|w| w.to_string()).collect());
        let plan = Plan {
            steps: vec![
                Step {
                    id: "mkfs".into(),
                    title: "make the pool".into(),
                    request: argv(&[
                        "mkfs.btrfs",
                        "-d",
                        "raid1",
                        "-m",
                        "raid1",
                        "--",
                        "/dev/sdb",
                        "/dev/sdc",
                    ]),
                    effect: Effect::Destructive,
                    rollback: Some(argv(&["wipefs", "-a", "/dev/sdb"])),
                    confirmation: Some("tank".into()),
                },
                Step {
                    id: "nope".into(),
                    title: "not allowed".into(),
                    request: argv(&["rm", "-rf", "/"]),
                    effect: Effect::State,
                    rollback: None,
                    confirmation: None,
                },
            ],
            warnings: vec!["a warning".into()],
        };
        let checked = crate::plan::check::check(
            plan,
            &allowlist,
            &crate::plan::check::Scope::new(["mkfs.btrfs".to_string()]),
            &facts,
        );
        let input = r#"{"label":"tank"}"#;
        let first = first_definition::plan_sha256(&first_definition::canonical_json(
            "btrfs-pool",
            input,
            &checked,
        ));
        assert_eq!(sha256("btrfs-pool", input, &checked), first);
        let shown: Vec<serde_json::Value> = checked
            .steps()
            .iter()
            .map(first_definition::step_json)
            .collect();
        assert_eq!(
            serde_json::to_value(steps(&checked)).unwrap(),
            serde_json::Value::from(shown)
        );
    }
}
