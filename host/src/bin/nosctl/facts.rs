//! `nosctl facts`: this machine's facts in the JSON form planners receive (and
//! `nosctl plan --facts` reads), through the one facts path nosd uses: the agent runs the fact
//! commands and reads the kernel files (`RequestBody::Facts`), this process parses them
//! (`nos_host::gather`) and adds what nosd reads itself (btrfs sysfs, `/dev/disk/by-id`).
//! nosctl spawns nothing: only the agent runs commands.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use nos_host::pipeline::port::{AgentPort, AgentSocket};

#[derive(clap::Args)]
pub struct Args {
    /// The agent's socket.
    #[arg(long, default_value = "/run/nos/agent.sock")]
    socket: PathBuf,
    /// A per-agent token file (`nosctl agent register --token-out …`), e.g. nosd's.
    #[arg(long, default_value = "/var/lib/nos/agent.token")]
    token_file: PathBuf,
    /// Where btrfs allocation summaries are read.
    #[arg(long, default_value = "/sys/fs/btrfs")]
    sysfs_btrfs: PathBuf,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let agent = AgentSocket {
        socket: args.socket,
        token_file: args.token_file,
        sysfs_btrfs: args.sysfs_btrfs,
        fixture_facts: None,
    };
    let facts = agent.facts()?;
    for device in facts
        .block_devices
        .iter()
        .filter(|device| device.reasons.iter().any(|r| r.contains("unknown")))
    {
        eprintln!("warning: {}: {}", device.path, device.reasons.join("; "));
    }
    println!("{}", serde_json::to_string_pretty(&facts)?);
    Ok(ExitCode::SUCCESS)
}
