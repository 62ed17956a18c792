//! The composition root: opens the state directory once and builds nosd's services from the
//! config — identity ([`AuthService`]), sessions ([`SessionService`]), the storage pipeline
//! ([`PipelineSlot`]), alerts ([`AlertService`]) and schedules ([`ScheduleService`]) — for the HTTP surface and the recovery socket to share.
//!
//! This module decides nothing and owns no table: each service owns its own, and a handler
//! is handed the services it needs, never this whole struct (`http/` derives each from it).

use std::sync::{Arc, Mutex};

use crate::alerts::schedule::ScrubSchedule;
use crate::alerts::webhook::WebhookError;
use crate::alerts::{AlertDeps, AlertService, JobObservation, PoolObservation, Rules};
use crate::audit::{AuditSink, Auditor};
use crate::auth::policy::AuthPolicy;
use crate::auth::service::{AuthDeps, AuthService, OpenError};
use crate::clock::{Clock, UnixSeconds};
use crate::config::{Config, PipelineConfig};
use crate::gather::Observation;
use crate::pipeline::jobs::{JobTable, MAX_JOBS};
use crate::pipeline::port::{AgentPort, PortError};
use crate::pipeline::setup::{PipelineDeps, SetupError};
use crate::pipeline::{Pipeline, PipelineObserver, PipelineSlot, Refusal};
use crate::plugin::PluginHost;
use crate::pools::scrub_schedule::{self, DueScrub, Outcome};
use crate::pools::{PoolService, Report};
use crate::schedules::ScheduleService;
use crate::schedules::runner::{self, Checked};
use crate::session::service::SessionService;
use crate::store::{StateDir, StoreError};
use crate::unpoisoned::lock;

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
    /// The alerts, handed the pools' report at every facts refresh (see [`PoolWatch`]).
    pub alerts: Arc<AlertService>,
    /// The standing approvals, run by [`AppState::check_schedules`].
    pub schedules: Arc<ScheduleService>,
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
        let schedules = ScheduleService::open(store.clone(), auditor.clone(), deps.clock.clone())?;
        Ok(AppState {
            alerts: Arc::new(alerts),
            schedules: Arc::new(schedules),
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
        pipeline.set_observer(Arc::new(PoolWatch {
            pools: self.pools.clone(),
            alerts: self.alerts.clone(),
            order: Mutex::new(()),
        }));
        self.pipeline.set(pipeline.clone());
        Ok(pipeline)
    }

    /// The periodic pool refresh: observes the machine through the pipeline (whose observer
    /// tells the pool registry and the alerts), off the async workers. Without a pipeline there
    /// is nothing to observe.
    pub async fn refresh_pools(&self) -> Result<(), Refusal> {
        let pipeline = self.pipeline.get()?;
        tokio::task::spawn_blocking(move || pipeline.cached_facts(true).map(drop))
            .await
            .map_err(|err| Refusal::AgentUnreachable(PortError::Unreachable(err.to_string())))?
    }

    /// One check of the scrub schedule ([`crate::pools::scrub_schedule::run`]), off the async
    /// workers, with `[pools] scrub_overdue_days` as the threshold. nosd calls it only with
    /// `[scrub] auto = true`.
    pub async fn check_scrub_schedule(&self) -> Result<Vec<(DueScrub, Outcome)>, Refusal> {
        let pipeline = self.pipeline.get()?;
        let pools = self.pools.clone();
        let schedule = ScrubSchedule {
            due_after_seconds: self.config.pools.thresholds.scrub_overdue_after_seconds,
        };
        tokio::task::spawn_blocking(move || scrub_schedule::run(&pipeline, &pools, &schedule))
            .await
            .map_err(|err| Refusal::AgentUnreachable(PortError::Unreachable(err.to_string())))?
    }

    /// One check of the schedules ([`crate::schedules::runner::run`]), off the async workers;
    /// nosd calls it every `[schedules] check_seconds` when it has a pipeline.
    pub async fn check_schedules(&self) -> Result<Vec<(String, Checked)>, Refusal> {
        let pipeline = self.pipeline.get()?;
        let schedules = self.schedules.clone();
        let alerts = self.alerts.clone();
        tokio::task::spawn_blocking(move || runner::run(&pipeline, &schedules, &alerts))
            .await
            .map_err(|err| Refusal::AgentUnreachable(PortError::Unreachable(err.to_string())))?
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

/// The pipeline's one observer: every observation of the machine (a plan, an apply, `GET
/// /api/v1/pools?refresh=true`, the periodic refresh) is reconciled by the pool registry, and
/// the report it makes, with every job, is handed to the alerts at once. It decides nothing.
struct PoolWatch {
    pools: Arc<PoolService>,
    alerts: Arc<AlertService>,
    /// Held across both, so that the alerts judge reports in the order the registry made them.
    order: Mutex<()>,
}

impl PipelineObserver for PoolWatch {
    /// A failure to save the alerts is logged: it never fails the refresh that observed them.
    fn observed(&self, observation: &Observation, jobs: &JobTable, now: UnixSeconds) {
        let _order = lock(&self.order);
        let report = self.pools.observed(observation, now);
        let jobs: Vec<JobObservation> = jobs
            .recent(MAX_JOBS)
            .iter()
            .map(JobObservation::from_record)
            .collect();
        if let Err(err) = self
            .alerts
            .observe(&pool_observations(&report), Some(&jobs))
        {
            tracing::error!(%err, "alerts not saved");
        }
    }

    fn fstab_entry_removed(&self, uuid: &str) {
        self.pools.fstab_entry_removed(uuid);
    }
}

/// What the alerts need of each pool in `report`.
fn pool_observations(report: &Report) -> Vec<PoolObservation<'_>> {
    report
        .pools
        .iter()
        .map(|pool| PoolObservation {
            uuid: &pool.uuid,
            label: pool.label.as_deref(),
            health: &pool.health,
        })
        .collect()
}

/// The alert thresholds from the config; "full" is the pools' very-full threshold.
fn alert_rules(config: &Config) -> Rules {
    Rules {
        job_stalled_after_seconds: config.alerts.job_stalled_after_hours * 3600,
        very_full_percent: config.pools.thresholds.very_full_percent,
    }
}
