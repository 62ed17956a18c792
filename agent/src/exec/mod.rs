//! The exec-time checks on the live system and the one spawn of nos, in two modules that never
//! meet in the middle: [`verify`] inspects, [`run`] spawns.
//!
//! A [`Command`](crate::policy::Command) arrives already judged and rendered by the allowlist.
//! Then:
//! 1. [`verify::prepare`] re-verifies the filesystem facts the allowlist cannot see: block
//!    devices are block devices (and are renamed to their kernel name), mount paths and key
//!    files are reached without a symlink through root-owned, non-group/other-writable
//!    directories ([`crate::dir_chain`]), every `mount` carries `nosuid,nodev`, and a
//!    sha256-pinned binary is hashed from the very fd it is executed from (`/proc/self/fd/N`).
//!    For `mount --no-canonicalize` the verified target directory is passed the same way, so
//!    mount(2) lands on exactly the checked directory. Last, a device the allowlist marks
//!    `NotInUse` is refused when it or a partition is mounted, swap, held or the root device
//!    ([`crate::in_use`]). An `umount` must name a path that the agent's mountinfo shows as a
//!    btrfs mount point (a nos pool: the allowlist's `pool` type already keeps it below a mount
//!    root); it is then carried out in the agent with `umount2(2)` and `UMOUNT_NOFOLLOW`, not by
//!    spawning umount(8). The result is a [`Prepared`] command holding the pinning fds; there is
//!    no other way to make one.
//! 2. [`run::spawn`] starts a [`Prepared`] command shell-free and [`run::Running::wait`] drives it
//!    to the end (timeout, cancel, kill of the whole process group, capped output); [`run::run`]
//!    also carries out the in-agent unmount.
//!
//! **Architecture Invariant:** [`run`] is the only module of nos that spawns a process (or
//! unmounts), and it takes only a [`Prepared`] command. Neither module reads the policy or
//! decides what may run.

pub mod run;
pub mod verify;

use std::path::PathBuf;

use crate::in_use;

pub use run::{Canceller, Running, run, spawn, spawn_failed};
pub use verify::{Prepared, prepare};

/// An exec-time refusal or failure. Rejections are reported to the caller like allowlist ones.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("{path}: not a block device")]
    NotBlockDevice { path: String, arg_idx: usize },
    #[error("{path}: {reason}")]
    UnsafePath {
        path: String,
        reason: String,
        arg_idx: usize,
    },
    #[error("{path}: {reason}")]
    BadKeyFile {
        path: String,
        reason: String,
        arg_idx: usize,
    },
    #[error("device in use: {path}: {usage}")]
    InUse {
        path: String,
        usage: in_use::Usage,
        arg_idx: usize,
    },
    #[error(
        "{path}: cannot tell whether the device is in use, so it is treated as in use: {reason}"
    )]
    InUseUnchecked {
        path: String,
        reason: String,
        arg_idx: usize,
    },
    #[error("mount without nosuid,nodev refused")]
    MountOptions,
    #[error("{path}: not the mount point of a btrfs pool (per mountinfo)")]
    NotPoolMount { path: String, arg_idx: usize },
    #[error("umount needs exactly one pool path, got {n_paths}")]
    UnmountArgs { n_paths: usize },
    #[error("rule {rule_id}: an in-agent unmount cannot run as a job")]
    UnmountAsJob { rule_id: String },
    #[error("binary {path}: {reason}")]
    Binary { path: PathBuf, reason: String },
    #[error("check refers to argument {arg_idx}, the command has {n_args}")]
    BadArgIndex { arg_idx: usize, n_args: usize },
    #[error("cannot spawn {path}: {source}")]
    Spawn {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl ExecError {
    /// The request's argv index (0 = program) this error blames, when it blames one argument:
    /// the rendered argument is traced back through the command's `arg_sources`.
    pub fn token_idx(&self, arg_sources: &[Option<usize>]) -> Option<usize> {
        match self {
            ExecError::NotBlockDevice { arg_idx, .. }
            | ExecError::UnsafePath { arg_idx, .. }
            | ExecError::BadKeyFile { arg_idx, .. }
            | ExecError::InUse { arg_idx, .. }
            | ExecError::InUseUnchecked { arg_idx, .. }
            | ExecError::NotPoolMount { arg_idx, .. } => {
                arg_sources.get(*arg_idx).copied().flatten()
            }
            ExecError::Binary { .. } => Some(0),
            _ => None,
        }
    }
}
#[cfg(test)]
mod test_support {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use crate::policy::{Command, Effect, Limits};

    /// A read-only command of a test rule, its arguments traced to request tokens 1, 2, ….
    pub fn command(program: &str, args: &[&str]) -> Command {
        Command {
            rule_id: "test.rule".into(),
            program: program.into(),
            sha256: None,
            args: args.iter().map(|arg| (*arg).to_owned()).collect(),
            arg_sources: (1..=args.len()).map(Some).collect(),
            effect: Effect::Read,
            limits: Limits {
                timeout: Duration::from_secs(10),
                kill_after: Duration::from_millis(300),
                max_stdout: 1 << 20,
                max_stderr: 64 << 10,
                exit_states: BTreeMap::new(),
            },
            checks: Vec::new(),
            job: false,
        }
    }
}
