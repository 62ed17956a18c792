//! nos-agent: the root agent. Arguments, configuration, logging and the socket; the request
//! pipeline lives in `pipeline.rs`, the only spawn in `exec/run.rs`.
//!
//! Binary-only modules (never part of the pure library): `config` (flags and the optional TOML
//! file), `policy` (the door to the allowlist), `trust` (peer credentials and tokens), `exec`
//! (`exec::verify`: the exec-time checks; `exec::run`: the one spawn), `dir_chain` (the one
//! root-owned directory-chain check, for exec and managed), `in_use` (is a device in use right
//! now), `jobs`, `managed` (typed managed files: `managed::table` edits the text, pure;
//! `managed::files` does the file effects), `audit`, `pipeline` (the order of decisions) and
//! `server` (socket glue). Files are replaced whole only through `nos_fs::write_atomic`.
//!
//! `unsafe` is denied here and allowed at exactly one marked place: the `pre_exec` closure in
//! `exec::run` (clearing FD_CLOEXEC on pinned mount targets). Taking systemd's
//! LISTEN_FDS socket is `nos_activation`'s job.
#![deny(unsafe_code)]

mod audit;
mod config;
mod dir_chain;
mod exec;
mod in_use;
mod jobs;
mod managed;
mod pipeline;
mod policy;
mod server;
mod trust;

use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("NOS_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let config = config::load()?;
    let policy =
        policy::Policy::load_files(&config.allowlist).map_err(|err| anyhow::anyhow!("{err}"))?;
    std::fs::create_dir_all(&config.config_dir)
        .with_context(|| format!("{}", config.config_dir.display()))?;
    ensure_private_dir(&config.state_dir)?;
    let socket_gid = socket_group(config.socket_group.as_deref())?;
    let mut allowed_gids = config.allow_gids.clone();
    allowed_gids.extend(socket_gid);
    let trust = trust::Trust::open(trust::TrustConfig {
        allowed_uids: config.allow_uids.clone(),
        allowed_gids,
        bootstrap_path: config.config_dir.join("agent-bootstrap-token"),
        tokens_path: config.state_dir.join("agent-tokens.json"),
        registration_enabled: config.registration_enabled,
    })?;
    let audit =
        audit::AuditLog::open(&config.state_dir.join("agent-audit.jsonl")).context("audit log")?;
    let managed = managed::ManagedConfig {
        fstab: config.fstab.clone(),
        crypttab: config.crypttab.clone(),
        key_dir: policy.key_dir(),
        mount_roots: policy.mount_roots(),
    };
    let agent = Arc::new(pipeline::Agent {
        policy,
        trust,
        jobs: jobs::Jobs::default(),
        audit: Arc::new(audit),
        managed,
        dry_run: config.dry_run,
    });
    if config.dry_run {
        tracing::warn!(
            "DRY-RUN MODE: requests are judged and rendered, none executes; only the facts are read"
        );
    }
    let listener = match inherited_listener()? {
        Some(listener) => listener,
        None => bind(&config.socket, socket_gid)?,
    };
    tracing::info!(socket = %config.socket.display(), "nos-agent listening");
    notify_ready();
    server::serve(
        listener,
        agent,
        server::ServerConfig {
            max_connections: config.max_connections,
            frame_timeout: config.frame_timeout,
        },
    )?;
    Ok(())
}

/// The state directory holds the token hash: it must be root's alone. Created 0700 if missing;
/// an existing one owned by anyone else, or writable by group or others, stops the agent (a
/// writable token file would let its owner mint tokens).
fn ensure_private_dir(dir: &Path) -> anyhow::Result<()> {
    if !dir.exists() {
        std::fs::create_dir_all(dir).with_context(|| format!("{}", dir.display()))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    let metadata = std::fs::symlink_metadata(dir).with_context(|| format!("{}", dir.display()))?;
    if !metadata.is_dir()
        || metadata.uid() != nix::unistd::geteuid().as_raw()
        || metadata.mode() & 0o022 != 0
    {
        bail!(
            "state directory {} must be a directory owned by the agent's user and not group/other-writable (uid {}, mode {:o})",
            dir.display(),
            metadata.uid(),
            metadata.mode() & 0o7777
        );
    }
    Ok(())
}

/// Tells systemd (`Type=notify`) the socket is ready, when NOTIFY_SOCKET is set.
fn notify_ready() {
    let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let socket = match std::os::unix::net::UnixDatagram::unbound() {
        Ok(socket) => socket,
        Err(err) => return tracing::warn!(%err, "sd_notify: no datagram socket"),
    };
    let target_bytes = target.as_encoded_bytes();
    let sent = match target_bytes.strip_prefix(b"@") {
        Some(name) => std::os::unix::net::SocketAddr::from_abstract_name(name)
            .and_then(|addr| socket.send_to_addr(b"READY=1", &addr)),
        None => socket.send_to(b"READY=1", Path::new(&target)),
    };
    if let Err(err) = sent {
        tracing::warn!(%err, "sd_notify READY=1 failed");
    }
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

/// The listening socket passed by systemd socket activation (`nos-agent.socket`), if any.
fn inherited_listener() -> anyhow::Result<Option<UnixListener>> {
    let mut sockets = nos_activation::take()?;
    let listener = sockets.only()?;
    sockets.finish()?;
    Ok(listener)
}

/// Fixtures shared by the unit tests of several modules.
#[cfg(test)]
mod tests;
