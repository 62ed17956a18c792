//! `plugin.toml`: what a plugin says about itself, parsed and validated from text.
//!
//! ```toml
//! name = "btrfs-pool"            # [a-z0-9-]{1,64}
//! version = "0.1.0"
//! kind = "planner"               # planner | auth-policy
//! api-version = "0.1.0"          # the nos:plugin WIT version it was built against
//! component = "plugin.wasm"      # a file name beside the manifest
//! sha256 = "…"                   # of the component; written by the build, checked before compiling
//! scope = ["mkfs.btrfs", …]      # allowlist rule ids the plugin may emit
//! [limits]                       # requests, capped by the host (see `limits`)
//! fuel = 200_000_000
//! memory-bytes = 33_554_432
//! deadline-ms = 2_000
//! ```
//!
//! This module does no IO: the loader reads the file and hands over the text.

use std::fmt;

use serde::Deserialize;

use super::limits::RequestedLimits;
pub use crate::plan::check::Scope;

/// At most this many rule ids in a scope.
pub const MAX_SCOPE_RULES: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl ApiVersion {
    pub const fn new(major: u32, minor: u32, patch: u32) -> ApiVersion {
        ApiVersion {
            major,
            minor,
            patch,
        }
    }

    /// `MAJOR.MINOR.PATCH`, each a decimal without sign.
    pub fn parse(text: &str) -> Option<ApiVersion> {
        let mut parts = text.split('.');
        let mut next = || -> Option<u32> {
            let part = parts.next()?;
            if part.is_empty() || part.len() > 9 || !part.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            part.parse().ok()
        };
        let version = ApiVersion::new(next()?, next()?, next()?);
        parts.next().is_none().then_some(version)
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginKind {
    Planner,
    AuthPolicy,
}

impl fmt::Display for PluginKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PluginKind::Planner => "planner",
            PluginKind::AuthPolicy => "auth-policy",
        })
    }
}

/// A validated manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub name: String,
    pub version: String,
    pub kind: PluginKind,
    pub api_version: ApiVersion,
    /// A plain file name, resolved beside the manifest.
    pub component: String,
    /// Lowercase hex.
    pub sha256: String,
    pub scope: Scope,
    pub limits: RequestedLimits,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawManifest {
    name: String,
    version: String,
    kind: String,
    api_version: String,
    component: Option<String>,
    sha256: Option<String>,
    #[serde(default)]
    scope: Vec<String>,
    #[serde(default)]
    limits: RawLimits,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawLimits {
    fuel: Option<u64>,
    memory_bytes: Option<u64>,
    deadline_ms: Option<u64>,
}

/// Parse and validate a manifest; `Err` is every problem found, one per line.
pub fn parse(text: &str) -> Result<Manifest, String> {
    let raw: RawManifest = toml::from_str(text).map_err(|err| err.to_string().trim().to_owned())?;
    let mut problems = Vec::new();

    if !is_name(&raw.name) {
        problems.push(format!("name {:?} must be 1-64 of [a-z0-9-]", raw.name));
    }
    if raw.version.is_empty()
        || raw.version.len() > 64
        || raw.version.chars().any(char::is_whitespace)
    {
        problems.push(format!(
            "version {:?} must be 1-64 non-blank characters",
            raw.version
        ));
    }
    let kind = match raw.kind.as_str() {
        "planner" => Some(PluginKind::Planner),
        "auth-policy" => Some(PluginKind::AuthPolicy),
        other => {
            problems.push(format!("kind {other:?} must be planner or auth-policy"));
            None
        }
    };
    let api_version = ApiVersion::parse(&raw.api_version);
    if api_version.is_none() {
        problems.push(format!(
            "api-version {:?} must be MAJOR.MINOR.PATCH",
            raw.api_version
        ));
    }
    let component = raw.component.unwrap_or_default();
    if !is_file_name(&component) {
        problems.push(format!(
            "component {component:?} must be a file name beside the manifest (is the plugin built?)"
        ));
    }
    let sha256 = raw.sha256.unwrap_or_default();
    if sha256.len() != 64
        || !sha256
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        problems.push(format!(
            "sha256 {sha256:?} must be 64 lowercase hex digits (is the plugin built?)"
        ));
    }
    if raw.scope.len() > MAX_SCOPE_RULES {
        problems.push(format!(
            "scope has {} rule ids, more than {MAX_SCOPE_RULES}",
            raw.scope.len()
        ));
    }
    for rule_id in &raw.scope {
        if !is_rule_id(rule_id) {
            problems.push(format!(
                "scope rule id {rule_id:?} must be 1-128 of [A-Za-z0-9._-]"
            ));
        }
    }
    match (kind, api_version) {
        (Some(kind), Some(api_version)) if problems.is_empty() => Ok(Manifest {
            name: raw.name,
            version: raw.version,
            kind,
            api_version,
            component,
            sha256,
            scope: Scope::new(raw.scope),
            limits: RequestedLimits {
                fuel: raw.limits.fuel,
                memory_bytes: raw.limits.memory_bytes,
                deadline_ms: raw.limits.deadline_ms,
            },
        }),
        _ => Err(problems.join("\n")),
    }
}

fn is_name(text: &str) -> bool {
    (1..=64).contains(&text.len())
        && text
            .bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-'))
}

fn is_file_name(text: &str) -> bool {
    (1..=128).contains(&text.len())
        && text != "."
        && text != ".."
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn is_rule_id(text: &str) -> bool {
    (1..=128).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::{Expect, expect};

    const HASH: &str = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8";

    fn check(text: &str, expect: Expect) {
        let actual = match parse(text) {
            Ok(manifest) => format!("{manifest:?}"),
            Err(problems) => format!("error:\n{problems}"),
        };
        expect.assert_eq(&actual);
    }

    #[test]
    fn valid() {
        check(
            &format!(
                "name = \"btrfs-pool\"\nversion = \"0.1.0\"\nkind = \"planner\"\napi-version = \"0.1.0\"\n\
                 component = \"plugin.wasm\"\nsha256 = \"{HASH}\"\nscope = [\"mkfs.btrfs\"]\n[limits]\nfuel = 5\n"
            ),
            expect![[
                r#"Manifest { name: "btrfs-pool", version: "0.1.0", kind: Planner, api_version: ApiVersion { major: 0, minor: 1, patch: 0 }, component: "plugin.wasm", sha256: "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8", scope: Scope({"mkfs.btrfs"}), limits: RequestedLimits { fuel: Some(5), memory_bytes: None, deadline_ms: None } }"#
            ]],
        );
    }

    #[test]
    fn every_problem_is_reported() {
        check(
            "name = \"Bad Name\"\nversion = \"\"\nkind = \"daemon\"\napi-version = \"1\"\n\
             component = \"../../etc/passwd\"\nsha256 = \"XYZ\"\nscope = [\"rm -rf\"]\n",
            expect![[r#"
                error:
                name "Bad Name" must be 1-64 of [a-z0-9-]
                version "" must be 1-64 non-blank characters
                kind "daemon" must be planner or auth-policy
                api-version "1" must be MAJOR.MINOR.PATCH
                component "../../etc/passwd" must be a file name beside the manifest (is the plugin built?)
                sha256 "XYZ" must be 64 lowercase hex digits (is the plugin built?)
                scope rule id "rm -rf" must be 1-128 of [A-Za-z0-9._-]"#]],
        );
    }

    #[test]
    fn unknown_keys_and_unbuilt_manifests_are_refused() {
        check(
            "name = \"a\"\nversion = \"1\"\nkind = \"planner\"\napi-version = \"0.1.0\"\nexec = \"sh\"\n",
            expect![[r#"
                error:
                TOML parse error at line 5, column 1
                  |
                5 | exec = "sh"
                  | ^^^^
                unknown field `exec`, expected one of `name`, `version`, `kind`, `api-version`, `component`, `sha256`, `scope`, `limits`"#]],
        );
        check(
            "name = \"a\"\nversion = \"1\"\nkind = \"planner\"\napi-version = \"0.1.0\"\n",
            expect![[r#"
                error:
                component "" must be a file name beside the manifest (is the plugin built?)
                sha256 "" must be 64 lowercase hex digits (is the plugin built?)"#]],
        );
    }

    #[test]
    fn api_version_parse() {
        assert_eq!(ApiVersion::parse("0.1.0"), Some(ApiVersion::new(0, 1, 0)));
        for bad in [
            "",
            "0.1",
            "0.1.0.0",
            "a.b.c",
            "-1.0.0",
            "+1.0.0",
            "0.1.0-rc1",
            "9999999999.0.0",
        ] {
            assert_eq!(ApiVersion::parse(bad), None, "{bad}");
        }
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(text in "\\PC{0,200}") {
            let _ = parse(&text);
        }
    }
}
