//! Recovery mode end to end with the real `nosd` and `nosctl` binaries: absent without the
//! kernel flag, served on a root-only socket with it, refused to uid 65534, audited, and
//! ending sessions.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::NosdProcess;

fn start_nosd(dir: &Path, cmdline: &str) -> (NosdProcess, PathBuf) {
    let (nosd, socket, _) = start_nosd_at(dir, cmdline);
    (nosd, socket)
}

/// Writes a nosd config in `dir` whose kernel command line is `cmdline` and whose own recovery
/// socket path is `socket`; returns the config path.
fn write_config(dir: &Path, cmdline: &str, socket: &Path) -> PathBuf {
    let cmdline_path = dir.join("cmdline");
    std::fs::write(&cmdline_path, cmdline).unwrap();
    let config_path = dir.join("nosd.toml");
    std::fs::write(
        &config_path,
        format!(
            "[http]\nbind = \"127.0.0.1:0\"\n[state]\ndir = \"{}\"\n[argon2]\nmemory_kib = 19456\niterations = 2\n[recovery]\ncmdline_path = \"{}\"\nsocket = \"{}\"\n",
            dir.join("state").display(),
            cmdline_path.display(),
            socket.display()
        ),
    )
    .unwrap();
    config_path
}

/// Starts the real nosd; returns it, its recovery socket path and its HTTP address.
fn start_nosd_at(dir: &Path, cmdline: &str) -> (NosdProcess, PathBuf, String) {
    let socket = dir.join("run/recovery.sock");
    let nosd = NosdProcess::start(&write_config(dir, cmdline, &socket));
    let local = nosd.addr.clone();
    (nosd, socket, local)
}

fn nosctl(socket: &Path, args: &[&str], as_nobody: bool) -> (bool, String) {
    let mut command = if as_nobody {
        let mut command = Command::new("setpriv");
        command.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            env!("CARGO_BIN_EXE_nosctl"),
        ]);
        command
    } else {
        Command::new(env!("CARGO_BIN_EXE_nosctl"))
    };
    let output = command
        .arg("recovery")
        .arg("--socket")
        .arg(socket)
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn recovery_socket_absent_without_flag_root_only_with_it() {
    assert!(nix_is_root(), "the recovery tests run as root (CI does)");
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();

    // Without the flag: no socket at all.
    {
        let (_nosd, socket) =
            start_nosd(dir.path(), "BOOT_IMAGE=/vmlinuz ro quiet nos.recovery=0\n");
        assert!(
            !socket.exists(),
            "recovery socket exists without the kernel flag"
        );
    }

    // With the flag: the socket is 0600 and answers root.
    let (_nosd, socket) = start_nosd(dir.path(), "BOOT_IMAGE=/vmlinuz ro quiet nos.recovery=1\n");
    let started = Instant::now();
    while !socket.exists() && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let (ok, text) = nosctl(&socket, &["status"], false);
    assert!(ok, "{text}");
    assert!(text.contains("recovery mode active"), "{text}");

    // uid 65534 cannot even connect through the 0600 socket...
    std::fs::set_permissions(
        socket.parent().unwrap(),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let (ok, text) = nosctl(&socket, &["status"], true);
    assert!(!ok, "{text}");
    assert!(text.to_lowercase().contains("permission denied"), "{text}");
    // ...and with the file mode opened up, SO_PEERCRED still refuses it.
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let (ok, text) = nosctl(&socket, &["reset-password", "admin"], true);
    assert!(!ok, "{text}");
    assert!(text.contains("refused: uid 65534 is not root"), "{text}");

    // Unknown account: refused, nothing happens.
    let (ok, text) = nosctl(&socket, &["reset-password", "admin"], false);
    assert!(!ok && text.contains("no account"), "{text}");
    drop(_nosd);
    let audit = std::fs::read_to_string(dir.path().join("state/audit.jsonl")).unwrap_or_default();
    assert!(!audit.contains("recovery_action"), "{audit}");
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|line| line.starts_with("Uid:"))
        .is_some_and(|line| line.split_whitespace().nth(1) == Some("0"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_actions_are_audited_and_end_sessions() {
    use crate::harness::{Client, TestServer};
    use nos_host::clock::{Clock, ManualClock, SystemClock};
    use std::sync::Arc;

    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let state_dir = dir.path().join("state");
    // Create the admin and a session with an in-process server on the same state directory.
    let server = TestServer::start(
        &state_dir,
        "",
        Arc::new(ManualClock::new(SystemClock.now())),
    )
    .await;
    let (secret, _) = server.setup_admin(&Client::new()).await;
    let session = crate::harness::logged_in(&server, &secret).await;
    server.stop().await;

    let (_nosd, socket, addr) = tokio::task::spawn_blocking({
        let dir = dir.path().to_path_buf();
        move || start_nosd_at(&dir, "ro nos.recovery=1")
    })
    .await
    .unwrap();
    let me = |client: Client| {
        let url = format!("http://{addr}/api/v1/me");
        async move { client.send(client.http.get(url)).await.status }
    };
    assert_eq!(
        me(session.clone()).await,
        200,
        "the session survived the restart"
    );

    let (ok, text) = tokio::task::spawn_blocking({
        let socket = socket.clone();
        move || nosctl(&socket, &["login-code", "admin"], false)
    })
    .await
    .unwrap();
    assert!(ok, "{text}");
    let one_time_code = text.lines().last().unwrap().trim().to_string();
    assert_eq!(one_time_code.len(), 20, "{text}");
    assert_eq!(
        me(session.clone()).await,
        401,
        "the recovery action ended the session"
    );

    let login = |password: String| {
        let client = Client::new();
        let url = format!("http://{addr}/api/v1/auth/login");
        async move {
            let body = serde_json::json!({"username": "admin", "password": password});
            client
                .send(
                    client
                        .http
                        .post(url)
                        .header("content-type", "application/json")
                        .header("x-nos-csrf", "1")
                        .body(body.to_string()),
                )
                .await
                .status
        }
    };
    assert_eq!(login(one_time_code.clone()).await, 200);
    assert_eq!(
        login(one_time_code).await,
        401,
        "the login code is single-use"
    );

    let (ok, text) = tokio::task::spawn_blocking({
        let socket = socket.clone();
        move || nosctl(&socket, &["reset-password", "admin"], false)
    })
    .await
    .unwrap();
    assert!(ok && text.contains("WARNING"), "{text}");
    drop(_nosd);
    let audit = std::fs::read_to_string(state_dir.join("audit.jsonl")).unwrap();
    assert_eq!(audit.matches("\"recovery_action\"").count(), 2, "{audit}");
    assert!(
        !audit.contains(&text.lines().last().unwrap().trim().to_string()),
        "no secret in the audit log"
    );
}

#[test]
fn check_config_names_the_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("nosd.toml");
    std::fs::write(
        &config_path,
        "[http]\nbind = \"127.0.0.1:9000\"\n\n[session]\nidle_secs = 60\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_nosd"))
        .arg("--check-config")
        .arg("--config")
        .arg(&config_path)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("line 5") && stderr.contains("unknown field `idle_secs`"),
        "{stderr}"
    );
    std::fs::write(&config_path, "[http]\nbind = \"127.0.0.1:9000\"\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_nosd"))
        .arg("--check-config")
        .arg("--config")
        .arg(&config_path)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A nosd started some other way than [`NosdProcess`] (socket-activated, or with a bad
/// descriptor), killed when dropped.
struct Spawned {
    child: Child,
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A recovery-mode config whose own socket path is `unused` (so a test can prove nosd did not
/// bind it); returns the config path.
fn activation_config(dir: &Path) -> PathBuf {
    write_config(
        dir,
        "ro nos.recovery=1\n",
        &dir.join("unused/recovery.sock"),
    )
}

/// Runs nosd under `systemd-socket-activate`, which listens on `socket`, and on the first
/// connection execs nosd with the socket as fd 3, `LISTEN_FDS=1` and `LISTEN_FDNAMES=fdname`
/// — the protocol `nos-recovery.socket` speaks.
fn socket_activated_nosd(dir: &Path, socket: &Path, fdname: &str) -> Spawned {
    let config_path = activation_config(dir);
    let child = Command::new("systemd-socket-activate")
        .arg("--listen")
        .arg(socket)
        .arg(format!("--fdname={fdname}"))
        .arg(env!("CARGO_BIN_EXE_nosd"))
        .arg("--config")
        .arg(&config_path)
        .env_remove("NOS_RECOVERY")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("systemd-socket-activate runs (package systemd)");
    let started = Instant::now();
    while !socket.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "systemd-socket-activate never listened"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Spawned { child }
}

#[test]
fn recovery_socket_is_taken_from_systemd_socket_activation() {
    assert!(nix_is_root(), "the recovery tests run as root (CI does)");
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("activated.sock");
    let _nosd = socket_activated_nosd(dir.path(), &socket, "recovery");
    // The first connection starts nosd; it serves recovery on the passed socket.
    let (ok, text) = nosctl(&socket, &["status"], false);
    assert!(ok, "{text}");
    assert!(text.contains("recovery mode active"), "{text}");
    assert!(
        !dir.path().join("unused/recovery.sock").exists(),
        "nosd bound its own socket although systemd passed one"
    );
    let (ok, text) = nosctl(&socket, &["reset-password", "nobody-here"], false);
    assert!(!ok && text.contains("no account"), "{text}");
}

/// nosd's stderr once it has exited, within 60 s.
fn exit_output(mut nosd: Spawned) -> (std::process::ExitStatus, String) {
    let started = Instant::now();
    let status = loop {
        if let Some(status) = nosd.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "nosd kept running"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut nosd.child.stderr.take().unwrap(), &mut stderr).unwrap();
    (status, stderr)
}

#[test]
fn a_passed_socket_nosd_does_not_serve_stops_it_from_starting() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("activated.sock");
    let nosd = socket_activated_nosd(dir.path(), &socket, "http");
    // Trigger the exec; the connection itself is refused or dropped.
    let _ = std::os::unix::net::UnixStream::connect(&socket);
    let (status, stderr) = exit_output(nosd);
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains(r#"socket activation passed ["http"], which this service does not use"#),
        "{stderr}"
    );
}

#[test]
fn a_passed_descriptor_that_is_not_a_listening_socket_stops_nosd() {
    let dir = tempfile::tempdir().unwrap();
    let config_path = activation_config(dir.path());
    // LISTEN_PID=$$ addresses the exec'd nosd; fd 3 is a regular file, not a socket.
    let child = Command::new("sh")
        .arg("-c")
        .arg(r#"export LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=recovery; exec "$0" --config "$1" 3<"$1""#)
        .arg(env!("CARGO_BIN_EXE_nosd"))
        .arg(&config_path)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (status, stderr) = exit_output(Spawned { child });
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr
            .contains(r#"passed descriptor 3 ("recovery") is not a listening Unix stream socket"#),
        "{stderr}"
    );
    assert!(!dir.path().join("unused/recovery.sock").exists());
}
