//! TOML text → the grammar of `grammar.rs`, collecting every diagnostic with file, line and column.
//!
//! This module never touches the filesystem: sources arrive as text. Structural errors (unknown
//! keys, wrong types) come from the TOML deserializer, which stops at the first one in a file;
//! every semantic error after that (unknown names, bad bounds, ambiguous templates) is collected.

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::grammar::{
    Arity, Binary, BinaryId, DeviceForm, DeviceSpec, Effect, Flag, FlagValue, InUsePolicy, Item,
    KeyFileSpec, Kind, Limits, MountOptionsSpec, MountPathSpec, NameSpec, OptionPattern, Origin,
    Param, Rule, Settings, TypeDef, TypeId,
};
use super::managed::{self, ManagedAction, ManagedKind, ManagedRule};
use super::value::{is_component_char, path_components};
use super::{Diagnostic, DiagnosticKind};

/// The only file format version this engine reads.
pub const FORMAT_VERSION: u32 = 1;
/// Most values one variadic placeholder may take (e.g. devices in one command).
pub const MAX_VARIADIC: usize = 32;
/// Most times one flag may repeat.
pub const MAX_FLAG_REPEAT: usize = 8;
/// Longest timeout a rule may set: one day.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
/// Largest output cap a rule may set.
pub const MAX_OUTPUT_CAP: usize = 64 << 20;
/// Deepest a mount path type may reach below its root.
pub const MAX_MOUNT_DEPTH: usize = 16;
/// Longest `in_use_reason` a param may give, in bytes; a longer one is a load error.
pub const MAX_IN_USE_REASON: usize = 200;
/// Default mount roots, key directory and forced options.
pub const DEFAULT_MOUNT_ROOTS: [&str; 2] = ["/srv", "/mnt"];
pub const DEFAULT_KEY_DIR: &str = "/etc/nos/keys";
pub const REQUIRED_FORCED_OPTIONS: [&str; 2] = ["nosuid", "nodev"];
/// Mount options that contradict the forced ones; no type may allow them.
const CONTRADICTING_OPTIONS: [&str; 2] = ["suid", "dev"];

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    version: Spanned<u32>,
    settings: Option<Spanned<RawSettings>>,
    #[serde(default)]
    binary: Vec<RawBinary>,
    #[serde(default, rename = "type")]
    types: Vec<RawType>,
    #[serde(default)]
    rule: Vec<RawRule>,
    #[serde(default)]
    managed: Vec<RawManaged>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManaged {
    id: Spanned<String>,
    kind: Spanned<String>,
    effect: RawEffect,
    #[serde(default)]
    description: String,
    actions: Option<Vec<ManagedAction>>,
    #[serde(default)]
    params: BTreeMap<String, Spanned<RawParam>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    mount_roots: Option<Vec<Spanned<String>>>,
    key_dir: Option<Spanned<String>>,
    forced_mount_options: Option<Spanned<Vec<String>>>,
    limits: Option<Spanned<RawLimits>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    timeout_s: Option<u64>,
    kill_after_s: Option<u64>,
    max_stdout: Option<usize>,
    max_stderr: Option<usize>,
    #[serde(default)]
    exit_states: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBinary {
    name: Spanned<String>,
    path: Spanned<String>,
    sha256: Option<Spanned<String>>,
    #[serde(default)]
    end_of_options: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawType {
    name: Spanned<String>,
    kind: Spanned<String>,
    forms: Option<Vec<String>>,
    kernel_names: Option<Vec<String>>,
    roots: Option<Vec<String>>,
    max_depth: Option<usize>,
    dir: Option<String>,
    suffix: Option<String>,
    max_len: Option<usize>,
    values: Option<Vec<String>>,
    min: Option<u64>,
    max: Option<u64>,
    allow: Option<Vec<String>>,
    max_items: Option<usize>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum RawEffect {
    Read,
    State,
    Destructive,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: Spanned<String>,
    binary: Spanned<String>,
    effect: RawEffect,
    #[serde(default)]
    description: String,
    argv: Vec<Spanned<String>>,
    #[serde(default)]
    params: BTreeMap<String, Spanned<RawParam>>,
    #[serde(default)]
    flag: Vec<Spanned<RawFlag>>,
    limits: Option<RawLimits>,
    #[serde(default)]
    job: bool,
    #[serde(default)]
    distinct: Vec<String>,
    #[serde(default)]
    min_flags: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawParam {
    #[serde(rename = "type")]
    ty: String,
    min: Option<usize>,
    max: Option<usize>,
    distinct: Option<bool>,
    /// `"refused"` (the default) or `"allowed"`; see [`Cx::in_use_policy`].
    in_use: Option<String>,
    in_use_reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFlag {
    name: String,
    token: String,
    value: Option<String>,
    max: Option<usize>,
    #[serde(default)]
    conflicts: Vec<String>,
    #[serde(default)]
    requires: Vec<String>,
}

/// Parses every source; returns the definitions only when no diagnostic was raised.
pub fn parse(sources: &[Source]) -> Result<Parsed, Vec<Diagnostic>> {
    let mut cx = Cx {
        diagnostics: Vec::new(),
        file: String::new(),
        text: String::new(),
    };
    let mut files = Vec::new();
    for source in sources {
        cx.file = source.name.clone();
        cx.text = source.text.clone();
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
    let settings = settings.unwrap_or_else(default_settings);

    let mut binaries: Vec<Binary> = Vec::new();
    let mut types: Vec<TypeDef> = Vec::new();
    let mut raw_types = Vec::new();
    for (source, raw) in &files {
        cx.enter(source);
        for raw_binary in &raw.binary {
            if let Some(binary) = cx.binary(raw_binary, &binaries) {
                binaries.push(binary);
            }
        }
        // Types are declared before they are resolved, so they may refer to each other in any order.
        for raw_type in &raw.types {
            let origin = cx.origin(raw_type.name.span());
            if let Some(previous) = types.iter().find(|ty| ty.name == *raw_type.name.get_ref()) {
                cx.error(
                    raw_type.name.span(),
                    DiagnosticKind::Duplicate {
                        what: "type",
                        name: previous.name.clone(),
                        first: previous.origin.clone(),
                    },
                );
                continue;
            }
            cx.check_identifier(raw_type.name.span(), "type", raw_type.name.get_ref());
            types.push(TypeDef {
                name: raw_type.name.get_ref().clone(),
                kind: Kind::Uuid,
                origin,
            });
            raw_types.push((source, raw_type));
        }
    }
    let names: Vec<String> = types.iter().map(|ty| ty.name.clone()).collect();
    for (type_idx, (source, raw_type)) in raw_types.iter().enumerate() {
        cx.enter(source);
        if let Some(kind) = cx.kind(raw_type, &names, &settings) {
            types[type_idx].kind = kind;
        }
    }
    cx.check_valued_option_types(&types);

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
            if let Some(rule) = cx.managed(raw_managed, &types, &rules, &managed) {
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

pub fn default_limits() -> Limits {
    Limits {
        timeout: Duration::from_secs(60),
        kill_after: Duration::from_secs(5),
        max_stdout: 1 << 20,
        max_stderr: 64 << 10,
        exit_states: BTreeMap::new(),
    }
}

fn default_settings() -> Settings {
    Settings {
        mount_roots: DEFAULT_MOUNT_ROOTS
            .iter()
            .map(|root| (*root).to_owned())
            .collect(),
        key_dir: DEFAULT_KEY_DIR.to_owned(),
        forced_mount_options: REQUIRED_FORCED_OPTIONS
            .iter()
            .map(|option| (*option).to_owned())
            .collect(),
        default_limits: default_limits(),
    }
}

/// The parse context: the current file and the diagnostics so far.
struct Cx {
    diagnostics: Vec<Diagnostic>,
    file: String,
    text: String,
}

impl Cx {
    fn enter(&mut self, source: &Source) {
        self.file = source.name.clone();
        self.text = source.text.clone();
    }

    fn origin(&self, span: Range<usize>) -> Origin {
        let before = &self.text[..span.start.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let col = before
            .rsplit('\n')
            .next()
            .map_or(0, |line_text| line_text.chars().count())
            + 1;
        Origin {
            file: self.file.clone(),
            line,
            col,
        }
    }

    fn error(&mut self, span: Range<usize>, kind: DiagnosticKind) {
        let origin = self.origin(span);
        self.diagnostics.push(Diagnostic { origin, kind });
    }

    fn check_identifier(&mut self, span: Range<usize>, what: &'static str, name: &str) {
        let valid = name.len() <= 64
            && name.starts_with(|ch: char| ch.is_ascii_alphabetic())
            && name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '_' | '-' | '.'));
        if !valid {
            self.error(
                span,
                DiagnosticKind::BadName {
                    what,
                    name: name.to_owned(),
                },
            );
        }
    }

    fn check_path(&mut self, span: Range<usize>, what: &'static str, path: &str) -> bool {
        match path_components(path) {
            Ok(_) => true,
            Err(error) => {
                self.error(
                    span,
                    DiagnosticKind::BadPath {
                        what,
                        path: path.to_owned(),
                        error: error.to_string(),
                    },
                );
                false
            }
        }
    }

    fn settings(&mut self, raw: &Spanned<RawSettings>) -> Settings {
        let defaults = default_settings();
        let span = raw.span();
        let raw = raw.get_ref();
        let mount_roots = match &raw.mount_roots {
            Some(roots) => {
                for root in roots {
                    self.check_path(root.span(), "mount root", root.get_ref());
                }
                if roots.is_empty() {
                    self.error(
                        span.clone(),
                        DiagnosticKind::Invalid("mount_roots is empty".into()),
                    );
                }
                roots.iter().map(|root| root.get_ref().clone()).collect()
            }
            None => defaults.mount_roots,
        };
        let key_dir = match &raw.key_dir {
            Some(dir) => {
                self.check_path(dir.span(), "key directory", dir.get_ref());
                dir.get_ref().clone()
            }
            None => defaults.key_dir,
        };
        let forced_mount_options = match &raw.forced_mount_options {
            Some(forced) => {
                for required in REQUIRED_FORCED_OPTIONS {
                    if !forced.get_ref().iter().any(|option| option == required) {
                        self.error(
                            forced.span(),
                            DiagnosticKind::Invalid(format!(
                                "forced_mount_options must contain `{required}`"
                            )),
                        );
                    }
                }
                forced.get_ref().clone()
            }
            None => defaults.forced_mount_options,
        };
        let default_limits = match &raw.limits {
            Some(limits) => self.limits(limits.span(), limits.get_ref(), &defaults.default_limits),
            None => defaults.default_limits,
        };
        Settings {
            mount_roots,
            key_dir,
            forced_mount_options,
            default_limits,
        }
    }

    fn limits(&mut self, span: Range<usize>, raw: &RawLimits, base: &Limits) -> Limits {
        let timeout = raw.timeout_s.map_or(base.timeout, Duration::from_secs);
        let kill_after = raw
            .kill_after_s
            .map_or(base.kill_after, Duration::from_secs);
        let max_stdout = raw.max_stdout.unwrap_or(base.max_stdout);
        let max_stderr = raw.max_stderr.unwrap_or(base.max_stderr);
        if timeout.is_zero() || timeout > MAX_TIMEOUT || kill_after > MAX_TIMEOUT {
            self.error(
                span.clone(),
                DiagnosticKind::Invalid(format!(
                    "timeouts must be 1 s to {} s",
                    MAX_TIMEOUT.as_secs()
                )),
            );
        }
        if max_stdout > MAX_OUTPUT_CAP || max_stderr > MAX_OUTPUT_CAP {
            self.error(
                span.clone(),
                DiagnosticKind::Invalid(format!(
                    "output caps must be at most {MAX_OUTPUT_CAP} bytes"
                )),
            );
        }
        let mut exit_states = base.exit_states.clone();
        for (code, state) in &raw.exit_states {
            match code.parse::<i32>() {
                Ok(code) if (1..=255).contains(&code) => {
                    exit_states.insert(code, state.clone());
                }
                _ => self.error(
                    span.clone(),
                    DiagnosticKind::Invalid(format!(
                        "exit state `{code}` is not an exit code from 1 to 255"
                    )),
                ),
            }
        }
        Limits {
            timeout,
            kill_after,
            max_stdout,
            max_stderr,
            exit_states,
        }
    }

    fn binary(&mut self, raw: &RawBinary, binaries: &[Binary]) -> Option<Binary> {
        let name = raw.name.get_ref();
        let path = raw.path.get_ref();
        let origin = self.origin(raw.name.span());
        if let Some(previous) = binaries.iter().find(|binary| binary.name == *name) {
            self.error(
                raw.name.span(),
                DiagnosticKind::Duplicate {
                    what: "binary",
                    name: name.clone(),
                    first: previous.origin.clone(),
                },
            );
            return None;
        }
        if let Some(previous) = binaries.iter().find(|binary| binary.path == *path) {
            self.error(
                raw.path.span(),
                DiagnosticKind::Duplicate {
                    what: "binary path",
                    name: path.clone(),
                    first: previous.origin.clone(),
                },
            );
            return None;
        }
        let name_ok = !name.is_empty()
            && !name.starts_with(['-', '.'])
            && name.chars().all(is_component_char);
        if !name_ok {
            self.error(
                raw.name.span(),
                DiagnosticKind::BadName {
                    what: "binary",
                    name: name.clone(),
                },
            );
        }
        let path_ok = self.check_path(raw.path.span(), "binary", path);
        let sha256 = raw.sha256.as_ref().and_then(|pin| {
            let digest = pin.get_ref();
            let bytes = (digest.len() == 64
                && digest
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
            .then(|| hex::decode(digest).ok())
            .flatten()
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok());
            if bytes.is_none() {
                self.error(
                    pin.span(),
                    DiagnosticKind::Invalid(format!(
                        "sha256 `{digest}` is not 64 lowercase hex digits"
                    )),
                );
            }
            bytes
        });
        (name_ok && path_ok).then(|| Binary {
            name: name.clone(),
            path: path.clone(),
            sha256,
            end_of_options: raw.end_of_options,
            origin,
        })
    }

    fn kind(&mut self, raw: &RawType, names: &[String], settings: &Settings) -> Option<Kind> {
        let span = raw.name.span();
        let kind_name = raw.kind.get_ref().as_str();
        let fields: [(&str, bool); 12] = [
            ("forms", raw.forms.is_some()),
            ("kernel_names", raw.kernel_names.is_some()),
            ("roots", raw.roots.is_some()),
            ("max_depth", raw.max_depth.is_some()),
            ("dir", raw.dir.is_some()),
            ("suffix", raw.suffix.is_some()),
            ("max_len", raw.max_len.is_some()),
            ("values", raw.values.is_some()),
            ("min", raw.min.is_some()),
            ("max", raw.max.is_some()),
            ("allow", raw.allow.is_some()),
            ("max_items", raw.max_items.is_some()),
        ];
        let applicable: &[&str] = match kind_name {
            "device" => &["forms", "kernel_names"],
            "mount_path" => &["roots", "max_depth"],
            "key_file" => &["dir", "suffix"],
            "label" | "mapper_name" => &["max_len"],
            "enum" => &["values"],
            "int" => &["min", "max"],
            "devid" => &["max"],
            "uuid" => &[],
            "mount_options" => &["allow", "max_items"],
            _ => {
                self.error(
                    raw.kind.span(),
                    DiagnosticKind::UnknownKind(kind_name.to_owned()),
                );
                return None;
            }
        };
        let mut ok = true;
        for (field, present) in fields {
            if present && !applicable.contains(&field) {
                self.error(
                    span.clone(),
                    DiagnosticKind::FieldNotForKind {
                        field,
                        kind: kind_name.to_owned(),
                    },
                );
                ok = false;
            }
        }
        let kind = match kind_name {
            "device" => {
                let forms = match &raw.forms {
                    Some(forms) => forms
                        .iter()
                        .filter_map(|form| {
                            let found = DeviceForm::ALL
                                .into_iter()
                                .find(|known| known.as_str() == form);
                            if found.is_none() {
                                self.error(
                                    span.clone(),
                                    DiagnosticKind::Invalid(format!(
                                        "unknown device form `{form}`"
                                    )),
                                );
                            }
                            found
                        })
                        .collect(),
                    None => DeviceForm::ALL.to_vec(),
                };
                let kernel_names = raw.kernel_names.clone().unwrap_or_else(|| {
                    ["sd", "vd", "xvd", "hd", "nvme", "mmcblk", "loop"]
                        .map(str::to_owned)
                        .to_vec()
                });
                for prefix in &kernel_names {
                    let valid = prefix.len() <= 16
                        && prefix.starts_with(|ch: char| ch.is_ascii_lowercase())
                        && prefix
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
                    if !valid {
                        self.error(
                            span.clone(),
                            DiagnosticKind::Invalid(format!(
                                "kernel name prefix `{prefix}` is not [a-z][a-z0-9-]*"
                            )),
                        );
                    }
                }
                if forms.is_empty()
                    || (forms.contains(&DeviceForm::Kernel) && kernel_names.is_empty())
                {
                    self.error(
                        span.clone(),
                        DiagnosticKind::Invalid("a device type must accept some form".into()),
                    );
                }
                Kind::Device(DeviceSpec {
                    forms,
                    kernel_names,
                })
            }
            "mount_path" => {
                let roots = raw
                    .roots
                    .clone()
                    .unwrap_or_else(|| settings.mount_roots.clone());
                for root in &roots {
                    self.check_path(span.clone(), "mount root", root);
                }
                if roots.is_empty() {
                    self.error(
                        span.clone(),
                        DiagnosticKind::Invalid("a mount_path type needs at least one root".into()),
                    );
                }
                let max_depth = raw.max_depth.unwrap_or(4);
                if !(1..=MAX_MOUNT_DEPTH).contains(&max_depth) {
                    self.error(
                        span.clone(),
                        DiagnosticKind::Invalid(format!(
                            "max_depth must be 1 to {MAX_MOUNT_DEPTH}"
                        )),
                    );
                }
                Kind::MountPath(MountPathSpec { roots, max_depth })
            }
            "key_file" => {
                let dir = raw.dir.clone().unwrap_or_else(|| settings.key_dir.clone());
                self.check_path(span.clone(), "key directory", &dir);
                let suffix = raw.suffix.clone().unwrap_or_default();
                if !suffix.chars().all(is_component_char) {
                    self.error(
                        span.clone(),
                        DiagnosticKind::Invalid(format!(
                            "suffix `{suffix}` has characters outside [A-Za-z0-9._@:+-]"
                        )),
                    );
                }
                Kind::KeyFile(KeyFileSpec { dir, suffix })
            }
            "label" | "mapper_name" => {
                let max_len = raw
                    .max_len
                    .unwrap_or(if kind_name == "label" { 255 } else { 127 });
                if !(1..=255).contains(&max_len) {
                    self.error(
                        span.clone(),
                        DiagnosticKind::Invalid("max_len must be 1 to 255".into()),
                    );
                }
                if kind_name == "label" {
                    Kind::Label(NameSpec { max_len })
                } else {
                    Kind::MapperName(NameSpec { max_len })
                }
            }
            "enum" => {
                let values = raw.values.clone().unwrap_or_default();
                if values.is_empty() {
                    self.error(
                        span.clone(),
                        DiagnosticKind::Invalid("an enum needs values".into()),
                    );
                }
                for (value_idx, value) in values.iter().enumerate() {
                    if value.is_empty()
                        || value.starts_with('-')
                        || !value.chars().all(is_component_char)
                    {
                        self.error(
                            span.clone(),
                            DiagnosticKind::Invalid(format!(
                                "enum value `{value}` is not a plain word"
                            )),
                        );
                    }
                    if values[..value_idx].contains(value) {
                        self.error(
                            span.clone(),
                            DiagnosticKind::Invalid(format!("enum value `{value}` is repeated")),
                        );
                    }
                }
                Kind::Enum(values)
            }
            "int" => {
                let (min, max) = (raw.min.unwrap_or(0), raw.max.unwrap_or(u64::from(u32::MAX)));
                if min > max {
                    self.error(
                        span.clone(),
                        DiagnosticKind::Invalid(format!("min {min} is above max {max}")),
                    );
                }
                Kind::Int { min, max }
            }
            "devid" => Kind::Devid {
                max: raw.max.unwrap_or(65535).max(1),
            },
            "uuid" => Kind::Uuid,
            _ => {
                let max_items = raw.max_items.unwrap_or(16);
                let mut allow: Vec<OptionPattern> = Vec::new();
                for item in raw.allow.clone().unwrap_or_default() {
                    if let Some(pattern) = self.option_pattern(span.clone(), &item, names) {
                        let repeated = allow.iter().any(|known| match (known, &pattern) {
                            (OptionPattern::Exact(a), OptionPattern::Exact(b)) => a == b,
                            (
                                OptionPattern::Valued { prefix: a, .. },
                                OptionPattern::Valued { prefix: b, .. },
                            ) => a == b,
                            _ => false,
                        });
                        if repeated {
                            self.error(
                                span.clone(),
                                DiagnosticKind::Invalid(format!(
                                    "mount option `{item}` is declared twice"
                                )),
                            );
                        }
                        allow.push(pattern);
                    }
                }
                if !(1..=64).contains(&max_items) {
                    self.error(
                        span.clone(),
                        DiagnosticKind::Invalid("max_items must be 1 to 64".into()),
                    );
                }
                Kind::MountOptions(MountOptionsSpec {
                    allow,
                    max_items,
                    forced: settings.forced_mount_options.clone(),
                })
            }
        };
        ok.then_some(kind)
    }

    /// ```text
    /// pattern = word / ( prefix "$" type-name )   ; word and prefix from [a-z0-9_=:.-]
    /// ```
    fn option_pattern(
        &mut self,
        span: Range<usize>,
        item: &str,
        names: &[String],
    ) -> Option<OptionPattern> {
        let (text, ty) = match item.split_once('$') {
            Some((prefix, type_name)) => match names.iter().position(|name| name == type_name) {
                Some(type_idx) => (prefix, Some(TypeId(type_idx))),
                None => {
                    self.error(
                        span,
                        DiagnosticKind::Unknown {
                            what: "type",
                            name: type_name.to_owned(),
                        },
                    );
                    return None;
                }
            },
            None => (item, None),
        };
        let valid = !text.is_empty()
            && text.starts_with(|ch: char| ch.is_ascii_lowercase())
            && text.bytes().all(|b| {
                b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || matches!(b, b'_' | b'=' | b':' | b'.' | b'-')
            });
        if !valid {
            self.error(
                span,
                DiagnosticKind::Invalid(format!(
                    "mount option `{item}` is not a plain option word"
                )),
            );
            return None;
        }
        if CONTRADICTING_OPTIONS.contains(&text) {
            self.error(
                span,
                DiagnosticKind::Invalid(format!(
                    "mount option `{text}` contradicts the forced nosuid,nodev"
                )),
            );
            return None;
        }
        Some(match ty {
            Some(ty) => OptionPattern::Valued {
                prefix: text.to_owned(),
                ty,
            },
            None => OptionPattern::Exact(text.to_owned()),
        })
    }

    /// A valued mount option must take a simple value: an int, an enum, a label.
    fn check_valued_option_types(&mut self, types: &[TypeDef]) {
        for ty in types {
            if let Kind::MountOptions(spec) = &ty.kind {
                for pattern in &spec.allow {
                    if let OptionPattern::Valued {
                        prefix,
                        ty: value_ty,
                    } = pattern
                        && !matches!(
                            types[value_ty.0].kind,
                            Kind::Int { .. } | Kind::Enum(_) | Kind::Label(_) | Kind::Uuid
                        )
                    {
                        self.diagnostics.push(Diagnostic {
                            origin: ty.origin.clone(),
                            kind: DiagnosticKind::Invalid(format!("mount option `{prefix}` takes a `{}`; only int, enum, label or uuid values are allowed", types[value_ty.0].name)),
                        });
                    }
                }
            }
        }
    }

    fn rule(
        &mut self,
        raw: &RawRule,
        binaries: &[Binary],
        types: &[TypeDef],
        settings: &Settings,
        rules: &[Rule],
    ) -> Option<Rule> {
        let names: Vec<&str> = types.iter().map(|ty| ty.name.as_str()).collect();
        let id = raw.id.get_ref().clone();
        let span = raw.id.span();
        let origin = self.origin(span.clone());
        let n_before = self.diagnostics.len();
        if let Some(previous) = rules.iter().find(|rule| rule.id == id) {
            self.error(
                span.clone(),
                DiagnosticKind::Duplicate {
                    what: "rule",
                    name: id.clone(),
                    first: previous.origin.clone(),
                },
            );
        }
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
        let resolve_type = |cx: &mut Cx, name: &str| {
            let found = names.iter().position(|known| *known == name).map(TypeId);
            if found.is_none() {
                cx.error(
                    span.clone(),
                    DiagnosticKind::Unknown {
                        what: "type",
                        name: name.to_owned(),
                    },
                );
            }
            found
        };

        let effect = match raw.effect {
            RawEffect::Read => Effect::Read,
            RawEffect::State => Effect::State,
            RawEffect::Destructive => Effect::Destructive,
        };
        let mut params: Vec<Param> = Vec::new();
        for (name, raw_param) in &raw.params {
            let param_span = raw_param.span();
            let raw_param = raw_param.get_ref();
            let Some(ty) = resolve_type(self, &raw_param.ty) else {
                continue;
            };
            let in_use = self.in_use_policy(
                param_span.clone(),
                name,
                raw_param,
                &types[ty.0].kind,
                effect,
            );
            let arity = match (raw_param.min, raw_param.max, raw_param.distinct) {
                (None, None, None) => Arity::One,
                (min, max, distinct) => {
                    let (min, max) = (min.unwrap_or(1), max.unwrap_or(min.unwrap_or(1)));
                    if min > max || max == 0 || max > MAX_VARIADIC {
                        self.error(param_span, DiagnosticKind::Invalid(format!("param `{name}` counts must satisfy min <= max, 1 <= max <= {MAX_VARIADIC}")));
                    }
                    Arity::Many {
                        min,
                        max,
                        distinct: distinct.unwrap_or(false),
                    }
                }
            };
            params.push(Param {
                name: name.clone(),
                ty,
                arity,
                in_use,
            });
        }

        let mut flags: Vec<Flag> = Vec::new();
        for raw_flag in &raw.flag {
            let flag_span = raw_flag.span();
            let raw_flag = raw_flag.get_ref();
            let token = raw_flag.token.clone();
            let token_ok = token.len() >= 2
                && token.starts_with('-')
                && token != "--"
                && token.chars().all(|ch| is_component_char(ch) || ch == '=');
            if !token_ok {
                self.error(
                    flag_span.clone(),
                    DiagnosticKind::Invalid(format!(
                        "flag token `{token}` must start with `-` and be a plain word"
                    )),
                );
            }
            if flags
                .iter()
                .any(|flag| flag.name == raw_flag.name || flag.token == token)
            {
                self.error(
                    flag_span.clone(),
                    DiagnosticKind::Invalid(format!(
                        "flag `{}` (`{token}`) is declared twice",
                        raw_flag.name
                    )),
                );
            }
            let value = match &raw_flag.value {
                None if token.ends_with('=') => {
                    self.error(
                        flag_span.clone(),
                        DiagnosticKind::Invalid(format!(
                            "flag `{token}` ends with `=` but declares no value type"
                        )),
                    );
                    FlagValue::None
                }
                None => FlagValue::None,
                Some(type_name) => match resolve_type(self, type_name) {
                    Some(ty) if token.ends_with('=') => FlagValue::Joined(ty),
                    Some(ty) => FlagValue::Separate(ty),
                    None => FlagValue::None,
                },
            };
            let max = raw_flag.max.unwrap_or(1);
            if !(1..=MAX_FLAG_REPEAT).contains(&max) {
                self.error(
                    flag_span,
                    DiagnosticKind::Invalid(format!(
                        "flag `{}` max must be 1 to {MAX_FLAG_REPEAT}",
                        raw_flag.name
                    )),
                );
            }
            flags.push(Flag {
                name: raw_flag.name.clone(),
                token,
                value,
                max,
                conflicts: Vec::new(),
                requires: Vec::new(),
            });
        }
        for (flag_idx, raw_flag) in raw.flag.iter().enumerate() {
            let flag_span = raw_flag.span();
            let raw_flag = raw_flag.get_ref();
            for (names_list, is_conflict) in
                [(&raw_flag.conflicts, true), (&raw_flag.requires, false)]
            {
                for other in names_list {
                    match flags.iter().position(|flag| flag.name == *other) {
                        Some(other_idx) if other_idx != flag_idx => {
                            if is_conflict {
                                flags[flag_idx].conflicts.push(other_idx)
                            } else {
                                flags[flag_idx].requires.push(other_idx)
                            }
                        }
                        _ => self.error(
                            flag_span.clone(),
                            DiagnosticKind::Unknown {
                                what: "flag",
                                name: other.clone(),
                            },
                        ),
                    }
                }
            }
        }
        // A joined prefix that begins another flag's token would make the flag a token denotes depend on order.
        for flag in &flags {
            if let FlagValue::Joined(_) = flag.value
                && let Some(other) = flags.iter().find(|other| {
                    other.token != flag.token && other.token.starts_with(flag.token.as_str())
                })
            {
                self.error(
                    span.clone(),
                    DiagnosticKind::Invalid(format!(
                        "flag `{}` is a prefix of flag `{}`",
                        flag.token, other.token
                    )),
                );
            }
        }

        let template = self.template(raw, &params, &flags);
        let mut distinct = Vec::new();
        for name in &raw.distinct {
            match params.iter().position(|param| param.name == *name) {
                Some(param_idx) if params[param_idx].arity == Arity::One && !distinct.contains(&param_idx) => distinct.push(param_idx),
                Some(_) => self.error(span.clone(), DiagnosticKind::Invalid(format!("distinct names `{name}` twice or names a variadic param (use its own `distinct`)"))),
                None => self.error(span.clone(), DiagnosticKind::Unknown { what: "param", name: name.clone() }),
            }
        }
        if distinct.len() == 1 {
            self.error(
                span.clone(),
                DiagnosticKind::Invalid("distinct needs at least two params".into()),
            );
        }
        if raw.min_flags > flags.iter().map(|flag| flag.max).sum::<usize>() {
            self.error(
                span.clone(),
                DiagnosticKind::Invalid(format!(
                    "min_flags {} cannot be met by the declared flags",
                    raw.min_flags
                )),
            );
        }
        let limits = match &raw.limits {
            Some(limits) => self.limits(span.clone(), limits, &settings.default_limits),
            None => settings.default_limits.clone(),
        };
        if self.diagnostics.len() > n_before {
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
            origin,
        })
    }

    /// A param's in-use policy.
    ///
    /// ```text
    /// in-use = [ "in_use" "=" ( "\"refused\"" / "\"allowed\"" ) ] [ "in_use_reason" "=" string ]
    /// ```
    /// `"allowed"` needs a reason (printable ASCII, 1 to [`MAX_IN_USE_REASON`] bytes) and applies
    /// only to a device param of a state-changing or destructive rule: elsewhere nothing is
    /// checked, so there would be nothing to allow.
    fn in_use_policy(
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
                        super::value::escape(other)
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

    /// A `[[managed]]` rule: one per kind, each of the kind's fields given a type of the right kind.
    fn managed(
        &mut self,
        raw: &RawManaged,
        types: &[TypeDef],
        rules: &[Rule],
        managed_rules: &[ManagedRule],
    ) -> Option<ManagedRule> {
        let id = raw.id.get_ref().clone();
        let span = raw.id.span();
        let n_before = self.diagnostics.len();
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
        let effect = match raw.effect {
            RawEffect::Read => Effect::Read,
            RawEffect::State => Effect::State,
            RawEffect::Destructive => Effect::Destructive,
        };
        let origin = self.origin(span);
        (self.diagnostics.len() == n_before).then(|| ManagedRule {
            id,
            kind,
            effect,
            description: raw.description.clone(),
            actions,
            field_types,
            origin,
        })
    }

    /// ```text
    /// template = *( literal / "[" literal "]" / "$flags" / "--" / "$" param / "$" param "..." )
    /// ```
    /// Every param is used exactly once; at most one is variadic, and after it come only
    /// literals and single params, so the number of values it takes is fixed by the argv length.
    fn template(&mut self, raw: &RawRule, params: &[Param], flags: &[Flag]) -> Vec<Item> {
        let mut template = Vec::new();
        let mut used = vec![false; params.len()];
        let mut seen_variadic = false;
        let mut seen_flags = false;
        for token in &raw.argv {
            let span = token.span();
            let text = token.get_ref().as_str();
            let item = if text == "$flags" {
                if seen_flags || seen_variadic {
                    self.error(
                        span.clone(),
                        DiagnosticKind::Invalid(
                            "`$flags` must appear once, before any variadic param".into(),
                        ),
                    );
                }
                seen_flags = true;
                Item::Flags
            } else if text == "--" {
                if seen_variadic {
                    self.error(
                        span.clone(),
                        DiagnosticKind::Invalid("`--` cannot follow a variadic param".into()),
                    );
                }
                Item::EndOfOptions
            } else if let Some(implied) = text
                .strip_prefix('[')
                .and_then(|rest| rest.strip_suffix(']'))
            {
                let valid = !implied.is_empty()
                    && implied
                        .chars()
                        .all(|ch| is_component_char(ch) || matches!(ch, '=' | ','));
                if !valid || seen_variadic {
                    self.error(
                        span.clone(),
                        DiagnosticKind::Invalid(format!(
                            "implied token `{text}` must be a plain word before any variadic param"
                        )),
                    );
                }
                if matches!(template.last(), Some(Item::Flags)) && implied.starts_with('-') {
                    self.error(
                        span.clone(),
                        DiagnosticKind::Invalid(format!(
                            "implied token `{text}` right after `$flags` would read as a flag"
                        )),
                    );
                }
                Item::Implied(implied.to_owned())
            } else if let Some(reference) = text.strip_prefix('$') {
                let (name, variadic) = match reference.strip_suffix("...") {
                    Some(name) => (name, true),
                    None => (reference, false),
                };
                let Some(param_idx) = params.iter().position(|param| param.name == name) else {
                    self.error(
                        span,
                        DiagnosticKind::Unknown {
                            what: "param",
                            name: name.to_owned(),
                        },
                    );
                    continue;
                };
                if std::mem::replace(&mut used[param_idx], true) {
                    self.error(
                        span.clone(),
                        DiagnosticKind::Invalid(format!("param `{name}` is used twice")),
                    );
                }
                match (params[param_idx].arity, variadic) {
                    (Arity::One, false) => {}
                    (Arity::Many { .. }, true) => {
                        if seen_variadic {
                            self.error(
                                span.clone(),
                                DiagnosticKind::Invalid(
                                    "a rule may have only one variadic param".into(),
                                ),
                            );
                        }
                        seen_variadic = true;
                    }
                    (Arity::One, true) => self.error(
                        span.clone(),
                        DiagnosticKind::Invalid(format!(
                            "param `{name}` is used with `...` but declares no min/max"
                        )),
                    ),
                    (Arity::Many { .. }, false) => self.error(
                        span.clone(),
                        DiagnosticKind::Invalid(format!(
                            "param `{name}` declares min/max, so write `${name}...`"
                        )),
                    ),
                }
                Item::Param(param_idx)
            } else {
                let valid = !text.is_empty()
                    && text
                        .chars()
                        .all(|ch| is_component_char(ch) || matches!(ch, '=' | ','));
                if !valid {
                    self.error(
                        span.clone(),
                        DiagnosticKind::Invalid(format!(
                            "literal `{}` is not a plain word",
                            super::value::escape(text)
                        )),
                    );
                }
                if matches!(template.last(), Some(Item::Flags)) && text.starts_with('-') {
                    self.error(
                        span.clone(),
                        DiagnosticKind::Invalid(format!(
                            "literal `{text}` right after `$flags` would read as a flag"
                        )),
                    );
                }
                Item::Literal(text.to_owned())
            };
            template.push(item);
        }
        for (param, used) in params.iter().zip(&used) {
            if !used {
                self.error(
                    raw.id.span(),
                    DiagnosticKind::Invalid(format!(
                        "param `{}` is declared but not used in argv",
                        param.name
                    )),
                );
            }
        }
        if seen_flags == flags.is_empty() {
            let message = if seen_flags {
                "`$flags` is used but no flag is declared"
            } else {
                "flags are declared but argv has no `$flags`"
            };
            self.error(raw.id.span(), DiagnosticKind::Invalid(message.into()));
        }
        template
    }
}
