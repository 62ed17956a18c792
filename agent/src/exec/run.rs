//! The one spawn of nos: a [`Prepared`] command started shell-free and driven to its end.
//!
//! 1. [`spawn`]: env cleared and set to exactly [`CHILD_ENV`], stdin `/dev/null`, stdout/stderr
//!    piped and capped, cwd `/`, its own process group in the agent's session (systemd starts
//!    the agent with no controlling terminal, so its commands have none); a pinned binary is executed from its
//!    checked fd and pinned mount targets stay open across exec (only that needs a `pre_exec`
//!    closure, so every other command is spawned with posix_spawn rather than a fork);
//! 2. [`Running::wait`] waits with the rule's timeout, on the calling thread, with one `poll`
//!    over the child's pidfd, its two pipes and a cancel pipe (no thread per command): on
//!    expiry or cancel SIGTERM goes to the whole group, SIGKILL after the grace period; once the
//!    leader has exited, the rest of its group is killed before the leader is reaped, so the
//!    group id cannot be recycled under us.
//!
//! It does not contain a descendant that calls `setsid()` or `setpgid()` itself: that escapes
//! the process group (a cgroup would catch it; see the `descendant_escaping_the_group_is_not_waited_for`
//! test). The agent also stops reading its pipes [`PIPE_DRAIN_GRACE`] after the leader's exit.
//!
//! This module holds the agent's only `unsafe` (the `pre_exec` closure of [`spawn`]).

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use nos_protocol::{Captured, Outcome, StepResult};

use super::verify::Action;
use super::{ExecError, Prepared};

/// The complete environment of every child; nothing is inherited from the agent or the caller.
pub const CHILD_ENV: [(&str, &str); 3] = [
    ("LANG", "C"),
    ("LC_ALL", "C"),
    ("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
];

/// How long to wait for the output pipes to close after the process group is dead, before
/// giving up on a descendant that escaped the group and still holds them.
pub const PIPE_DRAIN_GRACE: Duration = Duration::from_secs(1);

/// A handle that cancels a running command from another thread. Cancelling a finished command is
/// a no-op.
#[derive(Debug, Clone)]
pub struct Canceller(Arc<OwnedFd>);

impl Canceller {
    pub fn cancel(&self) {
        // The pipe is non-blocking: a full pipe already holds a pending cancel.
        let _ = nix::unistd::write(&*self.0, &[1]);
    }
}

/// A spawned command; [`Running::wait`] drives it to the end on the calling thread.
#[derive(Debug)]
pub struct Running {
    child: Child,
    pgid: Pid,
    /// Readable once the leader has exited (not reaped: see [`Running::wait`]).
    pidfd: OwnedFd,
    cancel_read: OwnedFd,
    cancel_write: Arc<OwnedFd>,
    stdout: Stream,
    stderr: Stream,
    rule_id: String,
    argv: Vec<String>,
    limits: crate::policy::Limits,
    started: Instant,
}

/// One captured output pipe: the first `cap` bytes are kept, the rest counted and dropped.
#[derive(Debug)]
struct Stream {
    pipe: Option<File>,
    cap: usize,
    kept: Vec<u8>,
    discarded: u64,
}

impl Stream {
    fn new(pipe: Option<OwnedFd>, cap: usize) -> Stream {
        Stream {
            pipe: pipe.map(File::from),
            cap,
            kept: Vec::new(),
            discarded: 0,
        }
    }

    /// Reads what is available (poll said so, so this does not block); closes on EOF or error.
    fn read_available(&mut self, buf: &mut [u8]) {
        let Some(pipe) = &mut self.pipe else { return };
        match pipe.read(buf) {
            Ok(0) => self.pipe = None,
            Ok(n_read) => {
                let room = self.cap.saturating_sub(self.kept.len()).min(n_read);
                self.kept.extend_from_slice(&buf[..room]);
                self.discarded += (n_read - room) as u64;
            }
            Err(err)
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::Interrupted | std::io::ErrorKind::WouldBlock
                ) => {}
            Err(_) => self.pipe = None,
        }
    }

    fn captured(self) -> Captured {
        let text = String::from_utf8_lossy(&self.kept);
        Captured {
            lossy: matches!(text, std::borrow::Cow::Owned(_)),
            text: text.into_owned(),
            truncated_bytes: self.discarded,
        }
    }
}

/// Where a running command is on its way out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    /// SIGTERM sent; SIGKILL follows at this instant.
    Terminating {
        kill_at: Instant,
    },
    /// SIGKILL sent; the exit cannot be refused.
    Killed,
}

/// Spawns a prepared command. Fails only when the process cannot be started.
pub fn spawn(prepared: Prepared) -> Result<Running, ExecError> {
    let argv = prepared.argv();
    let Prepared {
        command,
        pinned_binary,
        pinned_dirs,
        action,
    } = prepared;
    if action != Action::Spawn {
        return Err(ExecError::UnmountAsJob {
            rule_id: command.rule_id,
        });
    }
    let inherited_fds: Vec<i32> = pinned_dirs.iter().map(AsRawFd::as_raw_fd).collect();
    let exec_path = match &pinned_binary {
        Some(file) => PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd())),
        None => command.program.clone(),
    };
    let mut process = std::process::Command::new(&exec_path);
    process
        .arg0(&command.program)
        .args(&command.args)
        .env_clear()
        .envs(CHILD_ENV)
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Its own process group (pgid = its pid), for killpg. Without a `pre_exec` closure std
    // spawns with posix_spawn (clone with CLONE_VFORK), which copies no page tables: a fork of
    // the multithreaded agent cost more than the command itself (a facts refresh spawns one
    // `blkid` per device).
    process.process_group(0);
    if !inherited_fds.is_empty() {
        #[allow(unsafe_code)]
        // SAFETY: the closure runs in the forked child before exec and calls only fcntl(2),
        // which is async-signal-safe; it allocates nothing (the fd list was built before the
        // fork) and touches no lock. Clearing FD_CLOEXEC on the pinned mount targets keeps
        // exactly those fds open across exec; the fds are owned by `pinned_dirs`, alive until
        // after the spawn.
        unsafe {
            process.pre_exec(move || {
                for raw_fd in &inherited_fds {
                    let fd = std::os::fd::BorrowedFd::borrow_raw(*raw_fd);
                    nix::fcntl::fcntl(
                        fd,
                        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
                    )
                    .map_err(std::io::Error::from)?;
                }
                Ok(())
            });
        }
    }
    let mut child = process.spawn().map_err(|source| ExecError::Spawn {
        path: command.program.clone(),
        source,
    })?;
    drop(pinned_binary);
    drop(pinned_dirs);
    let pid = i32::try_from(child.id()).unwrap_or(i32::MAX);
    let pidfd = rustix::process::Pid::from_raw(pid)
        .ok_or_else(|| std::io::Error::other("pid 0"))
        .and_then(|rustix_pid| {
            Ok(rustix::process::pidfd_open(
                rustix_pid,
                rustix::process::PidfdFlags::empty(),
            )?)
        });
    let pipes =
        nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).map_err(std::io::Error::from);
    let (pidfd, (cancel_read, cancel_write)) = match (pidfd, pipes) {
        (Ok(pidfd), Ok(pipes)) => (pidfd, pipes),
        (Err(source), _) | (_, Err(source)) => {
            // Never leave an unsupervised process behind.
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            let _ = child.wait();
            return Err(ExecError::Spawn {
                path: command.program.clone(),
                source,
            });
        }
    };
    let stdout = Stream::new(
        child.stdout.take().map(OwnedFd::from),
        command.limits.max_stdout,
    );
    let stderr = Stream::new(
        child.stderr.take().map(OwnedFd::from),
        command.limits.max_stderr,
    );
    Ok(Running {
        child,
        pgid: Pid::from_raw(pid),
        pidfd,
        cancel_read,
        cancel_write: Arc::new(cancel_write),
        stdout,
        stderr,
        rule_id: command.rule_id,
        argv,
        limits: command.limits,
        started: Instant::now(),
    })
}

impl Running {
    pub fn canceller(&self) -> Canceller {
        Canceller(Arc::clone(&self.cancel_write))
    }

    pub fn rule_id(&self) -> &str {
        &self.rule_id
    }

    /// Waits for the end (exit, timeout or cancel) on the calling thread, with one poll over the
    /// process's pidfd, its two output pipes and the cancel pipe. Always leaves no process of the
    /// group behind and the leader reaped.
    ///
    /// The leader is never reaped before the end: while it is a zombie its pid stays reserved, so
    /// the SIGKILL sent to its group once it has exited cannot reach a recycled group.
    pub fn wait(mut self) -> StepResult {
        let deadline = self.started + self.limits.timeout;
        let mut phase = Phase::Running;
        let mut forced = None;
        let mut exited_at: Option<Instant> = None;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let now = Instant::now();
            if exited_at.is_some() && self.stdout.pipe.is_none() && self.stderr.pipe.is_none() {
                break;
            }
            let wake_at = match (exited_at, phase) {
                (Some(exited_at), _) => Some(exited_at + PIPE_DRAIN_GRACE),
                (None, Phase::Running) => Some(deadline),
                (None, Phase::Terminating { kill_at }) => Some(kill_at),
                (None, Phase::Killed) => None,
            };
            if let Some(wake_at) = wake_at
                && now >= wake_at
            {
                match (exited_at, phase) {
                    // A descendant that left the group still holds a pipe: stop reading.
                    (Some(_), _) => break,
                    (None, Phase::Running) => {
                        forced.get_or_insert(Outcome::TimedOut);
                        phase = self.terminate(now);
                    }
                    (None, _) => {
                        let _ = killpg(self.pgid, Signal::SIGKILL);
                        phase = Phase::Killed;
                    }
                }
                continue;
            }
            let timeout = match wake_at {
                Some(wake_at) => {
                    let millis = (wake_at - now).as_millis().saturating_add(1);
                    PollTimeout::try_from(millis).unwrap_or(PollTimeout::MAX)
                }
                None => PollTimeout::NONE,
            };
            let (n_ready, events) = {
                let mut fds = Vec::with_capacity(4);
                let mut kinds = Vec::with_capacity(4);
                if exited_at.is_none() {
                    fds.push(PollFd::new(self.pidfd.as_fd(), PollFlags::POLLIN));
                    kinds.push(Ready::Exited);
                }
                if let Some(pipe) = &self.stdout.pipe {
                    fds.push(PollFd::new(pipe.as_fd(), PollFlags::POLLIN));
                    kinds.push(Ready::Stdout);
                }
                if let Some(pipe) = &self.stderr.pipe {
                    fds.push(PollFd::new(pipe.as_fd(), PollFlags::POLLIN));
                    kinds.push(Ready::Stderr);
                }
                if exited_at.is_none() && phase == Phase::Running {
                    fds.push(PollFd::new(self.cancel_read.as_fd(), PollFlags::POLLIN));
                    kinds.push(Ready::Cancel);
                }
                match poll(&mut fds, timeout) {
                    Ok(n_ready) => {
                        let ready: Vec<Ready> = fds
                            .iter()
                            .zip(&kinds)
                            .filter(|(fd, _)| {
                                fd.revents().is_some_and(|revents| !revents.is_empty())
                            })
                            .map(|(_, kind)| *kind)
                            .collect();
                        (n_ready, ready)
                    }
                    Err(nix::errno::Errno::EINTR) => (0, Vec::new()),
                    // Cannot poll: fall back to killing and reaping, never to an orphan.
                    Err(_) => {
                        forced.get_or_insert(Outcome::TimedOut);
                        let _ = killpg(self.pgid, Signal::SIGKILL);
                        break;
                    }
                }
            };
            if n_ready == 0 {
                continue;
            }
            for ready in events {
                match ready {
                    Ready::Exited => {
                        exited_at = Some(Instant::now());
                        // The leader is a zombie now: kill whatever of its group is still alive.
                        let _ = killpg(self.pgid, Signal::SIGKILL);
                    }
                    Ready::Stdout => self.stdout.read_available(&mut buf),
                    Ready::Stderr => self.stderr.read_available(&mut buf),
                    Ready::Cancel => {
                        let _ = nix::unistd::read(&self.cancel_read, &mut buf[..64]);
                        if phase == Phase::Running {
                            forced = Some(Outcome::Cancelled);
                            phase = self.terminate(Instant::now());
                        }
                    }
                }
            }
        }
        let _ = killpg(self.pgid, Signal::SIGKILL);
        let status = self.child.wait();
        let duration_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let (exit_code, signal) = match &status {
            Ok(status) => (status.code(), status.signal()),
            Err(_) => (None, None),
        };
        let state = exit_code.and_then(|code| {
            if code == 0 {
                Some("ok".to_owned())
            } else {
                self.limits.exit_states.get(&code).cloned()
            }
        });
        let outcome = match forced {
            Some(outcome) => outcome,
            None if state.is_some() => Outcome::Ok,
            None => Outcome::Failed,
        };
        StepResult {
            rule_id: self.rule_id,
            argv: self.argv,
            outcome,
            exit_code,
            signal,
            state,
            stdout: self.stdout.captured(),
            stderr: self.stderr.captured(),
            duration_ms,
        }
    }

    /// SIGTERM to the group; SIGKILL follows after the rule's grace period.
    fn terminate(&self, now: Instant) -> Phase {
        let _ = killpg(self.pgid, Signal::SIGTERM);
        Phase::Terminating {
            kill_at: now + self.limits.kill_after,
        }
    }
}

/// What a poll reported.
#[derive(Debug, Clone, Copy)]
enum Ready {
    Exited,
    Stdout,
    Stderr,
    Cancel,
}

/// Checks, spawns and waits: the one-call form for steps that are not jobs. An unmount is
/// carried out here, in the agent, instead of being spawned.
pub fn run(prepared: Prepared) -> StepResult {
    let argv = prepared.argv();
    let rule_id = prepared.command.rule_id.clone();
    if let Action::Unmount { target } = &prepared.action {
        return unmount(rule_id, argv, target);
    }
    match spawn(prepared) {
        Ok(running) => running.wait(),
        Err(err) => spawn_failed(rule_id, argv, &err),
    }
}

/// `umount2(target, UMOUNT_NOFOLLOW)`, reported like a command: exit code 0, or 32 (umount(8)'s
/// "unmount failure") with the errno in stderr.
fn unmount(rule_id: String, argv: Vec<String>, target: &Path) -> StepResult {
    let started = Instant::now();
    let result = nix::mount::umount2(target, nix::mount::MntFlags::UMOUNT_NOFOLLOW);
    let empty = Captured {
        text: String::new(),
        truncated_bytes: 0,
        lossy: false,
    };
    let (outcome, exit_code, stderr) = match result {
        Ok(()) => (Outcome::Ok, 0, empty.clone()),
        Err(errno) => (
            Outcome::Failed,
            UMOUNT_FAILURE,
            Captured {
                text: format!("umount: {}: {}\n", target.display(), errno.desc()),
                ..empty.clone()
            },
        ),
    };
    StepResult {
        rule_id,
        argv,
        outcome,
        exit_code: Some(exit_code),
        signal: None,
        state: None,
        stdout: empty,
        stderr,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    }
}

/// umount(8)'s exit code for "unmount failure", used for a failed in-agent unmount.
const UMOUNT_FAILURE: i32 = 32;

/// The result reported for a command that never started.
pub fn spawn_failed(rule_id: String, argv: Vec<String>, err: &ExecError) -> StepResult {
    let empty = Captured {
        text: String::new(),
        truncated_bytes: 0,
        lossy: false,
    };
    StepResult {
        rule_id,
        argv,
        outcome: Outcome::SpawnFailed,
        exit_code: None,
        signal: None,
        state: None,
        stdout: empty.clone(),
        stderr: Captured {
            text: err.to_string(),
            ..empty
        },
        duration_ms: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::prepare;
    use crate::exec::test_support::command;
    use crate::policy::Command;
    use crate::tests::scratch;
    use sha2::{Digest, Sha256};

    fn run_command(command: Command) -> StepResult {
        run(prepare(command).expect("exec-time checks pass"))
    }

    /// Whether `pid` is dead within a second: SIGKILL is delivered at once, but the exit itself
    /// (files closed, then zombie) takes the kernel a moment.
    fn process_is_gone(pid: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(1);
        loop {
            let gone = match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
                Err(_) => true,
                // A zombie waiting for init to reap it is dead too.
                Ok(stat) => stat
                    .rsplit(')')
                    .next()
                    .is_some_and(|rest| rest.trim_start().starts_with(['Z', 'X'])),
            };
            if gone || Instant::now() > deadline {
                return gone;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn environment_is_exactly_the_fixed_one() {
        let result = run_command(command("/usr/bin/env", &[]));
        assert_eq!(result.outcome, Outcome::Ok);
        let mut lines: Vec<&str> = result.stdout.text.lines().collect();
        lines.sort();
        assert_eq!(
            lines,
            ["LANG=C", "LC_ALL=C", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"]
        );
    }

    #[test]
    fn cwd_stdin_process_group() {
        assert_eq!(run_command(command("/usr/bin/pwd", &[])).stdout.text, "/\n");
        // stdin is /dev/null: cat ends at once with nothing.
        let cat = run_command(command("/usr/bin/cat", &[]));
        assert_eq!((cat.outcome, cat.stdout.text.as_str()), (Outcome::Ok, ""));
        // Its own process group, in the agent's session: the controlling terminal, if any, is
        // the agent's (none under systemd, which starts a service as a session leader with no
        // terminal).
        let own = run_command(command("/usr/bin/cat", &["/proc/self/stat"]));
        let fields: Vec<&str> = own
            .stdout
            .text
            .rsplit(')')
            .next()
            .unwrap()
            .split_whitespace()
            .collect();
        // stat fields after the name: state ppid pgrp session tty_nr ...
        let pid = own.stdout.text.split_whitespace().next().unwrap();
        assert_eq!(fields[2], pid, "process group is the child itself");
        let agent = std::fs::read_to_string("/proc/self/stat").unwrap();
        let agent: Vec<&str> = agent
            .rsplit(')')
            .next()
            .unwrap()
            .split_whitespace()
            .collect();
        assert_eq!(
            (fields[3], fields[4]),
            (agent[3], agent[4]),
            "session and terminal are the agent's"
        );
    }

    #[test]
    fn exit_codes_map_to_states() {
        let mut status = command("/usr/bin/false", &[]);
        let failed = run_command(status.clone());
        assert_eq!(
            (failed.outcome, failed.exit_code, failed.state.clone()),
            (Outcome::Failed, Some(1), None)
        );
        status.limits.exit_states.insert(1, "running".into());
        let running = run_command(status);
        assert_eq!(
            (running.outcome, running.state.as_deref()),
            (Outcome::Ok, Some("running"))
        );
    }

    #[test]
    fn output_is_capped_and_truncation_reported() {
        let mut ten_mib = command("/usr/bin/head", &["-c", "10485760", "/dev/zero"]);
        ten_mib.limits.max_stdout = 1 << 20;
        let result = run_command(ten_mib);
        assert_eq!(result.outcome, Outcome::Ok);
        assert_eq!(result.stdout.text.len(), 1 << 20);
        assert_eq!(result.stdout.truncated_bytes, 9 << 20);
        let mut noisy = command("/usr/bin/ls", &["/nonexistent-nos-path"]);
        noisy.limits.max_stderr = 10;
        let result = run_command(noisy);
        assert_eq!(result.stderr.text.len(), 10);
        assert!(result.stderr.truncated_bytes > 0);
        assert_eq!(result.stdout.truncated_bytes, 0);
    }

    #[test]
    fn timeout_terms_then_kills_the_group() {
        let mut sleeper = command("/usr/bin/sleep", &["30"]);
        sleeper.limits.timeout = Duration::from_millis(200);
        let result = run_command(sleeper);
        assert_eq!(
            (result.outcome, result.signal),
            (Outcome::TimedOut, Some(15))
        );
        assert!(result.duration_ms < 2000, "{}", result.duration_ms);
        // Test fixture only (the agent never runs a shell): ignore SIGTERM so SIGKILL must follow.
        let mut stubborn = command("/bin/sh", &["-c", "trap '' TERM; echo ready; sleep 30"]);
        stubborn.limits.timeout = Duration::from_millis(300);
        stubborn.limits.kill_after = Duration::from_millis(200);
        let result = run_command(stubborn);
        assert_eq!(
            (result.outcome, result.signal),
            (Outcome::TimedOut, Some(9))
        );
        assert!(result.duration_ms < 3000, "{}", result.duration_ms);
    }

    #[test]
    fn grandchildren_leave_no_process_behind() {
        // Test fixture only: a child that forks grandchildren and exits at once.
        let result = run_command(command(
            "/bin/sh",
            &["-c", "sleep 60 & echo $!; sleep 61 & echo $!; exit 0"],
        ));
        assert_eq!(result.outcome, Outcome::Ok);
        let pids: Vec<&str> = result.stdout.text.lines().collect();
        assert_eq!(pids.len(), 2);
        for pid in pids {
            assert!(process_is_gone(pid), "grandchild {pid} survived");
        }
        // And on timeout.
        let mut hung = command("/bin/sh", &["-c", "sleep 60 & echo $!; sleep 60"]);
        hung.limits.timeout = Duration::from_millis(300);
        let result = run_command(hung);
        assert_eq!(result.outcome, Outcome::TimedOut);
        let pid = result.stdout.text.trim();
        assert!(
            process_is_gone(pid),
            "grandchild {pid} survived the timeout"
        );
    }

    #[test]
    fn descendant_escaping_the_group_is_not_waited_for() {
        // Test fixture only: a grandchild that calls setsid() leaves the process group and keeps
        // stdout open. The agent stops reading PIPE_DRAIN_GRACE after the leader's exit.
        // The leader exits only once the escapee has left the group (it writes its pid first).
        let dir = scratch("nos-exec-");
        let marker = dir.path().join("escaped");
        let script = format!(
            "setsid sh -c 'echo $$ > {marker}; echo $$; exec sleep 30' & \
             while [ ! -s {marker} ]; do sleep 0.01; done; exit 0",
            marker = marker.display()
        );
        let result = run_command(command("/bin/sh", &["-c", &script]));
        assert_eq!(result.outcome, Outcome::Ok);
        assert!(result.duration_ms < 5000, "{}", result.duration_ms);
        let pid = std::fs::read_to_string(&marker).unwrap().trim().to_owned();
        // FIXME(issue 3): the escaped process survives; running each command in its own cgroup
        // (and killing the cgroup) would catch it.
        assert!(
            !process_is_gone(&pid),
            "escaped grandchild {pid} is gone: update this test"
        );
        let _ = nix::sys::signal::kill(Pid::from_raw(pid.parse().unwrap()), Signal::SIGKILL);
    }

    #[test]
    fn cancel_kills() {
        let running = spawn(prepare(command("/usr/bin/sleep", &["30"])).unwrap()).unwrap();
        running.canceller().cancel();
        let result = running.wait();
        assert_eq!(result.outcome, Outcome::Cancelled);
    }

    #[test]
    fn pinned_binary_is_hashed_and_run_from_its_fd() {
        let bytes = std::fs::read("/usr/bin/echo").unwrap();
        let mut pinned = command("/usr/bin/echo", &["pinned"]);
        pinned.sha256 = Some(Sha256::digest(&bytes).into());
        let result = run_command(pinned.clone());
        assert_eq!(
            (result.outcome, result.stdout.text.as_str()),
            (Outcome::Ok, "pinned\n")
        );
        assert_eq!(result.argv[0], "/usr/bin/echo");
        pinned.sha256 = Some([0; 32]);
        assert!(matches!(prepare(pinned), Err(ExecError::Binary { .. })));
        assert!(matches!(
            prepare(command("relative/echo", &[])),
            Err(ExecError::Binary { .. })
        ));
    }
}
