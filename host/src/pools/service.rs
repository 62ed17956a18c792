//! [`PoolService`]: the registry in memory and in `pools.json`, and the latest [`Report`],
//! updated at every facts refresh (told by the pipeline's observer, `state::PoolWatch`, which
//! then hands the report to the alerts).

use std::sync::{Arc, Mutex};

use crate::clock::UnixSeconds;
use crate::config::PoolsConfig;
use crate::gather::Observation;
use crate::store::{StateDir, StateFile, StoreError};
use crate::unpoisoned::lock;

use super::reconcile::{Report, Settings, reconcile};
use super::registry::Registry;

pub struct PoolService {
    store: Arc<StateDir>,
    settings: Settings,
    inner: Mutex<Inner>,
}

struct Inner {
    registry: Registry,
    /// `None` until the first observation.
    report: Option<Report>,
}

impl PoolService {
    /// Loads `pools.json` (an empty registry when there is none).
    pub fn open(store: Arc<StateDir>, config: &PoolsConfig) -> Result<PoolService, StoreError> {
        let registry: Registry = store.load(StateFile::Pools)?.unwrap_or_default();
        Ok(PoolService {
            store,
            settings: Settings {
                thresholds: config.thresholds,
                scrub_time_utc_offset_seconds: config.scrub_time_utc_offset_seconds,
            },
            inner: Mutex::new(Inner {
                registry,
                report: None,
            }),
        })
    }

    /// The report of the latest observation, if there was one.
    pub fn report(&self) -> Option<Report> {
        lock(&self.inner).report.clone()
    }

    /// Acknowledges pool `uuid`'s grown error counters: its latest reading becomes the
    /// baseline (see [`Registry::accept_counters`]), saved before this returns. `Ok(false)` for
    /// an unknown pool or one never read. The report shows it at the next observation.
    pub fn accept_counters(&self, uuid: &str) -> Result<bool, StoreError> {
        let mut inner = lock(&self.inner);
        let mut registry = inner.registry.clone();
        if !registry.accept_counters(uuid) {
            return Ok(false);
        }
        self.store.save(StateFile::Pools, &registry)?;
        inner.registry = registry;
        Ok(true)
    }

    /// The registry as it is now.
    pub fn registry(&self) -> Registry {
        lock(&self.inner).registry.clone()
    }

    /// Reconciles and keeps the report, and returns it; saves the registry when it changed. A
    /// failed save is logged and retried at the next observation (the in-memory registry keeps
    /// the change).
    pub fn observed(&self, observation: &Observation, now: UnixSeconds) -> Report {
        let mut inner = lock(&self.inner);
        let reconciled = reconcile(&inner.registry, observation, &self.settings, now);
        let on_disk_stale = reconciled.registry != inner.registry || inner.report.is_none();
        if on_disk_stale && let Err(err) = self.store.save(StateFile::Pools, &reconciled.registry) {
            tracing::error!(%err, "cannot save the pool registry");
        }
        inner.registry = reconciled.registry;
        inner.report = Some(reconciled.report.clone());
        reconciled.report
    }

    /// Forgets the pool (exported or destroyed) and saves the registry; the next observation
    /// shows its disks as importable if they still hold it. A failed save is logged: the pool
    /// is forgotten in memory, and the next change saves again.
    pub fn fstab_entry_removed(&self, uuid: &str) {
        let mut inner = lock(&self.inner);
        let mut registry = inner.registry.clone();
        if !registry.forget(uuid) {
            return;
        }
        tracing::info!(%uuid, "pool forgotten: its fstab entry was removed");
        if let Err(err) = self.store.save(StateFile::Pools, &registry) {
            tracing::error!(%err, "cannot save the pool registry");
        }
        inner.registry = registry;
        if let Some(report) = &mut inner.report {
            report.pools.retain(|pool| pool.uuid != uuid);
        }
    }
}
