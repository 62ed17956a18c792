//! The alert service: the book in `alerts.json`, and every transition recorded and delivered.
//!
//! Each change is made on a copy of the book, written to the state directory (atomic, through
//! `store/`), and only then made current; then every transition is recorded in the audit log
//! (`alert_raised`, `alert_acknowledged`, `alert_cleared`), logged to the journal
//! ([`super::journal`]) and queued for the webhook ([`super::webhook`]), in that order. A
//! failed write changes nothing and is returned; delivery never fails the caller.
//!
//! The book is behind a `std` mutex held across the (small, fsync'd) write, so writes land in
//! the order of the changes. [`AlertService::observe`] is therefore blocking: it is called
//! where the facts are gathered, off the async workers (the pipeline's observer, see
//! `state.rs`); [`AlertService::acknowledge`] moves its write to a blocking thread itself.

use std::io;
use std::sync::{Arc, Mutex, OnceLock};

use super::conditions::{self, JobObservation, PoolObservation, Rules};
use super::journal;
use super::model::{
    AckError, AckOutcome, Alert, AlertBook, Change, Changes, Condition, MAX_ALERTS, Scope,
    Transition,
};
use super::webhook::{self, Webhook, WebhookError, WebhookTarget};
use crate::audit::{AuditKind, Auditor};
use crate::clock::Clock;
use crate::config::AlertsConfig;
use crate::store::{StateDir, StateFile, StoreError};
use crate::unpoisoned::lock;

/// Why an alert operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error(transparent)]
    Ack(#[from] AckError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Everything the service needs.
pub struct AlertDeps {
    pub store: Arc<StateDir>,
    pub auditor: Auditor,
    pub clock: Arc<dyn Clock>,
    pub rules: Rules,
}

pub struct AlertService {
    store: Arc<StateDir>,
    auditor: Auditor,
    clock: Arc<dyn Clock>,
    rules: Rules,
    /// Set once by [`AlertService::start_webhook`] (nosd does at start when `[alerts]
    /// webhook_url` is set); before that, alerts are not posted anywhere.
    webhook: OnceLock<Webhook>,
    /// Held across the write, so writes land in the order of the changes.
    book: Mutex<AlertBook>,
}

impl AlertService {
    /// Loads `alerts.json` (an absent file is an empty book).
    pub fn open(deps: AlertDeps) -> Result<AlertService, StoreError> {
        let book = deps.store.load(StateFile::Alerts)?.unwrap_or_default();
        Ok(AlertService {
            store: deps.store,
            auditor: deps.auditor,
            clock: deps.clock,
            rules: deps.rules,
            webhook: OnceLock::new(),
            book: Mutex::new(book),
        })
    }

    /// Starts delivering to the webhook of `config` (a no-op without `webhook_url`): reads
    /// the secret and starts the delivery task on the current tokio runtime. A second call
    /// keeps the first webhook.
    pub fn start_webhook(&self, config: &AlertsConfig) -> Result<(), WebhookError> {
        let (Some(url), Some(secret_file)) = (&config.webhook_url, &config.webhook_secret_file)
        else {
            return Ok(());
        };
        self.start_webhook_with(WebhookTarget {
            url: url.clone(),
            secret: webhook::read_secret(secret_file)?,
            retry: webhook::DEFAULT_RETRY,
        })
    }

    /// [`AlertService::start_webhook`] with the target given (tests pass a short retry).
    pub fn start_webhook_with(&self, target: WebhookTarget) -> Result<(), WebhookError> {
        if self.webhook.get().is_some() {
            return Ok(());
        }
        let host = target.url.host_str().unwrap_or("").to_owned();
        let started = Webhook::start(target, self.clock.clone())?;
        if self.webhook.set(started).is_ok() {
            tracing::info!(%host, "alert webhook configured");
        }
        Ok(())
    }

    /// One observation of the pools (each with its health) and, when `jobs` is `Some`, of
    /// every job: raises, updates and clears (see [`super::model`]). Blocking (it writes
    /// `alerts.json` when anything changed): call it off the async workers.
    pub fn observe(
        &self,
        pools: &[PoolObservation<'_>],
        jobs: Option<&[JobObservation]>,
    ) -> Result<Changes, StoreError> {
        let now = self.clock.now();
        let (scope, found) = conditions::conditions(now, pools, jobs, &self.rules);
        self.apply(now, &scope, &found)
    }

    /// Raises (or updates) one event found by someone else than the pools' observer (a
    /// schedule's held run); clears nothing. Blocking, like [`AlertService::observe`].
    pub fn raise(&self, event: Condition) -> Result<Changes, StoreError> {
        self.apply(self.clock.now(), &Scope::default(), &[event])
    }

    /// One observation of `scope` that found `found`, persisted and announced.
    fn apply(&self, now: u64, scope: &Scope, found: &[Condition]) -> Result<Changes, StoreError> {
        let mut book = lock(&self.book);
        let mut next = book.clone();
        let changes = next.observe(now, scope, found, MAX_ALERTS);
        if changes.transitions.is_empty() && changes.n_updated == 0 {
            return Ok(changes);
        }
        self.store.save(StateFile::Alerts, &next)?;
        *book = next;
        drop(book);
        self.announce(&changes.transitions, None);
        Ok(changes)
    }

    /// Admin `by` acknowledges alert `id`; the alert as it is afterwards. The write runs on a
    /// blocking thread.
    pub async fn acknowledge(self: &Arc<Self>, id: u64, by: &str) -> Result<Alert, AlertError> {
        let service = self.clone();
        let by = by.to_owned();
        tokio::task::spawn_blocking(move || service.acknowledge_blocking(id, &by))
            .await
            .map_err(|err| {
                AlertError::Store(StoreError::Io {
                    op: "join writer of",
                    path: StateFile::Alerts.name().into(),
                    source: io::Error::other(err.to_string()),
                })
            })?
    }

    fn acknowledge_blocking(&self, id: u64, by: &str) -> Result<Alert, AlertError> {
        let now = self.clock.now();
        let mut book = lock(&self.book);
        let mut next = book.clone();
        let transitions = match next.acknowledge(id, by, now)? {
            AckOutcome::Unchanged(alert) => return Ok(alert),
            AckOutcome::Acknowledged(transitions) => transitions,
        };
        self.store.save(StateFile::Alerts, &next)?;
        *book = next;
        drop(book);
        self.announce(&transitions, Some(by));
        let alert = transitions
            .last()
            .map(|transition| transition.alert.clone())
            .ok_or_else(|| AckError::Unknown { id: id.to_string() })?;
        Ok(alert)
    }

    /// Every alert, open ones first (see [`AlertBook::list`]).
    pub fn list(&self) -> Vec<Alert> {
        lock(&self.book).list().into_iter().cloned().collect()
    }

    /// How many alerts are raised and not acknowledged.
    pub fn n_unacknowledged(&self) -> usize {
        lock(&self.book).n_unacknowledged()
    }

    fn announce(&self, transitions: &[Transition], by: Option<&str>) {
        for transition in transitions {
            let kind = match transition.change {
                Change::Raised => AuditKind::AlertRaised,
                Change::Acknowledged => AuditKind::AlertAcknowledged,
                Change::Cleared => AuditKind::AlertCleared,
            };
            let alert = &transition.alert;
            self.auditor.record(
                kind,
                by,
                None,
                format!(
                    "alert {} {} {} [{}]: {}",
                    alert.id,
                    alert.kind.as_str(),
                    alert.subject.key(),
                    alert.severity.as_str(),
                    alert.message
                ),
            );
            journal::log(transition);
            if let Some(webhook) = self.webhook.get() {
                webhook.send(transition);
            }
        }
    }
}
