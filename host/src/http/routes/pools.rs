//! `/api/v1/pools`: the pool registry as reconciled at the latest facts refresh.
//!
//! Reads need a live session, like every other read. A request first makes sure the facts are
//! at most a few seconds old (the pipeline's facts cache; `?refresh=true` observes now), so the
//! report it answers from is that fresh; the periodic refresh keeps it current between
//! requests. The judgement is `pools::reconcile`'s; this module only maps it to
//! `http::api`'s bodies.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;

use crate::http::api::{
    CountersView, ImportableView, LastGoodView, MemberView, MountInputView, PoolView, PoolsQuery,
    PoolsView, ScrubView,
};
use crate::http::error::ApiError;
use crate::http::extract::AuthSession;
use crate::pipeline::PipelineSlot;
use crate::pools::PoolService;
use crate::pools::reconcile::{Importable, PoolState, PoolStatus, Report};
use crate::pools::registry::ScrubRecord;
use crate::state::AppState;

/// Longest UUID accepted in a path (a btrfs UUID is 36 characters).
const UUID_LEN: usize = 36;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/pools", get(list_pools))
        .route("/api/v1/pools/{uuid}", get(get_pool))
}

async fn list_pools(
    State(slot): State<Arc<PipelineSlot>>,
    State(pools): State<Arc<PoolService>>,
    _session: AuthSession,
    Query(query): Query<PoolsQuery>,
) -> Result<Json<PoolsView>, ApiError> {
    let report = fresh_report(&slot, &pools, query.refresh).await?;
    Ok(Json(PoolsView {
        importable: report.importable.iter().map(importable_view).collect(),
        observed_at: report.at,
        pools: report.pools.iter().map(pool_view).collect(),
    }))
}

async fn get_pool(
    State(slot): State<Arc<PipelineSlot>>,
    State(pools): State<Arc<PoolService>>,
    _session: AuthSession,
    Path(uuid): Path<String>,
) -> Result<Json<PoolView>, ApiError> {
    if !is_uuid(&uuid) {
        return Err(ApiError::Refused {
            status: StatusCode::NOT_FOUND,
            code: "pool.malformed_uuid",
            message: "not a filesystem UUID (expected 8-4-4-4-12 hexadecimal digits)".into(),
        });
    }
    let report = fresh_report(&slot, &pools, false).await?;
    let uuid = uuid.to_ascii_lowercase();
    match report.pools.iter().find(|pool| pool.uuid == uuid) {
        Some(pool) => Ok(Json(pool_view(pool))),
        None => Err(ApiError::Refused {
            status: StatusCode::NOT_FOUND,
            code: "pool.unknown",
            message: format!("no registered pool has UUID {uuid}"),
        }),
    }
}

/// The report after facts at most a few seconds old (now, with `refresh`).
async fn fresh_report(
    slot: &PipelineSlot,
    pools: &Arc<PoolService>,
    refresh: bool,
) -> Result<Report, ApiError> {
    let pipeline = slot.get()?;
    let pools = pools.clone();
    tokio::task::spawn_blocking(move || {
        pipeline.cached_facts(refresh)?;
        match pools.report() {
            Some(report) => Ok(report),
            // Facts cached before the registry observed them: observe once more.
            None => {
                pipeline.cached_facts(true)?;
                pools
                    .report()
                    .ok_or_else(|| ApiError::Internal("no pool report after a refresh".into()))
            }
        }
    })
    .await
    .map_err(|err| ApiError::Internal(err.to_string()))?
}

/// `8-4-4-4-12` hexadecimal digits, either case.
fn is_uuid(text: &str) -> bool {
    text.len() == UUID_LEN
        && text.char_indices().all(|(idx, c)| match idx {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

fn pool_view(pool: &PoolStatus) -> PoolView {
    let (mounted_at, mount_input) = match &pool.state {
        PoolState::MountedElsewhere { mountpoint } => (mountpoint.clone(), None),
        PoolState::NotMounted { mount } => (
            None,
            Some(MountInputView {
                mountpoint: mount.mountpoint.clone(),
                uuid: mount.uuid.clone(),
            }),
        ),
        PoolState::Mounted | PoolState::MembersMissing { .. } => (None, None),
    };
    let mounted = match &pool.state {
        PoolState::Mounted | PoolState::MountedElsewhere { .. } => true,
        PoolState::NotMounted { .. } => false,
        PoolState::MembersMissing { mounted, .. } => *mounted,
    };
    PoolView {
        data_profile: pool.data_profile.clone(),
        mounted,
        encrypted: pool.encrypted,
        health: pool.health.state.as_str(),
        label: pool.label.clone(),
        last_good: pool.last_good.map(|good| LastGoodView {
            at: good.at,
            n_members: good.n_members,
            size_bytes: good.size_bytes,
        }),
        last_scrub: pool.last_scrub.as_ref().map(scrub_view),
        scrub_history: pool.scrub_history.iter().map(scrub_view).collect(),
        members: pool
            .members
            .iter()
            .map(|member| MemberView {
                by_id: member.by_id.clone(),
                counters: member.counters.map(|counters| CountersView {
                    corruption_errs: counters.corruption_errs,
                    flush_io_errs: counters.flush_io_errs,
                    generation_errs: counters.generation_errs,
                    read_io_errs: counters.read_io_errs,
                    write_io_errs: counters.write_io_errs,
                }),
                devid: member.devid,
                missing: member.missing,
                path: member.path.clone(),
            })
            .collect(),
        metadata_profile: pool.metadata_profile.clone(),
        mountpoint: pool.mountpoint.clone(),
        mounted_at,
        mount_input,
        reasons: pool.health.reasons(),
        state: pool.state.as_str(),
        uuid: pool.uuid.clone(),
    }
}

fn importable_view(found: &Importable) -> ImportableView {
    ImportableView {
        devices: found.devices.clone(),
        label: found.label.clone(),
        n_missing: found.n_missing,
        total_devices: found.total_devices,
        uuid: found.uuid.clone(),
    }
}

fn scrub_view(scrub: &ScrubRecord) -> ScrubView {
    ScrubView {
        bytes_scrubbed: scrub.bytes_scrubbed,
        corrected_errors: scrub.corrected_errors,
        duration_seconds: scrub.duration_seconds,
        resumed: scrub.resumed,
        since: scrub.since_unix_seconds,
        state: scrub.state.clone(),
        uncorrectable_errors: scrub.uncorrectable_errors,
    }
}
