//! nosctl: the administrator's command line.
#![forbid(unsafe_code)]

mod agent;
mod allowlist;
mod audit;
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
