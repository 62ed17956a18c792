//! Plugin grants: whether an admin granted a planner (`granted`) and offers it (`enabled`).
//!
//! In memory the grants are kept by plugin name beside the loaded planners; on disk
//! (`plugins.json`, through `store/`) they are kept by the component's sha256, so a changed
//! component is a new plugin that nobody granted. [`change`] is the one way a grant changes:
//! it names the component hash the admin reviewed and refuses (audited) when that is not the
//! loaded one, so a grant is never transferred to another component. This module knows no
//! HTTP; the re-authentication that grants need is checked by the caller.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Pipeline, Refusal};
use crate::audit::AuditKind;
use crate::store::{StateDir, StateFile, StoreError};

/// What `plugins.json` holds: grants and enablement by component sha256.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct PluginsFile {
    pub by_sha256: BTreeMap<String, PluginGrant>,
}

/// One plugin's grant; the default (a component nobody reviewed) is neither.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginGrant {
    pub enabled: bool,
    pub granted: bool,
}

impl PluginGrant {
    /// Whether plans may be made and applied with the plugin: granted *and* enabled.
    pub fn usable(self) -> bool {
        self.granted && self.enabled
    }
}

/// Reads `plugins.json` (no grants when it does not exist).
pub fn load(store: &StateDir) -> Result<PluginsFile, StoreError> {
    Ok(store.load(StateFile::Plugins)?.unwrap_or_default())
}

/// What a grant, revoke or enable/disable asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantChange {
    /// Grant the component with this sha256 (the one the admin reviewed).
    Grant,
    /// Revoke the component with this sha256.
    Revoke,
    /// Offer the plugin, or stop offering it.
    Enable(bool),
}

impl GrantChange {
    fn audit_kind(self) -> AuditKind {
        match self {
            GrantChange::Grant => AuditKind::PluginGranted,
            GrantChange::Revoke => AuditKind::PluginRevoked,
            GrantChange::Enable(true) => AuditKind::PluginEnabled,
            GrantChange::Enable(false) => AuditKind::PluginDisabled,
        }
    }

    fn apply(self, grant: &mut PluginGrant) {
        match self {
            GrantChange::Grant => grant.granted = true,
            GrantChange::Revoke => grant.granted = false,
            GrantChange::Enable(enabled) => grant.enabled = enabled,
        }
    }
}

/// A grant after a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    pub name: String,
    pub sha256: String,
    pub grant: PluginGrant,
}

/// Applies `change` to plugin `name` for `username` (only when `reviewed_sha256`, if given, is
/// the loaded component's hash), persists it by hash and audits it.
pub fn change(
    pipeline: &Pipeline,
    username: &str,
    name: &str,
    reviewed_sha256: Option<&str>,
    change: GrantChange,
) -> Result<Changed, Refusal> {
    let kind = change.audit_kind();
    let plugin = pipeline
        .plugins
        .get(name)
        .ok_or_else(|| Refusal::UnknownPlugin { name: name.into() })?;
    let sha256 = plugin.manifest().sha256.clone();
    if let Some(reviewed) = reviewed_sha256
        && reviewed != sha256
    {
        pipeline.auditor.decision(
            kind,
            Some(username),
            "refused",
            format!("plugin {name}: asked for sha256 {reviewed:.64}, loaded is {sha256}"),
        );
        return Err(Refusal::HashMismatch {
            name: name.into(),
            loaded: sha256,
        });
    }
    let grant = {
        let mut grants = crate::unpoisoned::lock(&pipeline.grants);
        let grant = grants.entry(name.to_string()).or_default();
        change.apply(grant);
        *grant
    };
    let mut file = load(&pipeline.store)?;
    file.by_sha256.insert(sha256.clone(), grant);
    pipeline.store.save(StateFile::Plugins, &file)?;
    pipeline.auditor.decision(
        kind,
        Some(username),
        "ok",
        format!(
            "plugin {name} ({sha256}): granted={} enabled={}",
            grant.granted, grant.enabled
        ),
    );
    Ok(Changed {
        name: name.into(),
        sha256,
        grant,
    })
}
