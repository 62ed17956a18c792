//! `/api/v1/pools/{uuid}/shares…`: the shares and snapshots of a mounted pool, from the facts
//! (at most a few seconds old), and snapshot locks (`pipeline::locks`).
//!
//! Creating and deleting shares and snapshots are plans (the `shares` and `snapshots`
//! planners), never routes here: a route only reads, or changes nosd's own lock state.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};

use crate::facts::{BtrfsFilesystem, Facts, SubvolumeKind};
use crate::http::api::{LockRequest, LockView, ShareView, SharesView, SnapshotView, SnapshotsView};
use crate::http::error::ApiError;
use crate::http::extract::{AppJson, AuthSession};
use crate::pipeline::{PipelineSlot, locks};
use crate::session::service::SessionService;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/pools/{uuid}/shares", get(list_shares))
        .route(
            "/api/v1/pools/{uuid}/shares/{name}/snapshots",
            get(list_snapshots),
        )
        .route("/api/v1/pools/{uuid}/snapshots/lock", post(lock_snapshot))
}

/// Longest path accepted in a lock request.
const MAX_PATH: usize = 4096;

async fn facts(slot: &PipelineSlot) -> Result<Facts, ApiError> {
    let pipeline = slot.get()?;
    tokio::task::spawn_blocking(move || pipeline.cached_facts(false))
        .await
        .map_err(|err| ApiError::Internal(err.to_string()))?
        .map_err(ApiError::from)
}

/// The mounted pool with filesystem UUID `uuid`, whose subvolumes were read.
fn mounted<'a>(facts: &'a Facts, uuid: &str) -> Result<&'a BtrfsFilesystem, ApiError> {
    let uuid = uuid.to_ascii_lowercase();
    let fs = facts
        .filesystems
        .iter()
        .find(|fs| fs.uuid == uuid)
        .ok_or_else(|| ApiError::Refused {
            status: StatusCode::NOT_FOUND,
            code: "pool.unknown",
            message: format!("no mounted pool has UUID {uuid:.64}"),
        })?;
    if fs.subvolumes.is_none() {
        return Err(ApiError::Refused {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "pool.subvolumes_unread",
            message: format!(
                "the subvolumes of {} could not be read (see nosd's log)",
                fs.mountpoint
            ),
        });
    }
    Ok(fs)
}

async fn list_shares(
    State(slot): State<Arc<PipelineSlot>>,
    _session: AuthSession,
    Path(uuid): Path<String>,
) -> Result<Json<SharesView>, ApiError> {
    let facts = facts(&slot).await?;
    let fs = mounted(&facts, &uuid)?;
    let subvolumes = fs.subvolumes.as_deref().unwrap_or_default();
    let shares = subvolumes
        .iter()
        .filter(|s| s.kind == SubvolumeKind::Share)
        .map(|share| {
            let snapshots: Vec<_> = subvolumes
                .iter()
                .filter(|s| s.kind == SubvolumeKind::Snapshot && s.share == share.share)
                .collect();
            ShareView {
                id: share.id,
                latest_snapshot: snapshots
                    .iter()
                    .filter_map(|s| Some((taken_at(s.name())?, s.name())))
                    .max()
                    .map(|(_, name)| name.to_owned()),
                locked_snapshots: snapshots.iter().filter(|s| s.locked).count(),
                name: share.path.clone(),
                path: fs.subvolume_path(share),
                snapshots: snapshots.len(),
            }
        })
        .collect();
    Ok(Json(SharesView {
        mountpoint: fs.mountpoint.clone(),
        other: subvolumes
            .iter()
            .filter(|s| s.kind == SubvolumeKind::Other)
            .map(|s| s.path.clone())
            .collect(),
        pool_uuid: fs.uuid.clone(),
        shares,
    }))
}

async fn list_snapshots(
    State(slot): State<Arc<PipelineSlot>>,
    _session: AuthSession,
    Path((uuid, name)): Path<(String, String)>,
) -> Result<Json<SnapshotsView>, ApiError> {
    let facts = facts(&slot).await?;
    let fs = mounted(&facts, &uuid)?;
    let subvolumes = fs.subvolumes.as_deref().unwrap_or_default();
    if !subvolumes
        .iter()
        .any(|s| s.kind == SubvolumeKind::Share && s.path == name)
    {
        return Err(ApiError::Refused {
            status: StatusCode::NOT_FOUND,
            code: "share.unknown",
            message: format!("pool {} has no share {name:.64}", fs.mountpoint),
        });
    }
    let mut snapshots: Vec<SnapshotView> = subvolumes
        .iter()
        .filter(|s| s.kind == SubvolumeKind::Snapshot && s.share.as_deref() == Some(&name))
        .map(|s| {
            let snapshot = s.name();
            SnapshotView {
                id: s.id,
                locked: s.locked,
                name: snapshot.to_owned(),
                path: s.path.clone(),
                tag: nos_retention::tag_of(snapshot).map(str::to_owned),
                taken_at: taken_at(snapshot),
            }
        })
        .collect();
    snapshots.sort_by(|a, b| b.taken_at.cmp(&a.taken_at).then(b.name.cmp(&a.name)));
    Ok(Json(SnapshotsView {
        share: name,
        snapshots,
    }))
}

async fn lock_snapshot(
    State(slot): State<Arc<PipelineSlot>>,
    State(sessions): State<Arc<SessionService>>,
    session: AuthSession,
    Path(uuid): Path<String>,
    AppJson(body): AppJson<LockRequest>,
) -> Result<Json<LockView>, ApiError> {
    if !body.locked {
        session.require_recent_auth(&sessions)?;
    }
    if body.path.len() > MAX_PATH {
        return Err(ApiError::PayloadTooLarge);
    }
    let pipeline = slot.get()?;
    let username = session.family.username.clone();
    let uuid = uuid.to_ascii_lowercase();
    let (path, locked) = (body.path.clone(), body.locked);
    tokio::task::spawn_blocking(move || locks::set(&pipeline, &username, &uuid, &path, locked))
        .await
        .map_err(|err| ApiError::Internal(err.to_string()))??;
    Ok(Json(LockView {
        locked: body.locked,
        path: body.path,
    }))
}

/// The time a snapshot's name carries, if nos named it.
fn taken_at(name: &str) -> Option<i64> {
    nos_retention::parse_name(name).ok().map(|at| at.0)
}
