//! A device param's in-use policy: whether the agent refuses a device that is in use.

use std::ops::Range;

use super::cx::Cx;
use super::raw::RawParam;
use crate::DiagnosticKind;
use crate::grammar::{Effect, InUsePolicy, Kind};

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
                self.error(
                    span,
                    DiagnosticKind::Invalid(format!(
                        "param `{name}`: in_use `{}` is not `refused` or `allowed`",
                        crate::value::escape(other)
                    )),
                );
                return InUsePolicy::Refused;
            }
        };
        if raw.in_use.is_some() && !matches!(kind, Kind::Device(_)) {
            self.error(
                span.clone(),
                DiagnosticKind::Invalid(format!(
                    "param `{name}`: in_use applies only to device params, this is a {}",
                    kind.name()
                )),
            );
        }
        if raw.in_use.is_some() && effect == Effect::Read {
            self.error(
                span.clone(),
                DiagnosticKind::Invalid(format!(
                    "param `{name}`: in_use applies only to state or destructive rules (a read rule is never checked)"
                )),
            );
        }
        match (allowed, &raw.in_use_reason) {
            (true, None) => {
                self.error(
                    span,
                    DiagnosticKind::Invalid(format!(
                        "param `{name}`: in_use = \"allowed\" needs an in_use_reason"
                    )),
                );
                InUsePolicy::Refused
            }
            (true, Some(reason)) => {
                let valid = !reason.trim().is_empty()
                    && reason.len() <= MAX_IN_USE_REASON
                    && reason.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
                if !valid {
                    self.error(
                        span,
                        DiagnosticKind::Invalid(format!(
                            "param `{name}`: in_use_reason must be printable ASCII, 1 to {MAX_IN_USE_REASON} bytes"
                        )),
                    );
                }
                InUsePolicy::Allowed {
                    reason: reason.clone(),
                }
            }
            (false, Some(_)) => {
                self.error(
                    span,
                    DiagnosticKind::Invalid(format!(
                        "param `{name}`: in_use_reason is only for in_use = \"allowed\""
                    )),
                );
                InUsePolicy::Refused
            }
            (false, None) => InUsePolicy::Refused,
        }
    }
}
