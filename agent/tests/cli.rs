//! The `nos-agent` binary as an operator starts it: a broken allowlist or configuration stops it
//! before it binds a socket or writes a file, with an error that names what is wrong. (Being an
//! integration test of this package, this also makes `cargo test` build the binary the
//! end-to-end tests in `tests/` run.)

use std::process::Command;

fn agent(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_nos-agent"))
        .args(args)
        .env("NOS_LOG", "error")
        .output()
        .expect("run nos-agent")
}

#[test]
fn an_invalid_allowlist_stops_the_agent_before_anything_else() {
    let dir = tempfile::tempdir().unwrap();
    let allowlist = dir.path().join("allowlist.toml");
    std::fs::write(&allowlist, "version = 1\n[[rule]]\nid = \"x\"\n").unwrap();
    let state = dir.path().join("state");
    let socket = dir.path().join("agent.sock");
    let output = agent(&[
        "--allowlist",
        allowlist.to_str().unwrap(),
        "--config-dir",
        dir.path().to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
        "--socket",
        socket.to_str().unwrap(),
    ]);
    assert!(!output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("allowlist.toml"), "{stderr}");
    assert!(!state.exists(), "the state directory was made");
    assert!(!socket.exists(), "the socket was bound");
}

#[test]
fn an_unknown_flag_is_refused() {
    let output = agent(&["--run-anything"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("--run-anything"));
}
