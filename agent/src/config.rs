//! The agent's configuration: an optional TOML file (`--config`, e.g. `/etc/nos/agent.toml`)
//! whose every key can also be given as a flag; a flag wins over the file, the file over the
//! default. A missing file means "all defaults" (packaging need not ship one); a malformed file
//! or an unknown key stops the agent.
//!
//! This module only reads; it never spawns.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use serde::Deserialize;

pub const DEFAULT_SOCKET: &str = "/run/nos/agent.sock";
pub const DEFAULT_CONFIG_DIR: &str = "/etc/nos";
/// Root-only: the token hash and the audit log live here (systemd `StateDirectory=nos-agent`).
/// Never nosd's `/var/lib/nos`, which the unprivileged daemon owns.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/nos-agent";

/// The nos root agent: runs allowlisted commands for nosd over a Unix socket.
#[derive(Debug, Parser)]
#[command(name = "nos-agent", version)]
pub struct Args {
    /// TOML configuration file; its keys are the long flag names with `_` for `-`.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Socket path (default /run/nos/agent.sock; ignored when systemd passes LISTEN_FDS).
    #[arg(long)]
    socket: Option<PathBuf>,
    /// Group owning the socket (name or gid); its members may connect. Default: `nos` if it exists.
    #[arg(long)]
    socket_group: Option<String>,
    /// Further uids allowed to connect (root always is).
    #[arg(long = "allow-uid")]
    allow_uids: Vec<u32>,
    /// Further primary gids allowed to connect.
    #[arg(long = "allow-gid")]
    allow_gids: Vec<u32>,
    /// Configuration directory: allowlist.toml and the bootstrap token (default /etc/nos).
    #[arg(long)]
    config_dir: Option<PathBuf>,
    /// Allowlist file (default CONFIG_DIR/allowlist.toml); overlays are read from
    /// `allowlist.d/*.toml` beside it. Mount roots and the key directory come from its settings.
    #[arg(long)]
    allowlist: Option<PathBuf>,
    /// State directory, root-owned: the token hash and the audit log (default /var/lib/nos-agent).
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// The fstab whose managed block the agent maintains (default /etc/fstab).
    #[arg(long)]
    fstab: Option<PathBuf>,
    /// The crypttab whose managed block the agent maintains (default /etc/crypttab).
    #[arg(long)]
    crypttab: Option<PathBuf>,
    /// Refuse every registration (set once bootstrap is done). File key: `registration = false`.
    #[arg(long)]
    no_registration: bool,
    /// Connections served at once (default 16).
    #[arg(long)]
    max_connections: Option<usize>,
    /// Milliseconds to receive one request frame or write one response (default 10000).
    #[arg(long)]
    frame_timeout_ms: Option<u64>,
    /// Dry-run mode: judge and render every request, execute none (only the facts are read),
    /// write no managed file (the demo without root). Command line only, never from the file.
    #[arg(long)]
    dry_run: bool,
}

/// The file form of [`Args`].
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    socket: Option<PathBuf>,
    socket_group: Option<String>,
    #[serde(default)]
    allow_uids: Vec<u32>,
    #[serde(default)]
    allow_gids: Vec<u32>,
    config_dir: Option<PathBuf>,
    allowlist: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    fstab: Option<PathBuf>,
    crypttab: Option<PathBuf>,
    registration: Option<bool>,
    max_connections: Option<usize>,
    frame_timeout_ms: Option<u64>,
}

/// The resolved configuration.
#[derive(Debug)]
pub struct Config {
    pub socket: PathBuf,
    pub socket_group: Option<String>,
    pub allow_uids: Vec<u32>,
    pub allow_gids: Vec<u32>,
    pub config_dir: PathBuf,
    pub allowlist: PathBuf,
    pub state_dir: PathBuf,
    pub fstab: PathBuf,
    pub crypttab: PathBuf,
    pub registration_enabled: bool,
    pub max_connections: usize,
    pub frame_timeout: Duration,
    pub dry_run: bool,
}

/// Parses the flags and the file they name.
pub fn load() -> anyhow::Result<Config> {
    resolve(Args::parse())
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text).with_context(|| format!("{}", path.display())),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            tracing::info!(config = %path.display(), "no configuration file; using defaults");
            Ok(FileConfig::default())
        }
        Err(err) => Err(err).with_context(|| format!("{}", path.display())),
    }
}

fn resolve(args: Args) -> anyhow::Result<Config> {
    let file = match &args.config {
        Some(path) => read_file(path)?,
        None => FileConfig::default(),
    };
    let config_dir = args
        .config_dir
        .or(file.config_dir)
        .unwrap_or_else(|| DEFAULT_CONFIG_DIR.into());
    let allowlist = args
        .allowlist
        .or(file.allowlist)
        .unwrap_or_else(|| config_dir.join("allowlist.toml"));
    Ok(Config {
        socket: args
            .socket
            .or(file.socket)
            .unwrap_or_else(|| DEFAULT_SOCKET.into()),
        socket_group: args.socket_group.or(file.socket_group),
        allow_uids: [args.allow_uids, file.allow_uids].concat(),
        allow_gids: [args.allow_gids, file.allow_gids].concat(),
        allowlist,
        state_dir: args
            .state_dir
            .or(file.state_dir)
            .unwrap_or_else(|| DEFAULT_STATE_DIR.into()),
        fstab: args
            .fstab
            .or(file.fstab)
            .unwrap_or_else(|| "/etc/fstab".into()),
        crypttab: args
            .crypttab
            .or(file.crypttab)
            .unwrap_or_else(|| "/etc/crypttab".into()),
        registration_enabled: !args.no_registration && file.registration.unwrap_or(true),
        max_connections: args
            .max_connections
            .or(file.max_connections)
            .unwrap_or(crate::server::DEFAULT_MAX_CONNECTIONS),
        frame_timeout: args
            .frame_timeout_ms
            .or(file.frame_timeout_ms)
            .map_or(crate::server::DEFAULT_FRAME_TIMEOUT, Duration::from_millis),
        config_dir,
        dry_run: args.dry_run,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_with(flags: &[&str], file: &str) -> anyhow::Result<Config> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.toml");
        std::fs::write(&path, file).unwrap();
        let mut argv = vec!["nos-agent", "--config", path.to_str().unwrap()];
        argv.extend_from_slice(flags);
        resolve(Args::try_parse_from(argv)?)
    }

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let config = load_with(
            &["--socket", "/x.sock"],
            "socket = \"/y.sock\"\nregistration = false\nmax_connections = 3\n",
        )
        .unwrap();
        assert_eq!(config.socket, PathBuf::from("/x.sock"));
        assert!(!config.registration_enabled);
        assert_eq!(config.max_connections, 3);
        assert_eq!(config.state_dir, PathBuf::from(DEFAULT_STATE_DIR));
        assert_eq!(config.allowlist, PathBuf::from("/etc/nos/allowlist.toml"));
        assert!(load_with(&[], "sockett = \"/typo\"").is_err());
        let missing = resolve(
            Args::try_parse_from(["nos-agent", "--config", "/nonexistent/agent.toml"]).unwrap(),
        )
        .unwrap();
        assert!(missing.registration_enabled);
    }
}
