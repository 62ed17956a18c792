//! TOML text → the grammar of `grammar.rs`, collecting every diagnostic with file, line and column.
//!
//! This module never touches the filesystem: sources arrive as text. Structural errors (unknown
//! keys, wrong types) come from the TOML deserializer, which stops at the first one in a file;
//! every semantic error after that (unknown names, bad bounds, ambiguous templates) is collected.
//!
//! ```text
//! file = version [ settings ] *binary *type *rule *managed     ; overlays: no settings
//! ```
//!
//! One submodule per part of the grammar, each with the EBNF of what it reads beside its code:
//! `raw` holds the TOML shapes serde reads, `cx` the diagnostics collector every part reports to,
//! then `settings` (and limits), `binary`, `types` (placeholder types and mount-option patterns),
//! `rule` (params and the checks across them), `flag`, `template` (the argv tokens), `in_use`
//! (a device param's in-use policy) and `managed` (`[[managed]]` rules). The passes run in that
//! order across all files, so a rule may use a type declared in any file.

mod binary;
mod cx;
mod flag;
mod in_use;
mod managed;
mod raw;
mod rule;
mod settings;
mod template;
mod types;

use crate::grammar::{Binary, Rule, Settings, TypeDef};
use crate::managed::ManagedRule;
use crate::{Diagnostic, DiagnosticKind};

use cx::Cx;
use raw::RawFile;

/// The only file format version this engine reads.
pub const FORMAT_VERSION: u32 = 1;

/// One file of allowlist text: `allowlist.toml` first, then overlays.
#[derive(Clone, Debug)]
pub struct Source {
    /// Shown in diagnostics (a path, usually).
    pub name: String,
    pub text: String,
}

/// The definitions of all sources, before cross-checks such as overlaps.
pub struct Parsed {
    pub settings: Settings,
    pub binaries: Vec<Binary>,
    pub types: Vec<TypeDef>,
    pub rules: Vec<Rule>,
    pub managed: Vec<ManagedRule>,
}

/// Parses every source; returns the definitions only when no diagnostic was raised.
pub fn parse(sources: &[Source]) -> Result<Parsed, Vec<Diagnostic>> {
    let mut cx = Cx::new();
    let mut files = Vec::new();
    for source in sources {
        cx.enter(source);
        match toml::from_str::<RawFile>(&source.text) {
            Ok(raw) => {
                if *raw.version.get_ref() != FORMAT_VERSION {
                    cx.error(
                        raw.version.span(),
                        DiagnosticKind::Version {
                            found: *raw.version.get_ref(),
                            supported: FORMAT_VERSION,
                        },
                    );
                }
                files.push((source, raw));
            }
            Err(error) => {
                let span = error.span().unwrap_or(0..0);
                cx.error(span, DiagnosticKind::Syntax(error.message().to_owned()));
            }
        }
    }
    if !cx.diagnostics.is_empty() {
        return Err(cx.diagnostics);
    }

    let mut settings = None;
    for (file_idx, (source, raw)) in files.iter().enumerate() {
        cx.enter(source);
        if let Some(raw_settings) = &raw.settings {
            if file_idx == 0 {
                settings = Some(cx.settings(raw_settings));
            } else {
                cx.error(raw_settings.span(), DiagnosticKind::SettingsInOverlay);
            }
        }
    }
    let settings = settings.unwrap_or_else(settings::default_settings);

    let mut binaries: Vec<Binary> = Vec::new();
    let mut declared = types::Declared::default();
    for (source, raw) in &files {
        cx.enter(source);
        for raw_binary in &raw.binary {
            if let Some(binary) = cx.binary(raw_binary, &binaries) {
                binaries.push(binary);
            }
        }
        for raw_type in &raw.types {
            cx.declare_type(source, raw_type, &mut declared);
        }
    }
    let types = cx.resolve_types(declared, &settings);

    let mut rules: Vec<Rule> = Vec::new();
    for (source, raw) in &files {
        cx.enter(source);
        for raw_rule in &raw.rule {
            if let Some(rule) = cx.rule(raw_rule, &binaries, &types, &settings, &rules) {
                rules.push(rule);
            }
        }
    }

    let mut managed: Vec<ManagedRule> = Vec::new();
    for (source, raw) in &files {
        cx.enter(source);
        for raw_managed in &raw.managed {
            if let Some(rule) = cx.managed(raw_managed, &types, &rules, &managed, &settings) {
                managed.push(rule);
            }
        }
    }

    if cx.diagnostics.is_empty() {
        Ok(Parsed {
            settings,
            binaries,
            types,
            rules,
            managed,
        })
    } else {
        Err(cx.diagnostics)
    }
}
