//! Failure counters and escalating lockout: pure decisions with the clock passed in.
//!
//! A counter belongs to one key (a client IP, a username — known or not — or a trusted
//! device). After `free_failures` consecutive failures the key is locked for
//! `base_lock_seconds`, doubling per further failure up to `max_lock_seconds`; at `hard_stop`
//! consecutive failures it stays locked until a success or a recovery action clears it.
//! Failures while locked are refused before any hashing and are not counted. This module never
//! reads the clock and never does IO.

use serde::{Deserialize, Serialize};

use crate::clock::UnixSeconds;

/// A key's failure history (wall-clock timestamps, so it survives restarts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureCounter {
    pub consecutive: u32,
    pub last_failure_at: UnixSeconds,
    pub locked_until: UnixSeconds,
}

/// The escalation rules for one kind of key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutRules {
    pub free_failures: u32,
    pub base_lock_seconds: u64,
    pub max_lock_seconds: u64,
    /// Consecutive failures that lock until cleared; `None` for keys without a hard stop.
    pub hard_stop: Option<u32>,
}

/// `locked_until` of a hard-stopped key.
pub const LOCKED_UNTIL_CLEARED: UnixSeconds = UnixSeconds::MAX;

/// Retry-After shown for a hard-stopped key: an attacker learns nothing from it.
pub const HARD_STOP_RETRY_AFTER: u64 = 3600;

/// Counters untouched for this long are forgotten.
pub const FORGET_AFTER_SECONDS: u64 = 24 * 3600;

/// Seconds until the key may try again, or `None` when it may try now.
pub fn retry_after(counter: &FailureCounter, now: UnixSeconds) -> Option<u64> {
    if counter.locked_until == LOCKED_UNTIL_CLEARED {
        return Some(HARD_STOP_RETRY_AFTER);
    }
    (counter.locked_until > now).then(|| counter.locked_until - now)
}

/// The counter after one more failure at `now`.
pub fn record_failure(
    counter: &FailureCounter,
    rules: &LockoutRules,
    now: UnixSeconds,
) -> FailureCounter {
    let consecutive = counter.consecutive.saturating_add(1);
    let locked_until = if rules
        .hard_stop
        .is_some_and(|hard_stop| consecutive >= hard_stop)
    {
        LOCKED_UNTIL_CLEARED
    } else if consecutive >= rules.free_failures {
        let doublings = (consecutive - rules.free_failures).min(30);
        let lock_seconds = rules
            .base_lock_seconds
            .saturating_mul(1u64 << doublings)
            .min(rules.max_lock_seconds);
        // A lock is never shortened, even if the wall clock went backwards.
        now.saturating_add(lock_seconds).max(counter.locked_until)
    } else {
        counter.locked_until
    };
    FailureCounter {
        consecutive,
        last_failure_at: now,
        locked_until,
    }
}

/// Whether a counter can be dropped (not locked, nothing recent).
pub fn is_forgettable(counter: &FailureCounter, now: UnixSeconds) -> bool {
    retry_after(counter, now).is_none()
        && now.saturating_sub(counter.last_failure_at) >= FORGET_AFTER_SECONDS
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const RULES: LockoutRules = LockoutRules {
        free_failures: 5,
        base_lock_seconds: 60,
        max_lock_seconds: 900,
        hard_stop: Some(100),
    };

    #[test]
    fn escalation_with_a_virtual_clock() {
        let mut now = 1_000_000;
        let mut counter = FailureCounter::default();
        let mut locks = Vec::new();
        for _ in 0..10 {
            assert_eq!(retry_after(&counter, now), None);
            counter = record_failure(&counter, &RULES, now);
            let lock = retry_after(&counter, now);
            locks.push(lock);
            now += lock.unwrap_or(1);
        }
        assert_eq!(
            locks,
            [
                None,
                None,
                None,
                None,
                Some(60),
                Some(120),
                Some(240),
                Some(480),
                Some(900),
                Some(900)
            ]
        );
    }

    #[test]
    fn hard_stop_holds_until_cleared() {
        let now = 5_000;
        let counter = FailureCounter {
            consecutive: 99,
            last_failure_at: now,
            locked_until: 0,
        };
        let counter = record_failure(&counter, &RULES, now);
        assert_eq!(
            retry_after(&counter, now + 10 * 365 * 86_400),
            Some(HARD_STOP_RETRY_AFTER)
        );
        assert!(!is_forgettable(&counter, now + 10 * 365 * 86_400));
    }

    #[test]
    fn clock_going_back_never_shortens_a_lock() {
        let counter = FailureCounter {
            consecutive: 4,
            last_failure_at: 10_000,
            locked_until: 0,
        };
        let locked = record_failure(&counter, &RULES, 10_000);
        assert_eq!(retry_after(&locked, 10_000), Some(60));
        // The clock jumps back an hour: the lock is longer, not shorter.
        assert_eq!(retry_after(&locked, 10_000 - 3600), Some(3660));
    }

    proptest! {
        #[test]
        fn locks_never_exceed_the_cap_before_the_hard_stop(n_failures in 0u32..99, start in 0u64..1u64<<40) {
            let mut counter = FailureCounter::default();
            for _ in 0..n_failures {
                counter = record_failure(&counter, &RULES, start);
            }
            let lock = retry_after(&counter, start).unwrap_or(0);
            prop_assert!(lock <= RULES.max_lock_seconds);
            prop_assert_eq!(lock > 0, n_failures >= RULES.free_failures);
        }
    }
}
