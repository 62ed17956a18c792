//! nosd's library: everything the daemon and nosctl share.
#![forbid(unsafe_code)]
pub mod agent_client;
