//! argv → `Verdict`: the one rule that admits it, with typed canonical values, or why not.
//!
//! Pure and deterministic: no backtracking, no IO. Every token passes the global static checks
//! first; then each rule of the named binary is tried, and the rejection reported is the one
//! from the rule that got furthest, so the auditor sees the token that really failed.

// A rejection is the ordinary answer to hostile input, built at most once per rule tried;
// boxing it would add an allocation to the common path and buy nothing.
#![allow(clippy::result_large_err)]

use std::fmt;

use super::Allowlist;
use super::grammar::{Arity, FlagValue, Item, Rule};
use super::render::{Command, Sources, render};
use super::value::{self, Value, ValueError, escape};

/// Most tokens in one argv, the program included.
pub const MAX_ARGV_TOKENS: usize = 64;
/// Most bytes in one argv, all tokens together.
pub const MAX_ARGV_BYTES: usize = 16 << 10;
/// Longest single token.
pub const MAX_TOKEN_BYTES: usize = value::MAX_PATH_LEN;

/// The answer to "may this argv run as root?".
#[must_use]
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    Allowed(Match),
    Rejected(Rejection),
}

/// An argv that matched exactly one rule, with its values typed and canonical.
///
/// Only the matcher builds one, so only a matched argv can be rendered.
#[derive(Clone, Debug, PartialEq)]
pub struct Match {
    pub(super) rule_idx: usize,
    pub(super) rule_id: String,
    /// Values of each param, in the rule's param order.
    pub(super) params: Vec<Vec<Value>>,
    /// Occurrences of each flag, in the rule's flag order; `None` for a flag without value.
    pub(super) flags: Vec<Vec<Option<Value>>>,
    pub(super) command: Command,
}

impl Match {
    pub fn rule_id(&self) -> &str {
        &self.rule_id
    }

    /// The argv that will run: the absolute program, then the canonical arguments.
    pub fn canonical_argv(&self) -> Vec<String> {
        std::iter::once(self.command.program.display().to_string())
            .chain(self.command.args.iter().cloned())
            .collect()
    }

    pub fn command(&self) -> &Command {
        &self.command
    }

    /// Values of each param, in the rule's param order.
    pub fn param_values(&self) -> &[Vec<Value>] {
        &self.params
    }

    /// Occurrences of each flag, in the rule's flag order.
    pub fn flag_values(&self) -> &[Vec<Option<Value>>] {
        &self.flags
    }
}

/// Why an argv was refused: which token (argv index, the program being 0) failed which check.
#[derive(Clone, Debug, PartialEq)]
pub struct Rejection {
    pub token_idx: Option<usize>,
    /// The rule that got furthest, when the program was known.
    pub rule_id: Option<String>,
    pub reason: Reason,
}

/// Everything that can be wrong with an argv, in words an auditor understands.
#[derive(Clone, Debug, PartialEq)]
pub enum Reason {
    EmptyArgv,
    TooManyTokens {
        n: usize,
    },
    TooManyBytes {
        n: usize,
    },
    TokenTooLong {
        len: usize,
    },
    ForbiddenChar {
        ch: char,
        at: usize,
    },
    UnknownProgram {
        program: String,
    },
    NoRules {
        program: String,
    },
    ExpectedLiteral {
        expected: String,
        found: String,
    },
    Missing {
        expected: String,
    },
    UnknownFlag {
        flag: String,
    },
    FlagValueMissing {
        flag: String,
    },
    FlagRepeated {
        flag: String,
        max: usize,
    },
    FlagConflict {
        flag: String,
        other: String,
    },
    FlagRequires {
        flag: String,
        other: String,
    },
    BadValue {
        what: String,
        type_name: String,
        token: String,
        error: ValueError,
    },
    Count {
        param: String,
        n: usize,
        min: usize,
        max: usize,
    },
    Repeated {
        param: String,
        value: String,
    },
    Extra {
        token: String,
    },
    TooFewFlags {
        n: usize,
        min: usize,
    },
    SameValue {
        param: String,
        other: String,
        value: String,
    },
    Ambiguous {
        rules: Vec<String>,
    },
    ActionNotAllowed {
        action: &'static str,
    },
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(token_idx) = self.token_idx {
            write!(f, "token {token_idx}: ")?;
        }
        write!(f, "{}", self.reason)?;
        if let Some(rule_id) = &self.rule_id {
            write!(f, " (closest rule: {rule_id})")?;
        }
        Ok(())
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::EmptyArgv => write!(f, "the argv is empty"),
            Reason::TooManyTokens { n } => {
                write!(f, "the argv has {n} tokens (at most {MAX_ARGV_TOKENS})")
            }
            Reason::TooManyBytes { n } => {
                write!(f, "the argv has {n} bytes (at most {MAX_ARGV_BYTES})")
            }
            Reason::TokenTooLong { len } => {
                write!(f, "the token has {len} bytes (at most {MAX_TOKEN_BYTES})")
            }
            Reason::ForbiddenChar { ch, at } => {
                write!(
                    f,
                    "the token has {} at byte {at}: only printable ASCII without spaces is allowed",
                    value::escape_char(*ch)
                )
            }
            Reason::UnknownProgram { program } => {
                write!(
                    f,
                    "`{}` is not an allowed program (give a binary's name or its exact configured path)",
                    escape(program)
                )
            }
            Reason::NoRules { program } => write!(f, "no rule allows running `{program}`"),
            Reason::ExpectedLiteral { expected, found } => {
                write!(f, "expected `{expected}`, found `{}`", escape(found))
            }
            Reason::Missing { expected } => write!(f, "the argv ends where {expected} is expected"),
            Reason::UnknownFlag { flag } => {
                write!(f, "`{}` is not a flag this rule allows", escape(flag))
            }
            Reason::FlagValueMissing { flag } => write!(f, "flag `{flag}` needs a value"),
            Reason::FlagRepeated { flag, max } => {
                write!(f, "flag `{flag}` appears more than {max} time(s)")
            }
            Reason::FlagConflict { flag, other } => {
                write!(f, "flag `{flag}` cannot be combined with `{other}`")
            }
            Reason::FlagRequires { flag, other } => write!(f, "flag `{flag}` requires `{other}`"),
            Reason::BadValue {
                what,
                type_name,
                token,
                error,
            } => {
                write!(
                    f,
                    "{what} `{}` is not a valid {type_name}: it {error}",
                    escape(token)
                )
            }
            Reason::Count { param, n, min, max } => {
                write!(f, "{param} takes {min} to {max} values, found {n}")
            }
            Reason::Repeated { param, value } => {
                write!(f, "{param} repeats `{value}`; all values must be distinct")
            }
            Reason::Extra { token } => write!(f, "unexpected extra token `{}`", escape(token)),
            Reason::TooFewFlags { n, min } => {
                write!(f, "this rule needs at least {min} flag(s), found {n}")
            }
            Reason::SameValue {
                param,
                other,
                value,
            } => write!(
                f,
                "{param} and {other} are both `{value}`; they must differ"
            ),
            Reason::ActionNotAllowed { action } => {
                write!(
                    f,
                    "the action `{action}` is not allowed for this managed file"
                )
            }
            Reason::Ambiguous { rules } => {
                write!(f, "the argv matches several rules ({})", rules.join(", "))
            }
        }
    }
}

impl Rejection {
    fn at(token_idx: usize, reason: Reason) -> Rejection {
        Rejection {
            token_idx: Some(token_idx),
            rule_id: None,
            reason,
        }
    }
}

/// Checks an argv (`argv[0]` is the program) against every rule.
pub fn check(allowlist: &Allowlist, argv: &[String]) -> Verdict {
    if let Err(rejection) = check_tokens(argv) {
        return Verdict::Rejected(rejection);
    }
    let program = &argv[0];
    let Some(binary_idx) = allowlist
        .binaries
        .iter()
        .position(|binary| binary.name == *program || binary.path == *program)
    else {
        return Verdict::Rejected(Rejection::at(
            0,
            Reason::UnknownProgram {
                program: program.clone(),
            },
        ));
    };
    let args = &argv[1..];
    let mut matches: Vec<Match> = Vec::new();
    let mut furthest: Option<Rejection> = None;
    for (rule_idx, rule) in allowlist
        .rules
        .iter()
        .enumerate()
        .filter(|(_, rule)| rule.binary.0 == binary_idx)
    {
        match match_rule(allowlist, rule_idx, rule, args) {
            Ok(matched) => matches.push(matched),
            Err(mut rejection) => {
                rejection.rule_id = Some(rule.id.clone());
                if furthest
                    .as_ref()
                    .is_none_or(|best| rejection.token_idx > best.token_idx)
                {
                    furthest = Some(rejection);
                }
            }
        }
    }
    match matches.len() {
        1 => Verdict::Allowed(matches.remove(0)),
        // Load rejects overlapping rules, so this is unreachable for a loaded allowlist; refuse anyway.
        n if n > 1 => Verdict::Rejected(Rejection {
            token_idx: None,
            rule_id: None,
            reason: Reason::Ambiguous {
                rules: matches
                    .iter()
                    .map(|matched| matched.rule_id.clone())
                    .collect(),
            },
        }),
        _ => Verdict::Rejected(furthest.unwrap_or_else(|| {
            Rejection::at(
                0,
                Reason::NoRules {
                    program: allowlist.binaries[binary_idx].name.clone(),
                },
            )
        })),
    }
}

/// Checks an argv against one rule only, as `explain` needs to show that rule's own reasons.
pub(super) fn check_one(allowlist: &Allowlist, rule_idx: usize, argv: &[String]) -> Verdict {
    if let Err(rejection) = check_tokens(argv) {
        return Verdict::Rejected(rejection);
    }
    let rule = &allowlist.rules[rule_idx];
    let binary = &allowlist.binaries[rule.binary.0];
    if argv[0] != binary.name && argv[0] != binary.path {
        return Verdict::Rejected(Rejection::at(
            0,
            Reason::UnknownProgram {
                program: argv[0].clone(),
            },
        ));
    }
    match match_rule(allowlist, rule_idx, rule, &argv[1..]) {
        Ok(matched) => Verdict::Allowed(matched),
        Err(mut rejection) => {
            rejection.rule_id = Some(rule.id.clone());
            Verdict::Rejected(rejection)
        }
    }
}

/// The checks every token gets whatever the rule: counts, lengths and characters.
fn check_tokens(argv: &[String]) -> Result<(), Rejection> {
    if argv.is_empty() {
        return Err(Rejection {
            token_idx: None,
            rule_id: None,
            reason: Reason::EmptyArgv,
        });
    }
    if argv.len() > MAX_ARGV_TOKENS {
        return Err(Rejection::at(
            MAX_ARGV_TOKENS,
            Reason::TooManyTokens { n: argv.len() },
        ));
    }
    let n_bytes: usize = argv.iter().map(String::len).sum();
    if n_bytes > MAX_ARGV_BYTES {
        return Err(Rejection {
            token_idx: None,
            rule_id: None,
            reason: Reason::TooManyBytes { n: n_bytes },
        });
    }
    for (token_idx, token) in argv.iter().enumerate() {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(Rejection::at(
                token_idx,
                Reason::TokenTooLong { len: token.len() },
            ));
        }
        if let Some((at, ch)) = token.char_indices().find(|&(_, ch)| !ch.is_ascii_graphic()) {
            return Err(Rejection::at(token_idx, Reason::ForbiddenChar { ch, at }));
        }
    }
    Ok(())
}

/// Matches `args` (the argv without the program) against one rule. Token indexes in the
/// rejection count the program, so `args[i]` is token `i + 1`.
fn match_rule(
    allowlist: &Allowlist,
    rule_idx: usize,
    rule: &Rule,
    args: &[String],
) -> Result<Match, Rejection> {
    let types = &allowlist.types;
    let mut params: Vec<Vec<Value>> = vec![Vec::new(); rule.params.len()];
    let mut flags: Vec<Vec<Option<Value>>> = vec![Vec::new(); rule.flags.len()];
    // Where each value came from: argv indexes (the program is 0), parallel to `params`/`flags`.
    let mut param_tokens: Vec<Vec<usize>> = vec![Vec::new(); rule.params.len()];
    let mut flag_tokens: Vec<Vec<usize>> = vec![Vec::new(); rule.flags.len()];
    let mut pos = 0;
    let typed = |what: String, ty: super::grammar::TypeId, token_pos: usize, token: &str| {
        let type_def = &types[ty.0];
        value::check(types, type_def, token).map_err(|error| {
            Rejection::at(
                token_pos + 1,
                Reason::BadValue {
                    what,
                    type_name: type_def.name.clone(),
                    token: token.to_owned(),
                    error,
                },
            )
        })
    };
    for (item_idx, item) in rule.template.iter().enumerate() {
        match item {
            Item::Literal(expected) => match args.get(pos) {
                Some(found) if found == expected => pos += 1,
                Some(found) => {
                    return Err(Rejection::at(
                        pos + 1,
                        Reason::ExpectedLiteral {
                            expected: expected.clone(),
                            found: found.clone(),
                        },
                    ));
                }
                None => {
                    return Err(Rejection::at(
                        pos + 1,
                        Reason::Missing {
                            expected: format!("`{expected}`"),
                        },
                    ));
                }
            },
            Item::EndOfOptions => {
                if args.get(pos).is_some_and(|token| token == "--") {
                    pos += 1;
                }
            }
            Item::Implied(implied) => {
                if args.get(pos).is_some_and(|token| token == implied) {
                    pos += 1;
                }
            }
            Item::Flags => {
                while let Some(token) = args
                    .get(pos)
                    .filter(|token| token.starts_with('-') && *token != "--")
                {
                    let flag_start = pos;
                    let Some((flag_idx, flag)) =
                        rule.flags
                            .iter()
                            .enumerate()
                            .find(|(_, flag)| match flag.value {
                                FlagValue::Joined(_) => token.starts_with(flag.token.as_str()),
                                _ => *token == flag.token,
                            })
                    else {
                        return Err(Rejection::at(
                            pos + 1,
                            Reason::UnknownFlag {
                                flag: token.clone(),
                            },
                        ));
                    };
                    let value = match flag.value {
                        FlagValue::None => None,
                        FlagValue::Joined(ty) => Some(typed(
                            format!("flag `{}` value", flag.token),
                            ty,
                            pos,
                            &token[flag.token.len()..],
                        )?),
                        FlagValue::Separate(ty) => {
                            pos += 1;
                            let Some(value_token) = args.get(pos) else {
                                return Err(Rejection::at(
                                    pos + 1,
                                    Reason::FlagValueMissing {
                                        flag: flag.token.clone(),
                                    },
                                ));
                            };
                            Some(typed(
                                format!("flag `{}` value", flag.token),
                                ty,
                                pos,
                                value_token,
                            )?)
                        }
                    };
                    if flags[flag_idx].len() == flag.max {
                        return Err(Rejection::at(
                            flag_start + 1,
                            Reason::FlagRepeated {
                                flag: flag.token.clone(),
                                max: flag.max,
                            },
                        ));
                    }
                    flags[flag_idx].push(value);
                    flag_tokens[flag_idx].push(flag_start + 1);
                    pos += 1;
                }
                check_flag_relations(rule, &flags).map_err(|reason| Rejection::at(pos, reason))?;
                let n_flags: usize = flags.iter().map(Vec::len).sum();
                if n_flags < rule.min_flags {
                    return Err(Rejection::at(
                        pos + 1,
                        Reason::TooFewFlags {
                            n: n_flags,
                            min: rule.min_flags,
                        },
                    ));
                }
            }
            Item::Param(param_idx) => {
                let param = &rule.params[*param_idx];
                match param.arity {
                    Arity::One => {
                        let Some(token) = args.get(pos) else {
                            return Err(Rejection::at(
                                pos + 1,
                                Reason::Missing {
                                    expected: format!(
                                        "{} ({})",
                                        param.name, types[param.ty.0].name
                                    ),
                                },
                            ));
                        };
                        params[*param_idx].push(typed(param.name.clone(), param.ty, pos, token)?);
                        param_tokens[*param_idx].push(pos + 1);
                        pos += 1;
                    }
                    Arity::Many { min, max, distinct } => {
                        let n_after = rule.template[item_idx + 1..].len();
                        let n = args.len().saturating_sub(pos + n_after);
                        if n < min || n > max {
                            return Err(Rejection::at(
                                pos + 1,
                                Reason::Count {
                                    param: param.name.clone(),
                                    n,
                                    min,
                                    max,
                                },
                            ));
                        }
                        for token in &args[pos..pos + n] {
                            let value = typed(param.name.clone(), param.ty, pos, token)?;
                            if distinct && params[*param_idx].contains(&value) {
                                return Err(Rejection::at(
                                    pos + 1,
                                    Reason::Repeated {
                                        param: param.name.clone(),
                                        value: value.render(),
                                    },
                                ));
                            }
                            params[*param_idx].push(value);
                            param_tokens[*param_idx].push(pos + 1);
                            pos += 1;
                        }
                    }
                }
            }
        }
    }
    if let Some(extra) = args.get(pos) {
        return Err(Rejection::at(
            pos + 1,
            Reason::Extra {
                token: extra.clone(),
            },
        ));
    }
    for (idx, &param_idx) in rule.distinct.iter().enumerate() {
        let value = &params[param_idx][0];
        if let Some(&earlier) = rule.distinct[..idx]
            .iter()
            .find(|&&earlier| params[earlier][0] == *value)
        {
            return Err(Rejection {
                token_idx: args
                    .iter()
                    .rposition(|token| *token == value.render())
                    .map(|pos| pos + 1),
                rule_id: None,
                reason: Reason::SameValue {
                    param: rule.params[param_idx].name.clone(),
                    other: rule.params[earlier].name.clone(),
                    value: value.render(),
                },
            });
        }
    }
    let binary = &allowlist.binaries[rule.binary.0];
    let command = render(
        binary,
        rule,
        Sources {
            params: &params,
            flags: &flags,
            param_tokens: &param_tokens,
            flag_tokens: &flag_tokens,
        },
    );
    Ok(Match {
        rule_idx,
        rule_id: rule.id.clone(),
        params,
        flags,
        command,
    })
}

fn check_flag_relations(rule: &Rule, flags: &[Vec<Option<Value>>]) -> Result<(), Reason> {
    for (flag, _) in rule
        .flags
        .iter()
        .zip(flags)
        .filter(|(_, occurrences)| !occurrences.is_empty())
    {
        if let Some(&other) = flag
            .conflicts
            .iter()
            .find(|&&other| !flags[other].is_empty())
        {
            return Err(Reason::FlagConflict {
                flag: flag.token.clone(),
                other: rule.flags[other].token.clone(),
            });
        }
        if let Some(&other) = flag.requires.iter().find(|&&other| flags[other].is_empty()) {
            return Err(Reason::FlagRequires {
                flag: flag.token.clone(),
                other: rule.flags[other].token.clone(),
            });
        }
    }
    Ok(())
}
