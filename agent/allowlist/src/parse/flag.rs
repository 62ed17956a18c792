//! A rule's `[[rule.flag]]` entries: optional tokens, maybe with a value, in any order.
//!
//! ```text
//! flag = "name" "=" name "token" "=" ( "-" word / "-" word "=" )   ; `=`: the value is joined
//!        [ "value" "=" type-name ] [ "max" "=" 1..8 ]
//!        [ "conflicts" "=" flag-names ] [ "requires" "=" flag-names ]
//! ```

use std::ops::Range;

use super::cx::Cx;
use super::raw::RawRule;
use super::types::type_names;
use crate::DiagnosticKind;
use crate::grammar::{Flag, FlagValue, TypeDef};
use crate::value::{escape, is_component_char};

/// Most times one flag may repeat.
pub const MAX_FLAG_REPEAT: usize = 8;

impl Cx<'_> {
    /// The flags of a rule, with their conflicts and requirements resolved to indexes.
    pub(super) fn flags(
        &mut self,
        rule_span: Range<usize>,
        raw: &RawRule,
        types: &[TypeDef],
    ) -> Vec<Flag> {
        let mut flags: Vec<Flag> = Vec::new();
        for raw_flag in &raw.flag {
            let flag_span = raw_flag.span();
            let raw_flag = raw_flag.get_ref();
            let token = raw_flag.token.clone();
            let token_ok = token.len() >= 2
                && token.starts_with('-')
                && token != "--"
                && token.chars().all(|ch| is_component_char(ch) || ch == '=');
            if !token_ok {
                self.error(
                    flag_span.clone(),
                    DiagnosticKind::BadWord {
                        what: "flag token",
                        word: escape(&token),
                        shape: "`-` followed by a plain word ([A-Za-z0-9._@:+=-]+), and not `--`",
                    },
                );
            }
            if flags
                .iter()
                .any(|flag| flag.name == raw_flag.name || flag.token == token)
            {
                self.error(
                    flag_span.clone(),
                    DiagnosticKind::FlagRepeated {
                        name: raw_flag.name.clone(),
                        token: token.clone(),
                    },
                );
            }
            let value = match &raw_flag.value {
                None if token.ends_with('=') => {
                    self.error(
                        flag_span.clone(),
                        DiagnosticKind::FlagWithoutValue {
                            token: token.clone(),
                        },
                    );
                    FlagValue::None
                }
                None => FlagValue::None,
                Some(type_name) => {
                    match self.resolve_type(rule_span.clone(), type_names(types), type_name) {
                        Some(ty) if token.ends_with('=') => FlagValue::Joined(ty),
                        Some(ty) => FlagValue::Separate(ty),
                        None => FlagValue::None,
                    }
                }
            };
            let max = raw_flag.max.unwrap_or(1);
            if !(1..=MAX_FLAG_REPEAT).contains(&max) {
                self.error(
                    flag_span,
                    DiagnosticKind::FlagMax {
                        flag: raw_flag.name.clone(),
                        max,
                        most: MAX_FLAG_REPEAT,
                    },
                );
            }
            flags.push(Flag {
                name: raw_flag.name.clone(),
                token,
                value,
                max,
                conflicts: Vec::new(),
                requires: Vec::new(),
            });
        }
        for (flag_idx, raw_flag) in raw.flag.iter().enumerate() {
            let flag_span = raw_flag.span();
            let raw_flag = raw_flag.get_ref();
            for (names_list, is_conflict) in
                [(&raw_flag.conflicts, true), (&raw_flag.requires, false)]
            {
                for other in names_list {
                    match flags.iter().position(|flag| flag.name == *other) {
                        Some(other_idx) if other_idx != flag_idx => {
                            if is_conflict {
                                flags[flag_idx].conflicts.push(other_idx)
                            } else {
                                flags[flag_idx].requires.push(other_idx)
                            }
                        }
                        _ => self.error(
                            flag_span.clone(),
                            DiagnosticKind::Unknown {
                                what: "flag",
                                name: other.clone(),
                            },
                        ),
                    }
                }
            }
        }
        // A joined prefix that begins another flag's token would make the flag a token denotes depend on order.
        for flag in &flags {
            if let FlagValue::Joined(_) = flag.value
                && let Some(other) = flags.iter().find(|other| {
                    other.token != flag.token && other.token.starts_with(flag.token.as_str())
                })
            {
                self.error(
                    rule_span.clone(),
                    DiagnosticKind::FlagPrefix {
                        flag: flag.token.clone(),
                        other: other.token.clone(),
                    },
                );
            }
        }
        flags
    }
}
