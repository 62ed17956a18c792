//! `[[managed]]`: the one rule per managed-file kind, each field given a type of its kind.
//!
//! ```text
//! managed = "id" "=" identifier "kind" "=" managed-kind "effect" "=" effect
//!           [ "actions" "=" actions ] *( "params." field "=" "{" "type" "=" name "}" )
//! ```

use super::cx::Cx;
use super::raw::RawManaged;
use crate::DiagnosticKind;
use crate::grammar::{Effect, Rule, TypeDef, TypeId};
use crate::managed::{self, ManagedAction, ManagedKind, ManagedRule};

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
            .map(|rule| rule.origin.clone())
            .or_else(|| {
                managed_rules
                    .iter()
                    .find(|rule| rule.id == id)
                    .map(|rule| rule.origin.clone())
            });
        if let Some(first) = first {
            self.error(
                span.clone(),
                DiagnosticKind::Duplicate {
                    what: "rule",
                    name: id.clone(),
                    first,
                },
            );
        }
        let Some(kind) = ManagedKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == raw.kind.get_ref())
        else {
            let message = format!(
                "unknown managed kind `{}` (known: mount_dir, key_file, fstab_entry, crypttab_entry)",
                raw.kind.get_ref()
            );
            self.error(raw.kind.span(), DiagnosticKind::Invalid(message));
            return None;
        };
        if let Some(previous) = managed_rules.iter().find(|rule| rule.kind == kind) {
            let message = format!(
                "managed kind `{}` already has rule `{}` at {}",
                kind.as_str(),
                previous.id,
                previous.origin
            );
            self.error(raw.kind.span(), DiagnosticKind::Invalid(message));
        }
        let mut field_types = Vec::new();
        for (field, expected) in kind.fields() {
            let Some(param) = raw.params.get(*field) else {
                self.error(
                    span.clone(),
                    DiagnosticKind::Invalid(format!(
                        "managed {} needs params.{field} (a {expected} type)",
                        kind.as_str()
                    )),
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
                self.error(
                    param.span(),
                    DiagnosticKind::Invalid(format!(
                        "params.{field} of a managed rule takes only a type"
                    )),
                );
            }
            match types.iter().position(|ty| ty.name == raw_param.ty) {
                Some(type_idx) if managed::fits(&types[type_idx].kind, expected) => {
                    field_types.push(TypeId(type_idx))
                }
                Some(type_idx) => {
                    let message = format!(
                        "params.{field} needs a {expected} type; `{}` is a {}",
                        raw_param.ty,
                        types[type_idx].kind.name()
                    );
                    self.error(param.span(), DiagnosticKind::Invalid(message));
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
                self.error(
                    span.clone(),
                    DiagnosticKind::Invalid(format!(
                        "managed {} has no field `{name}`",
                        kind.as_str()
                    )),
                );
            }
        }
        let actions = raw
            .actions
            .clone()
            .unwrap_or_else(|| vec![ManagedAction::Ensure, ManagedAction::Remove]);
        if actions.is_empty() {
            self.error(
                span.clone(),
                DiagnosticKind::Invalid("actions is empty".into()),
            );
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
}
