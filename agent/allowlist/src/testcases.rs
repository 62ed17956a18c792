//! `nosctl allowlist test FILE`: a table of accept/reject cases run against an allowlist.
//!
//! ```toml
//! [[case]]
//! argv = ["btrfs", "device", "add", "/dev/sdb", "/srv/pool"]
//! expect = "allow"                   # or "reject"
//! rule = "btrfs.device.add"          # allow: the rule that must match
//! canonical = ["/usr/bin/btrfs", "device", "add", "--", "/dev/sdb", "/srv/pool"]
//! in_use_checked = ["/dev/sdb"]     # allow: exactly the arguments refused when in use
//!
//! [[case]]
//! argv = ["btrfs", "device", "add", "/dev/shm/x", "/srv/pool"]
//! expect = "reject"
//! token = 3                          # reject: the token index that must fail
//! reason = "not an allowed device"   # reject: a phrase the reason must contain
//! ```
//!
//! Pure: takes the file's text; the caller reads it.

use serde::Deserialize;

use super::{Allowlist, ExecCheck, Verdict};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    case: Vec<Case>,
}

#[derive(Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub argv: Vec<String>,
    pub expect: Expect,
    pub rule: Option<String>,
    pub canonical: Option<Vec<String>>,
    /// The rendered arguments the agent refuses when in use (`ExecCheck::NotInUse`), in order.
    pub in_use_checked: Option<Vec<String>>,
    pub token: Option<usize>,
    pub reason: Option<String>,
}

#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    Allow,
    Reject,
}

/// One case's outcome: `None` when it passed, else what differed.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub case: Case,
    pub failure: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("test file: {0}")]
pub struct CaseFileError(String);

pub fn parse_cases(text: &str) -> Result<Vec<Case>, CaseFileError> {
    let file: CaseFile = toml::from_str(text).map_err(|error| CaseFileError(error.to_string()))?;
    Ok(file.case)
}

pub fn run_cases(allowlist: &Allowlist, cases: &[Case]) -> Vec<Outcome> {
    cases
        .iter()
        .map(|case| Outcome {
            case: case.clone(),
            failure: run_case(allowlist, case),
        })
        .collect()
}

fn run_case(allowlist: &Allowlist, case: &Case) -> Option<String> {
    match (allowlist.check(&case.argv), case.expect) {
        (Verdict::Allowed(matched), Expect::Allow) => {
            if let Some(rule) = &case.rule
                && rule != matched.rule_id()
            {
                return Some(format!(
                    "matched rule {}, expected {rule}",
                    matched.rule_id()
                ));
            }
            if let Some(canonical) = &case.canonical
                && *canonical != matched.canonical_argv()
            {
                return Some(format!(
                    "renders `{}`, expected `{}`",
                    matched.canonical_argv().join(" "),
                    canonical.join(" ")
                ));
            }
            if let Some(expected) = &case.in_use_checked {
                let command = matched.command();
                let checked: Vec<String> = command
                    .checks
                    .iter()
                    .filter_map(|check| match check {
                        ExecCheck::NotInUse { arg_idx } => command.args.get(*arg_idx).cloned(),
                        _ => None,
                    })
                    .collect();
                if checked != *expected {
                    return Some(format!(
                        "refuses {checked:?} when in use, expected {expected:?}"
                    ));
                }
            }
            None
        }
        (Verdict::Rejected(rejection), Expect::Reject) => {
            if case.token.is_some() && case.token != rejection.token_idx {
                return Some(format!(
                    "rejected at token {:?}, expected {:?}: {rejection}",
                    rejection.token_idx, case.token
                ));
            }
            if let Some(phrase) = &case.reason
                && !rejection.to_string().contains(phrase.as_str())
            {
                return Some(format!("reason `{rejection}` does not contain `{phrase}`"));
            }
            None
        }
        (Verdict::Allowed(matched), Expect::Reject) => Some(format!(
            "allowed by {}, expected a rejection",
            matched.rule_id()
        )),
        (Verdict::Rejected(rejection), Expect::Allow) => {
            Some(format!("rejected, expected allowed: {rejection}"))
        }
    }
}
