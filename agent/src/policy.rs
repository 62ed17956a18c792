//! The agent's one door to the allowlist: argv in, a rendered [`Command`] or a rejection out.
//!
//! Thin on purpose: `nos_allowlist` judges and renders, `allowlist_files` reads; this
//! module turns a [`Verdict`] into the agent's `Result`. This module never spawns and never touches
//! the filesystem beyond reading the allowlist at start.

use std::path::{Path, PathBuf};

use nos_allowlist::{
    Allowlist, ManagedAction, ManagedMatch, ManagedRequest, ManagedVerdict, Verdict,
};
pub use nos_allowlist::{Command, Effect, ExecCheck, Limits};

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
    /// Loads `main` and the overlays in `allowlist.d/` beside it (the library's one reader).
    pub fn load_files(main: &Path) -> Result<Policy, String> {
        nos_allowlist::files::load(main)
            .map(|allowlist| Policy { allowlist })
            .map_err(|err| err.to_string())
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

    /// Judges a managed-file request by the allowlist's `[[managed]]` rules.
    pub fn check_managed(
        &self,
        action: ManagedAction,
        request: &ManagedRequest,
    ) -> Result<ManagedMatch, Rejected> {
        match self.allowlist.check_managed(action, request) {
            ManagedVerdict::Allowed(matched) => Ok(matched),
            ManagedVerdict::Rejected(rejection) => Err(Rejected {
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
