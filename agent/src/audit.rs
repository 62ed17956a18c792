//! The append-only audit log: one JSON object per line for every request the agent judged, and
//! the same record as a tracing event.
//!
//! The file is opened `O_APPEND` (mode 0600) and each record is written with one `write`.
//! [`AuditLog::append`] then `fdatasync`s, so the record survives a power loss before the caller
//! hears the answer: the pipeline uses it for every refusal, every token change, every managed
//! file and every command whose rule changes state. [`AuditLog::append_lazy`] is for commands
//! of read-only rules (facts, status polls): the record is in the kernel at once (it survives an
//! agent crash) and on disk within [`LAZY_SYNC_INTERVAL`]; it saves one fdatasync (~3 ms on this
//! machine's disk) per read. Secrets never reach the log: bootstrap tokens are redacted and
//! per-agent tokens appear only by id.
//! This module never decides anything; it records what the pipeline decided.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nos_protocol::{Outcome, RequestBody};
use serde::Serialize;

/// One audit record.
#[derive(Debug, Serialize)]
pub struct Record<'a> {
    pub uid: u32,
    pub pid: i32,
    pub token_id: Option<&'a str>,
    /// The request with secrets redacted.
    pub request: serde_json::Value,
    /// `decided` (synced before a state-changing command runs), `allowed` (a command's result),
    /// `job_finished`, `rejected`, `refused` (peer/token), `registered`, `rotated`, `cancel`,
    /// `status` and `facts` (read-only, synced lazily), `error`.
    pub verdict: &'static str,
    pub rule_id: Option<&'a str>,
    pub detail: Option<String>,
    pub outcome: Option<Outcome>,
    pub exit_code: Option<i32>,
    pub duration_ms: Option<u64>,
}

/// Longest time a lazily appended record stays unsynced: 1 s.
pub const LAZY_SYNC_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub struct AuditLog {
    file: Mutex<File>,
    /// Set by a lazy append, cleared by the syncing thread.
    dirty: Arc<AtomicBool>,
}

#[derive(Serialize)]
struct Line<'a> {
    ts_ms: u128,
    #[serde(flatten)]
    record: &'a Record<'a>,
}

impl AuditLog {
    /// Opens (creating, 0600) the log and starts the thread that syncs lazy appends.
    pub fn open(path: &Path) -> std::io::Result<AuditLog> {
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(path)?;
        let dirty = Arc::new(AtomicBool::new(false));
        let sync_file = file.try_clone()?;
        let sync_dirty = Arc::clone(&dirty);
        std::thread::Builder::new()
            .name("audit-sync".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(LAZY_SYNC_INTERVAL);
                    if sync_dirty.swap(false, Ordering::SeqCst)
                        && let Err(err) = sync_file.sync_data()
                    {
                        tracing::error!(%err, "cannot sync the audit log");
                    }
                }
            })?;
        Ok(AuditLog {
            file: Mutex::new(file),
            dirty,
        })
    }

    /// Appends one record of a read-only command; synced within [`LAZY_SYNC_INTERVAL`].
    pub fn append_lazy(&self, record: &Record<'_>) -> std::io::Result<()> {
        drop(self.write(record)?);
        self.dirty.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Appends and syncs one record. An error here is the agent's own failure; the record has
    /// already gone to tracing. The pipeline refuses to run a state-changing command whose
    /// decision could not be recorded.
    pub fn append(&self, record: &Record<'_>) -> std::io::Result<()> {
        let file = self.write(record)?;
        file.sync_data()
    }

    fn write(&self, record: &Record<'_>) -> std::io::Result<std::sync::MutexGuard<'_, File>> {
        tracing::info!(
            uid = record.uid,
            pid = record.pid,
            token_id = record.token_id,
            verdict = record.verdict,
            rule_id = record.rule_id,
            outcome = ?record.outcome,
            exit_code = record.exit_code,
            duration_ms = record.duration_ms,
            detail = record.detail.as_deref(),
            "audit"
        );
        let ts_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let mut line =
            serde_json::to_vec(&Line { ts_ms, record }).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        file.write_all(&line)?;
        Ok(file)
    }
}

/// The request as recorded: the bootstrap token is replaced by a marker.
pub fn redact(body: &RequestBody) -> serde_json::Value {
    match body {
        RequestBody::Register { .. } => {
            serde_json::json!({ "type": "register", "bootstrap_token": "<redacted>" })
        }
        other => serde_json::to_value(other).unwrap_or(serde_json::Value::Null),
    }
}
