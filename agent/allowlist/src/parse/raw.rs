//! The TOML shapes serde reads, before any meaning is checked.
//!
//! Every struct denies unknown fields, so a misspelt key is a syntax error with its location;
//! names that matter in diagnostics keep their spans.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use crate::grammar::Effect;
use crate::managed::ManagedAction;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFile {
    pub(super) version: Spanned<u32>,
    pub(super) settings: Option<Spanned<RawSettings>>,
    #[serde(default)]
    pub(super) binary: Vec<RawBinary>,
    #[serde(default, rename = "type")]
    pub(super) types: Vec<RawType>,
    #[serde(default)]
    pub(super) rule: Vec<RawRule>,
    #[serde(default)]
    pub(super) managed: Vec<RawManaged>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawManaged {
    pub(super) id: Spanned<String>,
    pub(super) kind: Spanned<String>,
    pub(super) effect: RawEffect,
    #[serde(default)]
    pub(super) description: String,
    pub(super) actions: Option<Vec<ManagedAction>>,
    #[serde(default)]
    pub(super) params: BTreeMap<String, Spanned<RawParam>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSettings {
    pub(super) mount_roots: Option<Vec<Spanned<String>>>,
    pub(super) key_dir: Option<Spanned<String>>,
    pub(super) forced_mount_options: Option<Spanned<Vec<String>>>,
    pub(super) forced_boot_options: Option<Spanned<Vec<String>>>,
    pub(super) limits: Option<Spanned<RawLimits>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLimits {
    pub(super) timeout_s: Option<u64>,
    pub(super) kill_after_s: Option<u64>,
    pub(super) max_stdout: Option<usize>,
    pub(super) max_stderr: Option<usize>,
    #[serde(default)]
    pub(super) exit_states: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBinary {
    pub(super) name: Spanned<String>,
    pub(super) path: Spanned<String>,
    pub(super) sha256: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) end_of_options: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawType {
    pub(super) name: Spanned<String>,
    pub(super) kind: Spanned<String>,
    pub(super) forms: Option<Vec<String>>,
    pub(super) kernel_names: Option<Vec<String>>,
    pub(super) roots: Option<Vec<String>>,
    pub(super) max_depth: Option<usize>,
    pub(super) dir: Option<String>,
    pub(super) suffix: Option<String>,
    pub(super) max_len: Option<usize>,
    pub(super) values: Option<Vec<String>>,
    pub(super) min: Option<u64>,
    pub(super) max: Option<u64>,
    pub(super) allow: Option<Vec<String>>,
    pub(super) max_items: Option<usize>,
    pub(super) form: Option<String>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub(super) enum RawEffect {
    Read,
    State,
    Destructive,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    pub(super) id: Spanned<String>,
    pub(super) binary: Spanned<String>,
    pub(super) effect: RawEffect,
    #[serde(default)]
    pub(super) description: String,
    pub(super) argv: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) params: BTreeMap<String, Spanned<RawParam>>,
    #[serde(default)]
    pub(super) flag: Vec<Spanned<RawFlag>>,
    pub(super) limits: Option<RawLimits>,
    #[serde(default)]
    pub(super) job: bool,
    #[serde(default)]
    pub(super) beside_jobs: bool,
    #[serde(default)]
    pub(super) distinct: Vec<String>,
    #[serde(default)]
    pub(super) min_flags: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawParam {
    #[serde(rename = "type")]
    pub(super) ty: String,
    pub(super) min: Option<usize>,
    pub(super) max: Option<usize>,
    pub(super) distinct: Option<bool>,
    /// `"refused"` (the default) or `"allowed"`; see `Cx::in_use_policy`.
    pub(super) in_use: Option<String>,
    pub(super) in_use_reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFlag {
    pub(super) name: String,
    pub(super) token: String,
    pub(super) value: Option<String>,
    pub(super) max: Option<usize>,
    #[serde(default)]
    pub(super) conflicts: Vec<String>,
    #[serde(default)]
    pub(super) requires: Vec<String>,
}

impl From<RawEffect> for Effect {
    fn from(raw: RawEffect) -> Effect {
        match raw {
            RawEffect::Read => Effect::Read,
            RawEffect::State => Effect::State,
            RawEffect::Destructive => Effect::Destructive,
        }
    }
}
