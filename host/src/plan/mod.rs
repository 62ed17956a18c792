//! Plans: what a planner returns ([`types`]) and the pure judgement of every step against the
//! allowlist and the plugin's scope ([`check`]). This module never runs anything and never
//! talks to the agent; only `check` produces a [`check::CheckedPlan`].

pub mod check;
pub mod devices;
pub mod subvolumes;
pub mod types;
