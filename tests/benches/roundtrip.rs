//! "run /bin/true" through the agent's socket round trip vs spawning /usr/bin/true directly,
//! measured in one run and printed as a table with the ratio (issue 3 target: ≤ 2×; for
//! reference `sudo -n /bin/true` costs 6.5× on this machine).
//!
//! Run: `cargo build --release --bins && cargo bench -p nos-tests --bench roundtrip`
//! (`NOS_BENCH_ITERS` sets the iteration count, default 2000).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nos_protocol::{RequestBody, ResponseBody};
use nos_tests::{AgentSetup, TEST_ALLOWLIST, TestAgent};

fn measure(n_iters: usize, mut body: impl FnMut()) -> Vec<Duration> {
    for _ in 0..n_iters / 10 {
        body();
    }
    (0..n_iters)
        .map(|_| {
            let started = Instant::now();
            body();
            started.elapsed()
        })
        .collect()
}

fn summary(mut samples: Vec<Duration>) -> (f64, f64, f64) {
    samples.sort();
    let micros = |d: Duration| d.as_secs_f64() * 1e6;
    let mean = samples.iter().map(|d| micros(*d)).sum::<f64>() / samples.len() as f64;
    (
        mean,
        micros(samples[samples.len() / 2]),
        micros(samples[samples.len() * 99 / 100]),
    )
}

fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    let n_iters: usize = std::env::var("NOS_BENCH_ITERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2000);
    let mut agent = TestAgent::start(AgentSetup::new(TEST_ALLOWLIST));
    agent.register();
    let argv = vec!["true".to_owned()];

    let direct = measure(n_iters, || {
        let status = Command::new("/usr/bin/true")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
    });
    let mut client = agent.client();
    let persistent = measure(n_iters, || {
        match client
            .request(RequestBody::Run { argv: argv.clone() })
            .unwrap()
        {
            ResponseBody::Ran { result } => assert!(result.succeeded()),
            other => panic!("{other:?}"),
        }
    });
    let fresh = measure(n_iters, || {
        match agent.request(RequestBody::Run { argv: argv.clone() }) {
            ResponseBody::Ran { result } => assert!(result.succeeded()),
            other => panic!("{other:?}"),
        }
    });

    let (direct_mean, direct_median, direct_p99) = summary(direct);
    // Means on a shared 2-core machine swing with other jobs' load; the median ratio is the
    // steadier figure.
    println!("round trip of `true`, {n_iters} iterations each (µs)");
    println!(
        "{:<42} {:>8} {:>8} {:>8} {:>11} {:>12}",
        "case", "mean", "median", "p99", "mean ratio", "median ratio"
    );
    println!(
        "{:<42} {:>8.1} {:>8.1} {:>8.1} {:>11} {:>12}",
        "spawn /usr/bin/true directly", direct_mean, direct_median, direct_p99, "1.00×", "1.00×"
    );
    for (name, samples) in [
        ("agent: run `true`, one connection", persistent),
        ("agent: run `true`, connect per request", fresh),
    ] {
        let (mean, median, p99) = summary(samples);
        println!(
            "{name:<42} {mean:>8.1} {median:>8.1} {p99:>8.1} {:>10.2}× {:>11.2}×",
            mean / direct_mean,
            median / direct_median
        );
    }
}
