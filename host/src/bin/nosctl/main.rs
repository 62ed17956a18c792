//! nosctl: the administrator's command line.
#![forbid(unsafe_code)]

mod agent;

use clap::Parser;

#[derive(Parser)]
#[command(name = "nosctl", version, about = "Administer nos")]
enum Cli {
    /// Talk to the root agent over its socket.
    #[command(subcommand)]
    Agent(agent::AgentCmd),
}

fn main() -> anyhow::Result<std::process::ExitCode> {
    match Cli::parse() {
        Cli::Agent(cmd) => agent::main(cmd),
    }
}
