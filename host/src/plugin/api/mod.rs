//! The one dispatch point over plugin API versions (Zed's pattern). Each supported
//! `nos:plugin` version has a module generated from its frozen `wit/since_v*` directory;
//! `latest` names the newest. Nothing outside this module names a versioned WIT type: callers
//! get host types (`plan::types`, `facts`, `plugin::policy`) back.

pub mod since_v0_1_0;
pub mod since_v0_2_0;

pub use since_v0_2_0 as latest;

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
pub const SUPPORTED: &[ApiVersion] = &[since_v0_2_0::VERSION, since_v0_1_0::VERSION];

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
    planner_v0_2_0: Linker<CallState>,
    auth_v0_2_0: Linker<CallState>,
    planner_v0_1_0: Linker<CallState>,
    auth_v0_1_0: Linker<CallState>,
}

impl Linkers {
    pub fn new(engine: &Engine) -> wasmtime::Result<Linkers> {
        Ok(Linkers {
            planner_v0_2_0: since_v0_2_0::planner_linker(engine)?,
            auth_v0_2_0: since_v0_2_0::auth_linker(engine)?,
            planner_v0_1_0: since_v0_1_0::planner_linker(engine)?,
            auth_v0_1_0: since_v0_1_0::auth_linker(engine)?,
        })
    }
}

/// A pre-linked plugin, by kind and version.
pub enum Pre {
    PlannerV0_2_0(since_v0_2_0::PlannerPre),
    AuthV0_2_0(since_v0_2_0::AuthPre),
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
        Ok(match (kind, version) {
            (PluginKind::Planner, since_v0_2_0::VERSION) => Pre::PlannerV0_2_0(
                since_v0_2_0::PlannerPre::new(&linkers.planner_v0_2_0, component)?,
            ),
            (PluginKind::AuthPolicy, since_v0_2_0::VERSION) => {
                Pre::AuthV0_2_0(since_v0_2_0::AuthPre::new(&linkers.auth_v0_2_0, component)?)
            }
            (PluginKind::Planner, _) => Pre::PlannerV0_1_0(since_v0_1_0::PlannerPre::new(
                &linkers.planner_v0_1_0,
                component,
            )?),
            (PluginKind::AuthPolicy, _) => {
                debug_assert_eq!(version, since_v0_1_0::VERSION);
                Pre::AuthV0_1_0(since_v0_1_0::AuthPre::new(&linkers.auth_v0_1_0, component)?)
            }
        })
    }

    pub fn engine(&self) -> &Engine {
        match self {
            Pre::PlannerV0_2_0(pre) => pre.engine(),
            Pre::AuthV0_2_0(pre) => pre.engine(),
            Pre::PlannerV0_1_0(pre) => pre.engine(),
            Pre::AuthV0_1_0(pre) => pre.engine(),
        }
    }

    pub fn kind(&self) -> PluginKind {
        match self {
            Pre::PlannerV0_2_0(_) | Pre::PlannerV0_1_0(_) => PluginKind::Planner,
            Pre::AuthV0_2_0(_) | Pre::AuthV0_1_0(_) => PluginKind::AuthPolicy,
        }
    }

    pub fn describe(&self, store: &mut Store<CallState>) -> wasmtime::Result<PluginInfo> {
        match self {
            Pre::PlannerV0_2_0(pre) => pre.describe(store),
            Pre::AuthV0_2_0(pre) => pre.describe(store),
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
            Pre::PlannerV0_2_0(pre) => Some(pre.make_plan(store, facts, input)),
            Pre::PlannerV0_1_0(pre) => Some(pre.make_plan(store, facts, input)),
            Pre::AuthV0_2_0(_) | Pre::AuthV0_1_0(_) => None,
        }
    }

    pub fn decide_login(
        &self,
        store: &mut Store<CallState>,
        attempt: &LoginAttempt,
    ) -> Option<wasmtime::Result<LoginDecision>> {
        match self {
            Pre::AuthV0_2_0(pre) => Some(pre.decide_login(store, attempt)),
            Pre::AuthV0_1_0(pre) => Some(pre.decide_login(store, attempt)),
            Pre::PlannerV0_2_0(_) | Pre::PlannerV0_1_0(_) => None,
        }
    }

    pub fn check_password(
        &self,
        store: &mut Store<CallState>,
        features: &PasswordFeatures,
    ) -> Option<wasmtime::Result<PasswordVerdict>> {
        match self {
            Pre::AuthV0_2_0(pre) => Some(pre.check_password(store, features)),
            Pre::AuthV0_1_0(pre) => Some(pre.check_password(store, features)),
            Pre::PlannerV0_2_0(_) | Pre::PlannerV0_1_0(_) => None,
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

/// The glue that reads the same in every version module: the log import, the linkers, the
/// pre-linked planner and auth policy, lifting `plugin-info` and plans into host types and
/// lowering btrfs filesystems. Invoked inside a version module, where `planner`, `auth`,
/// `wit_log`, `wit_meta`, `wit_facts`, `wit_plan`, `wit_auth` and `facts_to_wit` are that
/// version's; each version's generated types are distinct, so a macro, not a function, keeps
/// one copy. What differs between versions (the facts a planner sees) stays in the module.
macro_rules! shared_glue {
    () => {
        impl wit_log::Host for CallState {
            fn log(&mut self, level: wit_log::Level, message: String) {
                let level = match level {
                    wit_log::Level::Trace => LogLevel::Trace,
                    wit_log::Level::Debug => LogLevel::Debug,
                    wit_log::Level::Info => LogLevel::Info,
                    wit_log::Level::Warn => LogLevel::Warn,
                    wit_log::Level::Error => LogLevel::Error,
                };
                self.log.record(level, message);
            }
        }

        impl wit_meta::Host for CallState {}
        impl wit_facts::Host for CallState {}
        impl wit_plan::Host for CallState {}

        pub fn planner_linker(engine: &Engine) -> wasmtime::Result<Linker<CallState>> {
            let mut linker = Linker::new(engine);
            super::add_wasi_cli_io(&mut linker)?;
            planner::Planner::add_to_linker::<CallState, HasSelf<CallState>>(
                &mut linker,
                |state| state,
            )?;
            Ok(linker)
        }

        pub fn auth_linker(engine: &Engine) -> wasmtime::Result<Linker<CallState>> {
            let mut linker = Linker::new(engine);
            super::add_wasi_cli_io(&mut linker)?;
            auth::AuthPolicy::add_to_linker::<CallState, HasSelf<CallState>>(
                &mut linker,
                |state| state,
            )?;
            Ok(linker)
        }

        pub struct PlannerPre(planner::PlannerPre<CallState>);
        pub struct AuthPre(auth::AuthPolicyPre<CallState>);

        impl PlannerPre {
            pub fn new(
                linker: &Linker<CallState>,
                component: &Component,
            ) -> wasmtime::Result<PlannerPre> {
                Ok(PlannerPre(planner::PlannerPre::new(
                    linker.instantiate_pre(component)?,
                )?))
            }

            pub fn engine(&self) -> &Engine {
                self.0.engine()
            }

            pub fn describe(&self, store: &mut Store<CallState>) -> wasmtime::Result<PluginInfo> {
                let instance = self.0.instantiate(&mut *store)?;
                let info = instance.nos_plugin_planning().call_describe(&mut *store)?;
                Ok(info_from_wit(info))
            }

            /// `Ok(Err(_))` is the planner's refusal; `Err` is a trap or a host-side failure.
            pub fn make_plan(
                &self,
                store: &mut Store<CallState>,
                facts: &Facts,
                input: &str,
            ) -> wasmtime::Result<Result<host::Plan, host::Refusal>> {
                let instance = self.0.instantiate(&mut *store)?;
                let facts = facts_to_wit(facts);
                let answer =
                    instance
                        .nos_plugin_planning()
                        .call_make_plan(&mut *store, &facts, input)?;
                Ok(match answer {
                    Ok(plan) => Ok(plan_from_wit(plan)),
                    Err(wit_plan::PlanError::InvalidInput(message)) => {
                        Err(host::Refusal::InvalidInput(message))
                    }
                    Err(wit_plan::PlanError::Refused(message)) => {
                        Err(host::Refusal::Refused(message))
                    }
                })
            }
        }

        impl AuthPre {
            pub fn new(
                linker: &Linker<CallState>,
                component: &Component,
            ) -> wasmtime::Result<AuthPre> {
                Ok(AuthPre(auth::AuthPolicyPre::new(
                    linker.instantiate_pre(component)?,
                )?))
            }

            pub fn engine(&self) -> &Engine {
                self.0.engine()
            }

            pub fn describe(&self, store: &mut Store<CallState>) -> wasmtime::Result<PluginInfo> {
                let instance = self.0.instantiate(&mut *store)?;
                let info = instance
                    .nos_plugin_auth_decisions()
                    .call_describe(&mut *store)?;
                Ok(info_from_wit(info))
            }

            pub fn decide_login(
                &self,
                store: &mut Store<CallState>,
                attempt: &LoginAttempt,
            ) -> wasmtime::Result<LoginDecision> {
                let instance = self.0.instantiate(&mut *store)?;
                let attempt = wit_auth::LoginAttempt {
                    username_known: attempt.username_known,
                    client_ip: attempt.client_ip.clone(),
                    trusted_device: attempt.trusted_device,
                    recent_user_failures: attempt.recent_user_failures,
                    recent_ip_failures: attempt.recent_ip_failures,
                    seconds_since_last_failure: attempt.seconds_since_last_failure,
                    totp_enrolled: attempt.totp_enrolled,
                    now_unix_seconds: attempt.now_unix_seconds,
                };
                let decision = instance
                    .nos_plugin_auth_decisions()
                    .call_decide_login(&mut *store, &attempt)?;
                Ok(match decision {
                    wit_auth::LoginDecision::Proceed => LoginDecision::Proceed,
                    wit_auth::LoginDecision::RequireSecondFactor => {
                        LoginDecision::RequireSecondFactor
                    }
                    wit_auth::LoginDecision::Deny => LoginDecision::Deny,
                    wit_auth::LoginDecision::LockOut(seconds) => LoginDecision::LockOut { seconds },
                })
            }

            pub fn check_password(
                &self,
                store: &mut Store<CallState>,
                features: &PasswordFeatures,
            ) -> wasmtime::Result<PasswordVerdict> {
                let instance = self.0.instantiate(&mut *store)?;
                let features = wit_auth::PasswordFeatures {
                    length_chars: features.length_chars,
                    in_common_list: features.in_common_list,
                    contains_username: features.contains_username,
                };
                let verdict = instance
                    .nos_plugin_auth_decisions()
                    .call_check_password(&mut *store, features)?;
                Ok(match verdict {
                    wit_auth::PasswordVerdict::Accept => PasswordVerdict::Accept,
                    wit_auth::PasswordVerdict::Reject(reason) => PasswordVerdict::Reject(reason),
                })
            }
        }

        fn info_from_wit(info: wit_meta::PluginInfo) -> PluginInfo {
            PluginInfo {
                name: info.name,
                version: info.version,
                summary: info.summary,
                input_schema: info.input_schema,
            }
        }

        fn plan_from_wit(plan: wit_plan::Plan) -> host::Plan {
            host::Plan {
                steps: plan
                    .steps
                    .into_iter()
                    .map(|step| host::Step {
                        id: step.id,
                        title: step.title,
                        request: request_from_wit(step.request),
                        effect: match step.effect {
                            wit_plan::Effect::Read => host::Effect::Read,
                            wit_plan::Effect::State => host::Effect::State,
                            wit_plan::Effect::Destructive => host::Effect::Destructive,
                        },
                        rollback: step.rollback.map(request_from_wit),
                        confirmation: step.confirmation,
                    })
                    .collect(),
                warnings: plan.warnings,
            }
        }

        fn request_from_wit(request: wit_plan::Request) -> host::Request {
            match request {
                wit_plan::Request::Argv(argv) => host::Request::Argv(argv),
                wit_plan::Request::Ensure(managed) => {
                    host::Request::Ensure(managed_from_wit(managed))
                }
                wit_plan::Request::Remove(managed) => {
                    host::Request::Remove(managed_from_wit(managed))
                }
            }
        }

        fn managed_from_wit(managed: wit_plan::ManagedRequest) -> host::ManagedRequest {
            match managed {
                wit_plan::ManagedRequest::MountDir(path) => host::ManagedRequest::MountDir(path),
                wit_plan::ManagedRequest::KeyFile(path) => host::ManagedRequest::KeyFile(path),
                wit_plan::ManagedRequest::FstabEntry(entry) => {
                    host::ManagedRequest::FstabEntry(host::FstabEntry {
                        uuid: entry.uuid,
                        target: entry.target,
                        options: entry.options,
                    })
                }
                wit_plan::ManagedRequest::CrypttabEntry(entry) => {
                    host::ManagedRequest::CrypttabEntry(host::CrypttabEntry {
                        name: entry.name,
                        device_uuid: entry.device_uuid,
                        key_file: entry.key_file,
                    })
                }
            }
        }

        fn filesystems_to_wit(
            filesystems: &[crate::facts::BtrfsFilesystem],
        ) -> Vec<wit_facts::BtrfsFilesystem> {
            filesystems
                .iter()
                .map(|fs| wit_facts::BtrfsFilesystem {
                    uuid: fs.uuid.clone(),
                    label: fs.label.clone(),
                    mountpoint: fs.mountpoint.clone(),
                    devices: fs
                        .devices
                        .iter()
                        .map(|d| wit_facts::BtrfsDevice {
                            devid: d.devid,
                            path: d.path.clone(),
                            size_bytes: d.size_bytes,
                        })
                        .collect(),
                    data_profile: fs.data_profile.clone(),
                    metadata_profile: fs.metadata_profile.clone(),
                    size_bytes: fs.size_bytes,
                    used_bytes: fs.used_bytes,
                })
                .collect()
        }
    };
}
use shared_glue;

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
        assert_eq!(
            select(ApiVersion::new(0, 2, 0)),
            Some(ApiVersion::new(0, 2, 0))
        );
        assert_eq!(select(ApiVersion::new(0, 1, 1)), None);
        assert_eq!(select(ApiVersion::new(0, 2, 1)), None);
        assert_eq!(select(ApiVersion::new(0, 3, 0)), None);
        assert_eq!(select(ApiVersion::new(1, 1, 0)), None);
        assert_eq!(supported_range(), "0.1.0 to 0.2.0");
    }
}
