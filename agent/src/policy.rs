//! The agent's one door to the allowlist: argv in, a rendered [`Command`] or a rejection out.
//!
//! Thin on purpose: `nos_agent::allowlist` judges and renders; this module only loads the files
//! and turns a [`Verdict`] into the agent's `Result`. This module never spawns and never touches
//! the filesystem beyond reading the allowlist at start.

use std::path::{Path, PathBuf};

use nos_agent::allowlist::{Allowlist, Source, Verdict};
pub use nos_agent::allowlist::{Command, Effect, ExecCheck, Limits};

/// A refused argv: which token, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub token_idx: Option<usize>,
    pub reason: String,
}

/// The loaded allowlist (main file plus overlays).
#[derive(Debug)]
pub struct Policy {
    allowlist: Allowlist,
}

impl Policy {
    /// Loads `main` and then every `*.toml` of `overlay_dir` (sorted by name), if it exists.
    pub fn load_files(main: &Path, overlay_dir: &Path) -> Result<Policy, String> {
        let mut paths = vec![main.to_path_buf()];
        if let Ok(entries) = std::fs::read_dir(overlay_dir) {
            let mut overlays: Vec<PathBuf> = entries
                .filter_map(|entry| Some(entry.ok()?.path()))
                .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
                .collect();
            overlays.sort();
            paths.extend(overlays);
        }
        let mut sources = Vec::with_capacity(paths.len());
        for path in &paths {
            let text = std::fs::read_to_string(path)
                .map_err(|err| format!("{}: {err}", path.display()))?;
            sources.push(Source {
                name: path.display().to_string(),
                text,
            });
        }
        Policy::load(&sources)
    }

    pub fn load(sources: &[Source]) -> Result<Policy, String> {
        Allowlist::load(sources)
            .map(|allowlist| Policy { allowlist })
            .map_err(|errors| errors.to_string())
    }

    pub fn check(&self, argv: &[String]) -> Result<Command, Rejected> {
        match self.allowlist.check(argv) {
            Verdict::Allowed(matched) => Ok(self.allowlist.render(&matched)),
            Verdict::Rejected(rejection) => Err(Rejected {
                token_idx: rejection.token_idx,
                reason: rejection.to_string(),
            }),
        }
    }

    /// Mount roots from the allowlist's settings: where managed mount directories may live.
    pub fn mount_roots(&self) -> Vec<PathBuf> {
        self.allowlist
            .settings()
            .mount_roots
            .iter()
            .map(PathBuf::from)
            .collect()
    }

    /// The key directory from the allowlist's settings.
    pub fn key_dir(&self) -> PathBuf {
        PathBuf::from(&self.allowlist.settings().key_dir)
    }
}
