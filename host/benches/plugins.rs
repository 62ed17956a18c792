//! Plugin host benchmarks, as ratios measured in one run (`cargo bench -p nos-host --bench
//! plugins`; a plain binary that prints a table):
//!
//! 1. a btrfs-pool plan through a fresh component instance vs the same planner logic compiled
//!    natively (target: at most 5x);
//! 2. start-up of a host loading 10 plugins with a warm compile cache vs a cold one
//!    (target: at least 10x faster);
//! 3. resident memory of the process with 10 plugins loaded.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use nos_host::facts::Facts;
use nos_host::plugin::{HostConfig, LoadedPlugin, PluginHost};

include!(concat!(env!("OUT_DIR"), "/plugins.rs"));

const FACTS: &str = include_str!("../tests/data/facts/fixture.json");
const INPUT: &str = r#"{"devices": ["/dev/sdb", "/dev/sdc"], "label": "tank", "mountpoint": "/srv/tank", "encrypt": true}"#;

/// Ten plugins that load (the hostile ones refused at load are not counted).
const TEN: [&str; 10] = [
    BTRFS_POOL,
    BTRFS_DEVICES,
    BTRFS_MAINTENANCE,
    AUTH_DEFAULT,
    HOSTILE_INFINITE_LOOP,
    HOSTILE_MEMORY_HOG,
    HOSTILE_STACK_OVERFLOW,
    HOSTILE_PANIC,
    HOSTILE_FORBIDDEN_ARGV,
    HOSTILE_OUT_OF_SCOPE,
];

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn time_n(n: usize, mut f: impl FnMut()) -> Duration {
    let samples = (0..n)
        .map(|_| {
            let started = Instant::now();
            f();
            started.elapsed()
        })
        .collect();
    median(samples)
}

fn start_host(cache_dir: &Path) -> (PluginHost, Vec<LoadedPlugin>) {
    let host = PluginHost::new(&HostConfig {
        cache_dir: Some(cache_dir.to_path_buf()),
    })
    .expect("host");
    let plugins = TEN
        .iter()
        .map(|dir| host.load(Path::new(dir)).expect("load"))
        .collect();
    (host, plugins)
}

/// (VmRSS, VmHWM) of this process, in KiB.
fn rss_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn main() {
    let (rss_start, _) = rss_kib();

    // 1. Fresh instance per plan vs native.
    let facts: Facts = serde_json::from_str(FACTS).unwrap();
    let native_facts: nos_plugin_sdk::Facts = serde_json::from_str(FACTS).unwrap();
    let host = PluginHost::new(&HostConfig { cache_dir: None }).unwrap();
    let pool = host.load(Path::new(BTRFS_POOL)).unwrap();
    let n_plans = 2_000;
    for _ in 0..100 {
        black_box(pool.plan(&facts, INPUT).unwrap());
    }
    let wasm = time_n(n_plans, || {
        black_box(pool.plan(black_box(&facts), black_box(INPUT)).unwrap());
    });
    let native = time_n(n_plans, || {
        let input: btrfs_pool::Input = serde_json::from_str(black_box(INPUT)).unwrap();
        black_box(btrfs_pool::plan(black_box(&native_facts), &input).unwrap());
    });
    // Where the time goes: a call that does almost nothing (describe), and a plan call the
    // planner rejects at once (all the facts lowered, no planning).
    let describe = time_n(n_plans, || {
        black_box(pool.describe().unwrap());
    });
    let rejected = time_n(n_plans, || {
        black_box(pool.plan(black_box(&facts), "{}").unwrap());
    });
    drop((pool, host));

    // 2. Start-up with 10 plugins, cold cache vs warm cache.
    let n_cold = 3;
    let cold = median(
        (0..n_cold)
            .map(|_| {
                let dir = tempfile::tempdir().unwrap();
                let started = Instant::now();
                black_box(start_host(&dir.path().join("cache")));
                started.elapsed()
            })
            .collect(),
    );
    let warm_dir = tempfile::tempdir().unwrap();
    let warm_cache = warm_dir.path().join("cache");
    drop(start_host(&warm_cache));
    let warm = time_n(10, || {
        black_box(start_host(&warm_cache));
    });

    // 3. Resident memory with 10 plugins loaded (warm cache).
    let (rss_before, _) = rss_kib();
    let (host, plugins) = start_host(&warm_cache);
    let (rss_loaded, _) = rss_kib();
    let small_facts = facts.clone();
    for plugin in &plugins[..3] {
        let _ = black_box(plugin.describe());
    }
    let _ = black_box(plugins[0].plan(&small_facts, INPUT));
    let (rss_called, hwm) = rss_kib();
    drop((plugins, host));

    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    println!("| measurement | value | target |");
    println!("|---|---|---|");
    println!(
        "| btrfs-pool plan, fresh component instance (median of {n_plans}) | {:.1} µs | |",
        wasm.as_secs_f64() * 1e6
    );
    println!(
        "| btrfs-pool plan, same logic native (median of {n_plans}) | {:.1} µs | |",
        native.as_secs_f64() * 1e6
    );
    println!(
        "| **wasm / native** | **{:.1}x** | <= 5x |",
        ratio(wasm, native)
    );
    println!(
        "| fixed cost: fresh instance + describe() (median of {n_plans}) | {:.1} µs | |",
        describe.as_secs_f64() * 1e6
    );
    println!(
        "| fixed cost + facts lowered, input refused at once (median of {n_plans}) | {:.1} µs | |",
        rejected.as_secs_f64() * 1e6
    );
    println!(
        "| start-up with 10 plugins, cold cache (median of {n_cold}) | {:.1} ms | |",
        cold.as_secs_f64() * 1e3
    );
    println!(
        "| start-up with 10 plugins, warm cache (median of 10) | {:.2} ms | |",
        warm.as_secs_f64() * 1e3
    );
    println!(
        "| **cold / warm** | **{:.0}x** | >= 10x |",
        ratio(cold, warm)
    );
    println!("| RSS at bench start | {} KiB | |", rss_start);
    println!(
        "| RSS with 10 plugins loaded (warm) | {} KiB (+{} KiB over {} KiB before) | |",
        rss_loaded,
        rss_loaded.saturating_sub(rss_before),
        rss_before
    );
    println!(
        "| RSS after calls (VmHWM of the whole run) | {} KiB ({} KiB) | |",
        rss_called, hwm
    );
}
