//! The global breaker against distributed spraying: pure, clock passed in.
//!
//! Per-IP and per-username locks cap each key, but many source addresses multiply the budget
//! (50 addresses × 5 free failures). When more than `threshold` failures from untrusted
//! sources land within `window_seconds`, the breaker trips: until `window_seconds` pass without
//! such a failure, each client network may try once per `trickle_seconds`. Trusted devices are
//! exempt. State lives in memory only (a restart resets it; the per-key counters persist).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use crate::clock::UnixSeconds;

/// Most client networks remembered while tripped; beyond it the oldest are forgotten.
pub const MAX_TRACKED_CLIENTS: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerRules {
    /// Untrusted failures within the window that trip the breaker (default 300).
    pub threshold: usize,
    /// The window, and the quiet time that resets the breaker (default 600 s).
    pub window_seconds: u64,
    /// While tripped, one attempt per client network per this many seconds (default 30).
    pub trickle_seconds: u64,
}

#[derive(Debug, Default)]
pub struct Breaker {
    failures: VecDeque<UnixSeconds>,
    last_attempt: HashMap<IpAddr, UnixSeconds>,
}

impl Breaker {
    fn forget_old(&mut self, rules: &BreakerRules, now: UnixSeconds) {
        while self
            .failures
            .front()
            .is_some_and(|at| now.saturating_sub(*at) >= rules.window_seconds)
        {
            self.failures.pop_front();
        }
    }

    pub fn is_tripped(&mut self, rules: &BreakerRules, now: UnixSeconds) -> bool {
        self.forget_old(rules, now);
        self.failures.len() >= rules.threshold
    }

    /// Seconds the client must wait, or 0; an admitted attempt is remembered.
    pub fn admit(&mut self, rules: &BreakerRules, client: IpAddr, now: UnixSeconds) -> u64 {
        if !self.is_tripped(rules, now) {
            self.last_attempt.clear();
            return 0;
        }
        if let Some(last) = self.last_attempt.get(&client) {
            let next_allowed = last.saturating_add(rules.trickle_seconds);
            if now < next_allowed {
                return next_allowed - now;
            }
        }
        if self.last_attempt.len() >= MAX_TRACKED_CLIENTS {
            self.last_attempt
                .retain(|_, last| now.saturating_sub(*last) < rules.trickle_seconds);
        }
        self.last_attempt.insert(client, now);
        0
    }

    /// Records an untrusted failure.
    pub fn record_failure(&mut self, rules: &BreakerRules, now: UnixSeconds) {
        self.forget_old(rules, now);
        // Bounded: entries beyond the threshold add nothing to the decision.
        if self.failures.len() > rules.threshold.saturating_mul(2) {
            self.failures.pop_front();
        }
        self.failures.push_back(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: BreakerRules = BreakerRules {
        threshold: 3,
        window_seconds: 600,
        trickle_seconds: 30,
    };

    #[test]
    fn trips_trickles_and_resets_with_a_virtual_clock() {
        let mut breaker = Breaker::default();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let now = 10_000;
        for _ in 0..3 {
            assert_eq!(breaker.admit(&RULES, a, now), 0);
            breaker.record_failure(&RULES, now);
        }
        assert_eq!(
            breaker.admit(&RULES, a, now),
            0,
            "first attempt while tripped"
        );
        assert_eq!(breaker.admit(&RULES, a, now + 1), 29);
        assert_eq!(breaker.admit(&RULES, b, now + 1), 0);
        assert_eq!(breaker.admit(&RULES, a, now + 30), 0);
        assert!(!breaker.is_tripped(&RULES, now + 600));
        assert_eq!(breaker.admit(&RULES, a, now + 600), 0);
        assert_eq!(breaker.admit(&RULES, a, now + 601), 0);
    }
}
