//! Identity: accounts, passwords, TOTP, recovery codes, lockout and the login flow.
//!
//! `password`, `totp`, `recovery_codes`, `lockout` and `policy` are pure or nearly so; `login`
//! and `setup` are the flows that combine them with the tables of an [`service::AuthService`].
//! Nothing here knows HTTP.

pub mod breaker;
pub mod lockout;
pub mod login;
pub mod password;
pub mod plugin_policy;
pub mod policy;
pub mod recovery_codes;
pub mod service;
pub mod setup;
pub mod totp;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::clock::UnixSeconds;
use crate::store::StoreError;
use lockout::FailureCounter;

/// Errors of the auth layer. HTTP maps every credential failure to one generic response.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Wrong user, wrong password, wrong or replayed code: all the same to the caller.
    #[error("authentication failed")]
    Failed,
    #[error("too many attempts, retry in {retry_after} s")]
    Throttled { retry_after: u64 },
    #[error("server busy checking passwords")]
    Busy,
    #[error("invalid input: {0}")]
    Invalid(String),
    #[error("setup token missing, wrong or expired")]
    SetupRefused,
    #[error("setup is already complete")]
    SetupDone,
    #[error("re-authentication required")]
    ReauthRequired,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<password::HashError> for AuthError {
    fn from(err: password::HashError) -> AuthError {
        match err {
            password::HashError::Busy => AuthError::Busy,
            password::HashError::Internal(message) => AuthError::Internal(message),
        }
    }
}

impl From<crate::session::service::SessionError> for AuthError {
    fn from(err: crate::session::service::SessionError) -> AuthError {
        use crate::session::service::SessionError;
        match err {
            SessionError::Random(err) => AuthError::from(err),
            SessionError::Store(err) => AuthError::Store(err),
        }
    }
}

impl From<getrandom::Error> for AuthError {
    fn from(err: getrandom::Error) -> AuthError {
        AuthError::Internal(format!("randomness unavailable: {err}"))
    }
}

/// `users.json`: accounts and trusted devices (a secrets file, 0600).
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct UsersFile {
    pub users: BTreeMap<String, User>,
    /// Trusted devices by the hex SHA-256 of their cookie token.
    pub devices: BTreeMap<String, TrustedDevice>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    pub password_hash: String,
    pub totp: Option<TotpState>,
    /// argon2id PHC strings of the unused recovery codes.
    pub recovery_codes: Vec<String>,
    pub created_at: UnixSeconds,
    pub password_changed_at: UnixSeconds,
    /// A one-time login code issued from recovery mode.
    pub one_time_login: Option<OneTimeLogin>,
    /// Security notices shown to the user at the next login (`/api/v1/me`) until cleared.
    #[serde(default)]
    pub notices: Vec<Notice>,
}

/// Something the account holder should see: a compromise signal or an admin action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    pub at: UnixSeconds,
    pub kind: crate::audit::AuditKind,
    pub detail: String,
}

/// Notices kept per user; the oldest are dropped beyond it.
pub const MAX_NOTICES: usize = 20;

/// Adds a notice for `username` (in memory; the caller persists).
pub fn add_notice(users: &mut UsersFile, username: &str, notice: Notice) -> bool {
    let Some(user) = users.users.get_mut(username) else {
        return false;
    };
    user.notices.push(notice);
    if user.notices.len() > MAX_NOTICES {
        user.notices.remove(0);
    }
    true
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TotpState {
    /// Base32 secret.
    pub secret: String,
    /// The newest step ever accepted; only newer steps are accepted.
    pub last_used_step: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OneTimeLogin {
    pub hash: String,
    pub expires_at: UnixSeconds,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrustedDevice {
    pub username: String,
    pub created_at: UnixSeconds,
}

/// `limits.json`: persisted failure counters.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct LimitsFile {
    pub ips: BTreeMap<String, FailureCounter>,
    pub users: BTreeMap<String, FailureCounter>,
    pub devices: BTreeMap<String, FailureCounter>,
}

/// Upper bound on counters kept per kind; the least recently failed are dropped beyond it.
pub const MAX_COUNTERS: usize = 10_000;

impl LimitsFile {
    /// Forgets counters that are stale, then caps each map at [`MAX_COUNTERS`].
    pub fn prune(&mut self, now: UnixSeconds) {
        for map in [&mut self.ips, &mut self.users, &mut self.devices] {
            map.retain(|_, counter| !lockout::is_forgettable(counter, now));
            if map.len() > MAX_COUNTERS {
                let mut by_age: Vec<(UnixSeconds, String)> = map
                    .iter()
                    .filter(|(_, counter)| lockout::retry_after(counter, now).is_none())
                    .map(|(key, counter)| (counter.last_failure_at, key.clone()))
                    .collect();
                by_age.sort();
                let n_excess = map.len() - MAX_COUNTERS;
                for (_, key) in by_age.into_iter().take(n_excess) {
                    map.remove(&key);
                }
            }
        }
    }
}

/// `username = lower-alpha *31(lower-alpha | digit | "_" | "-")`, 3..=32 bytes.
pub fn valid_username(username: &str) -> bool {
    let bytes = username.as_bytes();
    (3..=32).contains(&bytes.len())
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_' || *b == b'-')
}

/// The counter key for a typed username: case-folded; long or odd input is hashed so the
/// limits file stays bounded. Unknown usernames get counters too.
pub fn username_key(typed: &str) -> String {
    let folded = typed.to_lowercase();
    if valid_username(&folded) {
        folded
    } else {
        use sha2::Digest;
        format!(
            "~{}",
            hex::encode(&sha2::Sha256::digest(folded.as_bytes())[..12])
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert!(valid_username("admin"));
        assert!(!valid_username("Admin"));
        assert!(!valid_username("ad"));
        assert!(!valid_username("1admin"));
        assert_eq!(username_key("ADMIN"), "admin");
        assert!(username_key("a b").starts_with('~'));
    }
}
