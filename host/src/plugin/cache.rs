//! Compiled plugins cached on disk, so a restart does not recompile.
//!
//! An artefact is keyed by the component's sha256 *and* the engine's
//! `precompile_compatibility_hash` (wasmtime version, target, fuel/epoch settings), so a changed
//! engine never loads a stale artefact. A `.cwasm` is native code and loading it trusts it, so:
//!
//! * the cache directory, and every artefact in it, must be owned by the user nosd runs as and
//!   not writable by group or others ([`Cache::open`] refuses the directory, an artefact that is
//!   not is recompiled);
//! * every artefact carries an HMAC-SHA256 tag over its file name and bytes under a key only
//!   this cache holds (`artefact.key`, 32 random bytes, 0600, made once by
//!   [`nos_fs::create_new`]); an artefact whose tag does not verify (another plugin's artefact moved under this name, a corrupt or
//!   foreign file) is recompiled, never loaded;
//! * the bytes are read once into memory, verified, and deserialized from that copy, so nothing
//!   can swap the file between the check and the load.
//!
//! Artefacts are written whole through [`nos_fs::write_atomic`]. Nothing else may write into the
//! cache directory.

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use wasmtime::Engine;
use wasmtime::component::Component;

/// The name of the key file inside the cache directory.
pub const KEY_FILE: &str = "artefact.key";
/// Length of the tag in front of every artefact.
const TAG_LEN: usize = 32;
/// Largest artefact read back (a compiled planner is a few MiB).
pub const MAX_ARTEFACT_BYTES: u64 = 256 << 20;

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cache directory {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("cache directory {path} is writable by group or others (mode {mode:o})")]
    Insecure { path: PathBuf, mode: u32 },
    #[error("cache {path} is owned by uid {owner}, not by uid {euid} that nosd runs as")]
    NotOwned {
        path: PathBuf,
        owner: u32,
        euid: u32,
    },
    #[error("cache key {path} is not {TAG_LEN} bytes")]
    BadKey { path: PathBuf },
}

/// Where compiled artefacts live, and the key that vouches for them.
#[derive(Clone)]
pub struct Cache {
    dir: PathBuf,
    /// HMAC-SHA256 keyed with `artefact.key`, cloned for each tag.
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// Whether [`Cache::load_or_compile`] found the artefact or had to compile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    Hit,
    Miss,
}

impl Cache {
    /// Opens (creating with mode 0700) the cache directory and its key; refuses a directory or
    /// key that another user owns or that others can write.
    pub fn open(dir: &Path) -> Result<Cache, CacheError> {
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| CacheError::Io { path, source }
        };
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io_err(dir))?;
        check_owned(dir, &fs::metadata(dir).map_err(io_err(dir))?)?;
        let key_path = dir.join(KEY_FILE);
        let mut fresh = [0u8; TAG_LEN];
        getrandom::fill(&mut fresh)
            .map_err(|err| io_err(&key_path)(io::Error::other(err.to_string())))?;
        match nos_fs::create_new(&key_path, &fresh, 0o600) {
            Ok(()) | Err(nos_fs::WriteError::Exists { .. }) => {}
            Err(err) => return Err(io_err(&key_path)(err.into_io())),
        }
        let metadata = fs::symlink_metadata(&key_path).map_err(io_err(&key_path))?;
        check_owned(&key_path, &metadata)?;
        let bytes = read_bounded(&key_path, TAG_LEN as u64).map_err(io_err(&key_path))?;
        if bytes.len() != TAG_LEN {
            return Err(CacheError::BadKey { path: key_path });
        }
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(&bytes)
            .map_err(|_| CacheError::BadKey { path: key_path })?;
        Ok(Cache {
            dir: dir.to_path_buf(),
            mac,
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
        // Anything that is not an artefact this cache vouches for is recompiled and replaced.
        let name = path
            .file_name()
            .map(|name| name.as_encoded_bytes().to_vec());
        let name = name.unwrap_or_default();
        if let Some(artefact) = self.verified(&path, &name)
            && let Ok(component) = deserialize(engine, &artefact)
        {
            return Ok((component, CacheOutcome::Hit));
        }
        let artefact = engine.precompile_component(wasm)?;
        let mut tagged = self.tag(&name, &artefact).to_vec();
        tagged.extend_from_slice(&artefact);
        nos_fs::write_atomic(&path, &tagged, 0o600)?;
        Ok((deserialize(engine, &artefact)?, CacheOutcome::Miss))
    }

    /// The artefact at `path` when it is ours: a regular file owned by this user, not writable
    /// by others, whose tag verifies for this very name.
    fn verified(&self, path: &Path, name: &[u8]) -> Option<Vec<u8>> {
        let metadata = fs::symlink_metadata(path).ok()?;
        if !metadata.is_file() || check_owned(path, &metadata).is_err() {
            return None;
        }
        let mut bytes = read_bounded(path, MAX_ARTEFACT_BYTES).ok()?;
        if bytes.len() < TAG_LEN {
            return None;
        }
        let artefact = bytes.split_off(TAG_LEN);
        self.keyed(name, &artefact).verify_slice(&bytes).ok()?;
        Some(artefact)
    }

    fn tag(&self, name: &[u8], artefact: &[u8]) -> [u8; TAG_LEN] {
        self.keyed(name, artefact).finalize().into_bytes().into()
    }

    /// The MAC over the artefact's file name (component sha256 and engine key, so an artefact
    /// moved to another name does not verify), a NUL, and its bytes.
    fn keyed(&self, name: &[u8], artefact: &[u8]) -> Hmac<Sha256> {
        let mut mac = self.mac.clone();
        mac.update(name);
        mac.update(&[0]);
        mac.update(artefact);
        mac
    }
}

/// Refuses `path` unless it is owned by the effective uid and not writable by group or others.
fn check_owned(path: &Path, metadata: &fs::Metadata) -> Result<(), CacheError> {
    let euid = nix::unistd::geteuid().as_raw();
    if metadata.uid() != euid {
        return Err(CacheError::NotOwned {
            path: path.to_path_buf(),
            owner: metadata.uid(),
            euid,
        });
    }
    let mode = metadata.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(CacheError::Insecure {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

/// The file's bytes, at most `max` of them (more is an error).
fn read_bounded(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    fs::File::open(path)?
        .take(max + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(io::Error::other(format!("more than {max} bytes")));
    }
    Ok(bytes)
}

#[allow(unsafe_code)]
fn deserialize(engine: &Engine, artefact: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: `deserialize` trusts the bytes to be an artefact wasmtime produced. These bytes are
    // either what this engine just compiled, or were read once into memory from a file owned by
    // this user in a directory only this user can write, and carry a valid HMAC-SHA256 tag under
    // this cache's secret key, which only this module writes (over bytes this engine compiled).
    // The file name binds the component hash and the engine's compatibility hash, which wasmtime
    // re-checks in the artefact's header.
    unsafe { Component::deserialize(engine, artefact) }
}
