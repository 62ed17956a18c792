//! Route groups, each next to its handlers.

pub mod auth;
pub mod setup;
pub mod pipeline;
