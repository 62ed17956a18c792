//! Plugin host benchmarks, as ratios measured in one run (`cargo bench -p nos-host --bench
//! plugins`; a plain binary that prints a table):
//!
//! 1. a btrfs-pool plan through a fresh component instance vs the same planner logic compiled
//!    natively (target: at most 5x). Both sides take the same inputs, the host's `Facts` and the
//!    input JSON string, and produce the same host `Plan` (checked before timing): the native
//!    side converts the host facts into the SDK's types, parses the input, plans, and converts
//!    the plan back, which is the work the component path does minus the sandbox (it skips
//!    `plan::types::validate`, which only untrusted output needs). The planning logic alone
//!    (facts already in SDK types) is printed too, as is where the component's time goes;
//! 2. start-up of a host loading 10 plugins with a warm compile cache vs a cold one
//!    (target: at least 10x faster);
//! 3. resident memory of the process with 10 plugins loaded.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use nos_host::facts::{DeviceState, Facts};
use nos_host::plan::types as host;
use nos_host::plugin::{AnyPlugin, HostConfig, PluginHost};
use nos_plugin_sdk as sdk;

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

/// The host's facts in the SDK's types: what a native planner needs before it can run.
fn sdk_facts(facts: &Facts) -> sdk::Facts {
    sdk::Facts {
        block_devices: facts
            .block_devices
            .iter()
            .map(|d| sdk::BlockDevice {
                path: d.path.clone(),
                kname: d.kname.clone(),
                size_bytes: d.size_bytes,
                rotational: d.rotational,
                device_type: d.device_type.clone(),
                fstype: d.fstype.clone(),
                label: d.label.clone(),
                uuid: d.uuid.clone(),
                mountpoints: d.mountpoints.clone(),
                holders: d.holders.clone(),
                by_id: d.by_id.clone(),
                parent: d.parent.clone(),
                model: d.model.clone(),
                serial: d.serial.clone(),
                wwn: d.wwn.clone(),
                partition_table: d.partition_table.clone(),
                usage: d.usage.clone(),
                state: match d.state {
                    DeviceState::Blank => sdk::DeviceState::Blank,
                    DeviceState::HoldsData => sdk::DeviceState::HoldsData,
                    DeviceState::InUse => sdk::DeviceState::InUse,
                },
                state_reasons: d.reasons.clone(),
            })
            .collect(),
        filesystems: facts
            .filesystems
            .iter()
            .map(|fs| sdk::BtrfsFilesystem {
                uuid: fs.uuid.clone(),
                label: fs.label.clone(),
                mountpoint: fs.mountpoint.clone(),
                devices: fs
                    .devices
                    .iter()
                    .map(|d| sdk::BtrfsDevice {
                        devid: d.devid,
                        path: d.path.clone(),
                        size_bytes: d.size_bytes,
                    })
                    .collect(),
                data_profile: fs.data_profile.clone(),
                metadata_profile: fs.metadata_profile.clone(),
                size_bytes: fs.size_bytes,
                used_bytes: fs.used_bytes,
                // The bench's planners read no subvolumes.
                subvolumes: None,
            })
            .collect(),
        fresh_uuids: facts.fresh_uuids.clone(),
        now_unix_seconds: facts.now_unix_seconds,
    }
}

/// The SDK's plan in the host's types (moved, as the host moves the component's result).
fn host_plan(plan: sdk::Plan) -> host::Plan {
    let managed = |m: sdk::ManagedRequest| match m {
        sdk::ManagedRequest::MountDir(path) => host::ManagedRequest::MountDir(path),
        sdk::ManagedRequest::KeyFile(path) => host::ManagedRequest::KeyFile(path),
        sdk::ManagedRequest::FstabEntry(e) => host::ManagedRequest::FstabEntry(host::FstabEntry {
            uuid: e.uuid,
            target: e.target,
            options: e.options,
        }),
        sdk::ManagedRequest::CrypttabEntry(e) => {
            host::ManagedRequest::CrypttabEntry(host::CrypttabEntry {
                name: e.name,
                device_uuid: e.device_uuid,
                key_file: e.key_file,
            })
        }
    };
    let request = |r: sdk::Request| match r {
        sdk::Request::Argv(argv) => host::Request::Argv(argv),
        sdk::Request::Ensure(m) => host::Request::Ensure(managed(m)),
        sdk::Request::Remove(m) => host::Request::Remove(managed(m)),
    };
    host::Plan {
        steps: plan
            .steps
            .into_iter()
            .map(|step| host::Step {
                id: step.id,
                title: step.title,
                request: request(step.request),
                effect: match step.effect {
                    sdk::Effect::Read => host::Effect::Read,
                    sdk::Effect::State => host::Effect::State,
                    sdk::Effect::Destructive => host::Effect::Destructive,
                },
                rollback: step.rollback.map(request),
                confirmation: step.confirmation,
            })
            .collect(),
        warnings: plan.warnings,
    }
}

/// The same planner, natively, from the same inputs to the same output as the component path.
fn native_plan(facts: &Facts, input: &str) -> host::Plan {
    let facts = sdk_facts(facts);
    let plan = <btrfs_pool::PoolPlanner as sdk::Planner>::plan(&facts, input).unwrap();
    host_plan(plan)
}

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

fn start_host(cache_dir: &Path) -> (PluginHost, Vec<AnyPlugin>) {
    let host = PluginHost::new(&HostConfig::new(Some(cache_dir.to_path_buf()))).expect("host");
    let plugins = TEN
        .iter()
        .map(|dir| host.load(Path::new(dir)).expect("load"))
        .collect();
    (host, plugins)
}

/// (VmRSS, VmHWM, VmSize) of this process, in KiB. VmSize counts the address space the instance
/// pool reserves (no memory behind it until a call touches a page).
fn rss_kib() -> (u64, u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"), field("VmSize:"))
}

fn main() {
    let (rss_start, _, _) = rss_kib();

    // 1. Fresh instance per plan vs native.
    let facts: Facts = serde_json::from_str(FACTS).unwrap();
    let native_facts = sdk_facts(&facts);
    let host = PluginHost::new(&HostConfig::new(None)).unwrap();
    let pool = host.load_planner(Path::new(BTRFS_POOL)).unwrap();
    let from_wasm = pool.plan(&facts, INPUT).unwrap().answer.unwrap();
    assert_eq!(
        from_wasm,
        native_plan(&facts, INPUT),
        "both sides make the same plan"
    );
    assert!(!from_wasm.steps.is_empty());
    let n_plans = 2_000;
    for _ in 0..100 {
        black_box(pool.plan(&facts, INPUT).unwrap());
        black_box(native_plan(&facts, INPUT));
    }
    let wasm = time_n(n_plans, || {
        black_box(pool.plan(black_box(&facts), black_box(INPUT)).unwrap());
    });
    let native = time_n(n_plans, || {
        black_box(native_plan(black_box(&facts), black_box(INPUT)));
    });
    let native_logic = time_n(n_plans, || {
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
    let (rss_before, _, _) = rss_kib();
    let (host, mut plugins) = start_host(&warm_cache);
    let (rss_loaded, _, vm_size) = rss_kib();
    let small_facts = facts.clone();
    for plugin in &plugins[..3] {
        let _ = black_box(plugin.describe());
    }
    let pool = plugins
        .remove(0)
        .into_planner()
        .expect("TEN starts with a planner");
    let _ = black_box(pool.plan(&small_facts, INPUT));
    let (rss_called, hwm, _) = rss_kib();
    drop((pool, plugins, host));

    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    println!("| measurement | value | target |");
    println!("|---|---|---|");
    println!(
        "| btrfs-pool plan, fresh component instance (median of {n_plans}) | {:.1} µs | |",
        wasm.as_secs_f64() * 1e6
    );
    println!(
        "| btrfs-pool plan, same planner native: host facts + input JSON -> host plan (median of {n_plans}) | {:.1} µs | |",
        native.as_secs_f64() * 1e6
    );
    println!(
        "| **wasm / native** | **{:.1}x** | <= 5x |",
        ratio(wasm, native)
    );
    println!(
        "| planning logic alone, native: input parsed, facts already SDK types (median of {n_plans}) | {:.1} µs | |",
        native_logic.as_secs_f64() * 1e6
    );
    println!(
        "| wasm / native planning logic alone | {:.1}x | |",
        ratio(wasm, native_logic)
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
        "| address space reserved with 10 plugins loaded (VmSize; mostly the instance pool) | {:.1} GiB | |",
        vm_size as f64 / (1 << 20) as f64
    );
    println!(
        "| RSS after calls (VmHWM of the whole run) | {} KiB ({} KiB) | |",
        rss_called, hwm
    );
}
