//! Route groups, each next to its handlers.

pub mod alerts;
pub mod allowlist;
pub mod auth;
pub mod pipeline;
pub mod pools;
pub mod schedules;
pub mod setup;
pub mod shares;
pub mod ui;
