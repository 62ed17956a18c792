//! The agent's socket against a hostile or confused caller: real processes, real sockets.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::{Duration, Instant};

use nos_protocol::{
    ErrorCode, JobState, MAX_REQUEST_FRAME, Outcome, PROTOCOL_VERSION, RejectStage, Request,
    RequestBody, Response, ResponseBody, decode, encode,
};
use nos_tests::{AgentSetup, TEST_ALLOWLIST, TestAgent, binary};

fn agent(extra_args: &[&str]) -> TestAgent {
    let mut agent = TestAgent::start(AgentSetup {
        extra_args,
        ..AgentSetup::new(TEST_ALLOWLIST)
    });
    agent.register();
    agent
}

fn argv(tokens: &[&str]) -> Vec<String> {
    tokens.iter().map(|token| (*token).to_owned()).collect()
}

fn run(agent: &TestAgent, tokens: &[&str]) -> ResponseBody {
    agent.request(RequestBody::Run { argv: argv(tokens) })
}

fn error_code(response: &ResponseBody) -> Option<ErrorCode> {
    match response {
        ResponseBody::Error { code, .. } => Some(*code),
        _ => None,
    }
}

/// Reads one response frame from a raw stream (or None when the agent closed it).
fn read_response(stream: &mut UnixStream) -> Option<Response> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut header = [0u8; 4];
    stream.read_exact(&mut header).ok()?;
    let mut payload = vec![0u8; u32::from_be_bytes(header) as usize];
    stream.read_exact(&mut payload).ok()?;
    Some(decode(&payload).unwrap())
}

fn closed(stream: &mut UnixStream) -> bool {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut byte = [0u8; 1];
    matches!(stream.read(&mut byte), Ok(0) | Err(_))
}

#[test]
fn run_one_step_through_the_socket() {
    if !nos_tests::root_or_skip("run_one_step_through_the_socket") {
        return;
    }
    let agent = agent(&[]);
    match run(&agent, &["true"]) {
        ResponseBody::Ran { result } => {
            assert_eq!(result.outcome, Outcome::Ok);
            assert_eq!(result.argv, ["/usr/bin/true"]);
        }
        other => panic!("{other:?}\n{}", agent.explain()),
    }
    match run(&agent, &["echo", "hello"]) {
        ResponseBody::Ran { result } => assert_eq!(result.stdout.text, "hello\n"),
        other => panic!("{other:?}"),
    }
    let audit = agent.audit_log();
    assert!(
        audit
            .lines()
            .any(|line| line.contains("\"rule_id\":\"test.echo\"")
                && line.contains("\"verdict\":\"allowed\""))
    );
    assert!(
        !audit.contains(&agent.bootstrap_token()),
        "bootstrap token leaked into the audit log"
    );
}

#[test]
fn rejections_name_the_token() {
    if !nos_tests::root_or_skip("rejections_name_the_token") {
        return;
    }
    let agent = agent(&[]);
    for (tokens, token_idx) in [
        (&["rm", "-rf", "/"][..], Some(0)),
        (&["echo", "-n"][..], Some(1)),
        (&["echo", "a", "b"][..], None),
        (&["sleep", "61"][..], None),
        (&[][..], None),
    ] {
        match run(&agent, tokens) {
            ResponseBody::Rejected { rejection } => {
                assert_eq!(rejection.stage, RejectStage::Allowlist);
                if token_idx.is_some() {
                    assert_eq!(
                        rejection.token_idx, token_idx,
                        "{tokens:?}: {}",
                        rejection.reason
                    );
                }
            }
            other => panic!("{tokens:?}: {other:?}"),
        }
    }
}

#[test]
fn steps_are_all_validated_before_any_runs() {
    if !nos_tests::root_or_skip("steps_are_all_validated_before_any_runs") {
        return;
    }
    let agent = agent(&[]);
    let steps = vec![
        argv(&["echo", "first"]),
        argv(&["sleep", "0"]),
        argv(&["rm", "-rf", "/"]),
    ];
    match agent.request(RequestBody::RunSteps { steps }) {
        ResponseBody::Rejected { rejection } => assert_eq!(rejection.step_idx, Some(2)),
        other => panic!("{other:?}"),
    }
    assert!(
        !agent.audit_log().contains("\"verdict\":\"allowed\""),
        "a step ran\n{}",
        agent.audit_log()
    );
    let steps = vec![argv(&["echo", "first"]), argv(&["true"])];
    match agent.request(RequestBody::RunSteps { steps }) {
        ResponseBody::Steps {
            results,
            completed: true,
            rejection: None,
        } => assert_eq!(results.len(), 2),
        other => panic!("{other:?}"),
    }
    let too_many = vec![argv(&["true"]); 33];
    assert_eq!(
        error_code(&agent.request(RequestBody::RunSteps { steps: too_many })),
        Some(ErrorCode::TooManySteps)
    );
}

#[test]
fn rule_timeout_kills() {
    if !nos_tests::root_or_skip("rule_timeout_kills") {
        return;
    }
    let agent = agent(&[]);
    let started = Instant::now();
    match run(&agent, &["sleep", "30"]) {
        ResponseBody::Ran { result } => assert_eq!(result.outcome, Outcome::TimedOut),
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn jobs_poll_and_cancel() {
    if !nos_tests::root_or_skip("jobs_poll_and_cancel") {
        return;
    }
    let agent = agent(&[]);
    let job = match run(&agent, &["sleep", "30", "0"]) {
        ResponseBody::JobStarted { job, rule_id } => {
            assert_eq!(rule_id, "test.sleep_job");
            job
        }
        other => panic!("{other:?}\n{}", agent.explain()),
    };
    assert!(matches!(
        agent.request(RequestBody::JobStatus { job }),
        ResponseBody::Job {
            state: JobState::Running { .. },
            ..
        }
    ));
    assert!(matches!(
        agent.request(RequestBody::Cancel { job }),
        ResponseBody::Cancelling { .. }
    ));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match agent.request(RequestBody::JobStatus { job }) {
            ResponseBody::Job {
                state: JobState::Finished { result },
                ..
            } => {
                assert_eq!(result.outcome, Outcome::Cancelled);
                break;
            }
            _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            other => panic!("job never finished: {other:?}"),
        }
    }
    assert_eq!(
        error_code(&agent.request(RequestBody::JobStatus { job: 999 })),
        Some(ErrorCode::UnknownJob)
    );
    assert_eq!(
        error_code(&agent.request(RequestBody::Cancel { job: 999 })),
        Some(ErrorCode::UnknownJob)
    );
}

#[test]
fn tokens_wrong_old_missing_and_rotation() {
    if !nos_tests::root_or_skip("tokens_wrong_old_missing_and_rotation") {
        return;
    }
    let mut agent = agent(&[]);
    let first = agent.token.clone().unwrap();
    let socket = agent.socket.clone();
    let with_token = |token: Option<&str>| {
        let mut client =
            nos_host::agent_client::AgentClient::connect(&socket, Some(Duration::from_secs(10)))
                .unwrap();
        if let Some(token) = token {
            client.set_token(token.to_owned());
        }
        client
            .request(RequestBody::Run {
                argv: argv(&["true"]),
            })
            .unwrap()
    };
    assert!(matches!(with_token(Some(&first)), ResponseBody::Ran { .. }));
    assert_eq!(
        error_code(&with_token(None)),
        Some(ErrorCode::Unauthenticated)
    );
    let (id, _) = first.split_once('.').unwrap();
    assert_eq!(
        error_code(&with_token(Some(&format!("{id}.{}", "0".repeat(64))))),
        Some(ErrorCode::Unauthenticated)
    );
    assert_eq!(
        error_code(&with_token(Some("x".repeat(10_000).as_str()))),
        Some(ErrorCode::Unauthenticated)
    );
    // Rotation: the old token stops working at once.
    let rotated = match agent.request(RequestBody::Rotate) {
        ResponseBody::Token { token, .. } => token,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        error_code(&with_token(Some(&first))),
        Some(ErrorCode::Unauthenticated)
    );
    assert!(matches!(
        with_token(Some(&rotated)),
        ResponseBody::Ran { .. }
    ));
    // Re-registration revokes the rotated token too.
    let second = agent.register();
    assert_eq!(
        error_code(&with_token(Some(&rotated))),
        Some(ErrorCode::Unauthenticated)
    );
    assert!(matches!(
        with_token(Some(&second)),
        ResponseBody::Ran { .. }
    ));
    // A wrong bootstrap token is refused.
    let mut client = nos_host::agent_client::AgentClient::connect(&agent.socket, None).unwrap();
    let response = client
        .request(RequestBody::Register {
            bootstrap_token: "guess".into(),
        })
        .unwrap();
    assert_eq!(error_code(&response), Some(ErrorCode::RegistrationRefused));
    assert!(agent.audit_log().contains("wrong bootstrap token"));
    assert!(agent.audit_log().contains("unknown or revoked token"));
}

#[test]
fn registration_disabled() {
    if !nos_tests::root_or_skip("registration_disabled") {
        return;
    }
    let agent = TestAgent::start(AgentSetup {
        extra_args: &["--no-registration"],
        ..AgentSetup::new(TEST_ALLOWLIST)
    });
    let mut client = nos_host::agent_client::AgentClient::connect(&agent.socket, None).unwrap();
    let response = client
        .request(RequestBody::Register {
            bootstrap_token: agent.bootstrap_token(),
        })
        .unwrap();
    assert_eq!(error_code(&response), Some(ErrorCode::RegistrationRefused));
    let metadata = std::fs::metadata(agent.dir.path().join("etc/agent-bootstrap-token")).unwrap();
    assert_eq!(metadata.permissions().mode() & 0o777, 0o600);
    let socket_mode = std::fs::metadata(&agent.socket)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(socket_mode, 0o660);
}

#[test]
fn wrong_uid_is_refused_before_parsing() {
    if !nos_tests::is_root() {
        return nos_tests::skip(
            "wrong_uid_is_refused_before_parsing",
            "needs root to switch uid",
        );
    }
    let agent = agent(&[]);
    // Simulate a world-connectable socket (NithronOS's ISO unit used 0666): the kernel-reported
    // uid must still be refused.
    std::fs::set_permissions(&agent.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let token_file = agent.dir.path().join("token");
    std::fs::write(&token_file, agent.token.as_ref().unwrap()).unwrap();
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let output = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(binary("nosctl"))
        .args(["agent", "run", "--socket"])
        .arg(&agent.socket)
        .arg("--token-file")
        .arg(&token_file)
        .args(["--", "true"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("PeerRefused"),
        "{stderr}\n{}",
        agent.explain()
    );
    assert!(
        agent
            .audit_log()
            .lines()
            .any(|line| line.contains("\"uid\":65534") && line.contains("\"verdict\":\"refused\""))
    );
    assert!(!agent.audit_log().contains("test.true"));
}

#[test]
fn nosctl_drives_the_agent() {
    if !nos_tests::root_or_skip("nosctl_drives_the_agent") {
        return;
    }
    let agent = agent(&[]);
    let token_file = agent.dir.path().join("token");
    std::fs::write(&token_file, agent.token.as_ref().unwrap()).unwrap();
    let nosctl = |args: &[&str]| {
        Command::new(binary("nosctl"))
            .arg("agent")
            .args(args)
            .output()
            .unwrap()
    };
    let socket = agent.socket.to_str().unwrap();
    let token = token_file.to_str().unwrap();
    let output = nosctl(&[
        "run",
        "--socket",
        socket,
        "--token-file",
        token,
        "--",
        "echo",
        "hi",
    ]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "hi\n");
    let output = nosctl(&[
        "run",
        "--socket",
        socket,
        "--token-file",
        token,
        "--",
        "echo",
        "-x",
    ]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("rejected"));
    let output = nosctl(&["rotate", "--socket", socket, "--token-file", token]);
    assert!(output.status.success(), "{output:?}");
    assert_ne!(
        std::fs::read_to_string(&token_file).unwrap().trim(),
        agent.token.as_ref().unwrap()
    );
    let output = nosctl(&["facts", "--socket", socket, "--token-file", token]);
    assert!(output.status.success(), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("\"lsblk\""),
        "{output:?}"
    );
    let steps = agent.dir.path().join("steps.json");
    std::fs::write(&steps, r#"[["echo", "one"], ["true"]]"#).unwrap();
    let output = nosctl(&[
        "steps",
        "--socket",
        socket,
        "--token-file",
        token,
        steps.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "one\n");
    let pool = agent.dir.path().join("mnt/pool");
    let output = nosctl(&[
        "managed",
        "--socket",
        socket,
        "--token-file",
        token,
        "mount-dir",
        pool.to_str().unwrap(),
    ]);
    assert!(output.status.success() && pool.is_dir(), "{output:?}");
    let output = nosctl(&[
        "managed",
        "--socket",
        socket,
        "--token-file",
        token,
        "--remove",
        "mount-dir",
        pool.to_str().unwrap(),
    ]);
    assert!(output.status.success() && !pool.exists(), "{output:?}");
    let out = agent.dir.path().join("registered");
    let bootstrap = agent.dir.path().join("etc/agent-bootstrap-token");
    let output = nosctl(&[
        "register",
        "--socket",
        socket,
        "--bootstrap-file",
        bootstrap.to_str().unwrap(),
        "--token-out",
        out.to_str().unwrap(),
        "--owner",
        "nobody",
    ]);
    assert!(output.status.success(), "{output:?}");
    let metadata = std::fs::metadata(&out).unwrap();
    assert_eq!(metadata.permissions().mode() & 0o777, 0o600);
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&metadata), 65534);
    // Rotation keeps the owner.
    let output = nosctl(&[
        "rotate",
        "--socket",
        socket,
        "--token-file",
        out.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&out).unwrap()),
        65534
    );
}

#[test]
fn oversized_and_garbage_frames() {
    if !nos_tests::root_or_skip("oversized_and_garbage_frames") {
        return;
    }
    let agent = agent(&[]);
    // A header announcing 4 GiB: refused at once, payload never read.
    let mut stream = UnixStream::connect(&agent.socket).unwrap();
    stream.write_all(&u32::MAX.to_be_bytes()).unwrap();
    let response = read_response(&mut stream).expect("an error frame");
    assert!(matches!(
        response.body,
        ResponseBody::Error {
            code: ErrorCode::BadFrame,
            ..
        }
    ));
    assert!(closed(&mut stream));
    // One byte over the limit.
    let mut stream = UnixStream::connect(&agent.socket).unwrap();
    stream
        .write_all(&((MAX_REQUEST_FRAME + 1) as u32).to_be_bytes())
        .unwrap();
    assert!(matches!(
        read_response(&mut stream).unwrap().body,
        ResponseBody::Error {
            code: ErrorCode::BadFrame,
            ..
        }
    ));
    // Plain HTTP is garbage to the agent ("GET " as a length is too large).
    let mut stream = UnixStream::connect(&agent.socket).unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert!(matches!(
        read_response(&mut stream).unwrap().body,
        ResponseBody::Error {
            code: ErrorCode::BadFrame,
            ..
        }
    ));
    // A well-framed but malformed message: typed error, and the connection stays usable.
    let mut stream = UnixStream::connect(&agent.socket).unwrap();
    for payload in [
        &b"not json"[..],
        br#"{"version":1,"id":1,"body":{"type":"run_string","cmd":"id"}}"#,
        &[0xff, 0xfe][..],
    ] {
        let mut frame = (payload.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(payload);
        stream.write_all(&frame).unwrap();
        assert!(matches!(
            read_response(&mut stream).unwrap().body,
            ResponseBody::Error {
                code: ErrorCode::BadFrame,
                ..
            }
        ));
    }
    let request = Request {
        version: PROTOCOL_VERSION,
        id: 42,
        token: agent.token.clone(),
        body: RequestBody::Run {
            argv: argv(&["true"]),
        },
    };
    stream
        .write_all(&encode(&request, MAX_REQUEST_FRAME).unwrap())
        .unwrap();
    let response = read_response(&mut stream).unwrap();
    assert_eq!(response.id, 42);
    assert!(matches!(response.body, ResponseBody::Ran { .. }));
    // Another protocol version: typed error.
    let request = Request {
        version: 99,
        ..request
    };
    stream
        .write_all(&encode(&request, MAX_REQUEST_FRAME).unwrap())
        .unwrap();
    assert!(matches!(
        read_response(&mut stream).unwrap().body,
        ResponseBody::Error {
            code: ErrorCode::UnsupportedVersion,
            ..
        }
    ));
    // The agent is still healthy.
    assert!(matches!(run(&agent, &["true"]), ResponseBody::Ran { .. }));
}

#[test]
fn slowloris_is_dropped_and_others_are_served() {
    if !nos_tests::root_or_skip("slowloris_is_dropped_and_others_are_served") {
        return;
    }
    let agent = agent(&["--frame-timeout-ms", "500"]);
    let mut slow = UnixStream::connect(&agent.socket).unwrap();
    slow.write_all(&[0, 0]).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    // Meanwhile another client is served.
    assert!(matches!(run(&agent, &["true"]), ResponseBody::Ran { .. }));
    let _ = slow.write_all(&[0]);
    let started = Instant::now();
    assert!(closed(&mut slow), "slow sender not dropped");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn connection_limit() {
    if !nos_tests::root_or_skip("connection_limit") {
        return;
    }
    let agent = agent(&["--max-connections", "2"]);
    // Both connections are really being served (a request each) and stay open.
    // Earlier connections (the harness's) may linger briefly while a sibling test's forked child
    // still holds their fd until its exec, so retry until two connections are served.
    let served = || {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut client = agent.client();
            match client.request(RequestBody::Run {
                argv: argv(&["true"]),
            }) {
                Ok(ResponseBody::Ran { .. }) => return client,
                _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
                other => panic!("{other:?}"),
            }
        }
    };
    let first = served();
    let second = served();
    let mut third = UnixStream::connect(&agent.socket).unwrap();
    let response =
        read_response(&mut third).unwrap_or_else(|| panic!("no busy error\n{}", agent.explain()));
    assert!(matches!(
        response.body,
        ResponseBody::Error {
            code: ErrorCode::Busy,
            ..
        }
    ));
    drop((first, second));
    std::thread::sleep(Duration::from_millis(200));
    assert!(matches!(run(&agent, &["true"]), ResponseBody::Ran { .. }));
}

/// Issue 15: idle connections (and ones trickling a frame) from an allowed peer held every slot
/// until the frame timeout, so nosd got `Busy`. Now they are reclaimed, oldest first, and a
/// connection carrying the token is served at once.
#[test]
fn issue_15_idle_connections_do_not_hold_every_slot() {
    if !nos_tests::root_or_skip("issue_15_idle_connections_do_not_hold_every_slot") {
        return;
    }
    // The default limit (16 slots) and the default 10 s frame timeout.
    let agent = agent(&[]);
    let mut idle: Vec<UnixStream> = (0..20)
        .map(|_| UnixStream::connect(&agent.socket).unwrap())
        .collect();
    for stream in idle.iter_mut().step_by(2) {
        // Half of them start a frame and never finish it.
        stream.write_all(&[0, 0]).unwrap();
    }
    std::thread::sleep(Duration::from_millis(200));
    for round in 0..3 {
        let started = Instant::now();
        let response = run(&agent, &["true"]);
        assert!(
            matches!(response, ResponseBody::Ran { .. }),
            "round {round}: {response:?}\n{}",
            agent.explain()
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "round {round}: served after {:?}",
            started.elapsed()
        );
        // The attacker reconnects to fill the freed slots again.
        idle.extend((0..8).map(|_| UnixStream::connect(&agent.socket).unwrap()));
    }
    // The oldest idle connection was reclaimed (closed), long before the frame timeout.
    let started = Instant::now();
    assert!(closed(&mut idle[0]), "oldest idle connection still open");
    assert!(started.elapsed() < Duration::from_secs(5));
    // A connection holding the token keeps its slot against a flood of new idle ones.
    let mut served = agent.client();
    assert!(matches!(
        served.request(RequestBody::Run {
            argv: argv(&["true"])
        }),
        Ok(ResponseBody::Ran { .. })
    ));
    idle.extend((0..20).map(|_| UnixStream::connect(&agent.socket).unwrap()));
    assert!(matches!(
        served.request(RequestBody::Run {
            argv: argv(&["true"])
        }),
        Ok(ResponseBody::Ran { .. })
    ));
}

/// Issue 15: 12 MiB of `y\n` (each newline escapes to 2 bytes of JSON) under a 12 MiB rule cap
/// made a response beyond the 16 MiB frame, answered as an internal error. Now the output is
/// shortened in encoded bytes, the cut is reported, and the frame fits.
#[test]
fn issue_15_output_that_escapes_beyond_the_frame_is_capped() {
    if !nos_tests::root_or_skip("issue_15_output_that_escapes_beyond_the_frame_is_capped") {
        return;
    }
    let agent = agent(&[]);
    match run(&agent, &["yes"]) {
        ResponseBody::Ran { result } => {
            // `yes` never ends by itself: the rule's 1 s timeout stops it.
            assert_eq!(result.outcome, Outcome::TimedOut, "{:?}", result.stderr);
            assert!(result.stdout.text.starts_with("y\ny\n"));
            assert!(result.stdout.truncated_bytes > 0);
            let encoded = serde_json::to_string(&result.stdout.text).unwrap().len();
            assert!(encoded <= nos_protocol::MAX_RESPONSE_FRAME, "{encoded}");
            assert!(
                result.stdout.text.len() > 8 << 20,
                "shortened far more than needed: {}",
                result.stdout.text.len()
            );
        }
        other => panic!("{other:?}\n{}", agent.explain()),
    }
}

#[test]
fn facts() {
    if !nos_tests::root_or_skip("facts") {
        return;
    }
    let agent = agent(&[]);
    // One round trip: raw texts, parsed by the host.
    let ResponseBody::Facts { facts } = agent.request(RequestBody::Facts) else {
        panic!("{}", agent.explain());
    };
    let value: serde_json::Value = serde_json::from_str(&facts.lsblk).unwrap();
    assert!(value["blockdevices"].is_array());
    let mountinfo = facts.mountinfo.text().unwrap();
    assert!(
        mountinfo
            .lines()
            .any(|line| line.split(' ').nth(4) == Some("/"))
    );
    assert!(facts.swaps.text().unwrap().starts_with("Filename"));
    // No read-only rule for btrfs or blkid in this allowlist: those facts are unavailable,
    // with the reason, not gathered another way.
    assert!(facts.btrfs_show.text().is_err(), "{facts:?}");
    assert!(facts.probes.is_empty(), "{facts:?}");

    // `nosctl facts` goes the same way (it spawns nothing itself) and prints facts as planners
    // receive them.
    let token_file = agent.dir.path().join("token");
    std::fs::write(&token_file, agent.token.as_ref().unwrap()).unwrap();
    let output = Command::new(binary("nosctl"))
        .arg("facts")
        .arg("--socket")
        .arg(&agent.socket)
        .arg("--token-file")
        .arg(&token_file)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let facts: nos_host::facts::Facts = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(facts.validate(), Ok(()));
    assert!(
        facts.fresh_uuids.is_empty(),
        "nosd fills fresh UUIDs per call, not the dump"
    );
}

#[test]
fn systemd_socket_activation() {
    if !nos_tests::root_or_skip("systemd_socket_activation") {
        return;
    }
    if !std::path::Path::new("/usr/bin/systemd-socket-activate").exists() {
        return nos_tests::skip(
            "systemd_socket_activation",
            "systemd-socket-activate not installed",
        );
    }
    let mut agent = TestAgent::start(AgentSetup {
        socket_activated: true,
        ..AgentSetup::new(TEST_ALLOWLIST)
    });
    let bootstrap = agent.dir.path().join("etc/agent-bootstrap-token");
    assert!(
        !bootstrap.exists(),
        "nothing connected yet, so the agent has not started"
    );
    // An administrator's first registration is the first connection: it starts the agent,
    // which writes the bootstrap token that nosctl then reads.
    let token_out = agent.dir.path().join("nosd-agent.token");
    let output = std::process::Command::new(nos_tests::binary("nosctl"))
        .args(["agent", "register", "--socket"])
        .arg(&agent.socket)
        .arg("--bootstrap-file")
        .arg(&bootstrap)
        .arg("--token-out")
        .arg(&token_out)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    agent.token = Some(
        std::fs::read_to_string(&token_out)
            .unwrap()
            .trim()
            .to_owned(),
    );
    assert!(matches!(run(&agent, &["true"]), ResponseBody::Ran { .. }));
    assert!(
        !agent.dir.path().join("unused.sock").exists(),
        "agent bound its own socket"
    );
    assert_eq!(
        std::fs::read_link(format!("/proc/{}/exe", agent.pid())).unwrap(),
        nos_tests::binary("nos-agent"),
        "systemd-socket-activate exec'd the agent in place"
    );
}

#[test]
fn unrecordable_decision_runs_nothing() {
    if !nos_tests::root_or_skip("unrecordable_decision_runs_nothing") {
        return;
    }
    let mut agent = TestAgent::start(AgentSetup {
        state_tmpfs_kib: Some(64),
        ..AgentSetup::new(TEST_ALLOWLIST)
    });
    agent.register();
    // Fill the agent's state tmpfs through its namespace's view of the filesystem.
    let state = format!(
        "/proc/{}/root{}/state",
        agent.pid(),
        agent.dir.path().display()
    );
    let mut filler = std::fs::File::create(format!("{state}/filler")).unwrap();
    while filler.write_all(&[0u8; 4096]).is_ok() {}
    // The audit log's last page may still have room: read-only commands (recorded lazily, and
    // allowed to run when that fails) use it up.
    for _ in 0..40 {
        assert!(matches!(
            run(&agent, &["echo", "filling-the-last-page-of-the-audit-log"]),
            ResponseBody::Ran { .. }
        ));
    }
    // A state-changing rule (a job) must not start when its decision cannot be recorded.
    match run(&agent, &["sleep", "30", "0"]) {
        ResponseBody::Error {
            code: ErrorCode::Internal,
            message,
        } => assert!(message.contains("nothing ran"), "{message}"),
        other => panic!("ran without an audit record: {other:?}"),
    }
    assert!(
        nos_tests::children_of(agent.pid()).is_empty(),
        "the agent has a child process"
    );
}
