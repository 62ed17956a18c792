//! nosd's live sessions: the table behind its lock, written through `store/` in the order of a
//! persist lock, with the lifetimes from `[session]`.
//!
//! This is the only holder of the session table; handlers and the login flow reach it through
//! a [`SessionService`] and never see the rest of nosd's state. It knows no HTTP and no
//! account data: who may log in is `auth/`'s decision, this module only starts, looks up and
//! ends sessions.

use std::net::IpAddr;
use std::sync::{Arc, Mutex as StdMutex};

use tokio::sync::Mutex;

use super::store::{IssuedTokens, SessionTable, SessionView, SessionsFile};
use super::token::{SessionRules, Token};
use crate::clock::{Clock, UnixSeconds};
use crate::config::SessionConfig;
use crate::store::{StateDir, StateFile, StoreError};

/// Why a session could not be started or written.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("randomness unavailable: {0}")]
    Random(#[from] getrandom::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The session table of one nosd and the rules it is judged by.
pub struct SessionService {
    table: StdMutex<SessionTable>,
    /// Orders the writes of `sessions.json`: a later snapshot never lands before an earlier one.
    persist_order: Mutex<()>,
    store: Arc<StateDir>,
    clock: Arc<dyn Clock>,
    rules: SessionRules,
    max_per_user: usize,
    reauth_seconds: u64,
}

impl SessionService {
    /// Loads `sessions.json` (an empty table when there is none).
    pub fn open(
        store: Arc<StateDir>,
        clock: Arc<dyn Clock>,
        config: &SessionConfig,
    ) -> Result<SessionService, StoreError> {
        let file: SessionsFile = store.load(StateFile::Sessions)?.unwrap_or_default();
        Ok(SessionService {
            table: StdMutex::new(SessionTable::from_file(file)),
            persist_order: Mutex::new(()),
            store,
            clock,
            rules: SessionRules {
                idle_seconds: config.idle_seconds,
                absolute_seconds: config.absolute_seconds,
                grace_seconds: config.refresh_grace_seconds,
                ip_binding: config.ip_binding,
            },
            max_per_user: config.max_per_user,
            reauth_seconds: config.reauth_seconds,
        })
    }

    pub fn now(&self) -> UnixSeconds {
        self.clock.now()
    }

    pub fn rules(&self) -> SessionRules {
        self.rules
    }

    /// Until when the session's last login or re-authentication unlocks sensitive actions
    /// (`session.reauth_seconds`, default 300, after it).
    pub fn reauth_valid_until(&self, session: &SessionView) -> UnixSeconds {
        session.authenticated_at.saturating_add(self.reauth_seconds)
    }

    /// Runs `action` on the table under its lock.
    pub fn with_table<R>(&self, action: impl FnOnce(&mut SessionTable) -> R) -> R {
        action(&mut crate::unpoisoned::lock(&self.table))
    }

    /// Writes the current table; ordered by the persist lock.
    pub async fn persist(&self) -> Result<(), StoreError> {
        let _ordered = self.persist_order.lock().await;
        let file = self.with_table(|table| table.to_file());
        self.store.save_off_thread(StateFile::Sessions, &file).await
    }

    /// Creates and persists a new session family (never reuses a presented token: no fixation);
    /// evicts the user's oldest beyond `session.max_per_user`.
    pub async fn start(
        &self,
        username: &str,
        user_agent: &str,
        client_ip: IpAddr,
    ) -> Result<IssuedTokens, SessionError> {
        let family_id = hex::encode(&Token::generate()?.encode().as_bytes()[..16]);
        let tokens = fresh_tokens(&family_id)?;
        let now = self.now();
        let max_per_user = self.max_per_user;
        self.with_table(|table| {
            table.create(
                username,
                user_agent,
                client_ip,
                now,
                tokens.clone(),
                max_per_user,
            )
        });
        self.persist().await?;
        Ok(tokens)
    }

    /// Prunes dead sessions; writes the table when that or recorded activity changed it.
    pub async fn housekeeping(&self) -> Result<(), StoreError> {
        let now = self.now();
        let rules = self.rules;
        let (n_pruned, seen_dirty) =
            self.with_table(|table| (table.prune(&rules, now), table.take_seen_dirty()));
        // Activity is written at most once per housekeeping round, so a restart loses at most
        // that much idle-timeout progress (sessions then expire early, never late).
        if n_pruned > 0 || seen_dirty {
            self.persist().await?;
        }
        Ok(())
    }
}

/// Draws fresh session tokens for `family_id`.
pub fn fresh_tokens(family_id: &str) -> Result<IssuedTokens, getrandom::Error> {
    Ok(IssuedTokens {
        family_id: family_id.to_string(),
        access: Token::generate()?,
        refresh: Token::generate()?,
        csrf: Token::generate()?,
    })
}
