//! The daemon's shared state: config, clock, stores and limiters, behind one `Arc`.
//!
//! Every persisted table has an in-memory copy guarded by its own lock and is written through
//! `store/` while that lock (or its persist lock) is held, so writes land in order. This
//! module never decides anything; the flows in `auth/` and `http/` do.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use tokio::sync::Mutex;

use crate::audit::{AuditEvent, AuditKind, AuditSink};
use crate::auth::password::Hasher;
use crate::auth::policy::AuthPolicy;
use crate::auth::{AuthError, LimitsFile, UsersFile, lockout::LockoutRules};
use crate::clock::Clock;
use crate::config::Config;
use crate::session::store::{SessionTable, SessionsFile};
use crate::session::token::{SessionRules, TokenHash};
use crate::store::{StateDir, StateFile, StoreError};

/// What the transient flood control is keyed by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RateKey {
    /// A client network (IPv4 address, or IPv6 /64).
    Client(IpAddr),
    /// A trusted device: its own budget, whatever the IP.
    Device(TokenHash),
    /// First-run setup attempts from a client network.
    Setup(IpAddr),
}

/// The pending first-run setup.
pub struct SetupState {
    pub token_hash: Option<TokenHash>,
    pub expires_at: u64,
    /// TOTP secret handed out by `/setup/totp`, confirmed by `/setup/admin`.
    pub pending_totp: Option<Vec<u8>>,
}

pub struct Shared {
    pub config: Config,
    pub clock: Arc<dyn Clock>,
    pub store: Arc<StateDir>,
    pub hasher: Hasher,
    pub audit: Arc<dyn AuditSink>,
    pub policy: Option<Arc<dyn AuthPolicy>>,
    pub users: Mutex<UsersFile>,
    pub limits: Mutex<LimitsFile>,
    pub sessions: StdMutex<SessionTable>,
    pub sessions_persist: Mutex<()>,
    pub setup: StdMutex<SetupState>,
    pub flood: DefaultKeyedRateLimiter<RateKey>,
    /// TOTP secrets handed out by `/auth/totp/enrol`, by username, until confirmed.
    pub pending_totp: StdMutex<std::collections::HashMap<String, Vec<u8>>>,
    pub breaker: StdMutex<crate::auth::breaker::Breaker>,
    pub recovery_active: bool,
    /// The storage pipeline, when nosd is configured to reach an agent (set once at start).
    pub pipeline: std::sync::OnceLock<Arc<crate::pipeline::Pipeline>>,
}

/// Cheap to clone; handed to every handler.
#[derive(Clone)]
pub struct AppState(pub Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// Everything needed to build an [`AppState`].
pub struct StateDeps {
    pub config: Config,
    pub clock: Arc<dyn Clock>,
    pub audit: Arc<dyn AuditSink>,
    pub policy: Option<Arc<dyn AuthPolicy>>,
    pub recovery_active: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("invalid limits: {0}")]
    Limits(String),
}

impl AppState {
    /// Opens the state directory (taking its lock) and loads every table.
    pub fn open(deps: StateDeps) -> Result<AppState, StartError> {
        let store = Arc::new(StateDir::open(&deps.config.state.dir)?);
        let users: UsersFile = store.load(StateFile::Users)?.unwrap_or_default();
        let mut limits: LimitsFile = store.load(StateFile::Limits)?.unwrap_or_default();
        limits.prune(deps.clock.now());
        let sessions: SessionsFile = store.load(StateFile::Sessions)?.unwrap_or_default();
        let limits_config = deps.config.limits;
        let hasher = Hasher::new(
            deps.config.argon2,
            limits_config.hash_concurrency,
            limits_config.hash_queue,
        )
        .map_err(AuthError::from)?;
        let burst = NonZeroU32::new(limits_config.ip_burst)
            .ok_or_else(|| StartError::Limits("ip_burst".into()))?;
        let quota = Quota::with_period(Duration::from_millis(limits_config.ip_refill_ms))
            .ok_or_else(|| StartError::Limits("ip_refill_ms".into()))?
            .allow_burst(burst);
        let shared = Shared {
            clock: deps.clock,
            store,
            hasher,
            audit: deps.audit,
            policy: deps.policy,
            users: Mutex::new(users),
            limits: Mutex::new(limits),
            sessions: StdMutex::new(SessionTable::from_file(sessions)),
            sessions_persist: Mutex::new(()),
            setup: StdMutex::new(SetupState {
                token_hash: None,
                expires_at: 0,
                pending_totp: None,
            }),
            flood: DefaultKeyedRateLimiter::keyed(quota),
            pending_totp: StdMutex::new(Default::default()),
            breaker: StdMutex::new(Default::default()),
            recovery_active: deps.recovery_active,
            pipeline: std::sync::OnceLock::new(),
            config: deps.config,
        };
        Ok(AppState(Arc::new(shared)))
    }

    pub fn now(&self) -> u64 {
        self.clock.now()
    }

    pub fn session_rules(&self) -> SessionRules {
        let session = &self.config.session;
        SessionRules {
            idle_seconds: session.idle_seconds,
            absolute_seconds: session.absolute_seconds,
            grace_seconds: session.refresh_grace_seconds,
            ip_binding: session.ip_binding,
        }
    }

    pub fn user_rules(&self) -> LockoutRules {
        let limits = &self.config.limits;
        LockoutRules {
            free_failures: limits.free_failures,
            base_lock_seconds: limits.base_lock_seconds,
            max_lock_seconds: limits.max_lock_seconds,
            hard_stop: Some(limits.user_hard_stop),
        }
    }

    pub fn ip_rules(&self) -> LockoutRules {
        LockoutRules {
            hard_stop: None,
            ..self.user_rules()
        }
    }

    pub fn breaker_rules(&self) -> crate::auth::breaker::BreakerRules {
        let limits = &self.config.limits;
        crate::auth::breaker::BreakerRules {
            threshold: limits.global_failures,
            window_seconds: limits.global_window_seconds,
            trickle_seconds: limits.global_trickle_seconds,
        }
    }

    pub fn with_breaker<R>(
        &self,
        action: impl FnOnce(&mut crate::auth::breaker::Breaker) -> R,
    ) -> R {
        let mut breaker = match self.breaker.lock() {
            Ok(breaker) => breaker,
            Err(poisoned) => poisoned.into_inner(),
        };
        action(&mut breaker)
    }

    pub fn device_rules(&self) -> LockoutRules {
        LockoutRules {
            free_failures: self.config.limits.device_free_failures,
            hard_stop: None,
            ..self.user_rules()
        }
    }

    /// Transient flood control; `Err(seconds)` when over the budget.
    pub fn check_flood(&self, key: RateKey) -> Result<(), u64> {
        match self.flood.check_key(&key) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                Err(seconds.max(1))
            }
        }
    }

    pub fn audit(
        &self,
        kind: AuditKind,
        username: Option<&str>,
        client: Option<IpAddr>,
        detail: impl Into<String>,
    ) {
        self.audit.record(AuditEvent {
            at: self.now(),
            kind,
            username: username.map(str::to_string),
            client: client.map(|ip| ip.to_string()),
            verdict: None,
            detail: detail.into(),
        });
    }

    /// Records a notice for the account holder and persists it (best effort: logged on error).
    pub async fn notify(&self, username: &str, kind: AuditKind, detail: &str) {
        let mut users = self.users.lock().await;
        let notice = crate::auth::Notice {
            at: self.now(),
            kind,
            detail: detail.to_string(),
        };
        if crate::auth::add_notice(&mut users, username, notice)
            && let Err(err) = self.persist_users(&users).await
        {
            tracing::error!(%err, "cannot persist a security notice");
        }
    }

    /// Writes `users.json`; call with the users lock held.
    pub async fn persist_users(&self, users: &UsersFile) -> Result<(), StoreError> {
        let bytes = self.store.encode(StateFile::Users, users)?;
        self.write_blocking(StateFile::Users, bytes).await
    }

    /// Writes `limits.json`; call with the limits lock held.
    pub async fn persist_limits(&self, limits: &LimitsFile) -> Result<(), StoreError> {
        let bytes = self.store.encode(StateFile::Limits, limits)?;
        self.write_blocking(StateFile::Limits, bytes).await
    }

    /// Writes the current session table; ordered by the persist lock.
    pub async fn persist_sessions(&self) -> Result<(), StoreError> {
        let _ordered = self.sessions_persist.lock().await;
        let file = self.with_sessions(|table| table.to_file());
        let bytes = self.store.encode(StateFile::Sessions, &file)?;
        self.write_blocking(StateFile::Sessions, bytes).await
    }

    pub fn with_sessions<R>(&self, action: impl FnOnce(&mut SessionTable) -> R) -> R {
        let mut table = match self.sessions.lock() {
            Ok(table) => table,
            Err(poisoned) => poisoned.into_inner(),
        };
        action(&mut table)
    }

    pub fn with_setup<R>(&self, action: impl FnOnce(&mut SetupState) -> R) -> R {
        let mut setup = match self.setup.lock() {
            Ok(setup) => setup,
            Err(poisoned) => poisoned.into_inner(),
        };
        action(&mut setup)
    }

    async fn write_blocking(&self, file: StateFile, bytes: Vec<u8>) -> Result<(), StoreError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.write(file, &bytes))
            .await
            .map_err(|err| StoreError::Io {
                op: "join writer of",
                path: file.name().into(),
                source: std::io::Error::other(err.to_string()),
            })?
    }

    /// Housekeeping: prunes dead sessions, stale counters and the flood table.
    pub async fn housekeeping(&self) -> Result<(), StoreError> {
        let now = self.now();
        let rules = self.session_rules();
        let (n_pruned, seen_dirty) =
            self.with_sessions(|table| (table.prune(&rules, now), table.take_seen_dirty()));
        // Activity is written at most once per housekeeping round, so a restart loses at most
        // that much idle-timeout progress (sessions then expire early, never late).
        if n_pruned > 0 || seen_dirty {
            self.persist_sessions().await?;
        }
        {
            let mut limits = self.limits.lock().await;
            let before = (limits.ips.len(), limits.users.len(), limits.devices.len());
            limits.prune(now);
            if before != (limits.ips.len(), limits.users.len(), limits.devices.len()) {
                self.persist_limits(&limits).await?;
            }
        }
        self.flood.retain_recent();
        self.flood.shrink_to_fit();
        Ok(())
    }
}
