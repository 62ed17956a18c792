//! The host's view of the auth-policy world: plain types the rest of the host uses, so nothing
//! outside `plugin::api` names a versioned WIT type.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginAttempt {
    pub username_known: bool,
    pub client_ip: String,
    pub trusted_device: bool,
    pub recent_user_failures: u32,
    pub recent_ip_failures: u32,
    pub seconds_since_last_failure: Option<u64>,
    pub totp_enrolled: bool,
    pub now_unix_seconds: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginDecision {
    Proceed,
    RequireSecondFactor,
    /// Deny with the generic message.
    Deny,
    LockOut {
        seconds: u32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordFeatures {
    pub length_chars: u32,
    pub in_common_list: bool,
    pub contains_username: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordVerdict {
    Accept,
    Reject(String),
}
