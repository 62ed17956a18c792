//! A facts refresh through the agent (one `RequestBody::Facts` round trip, then the host's one
//! parse, `nos_host::facts::build`) vs running the same tools directly in this process and
//! parsing the same way, over 24 extra loop devices (a mix of blank, GPT-partitioned, ext4 and
//! swap). Two baselines: the probes one by one, as a script would run them, and on the agent's
//! own `PROBE_THREADS`, which leaves only what the agent adds (socket, allowlist, exec-time
//! checks, audit). The baselines first check they probe the same devices and get the same
//! answers as the agent (a baseline that cannot find `blkid` spawns nothing and is no baseline).
//! Measured in one run, the three alternating call by call so all see the same load; the
//! issue's goal is ≤ 1.2× for both.
//!
//! Run as root: `cargo build --release -p nos-agent && cargo bench -p nos-tests --bench facts`
//! (`NOS_BENCH_ITERS` sets the iteration count, default 30).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use nos_machine::fact_commands::{
    BLKID_NOTHING_FOUND, BTRFS_SHOW_ARGV, LSBLK_ARGV, PROBE_THREADS, blkid_probe_argv,
};
use nos_machine::files;
use nos_protocol::{Facts as RawFacts, Probe, RequestBody, ResponseBody};
use nos_tests::{AgentSetup, LoopDevice, TestAgent};

const N_DEVICES: usize = 24;

/// The agent's child environment: with no `PATH` at all, `blkid` (in `/usr/sbin`) would not be
/// found, and a baseline that spawns nothing is no baseline.
const CHILD_ENV: [(&str, &str); 3] = [
    ("LANG", "C"),
    ("LC_ALL", "C"),
    ("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
];

/// Runs one tool; `Err` is its stderr when it exits with a status the agent's rule would not
/// accept. A tool that cannot be spawned stops the bench.
fn run(argv: &[String], ok_codes: &[i32]) -> Result<String, String> {
    let output = Command::new(&argv[0])
        .args(&argv[1..])
        .env_clear()
        .envs(CHILD_ENV)
        .output()
        .unwrap_or_else(|err| panic!("cannot run {}: {err}", argv[0]));
    match output.status.code() {
        Some(code) if code == 0 || ok_codes.contains(&code) => {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        }
        _ => Err(String::from_utf8_lossy(&output.stderr).into_owned()),
    }
}

/// The same commands and files the agent uses, run here, probing the `devices` the agent probes
/// on `n_threads` threads.
fn direct(devices: &[String], n_threads: usize) -> RawFacts {
    let owned = |argv: &[&str]| argv.iter().map(|t| (*t).to_owned()).collect::<Vec<_>>();
    let probe = |device: &String| Probe {
        output: run(&blkid_probe_argv(device), &[BLKID_NOTHING_FOUND]).into(),
        device: device.clone(),
    };
    let chunk_len = devices.len().div_ceil(n_threads).max(1);
    RawFacts {
        lsblk: run(&owned(LSBLK_ARGV), &[]).unwrap(),
        probes: std::thread::scope(|scope| {
            let workers: Vec<_> = devices
                .chunks(chunk_len)
                .map(|chunk| scope.spawn(move || chunk.iter().map(probe).collect::<Vec<_>>()))
                .collect();
            workers
                .into_iter()
                .flat_map(|worker| worker.join().unwrap())
                .collect()
        }),
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
    let mut raw_through_agent = || match client.request(RequestBody::Facts).unwrap() {
        ResponseBody::Facts { facts } => facts,
        other => panic!("{other:?}"),
    };
    // The baseline does the same work: the same devices probed, with the same answers.
    let first = raw_through_agent();
    let probed: Vec<String> = first
        .probes
        .iter()
        .map(|probe| probe.device.clone())
        .collect();
    assert_eq!(direct(&probed, 1).probes, first.probes);
    assert_eq!(direct(&probed, PROBE_THREADS).probes, first.probes);
    let n_loops = nos_host::facts::build(&first, &[], &[])
        .unwrap()
        .block_devices
        .iter()
        .filter(|d| d.device_type == "loop")
        .count();
    let mut through_agent = || nos_host::facts::build(&raw_through_agent(), &[], &[]).unwrap();
    // Alternated one by one, so both see the same machine load.
    let time = |body: &mut dyn FnMut()| {
        let started = Instant::now();
        body();
        started.elapsed()
    };
    let mut agent_samples = Vec::new();
    let mut serial_samples = Vec::new();
    let mut parallel_samples = Vec::new();
    for _ in 0..n_iters * 2 {
        agent_samples.push(time(&mut || {
            through_agent();
        }));
        serial_samples.push(time(&mut || {
            nos_host::facts::build(&direct(&probed, 1), &[], &[]).unwrap();
        }));
        parallel_samples.push(time(&mut || {
            nos_host::facts::build(&direct(&probed, PROBE_THREADS), &[], &[]).unwrap();
        }));
    }
    let agent_ms = median(agent_samples);
    let (serial_ms, parallel_ms) = (median(serial_samples), median(parallel_samples));
    println!(
        "facts refresh, {n_loops} loop devices in lsblk, {} probed, {n_iters}×2 iterations each (median ms)",
        probed.len()
    );
    println!("  tools run directly, probes one by one + parse        {serial_ms:8.2}");
    println!(
        "  tools run directly, probes on {PROBE_THREADS} threads + parse     {parallel_ms:8.2}"
    );
    println!("  through the agent + parse                           {agent_ms:8.2}");
    println!(
        "  ratio to one by one                                 {:8.2}×  (goal ≤ 1.2×)",
        agent_ms / serial_ms
    );
    println!(
        "  ratio to the same {PROBE_THREADS} threads (the agent's own cost)     {:8.2}×  (goal ≤ 1.2×)",
        agent_ms / parallel_ms
    );
    drop(devices);
}
