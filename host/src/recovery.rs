//! Recovery mode: console-only account repair on a root-only Unix socket.
//!
//! Active only when the kernel command line has `nos.recovery=1` or the environment has
//! `NOS_RECOVERY=1` ([`is_requested`]). Served only on a Unix socket (mode 0600) whose peers
//! must have uid 0 by `SO_PEERCRED` ([`peer_allowed`]); never on TCP, where a reverse proxy
//! would make remote requests look local. Each operation is audited and ends every session of
//! the user. The protocol is one JSON request line and one JSON response line, each at most
//! [`MAX_LINE`] bytes.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

use crate::audit::AuditKind;
use crate::auth::service::AuthService;
use crate::auth::{OneTimeLogin, recovery_codes, username_key};
use crate::session::service::SessionService;

/// Longest request or response line in bytes.
pub const MAX_LINE: usize = 64 * 1024;
/// The `FileDescriptorName=` of `nos-recovery.socket`.
pub const SOCKET_NAME: &str = "recovery";
/// The kernel command-line flag.
pub const KERNEL_FLAG: &str = "nos.recovery=1";
/// Lifetime of a one-time login code.
pub const ONE_TIME_LOGIN_SECONDS: u64 = 15 * 60;

#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    #[error("recovery socket {path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("recovery protocol: {0}")]
    Protocol(String),
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum RecoveryRequest {
    Status,
    ResetPassword { username: String },
    DisableTotp { username: String },
    OneTimeLogin { username: String },
    ClearLockout { username: String },
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RecoveryResponse {
    pub ok: bool,
    pub message: String,
    /// A new password or login code, shown once on the console.
    pub secret: Option<String>,
}

/// Whether the kernel command line text has the recovery flag as a whole word.
pub fn cmdline_has_flag(cmdline: &str) -> bool {
    cmdline
        .split_ascii_whitespace()
        .any(|word| word == KERNEL_FLAG)
}

/// Recovery is requested by the kernel command line at `cmdline_path` or by `NOS_RECOVERY=1`.
pub fn is_requested(cmdline_path: &Path, env_value: Option<&str>) -> bool {
    env_value == Some("1")
        || std::fs::read_to_string(cmdline_path)
            .map(|cmdline| cmdline_has_flag(&cmdline))
            .unwrap_or(false)
}

/// Only root may use the socket.
pub fn peer_allowed(uid: u32) -> bool {
    uid == 0
}

/// The recovery listener: the socket systemd passed from `nos-recovery.socket` (descriptor
/// name `recovery`; the unit makes it root-only, and nosd cannot create a socket under
/// `ProtectSystem=strict` itself), or, run outside systemd, one bound at `path`.
pub fn listener(
    passed: Option<std::os::unix::net::UnixListener>,
    path: &Path,
) -> Result<UnixListener, RecoveryError> {
    let Some(passed) = passed else {
        return bind(path);
    };
    let io_err = |source| RecoveryError::Io {
        path: path.to_path_buf(),
        source,
    };
    passed.set_nonblocking(true).map_err(io_err)?;
    UnixListener::from_std(passed).map_err(io_err)
}

/// Binds the socket (replacing a stale one) with mode 0600.
pub fn bind(path: &Path) -> Result<UnixListener, RecoveryError> {
    let io_err = |source| RecoveryError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io_err)?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(io_err(err)),
    }
    let listener = UnixListener::bind(path).map_err(io_err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io_err)?;
    Ok(listener)
}

/// Accepts connections forever.
pub async fn serve(auth: Arc<AuthService>, sessions: Arc<SessionService>, listener: UnixListener) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let (auth, sessions) = (auth.clone(), sessions.clone());
                tokio::spawn(async move {
                    if let Err(err) = handle_connection(&auth, &sessions, stream).await {
                        tracing::warn!(%err, "recovery connection failed");
                    }
                });
            }
            Err(err) => {
                tracing::error!(%err, "recovery socket accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

async fn handle_connection(
    auth: &AuthService,
    sessions: &SessionService,
    stream: UnixStream,
) -> Result<(), RecoveryError> {
    let protocol = |err: std::io::Error| RecoveryError::Protocol(err.to_string());
    let uid = stream.peer_cred().map_err(protocol)?.uid();
    let (reader, mut writer) = stream.into_split();
    let response = if !peer_allowed(uid) {
        tracing::warn!(uid, "recovery socket refused a non-root peer");
        RecoveryResponse {
            ok: false,
            message: format!("refused: uid {uid} is not root"),
            secret: None,
        }
    } else {
        let mut line = String::new();
        let mut limited = tokio::io::BufReader::new(reader.take(MAX_LINE as u64));
        limited.read_line(&mut line).await.map_err(protocol)?;
        match serde_json::from_str::<RecoveryRequest>(line.trim_end()) {
            Ok(request) => execute(auth, sessions, request).await,
            Err(err) => RecoveryResponse {
                ok: false,
                message: format!("invalid request: {err}"),
                secret: None,
            },
        }
    };
    let mut bytes =
        serde_json::to_vec(&response).map_err(|err| RecoveryError::Protocol(err.to_string()))?;
    bytes.push(b'\n');
    writer.write_all(&bytes).await.map_err(protocol)?;
    Ok(())
}

fn refusal(message: impl Into<String>) -> RecoveryResponse {
    RecoveryResponse {
        ok: false,
        message: message.into(),
        secret: None,
    }
}

/// Runs one recovery operation.
pub async fn execute(
    auth: &AuthService,
    sessions: &SessionService,
    request: RecoveryRequest,
) -> RecoveryResponse {
    match execute_inner(auth, sessions, request).await {
        Ok(response) => response,
        Err(err) => refusal(format!("failed: {err}")),
    }
}

async fn execute_inner(
    auth: &AuthService,
    sessions: &SessionService,
    request: RecoveryRequest,
) -> Result<RecoveryResponse, crate::auth::AuthError> {
    let username = match &request {
        RecoveryRequest::Status => {
            let users = auth.users.lock().await;
            let names: Vec<&str> = users.users.keys().map(String::as_str).collect();
            return Ok(RecoveryResponse {
                ok: true,
                message: format!("recovery mode active; accounts: {}", names.join(", ")),
                secret: None,
            });
        }
        RecoveryRequest::ResetPassword { username }
        | RecoveryRequest::DisableTotp { username }
        | RecoveryRequest::OneTimeLogin { username }
        | RecoveryRequest::ClearLockout { username } => username_key(username),
    };
    if !auth.users.lock().await.users.contains_key(&username) {
        return Ok(refusal(format!("no account `{username}`")));
    }
    let now = auth.now();
    let (secret, message) = match request {
        RecoveryRequest::ResetPassword { .. } => {
            let new_password = random_secret()?;
            let hash = auth.hasher.hash(&new_password).await?;
            let mut users = auth.users.lock().await;
            if let Some(user) = users.users.get_mut(&username) {
                user.password_hash = hash;
                user.password_changed_at = now;
            }
            auth.persist_users(&users).await?;
            (
                Some(new_password),
                "password reset; WARNING: change it after logging in",
            )
        }
        RecoveryRequest::DisableTotp { .. } => {
            let mut users = auth.users.lock().await;
            if let Some(user) = users.users.get_mut(&username) {
                user.totp = None;
                user.recovery_codes.clear();
            }
            auth.persist_users(&users).await?;
            (
                None,
                "TOTP and recovery codes removed; WARNING: the account has no second factor until re-enrolled",
            )
        }
        RecoveryRequest::OneTimeLogin { .. } => {
            let code = random_secret()?;
            let hash = auth.hasher.hash(&code).await?;
            let mut users = auth.users.lock().await;
            if let Some(user) = users.users.get_mut(&username) {
                user.one_time_login = Some(OneTimeLogin {
                    hash,
                    expires_at: now + ONE_TIME_LOGIN_SECONDS,
                });
            }
            auth.persist_users(&users).await?;
            (
                Some(code),
                "one-time login code valid 15 minutes: use it as the password, no second factor",
            )
        }
        RecoveryRequest::ClearLockout { .. } => (None, "lockout cleared"),
        RecoveryRequest::Status => (None, ""),
    };
    // Every action clears the username's lockout and ends its sessions.
    {
        let mut limits = auth.limits.lock().await;
        limits.users.remove(&username);
        auth.persist_limits(&limits).await?;
    }
    let n_revoked = sessions.with_table(|table| table.revoke_user(&username, None));
    sessions.persist().await?;
    auth.auditor.record(
        AuditKind::RecoveryAction,
        Some(&username),
        None,
        format!("{message}; {n_revoked} sessions ended"),
    );
    auth.notify(&username, AuditKind::RecoveryAction, message)
        .await;
    Ok(RecoveryResponse {
        ok: true,
        message: format!("{message}; {n_revoked} sessions ended"),
        secret,
    })
}

/// 20 characters of Crockford base32 (100 bits).
fn random_secret() -> Result<String, getrandom::Error> {
    let codes = recovery_codes::generate()?;
    let joined: String = codes[..2].concat().replace('-', "");
    Ok(joined[..20].to_string())
}

/// How long `nosctl recovery` waits for nosd's answer.
pub const CLIENT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// The blocking client used by `nosctl recovery`.
pub fn request(
    socket: &Path,
    request: &RecoveryRequest,
) -> Result<RecoveryResponse, RecoveryError> {
    let io_err = |source| RecoveryError::Io {
        path: socket.to_path_buf(),
        source,
    };
    let mut stream = std::os::unix::net::UnixStream::connect(socket).map_err(io_err)?;
    // A socket-activated nosd may take seconds to start; a hung one must not hang the console.
    stream
        .set_read_timeout(Some(CLIENT_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(CLIENT_TIMEOUT)))
        .map_err(io_err)?;
    let mut line =
        serde_json::to_vec(request).map_err(|err| RecoveryError::Protocol(err.to_string()))?;
    line.push(b'\n');
    // A refusing server answers without reading; its reply is still there to read.
    if let Err(err) = stream.write_all(&line)
        && err.kind() != std::io::ErrorKind::BrokenPipe
    {
        return Err(io_err(err));
    }
    let mut reply = String::new();
    BufReader::new(std::io::Read::take(&stream, MAX_LINE as u64))
        .read_line(&mut reply)
        .map_err(io_err)?;
    serde_json::from_str(reply.trim_end()).map_err(|err| RecoveryError::Protocol(err.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_flag_is_a_whole_word() {
        assert!(cmdline_has_flag(
            "BOOT_IMAGE=/vmlinuz ro nos.recovery=1 quiet"
        ));
        assert!(!cmdline_has_flag("ro nos.recovery=0"));
        assert!(!cmdline_has_flag("ro xnos.recovery=1"));
        assert!(!cmdline_has_flag("ro nos.recovery=10"));
        assert!(!is_requested(Path::new("/nonexistent/cmdline"), None));
        assert!(is_requested(Path::new("/nonexistent/cmdline"), Some("1")));
        assert!(!is_requested(
            Path::new("/nonexistent/cmdline"),
            Some("yes")
        ));
    }

    #[test]
    fn only_root() {
        assert!(peer_allowed(0));
        assert!(!peer_allowed(1000));
        assert!(!peer_allowed(65534));
    }

    #[test]
    fn request_grammar() {
        let parsed: RecoveryRequest =
            serde_json::from_str(r#"{"op":"reset_password","username":"admin"}"#).unwrap();
        assert_eq!(
            parsed,
            RecoveryRequest::ResetPassword {
                username: "admin".into()
            }
        );
        assert!(serde_json::from_str::<RecoveryRequest>(r#"{"op":"shell","cmd":"id"}"#).is_err());
        assert!(
            serde_json::from_str::<RecoveryRequest>(
                r#"{"op":"reset_password","username":"a","x":1}"#
            )
            .is_err()
        );
    }
}
