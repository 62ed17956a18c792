//! Snapshot locks: snapshots an admin keeps out of retention and out of every delete.
//!
//! Kept in `snapshot-locks.json` (through `store/`, read once at start and held by the
//! pipeline) by pool filesystem UUID and the snapshot's path in the pool; nosd marks them `locked` in the facts of every refresh ([`mark`]), so a
//! planner sees them (retention never counts a locked snapshot as deletable) and
//! `plan::subvolumes` refuses any step that would delete one whatever a planner returned. A
//! lock is nosd's own state, not a command: no root action changes, so it is not a plan. The
//! re-authentication an unlock needs is checked by the caller; this module knows no HTTP.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{Pipeline, Refusal};
use crate::audit::AuditKind;
use crate::facts::{Facts, SubvolumeKind};
use crate::store::{StateDir, StateFile, StoreError};

/// At most this many locked snapshots in all: a lock is a deliberate act, not a policy.
pub const MAX_LOCKS: usize = 4096;

/// What `snapshot-locks.json` holds: by pool UUID, the locked snapshots' paths in the pool.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocksFile {
    pub by_pool: BTreeMap<String, BTreeSet<String>>,
}

impl LocksFile {
    fn len(&self) -> usize {
        self.by_pool.values().map(BTreeSet::len).sum()
    }
}

/// Reads `snapshot-locks.json` (no locks when it does not exist).
pub fn load(store: &StateDir) -> Result<LocksFile, StoreError> {
    Ok(store.load(StateFile::SnapshotLocks)?.unwrap_or_default())
}

/// Marks every locked snapshot in `facts` (pure).
pub fn mark(locks: &LocksFile, facts: &mut Facts) {
    for fs in &mut facts.filesystems {
        let Some(locked) = locks.by_pool.get(&fs.uuid) else {
            continue;
        };
        for subvolume in fs.subvolumes.iter_mut().flatten() {
            subvolume.locked =
                subvolume.kind == SubvolumeKind::Snapshot && locked.contains(&subvolume.path);
        }
    }
}

/// Locks (`locked`) or unlocks the snapshot at `path` (relative to the pool) of the pool with
/// filesystem UUID `pool`, for `username`: the snapshot must be one the fresh facts show. The
/// cached facts are dropped, so the next plan sees the change (and a plan made before it is
/// stale at apply). Persisted, then audited.
pub fn set(
    pipeline: &Pipeline,
    username: &str,
    pool: &str,
    path: &str,
    locked: bool,
) -> Result<(), Refusal> {
    let kind = if locked {
        AuditKind::SnapshotLocked
    } else {
        AuditKind::SnapshotUnlocked
    };
    let facts = pipeline.cached_facts(true)?;
    let known = facts
        .filesystems
        .iter()
        .find(|fs| fs.uuid == pool)
        .and_then(|fs| fs.subvolumes.as_ref())
        .is_some_and(|list| {
            list.iter()
                .any(|s| s.kind == SubvolumeKind::Snapshot && s.path == path)
        });
    if !known {
        return Err(Refusal::UnknownSnapshot {
            pool: pool.into(),
            path: path.into(),
        });
    }
    // Held across the write: two changes never both start from the same copy.
    let mut held = crate::unpoisoned::lock(&pipeline.locks);
    let mut file = held.clone();
    let changed = if locked {
        if file.len() >= MAX_LOCKS {
            return Err(Refusal::TooManyLocks { max: MAX_LOCKS });
        }
        file.by_pool
            .entry(pool.to_owned())
            .or_default()
            .insert(path.to_owned())
    } else {
        let removed = file
            .by_pool
            .get_mut(pool)
            .is_some_and(|paths| paths.remove(path));
        file.by_pool.retain(|_, paths| !paths.is_empty());
        removed
    };
    if changed {
        pipeline.store.save(StateFile::SnapshotLocks, &file)?;
        *held = file;
        drop(held);
        pipeline.drop_cached_facts();
    }
    pipeline.auditor.decision(
        kind,
        Some(username),
        "ok",
        format!(
            "pool {pool}: snapshot {path}{}",
            if changed { "" } else { " (unchanged)" }
        ),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{BtrfsFilesystem, Subvolume};

    fn subvolume(path: &str, kind: SubvolumeKind) -> Subvolume {
        Subvolume {
            id: 256,
            path: path.into(),
            kind,
            share: Some("media".into()),
            uuid: "u".into(),
            parent_uuid: None,
            locked: false,
        }
    }

    #[test]
    fn mark_locks_only_snapshots_of_their_own_pool() {
        let fs = |uuid: &str| BtrfsFilesystem {
            uuid: uuid.into(),
            label: None,
            mountpoint: format!("/srv/{uuid}"),
            devices: vec![],
            data_profile: "single".into(),
            metadata_profile: "dup".into(),
            size_bytes: 0,
            used_bytes: 0,
            subvolumes: Some(vec![
                subvolume("media", SubvolumeKind::Share),
                subvolume(".snapshots/media/20261202T190000Z", SubvolumeKind::Snapshot),
            ]),
        };
        let mut facts = Facts {
            block_devices: vec![],
            filesystems: vec![fs("a"), fs("b")],
            fresh_uuids: vec![],
            now_unix_seconds: 0,
        };
        let mut locks = LocksFile::default();
        locks.by_pool.insert(
            "a".into(),
            [
                "media".to_owned(),
                ".snapshots/media/20261202T190000Z".to_owned(),
            ]
            .into(),
        );
        mark(&locks, &mut facts);
        let locked: Vec<(&str, &str)> = facts
            .filesystems
            .iter()
            .flat_map(|fs| {
                fs.subvolumes
                    .iter()
                    .flatten()
                    .filter(|s| s.locked)
                    .map(move |s| (fs.uuid.as_str(), s.path.as_str()))
            })
            .collect();
        assert_eq!(locked, [("a", ".snapshots/media/20261202T190000Z")]);
    }
}
