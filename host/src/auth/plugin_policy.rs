//! The auth-policy Wasm plugin as an [`AuthPolicy`]: attempt facts go in as the plugin API's
//! plain types, its decision comes back as ours.
//!
//! Whatever the plugin answers, `policy::combine` keeps the stricter of it and the built-in
//! verdict, and uses the built-in one alone when the plugin fails (trap, fuel, deadline), so a
//! broken or hostile policy can tighten login but never loosen it. Password rules likewise:
//! the built-in ones run first, the plugin can only refuse more.

use std::path::Path;
use std::sync::Arc;

use super::policy::{AttemptFacts, AuthPolicy, Decision, PasswordFeatures, PolicyError};
use crate::config::AuthConfig;
use crate::plugin::policy::{LoginAttempt, LoginDecision, PasswordVerdict};
use crate::plugin::{AuthPolicyPlugin, PluginError, PluginHost};

#[derive(Debug, thiserror::Error)]
#[error("[auth] policy_plugin {path}: {source}")]
pub struct PolicyLoadError {
    pub path: String,
    #[source]
    pub source: PluginError,
}

/// `[auth] policy_plugin` through nosd's one plugin host (`pipeline::setup::plugin_host`):
/// `Ok(None)` when unset, an error when set but unloadable (nosd then refuses to start: a
/// configured policy is never silently dropped).
pub fn from_config(
    host: Option<&PluginHost>,
    config: &AuthConfig,
) -> Result<Option<PluginPolicy>, PolicyLoadError> {
    let Some(path) = &config.policy_plugin else {
        return Ok(None);
    };
    let error = |source| PolicyLoadError {
        path: path.display().to_string(),
        source,
    };
    let host = host.ok_or_else(|| error(PluginError::Engine("no plugin host".into())))?;
    PluginPolicy::load(host, path).map(Some).map_err(error)
}

/// A loaded auth-policy component.
pub struct PluginPolicy {
    plugin: Arc<AuthPolicyPlugin>,
}

impl PluginPolicy {
    pub fn new(plugin: Arc<AuthPolicyPlugin>) -> PluginPolicy {
        PluginPolicy { plugin }
    }

    /// Loads `[auth] policy_plugin` exactly as planners are loaded (manifest, sha256, API
    /// version, imports, capped limits) and refuses any plugin that is not an auth policy.
    pub fn load(host: &PluginHost, dir_or_manifest: &Path) -> Result<PluginPolicy, PluginError> {
        let plugin = host.load_auth_policy(dir_or_manifest)?;
        Ok(PluginPolicy::new(Arc::new(plugin)))
    }

    /// The plugin's name and sha256, for logs.
    pub fn describe(&self) -> (String, String) {
        let manifest = self.plugin.manifest();
        (manifest.name.clone(), manifest.sha256.clone())
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

    fn check_password(&self, features: &PasswordFeatures) -> Result<Option<String>, PolicyError> {
        match self.plugin.check_password(features) {
            Ok(PasswordVerdict::Accept) => Ok(None),
            Ok(PasswordVerdict::Reject(reason)) => Ok(Some(reason)),
            Err(error) => Err(PolicyError::Failed(error.to_string())),
        }
    }
}
