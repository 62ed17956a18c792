//! The limits every plugin call runs under: what each bounds, its unit and default, what
//! happens when it is hit, and what it does not cover.
//!
//! A manifest may ask for a limit (`[limits]` in `plugin.toml`); the host grants the request
//! capped at the `MAX_*` constant, and uses the `DEFAULT_*` constant when it asks for nothing.
//! Every limit is per call: each call gets a fresh `Store`, so nothing carries over.

use std::time::Duration;

/// Fuel: the deterministic CPU budget of one call, in wasmtime fuel units (about one unit per
/// wasm instruction; a tight loop burns about 24 M units per ms on this class of machine).
/// When it runs out the guest traps and the call fails with `PluginError::OutOfFuel`.
/// It does not cover time spent in host functions (the `log` import, lifting results).
pub const DEFAULT_FUEL: u64 = 100_000_000;
/// The most fuel a manifest can obtain (about 80 ms of tight loop).
pub const MAX_FUEL: u64 = 2_000_000_000;

/// Deadline: the wall-clock bound of one call, in milliseconds, enforced by epoch interruption
/// (a ticker thread increments the engine epoch every [`EPOCH_TICK`]). When it passes the guest
/// traps at its next loop header or function entry and the call fails with
/// `PluginError::Deadline`. Resolution is one tick. It does not interrupt host code, and it
/// does not bound compilation, which happens at load.
pub const DEFAULT_DEADLINE_MS: u64 = 1_000;
/// The longest deadline a manifest can obtain.
pub const MAX_DEADLINE_MS: u64 = 10_000;
/// Period of the epoch ticker thread.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Memory: the size of each linear memory of the guest, in bytes, enforced by `StoreLimits` with
/// `trap_on_grow_failure(true)`. Growing past it traps (instead of returning -1 to the guest,
/// which would send std's out-of-memory path into imports we do not provide) and the call fails
/// with `PluginError::MemoryLimit`. It applies to each memory separately, hence [`MAX_MEMORIES`].
/// It does not bound the host's own allocations, such as the copy of a returned plan (which is
/// at most a small multiple of what the guest's memory could hold).
pub const DEFAULT_MEMORY_BYTES: u64 = 32 << 20;
/// The largest memory a manifest can obtain.
pub const MAX_MEMORY_BYTES: u64 = 256 << 20;

/// Linear memories per store (a Rust guest has one; two leaves room for an adapter).
pub const MAX_MEMORIES: usize = 2;
/// Tables per store.
pub const MAX_TABLES: usize = 16;
/// Elements per table.
pub const MAX_TABLE_ELEMENTS: usize = 20_000;
/// Core instances per store (a wasip2 std guest needs a handful).
pub const MAX_INSTANCES: usize = 32;

/// Concurrent calls: how many plugin calls of one host may be in flight at once. Every call
/// instantiates into a slot of the host's pooling allocator, which reserves this many slots up
/// front (address space only: per slot [`MAX_MEMORIES`] memories of 4 GiB plus guard, and
/// [`MAX_TABLES`] tables of [`MAX_TABLE_ELEMENTS`]). A call beyond it fails with
/// `PluginError::Busy` rather than waiting; it does not bound calls queued by callers.
pub const DEFAULT_CONCURRENT_CALLS: u32 = 64;
/// Bytes of each linear memory slot kept mapped between calls and reset in place (only the
/// dirty pages, found with PAGEMAP_SCAN, by memset or a copy of the initial image) instead of
/// being unmapped: a new
/// instance in a warm slot then takes no page faults on its stack, data and first heap pages.
/// It is the same reset wasmtime does to a fresh slot, so no byte of a previous call survives;
/// it costs up to this much resident memory per warm slot (a Rust guest's 1 MiB stack sits at
/// the bottom of its memory, so the heap starts above it). Only pages a guest touched stay
/// resident: sequential calls reuse the slot last used by the same plugin, so a host keeps about
/// one warm slot per plugin; the bound after a burst of concurrent calls is
/// `max_concurrent_calls × MAX_MEMORIES ×` this (256 MiB at the defaults).
pub const KEEP_RESIDENT_BYTES: usize = 2 << 20;
/// The same for each table slot: the whole table (an element is one pointer), so a call does
/// not fault in the function tables it uses.
pub const TABLE_KEEP_RESIDENT_BYTES: usize = MAX_TABLE_ELEMENTS * size_of::<usize>();

/// Wasm stack: the bytes of native stack wasm frames may use in one call. Deeper recursion traps
/// with a stack-overflow trap (`PluginError::StackOverflow`). It does not guarantee the host
/// thread's own stack: callers must run plugins on a thread with at least this much to spare
/// (the 2 MiB default of spawned threads is enough).
pub const MAX_WASM_STACK_BYTES: usize = 512 << 10;

/// Transfer: roughly the bytes a guest may move to the host in one call (wasmtime's "hostcall
/// fuel": the result of the call, or the arguments of one `log` call). Going past it traps
/// while the host lifts the value, before the host holds it, and the call fails with
/// `PluginError::ResultTooLarge`. It bounds the host's allocation for a plugin's result. It does
/// not cover data the host passes in (facts, input), which the host already holds.
pub const MAX_TRANSFER_BYTES: usize = 16 << 20;

/// Component file size, in bytes, read before hashing; larger files are refused at load.
pub const MAX_COMPONENT_BYTES: u64 = 16 << 20;
/// Manifest file size, in bytes; larger manifests are refused at load.
pub const MAX_MANIFEST_BYTES: u64 = 64 << 10;
/// Input JSON passed to a planner, in bytes; larger input is refused before the call.
pub const MAX_INPUT_BYTES: usize = 1 << 20;

/// Log entries kept per call; later entries are counted and dropped, never an error.
pub const MAX_LOG_ENTRIES: usize = 64;
/// Bytes kept of one log message; the rest is cut at a character boundary.
pub const MAX_LOG_MESSAGE_BYTES: usize = 4096;

/// What a manifest asks for; `None` means the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RequestedLimits {
    pub fuel: Option<u64>,
    pub memory_bytes: Option<u64>,
    pub deadline_ms: Option<u64>,
}

/// What a call actually runs under: the request, defaulted and capped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub fuel: u64,
    pub memory_bytes: u64,
    pub deadline_ms: u64,
}

impl Limits {
    /// Grant a request: each value defaulted when absent and capped at its maximum.
    pub fn grant(requested: RequestedLimits) -> Limits {
        Limits {
            fuel: requested.fuel.unwrap_or(DEFAULT_FUEL).min(MAX_FUEL),
            memory_bytes: requested
                .memory_bytes
                .unwrap_or(DEFAULT_MEMORY_BYTES)
                .min(MAX_MEMORY_BYTES),
            deadline_ms: requested
                .deadline_ms
                .unwrap_or(DEFAULT_DEADLINE_MS)
                .min(MAX_DEADLINE_MS),
        }
    }

    /// The deadline in epoch ticks, rounded up, at least one.
    pub fn deadline_ticks(&self) -> u64 {
        let tick_ms = EPOCH_TICK.as_millis() as u64;
        self.deadline_ms.div_ceil(tick_ms).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_defaults_and_caps() {
        assert_eq!(
            Limits::grant(RequestedLimits::default()),
            Limits {
                fuel: DEFAULT_FUEL,
                memory_bytes: DEFAULT_MEMORY_BYTES,
                deadline_ms: DEFAULT_DEADLINE_MS
            }
        );
        let greedy = RequestedLimits {
            fuel: Some(u64::MAX),
            memory_bytes: Some(u64::MAX),
            deadline_ms: Some(u64::MAX),
        };
        assert_eq!(
            Limits::grant(greedy),
            Limits {
                fuel: MAX_FUEL,
                memory_bytes: MAX_MEMORY_BYTES,
                deadline_ms: MAX_DEADLINE_MS
            }
        );
        let modest = RequestedLimits {
            fuel: Some(5),
            memory_bytes: Some(1 << 20),
            deadline_ms: Some(15),
        };
        let granted = Limits::grant(modest);
        assert_eq!((granted.fuel, granted.memory_bytes), (5, 1 << 20));
        assert_eq!(granted.deadline_ticks(), 2);
    }
}
