//! `scripts/demo` run as it is, for the end-to-end walk-through: the script makes the sparse disk
//! images and loop devices, the narrowed allowlist and nosd's config, starts nos-agent (in its
//! private mount namespace with a tmpfs over `/srv`) and nosd, and the test drives nosd over
//! HTTP. So the demo's configuration is the one under test; the only difference is
//! `NOS_DEMO_BIN_DIR` (the binaries cargo already built) and a free port.
//!
//! Dropping a [`Demo`] stops the script as Ctrl-C would (its trap ends both daemons and detaches
//! the loop devices), then kills and detaches whatever it left, even after a failed test.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{binary, children_of, scratch};

/// How long the demo may take to bring nosd up (plugins compile on a cold cache).
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// A running `scripts/demo`.
pub struct Demo {
    script: Child,
    /// nosd started by the test after killing the demo's (see [`Demo::restart_nosd`]).
    own_nosd: Option<Child>,
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub agent_pid: u32,
    nosd_pid: u32,
    /// Every disk image the demo made; the first `n_attached` are attached.
    images: Vec<PathBuf>,
    n_attached: usize,
}

impl Demo {
    /// Starts the demo with `n_disks` loop devices and waits until nosd answers.
    pub fn start(n_disks: usize) -> Demo {
        let dir = scratch("demo");
        let port = free_port();
        let script = spawn_script(dir.path(), port, n_disks);
        let images = (1..=n_disks)
            .map(|n| dir.path().join(format!("state/disks/disk{n}.img")))
            .collect();
        let mut demo = Demo {
            script,
            own_nosd: None,
            dir,
            port,
            agent_pid: 0,
            nosd_pid: 0,
            images,
            n_attached: n_disks,
        };
        demo.wait_until_up(true);
        demo
    }

    /// A reboot: the demo stops as at Ctrl-C (both daemons end, the agent's mount namespace and
    /// every mount in it go, the loop devices are forgotten by btrfs and detached), then starts
    /// again on the same state with the first `n_disks` disk images attached (fewer: the others
    /// are absent disks) and waits until nosd answers. Loop device names may change.
    pub fn reboot(&mut self, n_disks: usize) {
        assert!(n_disks <= self.images.len(), "no such disk images");
        self.stop();
        self.script = spawn_script(self.dir.path(), self.port, n_disks);
        self.n_attached = n_disks;
        self.wait_until_up(false);
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// nosd's state directory (audit log, jobs, sessions).
    pub fn nosd_state(&self) -> PathBuf {
        self.state_dir().join("nosd-state")
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn setup_token(&self) -> String {
        std::fs::read_to_string(self.nosd_state().join("setup-token"))
            .expect("setup token")
            .trim()
            .to_string()
    }

    /// The loop devices the demo attached, in the order of its disk images.
    pub fn loops(&self) -> Vec<String> {
        self.images[..self.n_attached]
            .iter()
            .map(|image| {
                loop_of(image).unwrap_or_else(|| {
                    panic!("no loop device for {}\n{}", image.display(), self.explain())
                })
            })
            .collect()
    }

    /// Waits until nosd answers (and, before the first setup, wrote its setup token), then
    /// notes both daemons' pids.
    fn wait_until_up(&mut self, first_start: bool) {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.script.try_wait() {
                panic!("scripts/demo exited early ({status})\n{}", self.explain());
            }
            if (!first_start || self.nosd_state().join("setup-token").exists())
                && std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
                && children_of(self.script.id())
                    .iter()
                    .any(|pid| comm(*pid).as_deref() == Some("nosd"))
            {
                self.agent_pid = self.child_named("nos-agent");
                self.nosd_pid = self.child_named("nosd");
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the demo's nosd never came up\n{}", self.explain());
    }

    fn child_named(&self, name: &str) -> u32 {
        children_of(self.script.id())
            .into_iter()
            .find(|pid| comm(*pid).as_deref() == Some(name))
            .unwrap_or_else(|| panic!("the demo runs no {name}\n{}", self.explain()))
    }

    /// SIGKILLs the running nosd (the demo's, or the one [`Demo::restart_nosd`] started) and
    /// waits until it is gone.
    pub fn kill_nosd(&mut self) {
        if let Some(mut child) = self.own_nosd.take() {
            child.kill().expect("kill nosd");
            child.wait().expect("reap nosd");
            return;
        }
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.nosd_pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .expect("kill -9 nosd");
        // The demo's shell reaps it; wait for the pid to go.
        let deadline = Instant::now() + Duration::from_secs(10);
        while comm(self.nosd_pid).as_deref() == Some("nosd") {
            assert!(Instant::now() < deadline, "nosd survived SIGKILL");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Starts nosd again with the demo's own config file (same state directory and port) and
    /// waits until it answers.
    pub fn restart_nosd(&mut self) {
        assert!(self.own_nosd.is_none(), "nosd already restarted");
        let log = std::fs::OpenOptions::new()
            .append(true)
            .open(self.dir.path().join("demo.log"))
            .expect("demo log");
        let child = Command::new(binary("nosd"))
            .arg("--config")
            .arg(self.state_dir().join("nosd.toml"))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .expect("spawn nosd");
        self.own_nosd = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(Ok(Some(status))) = self.own_nosd.as_mut().map(Child::try_wait) {
                panic!("nosd exited at restart ({status})\n{}", self.explain());
            }
            assert!(
                Instant::now() < deadline,
                "nosd never came back\n{}",
                self.explain()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs a program inside the agent's mount namespace (where the pools are mounted).
    pub fn in_agent_ns(&self, argv: &[&str]) -> std::process::Output {
        Command::new("nsenter")
            .arg(format!("--mount=/proc/{}/ns/mnt", self.agent_pid))
            .arg("--")
            .args(argv)
            .stdin(Stdio::null())
            .output()
            .expect("nsenter")
    }

    /// The agent namespace's mount table: (mount point, fs type, source) per line.
    pub fn agent_mounts(&self) -> Vec<(String, String, String)> {
        let text = std::fs::read_to_string(format!("/proc/{}/mountinfo", self.agent_pid))
            .expect("agent mountinfo");
        text.lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split(' ').collect();
                let dash = fields.iter().position(|field| *field == "-")?;
                Some((
                    fields.get(4)?.to_string(),
                    fields.get(dash + 1)?.to_string(),
                    fields.get(dash + 2)?.to_string(),
                ))
            })
            .collect()
    }

    /// The demo's output (both daemons log there), for failure messages.
    pub fn explain(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("demo.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(60)..].join("\n");
        format!("--- demo log (tail) ---\n{tail}")
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = writeln!(std::io::stderr().lock(), "{}", self.explain());
        }
        self.stop();
    }
}

impl Demo {
    /// Stops the demo as Ctrl-C would, then ends whatever it left of its own.
    fn stop(&mut self) {
        if let Some(mut child) = self.own_nosd.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // As Ctrl-C: the script's trap stops both daemons and detaches its loop devices.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.script.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while !matches!(self.script.try_wait(), Ok(Some(_)) | Err(_)) {
            if Instant::now() > deadline {
                let _ = self.script.kill();
                let _ = self.script.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Whatever the trap could not end: only our own daemons (checked by name) and loops
        // (found by our own image files).
        for (pid, name) in [(self.agent_pid, "nos-agent"), (self.nosd_pid, "nosd")] {
            if pid != 0 && comm(pid).as_deref() == Some(name) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        for image in &self.images {
            for _ in 0..50 {
                let Some(device) = loop_of(image) else { break };
                let _ = Command::new("losetup")
                    .args(["-d", &device])
                    .stderr(Stdio::null())
                    .status();
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// Starts `scripts/demo` with its state in `dir/state`, on `port`, with `n_disks` disks, logging
/// to `dir/demo.log` (appended: a reboot keeps the log).
fn spawn_script(dir: &Path, port: u16, n_disks: usize) -> Child {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root");
    let bin_dir = binary("nosd").parent().expect("bin dir").to_path_buf();
    binary("nos-agent");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("demo.log"))
        .expect("demo log");
    Command::new(workspace.join("scripts/demo"))
        .env("DEMO_DIR", dir.join("state"))
        .env("NOS_DEMO_PORT", port.to_string())
        .env("NOS_DEMO_DISKS", n_disks.to_string())
        .env("NOS_DEMO_BIN_DIR", &bin_dir)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log fd"))
        .stderr(log)
        .spawn()
        .expect("spawn scripts/demo")
}

/// The loop device backed by `image`, if any.
pub fn loop_of(image: &Path) -> Option<String> {
    let output = Command::new("losetup").arg("-j").arg(image).output().ok()?;
    // `/dev/loop3: [2049]:1234 (/path/disk1.img)`
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text.lines().next()?;
    Some(line.split(':').next()?.to_string())
}

/// `/proc/<pid>/comm`, without the newline.
fn comm(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|name| name.trim_end().to_string())
}

/// A port free right now on 127.0.0.1 (the kernel's pick).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}
