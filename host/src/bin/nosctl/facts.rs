//! `nosctl facts`: this machine's facts in the JSON form planners receive (and
//! `nosctl plan --facts` reads), gathered read-only: `lsblk --json`, `/proc/self/mountinfo`,
//! `/dev/disk/by-id`, `/sys/fs/btrfs/*/allocation`, `btrfs filesystem show --raw` (the only
//! source of devids; without it, as without root for unmounted pools, members get devid 0,
//! "unknown", and a warning goes to stderr) and `blkid -p` (filesystem
//! signatures where lsblk has no udev database; needs root). The parsing is in
//! `nos_host::facts`.

use std::fs;
use std::path::Path;
use std::process::{Command, ExitCode};

use anyhow::{Context, Result};
use nos_host::facts::assemble::assemble;
use nos_host::facts::{blkid, btrfs_show, lsblk, mountinfo};

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
    // One probe for every device lsblk left blank (`blkid -p` takes several; exit 2 = one
    // of them had no signature).
    let blank: Vec<&str> = devices
        .iter()
        .filter(|device| blkid::needs_probe(device))
        .map(|device| device.path.as_str())
        .collect();
    let signatures = if blank.is_empty() {
        Vec::new()
    } else {
        refinement(
            &blkid::probe_argv(&blank),
            &[2],
            blkid::parse,
            "filesystem signatures are lsblk's alone",
        )
    };
    let facts = assemble(
        devices,
        &signatures,
        &mounts,
        &nos_host::sysfs_btrfs::summaries(Path::new("/sys/fs/btrfs")),
        &refinement(
            &btrfs_show::SHOW_ARGV,
            &[],
            btrfs_show::parse,
            "devids are unknown (0)",
        ),
    );
    println!("{}", serde_json::to_string_pretty(&facts)?);
    Ok(ExitCode::SUCCESS)
}

/// A command whose parsed output refines the facts; empty, with a warning saying what that
/// means, when it cannot be run, fails (an exit code outside `ok_codes` and 0) or does not parse.
fn refinement<T>(
    argv: &[&str],
    ok_codes: &[i32],
    parse: impl Fn(&str) -> Result<Vec<T>, String>,
    without_it: &str,
) -> Vec<T> {
    let parsed = Command::new(argv[0])
        .args(&argv[1..])
        .env_clear()
        .output()
        .map_err(|err| err.to_string())
        .and_then(|output| match output.status.code() {
            Some(code) if code == 0 || ok_codes.contains(&code) => {
                parse(&String::from_utf8_lossy(&output.stdout))
            }
            _ => Err(String::from_utf8_lossy(&output.stderr).trim().to_owned()),
        });
    parsed.unwrap_or_else(|err| {
        eprintln!("warning: {}: {err}; {without_it}", argv.join(" "));
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
