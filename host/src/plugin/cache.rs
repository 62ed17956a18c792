//! Compiled plugins cached on disk, so a restart does not recompile.
//!
//! An artefact is keyed by the component's sha256 *and* the engine's
//! `precompile_compatibility_hash` (wasmtime version, target, fuel/epoch settings), so a changed
//! engine never loads a stale artefact. The cache directory must be owned by the user nosd runs
//! as and not writable by group or others: a `.cwasm` is native code, and loading it trusts it.
//! This module only stores artefacts this host compiled itself, and only replaces files by
//! rename: an artefact is memory-mapped while loaded, and truncating it in place would fault
//! the process (SIGBUS). Nothing else may write into the cache directory.

use std::fs;
use std::hash::{Hash, Hasher};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cache directory {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("cache directory {path} is writable by group or others (mode {mode:o})")]
    Insecure { path: PathBuf, mode: u32 },
}

/// Where compiled artefacts live.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

/// Whether [`Cache::load_or_compile`] found the artefact or had to compile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    Hit,
    Miss,
}

impl Cache {
    /// Open (creating with mode 0700) the cache directory; refuse one others can write.
    pub fn open(dir: &Path) -> Result<Cache, CacheError> {
        let io_err = |source| CacheError::Io {
            path: dir.to_path_buf(),
            source,
        };
        fs::create_dir_all(dir).map_err(io_err)?;
        let mode = fs::metadata(dir).map_err(io_err)?.permissions().mode();
        if mode & 0o022 != 0 {
            return Err(CacheError::Insecure {
                path: dir.to_path_buf(),
                mode: mode & 0o7777,
            });
        }
        Ok(Cache {
            dir: dir.to_path_buf(),
        })
    }

    /// The artefact path for a component hash under this engine's settings.
    pub fn artefact_path(&self, engine: &Engine, component_sha256: &str) -> PathBuf {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_key = hasher.finish();
        self.dir
            .join(format!("{component_sha256}-{engine_key:016x}.cwasm"))
    }

    /// Load the cached artefact, or compile `wasm` and store it first. `component_sha256` must
    /// be the verified hash of `wasm`.
    pub fn load_or_compile(
        &self,
        engine: &Engine,
        component_sha256: &str,
        wasm: &[u8],
    ) -> wasmtime::Result<(Component, CacheOutcome)> {
        let path = self.artefact_path(engine, component_sha256);
        // A corrupt or foreign artefact fails to deserialize: recompile and replace it.
        if path.is_file()
            && let Ok(component) = deserialize(engine, &path)
        {
            return Ok((component, CacheOutcome::Hit));
        }
        let artefact = engine.precompile_component(wasm)?;
        nos_fs::write_atomic(&path, &artefact, 0o600)?;
        Ok((deserialize(engine, &path)?, CacheOutcome::Miss))
    }
}

#[allow(unsafe_code)]
fn deserialize(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: `deserialize_file` trusts the file to be an artefact wasmtime produced. Only this
    // module writes into the cache directory (as the host's own user, through
    // `nos_fs::write_atomic`, so no torn file is visible), `Cache::open` refuses a directory others can write, and the file name
    // binds the component hash and the engine's compatibility hash, which wasmtime re-checks
    // in the artefact's header.
    unsafe { Component::deserialize_file(engine, path) }
}
