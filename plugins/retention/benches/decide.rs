//! The cost of one retention decision over 10 000 snapshots of one share (a year and two
//! months of hourly snapshots, a few locked): time per decision, and the bytes it allocates
//! (counted by a wrapping global allocator, so the figure is exact for this run).
//!
//! `cargo bench --manifest-path plugins/Cargo.toml -p nos-retention --bench decide`

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use nos_retention::{Policy, Snapshot, Timestamp, decide, format_name};

struct Counting;

static ALLOCATED: AtomicUsize = AtomicUsize::new(0);
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call unchanged to the system allocator; the counters are atomics and
// never affect what is returned.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size(), Ordering::Relaxed);
        let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(live, Ordering::Relaxed);
        // SAFETY: the caller's layout contract is passed through to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const N_SNAPSHOTS: i64 = 10_000;
const N_RUNS: u32 = 50;

fn main() {
    let start = 1_735_689_600; // 2025-01-01T00:00:00Z
    let snapshots: Vec<Snapshot> = (0..N_SNAPSHOTS)
        .map(|hour_idx| Snapshot {
            name: format_name(Timestamp(start + hour_idx * 3_600), Some("hourly")),
            locked: hour_idx % 1_000 == 0,
        })
        .collect();
    let now = Timestamp(start + N_SNAPSHOTS * 3_600);
    let decision = decide(&Policy::DEFAULT, now, &snapshots).expect("decide");
    let allocated_before = ALLOCATED.load(Ordering::Relaxed);
    let live_before = LIVE.load(Ordering::Relaxed);
    PEAK.store(live_before, Ordering::Relaxed);
    let begin = Instant::now();
    for _ in 0..N_RUNS {
        black_box(decide(&Policy::DEFAULT, now, black_box(&snapshots)).expect("decide"));
    }
    let per_decision = begin.elapsed() / N_RUNS;
    let allocated = (ALLOCATED.load(Ordering::Relaxed) - allocated_before) / N_RUNS as usize;
    let peak = PEAK.load(Ordering::Relaxed) - live_before;
    println!(
        "retention over {N_SNAPSHOTS} snapshots: {per_decision:?} per decision, {} KiB allocated per decision, {} KiB peak; keeps {}, deletes {}",
        allocated / 1024,
        peak / 1024,
        decision.keep.len(),
        decision.delete.len()
    );
}
