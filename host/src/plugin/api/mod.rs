//! The one dispatch point over plugin API versions (Zed's pattern). Each supported
//! `nos:plugin` version has a module generated from its frozen `wit/since_v*` directory;
//! `latest` names the newest. Nothing outside this module names a versioned WIT type: callers
//! get host types (`plan::types`, `facts`, `plugin::policy`) back.

pub mod since_v0_1_0;

pub use since_v0_1_0 as latest;

use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, Store};
use wasmtime_wasi::WasiView;
use wasmtime_wasi::cli::{WasiCli, WasiCliView};
use wasmtime_wasi::p2::bindings::{cli, sync};

use super::PluginInfo;
use super::manifest::{ApiVersion, PluginKind};
use super::state::CallState;
use crate::facts::Facts;
use crate::plan::types::{Plan, Refusal};
use crate::plugin::policy::{LoginAttempt, LoginDecision, PasswordFeatures, PasswordVerdict};

/// Versions this host implements, newest first.
pub const SUPPORTED: &[ApiVersion] = &[since_v0_1_0::VERSION];

/// The supported range as people read it, e.g. `0.1.0` or `0.1.0 to 0.2.0`.
pub fn supported_range() -> String {
    match SUPPORTED {
        [only] => only.to_string(),
        [newest, .., oldest] => format!("{oldest} to {newest}"),
        [] => "none".into(),
    }
}

/// The host module that serves a plugin built against `version`: same major and minor, and a
/// patch no newer than ours (a newer patch may use additions we lack).
pub fn select(version: ApiVersion) -> Option<ApiVersion> {
    SUPPORTED.iter().copied().find(|supported| {
        supported.major == version.major
            && supported.minor == version.minor
            && supported.patch >= version.patch
    })
}

/// Linkers, built once per engine, one per (version, kind).
pub struct Linkers {
    planner_v0_1_0: Linker<CallState>,
    auth_v0_1_0: Linker<CallState>,
}

impl Linkers {
    pub fn new(engine: &Engine) -> wasmtime::Result<Linkers> {
        Ok(Linkers {
            planner_v0_1_0: since_v0_1_0::planner_linker(engine)?,
            auth_v0_1_0: since_v0_1_0::auth_linker(engine)?,
        })
    }
}

/// A pre-linked plugin, by kind and version.
pub enum Pre {
    PlannerV0_1_0(since_v0_1_0::PlannerPre),
    AuthV0_1_0(since_v0_1_0::AuthPre),
}

impl Pre {
    /// Pre-link `component` for `kind` at `version` (a value [`select`] returned).
    pub fn new(
        linkers: &Linkers,
        kind: PluginKind,
        version: ApiVersion,
        component: &Component,
    ) -> wasmtime::Result<Pre> {
        debug_assert_eq!(version, since_v0_1_0::VERSION);
        Ok(match kind {
            PluginKind::Planner => Pre::PlannerV0_1_0(since_v0_1_0::PlannerPre::new(
                &linkers.planner_v0_1_0,
                component,
            )?),
            PluginKind::AuthPolicy => {
                Pre::AuthV0_1_0(since_v0_1_0::AuthPre::new(&linkers.auth_v0_1_0, component)?)
            }
        })
    }

    pub fn engine(&self) -> &Engine {
        match self {
            Pre::PlannerV0_1_0(pre) => pre.engine(),
            Pre::AuthV0_1_0(pre) => pre.engine(),
        }
    }

    pub fn kind(&self) -> PluginKind {
        match self {
            Pre::PlannerV0_1_0(_) => PluginKind::Planner,
            Pre::AuthV0_1_0(_) => PluginKind::AuthPolicy,
        }
    }

    pub fn describe(&self, store: &mut Store<CallState>) -> wasmtime::Result<PluginInfo> {
        match self {
            Pre::PlannerV0_1_0(pre) => pre.describe(store),
            Pre::AuthV0_1_0(pre) => pre.describe(store),
        }
    }

    /// `None` when this is not a planner.
    pub fn make_plan(
        &self,
        store: &mut Store<CallState>,
        facts: &Facts,
        input: &str,
    ) -> Option<wasmtime::Result<Result<Plan, Refusal>>> {
        match self {
            Pre::PlannerV0_1_0(pre) => Some(pre.make_plan(store, facts, input)),
            Pre::AuthV0_1_0(_) => None,
        }
    }

    pub fn decide_login(
        &self,
        store: &mut Store<CallState>,
        attempt: &LoginAttempt,
    ) -> Option<wasmtime::Result<LoginDecision>> {
        match self {
            Pre::AuthV0_1_0(pre) => Some(pre.decide_login(store, attempt)),
            Pre::PlannerV0_1_0(_) => None,
        }
    }

    pub fn check_password(
        &self,
        store: &mut Store<CallState>,
        features: &PasswordFeatures,
    ) -> Option<wasmtime::Result<PasswordVerdict>> {
        match self {
            Pre::AuthV0_1_0(pre) => Some(pre.check_password(store, features)),
            Pre::PlannerV0_1_0(_) => None,
        }
    }
}

/// Link only the `wasi:cli` and `wasi:io` interfaces a wasip2 std guest imports; no
/// filesystem, sockets, clocks or random exist in the linker at all (and the import check
/// refuses components that ask for them before linking).
fn add_wasi_cli_io(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    cli::exit::add_to_linker::<CallState, WasiCli>(linker, CallState::cli)?;
    cli::environment::add_to_linker::<CallState, WasiCli>(linker, CallState::cli)?;
    cli::stdin::add_to_linker::<CallState, WasiCli>(linker, CallState::cli)?;
    cli::stdout::add_to_linker::<CallState, WasiCli>(linker, CallState::cli)?;
    cli::stderr::add_to_linker::<CallState, WasiCli>(linker, CallState::cli)?;
    cli::terminal_input::add_to_linker::<CallState, WasiCli>(linker, CallState::cli)?;
    cli::terminal_output::add_to_linker::<CallState, WasiCli>(linker, CallState::cli)?;
    cli::terminal_stdin::add_to_linker::<CallState, WasiCli>(linker, CallState::cli)?;
    cli::terminal_stdout::add_to_linker::<CallState, WasiCli>(linker, CallState::cli)?;
    cli::terminal_stderr::add_to_linker::<CallState, WasiCli>(linker, CallState::cli)?;
    wasmtime_wasi::p2::bindings::io::error::add_to_linker::<CallState, HasIo>(linker, |s| {
        s.ctx().table
    })?;
    sync::io::poll::add_to_linker::<CallState, HasIo>(linker, |s| s.ctx().table)?;
    sync::io::streams::add_to_linker::<CallState, HasIo>(linker, |s| s.ctx().table)?;
    Ok(())
}

struct HasIo;

impl wasmtime::component::HasData for HasIo {
    type Data<'a> = &'a mut wasmtime::component::ResourceTable;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_selection() {
        assert_eq!(
            select(ApiVersion::new(0, 1, 0)),
            Some(ApiVersion::new(0, 1, 0))
        );
        assert_eq!(select(ApiVersion::new(0, 1, 1)), None);
        assert_eq!(select(ApiVersion::new(0, 2, 0)), None);
        assert_eq!(select(ApiVersion::new(1, 1, 0)), None);
        assert_eq!(supported_range(), "0.1.0");
    }
}
