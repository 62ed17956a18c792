//! `nosctl plugin inspect`: what a plugin is and what it may do: its manifest, whether its hash
//! matches, the limits the host grants, its imports and exports, its API version and what it
//! says about itself. Exit status: 0 the plugin loads, 3 the host refuses it, 2 malformed call.

use nos_host::terminal::safe;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use nos_host::plugin::{HostConfig, PluginHost, api};
use serde_json::json;

use crate::plan::EXIT_PLUGIN_FAILED;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    verb: Verb,
}

#[derive(clap::Subcommand)]
enum Verb {
    /// Manifest, hash, granted limits, imports/exports, API version and describe() of a plugin.
    Inspect {
        /// The plugin directory (holding plugin.toml) or its manifest.
        plugin: PathBuf,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(args: Args) -> Result<ExitCode> {
    let Verb::Inspect { plugin, json } = args.verb;
    let host = PluginHost::new(&HostConfig::new(None))?;
    let loaded = match host.load(&plugin) {
        Ok(loaded) => loaded,
        Err(error) => {
            if json {
                println!("{}", json!({"loaded": false, "error": error.to_string()}));
            } else {
                println!("refused: {}", safe(&error.to_string()));
            }
            return Ok(ExitCode::from(EXIT_PLUGIN_FAILED));
        }
    };
    let manifest = loaded.manifest();
    let info = loaded.describe();
    let limits = loaded.limits();
    if json {
        let value = json!({
            "loaded": true,
            "name": manifest.name,
            "version": manifest.version,
            "kind": manifest.kind.to_string(),
            "api_version": manifest.api_version.to_string(),
            "host_supports": api::supported_range(),
            "sha256": manifest.sha256,
            "sha256_verified": true,
            "scope": manifest.scope.iter().collect::<Vec<_>>(),
            "limits": {"fuel": limits.fuel, "memory_bytes": limits.memory_bytes, "deadline_ms": limits.deadline_ms},
            "imports": loaded.imports(),
            "exports": loaded.exports(),
            "describe": match &info {
                Ok(info) => json!({"name": info.name, "version": info.version, "summary": info.summary, "input_schema": info.input_schema}),
                Err(error) => json!({"error": error.to_string()}),
            },
        });
        println!("{value}");
    } else {
        println!("{} {} ({})", manifest.name, manifest.version, manifest.kind);
        println!(
            "api version: {} (host supports {})",
            manifest.api_version,
            api::supported_range()
        );
        println!("sha256:      {} (verified)", manifest.sha256);
        println!(
            "limits:      fuel {} units, memory {} bytes, deadline {} ms",
            limits.fuel, limits.memory_bytes, limits.deadline_ms
        );
        println!(
            "scope:       {}",
            manifest.scope.iter().collect::<Vec<_>>().join(", ")
        );
        println!("imports:     {}", safe(&loaded.imports().join(", ")));
        println!("exports:     {}", safe(&loaded.exports().join(", ")));
        match &info {
            Ok(info) => {
                println!(
                    "describe:    {} {}: {}",
                    safe(&info.name),
                    safe(&info.version),
                    safe(&info.summary)
                );
                println!("input schema:");
                for line in info.input_schema.lines() {
                    println!("{}", safe(line));
                }
            }
            Err(error) => println!("describe:    failed: {}", safe(&error.to_string())),
        }
    }
    Ok(ExitCode::SUCCESS)
}
