//! `[[rule]]`: one command shape, its params, flags and the checks across them.
//!
//! ```text
//! rule  = "id" "=" identifier "binary" "=" name "effect" "=" effect "argv" "=" template
//!         *( "params." name "=" param ) *flag [ "distinct" "=" names ] [ "min_flags" "=" int ]
//!         [ "limits" "=" limits ] [ "job" "=" bool ] [ "beside_jobs" "=" bool ]
//!         ; beside_jobs: only for a read or state rule that is not a job
//! param = "{" "type" "=" name [ "min" ] [ "max" ] [ "distinct" ] in-use "}"
//! ```

use super::cx::Cx;
use std::ops::Range;

use super::raw::{RawParam, RawRule};
use super::types::type_names;
use crate::DiagnosticKind;
use crate::grammar::{Arity, Binary, BinaryId, Effect, Param, Rule, Settings, TypeDef};

/// Most values one variadic placeholder may take (e.g. devices in one command).
pub const MAX_VARIADIC: usize = 32;

impl Cx<'_> {
    pub(super) fn rule(
        &mut self,
        raw: &RawRule,
        binaries: &[Binary],
        types: &[TypeDef],
        settings: &Settings,
        rules: &[Rule],
    ) -> Option<Rule> {
        let id = raw.id.get_ref().clone();
        let span = raw.id.span();
        let origin = self.origin(span.clone());
        let mark = self.mark();
        let first = rules
            .iter()
            .find(|rule| rule.id == id)
            .map(|rule| &rule.origin);
        self.check_new(span.clone(), "rule", &id, first);
        self.check_identifier(span.clone(), "rule id", &id);
        let binary = binaries
            .iter()
            .position(|binary| binary.name == *raw.binary.get_ref());
        if binary.is_none() {
            self.error(
                raw.binary.span(),
                DiagnosticKind::Unknown {
                    what: "binary",
                    name: raw.binary.get_ref().clone(),
                },
            );
        }
        let effect = Effect::from(raw.effect);
        let mut params: Vec<Param> = Vec::new();
        for (name, raw_param) in &raw.params {
            let param_span = raw_param.span();
            let raw_param = raw_param.get_ref();
            let Some(ty) = self.resolve_type(span.clone(), type_names(types), &raw_param.ty) else {
                continue;
            };
            let in_use = self.in_use_policy(
                param_span.clone(),
                name,
                raw_param,
                &types[ty.0].kind,
                effect,
            );
            let arity = self.arity(param_span, name, raw_param);
            params.push(Param {
                name: name.clone(),
                ty,
                arity,
                in_use,
            });
        }

        let flags = self.flags(span.clone(), raw, types);

        let template = self.template(raw, &params, &flags);
        let mut distinct = Vec::new();
        for name in &raw.distinct {
            match params.iter().position(|param| param.name == *name) {
                Some(param_idx) if params[param_idx].arity != Arity::One => self.error(
                    span.clone(),
                    DiagnosticKind::DistinctVariadic {
                        param: name.clone(),
                    },
                ),
                Some(param_idx) if distinct.contains(&param_idx) => self.error(
                    span.clone(),
                    DiagnosticKind::Repeated {
                        what: "distinct param",
                        name: name.clone(),
                    },
                ),
                Some(param_idx) => distinct.push(param_idx),
                None => self.error(
                    span.clone(),
                    DiagnosticKind::Unknown {
                        what: "param",
                        name: name.clone(),
                    },
                ),
            }
        }
        if distinct.len() == 1 {
            self.error(span.clone(), DiagnosticKind::DistinctTooFew);
        }
        let most_flags = flags.iter().map(|flag| flag.max).sum::<usize>();
        if raw.min_flags > most_flags {
            self.error(
                span.clone(),
                DiagnosticKind::MinFlagsUnreachable {
                    min_flags: raw.min_flags,
                    most: most_flags,
                },
            );
        }
        let limits = match &raw.limits {
            Some(limits) => self.limits(span.clone(), limits, &settings.default_limits),
            None => settings.default_limits.clone(),
        };
        if raw.beside_jobs && (effect == Effect::Destructive || raw.job) {
            self.error(raw.id.span(), DiagnosticKind::BesideJobs);
        }
        if self.failed_since(mark) {
            return None;
        }
        Some(Rule {
            id,
            description: raw.description.clone(),
            binary: BinaryId(binary?),
            effect,
            template,
            params,
            flags,
            distinct,
            min_flags: raw.min_flags,
            limits,
            job: raw.job,
            beside_jobs: raw.beside_jobs,
            origin,
        })
    }

    /// How many values a param takes.
    ///
    /// ```text
    /// arity = [ "min" "=" int ] [ "max" "=" int ] [ "distinct" "=" bool ]
    /// ```
    /// None of them: exactly one value. Any of them: variadic, `min` (default 1) to `max`
    /// (default `min`) values, `1 <= max <= MAX_VARIADIC`, all different when `distinct`.
    fn arity(&mut self, span: Range<usize>, name: &str, raw: &RawParam) -> Arity {
        if (raw.min, raw.max, raw.distinct) == (None, None, None) {
            return Arity::One;
        }
        let min = raw.min.unwrap_or(1);
        let max = raw.max.unwrap_or(min);
        if min > max || max == 0 || max > MAX_VARIADIC {
            self.error(
                span,
                DiagnosticKind::ParamCounts {
                    param: name.to_owned(),
                    min,
                    max,
                    most: MAX_VARIADIC,
                },
            );
        }
        Arity::Many {
            min,
            max,
            distinct: raw.distinct.unwrap_or(false),
        }
    }
}
