//! `nosctl facts`: this machine's facts in the JSON form planners receive (and
//! `nosctl plan --facts` reads), gathered read-only: `lsblk --json`, `/proc/self/mountinfo`,
//! `/dev/disk/by-id`, `/sys/fs/btrfs/*/allocation` and `btrfs filesystem show --raw` (the only
//! source of devids; without it, as without root for unmounted pools, members get devid 0,
//! "unknown", and a warning goes to stderr). The parsing is in `nos_host::facts`.

use std::fs;
use std::path::Path;
use std::process::{Command, ExitCode};

use anyhow::{Context, Result};
use nos_host::facts::assemble::assemble;
use nos_host::facts::btrfs_show::{self, ShownFilesystem};
use nos_host::facts::{lsblk, mountinfo};

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> Result<ExitCode> {
    let output = Command::new("lsblk")
        .args(lsblk::LSBLK_ARGS)
        .env_clear()
        .output()
        .context("cannot run lsblk")?;
    anyhow::ensure!(
        output.status.success(),
        "lsblk failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lsblk_json = String::from_utf8(output.stdout).context("lsblk output is not UTF-8")?;
    let devices = lsblk::parse(&lsblk_json, &by_id_links()).map_err(anyhow::Error::msg)?;
    let mounts = mountinfo::parse(
        &fs::read_to_string("/proc/self/mountinfo").context("cannot read /proc/self/mountinfo")?,
    );
    let facts = assemble(
        devices,
        &mounts,
        &nos_host::sysfs_btrfs::summaries(Path::new("/sys/fs/btrfs")),
        &btrfs_shown(),
    );
    println!("{}", serde_json::to_string_pretty(&facts)?);
    Ok(ExitCode::SUCCESS)
}

/// `btrfs filesystem show --raw`, parsed; empty (devids unknown) when it cannot be run.
fn btrfs_shown() -> Vec<ShownFilesystem> {
    let shown = Command::new("btrfs")
        .args(["filesystem", "show", "--raw"])
        .env_clear()
        .output()
        .map_err(|err| err.to_string())
        .and_then(|output| {
            if output.status.success() {
                btrfs_show::parse(&String::from_utf8_lossy(&output.stdout))
            } else {
                Err(String::from_utf8_lossy(&output.stderr).trim().to_owned())
            }
        });
    shown.unwrap_or_else(|err| {
        eprintln!("warning: btrfs filesystem show --raw: {err}; devids are unknown (0)");
        Vec::new()
    })
}

/// `/dev/disk/by-id/*` → the kernel name each link points at.
fn by_id_links() -> Vec<(String, String)> {
    let Ok(entries) = fs::read_dir("/dev/disk/by-id") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let target = fs::read_link(entry.path()).ok()?;
            let kname = target.file_name()?.to_str()?.to_owned();
            Some((entry.path().display().to_string(), kname))
        })
        .collect()
}
