//! Issue 15: slow and greedy HTTP clients against a real nosd process. 1 000 connections
//! trickling header bytes all stayed open (no header-read timeout) until nosd ran out of
//! descriptors; now headers and bodies have a deadline and one address has a connection cap.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::harness::NosdProcess;

const HEADER_TIMEOUT_MS: u64 = 1_000;
const BODY_TIMEOUT_MS: u64 = 1_000;
const MAX_PER_ADDRESS: usize = 40;

fn write_config(dir: &Path) -> PathBuf {
    let path = dir.join("nosd.toml");
    std::fs::write(
        &path,
        format!(
            "[http]\nbind = \"127.0.0.1:0\"\nheader_read_timeout_ms = {HEADER_TIMEOUT_MS}\n\
             body_read_timeout_ms = {BODY_TIMEOUT_MS}\nmax_connections_per_address = {MAX_PER_ADDRESS}\n\
             [state]\ndir = \"{}\"\n[argon2]\nmemory_kib = 19456\niterations = 2\n",
            dir.join("state").display()
        ),
    )
    .unwrap();
    path
}

/// Connects from `source` (any address on the loopback /8) to `addr`.
fn connect_from(source: [u8; 4], addr: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&SocketAddr::from((source, 0)).into()).unwrap();
    socket.connect(&addr.into()).unwrap();
    socket.into()
}

/// The status line of the answer to a plain GET, within 5 s.
fn get_status(mut stream: TcpStream) -> String {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
        .write_all(b"GET /api/v1/me HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or("")
        .to_owned()
}

/// Whether the peer closed `stream` (end of stream or reset) within `within`.
fn closed_within(mut stream: &TcpStream, within: Duration) -> bool {
    stream.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 512];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            // A 408 may come first; the close follows.
            Ok(_) => continue,
            Err(err)
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false;
            }
            Err(_) => return true,
        }
    }
}

#[test]
fn issue_15_slow_clients_are_cut_off_and_others_served() {
    let dir = tempfile::tempdir().unwrap();
    let nosd = NosdProcess::start(&write_config(dir.path()));
    let addr: SocketAddr = nosd.addr.parse().unwrap();

    // Trickling header bytes: more connections than one address may hold.
    let mut slow: Vec<TcpStream> = (0..MAX_PER_ADDRESS + 20)
        .map(|_| connect_from([127, 0, 0, 1], addr))
        .collect();
    for stream in &mut slow {
        let _ = stream.write_all(b"GET /api/v1/me HTTP/1.1\r\n");
    }
    // Those beyond the cap are closed at once.
    let n_refused = slow
        .iter()
        .skip(MAX_PER_ADDRESS)
        .filter(|stream| closed_within(stream, Duration::from_millis(500)))
        .count();
    assert_eq!(
        n_refused, 20,
        "connections beyond the per-address cap stay open"
    );
    // Another address is served at once while they trickle.
    let started = Instant::now();
    let status = get_status(connect_from([127, 0, 0, 2], addr));
    assert!(status.starts_with("HTTP/1.1 401"), "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    // The tricklers keep sending, one byte at a time, and are still cut off by the header deadline.
    let trickle_started = Instant::now();
    while trickle_started.elapsed() < Duration::from_millis(HEADER_TIMEOUT_MS + 500) {
        for stream in slow.iter_mut().take(MAX_PER_ADDRESS) {
            let _ = stream.write_all(b"X");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let n_open = slow
        .iter()
        .take(MAX_PER_ADDRESS)
        .filter(|stream| !closed_within(stream, Duration::from_millis(1_500)))
        .count();
    assert_eq!(
        n_open, 0,
        "slow header senders still open after the header deadline"
    );
    drop(slow);
    // Their slots are free again: the same address is served.
    std::thread::sleep(Duration::from_millis(200));
    let status = get_status(connect_from([127, 0, 0, 1], addr));
    assert!(status.starts_with("HTTP/1.1 401"), "{status:?}");

    // A body announced but never sent in full: the body deadline ends the request.
    let mut stream = connect_from([127, 0, 0, 1], addr);
    stream
        .write_all(
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: localhost\r\nx-nos-csrf: 1\r\n\
              Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"user",
        )
        .unwrap();
    let started = Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer:?}");
    assert!(
        started.elapsed() < Duration::from_millis(BODY_TIMEOUT_MS + 2_000),
        "body deadline not applied: {:?}",
        started.elapsed()
    );
}
