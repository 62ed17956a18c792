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
//!
//! [[case]]                           # a managed-file request instead of an argv
//! managed = { kind = "fstab_entry", uuid = "…", target = "/srv/pool", options = "noatime" }
//! action = "ensure"                  # or "remove"; ensure when absent
//! expect = "allow"
//! rule = "managed.fstab"
//! entry = "fstab UUID=… /srv/pool btrfs noatime,nosuid,nodev,nofail,…"   # as written
//! ```
//!
//! A case has exactly one of `argv` and `managed`; `canonical` and `in_use_checked` are for
//! argvs, `entry` for managed requests.
//!
//! Pure: takes the file's text; the caller reads it.

use serde::Deserialize;

use super::{Allowlist, ExecCheck, ManagedAction, ManagedRequest, ManagedVerdict, Verdict};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    case: Vec<Case>,
}

#[derive(Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct Case {
    #[serde(default)]
    pub argv: Vec<String>,
    pub managed: Option<ManagedRequest>,
    pub action: Option<ManagedAction>,
    pub expect: Expect,
    pub rule: Option<String>,
    pub canonical: Option<Vec<String>>,
    /// The rendered arguments the agent refuses when in use (`ExecCheck::NotInUse`), in order.
    pub in_use_checked: Option<Vec<String>>,
    pub token: Option<usize>,
    pub reason: Option<String>,
    /// allow, managed: the entry as it will be written ([`crate::ManagedMatch`]'s display).
    pub entry: Option<String>,
}

impl Case {
    /// What the case tries, for people: the argv joined by spaces, or the managed request.
    pub fn subject(&self) -> String {
        match &self.managed {
            Some(request) => format!(
                "{} {request}",
                self.action.unwrap_or(ManagedAction::Ensure).as_str()
            ),
            None => self.argv.join(" "),
        }
    }
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
    for (case_idx, case) in file.case.iter().enumerate() {
        let argv_fields = case.canonical.is_some() || case.in_use_checked.is_some();
        let managed_fields = case.action.is_some() || case.entry.is_some();
        let problem = match (&case.managed, case.argv.is_empty()) {
            (Some(_), false) => Some("has both `argv` and `managed`"),
            (None, true) => Some("has neither `argv` nor `managed`"),
            (Some(_), true) if argv_fields => {
                Some("is managed; `canonical` and `in_use_checked` are for argvs")
            }
            (None, false) if managed_fields => {
                Some("is an argv; `action` and `entry` are for managed")
            }
            _ => None,
        };
        if let Some(problem) = problem {
            return Err(CaseFileError(format!("case {}: {problem}", case_idx + 1)));
        }
    }
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
    match &case.managed {
        Some(request) => run_managed_case(allowlist, case, request),
        None => run_argv_case(allowlist, case),
    }
}

fn run_managed_case(
    allowlist: &Allowlist,
    case: &Case,
    request: &ManagedRequest,
) -> Option<String> {
    let action = case.action.unwrap_or(ManagedAction::Ensure);
    match (allowlist.check_managed(action, request), case.expect) {
        (ManagedVerdict::Allowed(matched), Expect::Allow) => {
            if let Some(rule) = &case.rule
                && *rule != matched.rule_id
            {
                return Some(format!("matched rule {}, expected {rule}", matched.rule_id));
            }
            if let Some(entry) = &case.entry
                && *entry != matched.to_string()
            {
                return Some(format!("writes `{matched}`, expected `{entry}`"));
            }
            None
        }
        (ManagedVerdict::Rejected(rejection), Expect::Reject) => {
            rejection_differs(case, &rejection)
        }
        (ManagedVerdict::Allowed(matched), Expect::Reject) => Some(format!(
            "allowed by {}, expected a rejection",
            matched.rule_id
        )),
        (ManagedVerdict::Rejected(rejection), Expect::Allow) => {
            Some(format!("rejected, expected allowed: {rejection}"))
        }
    }
}

/// What differs between a rejection and the case's `token` and `reason`, if anything.
fn rejection_differs(case: &Case, rejection: &super::Rejection) -> Option<String> {
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

fn run_argv_case(allowlist: &Allowlist, case: &Case) -> Option<String> {
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
        (Verdict::Rejected(rejection), Expect::Reject) => rejection_differs(case, &rejection),
        (Verdict::Allowed(matched), Expect::Reject) => Some(format!(
            "allowed by {}, expected a rejection",
            matched.rule_id()
        )),
        (Verdict::Rejected(rejection), Expect::Allow) => {
            Some(format!("rejected, expected allowed: {rejection}"))
        }
    }
}
