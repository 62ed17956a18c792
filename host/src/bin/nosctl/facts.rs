//! `nosctl facts`: this machine's facts in the JSON form planners receive (and
//! `nosctl plan --facts` reads), gathered read-only through the one facts path
//! (`nos_host::gather`): the fact commands of `nos_machine::fact_commands` run here instead of
//! by the agent (`blkid -p` needs root; without it every device lsblk knows nothing about
//! "holds unknown contents", never blank), the kernel files read here.

use std::path::Path;
use std::process::{Command, ExitCode};

use anyhow::Result;
use nos_host::gather::{LocalFiles, RawSource, gather};
use nos_machine::fact_commands::{
    BLKID_NOTHING_FOUND, BTRFS_SHOW_ARGV, LSBLK_ARGV, blkid_probe_argv,
};
use nos_machine::files;
use nos_protocol::{Facts as RawFacts, Probe};

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> Result<ExitCode> {
    let files = LocalFiles {
        sysfs_btrfs: Path::new("/sys/fs/btrfs"),
        by_id: Path::new("/dev/disk/by-id"),
    };
    let facts = gather(&Local, &files).map_err(|err| match err {
        nos_host::gather::GatherError::Source(err) => err,
        nos_host::gather::GatherError::Facts(reason) => anyhow::Error::msg(reason),
    })?;
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

/// The fact commands, run by this process.
struct Local;

impl RawSource for Local {
    type Error = anyhow::Error;

    fn raw_facts(&self) -> Result<RawFacts> {
        let lsblk = run_fact(&owned(LSBLK_ARGV), &[]).map_err(anyhow::Error::msg)?;
        let probes = fact_files::block_devices(Path::new("/sys/class/block"))
            .into_iter()
            .map(|device| Probe {
                output: run_fact(&blkid_probe_argv(&device), &[BLKID_NOTHING_FOUND]).into(),
                device,
            })
            .collect();
        Ok(RawFacts {
            lsblk,
            probes,
            btrfs_show: run_fact(&owned(BTRFS_SHOW_ARGV), &[]).into(),
            mountinfo: fact_files::read_text(Path::new("/proc/self/mountinfo")),
            swaps: fact_files::read_text(Path::new("/proc/swaps")),
        })
    }
}

fn owned(argv: &[&str]) -> Vec<String> {
    argv.iter().map(|token| (*token).to_owned()).collect()
}

/// Runs one fact command; its stdout, or why there is none (it could not start, exited with a
/// code outside 0 and `ok_codes`, or printed something that is not UTF-8).
fn run_fact(argv: &[String], ok_codes: &[i32]) -> Result<String, String> {
    let output = Command::new(&argv[0])
        .args(&argv[1..])
        .env_clear()
        .env("LANG", "C")
        .env("LC_ALL", "C")
        .output()
        .map_err(|err| format!("{}: {err}", argv[0]))?;
    match output.status.code() {
        Some(code) if code == 0 || ok_codes.contains(&code) => String::from_utf8(output.stdout)
            .map_err(|_| format!("{}: output is not UTF-8", argv[0])),
        _ => Err(format!(
            "{} failed: {}",
            argv.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        )),
    }
}
