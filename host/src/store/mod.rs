//! The state directory: versioned JSON files written atomically under one advisory lock.
//!
//! Owns every write below the state directory. Each file has one owner in the code (see
//! [`StateFile`]); a file is written whole with [`atomic::write`] and read back through a
//! `schema_version` envelope that refuses versions this build does not know. This module never
//! decides what goes into a file and never reads the clock.

pub mod append;
pub mod atomic;
pub mod lock;

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Errors of the state store; each names the file it concerns.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} is not a valid state file: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path} has schema_version {found}, this nosd only knows {known}")]
    UnknownVersion {
        path: PathBuf,
        found: u32,
        known: u32,
    },
    #[error("cannot encode {path}: {source}")]
    Encode {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("state directory {path} is locked by another process")]
    Busy { path: PathBuf },
}

/// The files below the state directory and their schema versions, one owner each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateFile {
    /// Accounts, password hashes, TOTP secrets, recovery-code hashes, trusted devices (`auth/`).
    Users,
    /// Server-side sessions, stored by token hash (`session/`).
    Sessions,
    /// Persisted failure counters and lockouts (`auth::lockout`).
    Limits,
    /// Apply jobs and their records (`pipeline::jobs`).
    Jobs,
    /// Plugin enablement and grants, keyed by component sha256 (`http/routes/pipeline`).
    Plugins,
    /// The pool registry, keyed by btrfs filesystem UUID (`pools::service`).
    Pools,
    /// Alerts, open and recently cleared (`alerts::service`).
    Alerts,
    /// Locked snapshots, by pool UUID (`pipeline::locks`).
    SnapshotLocks,
    /// Standing approvals and their last runs (`schedules::service`).
    Schedules,
    /// Any file name, for tests of the store itself.
    Custom(&'static str),
}

impl StateFile {
    pub fn name(self) -> &'static str {
        match self {
            StateFile::Users => "users.json",
            StateFile::Sessions => "sessions.json",
            StateFile::Limits => "limits.json",
            StateFile::Jobs => "jobs.json",
            StateFile::Plugins => "plugins.json",
            StateFile::Pools => "pools.json",
            StateFile::Alerts => "alerts.json",
            StateFile::SnapshotLocks => "snapshot-locks.json",
            StateFile::Schedules => "schedules.json",
            StateFile::Custom(name) => name,
        }
    }

    /// The schema version written into, and required from, the file.
    pub fn schema_version(self) -> u32 {
        1
    }
}

#[derive(Serialize)]
struct EnvelopeOut<'a, T> {
    schema_version: u32,
    data: &'a T,
}

#[derive(Deserialize)]
struct EnvelopeVersion {
    schema_version: u32,
}

#[derive(Deserialize)]
struct EnvelopeIn<T> {
    #[allow(dead_code)]
    schema_version: u32,
    data: T,
}

/// An opened state directory; holding it holds the directory's advisory lock.
pub struct StateDir {
    root: PathBuf,
    _lock: lock::DirLock,
}

impl StateDir {
    /// Creates the directory (0700) if needed, takes its lock without waiting, and removes
    /// leftover temporary files of interrupted writes (each with a log line).
    pub fn open(root: &Path) -> Result<StateDir, StoreError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)
            .map_err(|source| StoreError::Io {
                op: "create",
                path: root.to_path_buf(),
                source,
            })?;
        // The directory holds secrets: only its owner may enter it, whatever created it.
        fs::set_permissions(root, fs::Permissions::from_mode(0o700)).map_err(|source| {
            StoreError::Io {
                op: "restrict",
                path: root.to_path_buf(),
                source,
            }
        })?;
        let dir_lock = lock::DirLock::try_acquire(root)?;
        let removed = atomic::remove_leftover_tmp(root)?;
        for leftover in removed {
            tracing::warn!(
                file = %leftover.display(),
                "removed leftover temporary file of an interrupted write; the committed file is intact"
            );
        }
        Ok(StateDir {
            root: root.to_path_buf(),
            _lock: dir_lock,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn path(&self, file: StateFile) -> PathBuf {
        self.root.join(file.name())
    }

    /// Reads a file; `Ok(None)` when it does not exist.
    pub fn load<T: DeserializeOwned>(&self, file: StateFile) -> Result<Option<T>, StoreError> {
        let path = self.path(file);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(StoreError::Io {
                    op: "read",
                    path,
                    source,
                });
            }
        };
        decode(&path, file.schema_version(), &bytes).map(Some)
    }

    /// Encodes a value; cheap enough to do under an in-memory lock.
    pub fn encode<T: Serialize>(&self, file: StateFile, value: &T) -> Result<Vec<u8>, StoreError> {
        encode(&self.path(file), file.schema_version(), value)
    }

    /// Writes encoded bytes atomically (0600): tmp, fsync, rename, fsync dir.
    pub fn write(&self, file: StateFile, bytes: &[u8]) -> Result<(), StoreError> {
        atomic::write(&self.root, file.name(), bytes, 0o600)
    }

    pub fn save<T: Serialize>(&self, file: StateFile, value: &T) -> Result<(), StoreError> {
        let bytes = self.encode(file, value)?;
        self.write(file, &bytes)
    }

    /// Encodes `value` now (cheap: under the caller's in-memory lock, so writes land in the
    /// order of that lock) and writes it on tokio's blocking pool, off the async workers.
    pub async fn save_off_thread<T: Serialize>(
        self: &Arc<Self>,
        file: StateFile,
        value: &T,
    ) -> Result<(), StoreError> {
        let bytes = self.encode(file, value)?;
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.write(file, &bytes))
            .await
            .map_err(|err| StoreError::Io {
                op: "join writer of",
                path: file.name().into(),
                source: io::Error::other(err.to_string()),
            })?
    }

    /// Writes a small secret file (0600) such as the setup token.
    pub fn write_secret(&self, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
        atomic::write(&self.root, name, bytes, 0o600)
    }

    pub fn remove(&self, name: &str) -> Result<(), StoreError> {
        match fs::remove_file(self.root.join(name)) {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(StoreError::Io {
                op: "remove",
                path: self.root.join(name),
                source,
            }),
        }
    }

    /// The mode bits of a file, for tests and `--check-config`.
    pub fn mode(&self, name: &str) -> Option<u32> {
        fs::metadata(self.root.join(name))
            .ok()
            .map(|meta| meta.permissions().mode() & 0o7777)
    }
}

/// Decodes an envelope, refusing an unknown schema version before looking at the data.
pub fn decode<T: DeserializeOwned>(path: &Path, known: u32, bytes: &[u8]) -> Result<T, StoreError> {
    let version: EnvelopeVersion =
        serde_json::from_slice(bytes).map_err(|source| StoreError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
    if version.schema_version != known {
        return Err(StoreError::UnknownVersion {
            path: path.to_path_buf(),
            found: version.schema_version,
            known,
        });
    }
    let envelope: EnvelopeIn<T> =
        serde_json::from_slice(bytes).map_err(|source| StoreError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(envelope.data)
}

fn encode<T: Serialize>(path: &Path, version: u32, value: &T) -> Result<Vec<u8>, StoreError> {
    let mut bytes = serde_json::to_vec(&EnvelopeOut {
        schema_version: version,
        data: value,
    })
    .map_err(|source| StoreError::Encode {
        path: path.to_path_buf(),
        source,
    })?;
    bytes.push(b'\n');
    Ok(bytes)
}
