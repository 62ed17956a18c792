//! The audit sink for auth events (logins, lockouts, revocations, recovery actions).
//!
//! Callers push [`AuditEvent`]s into an [`AuditSink`]; the hash-chained audit log of a later
//! issue implements the same trait. The sink never blocks the caller on a decision: a failed
//! write is logged, not returned, because an auth outcome must not depend on disk space.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Mutex;

use serde::Serialize;

use crate::clock::UnixSeconds;

/// One auth event. Never carries a password, code or token.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AuditEvent {
    pub at: UnixSeconds,
    pub kind: AuditKind,
    pub username: Option<String>,
    pub client: Option<String>,
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
}

/// Where audit events go.
pub trait AuditSink: Send + Sync {
    fn record(&self, event: AuditEvent);
}

/// Appends one JSON object per line to a 0600 file.
pub struct JsonLinesAudit {
    file: Mutex<File>,
}

impl JsonLinesAudit {
    pub fn open(path: &Path) -> std::io::Result<JsonLinesAudit> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)?;
        Ok(JsonLinesAudit {
            file: Mutex::new(file),
        })
    }
}

impl AuditSink for JsonLinesAudit {
    fn record(&self, event: AuditEvent) {
        let Ok(mut line) = serde_json::to_vec(&event) else {
            return;
        };
        line.push(b'\n');
        let mut file = match self.file.lock() {
            Ok(file) => file,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Err(err) = file.write_all(&line) {
            tracing::error!(%err, "cannot append to the audit log");
        }
    }
}

/// Keeps events in memory (tests, and `--check-config`).
#[derive(Default)]
pub struct MemoryAudit {
    events: Mutex<Vec<AuditEvent>>,
}

impl MemoryAudit {
    pub fn events(&self) -> Vec<AuditEvent> {
        match self.events.lock() {
            Ok(events) => events.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

impl AuditSink for MemoryAudit {
    fn record(&self, event: AuditEvent) {
        match self.events.lock() {
            Ok(mut events) => events.push(event),
            Err(poisoned) => poisoned.into_inner().push(event),
        }
    }
}
