//! auth-default: the default login and password policy (parameters from DESIGN.md "Auth").
//!
//! * Per IP: from the 10th recent failure, lock out for 60 s, doubling per further failure, at
//!   most one hour. A flood from one address never locks the owner out elsewhere.
//! * Per user: from the 5th recent failure, lock out for 30 s, doubling, at most one hour, except
//!   from a trusted device (so an attacker cannot lock the owner out).
//! * A lockout runs from the last failure; once it has passed, attempts proceed.
//! * Known and unknown usernames get the same decision (no user enumeration).
//! * With TOTP enrolled, a second factor is required.
//! * Passwords: at least 12 characters, at most 1024, not in the common list, not containing the
//!   username.
#![deny(unsafe_code)]

#[allow(unsafe_code)]
mod bindings {
    wit_bindgen::generate!({
        world: "auth-policy",
        path: "../../wit/since_v0.1.0",
        additional_derives: [PartialEq],
    });
    // Only in the component: natively (unit tests) the export names would not link.
    #[cfg(target_arch = "wasm32")]
    use super::DefaultPolicy;
    #[cfg(target_arch = "wasm32")]
    export!(DefaultPolicy);
}

use bindings::exports::nos::plugin::auth_decisions::{
    Guest, LoginAttempt, LoginDecision, PasswordFeatures, PasswordVerdict,
};
use bindings::nos::plugin::meta::PluginInfo;

pub const IP_THRESHOLD: u32 = 10;
pub const IP_BASE_SECONDS: u64 = 60;
pub const USER_THRESHOLD: u32 = 5;
pub const USER_BASE_SECONDS: u64 = 30;
pub const MAX_LOCKOUT_SECONDS: u64 = 3600;
pub const MIN_PASSWORD_CHARS: u32 = 12;
pub const MAX_PASSWORD_CHARS: u32 = 1024;

pub struct DefaultPolicy;

/// The lockout for `failures` past `threshold`: `base` doubled per extra failure, capped.
pub fn lockout_seconds(failures: u32, threshold: u32, base: u64) -> Option<u64> {
    let extra = failures.checked_sub(threshold)?;
    let factor = 1u64.checked_shl(extra.min(32)).unwrap_or(u64::MAX);
    Some(base.saturating_mul(factor).min(MAX_LOCKOUT_SECONDS))
}

pub fn decide(attempt: &LoginAttempt) -> LoginDecision {
    if attempt.client_ip.is_empty() {
        return LoginDecision::Deny;
    }
    let ip = lockout_seconds(attempt.recent_ip_failures, IP_THRESHOLD, IP_BASE_SECONDS);
    let user = if attempt.trusted_device {
        None
    } else {
        lockout_seconds(
            attempt.recent_user_failures,
            USER_THRESHOLD,
            USER_BASE_SECONDS,
        )
    };
    let lockout = ip.max(user);
    if let Some(lockout) = lockout {
        // Without a last-failure time the lockout runs in full.
        let elapsed = attempt.seconds_since_last_failure.unwrap_or(0);
        let remaining = lockout.saturating_sub(elapsed);
        if remaining > 0 {
            return LoginDecision::LockOut(u32::try_from(remaining).unwrap_or(u32::MAX));
        }
    }
    if attempt.totp_enrolled {
        LoginDecision::RequireSecondFactor
    } else {
        LoginDecision::Proceed
    }
}

pub fn check_password(features: &PasswordFeatures) -> PasswordVerdict {
    if features.length_chars < MIN_PASSWORD_CHARS {
        return PasswordVerdict::Reject(format!("use at least {MIN_PASSWORD_CHARS} characters"));
    }
    if features.length_chars > MAX_PASSWORD_CHARS {
        return PasswordVerdict::Reject(format!("use at most {MAX_PASSWORD_CHARS} characters"));
    }
    if features.in_common_list {
        return PasswordVerdict::Reject("this password is too common".into());
    }
    if features.contains_username {
        return PasswordVerdict::Reject("the password must not contain the username".into());
    }
    PasswordVerdict::Accept
}

impl Guest for DefaultPolicy {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "auth-default".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "Escalating lockouts per user and IP, TOTP, password rules".into(),
            input_schema: "{}".into(),
        }
    }

    fn decide_login(attempt: LoginAttempt) -> LoginDecision {
        decide(&attempt)
    }

    fn check_password(features: PasswordFeatures) -> PasswordVerdict {
        check_password(&features)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(user_failures: u32, ip_failures: u32, since: Option<u64>) -> LoginAttempt {
        LoginAttempt {
            username_known: true,
            client_ip: "192.0.2.7".into(),
            trusted_device: false,
            recent_user_failures: user_failures,
            recent_ip_failures: ip_failures,
            seconds_since_last_failure: since,
            totp_enrolled: false,
            now_unix_seconds: 1_800_000_000,
        }
    }

    #[test]
    fn escalation_table() {
        let cases = [
            (0, 0, None, LoginDecision::Proceed),
            (4, 9, Some(0), LoginDecision::Proceed),
            (5, 0, Some(0), LoginDecision::LockOut(30)),
            (5, 0, Some(10), LoginDecision::LockOut(20)),
            (5, 0, Some(30), LoginDecision::Proceed),
            (6, 0, None, LoginDecision::LockOut(60)),
            (50, 0, Some(0), LoginDecision::LockOut(3600)),
            (0, 10, Some(0), LoginDecision::LockOut(60)),
            (0, 12, Some(0), LoginDecision::LockOut(240)),
            (u32::MAX, u32::MAX, Some(u64::MAX), LoginDecision::Proceed),
        ];
        for (user, ip, since, expected) in cases {
            assert_eq!(
                decide(&attempt(user, ip, since)),
                expected,
                "{user} {ip} {since:?}"
            );
        }
    }

    #[test]
    fn trusted_device_escapes_user_lockout_but_not_ip_flood() {
        let mut trusted = attempt(50, 0, Some(0));
        trusted.trusted_device = true;
        assert_eq!(decide(&trusted), LoginDecision::Proceed);
        trusted.recent_ip_failures = 10;
        assert_eq!(decide(&trusted), LoginDecision::LockOut(60));
    }

    #[test]
    fn unknown_users_are_treated_alike_and_totp_is_required() {
        let mut unknown = attempt(5, 0, Some(0));
        unknown.username_known = false;
        assert_eq!(decide(&unknown), decide(&attempt(5, 0, Some(0))));
        let mut totp = attempt(0, 0, None);
        totp.totp_enrolled = true;
        assert_eq!(decide(&totp), LoginDecision::RequireSecondFactor);
    }

    #[test]
    fn password_rules() {
        let f = |length_chars, in_common_list, contains_username| PasswordFeatures {
            length_chars,
            in_common_list,
            contains_username,
        };
        assert_eq!(
            check_password(&f(12, false, false)),
            PasswordVerdict::Accept
        );
        assert!(matches!(
            check_password(&f(11, false, false)),
            PasswordVerdict::Reject(_)
        ));
        assert!(matches!(
            check_password(&f(2000, false, false)),
            PasswordVerdict::Reject(_)
        ));
        assert!(matches!(
            check_password(&f(20, true, false)),
            PasswordVerdict::Reject(_)
        ));
        assert!(matches!(
            check_password(&f(20, false, true)),
            PasswordVerdict::Reject(_)
        ));
    }
}
