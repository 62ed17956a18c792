//! Rule + typed values → the canonical argv the agent runs, and what it must check first.
//!
//! Called only by the matcher, so only a matched argv is ever rendered. The program is always
//! the binary's absolute path; flags come in declared order; `--` is emitted wherever the
//! template has it and the binary supports it; mount options carry the forced options.
//!
//! Every device value of a state-changing or destructive rule gets [`ExecCheck::NotInUse`],
//! unless its param declares `in_use = "allowed"`; a read-only rule's never does.

use std::path::PathBuf;

use super::grammar::{Binary, Effect, FlagValue, InUsePolicy, Item, Limits, Rule};
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
    /// For each of `args`, the request's argv index (the program is 0) it was rendered from, or
    /// `None` for tokens of the rule itself; exec-time refusals name the caller's token with it.
    pub arg_sources: Vec<Option<usize>>,
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
    /// The device (already checked by `BlockDevice`) is not in use: neither it nor any of its
    /// partitions is claimed exclusively (mounted, swap, a member of a mounted btrfs, held by
    /// md/dm), has holders, backs a loop device, is active swap or holds the root filesystem.
    /// Run last, just before the spawn.
    NotInUse { arg_idx: usize },
    /// A subvolume path: every directory above the last component is walked without following
    /// symlinks and is root-owned, not group/other-writable (the pool, `.snapshots`, its share
    /// directory); the last component is no symlink and, when it exists, the root of a btrfs
    /// subvolume. Whether it must exist is btrfs's to say (a missing source fails the command).
    Subvolume { arg_idx: usize },
}

/// The matched values and the argv indexes they came from, parallel vectors per param and flag.
pub(super) struct Sources<'a> {
    pub params: &'a [Vec<Value>],
    pub flags: &'a [Vec<Option<Value>>],
    pub param_tokens: &'a [Vec<usize>],
    pub flag_tokens: &'a [Vec<usize>],
}

pub(super) fn render(binary: &Binary, rule: &Rule, sources: Sources<'_>) -> Command {
    let mut out = Emitter::default();
    // Read-only rules never get the in-use check; of the others, only a param that declares
    // `in_use = "allowed"` goes without it. Device values of flags always get it.
    let changes_state = rule.effect != Effect::Read;
    for item in &rule.template {
        match item {
            Item::Literal(literal) | Item::Implied(literal) => out.fixed(literal),
            Item::EndOfOptions if binary.end_of_options => out.fixed("--"),
            Item::EndOfOptions => {}
            Item::Flags => {
                for (flag_idx, flag) in rule.flags.iter().enumerate() {
                    let occurrences = sources.flags[flag_idx]
                        .iter()
                        .zip(&sources.flag_tokens[flag_idx]);
                    for (value, &token_idx) in occurrences {
                        match (flag.value, value) {
                            (FlagValue::Joined(_), Some(value)) => {
                                out.arg(format!("{}{}", flag.token, value.render()), token_idx)
                            }
                            (FlagValue::Separate(_), Some(value)) => {
                                out.arg(flag.token.clone(), token_idx);
                                out.value(value, token_idx + 1, changes_state);
                            }
                            _ => out.arg(flag.token.clone(), token_idx),
                        }
                    }
                }
            }
            Item::Param(param_idx) => {
                let check_in_use =
                    changes_state && rule.params[*param_idx].in_use == InUsePolicy::Refused;
                for (value, &token_idx) in sources.params[*param_idx]
                    .iter()
                    .zip(&sources.param_tokens[*param_idx])
                {
                    out.value(value, token_idx, check_in_use);
                }
            }
        }
    }
    let device_idxs: Vec<usize> = out
        .checks
        .iter()
        .filter_map(|check| match check {
            ExecCheck::BlockDevice { arg_idx } => Some(*arg_idx),
            _ => None,
        })
        .collect();
    if device_idxs.len() > 1 {
        out.checks.push(ExecCheck::DistinctDevices {
            arg_idxs: device_idxs,
        });
    }
    Command {
        rule_id: rule.id.clone(),
        program: PathBuf::from(&binary.path),
        sha256: binary.sha256,
        args: out.args,
        arg_sources: out.sources,
        effect: rule.effect,
        limits: rule.limits.clone(),
        checks: out.checks,
        job: rule.job,
    }
}

/// The rendered arguments, where each came from, and the checks its values need.
#[derive(Default)]
struct Emitter {
    args: Vec<String>,
    sources: Vec<Option<usize>>,
    checks: Vec<ExecCheck>,
}

impl Emitter {
    /// A token of the rule itself (literal, implied, `--`): it comes from no request token.
    fn fixed(&mut self, token: &str) {
        self.args.push(token.to_owned());
        self.sources.push(None);
    }

    fn arg(&mut self, token: String, token_idx: usize) {
        self.args.push(token);
        self.sources.push(Some(token_idx));
    }

    /// A typed value and its exec-time checks; `check_in_use` adds the in-use check to a device.
    fn value(&mut self, value: &Value, token_idx: usize, check_in_use: bool) {
        let arg_idx = self.args.len();
        match value {
            Value::Device(_) => {
                self.checks.push(ExecCheck::BlockDevice { arg_idx });
                if check_in_use {
                    self.checks.push(ExecCheck::NotInUse { arg_idx });
                }
            }
            Value::MountPath(_) => self.checks.push(ExecCheck::MountPath { arg_idx }),
            Value::KeyFile(_) => self.checks.push(ExecCheck::KeyFile { arg_idx }),
            Value::Subvolume(_) => self.checks.push(ExecCheck::Subvolume { arg_idx }),
            _ => {}
        }
        self.arg(value.render(), token_idx);
    }
}
