//! nosd's identity state: the account and counter tables behind their locks, the password
//! hasher, the transient throttles (flood control, the global breaker), the pending TOTP
//! enrolments and first-run setup, and the auth-policy plugin.
//!
//! The flows in `login`, `setup` and the HTTP routes take an [`AuthService`] (and, to start a
//! session, a [`crate::session::service::SessionService`]); nothing here knows HTTP, and this
//! module decides nothing: the flows do. Every persisted table has an in-memory copy guarded by
//! its own lock and is written through `store/` while that lock is held, so writes land in order.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use governor::{DefaultKeyedRateLimiter, Quota};
use tokio::sync::Mutex;

use super::breaker::{Breaker, BreakerRules};
use super::lockout::LockoutRules;
use super::password::Hasher;
use super::policy::AuthPolicy;
use super::{AuthError, LimitsFile, Notice, UsersFile};
use crate::audit::{AuditKind, Auditor};
use crate::clock::{Clock, UnixSeconds};
use crate::config::{Argon2Config, LimitsConfig};
use crate::session::token::TokenHash;
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

/// Why the state directory's tables cannot be opened (`state::StartError` is this type).
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// A `[limits]` value that cannot make a rate limiter (zero).
    #[error("invalid limits: {0}")]
    Limits(&'static str),
}

/// Everything the identity flows read and change.
pub struct AuthService {
    pub hasher: Hasher,
    pub users: Mutex<UsersFile>,
    pub limits: Mutex<LimitsFile>,
    pub policy: Option<Arc<dyn AuthPolicy>>,
    pub auditor: Auditor,
    /// TOTP secrets handed out by `/auth/totp/enrol`, by username, until confirmed.
    pub pending_totp: StdMutex<HashMap<String, Vec<u8>>>,
    store: Arc<StateDir>,
    clock: Arc<dyn Clock>,
    limits_config: LimitsConfig,
    setup: StdMutex<SetupState>,
    flood: DefaultKeyedRateLimiter<RateKey>,
    breaker: StdMutex<Breaker>,
}

/// What [`AuthService::open`] needs.
pub struct AuthDeps {
    pub store: Arc<StateDir>,
    pub clock: Arc<dyn Clock>,
    pub auditor: Auditor,
    pub policy: Option<Arc<dyn AuthPolicy>>,
    pub argon2: Argon2Config,
    pub limits: LimitsConfig,
}

impl AuthService {
    /// Loads `users.json` and `limits.json` (pruning stale counters) and builds the hasher and
    /// the throttles.
    pub fn open(deps: AuthDeps) -> Result<AuthService, OpenError> {
        let AuthDeps {
            store,
            clock,
            auditor,
            policy,
            argon2,
            limits: limits_config,
        } = deps;
        let users: UsersFile = store.load(StateFile::Users)?.unwrap_or_default();
        let mut limits: LimitsFile = store.load(StateFile::Limits)?.unwrap_or_default();
        limits.prune(clock.now());
        let hasher = Hasher::new(
            argon2,
            limits_config.hash_concurrency,
            limits_config.hash_queue,
        )
        .map_err(AuthError::from)?;
        let burst = NonZeroU32::new(limits_config.ip_burst).ok_or(OpenError::Limits("ip_burst"))?;
        let quota = Quota::with_period(Duration::from_millis(limits_config.ip_refill_ms))
            .ok_or(OpenError::Limits("ip_refill_ms"))?
            .allow_burst(burst);
        Ok(AuthService {
            hasher,
            users: Mutex::new(users),
            limits: Mutex::new(limits),
            policy,
            auditor,
            pending_totp: StdMutex::new(HashMap::new()),
            store,
            clock,
            limits_config,
            setup: StdMutex::new(SetupState {
                token_hash: None,
                expires_at: 0,
                pending_totp: None,
            }),
            flood: DefaultKeyedRateLimiter::keyed(quota),
            breaker: StdMutex::new(Breaker::default()),
        })
    }

    pub fn now(&self) -> UnixSeconds {
        self.clock.now()
    }

    /// The state directory, for the setup-token file.
    pub fn store(&self) -> &StateDir {
        &self.store
    }

    pub fn user_rules(&self) -> LockoutRules {
        let limits = &self.limits_config;
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

    pub fn device_rules(&self) -> LockoutRules {
        LockoutRules {
            free_failures: self.limits_config.device_free_failures,
            hard_stop: None,
            ..self.user_rules()
        }
    }

    pub fn breaker_rules(&self) -> BreakerRules {
        let limits = &self.limits_config;
        BreakerRules {
            threshold: limits.global_failures,
            window_seconds: limits.global_window_seconds,
            trickle_seconds: limits.global_trickle_seconds,
        }
    }

    pub fn with_breaker<R>(&self, action: impl FnOnce(&mut Breaker) -> R) -> R {
        action(&mut crate::unpoisoned::lock(&self.breaker))
    }

    pub fn with_setup<R>(&self, action: impl FnOnce(&mut SetupState) -> R) -> R {
        action(&mut crate::unpoisoned::lock(&self.setup))
    }

    /// Transient flood control; `Err(seconds)` when over the budget.
    pub fn check_flood(&self, key: RateKey) -> Result<(), u64> {
        match self.flood.check_key(&key) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let wait = not_until.wait_time_from(crate::clock::flood_now());
                let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                Err(seconds.max(1))
            }
        }
    }

    /// Records a notice for the account holder and persists it (best effort: logged on error).
    pub async fn notify(&self, username: &str, kind: AuditKind, detail: &str) {
        let mut users = self.users.lock().await;
        let notice = Notice {
            at: self.now(),
            kind,
            detail: detail.to_string(),
        };
        if super::add_notice(&mut users, username, notice)
            && let Err(err) = self.persist_users(&users).await
        {
            tracing::error!(%err, "cannot persist a security notice");
        }
    }

    /// Writes `users.json`; call with the users lock held.
    pub async fn persist_users(&self, users: &UsersFile) -> Result<(), StoreError> {
        self.store.save_off_thread(StateFile::Users, users).await
    }

    /// Writes `limits.json`; call with the limits lock held.
    pub async fn persist_limits(&self, limits: &LimitsFile) -> Result<(), StoreError> {
        self.store.save_off_thread(StateFile::Limits, limits).await
    }

    /// Prunes stale counters (writing `limits.json` when that changed it) and the flood table.
    pub async fn housekeeping(&self) -> Result<(), StoreError> {
        let now = self.now();
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
