//! Building the pipeline at nosd's start from its config: the one plugin host of the process
//! (shared with the auth-policy plugin), registering with the agent when only a bootstrap token
//! exists, loading the allowlist and the planners, applying the stored grants, and opening the
//! job table (which marks interrupted jobs).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nos_protocol::{RequestBody, ResponseBody};

use super::grants::{self, PluginGrant};
use super::jobs::JobTable;
use super::port::{AgentPort, AgentSocket};
use super::{FailedPlugin, Pipeline, PipelineParts};
use crate::audit::{AuditKind, Auditor};
use crate::clock::Clock;
use crate::config::{Config, PipelineConfig};
use crate::plugin::{HostConfig, Planner, PluginHost};
use crate::store::StateDir;

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("allowlist {path}: {message}")]
    Allowlist { path: String, message: String },
    #[error("plugin {path}: {message}")]
    Plugin { path: String, message: String },
    #[error("registering with the agent: {0}")]
    Register(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// The one plugin host of nosd (one engine, one epoch ticker) for planners and the auth-policy
/// plugin; `None` when neither `[pipeline]` nor `[auth] policy_plugin` is configured. Its
/// compile cache is `[pipeline] plugin_cache_dir` (none without `[pipeline]`).
pub fn plugin_host(config: &Config) -> Result<Option<PluginHost>, SetupError> {
    if config.pipeline.is_none() && config.auth.policy_plugin.is_none() {
        return Ok(None);
    }
    let cache_dir = config
        .pipeline
        .as_ref()
        .and_then(|pipeline| pipeline.plugin_cache_dir.clone());
    PluginHost::new(&HostConfig::new(cache_dir))
        .map(Some)
        .map_err(|err| SetupError::Plugin {
            path: "<engine>".into(),
            message: err.to_string(),
        })
}

/// Registers with the agent when `token_file` is missing and a bootstrap token is configured;
/// writes the token file 0600 (outside the state directory: its path is the operator's).
pub fn ensure_registered(config: &PipelineConfig) -> Result<(), SetupError> {
    if config.token_file.exists() {
        return Ok(());
    }
    let Some(bootstrap_file) = &config.bootstrap_token_file else {
        return Err(SetupError::Register(format!(
            "no token file {} and no bootstrap_token_file",
            config.token_file.display()
        )));
    };
    let bootstrap = crate::agent_client::read_token_file(bootstrap_file)
        .map_err(|err| SetupError::Register(err.to_string()))?;
    let mut client = crate::agent_client::AgentClient::connect(
        &config.agent_socket,
        Some(std::time::Duration::from_secs(10)),
    )
    .map_err(|err| SetupError::Register(err.to_string()))?;
    match client
        .request(RequestBody::Register {
            bootstrap_token: bootstrap,
        })
        .map_err(|err| SetupError::Register(err.to_string()))?
    {
        ResponseBody::Token { token, .. } => {
            let parent = config.token_file.parent().unwrap_or(Path::new("."));
            let name = config
                .token_file
                .file_name()
                .and_then(|name| name.to_str())
                .ok_or_else(|| SetupError::Register("token_file has no file name".into()))?;
            crate::store::atomic::write(parent, name, format!("{token}\n").as_bytes(), 0o600)?;
            Ok(())
        }
        other => Err(SetupError::Register(format!("agent answered {other:?}"))),
    }
}

/// What the pipeline takes from the rest of nosd.
pub struct PipelineDeps<'a> {
    /// `[allowlist] path`: one allowlist file for all of nosd (overlays in `allowlist.d/`).
    pub allowlist_path: &'a Path,
    pub store: Arc<StateDir>,
    pub auditor: Auditor,
    pub clock: Arc<dyn Clock>,
}

/// Builds the pipeline with `port` (the agent socket in nosd) and the planners loaded by
/// `host`, with their stored grants (or all granted under `dangerous_grant_all_plugins`);
/// opens the job table, auditing every job it marks interrupted. A planner that fails to load
/// never stops nosd: it is kept in [`Pipeline::failed`] with its reason (and logged), and the
/// rest load. Only the allowlist, the state directory and the job table are fatal here.
pub fn build(
    deps: PipelineDeps<'_>,
    config: &PipelineConfig,
    port: Arc<dyn AgentPort>,
    host: &PluginHost,
) -> Result<Arc<Pipeline>, SetupError> {
    let allowlist =
        nos_allowlist::files::load(deps.allowlist_path).map_err(|err| SetupError::Allowlist {
            path: deps.allowlist_path.display().to_string(),
            message: err.to_string(),
        })?;
    let stored_grants = grants::load(&deps.store)?;
    let mut plugins = BTreeMap::new();
    let (loaded, failed) = load_planners(host, &config.plugins);
    for failure in &failed {
        tracing::error!(path = %failure.path, reason = %failure.reason, "planner not loaded; nosd serves without it");
    }
    for plugin in loaded {
        let stored = stored_grants
            .by_sha256
            .get(&plugin.manifest().sha256)
            .copied()
            .unwrap_or_default();
        let all = config.dangerous_grant_all_plugins;
        let grant = PluginGrant {
            enabled: stored.enabled || all,
            granted: stored.granted || all,
        };
        plugins.insert(plugin.manifest().name.clone(), (Arc::new(plugin), grant));
    }
    let (jobs, interrupted) = JobTable::open(deps.store.clone(), deps.clock.now())?;
    for job_id in interrupted {
        deps.auditor.decision(
            AuditKind::JobInterrupted,
            None,
            "interrupted",
            format!("job {job_id} was running when nosd stopped; marked interrupted"),
        );
    }
    Ok(Arc::new(Pipeline::new(PipelineParts {
        allowlist,
        port,
        plugins,
        failed,
        // An unreadable locks file stops the pipeline: never plan as if nothing were locked.
        locks: super::locks::load(&deps.store)?,
        jobs,
        plan_ttl_seconds: config.plan_ttl_seconds,
        auditor: deps.auditor,
        clock: deps.clock,
        store: deps.store,
    })))
}

/// Loads every planner in `dirs` (the one loading path of nosd's start and of
/// `nosd --check-config`): the ones that load, and each one that did not with its reason.
pub fn load_planners(host: &PluginHost, dirs: &[PathBuf]) -> (Vec<Planner>, Vec<FailedPlugin>) {
    let mut loaded = Vec::new();
    let mut failed = Vec::new();
    for dir in dirs {
        match host.load_planner(dir) {
            Ok(plugin) => loaded.push(plugin),
            Err(err) => failed.push(FailedPlugin {
                path: dir.display().to_string(),
                reason: err.to_string(),
            }),
        }
    }
    (loaded, failed)
}

/// The production port for a config.
pub fn agent_port(config: &PipelineConfig) -> Arc<dyn AgentPort> {
    Arc::new(AgentSocket {
        socket: config.agent_socket.clone(),
        token_file: config.token_file.clone(),
        sysfs_btrfs: config.sysfs_btrfs.clone(),
        fixture_facts: config.fixture_facts.clone(),
    })
}
