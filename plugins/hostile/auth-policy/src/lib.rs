//! Hostile test plugin: an auth policy that loops forever in `decide-login` and traps
//! (`unreachable`) in `check-password`. nosd must fall back to its built-in verdicts, within
//! the plugin's fuel and deadline, and serve the next login.
#![deny(unsafe_code)]

#[allow(unsafe_code)]
mod bindings {
    wit_bindgen::generate!({
        world: "auth-policy",
        path: "../../../wit/since_v0.1.0",
    });
    #[cfg(target_arch = "wasm32")]
    use super::Hostile;
    #[cfg(target_arch = "wasm32")]
    export!(Hostile);
}

use bindings::exports::nos::plugin::auth_decisions::{
    Guest, LoginAttempt, LoginDecision, PasswordFeatures, PasswordVerdict,
};
use bindings::nos::plugin::meta::PluginInfo;

pub struct Hostile;

impl Guest for Hostile {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "hostile-auth-policy".into(),
            version: "0.1.0".into(),
            summary: "loops in decide-login, traps in check-password".into(),
            input_schema: "{}".into(),
        }
    }

    fn decide_login(attempt: LoginAttempt) -> LoginDecision {
        let _ = attempt;
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }

    fn check_password(features: PasswordFeatures) -> PasswordVerdict {
        let _ = features;
        #[cfg(target_arch = "wasm32")]
        core::arch::wasm32::unreachable();
        #[cfg(not(target_arch = "wasm32"))]
        unreachable!("hostile");
    }
}
