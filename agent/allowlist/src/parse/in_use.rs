//! A device param's in-use policy: whether the agent refuses a device that is in use.

use std::ops::Range;

use super::cx::Cx;
use super::raw::RawParam;
use crate::grammar::{Effect, InUsePolicy, Kind};
use crate::value::escape;
use crate::{DiagnosticKind, InUseProblem};

/// Longest `in_use_reason` a param may give, in bytes; a longer one is a load error.
pub const MAX_IN_USE_REASON: usize = 200;

impl Cx<'_> {
    /// A param's in-use policy.
    ///
    /// ```text
    /// in-use = [ "in_use" "=" ( "\"refused\"" / "\"allowed\"" ) ] [ "in_use_reason" "=" string ]
    /// ```
    /// `"allowed"` needs a reason (printable ASCII, 1 to [`MAX_IN_USE_REASON`] bytes) and applies
    /// only to a device param of a state-changing or destructive rule: elsewhere nothing is
    /// checked, so there would be nothing to allow.
    pub(super) fn in_use_policy(
        &mut self,
        span: Range<usize>,
        name: &str,
        raw: &RawParam,
        kind: &Kind,
        effect: Effect,
    ) -> InUsePolicy {
        let allowed = match raw.in_use.as_deref() {
            None | Some("refused") => false,
            Some("allowed") => true,
            Some(other) => {
                self.in_use_error(
                    span,
                    name,
                    InUseProblem::UnknownValue {
                        value: escape(other),
                    },
                );
                return InUsePolicy::Refused;
            }
        };
        if raw.in_use.is_some() && !matches!(kind, Kind::Device(_)) {
            self.in_use_error(
                span.clone(),
                name,
                InUseProblem::NotDevice { kind: kind.name() },
            );
        }
        if raw.in_use.is_some() && effect == Effect::Read {
            self.in_use_error(span.clone(), name, InUseProblem::ReadRule);
        }
        match (allowed, &raw.in_use_reason) {
            (true, None) => {
                self.in_use_error(span, name, InUseProblem::NoReason);
                InUsePolicy::Refused
            }
            (true, Some(reason)) => {
                let valid = !reason.trim().is_empty()
                    && reason.len() <= MAX_IN_USE_REASON
                    && reason.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
                if !valid {
                    self.in_use_error(
                        span,
                        name,
                        InUseProblem::BadReason {
                            most: MAX_IN_USE_REASON,
                        },
                    );
                }
                InUsePolicy::Allowed {
                    reason: reason.clone(),
                }
            }
            (false, Some(_)) => {
                self.in_use_error(span, name, InUseProblem::ReasonWithoutAllowed);
                InUsePolicy::Refused
            }
            (false, None) => InUsePolicy::Refused,
        }
    }

    fn in_use_error(&mut self, span: Range<usize>, param: &str, problem: InUseProblem) {
        self.error(
            span,
            DiagnosticKind::InUse {
                param: param.to_owned(),
                problem,
            },
        );
    }
}
