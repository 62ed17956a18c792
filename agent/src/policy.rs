//! The agent's one door to the allowlist: argv in, a rendered [`Command`] or a rejection out.
//!
//! FIXME(issue 3): this is a temporary stand-in for `nos_agent::allowlist` (being written on
//! `main`) with the same `Command` shape; it understands only literal tokens and single typed
//! placeholders. It is replaced by `Allowlist::check` + `Allowlist::render` after the merge, and
//! nothing outside this module names its internals.
//!
//! This module never spawns and never touches the filesystem.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// What may run: the rendered, canonical form of one allowed argv.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub rule_id: String,
    pub program: PathBuf,
    pub sha256: Option<[u8; 32]>,
    pub args: Vec<String>,
    pub effect: Effect,
    pub limits: Limits,
    pub checks: Vec<ExecCheck>,
    pub job: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Read,
    State,
    Destructive,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub timeout: Duration,
    pub kill_after: Duration,
    pub max_stdout: usize,
    pub max_stderr: usize,
    pub exit_states: BTreeMap<i32, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecCheck {
    BlockDevice { arg_idx: usize },
    MountPath { arg_idx: usize },
    KeyFile { arg_idx: usize },
}

/// A refused argv: which token, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub token_idx: Option<usize>,
    pub reason: String,
}

/// The loaded allowlist.
#[derive(Debug)]
pub struct Policy {
    binaries: BTreeMap<String, StubBinary>,
    rules: Vec<StubRule>,
}

#[derive(Debug, Deserialize)]
struct StubFile {
    #[serde(default)]
    binaries: BTreeMap<String, StubBinary>,
    #[serde(default)]
    rule: Vec<StubRule>,
}

#[derive(Debug, Deserialize)]
struct StubBinary {
    path: PathBuf,
    sha256: Option<String>,
}

#[derive(Debug, Deserialize)]
struct StubRule {
    id: String,
    binary: String,
    effect: String,
    argv: Vec<String>,
    #[serde(default)]
    params: BTreeMap<String, StubParam>,
    #[serde(default)]
    limits: StubLimits,
    #[serde(default)]
    job: bool,
}

#[derive(Debug, Deserialize)]
struct StubParam {
    #[serde(rename = "type")]
    kind: String,
    min: Option<i64>,
    max: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
struct StubLimits {
    timeout_s: Option<u64>,
    timeout_ms: Option<u64>,
    kill_after_ms: Option<u64>,
    max_stdout: Option<usize>,
    max_stderr: Option<usize>,
    #[serde(default)]
    exit_states: BTreeMap<String, String>,
}

impl Policy {
    pub fn load(text: &str) -> Result<Policy, String> {
        let file: StubFile = toml::from_str(text).map_err(|err| err.to_string())?;
        for rule in &file.rule {
            if !file.binaries.contains_key(&rule.binary) {
                return Err(format!("rule {}: unknown binary {}", rule.id, rule.binary));
            }
        }
        Ok(Policy {
            binaries: file.binaries,
            rules: file.rule,
        })
    }

    pub fn check(&self, argv: &[String]) -> Result<Command, Rejected> {
        let Some(program) = argv.first() else {
            return Err(Rejected {
                token_idx: None,
                reason: "empty argv".into(),
            });
        };
        let mut last_reason = Rejected {
            token_idx: Some(0),
            reason: format!("no rule for program {program:?}"),
        };
        for rule in &self.rules {
            let binary = &self.binaries[&rule.binary];
            if *program != rule.binary && PathBuf::from(program) != binary.path {
                continue;
            }
            match match_rule(rule, &argv[1..]) {
                Ok(checks) => return Ok(self.render(rule, binary, &argv[1..], checks)),
                Err(rejected) => last_reason = rejected,
            }
        }
        Err(last_reason)
    }

    fn render(
        &self,
        rule: &StubRule,
        binary: &StubBinary,
        args: &[String],
        checks: Vec<ExecCheck>,
    ) -> Command {
        let sha256 = binary
            .sha256
            .as_ref()
            .and_then(|text| hex::decode(text).ok()?.try_into().ok());
        let limits = &rule.limits;
        let mut exit_states: BTreeMap<i32, String> = limits
            .exit_states
            .iter()
            .filter_map(|(code, name)| Some((code.parse().ok()?, name.clone())))
            .collect();
        exit_states.insert(0, "ok".into());
        Command {
            rule_id: rule.id.clone(),
            program: binary.path.clone(),
            sha256,
            args: args.to_vec(),
            effect: match rule.effect.as_str() {
                "read" => Effect::Read,
                "state" => Effect::State,
                _ => Effect::Destructive,
            },
            limits: Limits {
                timeout: Duration::from_millis(
                    limits
                        .timeout_ms
                        .unwrap_or(limits.timeout_s.unwrap_or(60).saturating_mul(1000)),
                ),
                kill_after: Duration::from_millis(limits.kill_after_ms.unwrap_or(2000)),
                max_stdout: limits.max_stdout.unwrap_or(1 << 20),
                max_stderr: limits.max_stderr.unwrap_or(64 << 10),
                exit_states,
            },
            checks,
            job: rule.job,
        }
    }
}

fn match_rule(rule: &StubRule, args: &[String]) -> Result<Vec<ExecCheck>, Rejected> {
    if args.len() != rule.argv.len() {
        return Err(Rejected {
            token_idx: Some(1 + args.len().min(rule.argv.len())),
            reason: format!(
                "rule {} takes {} arguments, got {}",
                rule.id,
                rule.argv.len(),
                args.len()
            ),
        });
    }
    let mut checks = Vec::new();
    for (arg_idx, (template, arg)) in rule.argv.iter().zip(args).enumerate() {
        let reject = |reason: String| Rejected {
            token_idx: Some(arg_idx + 1),
            reason,
        };
        let Some(name) = template.strip_prefix('$') else {
            if template != arg {
                return Err(reject(format!("expected {template:?}, got {arg:?}")));
            }
            continue;
        };
        let Some(param) = rule.params.get(name) else {
            return Err(reject(format!("undeclared ${name}")));
        };
        let plain = !arg.is_empty()
            && !arg.starts_with('-')
            && arg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/._:=,-".contains(&b))
            && !arg.split('/').any(|part| part == "." || part == "..");
        if !plain {
            return Err(reject(format!("{arg:?} is not a plain token")));
        }
        match param.kind.as_str() {
            "int" => {
                let value: i64 = arg
                    .parse()
                    .map_err(|_| reject(format!("{arg:?} is not an integer")))?;
                if value < param.min.unwrap_or(0) || value > param.max.unwrap_or(i64::MAX) {
                    return Err(reject(format!("{value} out of range")));
                }
            }
            "device" if arg.starts_with("/dev/") => checks.push(ExecCheck::BlockDevice { arg_idx }),
            "mount_path" if arg.starts_with('/') => checks.push(ExecCheck::MountPath { arg_idx }),
            "key_file" if arg.starts_with('/') => checks.push(ExecCheck::KeyFile { arg_idx }),
            "word" if !arg.contains('/') => {}
            _ => return Err(reject(format!("{arg:?} is not a {}", param.kind))),
        }
    }
    Ok(checks)
}
