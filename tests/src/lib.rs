//! The end-to-end harness: runs the real `nos-agent` binary in a fresh directory, talks to it
//! through the real socket with the host's client, and explains failures (command, agent log,
//! audit tail) when a test panics.
//!
//! Binaries are found beside the test executable (`target/<profile>/`); `cargo test --workspace`
//! builds them. Everything a test creates lives in its own directory under `/run` (root-owned
//! 0755, so the agent's root-owned-chain checks pass) and is removed on drop, even on failure.

pub mod admin;
pub mod demo;
pub mod http;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nos_host::agent_client::AgentClient;
use nos_protocol::{RequestBody, ResponseBody, StepResult};
use std::os::unix::fs::PermissionsExt;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// The repository's default allowlist.
pub const DEFAULT_ALLOWLIST: &str = include_str!("../../allowlist.toml");

/// The default allowlist with its mount roots and key directory moved into the scratch
/// directory, plus one test rule: luksFormat with a cheap PBKDF (argon2id takes ~15 s here).
pub fn e2e_allowlist() -> String {
    let text = DEFAULT_ALLOWLIST
        .replace(
            r#"mount_roots = ["/srv", "/mnt"]"#,
            r#"mount_roots = ["@ROOT@/mnt"]"#,
        )
        .replace(r#"key_dir = "/etc/nos/keys""#, r#"key_dir = "@ROOT@/keys""#);
    assert!(
        text.contains("@ROOT@/mnt") && text.contains("@ROOT@/keys"),
        "allowlist settings moved"
    );
    text + r#"
[[rule]]
id = "test.cryptsetup.luksFormat.fast"
binary = "cryptsetup"
effect = "destructive"
description = "luksFormat with PBKDF2 and 1000 iterations: tests only"
argv = ["luksFormat", "--type", "luks2", "--batch-mode", "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000", "--key-file", "$key", "--", "$device"]
params.key = { type = "key" }
params.device = { type = "disk" }
"#
}

/// `target/<profile>/<name>`, built by `cargo test --workspace` (or `cargo build --bins`).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` (or `cargo test --workspace`) first",
        path.display()
    );
    // `cargo test -p nos-tests` alone does not rebuild the binaries: refuse to test a stale one.
    // Cargo's dep-info file beside the binary lists exactly the sources it was built from.
    let built = std::fs::metadata(&path)
        .and_then(|metadata| metadata.modified())
        .ok();
    let newest_source = std::fs::read_to_string(dir.join(format!("{name}.d")))
        .ok()
        .and_then(|dep_info| newest_dependency(&dep_info));
    if let (Some(built), Some((newest, source))) = (built, newest_source) {
        assert!(
            built >= newest,
            "{} is older than {source}: run `cargo build --workspace --bins` (or `cargo test --workspace`)",
            path.display()
        );
    }
    path
}

/// The newest file a dep-info file (`target: dep dep …`, spaces in paths escaped with `\`)
/// lists, with its modification time.
fn newest_dependency(dep_info: &str) -> Option<(std::time::SystemTime, String)> {
    let (_, deps) = dep_info.lines().next()?.split_once(": ")?;
    let mut paths = Vec::new();
    let mut current = String::new();
    let mut chars = deps.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => current.extend(chars.next()),
            ' ' => paths.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    paths.push(current);
    paths
        .into_iter()
        .filter(|path| !path.is_empty())
        .filter_map(|path| {
            let modified = std::fs::metadata(&path).ok()?.modified().ok()?;
            Some((modified, path))
        })
        .max()
}

/// Whether this process is root; tests that need it print a named skip otherwise.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// True when root; otherwise prints a named skip line (the agent, its state and its scratch
/// directories under /run are root's).
pub fn root_or_skip(test: &str) -> bool {
    if is_root() {
        return true;
    }
    skip(
        test,
        "not root: the agent under test needs root-owned state and /run",
    );
    false
}

/// Prints a loud, named skip line.
pub fn skip(test: &str, why: &str) {
    // Straight to the stderr handle: libtest captures `eprintln!` of passing tests, and a skip
    // must show in CI's output, never pass silently.
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "SKIP {test}: {why}");
}

/// A fresh root-owned 0755 directory under /run, removed on drop.
pub fn scratch(prefix: &str) -> tempfile::TempDir {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let dir = tempfile::Builder::new()
        .prefix(&format!("nos-{prefix}-{}-{n}-", std::process::id()))
        .tempdir_in("/run")
        .expect("scratch dir in /run");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    dir
}

/// How to start an agent.
pub struct AgentSetup<'a> {
    pub allowlist: &'a str,
    pub extra_args: &'a [&'a str],
    /// Run the agent in its own private mount namespace (`unshare -m --propagation private`).
    pub private_mounts: bool,
    /// Let `systemd-socket-activate` bind the socket and pass it as LISTEN_FDS; the agent's own
    /// `--socket` then points elsewhere and must not be used.
    pub socket_activated: bool,
    /// Put the state directory (token hash, audit log) on a tmpfs of this many KiB inside the
    /// agent's own mount namespace, so a test can fill it. Implies a private mount namespace.
    pub state_tmpfs_kib: Option<u32>,
}

impl AgentSetup<'_> {
    pub fn new(allowlist: &str) -> AgentSetup<'_> {
        AgentSetup {
            allowlist,
            extra_args: &[],
            private_mounts: false,
            socket_activated: false,
            state_tmpfs_kib: None,
        }
    }
}

/// A running agent in its own directory. Killed and cleaned up on drop.
pub struct TestAgent {
    child: Child,
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub token: Option<String>,
}

impl TestAgent {
    pub fn start(setup: AgentSetup<'_>) -> TestAgent {
        let dir = scratch("agent");
        let root = dir.path();
        for sub in ["etc", "state", "mnt"] {
            std::fs::create_dir(root.join(sub)).unwrap();
            std::fs::set_permissions(root.join(sub), std::fs::Permissions::from_mode(0o755))
                .unwrap();
        }
        let allowlist = setup
            .allowlist
            .replace("@ROOT@", &root.display().to_string());
        std::fs::write(root.join("etc/allowlist.toml"), allowlist).unwrap();
        let socket = root.join("agent.sock");
        let agent = binary("nos-agent");
        let mut command = if setup.socket_activated {
            // systemd-socket-activate binds `socket` and execs the agent on the first connection
            // with it as LISTEN_FDS; the agent's own --socket below is then never bound.
            let mut activate = Command::new("systemd-socket-activate");
            activate.arg("--listen").arg(&socket).arg(&agent);
            activate
        } else if let Some(kib) = setup.state_tmpfs_kib {
            // Test fixture only (the agent never runs a shell): mount the tmpfs, then become the
            // agent in the same, private, namespace.
            let mut unshare = Command::new("unshare");
            unshare
                .args(["-m", "--propagation", "private", "--", "sh", "-c"])
                .arg(format!(
                    "mount -t tmpfs -o size={kib}k,mode=0755 nos-state \"$0\" && exec \"$@\""
                ))
                .arg(root.join("state"))
                .arg(&agent);
            unshare
        } else if setup.private_mounts {
            let mut unshare = Command::new("unshare");
            unshare
                .args(["-m", "--propagation", "private", "--"])
                .arg(&agent);
            unshare
        } else {
            Command::new(&agent)
        };
        let own_socket = if setup.socket_activated {
            root.join("unused.sock")
        } else {
            socket.clone()
        };
        command
            .arg("--socket")
            .arg(own_socket)
            .arg("--socket-group")
            .arg("0")
            .arg("--config-dir")
            .arg(root.join("etc"))
            .arg("--state-dir")
            .arg(root.join("state"))
            .arg("--fstab")
            .arg(root.join("etc/fstab"))
            .arg("--crypttab")
            .arg(root.join("etc/crypttab"))
            .args(setup.extra_args)
            .env("NOS_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(root.join("agent.log")).unwrap());
        let child = command.spawn().expect("spawn nos-agent");
        let agent = TestAgent {
            child,
            dir,
            socket,
            token: None,
        };
        if setup.socket_activated {
            // Only wait for the listening socket: a connection would start the agent.
            agent.wait_for_socket_file();
        } else {
            agent.wait_for_socket();
        }
        agent
    }

    /// Waits until systemd-socket-activate listens: the socket file exists.
    fn wait_for_socket_file(&self) {
        self.wait_until("systemd-socket-activate never listened", || {
            self.socket.exists()
        });
    }

    /// Waits until the agent accepts a connection on its socket.
    fn wait_for_socket(&self) {
        self.wait_until("agent socket never appeared", || {
            std::os::unix::net::UnixStream::connect(&self.socket).is_ok()
        });
    }

    fn wait_until(&self, failure: &str, ready: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !ready() {
            assert!(Instant::now() < deadline, "{failure}\n{}", self.explain());
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The agent's pid (inside `unshare` it is the same process: unshare execs it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn bootstrap_token(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("etc/agent-bootstrap-token")).unwrap()
    }

    /// Registers with the bootstrap token and keeps the per-agent token.
    pub fn register(&mut self) -> String {
        let mut client = AgentClient::connect(&self.socket, Some(Duration::from_secs(30))).unwrap();
        match client
            .request(RequestBody::Register {
                bootstrap_token: self.bootstrap_token(),
            })
            .unwrap()
        {
            ResponseBody::Token { token, .. } => {
                self.token = Some(token.clone());
                token
            }
            other => panic!("register: {other:?}\n{}", self.explain()),
        }
    }

    /// A connected client carrying the registered token.
    pub fn client(&self) -> AgentClient {
        let mut client =
            AgentClient::connect(&self.socket, Some(Duration::from_secs(120))).unwrap();
        if let Some(token) = &self.token {
            client.set_token(token.clone());
        }
        client
    }

    /// Sends one request on a fresh connection.
    pub fn request(&self, body: RequestBody) -> ResponseBody {
        self.client()
            .request(body)
            .unwrap_or_else(|err| panic!("request failed: {err}\n{}", self.explain()))
    }

    pub fn audit_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("state/agent-audit.jsonl")).unwrap_or_default()
    }

    /// The agent's log and audit tail, for failure messages.
    pub fn explain(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default();
        let tail = |text: &str| {
            text.lines()
                .rev()
                .take(30)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n")
        };
        format!(
            "--- agent log (tail) ---\n{}\n--- audit log (tail) ---\n{}",
            tail(&log),
            tail(&self.audit_log())
        )
    }

    /// Runs a program inside the agent's mount namespace (to inspect mounts the host cannot see).
    pub fn in_agent_ns(&self, argv: &[&str]) -> std::process::Output {
        Command::new("nsenter")
            .arg(format!("--mount=/proc/{}/ns/mnt", self.pid()))
            .arg("--")
            .args(argv)
            .stdin(Stdio::null())
            .output()
            .expect("nsenter")
    }
}

impl Drop for TestAgent {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.explain());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loop device over a sparse file; detached on drop (after the agent, if declared before it).
pub struct LoopDevice {
    pub device: String,
    image: PathBuf,
}

impl LoopDevice {
    pub fn new(dir: &Path, name: &str, size: &str) -> std::io::Result<LoopDevice> {
        let image = dir.join(format!("{name}.img"));
        run_ok(Command::new("truncate").args(["-s", size]).arg(&image))?;
        let output = Command::new("losetup")
            .args(["-f", "--show"])
            .arg(&image)
            .output()?;
        if !output.status.success() {
            let _ = std::fs::remove_file(&image);
            return Err(std::io::Error::other(format!(
                "losetup: {}",
                String::from_utf8_lossy(&output.stderr)
            )));
        }
        Ok(LoopDevice {
            device: String::from_utf8_lossy(&output.stdout).trim().to_owned(),
            image,
        })
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        // The agent's namespace may still be collapsing; retry briefly while the device is busy.
        for _ in 0..50 {
            match Command::new("losetup")
                .args(["-d", &self.device])
                .stderr(Stdio::null())
                .status()
            {
                Ok(status) if status.success() => break,
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
        let _ = std::fs::remove_file(&self.image);
    }
}

fn run_ok(command: &mut Command) -> std::io::Result<()> {
    let output = command.output()?;
    if output.status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "{command:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        )))
    }
}

/// The pids whose parent is `pid`, from /proc (no procps needed).
pub fn children_of(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|child| {
            std::fs::read_to_string(format!("/proc/{child}/stat")).is_ok_and(|stat| {
                // pid (comm) state ppid ...: comm may contain spaces, so split after the last ')'.
                stat.rsplit(')')
                    .next()
                    .and_then(|rest| rest.split_whitespace().nth(1))
                    == Some(&pid.to_string())
            })
        })
        .collect()
}

/// Whether loop devices can be made here.
pub fn loop_devices_available() -> bool {
    Path::new("/dev/loop-control").exists()
}

/// True when a test can run on real btrfs over loop devices: root, `/dev/loop-control` and every
/// tool in `tools` (`install` names their packages); otherwise prints a named skip line.
pub fn real_btrfs_or_skip(test: &str, tools: &[&str], install: &str) -> bool {
    if !is_root() {
        skip(test, "not root: real btrfs on loop devices needs root");
        return false;
    }
    if !loop_devices_available() {
        skip(test, "no /dev/loop-control: loop devices unavailable");
        return false;
    }
    if let Some(tool) = tools.iter().find(|tool| !Path::new(tool).exists()) {
        skip(test, &format!("{tool} missing (install {install})"));
        return false;
    }
    true
}

/// Runs `argv` through the agent; its result, or a panic with the agent's log when it was
/// refused or failed.
pub fn ran(agent: &TestAgent, argv: &[&str]) -> StepResult {
    let argv: Vec<String> = argv.iter().map(|token| (*token).to_owned()).collect();
    match agent.request(RequestBody::Run { argv: argv.clone() }) {
        ResponseBody::Ran { result } if result.succeeded() => result,
        other => panic!("{argv:?}: {other:#?}\n{}", agent.explain()),
    }
}

/// Whether the kernel has device-mapper (needed by `cryptsetup open`).
pub fn device_mapper_available() -> bool {
    std::fs::read_to_string("/proc/misc")
        .is_ok_and(|misc| misc.lines().any(|line| line.ends_with(" device-mapper")))
}

/// The allowlist the socket tests run against. `@ROOT@` becomes the agent's scratch directory.
pub const TEST_ALLOWLIST: &str = r#"
version = 1

[settings]
mount_roots = ["@ROOT@/mnt"]
key_dir = "@ROOT@/keys"
forced_mount_options = ["nosuid", "nodev"]

[[binary]]
name = "true"
path = "/usr/bin/true"

[[binary]]
name = "sleep"
path = "/usr/bin/sleep"

[[binary]]
name = "echo"
path = "/usr/bin/echo"

[[binary]]
name = "lsblk"
path = "/usr/bin/lsblk"
end_of_options = true

[[binary]]
name = "yes"
path = "/usr/bin/yes"

[[type]]
name = "word"
kind = "label"
max_len = 64

[[type]]
name = "secs"
kind = "int"
min = 0
max = 60

[[type]]
name = "pool"
kind = "mount_path"
max_depth = 4

[[managed]]
id = "managed.mount_dir"
kind = "mount_dir"
effect = "state"
description = "A mount directory below the test's mount root"
params.path = { type = "pool" }

[[rule]]
id = "test.true"
binary = "true"
effect = "read"
argv = []

[[rule]]
id = "test.echo"
binary = "echo"
effect = "read"
argv = ["$word"]
params.word = { type = "word" }

[[rule]]
id = "test.sleep"
binary = "sleep"
effect = "read"
argv = ["$secs"]
params.secs = { type = "secs" }
limits = { timeout_s = 1, kill_after_s = 1 }

[[rule]]
id = "test.sleep_job"
binary = "sleep"
effect = "state"
job = true
argv = ["$secs", "0"]
params.secs = { type = "secs" }

# 12 MiB of "y\n" within a second: 18 MiB once JSON-encoded, beyond the 16 MiB response frame.
[[rule]]
id = "test.yes"
binary = "yes"
effect = "read"
argv = []
limits = { timeout_s = 1, kill_after_s = 1, max_stdout = 12582912 }

[[rule]]
id = "lsblk.facts"
binary = "lsblk"
effect = "read"
argv = ["--json", "--bytes", "--output", "NAME,KNAME,PATH,PKNAME,MAJ:MIN,TYPE,SIZE,ROTA,RM,RO,MODEL,SERIAL,WWN,PTTYPE,PTUUID,PARTTYPE,PARTLABEL,PARTUUID,FSTYPE,LABEL,UUID,MOUNTPOINTS"]
"#;

#[cfg(test)]
mod tests {
    #[test]
    fn children_of_sees_a_child() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        assert!(super::children_of(std::process::id()).contains(&child.id()));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!super::children_of(std::process::id()).contains(&child.id()));
    }
}
