//! The composition root: opens the state directory once and builds nosd's services from the
//! config — identity ([`AuthService`]), sessions ([`SessionService`]), the storage pipeline
//! ([`PipelineSlot`]) and alerts ([`AlertService`]) — for the HTTP surface and the recovery socket to share.
//!
//! This module decides nothing and owns no table: each service owns its own, and a handler
//! is handed the services it needs, never this whole struct (`http/` derives each from it).

use std::sync::Arc;

use crate::alerts::webhook::WebhookError;
use crate::alerts::{AlertDeps, AlertService, Rules};
use crate::audit::{AuditSink, Auditor};
use crate::auth::policy::AuthPolicy;
use crate::auth::service::{AuthDeps, AuthService, OpenError};
use crate::clock::Clock;
use crate::config::{Config, PipelineConfig};
use crate::pipeline::port::AgentPort;
use crate::pipeline::setup::{PipelineDeps, SetupError};
use crate::pipeline::{Pipeline, PipelineSlot};
use crate::plugin::PluginHost;
use crate::session::service::SessionService;
use crate::store::{StateDir, StoreError};

/// nosd's services. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Arc<StateDir>,
    pub auditor: Auditor,
    pub auth: Arc<AuthService>,
    pub sessions: Arc<SessionService>,
    pub pipeline: Arc<PipelineSlot>,
    pub alerts: Arc<AlertService>,
    clock: Arc<dyn Clock>,
}

/// Everything needed to build an [`AppState`].
pub struct StateDeps {
    pub config: Config,
    pub clock: Arc<dyn Clock>,
    pub audit: Arc<dyn AuditSink>,
    pub policy: Option<Arc<dyn AuthPolicy>>,
}

/// Why nosd's state cannot be opened (a store error names the file; never its contents).
pub type StartError = OpenError;

impl AppState {
    /// Opens the state directory (taking its lock) and loads every table.
    pub fn open(deps: StateDeps) -> Result<AppState, StartError> {
        let store = Arc::new(StateDir::open(&deps.config.state.dir)?);
        let auditor = Auditor::new(deps.audit, deps.clock.clone());
        let auth = AuthService::open(AuthDeps {
            store: store.clone(),
            clock: deps.clock.clone(),
            auditor: auditor.clone(),
            policy: deps.policy,
            argon2: deps.config.argon2,
            limits: deps.config.limits,
        })?;
        let sessions =
            SessionService::open(store.clone(), deps.clock.clone(), &deps.config.session)?;
        let alerts = AlertService::open(AlertDeps {
            store: store.clone(),
            auditor: auditor.clone(),
            clock: deps.clock.clone(),
            rules: alert_rules(&deps.config),
        })?;
        Ok(AppState {
            alerts: Arc::new(alerts),
            config: Arc::new(deps.config),
            store,
            auditor,
            auth: Arc::new(auth),
            sessions: Arc::new(sessions),
            pipeline: Arc::new(PipelineSlot::default()),
            clock: deps.clock,
        })
    }

    /// Builds the storage pipeline (see [`crate::pipeline::setup::build`]) and installs it;
    /// blocks (it loads the planners).
    pub fn start_pipeline(
        &self,
        config: &PipelineConfig,
        port: Arc<dyn AgentPort>,
        host: &PluginHost,
    ) -> Result<Arc<Pipeline>, SetupError> {
        let pipeline = crate::pipeline::setup::build(
            PipelineDeps {
                allowlist_path: &self.config.allowlist.path,
                store: self.store.clone(),
                auditor: self.auditor.clone(),
                clock: self.clock.clone(),
            },
            config,
            port,
            host,
        )?;
        self.pipeline.set(pipeline.clone());
        Ok(pipeline)
    }

    /// Starts the alert webhook of `[alerts]` (nothing without `webhook_url`); needs the tokio
    /// runtime.
    pub fn start_alert_webhook(&self) -> Result<(), WebhookError> {
        self.alerts.start_webhook(&self.config.alerts)
    }

    /// Housekeeping: prunes dead sessions, stale counters and the flood table.
    pub async fn housekeeping(&self) -> Result<(), StoreError> {
        self.sessions.housekeeping().await?;
        self.auth.housekeeping().await
    }
}

/// The alert thresholds from the config; the full threshold is the health module's.
fn alert_rules(config: &Config) -> Rules {
    Rules {
        job_stalled_after_seconds: config.alerts.job_stalled_after_hours * 3600,
        very_full_percent: crate::health::DEFAULT_THRESHOLDS.very_full_percent,
    }
}
