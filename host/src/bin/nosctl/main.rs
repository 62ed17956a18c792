//! nosctl: the administrator's command line.
#![forbid(unsafe_code)]

mod recovery;

use clap::Parser;

#[derive(Parser)]
#[command(name = "nosctl", version, about = "Administer nos")]
enum Cli {
    /// Repair accounts while nosd runs in recovery mode (root only).
    Recovery(recovery::RecoveryArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse() {
        Cli::Recovery(args) => recovery::run(args),
    }
}
