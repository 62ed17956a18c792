//! The allowlist: the declarative grammar of the only commands nos may run as root.
//!
//! A request is an argv vector, never a string. It is allowed only when it matches exactly one
//! rule of `allowlist.toml`; the match carries typed, canonical values from which the argv that
//! actually runs is rendered. Rules whose languages overlap are a load error, so order never
//! decides anything.
//!
//! ```text
//! let allowlist = Allowlist::load(&[Source { name, text }])?;
//! match allowlist.check(&argv) {
//!     Verdict::Allowed(matched) => allowlist.render(&matched),   // -> Command
//!     Verdict::Rejected(rejection) => ...,                       // token index + reason
//! }
//! ```
//!
//! This crate never spawns, never writes and never reads the clock; its one IO is [`files`],
//! which reads `allowlist.toml` and its overlays. Checks that need the live system (block device,
//! symlinks, ownership, binary digests) are described by `ExecCheck` and run by the agent;
//! `audit` takes the facts it needs as arguments.
#![forbid(unsafe_code)]

pub mod audit;
mod diagnostic;
pub mod diff;
pub mod explain;
pub mod files;
pub mod grammar;
pub mod managed;
mod matcher;
mod overlap;
mod parse;
mod render;
pub mod testcases;
pub mod value;

pub use diagnostic::{
    Diagnostic, DiagnosticKind, InUseProblem, LoadErrors, ManagedProblem, TemplateProblem,
};
pub use grammar::{Binary, Effect, Kind, Limits, Origin, Rule, Settings, TypeDef};
pub use managed::{
    ManagedAction, ManagedKind, ManagedMatch, ManagedRequest, ManagedRule, ManagedVerdict,
};
pub use matcher::{MAX_ARGV_BYTES, MAX_ARGV_TOKENS, Match, Reason, Rejection, Verdict};
pub use parse::{FORMAT_VERSION, Source};
pub use render::{Command, ExecCheck};
pub use value::Value;

/// A loaded, validated allowlist.
#[derive(Clone, Debug)]
pub struct Allowlist {
    settings: Settings,
    binaries: Vec<Binary>,
    types: Vec<TypeDef>,
    rules: Vec<Rule>,
    managed: Vec<ManagedRule>,
}

impl Allowlist {
    /// Loads the main file (`sources[0]`) and its overlays, merged. Fails with every
    /// diagnostic found: syntax, unknown names, bad bounds and overlapping rules.
    pub fn load(sources: &[Source]) -> Result<Allowlist, LoadErrors> {
        let parsed = parse::parse(sources).map_err(LoadErrors)?;
        let allowlist = Allowlist {
            settings: parsed.settings,
            binaries: parsed.binaries,
            types: parsed.types,
            rules: parsed.rules,
            managed: parsed.managed,
        };
        let overlaps = overlap::find_overlaps(&allowlist);
        if !overlaps.is_empty() {
            return Err(LoadErrors(
                overlaps
                    .into_iter()
                    .map(|found| Diagnostic {
                        origin: allowlist.rules[found.second].origin.clone(),
                        kind: DiagnosticKind::Overlap {
                            first: allowlist.rules[found.first].id.clone(),
                            second: allowlist.rules[found.second].id.clone(),
                            witness: value::escape(&found.witness.join(" ")),
                        },
                    })
                    .collect(),
            ));
        }
        Ok(allowlist)
    }

    /// Checks an argv; `argv[0]` is the program, by bare name or exact configured path.
    pub fn check(&self, argv: &[String]) -> Verdict {
        matcher::check(self, argv)
    }

    /// Checks a managed-file request (a mount directory, a key file, an fstab or crypttab entry).
    pub fn check_managed(&self, action: ManagedAction, request: &ManagedRequest) -> ManagedVerdict {
        managed::check(self, action, request)
    }

    pub fn managed_rules(&self) -> &[ManagedRule] {
        &self.managed
    }

    /// The command that runs for a match.
    pub fn render(&self, matched: &Match) -> Command {
        matched.command.clone()
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn binaries(&self) -> &[Binary] {
        &self.binaries
    }

    pub fn types(&self) -> &[TypeDef] {
        &self.types
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The id of every rule, command rules first, then `[[managed]]` rules.
    pub fn rule_ids(&self) -> impl Iterator<Item = &str> {
        self.rules
            .iter()
            .map(|rule| rule.id.as_str())
            .chain(self.managed.iter().map(|rule| rule.id.as_str()))
    }

    pub fn rule(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|rule| rule.id == id)
    }

    pub fn binary_of(&self, rule: &Rule) -> &Binary {
        &self.binaries[rule.binary.0]
    }

    pub fn type_of(&self, id: grammar::TypeId) -> &TypeDef {
        &self.types[id.0]
    }
}
