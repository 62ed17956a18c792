//! Long operations (balance, replace) as jobs: started by a `run` request whose rule is marked
//! `job`, then polled by id and cancellable.
//!
//! A job is an [`exec::Running`] waited on by its own thread; its result stays here for polling.
//! The table is bounded: at most [`MAX_RUNNING_JOBS`] run at once (more is `Busy`), and only the
//! newest [`MAX_FINISHED_JOBS`] results are kept. Job ids are never reused within one agent run;
//! jobs do not survive an agent restart (the kernel operation may: poll its status rule).
//! This module never judges a command; it receives it already checked and prepared.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use nos_protocol::{JobState, StepResult};

use crate::exec::{Canceller, Running};

/// Jobs running at the same time, at most.
pub const MAX_RUNNING_JOBS: usize = 8;
/// Finished job results kept for polling; older ones are forgotten (`UnknownJob`).
pub const MAX_FINISHED_JOBS: usize = 64;

#[derive(Debug)]
struct Entry {
    rule_id: String,
    started: Instant,
    canceller: Canceller,
    result: Option<StepResult>,
}

#[derive(Debug, Default)]
pub struct Jobs {
    table: Arc<Mutex<Table>>,
}

#[derive(Debug, Default)]
struct Table {
    next_id: u64,
    /// Slots reserved by requests that are about to spawn.
    n_reserved: usize,
    entries: BTreeMap<u64, Entry>,
}

#[derive(Debug, thiserror::Error)]
#[error("{MAX_RUNNING_JOBS} jobs are already running")]
pub struct JobsBusy;

/// A reserved place in the job table, taken before the command is spawned so that a full table
/// never means killing a command that has already started. Dropping it unused frees it.
#[derive(Debug)]
pub struct Slot {
    table: Arc<Mutex<Table>>,
    used: bool,
}

impl Slot {
    /// Starts waiting on `running` in a thread; `on_finish` runs there with the result (audit).
    pub fn start(
        mut self,
        running: Running,
        on_finish: impl FnOnce(&StepResult) + Send + 'static,
    ) -> u64 {
        self.used = true;
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        table.n_reserved = table.n_reserved.saturating_sub(1);
        table.next_id += 1;
        let job_id = table.next_id;
        table.entries.insert(
            job_id,
            Entry {
                rule_id: running.rule_id().to_owned(),
                started: Instant::now(),
                canceller: running.canceller(),
                result: None,
            },
        );
        drop(table);
        let shared = Arc::clone(&self.table);
        let spawned = std::thread::Builder::new()
            .name(format!("job-{job_id}"))
            .spawn(move || {
                let result = running.wait();
                on_finish(&result);
                let mut table = shared.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(entry) = table.entries.get_mut(&job_id) {
                    entry.result = Some(result);
                }
                let finished: Vec<u64> = table
                    .entries
                    .iter()
                    .filter(|(_, entry)| entry.result.is_some())
                    .map(|(id, _)| *id)
                    .collect();
                for old_id in finished
                    .iter()
                    .take(finished.len().saturating_sub(MAX_FINISHED_JOBS))
                {
                    table.entries.remove(old_id);
                }
            });
        if spawned.is_err() {
            // The closure owning `running` was dropped unrun: the process goes on unsupervised and
            // the job stays "running" until the agent restarts.
            // FIXME(issue 3): wait for it inline instead.
            tracing::error!(job_id, "cannot spawn the job thread");
        }
        job_id
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if !self.used {
            let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
            table.n_reserved = table.n_reserved.saturating_sub(1);
        }
    }
}

impl Jobs {
    /// Reserves a place for one more running job, or says the table is full.
    pub fn reserve(&self) -> Result<Slot, JobsBusy> {
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let n_running = table
            .entries
            .values()
            .filter(|entry| entry.result.is_none())
            .count();
        if n_running + table.n_reserved >= MAX_RUNNING_JOBS {
            return Err(JobsBusy);
        }
        table.n_reserved += 1;
        Ok(Slot {
            table: Arc::clone(&self.table),
            used: false,
        })
    }

    pub fn status(&self, job_id: u64) -> Option<JobState> {
        let table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let entry = table.entries.get(&job_id)?;
        Some(match &entry.result {
            Some(result) => JobState::Finished {
                result: result.clone(),
            },
            None => JobState::Running {
                rule_id: entry.rule_id.clone(),
                elapsed_ms: u64::try_from(entry.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            },
        })
    }

    /// Asks a running job to stop; false when the id is unknown.
    pub fn cancel(&self, job_id: u64) -> bool {
        let table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        match table.entries.get(&job_id) {
            Some(entry) => {
                entry.canceller.cancel();
                true
            }
            None => false,
        }
    }
}
