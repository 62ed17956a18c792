//! Route groups, each next to its handlers.

pub mod auth;
pub mod pipeline;
pub mod setup;
