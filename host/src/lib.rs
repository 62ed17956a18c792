//! nosd's library: everything the daemon and nosctl share.
// `deny`, not `forbid`: the plugin compile cache must call wasmtime's `unsafe`
// `Component::deserialize_file` (see `plugin::cache`, the only `#[allow(unsafe_code)]`).
#![deny(unsafe_code)]

pub mod facts;
pub mod plan;
pub mod plugin;
