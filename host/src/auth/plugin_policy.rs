//! The auth-policy Wasm plugin as an [`AuthPolicy`]: attempt facts go in as the plugin API's
//! plain types, its decision comes back as ours.
//!
//! Whatever the plugin answers, `policy::decide` keeps the stricter of it and the built-in
//! verdict, and uses the built-in one alone when the plugin fails (trap, fuel, deadline), so a
//! broken or hostile policy can tighten login but never loosen it.

use std::sync::Arc;

use super::policy::{AttemptFacts, AuthPolicy, Decision, PolicyError};
use crate::plugin::LoadedPlugin;
use crate::plugin::policy::{LoginAttempt, LoginDecision};

/// A loaded auth-policy component.
pub struct PluginPolicy {
    plugin: Arc<LoadedPlugin>,
}

impl PluginPolicy {
    pub fn new(plugin: Arc<LoadedPlugin>) -> PluginPolicy {
        PluginPolicy { plugin }
    }
}

impl AuthPolicy for PluginPolicy {
    fn decide(&self, facts: &AttemptFacts) -> Result<Decision, PolicyError> {
        let attempt = LoginAttempt {
            username_known: facts.username_known,
            client_ip: facts.client_ip.to_string(),
            trusted_device: facts.trusted_device,
            recent_user_failures: if facts.trusted_device {
                facts.device_failures
            } else {
                facts.user_failures
            },
            recent_ip_failures: facts.ip_failures,
            seconds_since_last_failure: facts.seconds_since_last_failure,
            totp_enrolled: facts.totp_enrolled,
            now_unix_seconds: facts.now,
        };
        let decision = self
            .plugin
            .decide_login(&attempt)
            .map_err(|error| PolicyError::Failed(error.to_string()))?;
        Ok(match decision {
            LoginDecision::Proceed => Decision::Proceed,
            LoginDecision::RequireSecondFactor => Decision::RequireSecondFactor,
            LoginDecision::Deny => Decision::DenyGeneric,
            LoginDecision::LockOut { seconds } => Decision::LockOut {
                seconds: u64::from(seconds),
            },
        })
    }
}
