//! The composition root: opens the state directory once and builds nosd's services from the
//! config — identity ([`AuthService`]), sessions ([`SessionService`]), the storage pipeline
//! ([`PipelineSlot`]) and alerts ([`AlertService`]) — for the HTTP surface and the recovery socket to share.
//!
//! This module decides nothing and owns no table: each service owns its own, and a handler
//! is handed the services it needs, never this whole struct (`http/` derives each from it).

use std::sync::Arc;

use crate::alerts::webhook::WebhookError;
use crate::alerts::{AlertDeps, AlertService, JobObservation, PoolObservation, Rules};
use crate::audit::{AuditSink, Auditor};
use crate::auth::policy::AuthPolicy;
use crate::auth::service::{AuthDeps, AuthService, OpenError};
use crate::clock::Clock;
use crate::config::{Config, PipelineConfig};
use crate::pipeline::jobs::MAX_JOBS;
use crate::pipeline::port::{AgentPort, PortError};
use crate::pipeline::setup::{PipelineDeps, SetupError};
use crate::pipeline::{Pipeline, PipelineSlot, Refusal};
use crate::plugin::PluginHost;
use crate::pools::PoolService;
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
    /// The pool registry, told of every facts refresh once the pipeline runs.
    pub pools: Arc<PoolService>,
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
        let pools = PoolService::open(store.clone(), &deps.config.pools)?;
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
            pools: Arc::new(pools),
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
        pipeline.set_observer(self.pools.clone());
        self.pipeline.set(pipeline.clone());
        Ok(pipeline)
    }

    /// The periodic pool refresh: observes the machine through the pipeline (which tells the
    /// pool registry), off the async workers. Without a pipeline there is nothing to observe.
    pub async fn refresh_pools(&self) -> Result<(), Refusal> {
        let pipeline = self.pipeline.get()?;
        let observed = pipeline.clone();
        tokio::task::spawn_blocking(move || observed.cached_facts(true).map(drop))
            .await
            .map_err(|err| Refusal::AgentUnreachable(PortError::Unreachable(err.to_string())))??;
        self.observe_alerts(&pipeline).await;
        Ok(())
    }

    /// Hands the pools' health (as the last refresh judged it) and every job to the alerts. A
    /// failure to save the alerts is logged: it never fails the refresh that observed them.
    async fn observe_alerts(&self, pipeline: &Pipeline) {
        let Some(report) = self.pools.report() else {
            return;
        };
        let pools: Vec<PoolObservation<'_>> = report
            .pools
            .iter()
            .map(|pool| PoolObservation {
                uuid: &pool.uuid,
                label: pool.label.as_deref(),
                health: &pool.health,
            })
            .collect();
        let jobs: Vec<JobObservation> = pipeline
            .jobs
            .recent(MAX_JOBS)
            .iter()
            .map(JobObservation::from_record)
            .collect();
        if let Err(err) = self.alerts.observe(&pools, Some(&jobs)).await {
            tracing::error!(%err, "alerts not saved");
        }
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

/// The alert thresholds from the config; "full" is the pools' very-full threshold.
fn alert_rules(config: &Config) -> Rules {
    Rules {
        job_stalled_after_seconds: config.alerts.job_stalled_after_hours * 3600,
        very_full_percent: config.pools.thresholds.very_full_percent,
    }
}
