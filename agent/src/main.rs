//! nos-agent: the root agent. Arguments, configuration, logging and the socket; the request
//! pipeline lives in `pipeline.rs`, the only spawn in `exec.rs`.
//!
//! Binary-only modules (never part of the pure library):
//! `policy` (the door to the allowlist), `trust` (peer credentials and tokens), `exec` (exec-time
//! checks and the one spawn), `jobs`, `managed` (typed managed files), `facts`, `audit`,
//! `pipeline` (the order of decisions) and `server` (socket glue).
#![deny(unsafe_code)]

mod audit;
mod exec;
mod facts;
mod jobs;
mod managed;
mod pipeline;
mod policy;
mod server;
mod trust;

use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;

/// The nos root agent: runs allowlisted commands for nosd over a Unix socket.
#[derive(Debug, Parser)]
#[command(name = "nos-agent", version)]
struct Args {
    /// Socket path (ignored when systemd passes a socket through LISTEN_FDS).
    #[arg(long, default_value = "/run/nos/agent.sock")]
    socket: PathBuf,
    /// Group owning the socket (name or gid); its members may connect. Default: `nos` if it exists.
    #[arg(long)]
    socket_group: Option<String>,
    /// Further uids allowed to connect (root always is).
    #[arg(long = "allow-uid")]
    allow_uids: Vec<u32>,
    /// Further primary gids allowed to connect.
    #[arg(long = "allow-gid")]
    allow_gids: Vec<u32>,
    /// Configuration directory: allowlist.toml, the bootstrap token, the key directory.
    #[arg(long, default_value = "/etc/nos")]
    config_dir: PathBuf,
    /// Allowlist file (default: CONFIG_DIR/allowlist.toml); overlays are read from
    /// `allowlist.d/*.toml` beside it. Mount roots and the key directory come from its settings.
    #[arg(long)]
    allowlist: Option<PathBuf>,
    /// State directory: the token hash and the audit log.
    #[arg(long, default_value = "/var/lib/nos")]
    state_dir: PathBuf,
    #[arg(long, default_value = "/etc/fstab")]
    fstab: PathBuf,
    #[arg(long, default_value = "/etc/crypttab")]
    crypttab: PathBuf,
    /// Refuse every registration (set once bootstrap is done).
    #[arg(long)]
    no_registration: bool,
    #[arg(long, default_value_t = server::DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,
    /// Milliseconds to receive one request frame or write one response.
    #[arg(long, default_value_t = server::DEFAULT_FRAME_TIMEOUT.as_millis() as u64)]
    frame_timeout_ms: u64,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("NOS_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let allowlist_path = args
        .allowlist
        .clone()
        .unwrap_or_else(|| args.config_dir.join("allowlist.toml"));
    let policy =
        policy::Policy::load_files(&allowlist_path).map_err(|err| anyhow::anyhow!("{err}"))?;

    for dir in [&args.config_dir, &args.state_dir] {
        std::fs::create_dir_all(dir).with_context(|| format!("{}", dir.display()))?;
    }
    let socket_gid = socket_group(args.socket_group.as_deref())?;
    let mut allowed_gids = args.allow_gids.clone();
    allowed_gids.extend(socket_gid);
    let trust = trust::Trust::open(trust::TrustConfig {
        allowed_uids: args.allow_uids.clone(),
        allowed_gids,
        bootstrap_path: args.config_dir.join("agent-bootstrap-token"),
        tokens_path: args.state_dir.join("agent-tokens.json"),
        registration_enabled: !args.no_registration,
    })?;
    let audit =
        audit::AuditLog::open(&args.state_dir.join("agent-audit.jsonl")).context("audit log")?;
    let managed = managed::ManagedConfig {
        fstab: args.fstab.clone(),
        crypttab: args.crypttab.clone(),
        key_dir: policy.key_dir(),
        mount_roots: policy.mount_roots(),
    };
    let agent = Arc::new(pipeline::Agent {
        policy,
        trust,
        jobs: jobs::Jobs::default(),
        audit: Arc::new(audit),
        managed,
    });
    let listener = match inherited_listener()? {
        Some(listener) => listener,
        None => bind(&args.socket, socket_gid)?,
    };
    tracing::info!(socket = %args.socket.display(), "nos-agent listening");
    server::serve(
        listener,
        agent,
        server::ServerConfig {
            max_connections: args.max_connections,
            frame_timeout: Duration::from_millis(args.frame_timeout_ms),
        },
    )?;
    Ok(())
}

fn socket_group(name: Option<&str>) -> anyhow::Result<Option<u32>> {
    let group = match name {
        Some(text) if text.parse::<u32>().is_ok() => return Ok(text.parse().ok()),
        Some(text) => {
            nix::unistd::Group::from_name(text)?.with_context(|| format!("no group {text}"))?
        }
        None => match nix::unistd::Group::from_name("nos")? {
            Some(group) => group,
            None => return Ok(None),
        },
    };
    Ok(Some(group.gid.as_raw()))
}

/// Binds the socket at `path` with mode 0660 and the given group. A stale socket is replaced;
/// any other file at that path is an error.
fn bind(path: &PathBuf, gid: Option<u32>) -> anyhow::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("{}", dir.display()))?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(metadata) if metadata.file_type().is_socket() => std::fs::remove_file(path)?,
        Ok(_) => bail!("{}: exists and is not a socket", path.display()),
        Err(_) => {}
    }
    let listener = UnixListener::bind(path).with_context(|| format!("bind {}", path.display()))?;
    if let Some(gid) = gid {
        nix::unistd::chown(path, None, Some(nix::unistd::Gid::from_raw(gid)))?;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    Ok(listener)
}

/// The listening socket passed by systemd socket activation, if this process is its target.
fn inherited_listener() -> anyhow::Result<Option<UnixListener>> {
    const SD_LISTEN_FDS_START: i32 = 3;
    let ours = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|pid| pid.parse::<u32>().ok())
        == Some(std::process::id());
    let n_fds = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse::<u32>().ok());
    if !ours || n_fds.is_none() {
        return Ok(None);
    }
    if n_fds != Some(1) {
        bail!("LISTEN_FDS={n_fds:?}: exactly one socket expected");
    }
    let stat = nix::sys::stat::fstat(unsafe_borrow_listen_fd())?;
    if nix::sys::stat::SFlag::from_bits_truncate(stat.st_mode) & nix::sys::stat::SFlag::S_IFMT
        != nix::sys::stat::SFlag::S_IFSOCK
    {
        bail!("LISTEN_FDS fd {SD_LISTEN_FDS_START} is not a socket");
    }
    #[allow(unsafe_code)]
    // SAFETY: systemd's protocol hands fd 3 to this process (LISTEN_PID is ours), nothing else in
    // this process has opened or taken ownership of it, and this is the only place that claims it.
    let fd = unsafe { OwnedFd::from_raw_fd(SD_LISTEN_FDS_START) };
    Ok(Some(UnixListener::from(fd)))
}

fn unsafe_borrow_listen_fd() -> std::os::fd::BorrowedFd<'static> {
    #[allow(unsafe_code)]
    // SAFETY: fd 3 is open for the life of the process when LISTEN_PID names us (checked by the
    // caller); the borrow is only used for one fstat before ownership is taken.
    unsafe {
        std::os::fd::BorrowedFd::borrow_raw(3)
    }
}
