//! Rule + typed values → the canonical argv the agent runs, and what it must check first.
//!
//! Called only by the matcher, so only a matched argv is ever rendered. The program is always
//! the binary's absolute path; flags come in declared order; `--` is emitted wherever the
//! template has it and the binary supports it; mount options carry the forced options.

use std::path::PathBuf;

use super::grammar::{Binary, Effect, FlagValue, Item, Limits, Rule};
use super::value::Value;

/// What the agent runs for a match: nothing here comes verbatim from the request.
#[derive(Clone, Debug, PartialEq)]
pub struct Command {
    pub rule_id: String,
    /// Absolute path of the binary.
    pub program: PathBuf,
    /// When pinned, the agent refuses to run a binary with another digest.
    pub sha256: Option<[u8; 32]>,
    /// Canonical arguments, the program excluded.
    pub args: Vec<String>,
    pub effect: Effect,
    pub limits: Limits,
    /// Checks the agent must pass on the live system before running.
    pub checks: Vec<ExecCheck>,
    /// Long-running: the agent runs it as a job whose status can be polled.
    pub job: bool,
}

/// A check the agent runs at exec time on `args[arg_idx]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExecCheck {
    /// The path resolves (by-* links to kernel names) to a block device.
    BlockDevice { arg_idx: usize },
    /// The path is walked without following symlinks; every component is root-owned and not
    /// writable by group or others.
    MountPath { arg_idx: usize },
    /// The file is directly in the key directory, root-owned, mode 0400 or stricter.
    KeyFile { arg_idx: usize },
    /// These device arguments resolve to different block devices (`/dev/sdb` and its by-id
    /// link are the same disk, which no static check can see).
    DistinctDevices { arg_idxs: Vec<usize> },
}

pub(super) fn render(
    binary: &Binary,
    rule: &Rule,
    params: &[Vec<Value>],
    flags: &[Vec<Option<Value>>],
) -> Command {
    let mut args: Vec<String> = Vec::new();
    let mut checks: Vec<ExecCheck> = Vec::new();
    let mut push = |args: &mut Vec<String>, value: &Value| {
        let arg_idx = args.len();
        match value {
            Value::Device(_) => checks.push(ExecCheck::BlockDevice { arg_idx }),
            Value::MountPath(_) => checks.push(ExecCheck::MountPath { arg_idx }),
            Value::KeyFile(_) => checks.push(ExecCheck::KeyFile { arg_idx }),
            _ => {}
        }
        args.push(value.render());
    };
    for item in &rule.template {
        match item {
            Item::Literal(literal) => args.push(literal.clone()),
            Item::EndOfOptions => {
                if binary.end_of_options {
                    args.push("--".to_owned());
                }
            }
            Item::Implied(implied) => args.push(implied.clone()),
            Item::Flags => {
                for (flag, occurrences) in rule.flags.iter().zip(flags) {
                    for value in occurrences {
                        match (flag.value, value) {
                            (FlagValue::Joined(_), Some(value)) => {
                                args.push(format!("{}{}", flag.token, value.render()))
                            }
                            (FlagValue::Separate(_), Some(value)) => {
                                args.push(flag.token.clone());
                                push(&mut args, value);
                            }
                            _ => args.push(flag.token.clone()),
                        }
                    }
                }
            }
            Item::Param(param_idx) => {
                for value in &params[*param_idx] {
                    push(&mut args, value);
                }
            }
        }
    }
    let device_idxs: Vec<usize> = checks
        .iter()
        .filter_map(|check| match check {
            ExecCheck::BlockDevice { arg_idx } => Some(*arg_idx),
            _ => None,
        })
        .collect();
    if device_idxs.len() > 1 {
        checks.push(ExecCheck::DistinctDevices {
            arg_idxs: device_idxs,
        });
    }
    Command {
        rule_id: rule.id.clone(),
        program: PathBuf::from(&binary.path),
        sha256: binary.sha256,
        args,
        effect: rule.effect,
        limits: rule.limits.clone(),
        checks,
        job: rule.job,
    }
}
