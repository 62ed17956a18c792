//! Bindings for `wit/since_v0.3.0` (`nos:plugin@0.3.0`), the latest version: the facts of 0.2.0
//! ([`super::facts_since_v0_2_0`]) plus each mounted pool's subvolumes (shares, snapshot
//! containers, snapshots, with nos's locks), lowered here. The glue shared with other versions
//! is [`super::shared_glue`]. Frozen with its WIT directory once released.

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Engine, Store};

use crate::facts::{BtrfsFilesystem, DeviceState, Facts, SubvolumeKind};
use crate::plan::types as host;
use crate::plugin::PluginInfo;
use crate::plugin::manifest::ApiVersion;
use crate::plugin::policy::{LoginAttempt, LoginDecision, PasswordFeatures, PasswordVerdict};
use crate::plugin::state::{CallState, LogLevel};

pub const VERSION: ApiVersion = ApiVersion::new(0, 3, 0);

mod planner {
    wasmtime::component::bindgen!({
        world: "planner",
        path: "../wit/since_v0.3.0",
    });
}

mod auth {
    wasmtime::component::bindgen!({
        world: "auth-policy",
        path: "../wit/since_v0.3.0",
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

super::shared_glue!(subvolumes: subvolumes_to_wit);

super::facts_since_v0_2_0!();

fn subvolumes_to_wit(fs: &BtrfsFilesystem) -> Option<Vec<wit_facts::Subvolume>> {
    let subvolumes = fs.subvolumes.as_ref()?;
    Some(
        subvolumes
            .iter()
            .map(|subvolume| wit_facts::Subvolume {
                id: subvolume.id,
                path: subvolume.path.clone(),
                kind: match subvolume.kind {
                    SubvolumeKind::Share => wit_facts::SubvolumeKind::Share,
                    SubvolumeKind::SnapshotDir => wit_facts::SubvolumeKind::SnapshotDir,
                    SubvolumeKind::Snapshot => wit_facts::SubvolumeKind::Snapshot,
                    SubvolumeKind::Other => wit_facts::SubvolumeKind::Other,
                },
                share: subvolume.share.clone(),
                uuid: subvolume.uuid.clone(),
                parent_uuid: subvolume.parent_uuid.clone(),
                locked: subvolume.locked,
            })
            .collect(),
    )
}
