//! The judgement of a plan: every step (and every rollback) against the allowlist, the
//! plugin's scope and the devices as the facts describe them. Pure: no IO, no clock. [`check`] is the only constructor of a
//! [`CheckedPlan`], so a plan that reaches the agent has been judged step by step.
//!
//! A step is allowed when its request matches exactly one allowlist rule, that rule is in the
//! plugin's scope, the devices it names may be used that way ([`super::devices`]), the step
//! does not understate the rule's effect, a step whose rule is
//! destructive carries a confirmation word, and its rollback (if any) is allowed on the same
//! terms. Anything else is rejected with a reason an auditor understands.

use std::collections::BTreeSet;

use nos_allowlist::{Allowlist, ManagedAction, ManagedVerdict, Verdict};

use super::types::{Effect, Plan, Request, Step};
use crate::facts::Facts;

/// The allowlist rule ids a plugin may emit, granted with its manifest. A step that matches a
/// rule outside it is rejected just like one that matches no rule.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scope(BTreeSet<String>);

impl Scope {
    pub fn new(rule_ids: impl IntoIterator<Item = String>) -> Scope {
        Scope(rule_ids.into_iter().collect())
    }

    pub fn contains(&self, rule_id: &str) -> bool {
        self.0.contains(rule_id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A plan whose every step has a verdict. Only [`check`] builds one.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedPlan {
    steps: Vec<CheckedStep>,
    warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CheckedStep {
    step: Step,
    verdict: StepVerdict,
    rollback: Option<StepVerdict>,
}

#[must_use]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepVerdict {
    Allowed {
        rule_id: String,
        /// What will run: the absolute program and canonical arguments, or the canonical
        /// managed change, as one line for people.
        canonical: String,
    },
    Rejected {
        reason: String,
    },
}

impl StepVerdict {
    pub fn is_allowed(&self) -> bool {
        matches!(self, StepVerdict::Allowed { .. })
    }
}

impl CheckedPlan {
    pub fn steps(&self) -> &[CheckedStep] {
        &self.steps
    }

    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// True when every step (rollbacks included) is allowed.
    pub fn all_allowed(&self) -> bool {
        self.steps.iter().all(|step| step.verdict.is_allowed())
    }

    pub fn n_rejected(&self) -> usize {
        self.steps
            .iter()
            .filter(|step| !step.verdict.is_allowed())
            .count()
    }
}

impl CheckedStep {
    pub fn step(&self) -> &Step {
        &self.step
    }

    /// The step's verdict; rejected also when its rollback is.
    pub fn verdict(&self) -> &StepVerdict {
        &self.verdict
    }

    pub fn rollback(&self) -> Option<&StepVerdict> {
        self.rollback.as_ref()
    }
}

/// Judge every step of `plan` against the allowlist, the plugin's scope and the devices as
/// `facts` describe them ([`super::devices::refusal`]).
pub fn check(plan: Plan, allowlist: &Allowlist, scope: &Scope, facts: &Facts) -> CheckedPlan {
    let judge = Judge {
        allowlist,
        scope,
        facts,
    };
    let steps = plan
        .steps
        .into_iter()
        .map(|step| {
            let verdict = check_request(&step.request, Some(&step), &judge);
            let rollback = step
                .rollback
                .as_ref()
                .map(|rollback| check_request(rollback, None, &judge));
            let verdict = match (&verdict, &rollback) {
                (StepVerdict::Allowed { .. }, Some(StepVerdict::Rejected { reason })) => {
                    StepVerdict::Rejected {
                        reason: format!("rollback: {reason}"),
                    }
                }
                _ => verdict,
            };
            CheckedStep {
                step,
                verdict,
                rollback,
            }
        })
        .collect();
    CheckedPlan {
        steps,
        warnings: plan.warnings,
    }
}

/// What every request of one plan is judged against.
struct Judge<'a> {
    allowlist: &'a Allowlist,
    scope: &'a Scope,
    facts: &'a Facts,
}

/// `step` is `None` for a rollback, which needs no confirmation word of its own.
fn check_request(request: &Request, step: Option<&Step>, judge: &Judge<'_>) -> StepVerdict {
    let Judge {
        allowlist,
        scope,
        facts,
    } = judge;
    let (rule_id, rule_effect, canonical) = match request {
        Request::Argv(argv) => match allowlist.check(argv) {
            Verdict::Allowed(matched) => {
                if let Some(reason) = super::devices::refusal(matched.command(), facts)
                    .or_else(|| super::subvolumes::refusal(matched.command(), facts))
                {
                    return StepVerdict::Rejected { reason };
                }
                (
                    matched.rule_id().to_owned(),
                    matched.command().effect,
                    matched.canonical_argv().join(" "),
                )
            }
            Verdict::Rejected(rejection) => {
                return StepVerdict::Rejected {
                    reason: rejection.to_string(),
                };
            }
        },
        Request::Ensure(managed) | Request::Remove(managed) => {
            let action = match request {
                Request::Remove(_) => ManagedAction::Remove,
                _ => ManagedAction::Ensure,
            };
            match allowlist
                .check_managed(action, &nos_protocol::ManagedRequest::from(managed).into())
            {
                ManagedVerdict::Allowed(matched) => (
                    matched.rule_id.clone(),
                    matched.effect,
                    format!("{} {matched}", action.as_str()),
                ),
                ManagedVerdict::Rejected(rejection) => {
                    return StepVerdict::Rejected {
                        reason: rejection.to_string(),
                    };
                }
            }
        }
    };
    if !scope.contains(&rule_id) {
        return StepVerdict::Rejected {
            reason: format!("rule {rule_id} is outside the plugin's scope"),
        };
    }
    if let Some(step) = step {
        let rule_effect = effect_of(rule_effect);
        if rank(step.effect) < rank(rule_effect) {
            return StepVerdict::Rejected {
                reason: format!(
                    "rule {rule_id} is {rule_effect} but the step claims to be {}",
                    step.effect
                ),
            };
        }
        if rule_effect == Effect::Destructive && step.confirmation.is_none() {
            return StepVerdict::Rejected {
                reason: format!(
                    "rule {rule_id} is destructive and the step has no confirmation word"
                ),
            };
        }
    }
    StepVerdict::Allowed { rule_id, canonical }
}

fn effect_of(effect: nos_allowlist::Effect) -> Effect {
    match effect {
        nos_allowlist::Effect::Read => Effect::Read,
        nos_allowlist::Effect::State => Effect::State,
        nos_allowlist::Effect::Destructive => Effect::Destructive,
    }
}

fn rank(effect: Effect) -> u8 {
    match effect {
        Effect::Read => 0,
        Effect::State => 1,
        Effect::Destructive => 2,
    }
}

#[cfg(test)]
pub(crate) mod tests;
