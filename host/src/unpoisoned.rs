//! The one way nosd takes a `std::sync::Mutex`: a poisoned lock is taken over, not propagated.
//!
//! Every in-memory table behind such a lock (sessions, plans, plugin grants, the breaker, the
//! first-run setup) is plain data that a panic between two statements cannot leave worse than
//! a restart would, and a poisoned lock must not turn one panicked request into a dead daemon.
//! A leaf: this module imports nothing of the crate.

use std::sync::{Mutex, MutexGuard};

/// Locks `mutex`, ignoring poisoning.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}
