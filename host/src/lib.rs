//! nosd's library: everything the daemon and nosctl share.
// `deny`, not `forbid`: the plugin compile cache must call wasmtime's `unsafe`
// `Component::deserialize_file` (see `plugin::cache`, the only `#[allow(unsafe_code)]`).
#![deny(unsafe_code)]

pub mod agent_client;
pub mod alerts;
pub mod audit;
pub mod auth;
pub mod binary_facts;
pub mod clock;
pub mod config;
pub mod facts;
pub mod gather;
pub mod health;
pub mod http;
pub mod net;
pub mod pipeline;
pub mod plan;
pub mod plugin;
pub mod pools;
pub mod recovery;
pub mod schedules;
pub mod session;
pub mod state;
pub mod store;
pub mod sysfs_btrfs;
pub mod terminal;
pub mod unpoisoned;

pub use http::app;
