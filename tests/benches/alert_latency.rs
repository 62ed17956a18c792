//! From a pool disk disappearing to its alert at the webhook (issue 14), measured on the demo:
//! the real agent and nosd, a raid1 pool made and unmounted through plans, nosd restarted with
//! the shortest background refresh (`[pools] refresh_seconds = 10`) and a webhook to a listener
//! on 127.0.0.1 here. Each round detaches one member's loop device, waits for the signed POST
//! raising `pool-degraded` for the pool, then attaches the image again and waits for the
//! alert's clearing. The latency is bounded by the refresh period (nothing tells nosd sooner: no
//! udev), so it is reported beside it. A round starts just after the refresh that cleared the
//! last one, so it measures the worst case: one whole period plus nosd's own work (measured here:
//! 10.00 s median, 10.01 s worst at a 10 s period, i.e. about 10 ms of reading, judging and
//! delivering).
//!
//! Run as root: `cargo bench -p nos-tests --bench alert_latency` (`NOS_BENCH_ROUNDS`, default 5).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nos_tests::admin::{preconditions, setup_and_login};
use nos_tests::demo::Demo;
use serde_json::{Value, json};

const REFRESH_SECONDS: u64 = 10;
const ROUND_TIMEOUT: Duration = Duration::from_secs(120);

/// Serves POSTs on `listener`, sending each body's JSON with when it arrived.
fn listen(listener: TcpListener, bodies: mpsc::Sender<(Instant, Value)>) {
    for stream in listener.incoming().flatten() {
        let arrived = Instant::now();
        let mut reader = BufReader::new(&stream);
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                break;
            }
            if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; length.min(1 << 20)];
        if reader.read_exact(&mut body).is_err() {
            continue;
        }
        let _ = (&stream).write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n");
        if let Ok(value) = serde_json::from_slice(&body) {
            let _ = bodies.send((arrived, value));
        }
    }
}

/// Waits for the webhook to say `change` for `kind` on pool `uuid`; when it arrived.
fn wait_for(
    bodies: &mpsc::Receiver<(Instant, Value)>,
    kind: &str,
    change: &str,
    uuid: &str,
) -> Instant {
    let deadline = Instant::now() + ROUND_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let (arrived, body) = bodies
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no {change} {kind} for {uuid} within {ROUND_TIMEOUT:?}"));
        if body["alert"]["kind"] == kind
            && body["change"] == change
            && body.to_string().contains(uuid)
        {
            return arrived;
        }
    }
}

fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    if !preconditions("alert_latency bench") {
        return;
    }
    let rounds: usize = std::env::var("NOS_BENCH_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(5);
    let mut demo = Demo::start(2);
    let loops = demo.loops();
    let mut admin = setup_and_login(&demo);
    admin.run(
        &demo,
        "btrfs-pool",
        json!({"devices": [&loops[0], &loops[1]], "label": "bench", "mountpoint": "/srv/bench",
               "mount_options": ["noatime"]}),
    );
    let uuid = nos_tests::admin::pool_labelled(&admin.pools(), "bench")["uuid"]
        .as_str()
        .expect("uuid")
        .to_owned();
    admin.run(
        &demo,
        "btrfs-lifecycle",
        json!({"action": "unmount", "pool": "/srv/bench"}),
    );

    let listener = TcpListener::bind("127.0.0.1:0").expect("listener");
    let port = listener.local_addr().expect("addr").port();
    let (sender, bodies) = mpsc::channel();
    std::thread::spawn(move || listen(listener, sender));
    let secret = demo.state_dir().join("webhook.secret");
    std::fs::write(&secret, "bench-secret").expect("secret");
    demo.kill_nosd();
    let config = demo.state_dir().join("nosd.toml");
    let mut text = std::fs::read_to_string(&config).expect("nosd.toml");
    text.push_str(&format!(
        "\n[pools]\nrefresh_seconds = {REFRESH_SECONDS}\n[alerts]\nwebhook_url = \"http://127.0.0.1:{port}/hook\"\nwebhook_secret_file = \"{}\"\n",
        secret.display()
    ));
    std::fs::write(&config, text).expect("nosd.toml");
    demo.restart_nosd();

    let image = demo.state_dir().join("disks/disk2.img");
    let mut latencies = Vec::new();
    for round in 0..rounds {
        let device = nos_tests::demo::loop_of(&image).expect("the member's loop device");
        let detached = Instant::now();
        let status = Command::new("losetup")
            .args(["-d", &device])
            .status()
            .unwrap();
        assert!(status.success(), "losetup -d {device}");
        let arrived = wait_for(&bodies, "pool-degraded", "raised", &uuid);
        let latency = arrived - detached;
        println!("round {round}: {:.2} s", latency.as_secs_f64());
        latencies.push(latency);
        let status = Command::new("losetup")
            .arg("-f")
            .arg(&image)
            .status()
            .unwrap();
        assert!(status.success(), "losetup -f {}", image.display());
        wait_for(&bodies, "pool-degraded", "cleared", &uuid);
    }
    latencies.sort();
    let median = latencies[latencies.len() / 2].as_secs_f64();
    let worst = latencies.last().expect("a round").as_secs_f64();
    println!(
        "device gone → alert at the webhook, {rounds} rounds: median {median:.2} s, worst {worst:.2} s (background refresh every {REFRESH_SECONDS} s)"
    );
}
