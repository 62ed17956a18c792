//! A rule's `argv`: the token template a request must follow.

use std::ops::Range;

use super::cx::Cx;
use super::raw::RawRule;
use crate::grammar::{Arity, Flag, Item, Param};
use crate::value::{escape, is_component_char};
use crate::{DiagnosticKind, TemplateProblem};

impl Cx<'_> {
    /// ```text
    /// template = *( literal / "[" literal "]" / "$flags" / "--" / "$" param / "$" param "..." )
    /// literal  = 1*( ALPHA / DIGIT / "." / "_" / "@" / ":" / "+" / "-" / "=" / "," )
    /// ```
    /// Every param is used exactly once; at most one is variadic, and after it come only
    /// literals and single params, so the number of values it takes is fixed by the argv length.
    /// A literal right after `$flags` may not start with `-`, or it would read as a flag.
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
            let after_flags = matches!(template.last(), Some(Item::Flags));
            let item = if text == "$flags" {
                if seen_flags || seen_variadic {
                    self.template_error(span.clone(), TemplateProblem::FlagsPlacement);
                }
                seen_flags = true;
                Item::Flags
            } else if text == "--" {
                if seen_variadic {
                    self.template_error(span.clone(), TemplateProblem::EndOfOptionsAfterVariadic);
                }
                Item::EndOfOptions
            } else if let Some(implied) = text
                .strip_prefix('[')
                .and_then(|rest| rest.strip_suffix(']'))
            {
                self.check_literal(span.clone(), "implied token", text, implied, after_flags);
                if seen_variadic {
                    self.template_error(
                        span.clone(),
                        TemplateProblem::ImpliedAfterVariadic {
                            token: escape(text),
                        },
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
                let param = name.to_owned();
                if std::mem::replace(&mut used[param_idx], true) {
                    self.template_error(
                        span.clone(),
                        TemplateProblem::ParamUsedTwice {
                            param: param.clone(),
                        },
                    );
                }
                match (params[param_idx].arity, variadic) {
                    (Arity::One, false) => {}
                    (Arity::Many { .. }, true) => {
                        if seen_variadic {
                            self.template_error(span.clone(), TemplateProblem::SecondVariadic);
                        }
                        seen_variadic = true;
                    }
                    (Arity::One, true) => self
                        .template_error(span.clone(), TemplateProblem::DotsWithoutCounts { param }),
                    (Arity::Many { .. }, false) => self
                        .template_error(span.clone(), TemplateProblem::CountsWithoutDots { param }),
                }
                Item::Param(param_idx)
            } else {
                self.check_literal(span.clone(), "literal", text, text, after_flags);
                Item::Literal(text.to_owned())
            };
            template.push(item);
        }
        for (param, used) in params.iter().zip(&used) {
            if !used {
                self.template_error(
                    raw.id.span(),
                    TemplateProblem::ParamUnused {
                        param: param.name.clone(),
                    },
                );
            }
        }
        if seen_flags == flags.is_empty() {
            let problem = if seen_flags {
                TemplateProblem::NoFlagDeclared
            } else {
                TemplateProblem::NoFlagsToken
            };
            self.template_error(raw.id.span(), problem);
        }
        template
    }

    /// A literal or implied token: a plain word that, right after `$flags`, does not start with
    /// `-`. `token` is the argv element as written, `word` the literal inside it.
    fn check_literal(
        &mut self,
        span: Range<usize>,
        what: &'static str,
        token: &str,
        word: &str,
        after_flags: bool,
    ) {
        let valid = !word.is_empty()
            && word
                .chars()
                .all(|ch| is_component_char(ch) || matches!(ch, '=' | ','));
        if !valid {
            self.error(
                span.clone(),
                DiagnosticKind::BadWord {
                    what,
                    word: escape(token),
                    shape: "a plain word ([A-Za-z0-9._@:+=,-]+)",
                },
            );
        }
        if after_flags && word.starts_with('-') {
            self.template_error(
                span,
                TemplateProblem::ReadsAsFlag {
                    what,
                    token: escape(token),
                },
            );
        }
    }

    fn template_error(&mut self, span: Range<usize>, problem: TemplateProblem) {
        self.error(span, DiagnosticKind::Template(problem));
    }
}
