//! `[[managed]]`: the one rule per managed-file kind, each field given a type of its kind.
//!
//! ```text
//! managed = "id" "=" identifier "kind" "=" managed-kind "effect" "=" effect
//!           [ "actions" "=" actions ] *( "params." field "=" "{" "type" "=" name "}" )
//! ```

use std::ops::Range;

use super::cx::Cx;
use super::raw::RawManaged;
use crate::grammar::{Effect, Rule, TypeDef, TypeId};
use crate::managed::{self, ManagedAction, ManagedKind, ManagedRule};
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

    fn managed_error(&mut self, span: Range<usize>, problem: ManagedProblem) {
        self.error(span, DiagnosticKind::Managed(problem));
    }
}
