//! Bindings for `wit/since_v0.1.0` (`nos:plugin@0.1.0`), the conversions between its types and
//! the host's, and its host imports. Frozen with the WIT directory: a new API version gets a new
//! module beside this one, and this one then converts into it.

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Engine, Store};

use crate::facts::Facts;
use crate::plan::types as host;
use crate::plugin::PluginInfo;
use crate::plugin::manifest::ApiVersion;
use crate::plugin::policy::{LoginAttempt, LoginDecision, PasswordFeatures, PasswordVerdict};
use crate::plugin::state::{CallState, LogLevel};

pub const VERSION: ApiVersion = ApiVersion::new(0, 1, 0);

mod planner {
    wasmtime::component::bindgen!({
        world: "planner",
        path: "../wit/since_v0.1.0",
    });
}

mod auth {
    wasmtime::component::bindgen!({
        world: "auth-policy",
        path: "../wit/since_v0.1.0",
        with: {
            "nos:plugin/log": super::planner::nos::plugin::log,
            "nos:plugin/meta": super::planner::nos::plugin::meta,
        },
    });
}

use auth::exports::nos::plugin::auth_decisions as wit_auth;
use planner::nos::plugin::{
    facts as wit_facts, log as wit_log, meta as wit_meta, plan as wit_plan,
};

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
    planner::Planner::add_to_linker::<CallState, HasSelf<CallState>>(&mut linker, |state| state)?;
    Ok(linker)
}

pub fn auth_linker(engine: &Engine) -> wasmtime::Result<Linker<CallState>> {
    let mut linker = Linker::new(engine);
    super::add_wasi_cli_io(&mut linker)?;
    auth::AuthPolicy::add_to_linker::<CallState, HasSelf<CallState>>(&mut linker, |state| state)?;
    Ok(linker)
}

pub struct PlannerPre(planner::PlannerPre<CallState>);
pub struct AuthPre(auth::AuthPolicyPre<CallState>);

impl PlannerPre {
    pub fn new(linker: &Linker<CallState>, component: &Component) -> wasmtime::Result<PlannerPre> {
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
        let answer = instance
            .nos_plugin_planning()
            .call_make_plan(&mut *store, &facts, input)?;
        Ok(match answer {
            Ok(plan) => Ok(plan_from_wit(plan)),
            Err(wit_plan::PlanError::InvalidInput(message)) => {
                Err(host::Refusal::InvalidInput(message))
            }
            Err(wit_plan::PlanError::Refused(message)) => Err(host::Refusal::Refused(message)),
        })
    }
}

impl AuthPre {
    pub fn new(linker: &Linker<CallState>, component: &Component) -> wasmtime::Result<AuthPre> {
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
            wit_auth::LoginDecision::RequireSecondFactor => LoginDecision::RequireSecondFactor,
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
            })
            .collect(),
        filesystems: facts
            .filesystems
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
            .collect(),
        fresh_uuids: facts.fresh_uuids.clone(),
        now_unix_seconds: facts.now_unix_seconds,
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
        wit_plan::Request::Ensure(managed) => host::Request::Ensure(managed_from_wit(managed)),
        wit_plan::Request::Remove(managed) => host::Request::Remove(managed_from_wit(managed)),
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
