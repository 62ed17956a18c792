//! Jobs: the persisted record of every apply, and the per-pool locks.
//!
//! A job's record (state, every step with what was done and undone, and an event list the
//! SSE stream replays) is written to `jobs.json` through `store/` on every change, so it
//! survives nosd. A job that was running when nosd died is marked `interrupted` when the table
//! is opened. Pool locks live only in memory and are held by a guard. A running job's guard is
//! [`JobTable::hold`]-ed by the table and dropped in the same critical section that records the
//! job's end, so whoever sees a job finished finds its pool free; a panic releases it too (the
//! [`Holding`] is dropped by unwinding), and a restart trivially.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::store::{StateDir, StateFile, StoreError};
use crate::unpoisoned::lock;

/// At most this many jobs are kept in `jobs.json`; the oldest finished ones go first.
pub const MAX_JOBS: usize = 200;
/// At most this many events per job; later progress events are dropped (step results never).
pub const MAX_EVENTS: usize = 2000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Running,
    Succeeded,
    /// A step failed and every declared rollback of the steps done before it succeeded.
    RolledBack,
    /// A step failed and a rollback failed or some done step declared none.
    Failed,
    /// nosd stopped while the job ran; what the agent finished is unknown to this record.
    Interrupted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    Pending,
    Running,
    Done,
    Failed,
    /// Never started because an earlier step failed.
    Skipped,
    /// Done, then undone by its rollback.
    RolledBack,
    /// Done; its rollback failed.
    RollbackFailed,
    /// Done; it declared no rollback, so it stays done.
    NotUndone,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRecord {
    pub id: String,
    pub title: String,
    pub state: StepState,
    pub rule_id: Option<String>,
    pub ran: Option<String>,
    pub exit_code: Option<i32>,
    pub output: String,
    pub rollback_ran: Option<String>,
    pub rollback_output: Option<String>,
}

impl StepRecord {
    /// The record of a checked step that has not run yet.
    pub fn pending(checked: &crate::plan::check::CheckedStep) -> StepRecord {
        StepRecord {
            id: checked.step().id.clone(),
            title: checked.step().title.clone(),
            state: StepState::Pending,
            rule_id: None,
            ran: None,
            exit_code: None,
            output: String::new(),
            rollback_ran: None,
            rollback_output: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobEvent {
    pub seq: u64,
    pub at: u64,
    /// `step_started`, `progress`, `step_finished`, `step_failed`, `rollback_started`,
    /// `rollback_finished`, `rollback_failed`, `job_finished`, `job_interrupted`.
    pub kind: String,
    pub step: Option<String>,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    pub id: String,
    pub plan_id: String,
    pub plan_sha256: String,
    pub plugin: String,
    pub pool: String,
    pub username: String,
    pub created_at: u64,
    pub finished_at: Option<u64>,
    pub state: JobState,
    pub steps: Vec<StepRecord>,
    pub events: Vec<JobEvent>,
}

impl JobRecord {
    pub fn push_event(&mut self, at: u64, kind: &str, step: Option<&str>, message: String) {
        if self.events.len() >= MAX_EVENTS && kind == "progress" {
            return;
        }
        let seq = self.events.len() as u64;
        self.events.push(JobEvent {
            seq,
            at,
            kind: kind.to_string(),
            step: step.map(str::to_string),
            message,
        });
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct JobsFile {
    jobs: BTreeMap<String, JobRecord>,
}

/// The job table and the pool locks.
pub struct JobTable {
    store: Arc<StateDir>,
    jobs: Mutex<JobsFile>,
    busy_pools: Arc<Mutex<HashSet<String>>>,
    /// The pool lock of each running job, by job id (taken under the `jobs` lock).
    held: Mutex<HashMap<String, PoolGuard>>,
}

/// A running job's hold on its pool lock: dropping it (at the end of the job's thread, or by
/// unwinding) releases the lock if the job's end has not already.
#[must_use]
pub struct Holding<'a> {
    jobs: &'a JobTable,
    job_id: &'a str,
}

impl Drop for Holding<'_> {
    fn drop(&mut self) {
        lock(&self.jobs.held).remove(self.job_id);
    }
}

/// Holds a pool's lock; dropping it releases the pool.
#[must_use]
pub struct PoolGuard {
    pool: String,
    busy_pools: Arc<Mutex<HashSet<String>>>,
}

impl Drop for PoolGuard {
    fn drop(&mut self) {
        lock(&self.busy_pools).remove(&self.pool);
    }
}

impl JobTable {
    /// Loads `jobs.json`, marking every job still `running` as `interrupted` (and persisting
    /// that); returns the ids so marked.
    pub fn open(store: Arc<StateDir>, now: u64) -> Result<(JobTable, Vec<String>), StoreError> {
        let mut file: JobsFile = store.load(StateFile::Jobs)?.unwrap_or_default();
        let mut interrupted = Vec::new();
        for job in file.jobs.values_mut() {
            if job.state == JobState::Running {
                job.state = JobState::Interrupted;
                job.finished_at = Some(now);
                for step in &mut job.steps {
                    if step.state == StepState::Running {
                        step.output.push_str("\n(nosd stopped while this step ran)");
                    }
                }
                job.push_event(
                    now,
                    "job_interrupted",
                    None,
                    "nosd stopped while this job ran; check the pool before retrying".into(),
                );
                interrupted.push(job.id.clone());
            }
        }
        if !interrupted.is_empty() {
            store.save(StateFile::Jobs, &file)?;
        }
        Ok((
            JobTable {
                store,
                jobs: Mutex::new(file),
                busy_pools: Arc::new(Mutex::new(HashSet::new())),
                held: Mutex::new(HashMap::new()),
            },
            interrupted,
        ))
    }

    /// Takes `pool`'s lock, or `None` when a job already holds it.
    pub fn try_lock_pool(&self, pool: &str) -> Option<PoolGuard> {
        let mut busy = lock(&self.busy_pools);
        if !busy.insert(pool.to_string()) {
            return None;
        }
        Some(PoolGuard {
            pool: pool.to_string(),
            busy_pools: self.busy_pools.clone(),
        })
    }

    pub fn is_pool_locked(&self, pool: &str) -> bool {
        lock(&self.busy_pools).contains(pool)
    }

    /// The newest `limit` jobs, newest first.
    pub fn recent(&self, limit: usize) -> Vec<JobRecord> {
        let file = lock(&self.jobs);
        let mut jobs: Vec<&JobRecord> = file.jobs.values().collect();
        jobs.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        jobs.into_iter().take(limit).cloned().collect()
    }

    pub fn get(&self, id: &str) -> Option<JobRecord> {
        lock(&self.jobs).jobs.get(id).cloned()
    }

    /// Hands job `job_id`'s pool lock to the table until the update that ends the job.
    pub fn hold<'a>(&'a self, job_id: &'a str, guard: PoolGuard) -> Holding<'a> {
        lock(&self.held).insert(job_id.to_string(), guard);
        Holding { jobs: self, job_id }
    }

    /// Changes a job and persists the table (whole-file atomic write). A change that ends the
    /// job releases its held pool lock before anyone can read the job's new state.
    pub fn update(&self, id: &str, change: impl FnOnce(&mut JobRecord)) -> Result<(), StoreError> {
        let mut file = lock(&self.jobs);
        if let Some(job) = file.jobs.get_mut(id) {
            change(job);
            if job.state != JobState::Running {
                lock(&self.held).remove(id);
            }
        }
        self.store.save(StateFile::Jobs, &*file)
    }

    pub fn insert(&self, job: JobRecord) -> Result<(), StoreError> {
        let mut file = lock(&self.jobs);
        while file.jobs.len() >= MAX_JOBS {
            let Some(oldest) = file
                .jobs
                .values()
                .filter(|job| job.state != JobState::Running)
                .min_by_key(|job| job.created_at)
                .map(|job| job.id.clone())
            else {
                break;
            };
            file.jobs.remove(&oldest);
        }
        file.jobs.insert(job.id.clone(), job);
        self.store.save(StateFile::Jobs, &*file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn running(id: &str) -> JobRecord {
        JobRecord {
            id: id.into(),
            plan_id: "plan".into(),
            plan_sha256: "sha".into(),
            plugin: "btrfs-pool".into(),
            pool: "/srv/tank".into(),
            username: "admin".into(),
            created_at: 1,
            finished_at: None,
            state: JobState::Running,
            steps: Vec::new(),
            events: Vec::new(),
        }
    }

    #[test]
    fn a_pool_is_free_as_soon_as_its_job_is_seen_finished() {
        let dir = tempfile::tempdir().unwrap();
        let (jobs, _) = JobTable::open(Arc::new(StateDir::open(dir.path()).unwrap()), 1).unwrap();
        jobs.insert(running("a")).unwrap();
        let holding = jobs.hold("a", jobs.try_lock_pool("/srv/tank").unwrap());
        jobs.update("a", |job| job.events.clear()).unwrap();
        assert!(jobs.is_pool_locked("/srv/tank"), "still running");
        jobs.update("a", |job| job.state = JobState::Succeeded)
            .unwrap();
        assert!(!jobs.is_pool_locked("/srv/tank"), "released with the end");
        drop(holding);

        // A job whose thread ends without recording its end (a panic) releases on drop.
        jobs.insert(running("b")).unwrap();
        let holding = jobs.hold("b", jobs.try_lock_pool("/srv/tank").unwrap());
        assert!(jobs.is_pool_locked("/srv/tank"));
        drop(holding);
        assert!(!jobs.is_pool_locked("/srv/tank"));
    }
}
