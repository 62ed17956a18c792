//! Auth benchmarks (harness = false): prints a table of ratios measured in one run.
//!
//! 1. Throughput of an authenticated `GET /api/v1/me` through the full nosd stack vs a bare
//!    axum handler on the same machine and client (target ≥ 0.7).
//! 2. Latency of a legitimate login (trusted device, production argon2 parameters) during a
//!    1000 req/s bad-login flood from another loopback address vs idle (target ≤ 2×).
//!
//! All traffic goes to 127.0.0.1 only, bounded in count and time.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nos_host::audit::MemoryAudit;
use nos_host::clock::{Clock, ManualClock, SystemClock};
use nos_host::config::Config;
use nos_host::state::{AppState, StateDeps};
use serde_json::json;

const PASSWORD: &str = "correct horse battery staple 42";
const THROUGHPUT_SECONDS: u64 = 2;
const THROUGHPUT_ROUNDS: usize = 3;
const N_CONNECTIONS: usize = 16;
const FLOOD_PER_SECOND: u64 = 1000;
const N_LOGINS: usize = 8;

struct Cookies(String);

async fn serve(router: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    addr
}

async fn throughput(url: String, cookie: Option<String>) -> f64 {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let n_done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(THROUGHPUT_SECONDS);
    let mut workers = Vec::new();
    for _ in 0..N_CONNECTIONS {
        let (client, url, cookie, n_done) =
            (client.clone(), url.clone(), cookie.clone(), n_done.clone());
        workers.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let mut request = client.get(&url).header("user-agent", "bench");
                if let Some(cookie) = &cookie {
                    request = request.header("cookie", cookie);
                }
                let response = request.send().await.unwrap();
                assert_eq!(response.status(), 200);
                let _ = response.bytes().await.unwrap();
                n_done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for worker in workers {
        worker.await.unwrap();
    }
    n_done.load(Ordering::Relaxed) as f64 / THROUGHPUT_SECONDS as f64
}

fn cookies_of(response: &reqwest::Response, into: &mut Vec<(String, String)>) {
    for value in response.headers().get_all("set-cookie") {
        let text = value.to_str().unwrap();
        let pair = text.split(';').next().unwrap();
        if let Some((name, value)) = pair.split_once('=') {
            into.retain(|(known, _)| known != name);
            into.push((name.to_string(), value.to_string()));
        }
    }
}

async fn login(
    client: &reqwest::Client,
    addr: SocketAddr,
    code: &str,
    cookies: &[(String, String)],
) -> (Duration, reqwest::Response) {
    let cookie = cookies
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("; ");
    let started = Instant::now();
    let response = client
        .post(format!("http://{addr}/api/v1/auth/login"))
        .header("content-type", "application/json")
        .header("x-nos-csrf", "1")
        .header("user-agent", "bench")
        .header("cookie", cookie)
        .body(json!({"username": "admin", "password": PASSWORD, "code": code}).to_string())
        .send()
        .await
        .unwrap();
    (started.elapsed(), response)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    // Production argon2 parameters (46 MiB, t=1). The flood-control burst is widened from 10 to
    // 30 only so the one benchmarking browser may log in 17 times in a few seconds; the
    // flooding address is stopped by its persisted lockout after 5 failures either way.
    let config = Config::from_toml_str(
        &format!(
            "[state]\ndir = \"{}\"\n[limits]\nip_burst = 30\n",
            dir.path().display()
        ),
        Path::new("bench.toml"),
    )
    .unwrap();
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let state = AppState::open(StateDeps {
        config,
        clock: clock.clone(),
        audit: Arc::new(MemoryAudit::default()),
        policy: None,
    })
    .unwrap();
    let addr = serve(nos_host::app(state.clone())).await;
    let client = reqwest::Client::builder().no_proxy().build().unwrap();

    // First-run setup through the API.
    let token = nos_host::auth::setup::ensure_setup_token(&state.auth)
        .await
        .unwrap()
        .unwrap();
    let begin: serde_json::Value = client
        .post(format!("http://{addr}/api/v1/setup/totp"))
        .header("content-type", "application/json")
        .header("x-nos-csrf", "1")
        .body(json!({"token": token, "username": "admin"}).to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = nos_host::auth::totp::decode_secret(begin["secret"].as_str().unwrap()).unwrap();
    let code = nos_host::auth::totp::code_at(&secret, clock.now());
    let created = client
        .post(format!("http://{addr}/api/v1/setup/admin"))
        .header("content-type", "application/json")
        .header("x-nos-csrf", "1")
        .body(
            json!({"token": token, "username": "admin", "password": PASSWORD, "code": code})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);

    // Log in once: session cookies plus the trusted-device cookie.
    let mut cookies = Vec::new();
    clock.advance(30);
    let (_, response) = login(
        &client,
        addr,
        &nos_host::auth::totp::code_at(&secret, clock.now()),
        &cookies,
    )
    .await;
    assert_eq!(response.status(), 200);
    cookies_of(&response, &mut cookies);
    let session_cookie = Cookies(
        cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; "),
    );

    // 1. Throughput.
    let bare = serve(axum::Router::new().route(
        "/bare",
        axum::routing::get(|| async { axum::Json(json!({"username": "admin"})) }),
    ))
    .await;
    // Alternate the two so background load on a shared machine hits both alike.
    let (mut bare_rps, mut me_rps) = (0.0, 0.0);
    for _ in 0..THROUGHPUT_ROUNDS {
        bare_rps +=
            throughput(format!("http://{bare}/bare"), None).await / THROUGHPUT_ROUNDS as f64;
        me_rps += throughput(
            format!("http://{addr}/api/v1/me"),
            Some(session_cookie.0.clone()),
        )
        .await
            / THROUGHPUT_ROUNDS as f64;
    }

    // 2. Login latency, idle.
    let device_only: Vec<(String, String)> = cookies
        .iter()
        .filter(|(name, _)| name == "__Host-nos_dev")
        .cloned()
        .collect();
    let mut idle = Vec::new();
    for _ in 0..N_LOGINS {
        clock.advance(30);
        let (elapsed, response) = login(
            &client,
            addr,
            &nos_host::auth::totp::code_at(&secret, clock.now()),
            &device_only,
        )
        .await;
        assert_eq!(response.status(), 200);
        idle.push(elapsed);
    }

    // 2b. Login latency under a 1000 req/s bad-login flood from 127.0.0.2 against "admin".
    let flooder = reqwest::Client::builder()
        .no_proxy()
        .local_address(IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    let flood_stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let n_flood_sent = Arc::new(AtomicU64::new(0));
    let n_flood_429 = Arc::new(AtomicU64::new(0));
    let flood = {
        let (flood_stop, n_flood_sent, n_flood_429) = (
            flood_stop.clone(),
            n_flood_sent.clone(),
            n_flood_429.clone(),
        );
        tokio::spawn(async move {
            let mut ticker =
                tokio::time::interval(Duration::from_micros(1_000_000 / FLOOD_PER_SECOND));
            let started = Instant::now();
            while !flood_stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(30)
            {
                ticker.tick().await;
                let (flooder, n_flood_sent, n_flood_429) =
                    (flooder.clone(), n_flood_sent.clone(), n_flood_429.clone());
                tokio::spawn(async move {
                    let response = flooder
                        .post(format!("http://{addr}/api/v1/auth/login"))
                        .header("content-type", "application/json")
                        .header("x-nos-csrf", "1")
                        .body(json!({"username": "admin", "password": "a wrong guess 123", "code": "000000"}).to_string())
                        .send()
                        .await;
                    n_flood_sent.fetch_add(1, Ordering::Relaxed);
                    if response.is_ok_and(|response| response.status() == 429) {
                        n_flood_429.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let flood_started = Instant::now();
    let mut flooded = Vec::new();
    for _ in 0..N_LOGINS {
        clock.advance(30);
        let (elapsed, response) = login(
            &client,
            addr,
            &nos_host::auth::totp::code_at(&secret, clock.now()),
            &device_only,
        )
        .await;
        assert_eq!(response.status(), 200, "owner locked out by the flood");
        flooded.push(elapsed);
    }
    let flood_seconds = flood_started.elapsed().as_secs_f64() + 0.5;
    flood_stop.store(true, Ordering::Relaxed);
    flood.await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let ratio_me = me_rps / bare_rps;
    let (idle_median, flood_median) = (median(idle), median(flooded));
    let ratio_login = flood_median.as_secs_f64() / idle_median.as_secs_f64();
    let sent = n_flood_sent.load(Ordering::Relaxed);
    println!("| benchmark | measured | target | ok |");
    println!("|---|---|---|---|");
    println!("| bare axum handler | {bare_rps:.0} req/s | | |");
    println!("| GET /api/v1/me (authenticated) | {me_rps:.0} req/s | | |");
    println!(
        "| ratio me / bare | {ratio_me:.2} | >= 0.70 | {} |",
        if ratio_me >= 0.7 { "yes" } else { "NO" }
    );
    println!(
        "| login median, idle (argon2 46 MiB t=1) | {:.1} ms | | |",
        idle_median.as_secs_f64() * 1000.0
    );
    println!(
        "| login median during flood ({sent} bad logins in {flood_seconds:.1} s, {} answered 429) | {:.1} ms | | |",
        n_flood_429.load(Ordering::Relaxed),
        flood_median.as_secs_f64() * 1000.0
    );
    println!(
        "| ratio flood / idle | {ratio_login:.2} | <= 2.00 | {} |",
        if ratio_login <= 2.0 { "yes" } else { "NO" }
    );
}
