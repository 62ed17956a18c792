//! nosctl: the administrator's command line.
#![forbid(unsafe_code)]

use clap::Parser;

#[derive(Parser)]
#[command(name = "nosctl", version, about = "Administer nos")]
enum Cli {}

fn main() -> anyhow::Result<()> {
    match Cli::parse() {}
}
