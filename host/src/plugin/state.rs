//! The per-call store data: the resource limiter, the empty WASI context a std guest needs,
//! and the bounded log the `log` import writes to. A fresh one is built for every call.

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::limits::{
    Limits, MAX_INSTANCES, MAX_LOG_ENTRIES, MAX_LOG_MESSAGE_BYTES, MAX_MEMORIES,
    MAX_TABLE_ELEMENTS, MAX_TABLES,
};

/// The prefix the SDK's panic hook puts before a panic message.
pub const PANIC_PREFIX: &str = "panic: ";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub level: LogLevel,
    pub message: String,
}

/// What a plugin logged during one call, bounded by [`MAX_LOG_ENTRIES`] and
/// [`MAX_LOG_MESSAGE_BYTES`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallLog {
    pub entries: Vec<LogEntry>,
    /// Entries dropped past the cap.
    pub n_dropped: usize,
    /// The last message that came through the panic hook, without its prefix.
    pub panic: Option<String>,
}

impl CallLog {
    pub fn record(&mut self, level: LogLevel, mut message: String) {
        if message.len() > MAX_LOG_MESSAGE_BYTES {
            let mut cut = MAX_LOG_MESSAGE_BYTES;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        if let Some(panic) = message.strip_prefix(PANIC_PREFIX) {
            self.panic = Some(panic.to_owned());
        }
        if self.entries.len() < MAX_LOG_ENTRIES {
            self.entries.push(LogEntry { level, message });
        } else {
            self.n_dropped += 1;
        }
    }
}

/// `StoreLimits` plus a record of the memory growth it refused, so the error says why.
pub struct CallLimiter {
    limits: StoreLimits,
    memory_limit: usize,
    /// The size a refused `memory.grow` asked for, in bytes.
    pub refused_memory_bytes: Option<usize>,
}

impl ResourceLimiter for CallLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_limit {
            self.refused_memory_bytes = Some(desired);
        }
        self.limits.memory_growing(current, desired, maximum)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

pub struct CallState {
    pub limiter: CallLimiter,
    pub log: CallLog,
    wasi: WasiCtx,
    table: ResourceTable,
}

impl CallState {
    pub fn new(limits: &Limits) -> CallState {
        let memory_limit = usize::try_from(limits.memory_bytes).unwrap_or(usize::MAX);
        let store_limits = StoreLimitsBuilder::new()
            .memory_size(memory_limit)
            .memories(MAX_MEMORIES)
            .tables(MAX_TABLES)
            .table_elements(MAX_TABLE_ELEMENTS)
            .instances(MAX_INSTANCES)
            .trap_on_grow_failure(true)
            .build();
        CallState {
            limiter: CallLimiter {
                limits: store_limits,
                memory_limit,
                refused_memory_bytes: None,
            },
            log: CallLog::default(),
            // Empty: stdin closed, stdout/stderr discarded, no environment, no arguments, no
            // preopens. Only the wasi:cli and wasi:io interfaces are linked at all.
            wasi: WasiCtxBuilder::new().build(),
            table: ResourceTable::new(),
        }
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_is_bounded_and_catches_panics() {
        let mut log = CallLog::default();
        log.record(LogLevel::Error, "panic: boom at lib.rs:1".into());
        log.record(LogLevel::Info, "é".repeat(MAX_LOG_MESSAGE_BYTES));
        for _ in 0..MAX_LOG_ENTRIES {
            log.record(LogLevel::Debug, "x".into());
        }
        assert_eq!(log.panic.as_deref(), Some("boom at lib.rs:1"));
        assert_eq!(log.entries.len(), MAX_LOG_ENTRIES);
        assert_eq!(log.n_dropped, 2);
        assert!(log.entries[1].message.len() <= MAX_LOG_MESSAGE_BYTES + '…'.len_utf8());
    }
}
