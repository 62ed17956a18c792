//! nosd's library: everything the daemon and nosctl share.
#![forbid(unsafe_code)]

pub mod agent_client;
pub mod audit;
pub mod auth;
pub mod binary_facts;
pub mod clock;
pub mod config;
pub mod http;
pub mod recovery;
pub mod session;
pub mod state;
pub mod store;

pub use http::app;
