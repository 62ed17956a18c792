//! A facts refresh through the agent (one `RequestBody::Facts` round trip, then the host's one
//! parse, `nos_host::facts::build`) vs running the same tools directly in this process and
//! parsing the same way, over 24 extra loop devices (a mix of blank, GPT-partitioned, ext4 and
//! swap). Measured in one run, the two alternating call by call so both see the same load; the
//! issue's goal is ≤ 1.2×.
//!
//! Run as root: `cargo build --release -p nos-agent && cargo bench -p nos-tests --bench facts`
//! (`NOS_BENCH_ITERS` sets the iteration count, default 30).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use nos_machine::fact_commands::{
    BLKID_NOTHING_FOUND, BTRFS_SHOW_ARGV, LSBLK_ARGV, blkid_probe_argv,
};
use nos_machine::files;
use nos_protocol::{Facts as RawFacts, Probe, RequestBody, ResponseBody};
use nos_tests::{AgentSetup, LoopDevice, TestAgent};

const N_DEVICES: usize = 24;

fn run(argv: &[String], ok_codes: &[i32]) -> Result<String, String> {
    let output = Command::new(&argv[0])
        .args(&argv[1..])
        .env_clear()
        .env("LANG", "C")
        .output()
        .map_err(|err| err.to_string())?;
    match output.status.code() {
        Some(code) if code == 0 || ok_codes.contains(&code) => {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        }
        _ => Err(String::from_utf8_lossy(&output.stderr).into_owned()),
    }
}

/// The same commands and files the agent uses, run here.
fn direct() -> RawFacts {
    let owned = |argv: &[&str]| argv.iter().map(|t| (*t).to_owned()).collect::<Vec<_>>();
    RawFacts {
        lsblk: run(&owned(LSBLK_ARGV), &[]).unwrap(),
        probes: files::block_devices(Path::new("/sys/class/block"))
            .into_iter()
            .map(|device| Probe {
                output: run(&blkid_probe_argv(&device), &[BLKID_NOTHING_FOUND]).into(),
                device,
            })
            .collect(),
        btrfs_show: run(&owned(BTRFS_SHOW_ARGV), &[]).into(),
        mountinfo: files::read_text(Path::new("/proc/self/mountinfo")),
        swaps: files::read_text(Path::new("/proc/swaps")),
        pools: Vec::new(),
    }
}

fn median(mut samples: Vec<Duration>) -> f64 {
    samples.sort();
    samples[samples.len() / 2].as_secs_f64() * 1e3
}

fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    let n_iters: usize = std::env::var("NOS_BENCH_ITERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(30);
    let dir = tempfile::tempdir().unwrap();
    let devices: Vec<LoopDevice> = (0..N_DEVICES)
        .map(|idx| LoopDevice::new(dir.path(), &format!("bench{idx}"), "64M").unwrap())
        .collect();
    for (idx, device) in devices.iter().enumerate() {
        let path = device.device.as_str();
        let status = match idx % 4 {
            1 => Command::new("mkfs.ext4").args(["-q", "-F", path]).status(),
            2 => Command::new("mkswap").args(["-q", path]).status(),
            3 => Command::new("sh")
                .args(["-c", &format!("printf 'label: gpt\\n' | sfdisk -q {path}")])
                .status(),
            _ => continue,
        };
        assert!(status.unwrap().success());
    }
    let mut agent = TestAgent::start(AgentSetup::new(include_str!("../../allowlist.toml")));
    agent.register();
    let mut client = agent.client();
    let mut through_agent = || match client.request(RequestBody::Facts).unwrap() {
        ResponseBody::Facts { facts } => nos_host::facts::build(&facts, &[], &[]).unwrap(),
        other => panic!("{other:?}"),
    };
    let n_probed = through_agent()
        .block_devices
        .iter()
        .filter(|d| d.device_type == "loop")
        .count();
    // Alternated one by one, so both see the same machine load.
    let time = |body: &mut dyn FnMut()| {
        let started = Instant::now();
        body();
        started.elapsed()
    };
    let mut agent_samples = Vec::new();
    let mut direct_samples = Vec::new();
    for _ in 0..n_iters * 2 {
        agent_samples.push(time(&mut || {
            through_agent();
        }));
        direct_samples.push(time(&mut || {
            nos_host::facts::build(&direct(), &[], &[]).unwrap();
        }));
    }
    let (agent_ms, direct_ms) = (median(agent_samples), median(direct_samples));
    println!(
        "facts refresh, {} loop devices in lsblk, {n_iters}×2 iterations each (median ms)",
        n_probed
    );
    println!("  tools run directly + parse   {direct_ms:8.2}");
    println!("  through the agent + parse    {agent_ms:8.2}");
    println!(
        "  ratio                        {:8.2}×  (goal ≤ 1.2×)",
        agent_ms / direct_ms
    );
    drop(devices);
}
