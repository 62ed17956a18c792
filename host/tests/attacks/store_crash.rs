//! The SIGKILL crash test of the state store: a writer child (this test binary re-executed)
//! commits generations of two files as fast as it can and is killed at random points; after
//! every kill each file must parse and hold the last acknowledged generation or the one in
//! flight, with an intact payload: never a mix, never nothing.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nos_host::store::{StateDir, StateFile, StoreError};
use serde::{Deserialize, Serialize};

const CHILD_ENV: &str = "NOS_CRASH_WRITER_DIR";
const FILES: [StateFile; 2] = [
    StateFile::Custom("alpha.json"),
    StateFile::Custom("beta.json"),
];
const N_ROUNDS: usize = 40;

#[derive(Serialize, Deserialize)]
struct Generation {
    generation: u64,
    fill: char,
    len: usize,
    payload: String,
}

fn generation_value(generation: u64) -> Generation {
    let fill = char::from(b'a' + (generation % 26) as u8);
    // Sizes up to 256 KiB so a kill often lands mid-write.
    let len = ((generation * 7919) % (256 * 1024)) as usize;
    Generation {
        generation,
        fill,
        len,
        payload: std::iter::repeat_n(fill, len).collect(),
    }
}

/// The writer child. Run directly (without the env var) it does nothing.
#[test]
fn crash_writer_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let store = StateDir::open(std::path::Path::new(&dir)).expect("child opens the store");
    let mut next: [u64; 2] = [0, 0];
    for (file_idx, file) in FILES.iter().enumerate() {
        if let Some(current) = store.load::<Generation>(*file).expect("child loads") {
            next[file_idx] = current.generation + 1;
        }
    }
    let started = Instant::now();
    let mut round = 0usize;
    while started.elapsed() < Duration::from_secs(20) {
        let file_idx = round % 2;
        let value = generation_value(next[file_idx]);
        store.save(FILES[file_idx], &value).expect("child saves");
        println!("committed {file_idx} {}", next[file_idx]);
        next[file_idx] += 1;
        round += 1;
    }
}

fn random_below(bound: u64) -> u64 {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).unwrap();
    u64::from_le_bytes(bytes) % bound
}

#[test]
fn sigkill_at_random_points_never_loses_or_mixes_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut acknowledged: [Option<u64>; 2] = [None, None];
    let mut n_leftovers_seen = 0;
    for _ in 0..N_ROUNDS {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "store_crash::crash_writer_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut last: [Option<u64>; 2] = [None, None];
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // The first line shares its start with libtest's "test … ..." banner.
                let Some(start) = line.find("committed ") else {
                    continue;
                };
                let words: Vec<&str> = line[start..].split_whitespace().collect();
                if let ["committed", file_idx, generation] = words[..] {
                    let file_idx: usize = file_idx.parse().unwrap();
                    last[file_idx] = Some(generation.parse().unwrap());
                }
            }
            last
        });
        std::thread::sleep(Duration::from_millis(20 + random_below(60)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let last = reader.join().unwrap();
        for file_idx in 0..2 {
            if last[file_idx].is_some() {
                acknowledged[file_idx] = last[file_idx];
            }
        }

        n_leftovers_seen += std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|entry| {
                entry
                    .as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains(".tmp.")
            })
            .count();
        // Opening recovers (removes) leftovers under the lock, as nosd does at start.
        let store = StateDir::open(dir.path()).unwrap();
        for (file_idx, file) in FILES.iter().enumerate() {
            let loaded = store.load::<Generation>(*file);
            let value = match (loaded, acknowledged[file_idx]) {
                (Ok(Some(value)), _) => value,
                (Ok(None), None) => continue,
                (Ok(None), Some(generation)) => {
                    panic!("file {file_idx} vanished after generation {generation}")
                }
                (Err(err), _) => panic!("file {file_idx} does not parse after SIGKILL: {err}"),
            };
            let expected = generation_value(value.generation);
            assert_eq!((value.fill, value.len), (expected.fill, expected.len));
            assert!(
                value.payload.len() == value.len && value.payload.chars().all(|c| c == value.fill)
            );
            if let Some(generation) = acknowledged[file_idx] {
                assert!(
                    value.generation == generation || value.generation == generation + 1,
                    "file {file_idx}: acknowledged {generation}, found {}",
                    value.generation
                );
            }
            acknowledged[file_idx] = Some(value.generation);
        }
        assert!(!std::fs::read_dir(dir.path()).unwrap().any(|entry| {
            entry
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains(".tmp.")
        }));
    }
    assert!(
        acknowledged.iter().all(Option::is_some),
        "the writer never committed"
    );
    eprintln!(
        "crash test: {N_ROUNDS} kills, {n_leftovers_seen} leftover tmp files recovered, generations {acknowledged:?}"
    );
}

#[test]
fn unknown_schema_version_is_refused_and_files_are_0600() {
    let dir = tempfile::tempdir().unwrap();
    let store = StateDir::open(dir.path()).unwrap();
    store
        .save(
            StateFile::Users,
            &serde_json::json!({"users": {}, "devices": {}}),
        )
        .unwrap();
    assert_eq!(store.mode("users.json"), Some(0o600));
    std::fs::write(
        store.path(StateFile::Limits),
        r#"{"schema_version": 2, "data": {}}"#,
    )
    .unwrap();
    let err = store
        .load::<serde_json::Value>(StateFile::Limits)
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::UnknownVersion {
                found: 2,
                known: 1,
                ..
            }
        ),
        "{err}"
    );
    // A second opener of the same directory is refused while the first holds the lock.
    assert!(matches!(
        StateDir::open(dir.path()),
        Err(StoreError::Busy { .. })
    ));
}

#[test]
fn truncated_or_corrupt_state_refuses_to_start_without_leaking_contents() {
    use nos_host::audit::MemoryAudit;
    use nos_host::clock::ManualClock;
    use nos_host::config::Config;
    use nos_host::state::{AppState, StartError, StateDeps};
    use std::sync::Arc;

    let dir = tempfile::tempdir().unwrap();
    let secret_looking = r#"{"schema_version": 1, "data": {"users": {"admin": {"password_hash": "$argon2id$v=19$SECRET"#;
    std::fs::write(dir.path().join("users.json"), secret_looking).unwrap();
    let text = crate::harness::config_toml(dir.path(), "");
    let config = Config::from_toml_str(&text, std::path::Path::new("t.toml")).unwrap();
    let opened = AppState::open(StateDeps {
        config,
        clock: Arc::new(ManualClock::new(crate::harness::T0)),
        audit: Arc::new(MemoryAudit::default()),
        policy: None,
    });
    let Err(err) = opened else {
        panic!("a truncated users.json was accepted");
    };
    assert!(
        matches!(err, StartError::Store(StoreError::Parse { .. })),
        "{err}"
    );
    let message = err.to_string();
    assert!(message.contains("users.json"), "{message}");
    assert!(!message.contains("SECRET"), "{message}");
}
