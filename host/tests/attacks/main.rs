//! Attack tests against a real nosd: real sockets, real HTTP client, temp state directories,
//! a virtual clock. One test binary so the suite links once.

mod admin_ui;
mod alerts;
mod auth_policy;
mod harness;
mod http_surface;
mod login_limits;
mod pipeline;
mod plugin_grants;
mod pools;
mod recovery_socket;
mod schedules;
mod second_factor;
mod sessions;
mod slow_clients;
mod store_crash;
mod timing;

/// The plugins built by `build.rs` (one include per crate: it defines a macro).
#[allow(dead_code, unused_macros)]
mod built {
    include!(concat!(env!("OUT_DIR"), "/plugins.rs"));
}
