//! Alerts: one model for everything an admin must hear about (a pool degraded, a device
//! missing or failing, a scrub that found errors or is overdue, a pool filling up, a job that
//! failed or stalls), de-duplicated, acknowledged by an admin, and delivered to the UI (`GET
//! /api/v1/alerts`), the audit log, the journal (fixed `MESSAGE_ID`s, [`journal`]) and a
//! signed webhook ([`webhook`]).
//!
//! Reading order: [`model`] (the pure book: alerts, de-duplication, acknowledgement, the cap),
//! [`conditions`] (pure: pool health findings and jobs → conditions), [`service`] (persisted
//! in the state directory, audited, delivered), [`journal`], [`webhook`], and [`schedule`]
//! (pure: when a scrub is due).
//!
//! Feeding it: whoever observes the pools calls [`AlertService::observe`] with one
//! [`PoolObservation`] per pool it read (UUID, label, the `health::Health` it classified) and,
//! when it read the job table, every job ([`JobObservation::from_record`]). Nothing here reads
//! the machine, runs a command or reads the clock: `model`, `conditions` and `schedule` do no
//! IO at all, and the service's only IO is the state file and the webhook.

#![forbid(unsafe_code)]

pub mod conditions;
pub mod journal;
pub mod model;
pub mod schedule;
pub mod service;
pub mod webhook;

pub use conditions::{JobObservation, PoolObservation, Rules};
pub use model::{Alert, AlertBook, AlertKind, AlertState, Severity, Subject};
pub use service::{AlertDeps, AlertError, AlertService};
