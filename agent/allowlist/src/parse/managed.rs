//! `[[managed]]`: the one rule per managed-file kind, each field given a type of its kind.
//!
//! ```text
//! managed = "id" "=" identifier "kind" "=" managed-kind "effect" "=" effect
//!           [ "actions" "=" actions ] *( "params." field "=" "{" "type" "=" name "}" )
//! ```
//! The options type of an `fstab_entry` rule must be safe at boot: it allows no `degraded` and
//! none of the forced boot options' keys.

use std::ops::Range;

use super::cx::Cx;
use super::raw::RawManaged;
use crate::grammar::{Effect, Kind, OptionPattern, Rule, Settings, TypeDef, TypeId};
use crate::managed::{self, ManagedAction, ManagedKind, ManagedRule, NEVER_AT_BOOT};
use crate::value::escape;
use crate::{DiagnosticKind, ManagedProblem};

impl Cx<'_> {
    /// A `[[managed]]` rule: one per kind, each of the kind's fields given a type of the right kind.
    pub(super) fn managed(
        &mut self,
        raw: &RawManaged,
        types: &[TypeDef],
        rules: &[Rule],
        managed_rules: &[ManagedRule],
        settings: &Settings,
    ) -> Option<ManagedRule> {
        let id = raw.id.get_ref().clone();
        let span = raw.id.span();
        let mark = self.mark();
        self.check_identifier(span.clone(), "rule id", &id);
        let first = rules
            .iter()
            .find(|rule| rule.id == id)
            .map(|rule| &rule.origin)
            .or_else(|| {
                managed_rules
                    .iter()
                    .find(|rule| rule.id == id)
                    .map(|rule| &rule.origin)
            });
        self.check_new(span.clone(), "rule", &id, first);
        let Some(kind) = ManagedKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == raw.kind.get_ref())
        else {
            self.managed_error(
                raw.kind.span(),
                ManagedProblem::UnknownKind {
                    kind: escape(raw.kind.get_ref()),
                },
            );
            return None;
        };
        if let Some(previous) = managed_rules.iter().find(|rule| rule.kind == kind) {
            self.managed_error(
                raw.kind.span(),
                ManagedProblem::KindTaken {
                    kind,
                    rule: previous.id.clone(),
                    first: previous.origin.clone(),
                },
            );
        }
        let mut field_types = Vec::new();
        for &(field, expected) in kind.fields() {
            let Some(param) = raw.params.get(field) else {
                self.managed_error(
                    span.clone(),
                    ManagedProblem::MissingField {
                        kind,
                        field,
                        expected,
                    },
                );
                continue;
            };
            let raw_param = param.get_ref();
            if raw_param.min.is_some()
                || raw_param.max.is_some()
                || raw_param.distinct.is_some()
                || raw_param.in_use.is_some()
                || raw_param.in_use_reason.is_some()
            {
                self.managed_error(param.span(), ManagedProblem::OnlyType { field });
            }
            match types.iter().position(|ty| ty.name == raw_param.ty) {
                Some(type_idx) if managed::fits(&types[type_idx].kind, expected) => {
                    if kind == ManagedKind::FstabEntry {
                        self.check_boot_safe(param.span(), &types[type_idx], settings);
                    }
                    field_types.push(TypeId(type_idx))
                }
                Some(type_idx) => {
                    self.managed_error(
                        param.span(),
                        ManagedProblem::FieldType {
                            field,
                            expected,
                            ty: raw_param.ty.clone(),
                            found: types[type_idx].kind.name(),
                        },
                    );
                }
                None => self.error(
                    param.span(),
                    DiagnosticKind::Unknown {
                        what: "type",
                        name: raw_param.ty.clone(),
                    },
                ),
            }
        }
        for name in raw.params.keys() {
            if !kind.fields().iter().any(|(field, _)| field == name) {
                self.managed_error(
                    span.clone(),
                    ManagedProblem::NoSuchField {
                        kind,
                        field: name.clone(),
                    },
                );
            }
        }
        let actions = raw
            .actions
            .clone()
            .unwrap_or_else(|| vec![ManagedAction::Ensure, ManagedAction::Remove]);
        if actions.is_empty() {
            self.error(span.clone(), DiagnosticKind::Empty { field: "actions" });
        }
        let effect = Effect::from(raw.effect);
        let origin = self.origin(span);
        (!self.failed_since(mark)).then(|| ManagedRule {
            id,
            kind,
            effect,
            description: raw.description.clone(),
            actions,
            field_types,
            origin,
        })
    }

    /// An fstab entry's options type allows neither an option in [`NEVER_AT_BOOT`] nor a forced
    /// boot option's key, so no request can boot a pool degraded or change the boot options.
    fn check_boot_safe(&mut self, span: Range<usize>, ty: &TypeDef, settings: &Settings) {
        let Kind::MountOptions(spec) = &ty.kind else {
            return;
        };
        let boot_keys: Vec<&str> = settings
            .forced_boot_options
            .iter()
            .filter_map(|option| option.split('=').next())
            .collect();
        for pattern in &spec.allow {
            let why = if NEVER_AT_BOOT.contains(&pattern.key()) {
                "a pool is never mounted degraded at boot (the mount rule may allow it for a confirmed repair)"
            } else if boot_keys.contains(&pattern.key()) {
                "[settings] forced_boot_options sets it for every fstab entry"
            } else {
                continue;
            };
            let option = match pattern {
                OptionPattern::Exact(word) => word.clone(),
                OptionPattern::Valued { prefix, .. } => format!("{prefix}<value>"),
            };
            self.managed_error(
                span.clone(),
                ManagedProblem::UnsafeAtBoot {
                    ty: ty.name.clone(),
                    option,
                    why,
                },
            );
        }
    }

    fn managed_error(&mut self, span: Range<usize>, problem: ManagedProblem) {
        self.error(span, DiagnosticKind::Managed(problem));
    }
}
