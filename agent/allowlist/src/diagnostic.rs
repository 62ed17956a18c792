//! What can be wrong with an allowlist, as data: each load diagnostic is a typed kind plus the
//! file, line and column it was found at.
//!
//! The kinds are grouped by what they are about: the file as a whole, names, words and numbers
//! anywhere in the grammar, then settings, binaries, types, rules, their templates, in-use
//! policies and `[[managed]]` rules. Each carries the values it names (the field, the bound, the
//! offending value), so a caller can match on it; `Display` is the text an admin reads.

use std::fmt;

use crate::grammar::{Kind, Origin};
use crate::managed::ManagedKind;

/// One problem found while loading, with where it is.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{origin}: {kind}")]
pub struct Diagnostic {
    pub origin: Origin,
    pub kind: DiagnosticKind,
}

/// Every diagnostic of a failed load.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub struct LoadErrors(pub Vec<Diagnostic>);

impl fmt::Display for LoadErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (idx, diagnostic) in self.0.iter().enumerate() {
            if idx > 0 {
                writeln!(f)?;
            }
            write!(f, "{diagnostic}")?;
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum DiagnosticKind {
    // The file as a whole.
    /// Not TOML, or not the shape of an allowlist (unknown key, wrong type); the deserializer's words.
    #[error("{0}")]
    Syntax(String),
    #[error("format version {found} is not supported (this engine reads version {supported})")]
    Version { found: u32, supported: u32 },
    #[error("[settings] may only appear in the main allowlist file, not in an overlay")]
    SettingsInOverlay,

    // Names, words and numbers, wherever they appear.
    #[error("{what} `{name}` is already defined at {first}")]
    Duplicate {
        what: &'static str,
        name: String,
        first: Origin,
    },
    #[error("unknown {what} `{name}`")]
    Unknown { what: &'static str, name: String },
    #[error("`{name}` is not a valid {what} name")]
    BadName { what: &'static str, name: String },
    #[error("{what} path `{path}` {error}")]
    BadPath {
        what: &'static str,
        path: String,
        error: String,
    },
    /// A word outside the characters its place allows; `shape` says what is allowed.
    #[error("{what} `{word}` is not {shape}")]
    BadWord {
        what: &'static str,
        /// Escaped for display when it can hold non-printable characters.
        word: String,
        shape: &'static str,
    },
    /// The same entry twice in one list (enum values, mount options, distinct params).
    #[error("{what} `{name}` appears twice")]
    Repeated { what: &'static str, name: String },
    /// A list that must have at least one entry.
    #[error("`{field}` needs at least one entry")]
    Empty { field: &'static str },
    /// A number outside the bounds of its field.
    #[error("`{field}` is {value}; it must be {min} to {max}")]
    OutOfRange {
        field: &'static str,
        value: u64,
        min: u64,
        max: u64,
    },

    // Settings and binaries.
    #[error("forced_mount_options must contain `{option}`")]
    ForcedOptionMissing { option: &'static str },
    #[error("forced_boot_options must contain `{option}`")]
    BootOptionMissing { option: &'static str },
    #[error(
        "forced_boot_options may hold only `nofail` and one `x-systemd.device-timeout=<1 to {max_s}>s` (both valid in fstab and crypttab), not `{option}`"
    )]
    BadBootOption { option: String, max_s: u64 },
    #[error("exit state `{code}` is not an exit code from 1 to 255")]
    BadExitCode { code: String },
    #[error("sha256 `{digest}` is not 64 lowercase hex digits")]
    BadDigest { digest: String },

    // Placeholder types.
    #[error("unknown type kind `{0}` (known: {known})", known = Kind::NAMES.join(", "))]
    UnknownKind(String),
    #[error("field `{field}` does not apply to a `{kind}` type")]
    FieldNotForKind { field: &'static str, kind: String },
    /// `forms` is empty, or only `kernel` with no `kernel_names`.
    #[error("a device type must accept some form")]
    NoDeviceForm,
    #[error("min {min} is above max {max}")]
    MinAboveMax { min: u64, max: u64 },
    #[error("mount option `{option}` contradicts the forced nosuid,nodev")]
    ContradictingOption { option: String },
    #[error(
        "mount option `{option}` takes a `{ty}`, a {kind}; only int, enum, label or uuid values are allowed"
    )]
    OptionValueType {
        option: String,
        ty: String,
        kind: &'static str,
    },

    // Rules: params, flags and the checks across them.
    #[error(
        "param `{param}` counts must satisfy min <= max, 1 <= max <= {most} (it has min {min}, max {max})"
    )]
    ParamCounts {
        param: String,
        min: usize,
        max: usize,
        most: usize,
    },
    #[error("flag `{name}` (`{token}`) is declared twice")]
    FlagRepeated { name: String, token: String },
    #[error("flag `{token}` ends with `=` but declares no value type")]
    FlagWithoutValue { token: String },
    #[error("flag `{flag}` max is {max}; it must be 1 to {most}")]
    FlagMax {
        flag: String,
        max: usize,
        most: usize,
    },
    /// A joined flag whose token begins another flag's: which flag a token is would depend on order.
    #[error("flag `{flag}` is a prefix of flag `{other}`")]
    FlagPrefix { flag: String, other: String },
    #[error("distinct names `{param}`, a variadic param (use its own `distinct`)")]
    DistinctVariadic { param: String },
    #[error("distinct needs at least two params")]
    DistinctTooFew,
    #[error(
        "beside_jobs is only for a read or state rule that is not a job (it stops or reads a job's operation)"
    )]
    BesideJobs,
    #[error(
        "min_flags {min_flags} cannot be met by the declared flags (they allow at most {most})"
    )]
    MinFlagsUnreachable { min_flags: usize, most: usize },
    #[error("{0}")]
    Template(TemplateProblem),
    #[error("param `{param}`: {problem}")]
    InUse {
        param: String,
        problem: InUseProblem,
    },

    // `[[managed]]` rules.
    #[error("{0}")]
    Managed(ManagedProblem),

    // Across rules, after everything parsed.
    #[error("rules `{first}` and `{second}` overlap: both accept `{witness}`")]
    Overlap {
        first: String,
        second: String,
        witness: String,
    },
}

/// What is wrong with a rule's `argv` template.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemplateProblem {
    #[error("`$flags` must appear once, before any variadic param")]
    FlagsPlacement,
    #[error("`--` cannot follow a variadic param")]
    EndOfOptionsAfterVariadic,
    #[error("implied token `{token}` cannot follow a variadic param")]
    ImpliedAfterVariadic { token: String },
    /// A literal or implied token starting with `-` right after `$flags`.
    #[error("{what} `{token}` right after `$flags` would read as a flag")]
    ReadsAsFlag { what: &'static str, token: String },
    #[error("param `{param}` is used twice")]
    ParamUsedTwice { param: String },
    #[error("a rule may have only one variadic param")]
    SecondVariadic,
    #[error("param `{param}` is used with `...` but declares no min/max")]
    DotsWithoutCounts { param: String },
    #[error("param `{param}` declares min/max, so write `${param}...`")]
    CountsWithoutDots { param: String },
    #[error("param `{param}` is declared but not used in argv")]
    ParamUnused { param: String },
    #[error("`$flags` is used but no flag is declared")]
    NoFlagDeclared,
    #[error("flags are declared but argv has no `$flags`")]
    NoFlagsToken,
}

/// What is wrong with a param's `in_use` / `in_use_reason`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InUseProblem {
    #[error("in_use `{value}` is not `refused` or `allowed`")]
    UnknownValue { value: String },
    #[error("in_use applies only to device params, this is a {kind}")]
    NotDevice { kind: &'static str },
    #[error("in_use applies only to state or destructive rules (a read rule is never checked)")]
    ReadRule,
    #[error("in_use = \"allowed\" needs an in_use_reason")]
    NoReason,
    #[error("in_use_reason must be printable ASCII, 1 to {most} bytes")]
    BadReason { most: usize },
    #[error("in_use_reason is only for in_use = \"allowed\"")]
    ReasonWithoutAllowed,
}

/// What is wrong with a `[[managed]]` rule.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ManagedProblem {
    #[error("unknown managed kind `{kind}` (known: {known})", known = managed_kind_names())]
    UnknownKind { kind: String },
    #[error("managed kind `{}` already has rule `{rule}` at {first}", .kind.as_str())]
    KindTaken {
        kind: ManagedKind,
        rule: String,
        first: Origin,
    },
    #[error("managed {} needs params.{field} (a {expected} type)", .kind.as_str())]
    MissingField {
        kind: ManagedKind,
        field: &'static str,
        expected: &'static str,
    },
    #[error("managed {} has no field `{field}`", .kind.as_str())]
    NoSuchField { kind: ManagedKind, field: String },
    #[error("params.{field} of a managed rule takes only a type")]
    OnlyType { field: &'static str },
    #[error("params.{field} needs a {expected} type; `{ty}` is a {found}")]
    FieldType {
        field: &'static str,
        expected: &'static str,
        ty: String,
        found: &'static str,
    },
    /// The fstab entry's options type allows an option that boot must never get: `degraded`,
    /// or one of the forced boot options with another value.
    #[error(
        "params.options of managed fstab_entry has type `{ty}`, which allows `{option}`: {why}"
    )]
    UnsafeAtBoot {
        ty: String,
        option: String,
        why: &'static str,
    },
}

fn managed_kind_names() -> String {
    ManagedKind::ALL.map(ManagedKind::as_str).join(", ")
}
