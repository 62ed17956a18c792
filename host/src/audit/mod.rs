//! The audit sink: auth events (logins, lockouts, revocations, recovery actions) and the
//! storage pipeline's decisions (plans, verdicts, confirmations, every agent step, plugin
//! grants).
//!
//! Callers push [`AuditEvent`]s into an [`AuditSink`] through an [`Auditor`], which stamps them
//! with the clock. [`HashChainAudit`] is the production
//! sink: append-only JSON lines in the state directory, hash-chained ([`chain`]), fsync'd before
//! `record` returns, rotated by size without breaking the chain. The sink never fails the
//! caller: a failed write is logged, not returned, because an auth outcome must not depend on
//! disk space. The pipeline's state-changing steps are also recorded by the agent's own audit
//! log, which refuses to run a step whose decision it cannot sync.

pub mod chain;

use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::clock::{Clock, UnixSeconds};

/// One auth event. Never carries a password, code or token.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AuditEvent {
    pub at: UnixSeconds,
    pub kind: AuditKind,
    pub username: Option<String>,
    pub client: Option<String>,
    /// The decision, when the event is one (`allowed`, `rejected`, `refused`, `ok`, `failed`…).
    pub verdict: Option<String>,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, Serialize, serde::Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    SetupCompleted,
    LoginSucceeded,
    LoginFailed,
    SecondFactorFailed,
    LockedOut,
    RecoveryCodeUsed,
    SessionRevoked,
    RefreshReuseDetected,
    SessionBindingMismatch,
    PasswordChanged,
    TotpChanged,
    RecoveryCodesRegenerated,
    RecoveryAction,
    PlanCreated,
    PlanApplyRefused,
    PlanConfirmed,
    StepRan,
    RollbackRan,
    JobFinished,
    JobInterrupted,
    PluginGranted,
    PluginRevoked,
    PluginEnabled,
    PluginDisabled,
    AuditLogRepaired,
    /// The auth-policy plugin failed (trap, fuel, deadline); the built-in verdict was used.
    AuthPolicyFailed,
    /// An alert was raised (`alerts`).
    AlertRaised,
    /// An admin acknowledged an alert.
    AlertAcknowledged,
    /// An alert's condition is gone (or, for an event, it was acknowledged).
    AlertCleared,
    /// An admin locked a snapshot (kept out of retention and every delete).
    SnapshotLocked,
    SnapshotUnlocked,
    /// An admin approved a schedule (`schedules`).
    ScheduleCreated,
    /// An admin changed a schedule's terms (its revision went up).
    ScheduleEdited,
    /// An admin revoked a schedule.
    ScheduleRevoked,
    /// A schedule ran: its id, revision, plan sha256 and outcome.
    ScheduleRan,
}

impl AuditKind {
    /// The snake_case name used in the log and in `GET /audit?kind=`.
    pub fn as_str(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|value| value.as_str().map(str::to_string))
            .unwrap_or_default()
    }
}

/// Where audit events go.
pub trait AuditSink: Send + Sync {
    fn record(&self, event: AuditEvent);
}

/// A sink with the clock that stamps its events: the one way nosd builds an [`AuditEvent`].
/// Cheap to clone.
#[derive(Clone)]
pub struct Auditor {
    sink: Arc<dyn AuditSink>,
    clock: Arc<dyn Clock>,
}

impl Auditor {
    pub fn new(sink: Arc<dyn AuditSink>, clock: Arc<dyn Clock>) -> Auditor {
        Auditor { sink, clock }
    }

    /// An identity event (login, lockout, revocation…): no verdict.
    pub fn record(
        &self,
        kind: AuditKind,
        username: Option<&str>,
        client: Option<IpAddr>,
        detail: impl Into<String>,
    ) {
        self.push(kind, username, client, None, detail.into());
    }

    /// A decision (`allowed`, `refused`, `ok`…) taken for `username`, as the pipeline records
    /// plans, grants and steps.
    pub fn decision(
        &self,
        kind: AuditKind,
        username: Option<&str>,
        verdict: &str,
        detail: impl Into<String>,
    ) {
        self.push(kind, username, None, Some(verdict), detail.into());
    }

    fn push(
        &self,
        kind: AuditKind,
        username: Option<&str>,
        client: Option<IpAddr>,
        verdict: Option<&str>,
        detail: String,
    ) {
        self.sink.record(AuditEvent {
            at: self.clock.now(),
            kind,
            username: username.map(str::to_string),
            client: client.map(|ip| ip.to_string()),
            verdict: verdict.map(str::to_string),
            detail,
        });
    }
}

/// Keeps events in memory (tests, and `--check-config`).
#[derive(Default)]
pub struct MemoryAudit {
    events: Mutex<Vec<AuditEvent>>,
}

impl MemoryAudit {
    pub fn events(&self) -> Vec<AuditEvent> {
        crate::unpoisoned::lock(&self.events).clone()
    }
}

impl AuditSink for MemoryAudit {
    fn record(&self, event: AuditEvent) {
        crate::unpoisoned::lock(&self.events).push(event);
    }
}

/// The name of the live audit log in the state directory.
pub const AUDIT_FILE: &str = "audit.jsonl";

/// Default size at which the live log is rotated, in bytes (8 MiB). Rotation renames it to
/// `audit.<next seq, 20 digits>.jsonl`; archives are never deleted by nosd.
pub const DEFAULT_ROTATE_BYTES: u64 = 8 * 1024 * 1024;

/// The hash-chained audit log (see [`chain`]).
pub struct HashChainAudit {
    inner: Mutex<ChainInner>,
    rotate_bytes: u64,
}

struct ChainInner {
    file: crate::store::append::AppendFile,
    head: chain::Head,
}

/// Errors opening or reading the audit log.
#[derive(Debug, thiserror::Error)]
pub enum AuditLogError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("audit log {file}: the last entry is unreadable, cannot continue the chain: {reason}")]
    UnreadableHead { file: String, reason: String },
}

impl HashChainAudit {
    /// Opens `dir/audit.jsonl`, continuing the chain from its last entry (or from the newest
    /// archive's after a rotation). A torn last line (a crash mid-append) is cut off and the
    /// repair recorded as the next entry.
    pub fn open(
        dir: &Path,
        rotate_bytes: u64,
        now: crate::clock::UnixSeconds,
    ) -> Result<HashChainAudit, AuditLogError> {
        let (file, opened) = crate::store::append::AppendFile::open(dir, AUDIT_FILE)?;
        let last_line = match opened.last_line {
            Some(line) => Some((AUDIT_FILE.to_string(), line)),
            None => match archives(dir)?.pop() {
                Some(name) => {
                    let (_, archived) = crate::store::append::AppendFile::open(dir, &name)?;
                    archived.last_line.map(|line| (name, line))
                }
                None => None,
            },
        };
        let head = match last_line {
            None => chain::Head::genesis(),
            Some((file_name, line)) => {
                // The head is taken even from an edited entry: refusing to start would let an
                // edit silence the log, and `verify` still reports the edit.
                let record: chain::Record =
                    serde_json::from_slice(&line).map_err(|err| AuditLogError::UnreadableHead {
                        file: file_name,
                        reason: err.to_string(),
                    })?;
                chain::head_after(&record)
            }
        };
        let audit = HashChainAudit {
            inner: Mutex::new(ChainInner { file, head }),
            rotate_bytes,
        };
        if opened.n_torn_bytes > 0 {
            tracing::warn!(
                n_bytes = opened.n_torn_bytes,
                "cut a torn last line off the audit log"
            );
            audit.record(AuditEvent {
                at: now,
                kind: AuditKind::AuditLogRepaired,
                username: None,
                client: None,
                verdict: None,
                detail: format!(
                    "cut {} bytes of an unterminated last line (a write interrupted by a crash)",
                    opened.n_torn_bytes
                ),
            });
        }
        Ok(audit)
    }

    fn append(&self, event: &AuditEvent) -> Result<(), crate::store::StoreError> {
        let mut inner = crate::unpoisoned::lock(&self.inner);
        if inner.file.len() >= self.rotate_bytes {
            let archive = format!("audit.{:020}.jsonl", inner.head.next_seq);
            inner.file.rotate(&archive)?;
        }
        let (record, line) = chain::seal(&inner.head, event);
        inner.file.append_line(&line)?;
        inner.head = chain::head_after(&record);
        Ok(())
    }
}

impl AuditSink for HashChainAudit {
    fn record(&self, event: AuditEvent) {
        if let Err(err) = self.append(&event) {
            tracing::error!(%err, "cannot append to the audit log");
        }
    }
}

/// Archived audit files in `dir`, oldest first.
pub fn archives(dir: &Path) -> Result<Vec<String>, crate::store::StoreError> {
    let entries = std::fs::read_dir(dir).map_err(|source| crate::store::StoreError::Io {
        op: "list",
        path: dir.to_path_buf(),
        source,
    })?;
    let mut names: Vec<String> = entries
        .flatten()
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| {
            name.strip_prefix("audit.")
                .and_then(|rest| rest.strip_suffix(".jsonl"))
                .is_some_and(|seq| seq.len() == 20 && seq.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect();
    names.sort();
    Ok(names)
}

/// Reads every audit file in `dir`, oldest first, as `(name, bytes)`.
pub fn read_files(dir: &Path) -> Result<Vec<(String, Vec<u8>)>, crate::store::StoreError> {
    let mut names = archives(dir)?;
    names.push(AUDIT_FILE.to_string());
    let mut files = Vec::new();
    for name in names {
        let path = dir.join(&name);
        match std::fs::read(&path) {
            Ok(bytes) => files.push((name, bytes)),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(crate::store::StoreError::Io {
                    op: "read",
                    path,
                    source,
                });
            }
        }
    }
    Ok(files)
}

/// Verifies the whole chain in `dir` (what `nosctl audit verify` prints).
pub fn verify_dir(
    dir: &Path,
) -> Result<Result<chain::Verified, chain::ChainBreak>, crate::store::StoreError> {
    let files = read_files(dir)?;
    Ok(chain::verify(
        files
            .iter()
            .map(|(name, bytes)| (name.as_str(), bytes.as_slice())),
    ))
}

/// Which records `GET /audit` returns.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub username: Option<String>,
    pub kind: Option<String>,
    pub verdict: Option<String>,
    pub since: Option<u64>,
    pub until: Option<u64>,
    /// Substring of `detail`.
    pub text: Option<String>,
}

impl Filter {
    pub fn matches(&self, record: &chain::Record) -> bool {
        self.username
            .as_ref()
            .is_none_or(|username| record.username.as_ref() == Some(username))
            && self.kind.as_ref().is_none_or(|kind| &record.kind == kind)
            && self
                .verdict
                .as_ref()
                .is_none_or(|verdict| record.verdict.as_ref() == Some(verdict))
            && self.since.is_none_or(|since| record.at >= since)
            && self.until.is_none_or(|until| record.at <= until)
            && self
                .text
                .as_ref()
                .is_none_or(|text| record.detail.contains(text.as_str()))
    }
}

/// The newest `limit` records matching `filter`, newest last. Lines that do not parse are
/// skipped here (`verify` is what reports them).
pub fn query(
    dir: &Path,
    filter: &Filter,
    limit: usize,
) -> Result<Vec<chain::Record>, crate::store::StoreError> {
    let mut matched = std::collections::VecDeque::new();
    for (_, bytes) in read_files(dir)? {
        for line in bytes
            .split(|&byte| byte == b'\n')
            .filter(|line| !line.is_empty())
        {
            let Ok(record) = serde_json::from_slice::<chain::Record>(line) else {
                continue;
            };
            if filter.matches(&record) {
                if matched.len() == limit {
                    matched.pop_front();
                }
                matched.push_back(record);
            }
        }
    }
    Ok(matched.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(detail: &str) -> AuditEvent {
        AuditEvent {
            at: 5,
            kind: AuditKind::PlanCreated,
            username: Some("admin".into()),
            client: None,
            verdict: Some("allowed".into()),
            detail: detail.into(),
        }
    }

    #[test]
    fn chain_survives_reopen_rotation_and_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        {
            let audit = HashChainAudit::open(dir.path(), 200, 7).unwrap();
            for idx in 0..5 {
                audit.record(event(&format!("plan {idx}")));
            }
        }
        let audit = HashChainAudit::open(dir.path(), 200, 7).unwrap();
        audit.record(event("after reopen"));
        drop(audit);
        assert!(archives(dir.path()).unwrap().len() >= 2);
        let mut live = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join(AUDIT_FILE))
            .unwrap();
        std::io::Write::write_all(&mut live, b"{\"seq\":99").unwrap();
        let audit = HashChainAudit::open(dir.path(), 200, 7).unwrap();
        audit.record(event("after repair"));
        let verified = verify_dir(dir.path()).unwrap().unwrap();
        assert_eq!(verified.n_records, 8);
        let repaired = query(
            dir.path(),
            &Filter {
                kind: Some("audit_log_repaired".into()),
                ..Filter::default()
            },
            10,
        )
        .unwrap();
        assert_eq!(repaired.len(), 1);
        let newest = query(dir.path(), &Filter::default(), 2).unwrap();
        assert_eq!(newest[1].detail, "after repair");
    }
}
