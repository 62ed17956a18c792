//! The login-attempt policy: typed facts in, a verdict out.
//!
//! An [`AuthPolicy`] (the auth-policy Wasm plugin, `[auth] policy_plugin`) decides each attempt
//! from [`AttemptFacts`] and judges new passwords from [`PasswordFeatures`] (derived facts,
//! never the password). [`builtin`] is the fallback and the floor: [`combine`] uses it alone
//! when a plugin fails or is missing (fail closed) and otherwise keeps the stricter of the two
//! verdicts, so a plugin can tighten the rules but never loosen them. This module never reads
//! the clock and never does IO; the login flow asks the plugin, logs and audits its failures.

use std::net::IpAddr;

use crate::clock::UnixSeconds;
pub use crate::plugin::policy::PasswordFeatures;

/// What is known about one login attempt before any password is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptFacts {
    pub username_known: bool,
    pub client_ip: IpAddr,
    pub trusted_device: bool,
    pub user_failures: u32,
    pub ip_failures: u32,
    pub device_failures: u32,
    /// Seconds the username, client and device keys are still locked (0 when not locked).
    pub user_locked_for: u64,
    pub ip_locked_for: u64,
    pub device_locked_for: u64,
    /// Seconds this client must wait because the global breaker is tripped (0 when not).
    pub breaker_wait: u64,
    pub seconds_since_last_failure: Option<u64>,
    pub totp_enrolled: bool,
    pub now: UnixSeconds,
}

/// The verdict on an attempt.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Check the password; no second factor needed.
    Proceed,
    /// Check the password and a TOTP or recovery code.
    RequireSecondFactor,
    /// Refuse with the generic failure (after a dummy hash, so timing is unchanged).
    DenyGeneric,
    /// Refuse before hashing with 429 and Retry-After.
    LockOut { seconds: u64 },
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("auth policy failed: {0}")]
    Failed(String),
}

/// A source of decisions (`plugin_policy::PluginPolicy` for the Wasm policy).
pub trait AuthPolicy: Send + Sync {
    fn decide(&self, facts: &AttemptFacts) -> Result<Decision, PolicyError>;
    /// A new password, judged from its features only: `Ok(Some(reason))` refuses it. Only
    /// consulted for passwords the built-in rules (`password::check_policy`) already accept.
    fn check_password(&self, features: &PasswordFeatures) -> Result<Option<String>, PolicyError>;
}

/// The built-in verdict. A trusted device is judged only by its own counter, so an attacker
/// spraying the owner's username or sharing the owner's IP cannot lock the owner out.
pub fn builtin(facts: &AttemptFacts) -> Decision {
    let locked_for = if facts.trusted_device {
        facts.device_locked_for
    } else {
        facts
            .user_locked_for
            .max(facts.ip_locked_for)
            .max(facts.breaker_wait)
    };
    if locked_for > 0 {
        return Decision::LockOut {
            seconds: locked_for,
        };
    }
    if facts.totp_enrolled {
        Decision::RequireSecondFactor
    } else {
        Decision::Proceed
    }
}

/// The verdict for an attempt from the plugin's answer (`None`: no plugin) and the built-in
/// verdict on `facts`: the stricter of the two, or the built-in one alone when the plugin failed.
///
/// The login flow asks the plugin outside its counter lock and combines under it with fresh
/// facts, so the floor always sees the newest counters.
pub fn combine(
    plugin_answer: Option<&Result<Decision, PolicyError>>,
    facts: &AttemptFacts,
) -> Decision {
    let floor = builtin(facts);
    match plugin_answer {
        Some(Ok(verdict)) => stricter(*verdict, floor),
        None | Some(Err(_)) => floor,
    }
}

/// [`combine`] with the plugin asked on the same facts.
pub fn decide(plugin: Option<&dyn AuthPolicy>, facts: &AttemptFacts) -> Decision {
    combine(plugin.map(|plugin| plugin.decide(facts)).as_ref(), facts)
}

fn severity(decision: Decision) -> (u8, u64) {
    match decision {
        Decision::Proceed => (0, 0),
        Decision::RequireSecondFactor => (1, 0),
        Decision::DenyGeneric => (2, 0),
        Decision::LockOut { seconds } => (3, seconds),
    }
}

fn stricter(left: Decision, right: Decision) -> Decision {
    if severity(left) >= severity(right) {
        left
    } else {
        right
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> AttemptFacts {
        AttemptFacts {
            username_known: true,
            client_ip: "192.0.2.1".parse().unwrap(),
            trusted_device: false,
            user_failures: 0,
            ip_failures: 0,
            device_failures: 0,
            user_locked_for: 0,
            ip_locked_for: 0,
            device_locked_for: 0,
            breaker_wait: 0,
            seconds_since_last_failure: None,
            totp_enrolled: true,
            now: 1000,
        }
    }

    struct Fixed(Result<Decision, ()>);

    impl AuthPolicy for Fixed {
        fn decide(&self, _: &AttemptFacts) -> Result<Decision, PolicyError> {
            self.0.map_err(|()| PolicyError::Failed("trap".into()))
        }

        fn check_password(&self, _: &PasswordFeatures) -> Result<Option<String>, PolicyError> {
            Ok(None)
        }
    }

    #[test]
    fn table() {
        let locked_user = AttemptFacts {
            user_locked_for: 60,
            ..facts()
        };
        let locked_user_trusted = AttemptFacts {
            trusted_device: true,
            ..locked_user.clone()
        };
        let cases = [
            (None, facts(), Decision::RequireSecondFactor),
            (
                None,
                AttemptFacts {
                    totp_enrolled: false,
                    ..facts()
                },
                Decision::Proceed,
            ),
            (None, locked_user.clone(), Decision::LockOut { seconds: 60 }),
            (
                None,
                locked_user_trusted.clone(),
                Decision::RequireSecondFactor,
            ),
            (
                Some(Fixed(Ok(Decision::Proceed))),
                facts(),
                Decision::RequireSecondFactor,
            ),
            (
                Some(Fixed(Ok(Decision::Proceed))),
                locked_user.clone(),
                Decision::LockOut { seconds: 60 },
            ),
            (
                Some(Fixed(Ok(Decision::LockOut { seconds: 5 }))),
                locked_user_trusted,
                Decision::LockOut { seconds: 5 },
            ),
            (
                Some(Fixed(Ok(Decision::DenyGeneric))),
                facts(),
                Decision::DenyGeneric,
            ),
            (
                Some(Fixed(Err(()))),
                locked_user,
                Decision::LockOut { seconds: 60 },
            ),
        ];
        for (plugin, facts, expected) in cases {
            let plugin_ref = plugin.as_ref().map(|plugin| plugin as &dyn AuthPolicy);
            assert_eq!(decide(plugin_ref, &facts), expected, "{facts:?}");
        }
    }
}
