//! Wall-clock time as a value passed in.
//!
//! Every decision about lockouts, sessions and TOTP takes `now` as an argument; only this
//! module reads the system clock, and tests swap it for [`ManualClock`] so they never sleep.
//! The flood-control limiter's monotonic instant ([`flood_now`]) is read here too.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the UNIX epoch (wall clock, so it survives restarts in state files).
pub type UnixSeconds = u64;

/// The one source of "now" for the daemon.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> UnixSeconds;
}

/// The real wall clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixSeconds {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|since_epoch| since_epoch.as_secs())
            .unwrap_or(0)
    }
}

/// A clock that only moves when a test moves it.
pub struct ManualClock {
    now: AtomicU64,
}

impl ManualClock {
    pub fn new(start: UnixSeconds) -> ManualClock {
        ManualClock {
            now: AtomicU64::new(start),
        }
    }

    pub fn advance(&self, seconds: u64) {
        self.now.fetch_add(seconds, Ordering::SeqCst);
    }

    pub fn set(&self, now: UnixSeconds) {
        self.now.store(now, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> UnixSeconds {
        self.now.load(Ordering::SeqCst)
    }
}

/// Now on the monotonic clock of the flood-control rate limiter (governor's own, which the
/// limiter reads itself): only flood control uses it, to say how long a throttled client waits.
/// Transient by design: flood control is not persisted and a restart forgets it.
pub fn flood_now() -> <governor::clock::DefaultClock as governor::clock::Clock>::Instant {
    governor::clock::Clock::now(&governor::clock::DefaultClock::default())
}
