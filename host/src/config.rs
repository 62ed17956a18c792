//! nosd's TOML configuration: every path, limit and timeout, with the defaults in named consts.
//!
//! Errors come from `toml`, so they name the key and its line; values that would weaken a
//! security floor (argon2 cost, session lifetimes) are refused while parsing, with the span of
//! the offending value. This module never touches the filesystem except in [`Config::load`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::net::{Cidr, ForwardingHeader};

/// Default listen address: loopback only.
pub const DEFAULT_BIND: &str = "127.0.0.1:9000";
/// Default state directory.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/nos";
/// Default allowlist shown by the admin UI (overlays are read from `allowlist.d/` beside it).
pub const DEFAULT_ALLOWLIST_PATH: &str = "/etc/nos/allowlist.toml";
/// Production argon2id memory cost in KiB (46 MiB).
pub const DEFAULT_ARGON2_MEMORY_KIB: u32 = 46 * 1024;
/// Production argon2id passes.
pub const DEFAULT_ARGON2_ITERATIONS: u32 = 1;
/// The OWASP floor: memory × passes must reach 19 MiB × 2.
pub const ARGON2_FLOOR_MEMORY_TIMES_PASSES_KIB: u64 = 19 * 1024 * 2;
/// The smallest memory cost accepted at all (OWASP's 7 MiB / t=5 equivalent).
pub const ARGON2_FLOOR_MEMORY_KIB: u32 = 7 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid config {path}: {message}")]
    Parse { path: PathBuf, message: String },
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default = "HttpConfig::defaults")]
    pub http: HttpConfig,
    #[serde(default = "StateConfig::defaults")]
    pub state: StateConfig,
    #[serde(default = "Argon2Config::defaults")]
    pub argon2: Argon2Config,
    #[serde(default = "SessionConfig::defaults")]
    pub session: SessionConfig,
    #[serde(default = "LimitsConfig::defaults")]
    pub limits: LimitsConfig,
    #[serde(default = "RecoveryConfig::defaults")]
    pub recovery: RecoveryConfig,
    #[serde(default = "AllowlistConfig::defaults")]
    pub allowlist: AllowlistConfig,
    /// How nosd reaches the agent and its planners; without it the storage pipeline routes
    /// answer 503 `pipeline.unavailable`.
    #[serde(default)]
    pub pipeline: Option<PipelineConfig>,
    #[serde(default)]
    pub auth: AuthConfig,
    /// Pool health thresholds and the periodic refresh (see [`PoolsConfig`]).
    #[serde(default = "PoolsConfig::defaults")]
    pub pools: PoolsConfig,
    #[serde(default = "AlertsConfig::defaults")]
    pub alerts: AlertsConfig,
    /// The scrub schedule; off unless `[scrub] auto = true` (see [`ScrubConfig`]).
    #[serde(default)]
    pub scrub: ScrubConfig,
    /// How often the standing approvals are checked (see [`SchedulesConfig`]).
    #[serde(default = "SchedulesConfig::defaults")]
    pub schedules: SchedulesConfig,
}

/// Default of [`SchedulesConfig::check_seconds`]: a minute.
pub const DEFAULT_SCHEDULE_CHECK_SECONDS: u64 = 60;

/// `[schedules]`: standing approvals (`schedules`). nosd looks for due schedules every
/// `check_seconds` (default [`DEFAULT_SCHEDULE_CHECK_SECONDS`], 10..=3600) when it has a
/// `[pipeline]`; a schedule runs at the first check at or after its next run, so a run is late
/// by at most this much. The schedules themselves are approved through the API, never here.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulesConfig {
    #[serde(default = "default_schedule_check_seconds")]
    pub check_seconds: u64,
}

impl SchedulesConfig {
    fn defaults() -> SchedulesConfig {
        SchedulesConfig {
            check_seconds: DEFAULT_SCHEDULE_CHECK_SECONDS,
        }
    }
}

fn default_schedule_check_seconds() -> u64 {
    DEFAULT_SCHEDULE_CHECK_SECONDS
}

/// Default of [`PoolsConfig::refresh_seconds`]: 5 minutes, so a disk that disappears is seen
/// within minutes without the agent running btrfs every few seconds.
pub const DEFAULT_POOL_REFRESH_SECONDS: u64 = 300;
/// Smallest [`PoolsConfig::refresh_seconds`] accepted.
pub const MIN_POOL_REFRESH_SECONDS: u64 = 10;

/// `[pools]`: how pool health is judged and how often it is read.
///
/// `scrub_overdue_days`, `nearly_full_percent` and `very_full_percent` are
/// [`crate::health::Thresholds`] (defaults 35 days, 80 %, 90 %: `health::DEFAULT_THRESHOLDS`).
/// `refresh_seconds` is the period of the background facts refresh (default
/// [`DEFAULT_POOL_REFRESH_SECONDS`], at least [`MIN_POOL_REFRESH_SECONDS`]); every other facts
/// refresh (a plan, `GET /facts?refresh=true`) updates the pools and the alerts too. `scrub_time_utc_offset_seconds`
/// is the zone btrfs prints scrub times in (the machine's local time; default 0, UTC), east of
/// UTC; it does not follow daylight saving changes.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(try_from = "RawPools")]
pub struct PoolsConfig {
    pub thresholds: crate::health::Thresholds,
    pub refresh_seconds: u64,
    pub scrub_time_utc_offset_seconds: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPools {
    #[serde(default = "default_scrub_overdue_days")]
    scrub_overdue_days: u64,
    #[serde(default = "default_nearly_full_percent")]
    nearly_full_percent: u8,
    #[serde(default = "default_very_full_percent")]
    very_full_percent: u8,
    #[serde(default = "default_pool_refresh_seconds")]
    refresh_seconds: u64,
    #[serde(default)]
    scrub_time_utc_offset_seconds: i64,
}

fn default_scrub_overdue_days() -> u64 {
    crate::health::classify::DEFAULT_SCRUB_OVERDUE_DAYS
}

fn default_nearly_full_percent() -> u8 {
    crate::health::classify::DEFAULT_NEARLY_FULL_PERCENT
}

fn default_very_full_percent() -> u8 {
    crate::health::classify::DEFAULT_VERY_FULL_PERCENT
}

fn default_pool_refresh_seconds() -> u64 {
    DEFAULT_POOL_REFRESH_SECONDS
}

impl TryFrom<RawPools> for PoolsConfig {
    type Error = String;

    fn try_from(raw: RawPools) -> Result<PoolsConfig, String> {
        if !(1..=3650).contains(&raw.scrub_overdue_days) {
            return Err(format!(
                "pools.scrub_overdue_days = {} must be 1..=3650",
                raw.scrub_overdue_days
            ));
        }
        if !(1..=100).contains(&raw.nearly_full_percent)
            || !(raw.nearly_full_percent..=100).contains(&raw.very_full_percent)
        {
            return Err(format!(
                "pools.nearly_full_percent = {} and very_full_percent = {} must be 1 <= nearly <= very <= 100",
                raw.nearly_full_percent, raw.very_full_percent
            ));
        }
        if !(MIN_POOL_REFRESH_SECONDS..=86_400).contains(&raw.refresh_seconds) {
            return Err(format!(
                "pools.refresh_seconds = {} must be {MIN_POOL_REFRESH_SECONDS}..=86400",
                raw.refresh_seconds
            ));
        }
        if raw.scrub_time_utc_offset_seconds.abs() > 14 * 3600 {
            return Err(format!(
                "pools.scrub_time_utc_offset_seconds = {} must be within 14 hours of UTC",
                raw.scrub_time_utc_offset_seconds
            ));
        }
        Ok(PoolsConfig {
            thresholds: crate::health::Thresholds {
                scrub_overdue_after_seconds: raw.scrub_overdue_days * 86_400,
                nearly_full_percent: raw.nearly_full_percent,
                very_full_percent: raw.very_full_percent,
            },
            refresh_seconds: raw.refresh_seconds,
            scrub_time_utc_offset_seconds: raw.scrub_time_utc_offset_seconds,
        })
    }
}

impl PoolsConfig {
    fn defaults() -> PoolsConfig {
        PoolsConfig {
            thresholds: crate::health::DEFAULT_THRESHOLDS,
            refresh_seconds: DEFAULT_POOL_REFRESH_SECONDS,
            scrub_time_utc_offset_seconds: 0,
        }
    }
}

/// `[scrub]`: the TrueNAS-style scrub schedule (`alerts::schedule`). With `auto = true`
/// (default false: nothing runs unless an admin applies it), nosd checks every pool at start and
/// then every `alerts::schedule::SCRUB_CHECK_INTERVAL_SECONDS` (weekly), and starts a scrub job
/// for each mounted pool whose last complete scrub ended longer ago than `[pools]
/// scrub_overdue_days` (or never ran), or resumes one that stopped, unless a job holds the
/// pool. The job is planned by the `btrfs-maintenance` planner, which must be granted and
/// enabled, and applied unattended as `nosd:scrub-schedule` (`pools::scrub_schedule`).
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrubConfig {
    #[serde(default)]
    pub auto: bool,
}

/// Alerts: their thresholds and the webhook (`alerts::webhook`). Without `webhook_url`,
/// alerts go to the UI, the audit log and the journal only.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// Where every alert change is POSTed as signed JSON: an `http` or `https` URL without
    /// user or password (the secret is `webhook_secret_file`). Set together with
    /// `webhook_secret_file`. nosd's unit allows only loopback addresses
    /// (`IPAddressAllow=localhost`); a remote receiver needs a drop-in widening it.
    #[serde(default, deserialize_with = "webhook_url")]
    pub webhook_url: Option<reqwest::Url>,
    /// The shared secret of the webhook's HMAC-SHA256 signature (the file's bytes without
    /// trailing whitespace; at most 4 KiB). Keep it readable by nosd only.
    #[serde(default)]
    pub webhook_secret_file: Option<PathBuf>,
    /// A job whose current step has run longer than this many hours raises `job-stalled`
    /// (default 24, at most 720).
    #[serde(default = "default_job_stalled_after_hours")]
    pub job_stalled_after_hours: u64,
}

fn webhook_url<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<reqwest::Url>, D::Error> {
    use serde::de::Error;
    let text = String::deserialize(deserializer)?;
    let url = reqwest::Url::parse(&text)
        .map_err(|err| D::Error::custom(format!("`{text}` is not a URL: {err}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(D::Error::custom(format!(
            "`{text}`: the webhook must be http or https"
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(D::Error::custom(
            "the webhook URL carries a user or password: put the secret in webhook_secret_file",
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(D::Error::custom(format!("`{text}` names no host")));
    }
    Ok(Some(url))
}

/// Identity settings that are not limits or sessions.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// The auth-policy plugin (its directory or its `plugin.toml`), loaded like a planner:
    /// sha256 verified, kind must be `auth-policy`, limits capped. It can only tighten the
    /// built-in policy. When set but unloadable, nosd refuses to start. Unset: built-in only.
    #[serde(default)]
    pub policy_plugin: Option<PathBuf>,
}

/// The allowlist nosd reads to show and check commands (`GET /api/v1/allowlist`). nosd never
/// executes anything itself; the agent reads its own copy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowlistConfig {
    /// The main file (default [`DEFAULT_ALLOWLIST_PATH`]); read on each request, so the page
    /// shows the file as it is now.
    #[serde(default = "default_allowlist_path")]
    pub path: PathBuf,
}

/// The storage pipeline: the agent socket, the token and the planners (the allowlist is `[allowlist] path`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// The agent's Unix socket.
    pub agent_socket: PathBuf,
    /// The per-agent token file (`nosctl agent register --owner nos --token-out …`). When it
    /// does not exist and `bootstrap_token_file` is set, nosd registers at start and writes it.
    pub token_file: PathBuf,
    /// The agent's one-time bootstrap token, read only when `token_file` is missing.
    #[serde(default)]
    pub bootstrap_token_file: Option<PathBuf>,
    /// Directories of planner plugins (each holding `plugin.toml`).
    #[serde(default)]
    pub plugins: Vec<PathBuf>,
    /// Where compiled plugins are cached (default: none, compile at every start).
    #[serde(default)]
    pub plugin_cache_dir: Option<PathBuf>,
    /// How long a plan may be applied, in seconds (default 600).
    #[serde(default = "default_plan_ttl")]
    pub plan_ttl_seconds: u64,
    /// Grant and enable every configured plugin at start (the demo; never in production).
    #[serde(default)]
    pub dangerous_grant_all_plugins: bool,
    /// Where btrfs allocation summaries are read (default `/sys/fs/btrfs`).
    #[serde(default = "default_sysfs_btrfs")]
    pub sysfs_btrfs: PathBuf,
    /// Facts from this JSON file instead of the agent (the demo's dry-run mode only).
    #[serde(default)]
    pub fixture_facts: Option<PathBuf>,
}

/// How long a stored plan may be applied, in seconds (default 600).
pub const DEFAULT_PLAN_TTL_SECONDS: u64 = 600;

fn default_plan_ttl() -> u64 {
    DEFAULT_PLAN_TTL_SECONDS
}

fn default_sysfs_btrfs() -> PathBuf {
    PathBuf::from("/sys/fs/btrfs")
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Listen address (default [`DEFAULT_BIND`]).
    #[serde(default = "default_bind")]
    pub bind: SocketAddr,
    /// Host names (without port) accepted in `Host`; anything else gets 421 (DNS rebinding).
    #[serde(default = "default_allowed_hosts")]
    pub allowed_hosts: Vec<String>,
    /// Peers whose forwarding header is read (right to left, see `http::client_ip`).
    /// Forwarding headers from any other peer are refused with 400.
    #[serde(default)]
    pub trust_proxy: Vec<Cidr>,
    /// The one forwarding header read from `trust_proxy` peers: `"x-forwarded-for"` (default)
    /// or `"forwarded"` (RFC 7239); the other is ignored, never merged.
    #[serde(default)]
    pub client_ip_header: ForwardingHeader,
    /// Largest accepted request body in bytes (default 8 KiB).
    #[serde(default = "default_body_limit")]
    pub body_limit_bytes: usize,
    /// Time for a client to send a request's whole header, from its first byte (or from the
    /// connection's start), in ms (default [`crate::http::serve::DEFAULT_HEADER_READ_TIMEOUT`]).
    #[serde(default = "default_header_read_timeout_ms")]
    pub header_read_timeout_ms: u64,
    /// Time for a client to send a request's whole body, from the end of its header, in ms
    /// (default [`crate::http::serve::DEFAULT_BODY_READ_TIMEOUT`]).
    #[serde(default = "default_body_read_timeout_ms")]
    pub body_read_timeout_ms: u64,
    /// Open connections from one peer address; more are closed at once (default
    /// [`crate::http::serve::DEFAULT_MAX_CONNECTIONS_PER_ADDRESS`]).
    #[serde(default = "default_max_connections_per_address")]
    pub max_connections_per_address: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    #[serde(default = "default_state_dir")]
    pub dir: PathBuf,
}

/// argon2id cost; never below the OWASP floor (checked while parsing).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(try_from = "RawArgon2")]
pub struct Argon2Config {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArgon2 {
    #[serde(default = "default_argon2_memory")]
    memory_kib: u32,
    #[serde(default = "default_argon2_iterations")]
    iterations: u32,
    #[serde(default = "one")]
    parallelism: u32,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionConfig {
    /// Idle timeout in seconds (default 900).
    #[serde(default = "default_idle")]
    pub idle_seconds: u64,
    /// Absolute lifetime in seconds (default 28 800).
    #[serde(default = "default_absolute")]
    pub absolute_seconds: u64,
    /// How long a rotated refresh token still returns the same successor (default 15).
    #[serde(default = "default_grace")]
    pub refresh_grace_seconds: u64,
    /// How long a login or re-authentication unlocks sensitive actions (default 300).
    #[serde(default = "default_reauth")]
    pub reauth_seconds: u64,
    /// Client IP binding of a session (default `prefix`: /24 or /64).
    #[serde(default = "default_ip_binding")]
    pub ip_binding: IpBinding,
    /// Sessions per user; the oldest is evicted beyond it (default 5).
    #[serde(default = "default_max_sessions")]
    pub max_per_user: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IpBinding {
    Exact,
    Prefix,
    Off,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// governor burst per client (default 10 attempts).
    #[serde(default = "default_ip_burst")]
    pub ip_burst: u32,
    /// governor refill: one attempt per this many milliseconds (default 6000).
    #[serde(default = "default_ip_refill_ms")]
    pub ip_refill_ms: u64,
    /// Consecutive failures before the first lock (default 5).
    #[serde(default = "default_free_failures")]
    pub free_failures: u32,
    /// The first lock in seconds, doubled per further failure (default 60).
    #[serde(default = "default_base_lock")]
    pub base_lock_seconds: u64,
    /// The longest temporary lock (default 900).
    #[serde(default = "default_max_lock")]
    pub max_lock_seconds: u64,
    /// Consecutive failures after which a username stays locked until a success or recovery
    /// (default 100, NIST 800-63B 5.2.2).
    #[serde(default = "default_hard_stop")]
    pub user_hard_stop: u32,
    /// Free failures on a trusted device (default 10).
    #[serde(default = "default_device_free")]
    pub device_free_failures: u32,
    /// argon2 computations at once (default 2).
    #[serde(default = "default_hash_concurrency")]
    pub hash_concurrency: usize,
    /// Requests waiting for a hash slot before 503 (default 16).
    #[serde(default = "default_hash_queue")]
    pub hash_queue: usize,
    /// Untrusted failures within `global_window_seconds` that trip the global breaker (300).
    #[serde(default = "default_global_failures")]
    pub global_failures: usize,
    /// The breaker's window and quiet time (default 600).
    #[serde(default = "default_global_window")]
    pub global_window_seconds: u64,
    /// While tripped, one attempt per client per this many seconds (default 30).
    #[serde(default = "default_global_trickle")]
    pub global_trickle_seconds: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecoveryConfig {
    /// Where the kernel command line is read (default `/proc/cmdline`).
    #[serde(default = "default_cmdline")]
    pub cmdline_path: PathBuf,
    /// The root-only recovery socket (default `/run/nos/recovery.sock`).
    #[serde(default = "default_recovery_socket")]
    pub socket: PathBuf,
}

impl TryFrom<RawArgon2> for Argon2Config {
    type Error = String;

    fn try_from(raw: RawArgon2) -> Result<Argon2Config, String> {
        let cost = u64::from(raw.memory_kib) * u64::from(raw.iterations);
        if raw.memory_kib < ARGON2_FLOOR_MEMORY_KIB || cost < ARGON2_FLOOR_MEMORY_TIMES_PASSES_KIB {
            return Err(format!(
                "argon2 cost memory_kib={} iterations={} is below the floor (19 MiB x 2 passes)",
                raw.memory_kib, raw.iterations
            ));
        }
        if raw.memory_kib > 4 * 1024 * 1024
            || raw.iterations > 64
            || raw.parallelism == 0
            || raw.parallelism > 16
        {
            return Err("argon2 parameters out of range".to_string());
        }
        Ok(Argon2Config {
            memory_kib: raw.memory_kib,
            iterations: raw.iterations,
            parallelism: raw.parallelism,
        })
    }
}

impl Config {
    /// Parses a config; `origin` names the file in errors.
    pub fn from_toml_str(text: &str, origin: &Path) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|err| ConfigError::Parse {
            path: origin.to_path_buf(),
            message: err.to_string(),
        })?;
        config.validate().map_err(|(key, why)| {
            let place = match line_of(text, key) {
                Some(line) => format!(" at line {line}"),
                None => String::new(),
            };
            ConfigError::Parse {
                path: origin.to_path_buf(),
                message: format!("key `{key}`{place} {why}"),
            }
        })?;
        Ok(config)
    }

    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Config::from_toml_str(&text, path)
    }

    /// Cross-field and range checks; returns the offending `table.key` and why.
    fn validate(&self) -> Result<(), (&'static str, &'static str)> {
        let session = &self.session;
        let limits = &self.limits;
        let alerts = &self.alerts;
        let checks: [(bool, &'static str, &'static str); 12] = [
            (
                (1..=3600).contains(&session.idle_seconds),
                "session.idle_seconds",
                "must be 1..=3600",
            ),
            (
                session.absolute_seconds >= session.idle_seconds
                    && session.absolute_seconds <= 86_400,
                "session.absolute_seconds",
                "must be idle_seconds..=86400",
            ),
            (
                session.refresh_grace_seconds <= 60,
                "session.refresh_grace_seconds",
                "must be at most 60",
            ),
            (
                (1..=100).contains(&limits.user_hard_stop),
                "limits.user_hard_stop",
                "must be 1..=100",
            ),
            (
                limits.hash_concurrency > 0,
                "limits.hash_concurrency",
                "must be positive",
            ),
            (limits.ip_burst > 0, "limits.ip_burst", "must be positive"),
            (
                limits.ip_refill_ms > 0,
                "limits.ip_refill_ms",
                "must be positive",
            ),
            (
                limits.global_failures > 0,
                "limits.global_failures",
                "must be positive",
            ),
            (
                !(alerts.webhook_url.is_some() && alerts.webhook_secret_file.is_none()),
                "alerts.webhook_url",
                "needs webhook_secret_file",
            ),
            (
                !(alerts.webhook_url.is_none() && alerts.webhook_secret_file.is_some()),
                "alerts.webhook_secret_file",
                "needs webhook_url",
            ),
            (
                (1..=720).contains(&alerts.job_stalled_after_hours),
                "alerts.job_stalled_after_hours",
                "must be 1..=720",
            ),
            (
                (10..=3600).contains(&self.schedules.check_seconds),
                "schedules.check_seconds",
                "must be 10..=3600",
            ),
        ];
        match checks.iter().find(|(ok, _, _)| !ok) {
            Some((_, key, why)) => Err((key, why)),
            None => Ok(()),
        }
    }
}

/// The 1-based line of `table.key` in TOML `text`, if it is written there.
fn line_of(text: &str, dotted_key: &str) -> Option<usize> {
    let (table, key) = dotted_key.split_once('.')?;
    let mut current_table = "";
    for (line_idx, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if let Some(header) = trimmed
            .strip_prefix('[')
            .and_then(|rest| rest.strip_suffix(']'))
        {
            current_table = header.trim();
        } else if current_table == table
            && trimmed
                .split_once('=')
                .is_some_and(|(name, _)| name.trim() == key)
        {
            return Some(line_idx + 1);
        }
    }
    None
}

impl HttpConfig {
    fn defaults() -> HttpConfig {
        HttpConfig {
            bind: default_bind(),
            allowed_hosts: default_allowed_hosts(),
            trust_proxy: Vec::new(),
            client_ip_header: ForwardingHeader::default(),
            body_limit_bytes: default_body_limit(),
            header_read_timeout_ms: default_header_read_timeout_ms(),
            body_read_timeout_ms: default_body_read_timeout_ms(),
            max_connections_per_address: default_max_connections_per_address(),
        }
    }
}

impl StateConfig {
    fn defaults() -> StateConfig {
        StateConfig {
            dir: default_state_dir(),
        }
    }
}

impl Argon2Config {
    fn defaults() -> Argon2Config {
        Argon2Config {
            memory_kib: DEFAULT_ARGON2_MEMORY_KIB,
            iterations: DEFAULT_ARGON2_ITERATIONS,
            parallelism: 1,
        }
    }
}

impl SessionConfig {
    fn defaults() -> SessionConfig {
        SessionConfig {
            idle_seconds: default_idle(),
            absolute_seconds: default_absolute(),
            refresh_grace_seconds: default_grace(),
            reauth_seconds: default_reauth(),
            ip_binding: default_ip_binding(),
            max_per_user: default_max_sessions(),
        }
    }
}

impl LimitsConfig {
    fn defaults() -> LimitsConfig {
        LimitsConfig {
            ip_burst: default_ip_burst(),
            ip_refill_ms: default_ip_refill_ms(),
            free_failures: default_free_failures(),
            base_lock_seconds: default_base_lock(),
            max_lock_seconds: default_max_lock(),
            user_hard_stop: default_hard_stop(),
            device_free_failures: default_device_free(),
            hash_concurrency: default_hash_concurrency(),
            hash_queue: default_hash_queue(),
            global_failures: default_global_failures(),
            global_window_seconds: default_global_window(),
            global_trickle_seconds: default_global_trickle(),
        }
    }
}

impl AllowlistConfig {
    fn defaults() -> AllowlistConfig {
        AllowlistConfig {
            path: default_allowlist_path(),
        }
    }
}

impl AlertsConfig {
    fn defaults() -> AlertsConfig {
        AlertsConfig {
            webhook_url: None,
            webhook_secret_file: None,
            job_stalled_after_hours: default_job_stalled_after_hours(),
        }
    }
}

fn default_job_stalled_after_hours() -> u64 {
    crate::alerts::conditions::DEFAULT_JOB_STALLED_AFTER_HOURS
}

impl RecoveryConfig {
    fn defaults() -> RecoveryConfig {
        RecoveryConfig {
            cmdline_path: default_cmdline(),
            socket: default_recovery_socket(),
        }
    }
}

fn default_bind() -> SocketAddr {
    DEFAULT_BIND
        .parse()
        .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 9000)))
}
fn default_allowed_hosts() -> Vec<String> {
    vec!["localhost".into(), "127.0.0.1".into(), "[::1]".into()]
}
fn default_body_limit() -> usize {
    8 * 1024
}
fn default_header_read_timeout_ms() -> u64 {
    duration_ms(crate::http::serve::DEFAULT_HEADER_READ_TIMEOUT)
}
fn default_body_read_timeout_ms() -> u64 {
    duration_ms(crate::http::serve::DEFAULT_BODY_READ_TIMEOUT)
}
fn default_max_connections_per_address() -> usize {
    crate::http::serve::DEFAULT_MAX_CONNECTIONS_PER_ADDRESS
}
fn duration_ms(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
fn default_state_dir() -> PathBuf {
    PathBuf::from(DEFAULT_STATE_DIR)
}
fn default_argon2_memory() -> u32 {
    DEFAULT_ARGON2_MEMORY_KIB
}
fn default_argon2_iterations() -> u32 {
    DEFAULT_ARGON2_ITERATIONS
}
fn one() -> u32 {
    1
}
fn default_idle() -> u64 {
    15 * 60
}
fn default_absolute() -> u64 {
    8 * 3600
}
fn default_grace() -> u64 {
    15
}
fn default_reauth() -> u64 {
    5 * 60
}
fn default_ip_binding() -> IpBinding {
    IpBinding::Prefix
}
fn default_max_sessions() -> usize {
    5
}
fn default_ip_burst() -> u32 {
    10
}
fn default_ip_refill_ms() -> u64 {
    6000
}
fn default_free_failures() -> u32 {
    5
}
fn default_base_lock() -> u64 {
    60
}
fn default_max_lock() -> u64 {
    900
}
fn default_hard_stop() -> u32 {
    100
}
fn default_device_free() -> u32 {
    10
}
fn default_hash_concurrency() -> usize {
    2
}
fn default_hash_queue() -> usize {
    16
}
fn default_global_failures() -> usize {
    300
}
fn default_global_window() -> u64 {
    600
}
fn default_global_trickle() -> u64 {
    30
}
fn default_allowlist_path() -> PathBuf {
    PathBuf::from(DEFAULT_ALLOWLIST_PATH)
}
fn default_cmdline() -> PathBuf {
    PathBuf::from("/proc/cmdline")
}
fn default_recovery_socket() -> PathBuf {
    PathBuf::from("/run/nos/recovery.sock")
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::expect;

    fn check_err(text: &str, expect: expect_test::Expect) {
        let err = Config::from_toml_str(text, Path::new("nosd.toml")).unwrap_err();
        expect.assert_eq(&err.to_string());
    }

    #[test]
    fn defaults_are_loopback_and_production_argon2() {
        let config = Config::from_toml_str("", Path::new("nosd.toml")).unwrap();
        assert_eq!(config.http.bind.to_string(), "127.0.0.1:9000");
        assert_eq!(config.argon2.memory_kib, 47104);
        assert_eq!(config.argon2.iterations, 1);
        assert_eq!(config.state.dir, PathBuf::from("/var/lib/nos"));
        assert_eq!(
            config.allowlist.path,
            PathBuf::from("/etc/nos/allowlist.toml")
        );
    }

    #[test]
    fn pools_default_to_35_days_80_90_percent_and_5_minutes() {
        let config = Config::from_toml_str("", Path::new("nosd.toml")).unwrap();
        assert_eq!(config.pools.thresholds, crate::health::DEFAULT_THRESHOLDS);
        assert_eq!(config.pools.refresh_seconds, 300);
        assert_eq!(config.pools.scrub_time_utc_offset_seconds, 0);
        let config = Config::from_toml_str(
            "[pools]\nscrub_overdue_days = 7\nrefresh_seconds = 60\n",
            Path::new("nosd.toml"),
        )
        .unwrap();
        assert_eq!(
            config.pools.thresholds.scrub_overdue_after_seconds,
            7 * 86_400
        );
        assert_eq!(config.pools.refresh_seconds, 60);
    }

    #[test]
    fn the_scrub_schedule_is_off_unless_asked_for() {
        let config = Config::from_toml_str("", Path::new("nosd.toml")).unwrap();
        assert!(!config.scrub.auto);
        let config =
            Config::from_toml_str("[scrub]\nauto = true\n", Path::new("nosd.toml")).unwrap();
        assert!(config.scrub.auto);
        assert!(Config::from_toml_str("[scrub]\nweekday = 1\n", Path::new("nosd.toml")).is_err());
    }

    #[test]
    fn schedules_are_checked_every_minute_unless_told() {
        let config = Config::from_toml_str("", Path::new("nosd.toml")).unwrap();
        assert_eq!(config.schedules.check_seconds, 60);
        let config =
            Config::from_toml_str("[schedules]\ncheck_seconds = 10\n", Path::new("nosd.toml"))
                .unwrap();
        assert_eq!(config.schedules.check_seconds, 10);
        check_err(
            "[schedules]\ncheck_seconds = 5\n",
            expect![
                "invalid config nosd.toml: key `schedules.check_seconds` at line 2 must be 10..=3600"
            ],
        );
        assert!(
            Config::from_toml_str("[schedules]\nauto = true\n", Path::new("nosd.toml")).is_err()
        );
    }

    #[test]
    fn pools_out_of_range_are_refused() {
        check_err(
            "[pools]\nnearly_full_percent = 95\nvery_full_percent = 90\n",
            expect![[r#"
                invalid config nosd.toml: TOML parse error at line 1, column 1
                  |
                1 | [pools]
                  | ^^^^^^^
                pools.nearly_full_percent = 95 and very_full_percent = 90 must be 1 <= nearly <= very <= 100
            "#]],
        );
        check_err(
            "[pools]\nrefresh_seconds = 1\n",
            expect![[r#"
            invalid config nosd.toml: TOML parse error at line 1, column 1
              |
            1 | [pools]
              | ^^^^^^^
            pools.refresh_seconds = 1 must be 10..=86400
        "#]],
        );
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        check_err(
            "[http]\nbind = \"127.0.0.1:1\"\nbnid = 3\n",
            expect![[r#"
                invalid config nosd.toml: TOML parse error at line 3, column 1
                  |
                3 | bnid = 3
                  | ^^^^
                unknown field `bnid`, expected one of `bind`, `allowed_hosts`, `trust_proxy`, `client_ip_header`, `body_limit_bytes`, `header_read_timeout_ms`, `body_read_timeout_ms`, `max_connections_per_address`
            "#]],
        );
    }

    #[test]
    fn argon2_below_floor_is_refused() {
        check_err(
            "[argon2]\nmemory_kib = 8192\niterations = 1\n",
            expect![[r#"
                invalid config nosd.toml: TOML parse error at line 1, column 1
                  |
                1 | [argon2]
                  | ^^^^^^^^
                argon2 cost memory_kib=8192 iterations=1 is below the floor (19 MiB x 2 passes)
            "#]],
        );
    }

    #[test]
    fn range_errors_name_key_and_line() {
        check_err(
            "[http]\nbind = \"127.0.0.1:1\"\n\n[session]\nidle_seconds = 600\nabsolute_seconds = 60\n",
            expect![
                "invalid config nosd.toml: key `session.absolute_seconds` at line 6 must be idle_seconds..=86400"
            ],
        );
    }

    #[test]
    fn alerts_defaults_and_webhook_checks() {
        let config = Config::from_toml_str("", Path::new("nosd.toml")).unwrap();
        assert_eq!(config.alerts.job_stalled_after_hours, 24);
        assert!(config.alerts.webhook_url.is_none());
        let config = Config::from_toml_str(
            "[alerts]\nwebhook_url = \"https://hooks.example/nos\"\nwebhook_secret_file = \"/etc/nos/webhook.secret\"\n",
            Path::new("nosd.toml"),
        )
        .unwrap();
        assert_eq!(
            config.alerts.webhook_url.map(String::from).as_deref(),
            Some("https://hooks.example/nos")
        );
        check_err(
            "[alerts]\nwebhook_url = \"https://hooks.example/nos\"\n",
            expect![
                "invalid config nosd.toml: key `alerts.webhook_url` at line 2 needs webhook_secret_file"
            ],
        );
        check_err(
            "[alerts]\nwebhook_url = \"ftp://hooks.example/nos\"\nwebhook_secret_file = \"/s\"\n",
            expect![[r#"
                invalid config nosd.toml: TOML parse error at line 2, column 15
                  |
                2 | webhook_url = "ftp://hooks.example/nos"
                  |               ^^^^^^^^^^^^^^^^^^^^^^^^^
                `ftp://hooks.example/nos`: the webhook must be http or https
            "#]],
        );
        check_err(
            "[alerts]\nwebhook_url = \"https://user:pw@hooks.example/\"\nwebhook_secret_file = \"/s\"\n",
            expect![[r#"
                invalid config nosd.toml: TOML parse error at line 2, column 15
                  |
                2 | webhook_url = "https://user:pw@hooks.example/"
                  |               ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
                the webhook URL carries a user or password: put the secret in webhook_secret_file
            "#]],
        );
    }

    #[test]
    fn bad_cidr_names_value() {
        check_err(
            "[http]\ntrust_proxy = [\"10.0.0.0/33\"]\n",
            expect![[r#"
                invalid config nosd.toml: TOML parse error at line 2, column 15
                  |
                2 | trust_proxy = ["10.0.0.0/33"]
                  |               ^^^^^^^^^^^^^^^
                `10.0.0.0/33` has an invalid prefix length
            "#]],
        );
    }
}
