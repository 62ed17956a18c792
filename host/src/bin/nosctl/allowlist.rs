//! `nosctl allowlist check | explain | audit | diff | test`.
//!
//! Exit status: 0 fine (allowed, no finding at the threshold, no growth, all cases pass),
//! 1 a negative answer (denied, findings, privilege grows, failed cases), 2 the allowlist is
//! invalid or the call is malformed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use nos_allowlist::audit::{self, BinaryFacts, Severity};
use nos_allowlist::diff::{self, Direction};
use nos_allowlist::files;
use nos_allowlist::testcases;
use nos_allowlist::{Allowlist, Verdict, explain};
use nos_host::binary_facts::binary_facts;
use serde_json::json;

#[derive(clap::Args)]
pub struct Args {
    /// The allowlist file; overlays are read from `allowlist.d/` beside it
    /// [default: ./allowlist.toml, else /etc/nos/allowlist.toml].
    #[arg(long, global = true)]
    allowlist: Option<PathBuf>,
    /// Machine-readable output.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    verb: Verb,
}

#[derive(clap::Subcommand)]
enum Verb {
    /// Check an argv: exit 0 allowed (prints the rule and canonical argv), 1 denied.
    Check {
        /// The program and its arguments, after `--`.
        #[arg(required = true, num_args = 1.., allow_hyphen_values = true, last = true)]
        argv: Vec<String>,
    },
    /// The full language one rule accepts, with accepted and rejected examples.
    Explain { rule_id: String },
    /// Findings with severities; exit 1 when any is at or above --fail-on.
    Audit {
        /// info, low, medium, high or critical.
        #[arg(long, default_value = "high")]
        fail_on: String,
    },
    /// What NEW grants beyond OLD; exit 1 when privilege grows.
    Diff { old: PathBuf, new: PathBuf },
    /// Run a TOML table of accept/reject cases; exit 1 when any case fails.
    Test { file: PathBuf },
}

pub fn run(args: Args) -> Result<ExitCode> {
    if let Verb::Diff { old, new } = &args.verb {
        return run_diff(&load(old)?, &load(new)?, args.json);
    }
    let allowlist = load(&default_path(args.allowlist.as_deref())?)?;
    match args.verb {
        Verb::Check { argv } => Ok(run_check(&allowlist, &argv, args.json)),
        Verb::Explain { rule_id } => run_explain(&allowlist, &rule_id, args.json),
        Verb::Audit { fail_on } => {
            let threshold = Severity::parse(&fail_on).with_context(|| {
                format!("--fail-on `{fail_on}` is not info, low, medium, high or critical")
            })?;
            run_audit(&allowlist, threshold, args.json)
        }
        Verb::Test { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let cases =
                testcases::parse_cases(&text).with_context(|| file.display().to_string())?;
            let outcomes = testcases::run_cases(&allowlist, &cases);
            let n_failed = outcomes
                .iter()
                .filter(|outcome| outcome.failure.is_some())
                .count();
            if args.json {
                let rows: Vec<_> = outcomes
                    .iter()
                    .map(|outcome| json!({"argv": outcome.case.argv, "subject": outcome.case.subject(), "failure": outcome.failure}))
                    .collect();
                println!(
                    "{}",
                    json!({"passed": outcomes.len() - n_failed, "failed": n_failed, "cases": rows})
                );
            } else {
                for outcome in outcomes.iter().filter(|outcome| outcome.failure.is_some()) {
                    println!(
                        "FAIL {}\n     {}",
                        outcome.case.subject(),
                        outcome.failure.as_deref().unwrap_or_default()
                    );
                }
                println!("{} passed, {n_failed} failed", outcomes.len() - n_failed);
            }
            Ok(if n_failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Verb::Diff { .. } => unreachable!("handled above"),
    }
}

/// The allowlist a command works on: the given path, else `./allowlist.toml` if there is one,
/// else `/etc/nos/allowlist.toml`.
pub(crate) fn default_path(given: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = given {
        return Ok(path.to_owned());
    }
    let local = PathBuf::from("allowlist.toml");
    Ok(if local.exists() {
        local
    } else {
        PathBuf::from("/etc/nos/allowlist.toml")
    })
}

/// Loads the allowlist at `path` with its overlays. A file that cannot be read is not called
/// invalid: the error says which, and where nosctl looked when no path was given.
pub(crate) fn load(path: &Path) -> Result<Allowlist> {
    files::load(path).map_err(|error| match error {
        files::LoadFileError::Invalid(errors) => {
            anyhow::anyhow!("invalid allowlist {}:\n{errors}", path.display())
        }
        other => anyhow::anyhow!(
            "no allowlist loaded: {other} (give one with --allowlist; without it nosctl reads \
             ./allowlist.toml, else /etc/nos/allowlist.toml)"
        ),
    })
}

fn run_check(allowlist: &Allowlist, argv: &[String], json: bool) -> ExitCode {
    match allowlist.check(argv) {
        Verdict::Allowed(matched) => {
            let command = allowlist.render(&matched);
            if json {
                println!(
                    "{}",
                    json!({"allowed": true, "rule": matched.rule_id(), "effect": command.effect.as_str(), "argv": matched.canonical_argv()})
                );
            } else {
                println!(
                    "allowed by {} ({})",
                    matched.rule_id(),
                    command.effect.as_str()
                );
                println!("runs: {}", matched.canonical_argv().join(" "));
            }
            ExitCode::SUCCESS
        }
        Verdict::Rejected(rejection) => {
            if json {
                println!(
                    "{}",
                    json!({"allowed": false, "token": rejection.token_idx, "rule": rejection.rule_id, "reason": rejection.to_string()})
                );
            } else {
                println!("denied: {rejection}");
            }
            ExitCode::FAILURE
        }
    }
}

fn run_explain(allowlist: &Allowlist, rule_id: &str, json: bool) -> Result<ExitCode> {
    let output = if let Some(rule) = allowlist.rule(rule_id) {
        let explain::Examples { accepted, rejected } = explain::examples(allowlist, rule);
        let rejected: Vec<_> = rejected
            .iter()
            .map(|(argv, reason)| json!({"argv": argv, "reason": reason}))
            .collect();
        let text = explain::explain(allowlist, rule);
        (
            json!({"rule": rule.id, "effect": rule.effect.as_str(), "text": text, "accepted": accepted, "rejected": rejected}),
            text,
        )
    } else if let Some(rule) = allowlist
        .managed_rules()
        .iter()
        .find(|rule| rule.id == rule_id)
    {
        let text = explain::explain_managed(allowlist, rule);
        (
            json!({"rule": rule.id, "effect": rule.effect.as_str(), "text": text}),
            text,
        )
    } else {
        let ids: Vec<&str> = allowlist.rule_ids().collect();
        bail!("no rule `{rule_id}`; the rules are: {}", ids.join(", "));
    };
    if json {
        println!("{}", output.0);
    } else {
        print!("{}", output.1);
    }
    Ok(ExitCode::SUCCESS)
}

fn run_audit(allowlist: &Allowlist, threshold: Severity, json: bool) -> Result<ExitCode> {
    let facts: Vec<BinaryFacts> = allowlist
        .binaries()
        .iter()
        .map(|binary| binary_facts(&binary.path))
        .collect();
    let findings = audit::audit(allowlist, &facts);
    let failing = findings
        .iter()
        .filter(|finding| finding.severity >= threshold)
        .count();
    if json {
        let rows: Vec<_> = findings.iter().map(|f| json!({"severity": f.severity.as_str(), "code": f.code.as_str(), "subject": f.subject, "message": f.message})).collect();
        println!(
            "{}",
            json!({"findings": rows, "fail_on": threshold.as_str(), "failing": failing})
        );
    } else {
        for finding in &findings {
            println!(
                "{:<8} {:<28} {:<26} {}",
                finding.severity.as_str(),
                finding.code,
                finding.subject,
                finding.message
            );
        }
        println!(
            "{} finding(s); {failing} at or above {threshold}",
            findings.len()
        );
    }
    Ok(if failing == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn run_diff(old: &Allowlist, new: &Allowlist, json: bool) -> Result<ExitCode> {
    let changes = diff::diff(old, new);
    let grows = diff::grows(&changes);
    let direction = |direction| match direction {
        Direction::Grows => "grows",
        Direction::Shrinks => "shrinks",
        Direction::Neutral => "neutral",
    };
    if json {
        let rows: Vec<_> = changes.iter().map(|c| json!({"direction": direction(c.direction), "subject": c.subject, "message": c.message})).collect();
        println!("{}", json!({"grows": grows, "changes": rows}));
    } else {
        for change in &changes {
            let sign = match change.direction {
                Direction::Grows => '+',
                Direction::Shrinks => '-',
                Direction::Neutral => '~',
            };
            println!("{sign} {:<36} {}", change.subject, change.message);
        }
        println!(
            "{}",
            if grows {
                "privilege grows"
            } else {
                "privilege does not grow"
            }
        );
    }
    Ok(if grows {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
