//! The one dispatch point over plugin API versions (Zed's pattern). Each supported
//! `nos:plugin` version has a module generated from its frozen `wit/since_v*` directory;
//! `latest` names the newest. Nothing outside this module names a versioned WIT type: callers
//! get host types (`plan::types`, `facts`, `plugin::policy`) back.
//!
//! A pre-linked component is typed by its world: [`PlannerPre`] can plan, [`AuthPolicyPre`]
//! can decide logins and passwords, and [`AnyPre`] (either, until the caller says which it
//! needs) can only describe itself. Each is an enum over the versions that world exists in.
//!
//! Which versions load is code too ([`select`]): a version this host implements but has not
//! released ([`RELEASED`]) loads only in a development build ([`ALLOW_UNRELEASED`]), so a new
//! API can be implemented and tried before it is frozen, and a release never ships it by
//! accident.

pub mod since_v0_1_0;
pub mod since_v0_2_0;
pub mod since_v0_3_0;

pub use since_v0_3_0 as latest;

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

/// Versions this host implements (has a `since_v*` module for), newest first.
pub const IMPLEMENTED: &[ApiVersion] = &[
    since_v0_3_0::VERSION,
    since_v0_2_0::VERSION,
    since_v0_1_0::VERSION,
];

/// Versions that are released: frozen with their WIT directory and loaded by every build. A
/// version in [`IMPLEMENTED`] but not here is still being designed; releasing it means adding
/// it here (and never editing its WIT again).
pub const RELEASED: &[ApiVersion] = &[
    ApiVersion::new(0, 3, 0),
    ApiVersion::new(0, 2, 0),
    ApiVersion::new(0, 1, 0),
];

/// Whether this build loads plugins built against an unreleased version: development builds
/// (`debug_assertions`, i.e. cargo's `dev` and `test` profiles) do, release builds do not.
///
/// Why `debug_assertions` and not a cargo feature: the packages nos ships are release builds,
/// and no feature can be switched on in them by another crate of the workspace (features are
/// unified across a build; a profile setting is not), so a release cannot admit an unreleased
/// API by accident. A plugin author building nosd from a checkout gets it without a flag.
/// Note that a package built from the `dev` profile (`scripts/package-test`'s default) is a
/// development build too.
pub const ALLOW_UNRELEASED: bool = cfg!(debug_assertions);

/// Why [`select`] does not load a plugin's API version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unadmitted {
    /// No version this host implements serves it.
    Unsupported,
    /// The host version that would serve it is not released, and this is a release build.
    Unreleased { host_version: ApiVersion },
}

/// The versions this build loads plugins for: the released ones, and in a development build
/// the unreleased ones too.
pub fn admitted() -> Vec<ApiVersion> {
    admitted_in(IMPLEMENTED, RELEASED, ALLOW_UNRELEASED)
}

fn admitted_in(
    implemented: &[ApiVersion],
    released: &[ApiVersion],
    allow_unreleased: bool,
) -> Vec<ApiVersion> {
    implemented
        .iter()
        .copied()
        .filter(|version| allow_unreleased || released.contains(version))
        .collect()
}

/// The versions this build loads as people read them, e.g. `0.1.0` or `0.1.0 to 0.2.0`.
pub fn supported_range() -> String {
    match admitted().as_slice() {
        [only] => only.to_string(),
        [newest, .., oldest] => format!("{oldest} to {newest}"),
        [] => "none".into(),
    }
}

/// The host module that serves a plugin built against `version`: same major and minor, and a
/// patch no newer than ours (a newer patch may use additions we lack); refused when that
/// module's version is not released and this is a release build.
pub fn select(version: ApiVersion) -> Result<ApiVersion, Unadmitted> {
    select_in(IMPLEMENTED, RELEASED, ALLOW_UNRELEASED, version)
}

/// [`select`] over given tables, so both sides of the release gate are testable in any build.
fn select_in(
    implemented: &[ApiVersion],
    released: &[ApiVersion],
    allow_unreleased: bool,
    version: ApiVersion,
) -> Result<ApiVersion, Unadmitted> {
    let host_version = implemented
        .iter()
        .copied()
        .find(|host| {
            host.major == version.major
                && host.minor == version.minor
                && host.patch >= version.patch
        })
        .ok_or(Unadmitted::Unsupported)?;
    if !allow_unreleased && !released.contains(&host_version) {
        return Err(Unadmitted::Unreleased { host_version });
    }
    Ok(host_version)
}

/// Linkers, built once per engine, one per (version, kind).
pub struct Linkers {
    planner_v0_3_0: Linker<CallState>,
    auth_v0_3_0: Linker<CallState>,
    planner_v0_2_0: Linker<CallState>,
    auth_v0_2_0: Linker<CallState>,
    planner_v0_1_0: Linker<CallState>,
    auth_v0_1_0: Linker<CallState>,
}

impl Linkers {
    pub fn new(engine: &Engine) -> wasmtime::Result<Linkers> {
        Ok(Linkers {
            planner_v0_3_0: since_v0_3_0::planner_linker(engine)?,
            auth_v0_3_0: since_v0_3_0::auth_linker(engine)?,
            planner_v0_2_0: since_v0_2_0::planner_linker(engine)?,
            auth_v0_2_0: since_v0_2_0::auth_linker(engine)?,
            planner_v0_1_0: since_v0_1_0::planner_linker(engine)?,
            auth_v0_1_0: since_v0_1_0::auth_linker(engine)?,
        })
    }
}

/// What every world's pre-linked component offers: the engine it runs on and `describe()`,
/// which both worlds export. Sealed: the worlds are the ones below.
pub trait WorldPre: sealed::Sealed {
    fn engine(&self) -> &Engine;
    fn describe(&self, store: &mut Store<CallState>) -> wasmtime::Result<PluginInfo>;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::PlannerPre {}
    impl Sealed for super::AuthPolicyPre {}
    impl Sealed for super::AnyPre {}
}

/// A pre-linked planner (world `planner`), by version.
pub enum PlannerPre {
    V0_3_0(since_v0_3_0::PlannerPre),
    V0_2_0(since_v0_2_0::PlannerPre),
    V0_1_0(since_v0_1_0::PlannerPre),
}

/// A pre-linked auth policy (world `auth-policy`), by version.
pub enum AuthPolicyPre {
    V0_3_0(since_v0_3_0::AuthPre),
    V0_2_0(since_v0_2_0::AuthPre),
    V0_1_0(since_v0_1_0::AuthPre),
}

/// A pre-linked component of either world, as its manifest's kind says; turned into the
/// world's own handle by [`AnyPre::into_planner`] or [`AnyPre::into_auth_policy`].
pub enum AnyPre {
    Planner(PlannerPre),
    AuthPolicy(AuthPolicyPre),
}

/// A version no `since_v*` module serves: [`select`] never returns one.
fn no_module(version: ApiVersion) -> wasmtime::Error {
    wasmtime::Error::msg(format!("no host module for API {version}"))
}

impl AnyPre {
    /// Pre-link `component` for `kind` at `version` (a value [`select`] returned).
    pub fn new(
        linkers: &Linkers,
        kind: PluginKind,
        version: ApiVersion,
        component: &Component,
    ) -> wasmtime::Result<AnyPre> {
        Ok(match kind {
            PluginKind::Planner => AnyPre::Planner(PlannerPre::new(linkers, version, component)?),
            PluginKind::AuthPolicy => {
                AnyPre::AuthPolicy(AuthPolicyPre::new(linkers, version, component)?)
            }
        })
    }

    pub fn kind(&self) -> PluginKind {
        match self {
            AnyPre::Planner(_) => PluginKind::Planner,
            AnyPre::AuthPolicy(_) => PluginKind::AuthPolicy,
        }
    }

    /// The planner, or `self` back when it is not one.
    pub fn into_planner(self) -> Result<PlannerPre, AnyPre> {
        match self {
            AnyPre::Planner(pre) => Ok(pre),
            other => Err(other),
        }
    }

    /// The auth policy, or `self` back when it is not one.
    pub fn into_auth_policy(self) -> Result<AuthPolicyPre, AnyPre> {
        match self {
            AnyPre::AuthPolicy(pre) => Ok(pre),
            other => Err(other),
        }
    }
}

impl WorldPre for AnyPre {
    fn engine(&self) -> &Engine {
        match self {
            AnyPre::Planner(pre) => pre.engine(),
            AnyPre::AuthPolicy(pre) => pre.engine(),
        }
    }

    fn describe(&self, store: &mut Store<CallState>) -> wasmtime::Result<PluginInfo> {
        match self {
            AnyPre::Planner(pre) => pre.describe(store),
            AnyPre::AuthPolicy(pre) => pre.describe(store),
        }
    }
}

impl PlannerPre {
    fn new(
        linkers: &Linkers,
        version: ApiVersion,
        component: &Component,
    ) -> wasmtime::Result<PlannerPre> {
        Ok(match version {
            since_v0_3_0::VERSION => PlannerPre::V0_3_0(since_v0_3_0::PlannerPre::new(
                &linkers.planner_v0_3_0,
                component,
            )?),
            since_v0_2_0::VERSION => PlannerPre::V0_2_0(since_v0_2_0::PlannerPre::new(
                &linkers.planner_v0_2_0,
                component,
            )?),
            since_v0_1_0::VERSION => PlannerPre::V0_1_0(since_v0_1_0::PlannerPre::new(
                &linkers.planner_v0_1_0,
                component,
            )?),
            other => return Err(no_module(other)),
        })
    }

    /// `Ok(Err(_))` is the planner's refusal; `Err` is a trap or a host-side failure.
    pub fn make_plan(
        &self,
        store: &mut Store<CallState>,
        facts: &Facts,
        input: &str,
    ) -> wasmtime::Result<Result<Plan, Refusal>> {
        match self {
            PlannerPre::V0_3_0(pre) => pre.make_plan(store, facts, input),
            PlannerPre::V0_2_0(pre) => pre.make_plan(store, facts, input),
            PlannerPre::V0_1_0(pre) => pre.make_plan(store, facts, input),
        }
    }
}

impl WorldPre for PlannerPre {
    fn engine(&self) -> &Engine {
        match self {
            PlannerPre::V0_3_0(pre) => pre.engine(),
            PlannerPre::V0_2_0(pre) => pre.engine(),
            PlannerPre::V0_1_0(pre) => pre.engine(),
        }
    }

    fn describe(&self, store: &mut Store<CallState>) -> wasmtime::Result<PluginInfo> {
        match self {
            PlannerPre::V0_3_0(pre) => pre.describe(store),
            PlannerPre::V0_2_0(pre) => pre.describe(store),
            PlannerPre::V0_1_0(pre) => pre.describe(store),
        }
    }
}

impl AuthPolicyPre {
    fn new(
        linkers: &Linkers,
        version: ApiVersion,
        component: &Component,
    ) -> wasmtime::Result<AuthPolicyPre> {
        Ok(match version {
            since_v0_3_0::VERSION => {
                AuthPolicyPre::V0_3_0(since_v0_3_0::AuthPre::new(&linkers.auth_v0_3_0, component)?)
            }
            since_v0_2_0::VERSION => {
                AuthPolicyPre::V0_2_0(since_v0_2_0::AuthPre::new(&linkers.auth_v0_2_0, component)?)
            }
            since_v0_1_0::VERSION => {
                AuthPolicyPre::V0_1_0(since_v0_1_0::AuthPre::new(&linkers.auth_v0_1_0, component)?)
            }
            other => return Err(no_module(other)),
        })
    }

    pub fn decide_login(
        &self,
        store: &mut Store<CallState>,
        attempt: &LoginAttempt,
    ) -> wasmtime::Result<LoginDecision> {
        match self {
            AuthPolicyPre::V0_3_0(pre) => pre.decide_login(store, attempt),
            AuthPolicyPre::V0_2_0(pre) => pre.decide_login(store, attempt),
            AuthPolicyPre::V0_1_0(pre) => pre.decide_login(store, attempt),
        }
    }

    pub fn check_password(
        &self,
        store: &mut Store<CallState>,
        features: &PasswordFeatures,
    ) -> wasmtime::Result<PasswordVerdict> {
        match self {
            AuthPolicyPre::V0_3_0(pre) => pre.check_password(store, features),
            AuthPolicyPre::V0_2_0(pre) => pre.check_password(store, features),
            AuthPolicyPre::V0_1_0(pre) => pre.check_password(store, features),
        }
    }
}

impl WorldPre for AuthPolicyPre {
    fn engine(&self) -> &Engine {
        match self {
            AuthPolicyPre::V0_3_0(pre) => pre.engine(),
            AuthPolicyPre::V0_2_0(pre) => pre.engine(),
            AuthPolicyPre::V0_1_0(pre) => pre.engine(),
        }
    }

    fn describe(&self, store: &mut Store<CallState>) -> wasmtime::Result<PluginInfo> {
        match self {
            AuthPolicyPre::V0_3_0(pre) => pre.describe(store),
            AuthPolicyPre::V0_2_0(pre) => pre.describe(store),
            AuthPolicyPre::V0_1_0(pre) => pre.describe(store),
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
    ($($extra:ident: $lower:path),* $(,)?) => {
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
                    $($extra: $lower(fs),)*
                })
                .collect()
        }
    };
}
use shared_glue;

/// The facts lowering of 0.2.0, which 0.3.0 keeps: block devices with their parent, identity,
/// partition table, signature usage and host-derived state. Invoked inside a version module
/// (its `wit_facts` and `filesystems_to_wit`), like [`shared_glue`].
macro_rules! facts_since_v0_2_0 {
    () => {
        fn facts_to_wit(facts: &Facts) -> wit_facts::Facts {
            wit_facts::Facts {
                block_devices: facts
                    .block_devices
                    .iter()
                    .map(|d| wit_facts::BlockDevice {
                        path: d.path.clone(),
                        kname: d.kname.clone(),
                        size_bytes: d.size_bytes,
                        rotational: d.rotational,
                        device_type: d.device_type.clone(),
                        fstype: d.fstype.clone(),
                        label: d.label.clone(),
                        uuid: d.uuid.clone(),
                        mountpoints: d.mountpoints.clone(),
                        holders: d.holders.clone(),
                        by_id: d.by_id.clone(),
                        parent: d.parent.clone(),
                        model: d.model.clone(),
                        serial: d.serial.clone(),
                        wwn: d.wwn.clone(),
                        partition_table: d.partition_table.clone(),
                        usage: d.usage.clone(),
                        state: match d.state {
                            DeviceState::Blank => wit_facts::DeviceState::Blank,
                            DeviceState::HoldsData => wit_facts::DeviceState::HoldsData,
                            DeviceState::InUse => wit_facts::DeviceState::InUse,
                        },
                        state_reasons: d.reasons.clone(),
                    })
                    .collect(),
                filesystems: filesystems_to_wit(&facts.filesystems),
                fresh_uuids: facts.fresh_uuids.clone(),
                now_unix_seconds: facts.now_unix_seconds,
            }
        }
    };
}
use facts_since_v0_2_0;

struct HasIo;

impl wasmtime::component::HasData for HasIo {
    type Data<'a> = &'a mut wasmtime::component::ResourceTable;
}

#[cfg(test)]
mod tests {
    use super::*;

    const V0_1_0: ApiVersion = ApiVersion::new(0, 1, 0);
    const V0_2_0: ApiVersion = ApiVersion::new(0, 2, 0);
    const V0_3_0: ApiVersion = ApiVersion::new(0, 3, 0);

    #[test]
    fn version_selection() {
        assert_eq!(select(V0_1_0), Ok(V0_1_0));
        assert_eq!(select(V0_2_0), Ok(V0_2_0));
        assert_eq!(select(V0_3_0), Ok(V0_3_0));
        for unsupported in [
            ApiVersion::new(0, 1, 1),
            ApiVersion::new(0, 2, 1),
            ApiVersion::new(0, 4, 0),
            ApiVersion::new(1, 1, 0),
        ] {
            assert_eq!(
                select(unsupported),
                Err(Unadmitted::Unsupported),
                "{unsupported}"
            );
        }
        assert_eq!(supported_range(), "0.1.0 to 0.3.0");
    }

    #[test]
    fn every_released_version_is_implemented() {
        for version in RELEASED {
            assert!(IMPLEMENTED.contains(version), "{version}");
        }
        assert_eq!(
            RELEASED,
            [V0_3_0, V0_2_0, V0_1_0],
            "0.1.0 to 0.3.0 are released"
        );
    }

    /// A host that implements 0.3.0 before releasing it: a release build refuses a 0.3.x
    /// plugin by name, a development build loads it; released versions load in both.
    #[test]
    fn an_unreleased_version_loads_only_in_development_builds() {
        let implemented = [V0_3_0, V0_2_0, V0_1_0];
        let released = [V0_2_0, V0_1_0];
        let release = |version| select_in(&implemented, &released, false, version);
        let development = |version| select_in(&implemented, &released, true, version);
        assert_eq!(
            release(V0_3_0),
            Err(Unadmitted::Unreleased {
                host_version: V0_3_0
            })
        );
        assert_eq!(development(V0_3_0), Ok(V0_3_0));
        for released_version in released {
            assert_eq!(release(released_version), Ok(released_version));
            assert_eq!(development(released_version), Ok(released_version));
        }
        assert_eq!(
            release(ApiVersion::new(0, 4, 0)),
            Err(Unadmitted::Unsupported),
            "unimplemented stays unsupported"
        );
        assert_eq!(admitted_in(&implemented, &released, false), released);
        assert_eq!(admitted_in(&implemented, &released, true), implemented);
    }

    #[test]
    fn development_builds_are_the_debug_assertions_ones() {
        assert_eq!(ALLOW_UNRELEASED, cfg!(debug_assertions));
    }
}
