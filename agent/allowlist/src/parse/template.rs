//! A rule's `argv`: the token template a request must follow.

use super::cx::Cx;
use super::raw::RawRule;
use crate::DiagnosticKind;
use crate::grammar::{Arity, Flag, Item, Param};
use crate::value::is_component_char;

impl Cx<'_> {
    /// ```text
    /// template = *( literal / "[" literal "]" / "$flags" / "--" / "$" param / "$" param "..." )
    /// ```
    /// Every param is used exactly once; at most one is variadic, and after it come only
    /// literals and single params, so the number of values it takes is fixed by the argv length.
    pub(super) fn template(
        &mut self,
        raw: &RawRule,
        params: &[Param],
        flags: &[Flag],
    ) -> Vec<Item> {
        let mut template = Vec::new();
        let mut used = vec![false; params.len()];
        let mut seen_variadic = false;
        let mut seen_flags = false;
        for token in &raw.argv {
            let span = token.span();
            let text = token.get_ref().as_str();
            let item = if text == "$flags" {
                if seen_flags || seen_variadic {
                    self.error(
                        span.clone(),
                        DiagnosticKind::Invalid(
                            "`$flags` must appear once, before any variadic param".into(),
                        ),
                    );
                }
                seen_flags = true;
                Item::Flags
            } else if text == "--" {
                if seen_variadic {
                    self.error(
                        span.clone(),
                        DiagnosticKind::Invalid("`--` cannot follow a variadic param".into()),
                    );
                }
                Item::EndOfOptions
            } else if let Some(implied) = text
                .strip_prefix('[')
                .and_then(|rest| rest.strip_suffix(']'))
            {
                let valid = !implied.is_empty()
                    && implied
                        .chars()
                        .all(|ch| is_component_char(ch) || matches!(ch, '=' | ','));
                if !valid || seen_variadic {
                    self.error(
                        span.clone(),
                        DiagnosticKind::Invalid(format!(
                            "implied token `{text}` must be a plain word before any variadic param"
                        )),
                    );
                }
                if matches!(template.last(), Some(Item::Flags)) && implied.starts_with('-') {
                    self.error(
                        span.clone(),
                        DiagnosticKind::Invalid(format!(
                            "implied token `{text}` right after `$flags` would read as a flag"
                        )),
                    );
                }
                Item::Implied(implied.to_owned())
            } else if let Some(reference) = text.strip_prefix('$') {
                let (name, variadic) = match reference.strip_suffix("...") {
                    Some(name) => (name, true),
                    None => (reference, false),
                };
                let Some(param_idx) = params.iter().position(|param| param.name == name) else {
                    self.error(
                        span,
                        DiagnosticKind::Unknown {
                            what: "param",
                            name: name.to_owned(),
                        },
                    );
                    continue;
                };
                if std::mem::replace(&mut used[param_idx], true) {
                    self.error(
                        span.clone(),
                        DiagnosticKind::Invalid(format!("param `{name}` is used twice")),
                    );
                }
                match (params[param_idx].arity, variadic) {
                    (Arity::One, false) => {}
                    (Arity::Many { .. }, true) => {
                        if seen_variadic {
                            self.error(
                                span.clone(),
                                DiagnosticKind::Invalid(
                                    "a rule may have only one variadic param".into(),
                                ),
                            );
                        }
                        seen_variadic = true;
                    }
                    (Arity::One, true) => self.error(
                        span.clone(),
                        DiagnosticKind::Invalid(format!(
                            "param `{name}` is used with `...` but declares no min/max"
                        )),
                    ),
                    (Arity::Many { .. }, false) => self.error(
                        span.clone(),
                        DiagnosticKind::Invalid(format!(
                            "param `{name}` declares min/max, so write `${name}...`"
                        )),
                    ),
                }
                Item::Param(param_idx)
            } else {
                let valid = !text.is_empty()
                    && text
                        .chars()
                        .all(|ch| is_component_char(ch) || matches!(ch, '=' | ','));
                if !valid {
                    self.error(
                        span.clone(),
                        DiagnosticKind::Invalid(format!(
                            "literal `{}` is not a plain word",
                            crate::value::escape(text)
                        )),
                    );
                }
                if matches!(template.last(), Some(Item::Flags)) && text.starts_with('-') {
                    self.error(
                        span.clone(),
                        DiagnosticKind::Invalid(format!(
                            "literal `{text}` right after `$flags` would read as a flag"
                        )),
                    );
                }
                Item::Literal(text.to_owned())
            };
            template.push(item);
        }
        for (param, used) in params.iter().zip(&used) {
            if !used {
                self.error(
                    raw.id.span(),
                    DiagnosticKind::Invalid(format!(
                        "param `{}` is declared but not used in argv",
                        param.name
                    )),
                );
            }
        }
        if seen_flags == flags.is_empty() {
            let message = if seen_flags {
                "`$flags` is used but no flag is declared"
            } else {
                "flags are declared but argv has no `$flags`"
            };
            self.error(raw.id.span(), DiagnosticKind::Invalid(message.into()));
        }
        template
    }
}
