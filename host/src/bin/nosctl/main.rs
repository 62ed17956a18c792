//! nosctl: the administrator's command line.
#![forbid(unsafe_code)]

mod agent;
mod allowlist;
mod audit;
mod facts;
mod plan;
mod plugin;
mod recovery;

use std::process::ExitCode;

use clap::Parser;

#[derive(Parser)]
#[command(name = "nosctl", version, about = "Administer nos")]
enum Cli {
    /// Check, explain, audit, diff and test the command allowlist.
    Allowlist(allowlist::Args),
    /// Talk to the root agent over its socket.
    #[command(subcommand)]
    Agent(agent::AgentCmd),
    /// Run a planner plugin on facts and input; check every step against the allowlist.
    Plan(plan::Args),
    /// Inspect a plugin: manifest, hash, limits, imports/exports, API version.
    Plugin(plugin::Args),
    /// Print this machine's facts as planners receive them (read-only).
    Facts(facts::Args),
    /// Repair accounts while nosd runs in recovery mode (root only).
    Recovery(recovery::RecoveryArgs),
    /// Verify nosd's hash-chained audit log.
    #[command(subcommand)]
    Audit(audit::AuditCmd),
}

/// Exit status for a malformed call or an unusable input (clap uses it for usage errors too).
const EXIT_UNUSABLE: u8 = 2;

fn main() -> ExitCode {
    let result = match Cli::parse() {
        Cli::Allowlist(args) => allowlist::run(args),
        Cli::Agent(cmd) => agent::main(cmd),
        Cli::Plan(args) => plan::run(args),
        Cli::Plugin(args) => plugin::run(args),
        Cli::Facts(args) => facts::run(args),
        Cli::Recovery(args) => recovery::run(args).map(|()| ExitCode::SUCCESS),
        Cli::Audit(cmd) => audit::main(cmd),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("nosctl: {error:#}");
            ExitCode::from(EXIT_UNUSABLE)
        }
    }
}
