//! Standing approvals (schedules): an admin approves once, re-authenticated, a planner, its
//! input, the allowlist rule ids its plans may use and a period; nosd then plans at each
//! period and applies the plan without a human only when every step is within the approval
//! (issue 18).
//!
//! Reading order: [`decide`] (pure: a checked plan under an approval → apply, hold or nothing
//! to do), [`model`] (pure: the book, its terms and when each schedule is due), [`service`]
//! (`schedules.json` through `store/`, every change checked against the allowlist and the
//! planner and audited), [`runner`] (one check: plan, decide, apply unattended or hold with an
//! alert, record and audit every run).
//!
//! Nothing here knows HTTP; `model` and `decide` do no IO and never read the clock.

#![forbid(unsafe_code)]

pub mod decide;
pub mod model;
pub mod runner;
pub mod service;

pub use decide::Decision;
pub use model::{LastRun, RunOutcome, Schedule, Terms, TermsError};
pub use service::{ScheduleError, ScheduleService};
