//! The Wasm plugin host: loads plugins (manifest, hash, API version, imports, compile or cache,
//! pre-link) and calls them, each call in a fresh `Store` under fuel, an epoch deadline and
//! memory limits ([`limits`]). Failures become a typed [`PluginError`]; a failed call leaves
//! nothing behind, so the next call is unaffected.
//!
//! A loaded plugin's type says its world: [`Planner`] has `plan`, [`AuthPolicyPlugin`] has
//! `decide_login` and `check_password`, and [`AnyPlugin`] (what [`PluginHost::load`] returns
//! before the caller says which world it needs) only describes itself. A planner plans:
//!
//! ```
//! # fn f(planner: &nos_host::plugin::Planner, facts: &nos_host::facts::Facts) {
//! let _ = planner.plan(facts, "{}");
//! # }
//! ```
//!
//! and calling a planner function on an auth policy does not compile:
//!
//! ```compile_fail
//! # fn f(policy: &nos_host::plugin::AuthPolicyPlugin, facts: &nos_host::facts::Facts) {
//! let _ = policy.plan(facts, "{}");
//! # }
//! ```
//!
//! This module never judges a plan (that is `plan::check`) and never talks to the agent.
//! Plugins get no filesystem, network, clock or randomness: facts and time are passed in.

pub mod api;
pub mod cache;
pub mod imports;
pub mod limits;
pub mod manifest;
pub mod policy;
pub mod state;

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolConcurrencyLimitError,
    PoolingAllocationConfig, Store, Trap,
};

use crate::facts::Facts;
use crate::plan::types::{self as plan_types, Plan, Refusal};
use cache::{Cache, CacheOutcome};
use limits::{
    DEFAULT_CONCURRENT_CALLS, EPOCH_TICK, KEEP_RESIDENT_BYTES, Limits, MAX_COMPONENT_BYTES,
    MAX_INPUT_BYTES, MAX_INSTANCES, MAX_MANIFEST_BYTES, MAX_MEMORIES, MAX_MEMORY_BYTES,
    MAX_TABLE_ELEMENTS, MAX_TABLES, MAX_TRANSFER_BYTES, MAX_WASM_STACK_BYTES,
    TABLE_KEEP_RESIDENT_BYTES,
};
use manifest::{ApiVersion, Manifest, PluginKind};
use policy::{LoginAttempt, LoginDecision, PasswordFeatures, PasswordVerdict};
use state::{CallLog, CallState};

/// At most this many bytes in the name or version a plugin reports.
pub const MAX_INFO_WORD_BYTES: usize = 64;
/// At most this many bytes in the JSON Schema of a plugin's input.
pub const MAX_INPUT_SCHEMA_BYTES: usize = 64 << 10;

/// What a plugin says about itself (`describe`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    pub summary: String,
    pub input_schema: String,
}

#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {size} bytes, more than the {max} allowed")]
    FileTooLarge { path: PathBuf, size: u64, max: u64 },
    #[error("manifest {path}: {message}")]
    Manifest { path: PathBuf, message: String },
    #[error("plugin {name}: component sha256 is {actual}, the manifest says {expected}")]
    HashMismatch {
        name: String,
        expected: String,
        actual: String,
    },
    #[error("plugin {name} targets {kind} API {plugin_version}; this host supports {supported}")]
    ApiVersion {
        name: String,
        kind: PluginKind,
        plugin_version: String,
        supported: String,
    },
    #[error(
        "plugin {name} targets {kind} API {plugin_version}, which is not released yet; only a development build of nos loads it (this build supports {supported})"
    )]
    UnreleasedApi {
        name: String,
        kind: PluginKind,
        plugin_version: String,
        supported: String,
    },
    #[error("plugin {name} imports {}, which plugins may not use", imports.join(", "))]
    ForbiddenImport { name: String, imports: Vec<String> },
    #[error("plugin {name} is not a valid component: {message}")]
    Compile { name: String, message: String },
    #[error("plugin cache: {0}")]
    Cache(#[from] cache::CacheError),
    #[error("plugin {name} is a {actual} plugin, not a {expected}")]
    WrongKind {
        name: String,
        expected: PluginKind,
        actual: PluginKind,
    },
    #[error("plugin {name}: input is {size} bytes, more than the {max} allowed")]
    InputTooLarge {
        name: String,
        size: usize,
        max: usize,
    },
    #[error("plugin {name} ran out of fuel (budget {budget} units)")]
    OutOfFuel { name: String, budget: u64 },
    #[error("plugin {name} exceeded its deadline of {deadline_ms} ms")]
    Deadline { name: String, deadline_ms: u64 },
    #[error("plugin {name} exceeded its memory limit of {limit} bytes (asked for {requested})")]
    MemoryLimit {
        name: String,
        limit: u64,
        requested: u64,
    },
    #[error("plugin {name} overflowed its wasm stack ({max_bytes} bytes)")]
    StackOverflow { name: String, max_bytes: usize },
    #[error("plugin {name} panicked: {message}")]
    Panic { name: String, message: String },
    #[error("plugin {name} trapped: {message}")]
    Trap { name: String, message: String },
    #[error("plugin {name} tried to pass more than {max_bytes} bytes to the host in one call")]
    ResultTooLarge { name: String, max_bytes: usize },
    #[error("plugin {name} returned a malformed result: {message}")]
    MalformedResult { name: String, message: String },
    #[error("plugin {name}: all {max} plugin call slots are in use; try again")]
    Busy { name: String, max: u32 },
    #[error("plugin engine: {0}")]
    Engine(String),
}

/// How the host is set up: where the compile cache lives, if anywhere, and how many calls may
/// run at once.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// `None` compiles every plugin at every load.
    pub cache_dir: Option<PathBuf>,
    /// Slots of the instance pool (see [`limits::DEFAULT_CONCURRENT_CALLS`]).
    pub max_concurrent_calls: u32,
}

impl HostConfig {
    /// The default pool, with the compile cache in `cache_dir` (`None`: no cache).
    pub fn new(cache_dir: Option<PathBuf>) -> HostConfig {
        HostConfig {
            cache_dir,
            max_concurrent_calls: DEFAULT_CONCURRENT_CALLS,
        }
    }
}

/// One engine (one per process), its epoch ticker, the linkers and the compile cache.
pub struct PluginHost {
    engine: Engine,
    max_concurrent_calls: u32,
    linkers: api::Linkers,
    cache: Option<Cache>,
    ticker: Arc<Ticker>,
}

/// Stops the epoch ticker thread when the host and every plugin it loaded are gone.
struct Ticker {
    stop: Arc<AtomicBool>,
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A loaded plugin of the world `P` says ([`api::PlannerPre`], [`api::AuthPolicyPre`] or
/// [`api::AnyPre`]): its manifest, granted limits and pre-linked component. Cheap to call from
/// many threads; each call instantiates afresh.
pub struct Plugin<P> {
    manifest: Manifest,
    limits: Limits,
    pre: P,
    max_concurrent_calls: u32,
    imports: Vec<String>,
    exports: Vec<String>,
    cache_outcome: Option<CacheOutcome>,
    _ticker: Arc<Ticker>,
}

/// A planner (world `planner`): `describe` and `plan`.
pub type Planner = Plugin<api::PlannerPre>;

/// An auth policy (world `auth-policy`): `describe`, `decide_login` and `check_password`.
pub type AuthPolicyPlugin = Plugin<api::AuthPolicyPre>;

/// A plugin of the world its manifest names, not yet narrowed to it: `describe` only, until
/// [`AnyPlugin::into_planner`] or [`AnyPlugin::into_auth_policy`].
pub type AnyPlugin = Plugin<api::AnyPre>;

/// A planner's answer, with what it logged.
#[derive(Debug)]
pub struct PlanCall {
    pub answer: Result<Plan, Refusal>,
    pub log: CallLog,
}

/// The engine configuration every plugin runs under. Part of the cache key via
/// `precompile_compatibility_hash`.
///
/// Instances come from a pooling allocator sized from [`limits`]: a call instantiates into a
/// slot reserved at start-up (memory images mapped copy-on-write) instead of mapping fresh
/// memories and tables, and the slot is reset when the call's `Store` is dropped. Each call
/// still gets a fresh `Store` and a fresh instance; a slot never carries guest state over.
/// The pool's per-memory cap is the largest grant ([`MAX_MEMORY_BYTES`]), so `StoreLimits`
/// (the call's own grant, trapping on refusal) always refuses growth first.
pub fn engine_config(max_concurrent_calls: u32) -> Config {
    let calls = max_concurrent_calls.max(1);
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(calls)
        .max_core_instances_per_component(MAX_INSTANCES as u32)
        .total_core_instances(calls.saturating_mul(MAX_INSTANCES as u32))
        .max_memories_per_component(MAX_MEMORIES as u32)
        .max_memories_per_module(MAX_MEMORIES as u32)
        .total_memories(calls.saturating_mul(MAX_MEMORIES as u32))
        .max_memory_size(MAX_MEMORY_BYTES as usize)
        .max_tables_per_component(MAX_TABLES as u32)
        .max_tables_per_module(MAX_TABLES as u32)
        .total_tables(calls.saturating_mul(MAX_TABLES as u32))
        .table_elements(MAX_TABLE_ELEMENTS)
        .total_stacks(0)
        .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
        .table_keep_resident(TABLE_KEEP_RESIDENT_BYTES)
        // Reset only the pages a call dirtied (Linux 6.7+ PAGEMAP_SCAN; otherwise the whole
        // kept range is reset).
        .pagemap_scan(Enabled::Auto);
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.consume_fuel(true);
    config.epoch_interruption(true);
    config.max_wasm_stack(MAX_WASM_STACK_BYTES);
    config.memory_init_cow(true);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    config
}

impl PluginHost {
    pub fn new(config: &HostConfig) -> Result<PluginHost, PluginError> {
        let engine = Engine::new(&engine_config(config.max_concurrent_calls))
            .map_err(|e| PluginError::Engine(e.to_string()))?;
        let linkers = api::Linkers::new(&engine).map_err(|e| PluginError::Engine(e.to_string()))?;
        let cache = config.cache_dir.as_deref().map(Cache::open).transpose()?;
        let stop = Arc::new(AtomicBool::new(false));
        let weak = engine.weak();
        let thread_stop = Arc::clone(&stop);
        thread::Builder::new()
            .name("nos-plugin-epoch".into())
            .spawn(move || {
                while !thread_stop.load(Ordering::Relaxed) {
                    thread::sleep(EPOCH_TICK);
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })
            .map_err(|e| PluginError::Engine(format!("cannot start the epoch ticker: {e}")))?;
        Ok(PluginHost {
            engine,
            max_concurrent_calls: config.max_concurrent_calls,
            linkers,
            cache,
            ticker: Arc::new(Ticker { stop }),
        })
    }

    /// Load a planner; any other plugin is refused ([`PluginError::WrongKind`]).
    pub fn load_planner(&self, dir_or_manifest: &Path) -> Result<Planner, PluginError> {
        self.load(dir_or_manifest)?.into_planner()
    }

    /// Load an auth policy; any other plugin is refused ([`PluginError::WrongKind`]).
    pub fn load_auth_policy(
        &self,
        dir_or_manifest: &Path,
    ) -> Result<AuthPolicyPlugin, PluginError> {
        self.load(dir_or_manifest)?.into_auth_policy()
    }

    /// Load a plugin of either world from its directory (holding `plugin.toml`) or from the
    /// manifest path, pre-linked for the world its manifest names.
    ///
    /// Order: manifest → component size → sha256 → API version (manifest; an unreleased one
    /// only in a development build, see [`api::ALLOW_UNRELEASED`]) → compile or cache →
    /// imports → API version (exports) → pre-link. Nothing is compiled before the hash matches.
    pub fn load(&self, dir_or_manifest: &Path) -> Result<AnyPlugin, PluginError> {
        let manifest_path = if dir_or_manifest.is_dir() {
            dir_or_manifest.join("plugin.toml")
        } else {
            dir_or_manifest.to_path_buf()
        };
        let manifest_text = read_bounded(&manifest_path, MAX_MANIFEST_BYTES)?;
        let manifest_text =
            String::from_utf8(manifest_text).map_err(|_| PluginError::Manifest {
                path: manifest_path.clone(),
                message: "not UTF-8".into(),
            })?;
        let manifest =
            manifest::parse(&manifest_text).map_err(|message| PluginError::Manifest {
                path: manifest_path.clone(),
                message,
            })?;
        let name = manifest.name.clone();
        let component_path = manifest_path
            .parent()
            .unwrap_or(Path::new("."))
            .join(&manifest.component);
        let wasm = read_bounded(&component_path, MAX_COMPONENT_BYTES)?;
        let actual = hex::encode(Sha256::digest(&wasm));
        if actual != manifest.sha256 {
            return Err(PluginError::HashMismatch {
                name,
                expected: manifest.sha256.clone(),
                actual,
            });
        }
        let version_error = |plugin_version: ApiVersion| PluginError::ApiVersion {
            name: manifest.name.clone(),
            kind: manifest.kind,
            plugin_version: plugin_version.to_string(),
            supported: api::supported_range(),
        };
        let api_version = match api::select(manifest.api_version) {
            Ok(api_version) => api_version,
            Err(api::Unadmitted::Unsupported) => return Err(version_error(manifest.api_version)),
            Err(api::Unadmitted::Unreleased { .. }) => {
                return Err(PluginError::UnreleasedApi {
                    name,
                    kind: manifest.kind,
                    plugin_version: manifest.api_version.to_string(),
                    supported: api::supported_range(),
                });
            }
        };

        let compile_error = |e: wasmtime::Error| PluginError::Compile {
            name: manifest.name.clone(),
            message: format!("{e:#}"),
        };
        let (component, cache_outcome) = match &self.cache {
            Some(cache) => {
                let (component, outcome) = cache
                    .load_or_compile(&self.engine, &actual, &wasm)
                    .map_err(compile_error)?;
                (component, Some(outcome))
            }
            None => (
                Component::new(&self.engine, &wasm).map_err(compile_error)?,
                None,
            ),
        };
        let component_type = component.component_type();
        let imports: Vec<String> = component_type
            .imports(&self.engine)
            .map(|(import, _)| import.to_owned())
            .collect();
        let exports: Vec<String> = component_type
            .exports(&self.engine)
            .map(|(export, _)| export.to_owned())
            .collect();
        let forbidden = imports::forbidden(imports.iter().map(String::as_str));
        if !forbidden.is_empty() {
            return Err(PluginError::ForbiddenImport {
                name,
                imports: forbidden.into_iter().map(str::to_owned).collect(),
            });
        }
        match imports::exported_api_version(manifest.kind, exports.iter().map(String::as_str)) {
            Some(exported) if exported == manifest.api_version => {}
            Some(exported) => return Err(version_error(exported)),
            None => {
                return Err(PluginError::Compile {
                    name,
                    message: format!(
                        "it does not export nos:plugin/{} (a {} must)",
                        imports::export_interface(manifest.kind),
                        manifest.kind
                    ),
                });
            }
        }
        let pre = api::AnyPre::new(&self.linkers, manifest.kind, api_version, &component)
            .map_err(compile_error)?;
        let limits = Limits::grant(manifest.limits);
        Ok(Plugin {
            manifest,
            limits,
            pre,
            max_concurrent_calls: self.max_concurrent_calls,
            imports,
            exports,
            cache_outcome,
            _ticker: Arc::clone(&self.ticker),
        })
    }
}

impl AnyPlugin {
    /// The planner this plugin is, or [`PluginError::WrongKind`].
    pub fn into_planner(self) -> Result<Planner, PluginError> {
        self.narrow(PluginKind::Planner, api::AnyPre::into_planner)
    }

    /// The auth policy this plugin is, or [`PluginError::WrongKind`].
    pub fn into_auth_policy(self) -> Result<AuthPolicyPlugin, PluginError> {
        self.narrow(PluginKind::AuthPolicy, api::AnyPre::into_auth_policy)
    }

    /// The same plugin with its pre-linked component narrowed to one world.
    fn narrow<P>(
        self,
        expected: PluginKind,
        into: impl FnOnce(api::AnyPre) -> Result<P, api::AnyPre>,
    ) -> Result<Plugin<P>, PluginError> {
        let Plugin {
            manifest,
            limits,
            pre,
            max_concurrent_calls,
            imports,
            exports,
            cache_outcome,
            _ticker,
        } = self;
        match into(pre) {
            Ok(pre) => Ok(Plugin {
                manifest,
                limits,
                pre,
                max_concurrent_calls,
                imports,
                exports,
                cache_outcome,
                _ticker,
            }),
            Err(pre) => Err(PluginError::WrongKind {
                name: manifest.name,
                expected,
                actual: pre.kind(),
            }),
        }
    }
}

impl<P: api::WorldPre> Plugin<P> {
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn imports(&self) -> &[String] {
        &self.imports
    }

    pub fn exports(&self) -> &[String] {
        &self.exports
    }

    /// `Some(Hit)` when the compiled artefact came from the cache.
    pub fn cache_outcome(&self) -> Option<CacheOutcome> {
        self.cache_outcome
    }

    /// What the plugin says about itself, size-checked like a plan.
    pub fn describe(&self) -> Result<PluginInfo, PluginError> {
        let (info, _) = self.call(|pre, store| pre.describe(store))?;
        let malformed = |message: String| PluginError::MalformedResult {
            name: self.manifest.name.clone(),
            message,
        };
        for (field, text, max) in [
            ("name", &info.name, MAX_INFO_WORD_BYTES),
            ("version", &info.version, MAX_INFO_WORD_BYTES),
            ("summary", &info.summary, plan_types::MAX_TEXT_BYTES),
        ] {
            if text.len() > max || text.chars().any(char::is_control) {
                return Err(malformed(format!(
                    "describe(): {field} is longer than {max} bytes or has control characters"
                )));
            }
        }
        if info.input_schema.len() > MAX_INPUT_SCHEMA_BYTES {
            return Err(malformed(format!(
                "describe(): input schema is longer than {MAX_INPUT_SCHEMA_BYTES} bytes"
            )));
        }
        Ok(info)
    }

    /// One call in a fresh store with this plugin's limits; errors classified.
    fn call<R>(
        &self,
        run: impl FnOnce(&P, &mut Store<CallState>) -> wasmtime::Result<R>,
    ) -> Result<(R, CallLog), PluginError> {
        let mut store = Store::new(self.pre.engine(), CallState::new(&self.limits));
        store.limiter(|state| &mut state.limiter);
        store
            .set_fuel(self.limits.fuel)
            .map_err(|e| PluginError::Engine(e.to_string()))?;
        store.set_hostcall_fuel(MAX_TRANSFER_BYTES);
        store.set_epoch_deadline(self.limits.deadline_ticks());
        store.epoch_deadline_trap();
        let result = run(&self.pre, &mut store);
        let state = store.into_data();
        match result {
            Ok(value) => Ok((value, state.log)),
            Err(error) => Err(self.classify(error, &state)),
        }
    }

    fn classify(&self, error: wasmtime::Error, state: &CallState) -> PluginError {
        let name = self.manifest.name.clone();
        if error.downcast_ref::<PoolConcurrencyLimitError>().is_some() {
            return PluginError::Busy {
                name,
                max: self.max_concurrent_calls,
            };
        }
        if let Some(requested) = state.limiter.refused_memory_bytes {
            return PluginError::MemoryLimit {
                name,
                limit: self.limits.memory_bytes,
                requested: requested as u64,
            };
        }
        // wasmtime's error for exhausted hostcall fuel is a private type; its message is the
        // only handle (pinned by the hostile_huge_plan test).
        if format!("{error:#}").contains("fuel allocated for hostcalls has been exhausted") {
            return PluginError::ResultTooLarge {
                name,
                max_bytes: MAX_TRANSFER_BYTES,
            };
        }
        match error.downcast_ref::<Trap>() {
            Some(Trap::OutOfFuel) => PluginError::OutOfFuel {
                name,
                budget: self.limits.fuel,
            },
            Some(Trap::Interrupt) => PluginError::Deadline {
                name,
                deadline_ms: self.limits.deadline_ms,
            },
            Some(Trap::StackOverflow) => PluginError::StackOverflow {
                name,
                max_bytes: MAX_WASM_STACK_BYTES,
            },
            _ => match &state.log.panic {
                Some(message) => PluginError::Panic {
                    name,
                    message: message.clone(),
                },
                None => PluginError::Trap {
                    name,
                    message: trap_message(&error),
                },
            },
        }
    }
}

impl Planner {
    /// Run the planner. The plan is size-checked here (`plan::types::validate`); judging it
    /// against the allowlist is `plan::check`'s job.
    pub fn plan(&self, facts: &Facts, input: &str) -> Result<PlanCall, PluginError> {
        if input.len() > MAX_INPUT_BYTES {
            return Err(PluginError::InputTooLarge {
                name: self.manifest.name.clone(),
                size: input.len(),
                max: MAX_INPUT_BYTES,
            });
        }
        let (answer, log) = self.call(|pre, store| pre.make_plan(store, facts, input))?;
        if let Ok(plan) = &answer {
            plan_types::validate(plan).map_err(|message| PluginError::MalformedResult {
                name: self.manifest.name.clone(),
                message,
            })?;
        }
        Ok(PlanCall { answer, log })
    }
}

impl AuthPolicyPlugin {
    pub fn decide_login(&self, attempt: &LoginAttempt) -> Result<LoginDecision, PluginError> {
        self.call(|pre, store| pre.decide_login(store, attempt))
            .map(|(decision, _)| decision)
    }

    pub fn check_password(
        &self,
        features: &PasswordFeatures,
    ) -> Result<PasswordVerdict, PluginError> {
        let (verdict, _) = self.call(|pre, store| pre.check_password(store, features))?;
        if let PasswordVerdict::Reject(reason) = &verdict
            && (reason.len() > plan_types::MAX_TEXT_BYTES || reason.chars().any(char::is_control))
        {
            return Err(PluginError::MalformedResult {
                name: self.manifest.name.clone(),
                message: "password rejection reason is too long or has control characters".into(),
            });
        }
        Ok(verdict)
    }
}

/// The trap (or error) itself plus the innermost guest function, without the full backtrace.
fn trap_message(error: &wasmtime::Error) -> String {
    let what = match error.downcast_ref::<Trap>() {
        Some(trap) => trap.to_string(),
        None => error.to_string(),
    };
    let frame = error
        .downcast_ref::<wasmtime::WasmBacktrace>()
        .and_then(|backtrace| backtrace.frames().first())
        .and_then(|frame| frame.func_name().map(str::to_owned));
    match frame {
        Some(func) => format!("{what} (in {func})"),
        None => what,
    }
}

/// Read a whole file, refusing one larger than `max` bytes without reading it all.
fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>, PluginError> {
    let io_err = |source| PluginError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = fs::File::open(path).map_err(io_err)?;
    let mut bytes = Vec::new();
    file.take(max + 1).read_to_end(&mut bytes).map_err(io_err)?;
    if bytes.len() as u64 > max {
        let size = fs::metadata(path)
            .map(|m| m.len())
            .unwrap_or(bytes.len() as u64);
        return Err(PluginError::FileTooLarge {
            path: path.to_path_buf(),
            size,
            max,
        });
    }
    Ok(bytes)
}
