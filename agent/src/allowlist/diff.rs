//! Findings for `nosctl allowlist audit`.
