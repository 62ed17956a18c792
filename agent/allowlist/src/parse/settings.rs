//! `[settings]` and `limits`: the file-wide settings of the main file, and a rule's limits.
//!
//! ```text
//! settings = [ "mount_roots" "=" paths ] [ "key_dir" "=" path ]
//!            [ "forced_mount_options" "=" words ] [ "forced_boot_options" "=" words ]
//!            [ "limits" "=" limits ]
//!            ; mount_roots not empty; forced_mount_options holds nosuid and nodev;
//!            ; forced_boot_options is exactly "nofail" and "x-systemd.device-timeout=" 1*DIGIT "s"
//! limits   = [ "timeout_s" "=" 1..86400 ] [ "kill_after_s" "=" 0..86400 ]
//!            [ "max_stdout" "=" 0..64MiB ] [ "max_stderr" "=" 0..64MiB ]
//!            [ "exit_states" "=" "{" *( code "=" state ) "}" ]      ; code 1..255
//! ```
//! A rule's limits start from the settings' `limits`, which start from [`default_limits`].

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

use toml::Spanned;

use super::cx::{Cx, wide};
use super::raw::{RawLimits, RawSettings};
use crate::DiagnosticKind;
use crate::grammar::{Limits, Settings};
use crate::managed::{DEFAULT_BOOT_OPTIONS, DEVICE_TIMEOUT_OPTION, MAX_DEVICE_TIMEOUT_S, NOFAIL};
use crate::value::{check_int, escape};

/// Longest timeout a rule may set: one day.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
/// Largest output cap a rule may set.
pub const MAX_OUTPUT_CAP: usize = 64 << 20;
/// Default mount roots, key directory and forced options.
pub const DEFAULT_MOUNT_ROOTS: [&str; 2] = ["/srv", "/mnt"];
pub const DEFAULT_KEY_DIR: &str = "/etc/nos/keys";
pub const REQUIRED_FORCED_OPTIONS: [&str; 2] = ["nosuid", "nodev"];

pub(super) fn default_limits() -> Limits {
    Limits {
        timeout: Duration::from_secs(60),
        kill_after: Duration::from_secs(5),
        max_stdout: 1 << 20,
        max_stderr: 64 << 10,
        exit_states: BTreeMap::new(),
    }
}

pub(super) fn default_settings() -> Settings {
    Settings {
        mount_roots: DEFAULT_MOUNT_ROOTS
            .iter()
            .map(|root| (*root).to_owned())
            .collect(),
        key_dir: DEFAULT_KEY_DIR.to_owned(),
        forced_mount_options: REQUIRED_FORCED_OPTIONS
            .iter()
            .map(|option| (*option).to_owned())
            .collect(),
        forced_boot_options: DEFAULT_BOOT_OPTIONS
            .iter()
            .map(|option| (*option).to_owned())
            .collect(),
        default_limits: default_limits(),
    }
}

impl Cx<'_> {
    pub(super) fn settings(&mut self, raw: &Spanned<RawSettings>) -> Settings {
        let defaults = default_settings();
        let span = raw.span();
        let raw = raw.get_ref();
        let mount_roots = match &raw.mount_roots {
            Some(roots) => {
                for root in roots {
                    self.check_path(root.span(), "mount root", root.get_ref());
                }
                if roots.is_empty() {
                    self.error(
                        span.clone(),
                        DiagnosticKind::Empty {
                            field: "mount_roots",
                        },
                    );
                }
                roots.iter().map(|root| root.get_ref().clone()).collect()
            }
            None => defaults.mount_roots,
        };
        let key_dir = match &raw.key_dir {
            Some(dir) => {
                self.check_path(dir.span(), "key directory", dir.get_ref());
                dir.get_ref().clone()
            }
            None => defaults.key_dir,
        };
        let forced_mount_options = match &raw.forced_mount_options {
            Some(forced) => {
                for required in REQUIRED_FORCED_OPTIONS {
                    if !forced.get_ref().iter().any(|option| option == required) {
                        self.error(
                            forced.span(),
                            DiagnosticKind::ForcedOptionMissing { option: required },
                        );
                    }
                }
                forced.get_ref().clone()
            }
            None => defaults.forced_mount_options,
        };
        let forced_boot_options = match &raw.forced_boot_options {
            Some(forced) => {
                self.check_boot_options(forced);
                forced.get_ref().clone()
            }
            None => defaults.forced_boot_options,
        };
        let default_limits = match &raw.limits {
            Some(limits) => self.limits(limits.span(), limits.get_ref(), &defaults.default_limits),
            None => defaults.default_limits,
        };
        Settings {
            mount_roots,
            key_dir,
            forced_mount_options,
            forced_boot_options,
            default_limits,
        }
    }

    /// The boot options are closed: `nofail` and one device timeout, each exactly once, since
    /// both tables must accept every one of them.
    ///
    /// ```text
    /// boot-options = "[" boot-option *( "," boot-option ) "]"   ; each of the two exactly once
    /// boot-option  = "nofail" / "x-systemd.device-timeout=" 1..600 "s"
    /// ```
    fn check_boot_options(&mut self, forced: &Spanned<Vec<String>>) {
        let span = forced.span();
        let mut seen: Vec<&'static str> = Vec::new();
        for option in forced.get_ref() {
            let key = if option == NOFAIL {
                NOFAIL
            } else if option
                .strip_prefix(DEVICE_TIMEOUT_OPTION)
                .and_then(|rest| rest.strip_suffix('s'))
                .is_some_and(|seconds| check_int(seconds, 1, MAX_DEVICE_TIMEOUT_S).is_ok())
            {
                DEVICE_TIMEOUT_OPTION
            } else {
                self.error(
                    span.clone(),
                    DiagnosticKind::BadBootOption {
                        option: escape(option),
                        max_s: MAX_DEVICE_TIMEOUT_S,
                    },
                );
                continue;
            };
            if seen.contains(&key) {
                self.error(
                    span.clone(),
                    DiagnosticKind::Repeated {
                        what: "boot option",
                        name: key.trim_end_matches('=').to_owned(),
                    },
                );
            }
            seen.push(key);
        }
        for required in [NOFAIL, DEVICE_TIMEOUT_OPTION] {
            if !seen.contains(&required) {
                self.error(
                    span.clone(),
                    DiagnosticKind::BootOptionMissing { option: required },
                );
            }
        }
    }

    pub(super) fn limits(&mut self, span: Range<usize>, raw: &RawLimits, base: &Limits) -> Limits {
        let timeout = raw.timeout_s.map_or(base.timeout, Duration::from_secs);
        let kill_after = raw
            .kill_after_s
            .map_or(base.kill_after, Duration::from_secs);
        let max_stdout = raw.max_stdout.unwrap_or(base.max_stdout);
        let max_stderr = raw.max_stderr.unwrap_or(base.max_stderr);
        let most_seconds = MAX_TIMEOUT.as_secs();
        let most_bytes = wide(MAX_OUTPUT_CAP);
        self.check_range(
            span.clone(),
            "timeout_s",
            timeout.as_secs(),
            1,
            most_seconds,
        );
        self.check_range(
            span.clone(),
            "kill_after_s",
            kill_after.as_secs(),
            0,
            most_seconds,
        );
        self.check_range(span.clone(), "max_stdout", wide(max_stdout), 0, most_bytes);
        self.check_range(span.clone(), "max_stderr", wide(max_stderr), 0, most_bytes);
        let mut exit_states = base.exit_states.clone();
        for (code, state) in &raw.exit_states {
            match code.parse::<i32>() {
                Ok(code) if (1..=255).contains(&code) => {
                    exit_states.insert(code, state.clone());
                }
                _ => self.error(
                    span.clone(),
                    DiagnosticKind::BadExitCode { code: code.clone() },
                ),
            }
        }
        Limits {
            timeout,
            kill_after,
            max_stdout,
            max_stderr,
            exit_states,
        }
    }
}
