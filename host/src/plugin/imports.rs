//! Which imports a plugin may have, and which API version its exports name. Pure: it judges
//! the names wasmtime lists for a compiled component and never links anything.
//!
//! Allowed: the plugin API's own interfaces (`nos:plugin/{log,meta,facts,plan}`) and the
//! `wasi:cli` / `wasi:io` interfaces a wasip2 std guest imports even when it never uses them,
//! which the host satisfies with empty stdio, no environment and no arguments. Everything else
//! (filesystem, sockets, clocks, random, http, …) is refused at load, by name.

use super::manifest::{ApiVersion, PluginKind};

/// Interfaces of the `nos:plugin` package a plugin may import (log, plus type-only interfaces).
const PLUGIN_IMPORTS: &[&str] = &["log", "meta", "facts", "plan"];
const WASI_CLI_IMPORTS: &[&str] = &[
    "environment",
    "exit",
    "stdin",
    "stdout",
    "stderr",
    "terminal-input",
    "terminal-output",
    "terminal-stdin",
    "terminal-stdout",
    "terminal-stderr",
];
const WASI_IO_IMPORTS: &[&str] = &["error", "poll", "streams"];

/// The exported interface that carries the API version, per kind.
pub fn export_interface(kind: PluginKind) -> &'static str {
    match kind {
        PluginKind::Planner => "planning",
        PluginKind::AuthPolicy => "auth-decisions",
    }
}

/// Split `ns:pkg/iface@version` into its parts.
fn split_name(name: &str) -> Option<(&str, &str, &str)> {
    let (package, rest) = name.split_once('/')?;
    let (interface, version) = rest.split_once('@')?;
    Some((package, interface, version))
}

/// Every import not on the allowlist above, in the component's order.
pub fn forbidden<'a>(imports: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    imports
        .into_iter()
        .filter(|name| !is_allowed_import(name))
        .collect()
}

fn is_allowed_import(name: &str) -> bool {
    let Some((package, interface, version)) = split_name(name) else {
        return false;
    };
    match package {
        "nos:plugin" => PLUGIN_IMPORTS.contains(&interface),
        "wasi:cli" => version.starts_with("0.2.") && WASI_CLI_IMPORTS.contains(&interface),
        "wasi:io" => version.starts_with("0.2.") && WASI_IO_IMPORTS.contains(&interface),
        _ => false,
    }
}

/// The API version in the name of the kind's exported interface
/// (`nos:plugin/planning@0.1.0` → 0.1.0); `None` when the component does not export it.
pub fn exported_api_version<'a>(
    kind: PluginKind,
    exports: impl IntoIterator<Item = &'a str>,
) -> Option<ApiVersion> {
    let wanted = export_interface(kind);
    exports.into_iter().find_map(|name| {
        let (package, interface, version) = split_name(name)?;
        (package == "nos:plugin" && interface == wanted)
            .then(|| ApiVersion::parse(version))
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn std_guest_imports_are_allowed() {
        let imports = [
            "nos:plugin/log@0.1.0",
            "nos:plugin/facts@0.1.0",
            "nos:plugin/plan@0.1.0",
            "nos:plugin/meta@0.1.0",
            "wasi:cli/environment@0.2.6",
            "wasi:cli/exit@0.2.6",
            "wasi:io/error@0.2.6",
            "wasi:io/streams@0.2.6",
            "wasi:cli/stderr@0.2.6",
            "wasi:cli/terminal-stdout@0.2.6",
        ];
        assert!(forbidden(imports).is_empty());
    }

    #[test]
    fn anything_else_is_named() {
        let cases = [
            "wasi:filesystem/preopens@0.2.6",
            "wasi:sockets/tcp@0.2.6",
            "wasi:clocks/wall-clock@0.2.6",
            "wasi:random/random@0.2.6",
            "wasi:http/outgoing-handler@0.2.6",
            "wasi:cli/stdout@0.3.0",
            "nos:plugin/agent@0.1.0",
            "evil:pkg/log@0.1.0",
            "log",
        ];
        for import in cases {
            assert_eq!(
                forbidden(["nos:plugin/log@0.1.0", import]),
                [import],
                "{import}"
            );
        }
    }

    #[test]
    fn export_version() {
        let exports = ["nos:plugin/planning@0.1.0"];
        assert_eq!(
            exported_api_version(PluginKind::Planner, exports),
            Some(ApiVersion::new(0, 1, 0))
        );
        assert_eq!(exported_api_version(PluginKind::AuthPolicy, exports), None);
        assert_eq!(
            exported_api_version(PluginKind::Planner, ["nos:plugin/planning@0.9.0"]),
            Some(ApiVersion::new(0, 9, 0))
        );
        assert_eq!(
            exported_api_version(PluginKind::Planner, ["make-plan"]),
            None
        );
    }
}
