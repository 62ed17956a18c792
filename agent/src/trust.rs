//! Who may talk to the agent: the kernel's word on the peer (`SO_PEERCRED`), then a token.
//!
//! Bootstrap: at first start the agent creates a bootstrap token file (root, 0600). A root
//! administrator presents it once ([`Trust::register`]) and receives a per-agent token, of which
//! the agent stores only the sha256 (in the state directory); registering again revokes the
//! previous per-agent token. Rotation trades a valid token for a fresh one. A configuration switch
//! turns registration off entirely once bootstrap is done.
//!
//! Tokens look like `<id>.<secret>`: 8 random bytes of id and 32 of secret, hex-encoded. The id
//! is not secret (it names the token in the audit log); the secret's hash is compared in constant
//! time. This module never spawns and never parses request bytes.

use std::fs::OpenOptions;
use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::PathBuf;
use std::sync::Mutex;

use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Bytes of randomness in a token secret and in the bootstrap token.
pub const SECRET_BYTES: usize = 32;
/// Bytes of randomness in a token id.
pub const TOKEN_ID_BYTES: usize = 8;
/// Longest presented token considered at all; longer ones are rejected without hashing.
pub const MAX_TOKEN_LEN: usize = 256;

#[derive(Debug, Clone)]
pub struct TrustConfig {
    /// Uids allowed on the socket besides root.
    pub allowed_uids: Vec<u32>,
    /// Primary gids allowed on the socket.
    pub allowed_gids: Vec<u32>,
    /// The bootstrap token file (default `/etc/nos/agent-bootstrap-token`).
    pub bootstrap_path: PathBuf,
    /// Where the per-agent token hash lives (default `/var/lib/nos/agent-tokens.json`).
    pub tokens_path: PathBuf,
    /// When false, [`Trust::register`] always refuses.
    pub registration_enabled: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("missing token")]
    MissingToken,
    #[error("unknown or revoked token")]
    UnknownToken,
    #[error("wrong token secret for token id {0}")]
    WrongSecret(String),
    #[error("malformed token")]
    MalformedToken,
    #[error("registration is disabled")]
    RegistrationDisabled,
    #[error("wrong bootstrap token")]
    WrongBootstrap,
    #[error("{path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("no randomness: {0}")]
    Random(String),
}

/// The peer of a connection as the kernel reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
}

/// Asks the kernel who is on the other end of `socket`.
pub fn peer_of(socket: &impl AsFd) -> std::io::Result<Peer> {
    let creds = getsockopt(socket, PeerCredentials).map_err(std::io::Error::from)?;
    Ok(Peer {
        pid: creds.pid(),
        uid: creds.uid(),
        gid: creds.gid(),
    })
}

/// A freshly issued per-agent token: the only time its secret exists outside the caller.
#[derive(Debug)]
pub struct NewToken {
    pub token_id: String,
    pub token: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct TokenFile {
    /// At most one entry: registration and rotation replace it.
    tokens: Vec<StoredToken>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredToken {
    id: String,
    sha256: String,
}

/// Token state, shared by all connections.
#[derive(Debug)]
pub struct Trust {
    config: TrustConfig,
    bootstrap_hash: [u8; 32],
    tokens: Mutex<TokenFile>,
}

impl Trust {
    /// Creates the bootstrap token file if missing (root 0600) and loads the stored token hash.
    /// Refuses a bootstrap file that is not root-owned or is readable by anyone else.
    pub fn open(config: TrustConfig) -> Result<Trust, TrustError> {
        let bootstrap = read_or_create_bootstrap(&config.bootstrap_path)?;
        let tokens = match std::fs::read(&config.tokens_path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|err| TrustError::File {
                path: config.tokens_path.clone(),
                reason: err.to_string(),
            })?,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => TokenFile::default(),
            Err(err) => {
                return Err(TrustError::File {
                    path: config.tokens_path.clone(),
                    reason: err.to_string(),
                });
            }
        };
        Ok(Trust {
            bootstrap_hash: sha256(bootstrap.as_bytes()),
            config,
            tokens: Mutex::new(tokens),
        })
    }

    /// Whether the kernel-reported peer may talk to the agent at all.
    pub fn peer_allowed(&self, peer: &Peer) -> bool {
        peer.uid == 0
            || self.config.allowed_uids.contains(&peer.uid)
            || self.config.allowed_gids.contains(&peer.gid)
    }

    /// Trades the bootstrap token for a new per-agent token, revoking any earlier one.
    pub fn register(&self, presented_bootstrap: &str) -> Result<NewToken, TrustError> {
        if !self.config.registration_enabled {
            return Err(TrustError::RegistrationDisabled);
        }
        if presented_bootstrap.len() > MAX_TOKEN_LEN {
            return Err(TrustError::WrongBootstrap);
        }
        let presented_hash = sha256(presented_bootstrap.trim().as_bytes());
        if !bool::from(presented_hash.ct_eq(&self.bootstrap_hash)) {
            return Err(TrustError::WrongBootstrap);
        }
        self.issue()
    }

    /// Checks a presented per-agent token; returns its id.
    pub fn authenticate(&self, presented: Option<&str>) -> Result<String, TrustError> {
        let presented = presented.ok_or(TrustError::MissingToken)?;
        if presented.len() > MAX_TOKEN_LEN {
            return Err(TrustError::MalformedToken);
        }
        let (id, secret) = presented
            .split_once('.')
            .ok_or(TrustError::MalformedToken)?;
        let tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        let stored = tokens
            .tokens
            .iter()
            .find(|token| token.id == id)
            .ok_or(TrustError::UnknownToken)?;
        let stored_hash = hex::decode(&stored.sha256).map_err(|_| TrustError::UnknownToken)?;
        if bool::from(sha256(secret.as_bytes()).as_slice().ct_eq(&stored_hash)) {
            Ok(stored.id.clone())
        } else {
            Err(TrustError::WrongSecret(
                id.chars()
                    .filter(char::is_ascii_hexdigit)
                    .take(16)
                    .collect(),
            ))
        }
    }

    /// Replaces the (already authenticated) token by a fresh one.
    pub fn rotate(&self) -> Result<NewToken, TrustError> {
        self.issue()
    }

    fn issue(&self) -> Result<NewToken, TrustError> {
        let token_id = hex::encode(random_bytes::<TOKEN_ID_BYTES>()?);
        let secret = hex::encode(random_bytes::<SECRET_BYTES>()?);
        let file = TokenFile {
            tokens: vec![StoredToken {
                id: token_id.clone(),
                sha256: hex::encode(sha256(secret.as_bytes())),
            }],
        };
        let bytes = serde_json::to_vec_pretty(&file).map_err(|err| TrustError::File {
            path: self.config.tokens_path.clone(),
            reason: err.to_string(),
        })?;
        let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        nos_fs::write_atomic(&self.config.tokens_path, &bytes, 0o600).map_err(|err| {
            TrustError::File {
                path: self.config.tokens_path.clone(),
                reason: err.into_io().to_string(),
            }
        })?;
        *tokens = file;
        Ok(NewToken {
            token: format!("{token_id}.{secret}"),
            token_id,
        })
    }
}

fn read_or_create_bootstrap(path: &PathBuf) -> Result<String, TrustError> {
    let file_error = |reason: String| TrustError::File {
        path: path.clone(),
        reason,
    };
    let token = hex::encode(random_bytes::<SECRET_BYTES>()?);
    match nos_fs::create_new(path, token.as_bytes(), 0o600) {
        Ok(()) => return Ok(token),
        Err(nos_fs::WriteError::Exists { .. }) => {}
        Err(err) => return Err(file_error(err.into_io().to_string())),
    }
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)
        .map_err(|err| file_error(err.to_string()))?;
    let metadata = file.metadata().map_err(|err| file_error(err.to_string()))?;
    if !metadata.is_file() || metadata.uid() != 0 || metadata.mode() & 0o077 != 0 {
        return Err(file_error(format!(
            "must be a root-owned regular file without group/other access (uid {}, mode {:o})",
            metadata.uid(),
            metadata.mode() & 0o7777
        )));
    }
    let mut token = String::new();
    Read::by_ref(&mut file)
        .take(MAX_TOKEN_LEN as u64)
        .read_to_string(&mut token)
        .map_err(|err| file_error(err.to_string()))?;
    let token = token.trim().to_owned();
    if token.len() < 32 {
        return Err(file_error(
            "bootstrap token shorter than 32 characters".into(),
        ));
    }
    Ok(token)
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// `N` bytes from the kernel's CSPRNG.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], TrustError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|err| TrustError::Random(err.to_string()))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trust(dir: &std::path::Path, registration_enabled: bool) -> Trust {
        Trust::open(TrustConfig {
            allowed_uids: vec![],
            allowed_gids: vec![],
            bootstrap_path: dir.join("bootstrap"),
            tokens_path: dir.join("tokens.json"),
            registration_enabled,
        })
        .unwrap()
    }

    #[test]
    fn bootstrap_register_rotate() {
        let dir = tempfile::tempdir().unwrap();
        let trust = trust(dir.path(), true);
        let metadata = std::fs::metadata(dir.path().join("bootstrap")).unwrap();
        assert_eq!(metadata.mode() & 0o777, 0o600);
        let bootstrap = std::fs::read_to_string(dir.path().join("bootstrap")).unwrap();
        assert!(matches!(
            trust.register("nope"),
            Err(TrustError::WrongBootstrap)
        ));
        let first = trust.register(&bootstrap).unwrap();
        assert_eq!(
            trust.authenticate(Some(&first.token)).unwrap(),
            first.token_id
        );
        // Only the hash is stored.
        let stored = std::fs::read_to_string(dir.path().join("tokens.json")).unwrap();
        assert!(!stored.contains(first.token.split_once('.').unwrap().1));
        let second = trust.rotate().unwrap();
        assert!(matches!(
            trust.authenticate(Some(&first.token)),
            Err(TrustError::UnknownToken)
        ));
        assert!(trust.authenticate(Some(&second.token)).is_ok());
        let wrong = format!("{}.{}", second.token_id, "0".repeat(64));
        assert!(matches!(
            trust.authenticate(Some(&wrong)),
            Err(TrustError::WrongSecret(_))
        ));
        assert!(matches!(
            trust.authenticate(None),
            Err(TrustError::MissingToken)
        ));
        assert!(matches!(
            trust.authenticate(Some("garbage")),
            Err(TrustError::MalformedToken)
        ));
        // A restarted agent keeps the token and the bootstrap.
        let reopened = super::Trust::open(trust.config.clone()).unwrap();
        assert!(reopened.authenticate(Some(&second.token)).is_ok());
        let disabled = self::trust(dir.path(), false);
        assert!(matches!(
            disabled.register(&bootstrap),
            Err(TrustError::RegistrationDisabled)
        ));
    }
}
