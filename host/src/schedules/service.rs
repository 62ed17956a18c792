//! The schedule service: the book in `schedules.json`, each change checked against the loaded
//! allowlist and planner, written through `store/` and audited.
//!
//! Each change is made on a copy of the book, written (atomic, fsync'd), and only then made
//! current; then it is audited. The book is behind a `std` mutex held across the write, so
//! writes land in the order of the changes and a run's [`ScheduleService::while_current`]
//! excludes a revoke or an edit. Every method blocks (the file write; checking terms calls the
//! planner's `describe()`): call them off the async workers.

use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::model::{LastRun, Schedule, ScheduleBook, Terms, TermsError, due, normalize};
use crate::audit::{AuditKind, Auditor};
use crate::clock::{Clock, UnixSeconds};
use crate::pipeline::{MAX_INPUT_BYTES, Pipeline};
use crate::store::{StateDir, StateFile, StoreError};
use crate::unpoisoned::lock;

/// Why a schedule change failed.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error(transparent)]
    Terms(#[from] TermsError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct ScheduleService {
    store: Arc<StateDir>,
    auditor: Auditor,
    clock: Arc<dyn Clock>,
    /// Held across the write, and across a run's admission ([`Self::while_current`]).
    book: Mutex<ScheduleBook>,
}

impl ScheduleService {
    /// Loads `schedules.json` (an absent file is an empty book).
    pub fn open(
        store: Arc<StateDir>,
        auditor: Auditor,
        clock: Arc<dyn Clock>,
    ) -> Result<ScheduleService, StoreError> {
        let book = store.load(StateFile::Schedules)?.unwrap_or_default();
        Ok(ScheduleService {
            store,
            auditor,
            clock,
            book: Mutex::new(book),
        })
    }

    pub fn now(&self) -> UnixSeconds {
        self.clock.now()
    }

    /// The audit log the service and its runner record in.
    pub fn auditor(&self) -> &Auditor {
        &self.auditor
    }

    /// Every schedule, oldest first.
    pub fn list(&self) -> Vec<Schedule> {
        lock(&self.book).list().to_vec()
    }

    pub fn get(&self, id: &str) -> Option<Schedule> {
        lock(&self.book).get(id).cloned()
    }

    /// The ids of the schedules due at `now` ([`super::model::due`]).
    pub fn due(&self, now: UnixSeconds) -> Vec<String> {
        due(&lock(&self.book), now)
    }

    /// Whether schedule `id` still exists at `revision`.
    pub fn is_current(&self, id: &str, revision: u32) -> bool {
        lock(&self.book)
            .get(id)
            .is_some_and(|schedule| schedule.revision == revision)
    }

    /// Runs `work` only while schedule `id` exists at `revision`, with the book locked, so no
    /// revoke or edit lands between the check and the work; `None` when it does not.
    pub fn while_current<T>(&self, id: &str, revision: u32, work: impl FnOnce() -> T) -> Option<T> {
        let book = lock(&self.book);
        let current = book
            .get(id)
            .is_some_and(|schedule| schedule.revision == revision);
        current.then(work)
    }

    /// Admin `by` approves a schedule of `planner` on `terms`, checked against `pipeline`
    /// ([`check_terms`]); audited.
    pub fn create(
        &self,
        pipeline: &Pipeline,
        planner: &str,
        terms: Terms,
        by: &str,
    ) -> Result<Schedule, ScheduleError> {
        let (terms, takes_tag) = check_terms(pipeline, planner, terms)?;
        let now = self.now();
        let created =
            self.change(|book| Ok(book.create(planner, terms, takes_tag, by, now)?.clone()))?;
        self.audit(AuditKind::ScheduleCreated, by, &created);
        Ok(created)
    }

    /// Admin `by` replaces the terms of schedule `id` (its revision goes up: a run planned
    /// under the old terms does not apply); audited.
    pub fn edit(
        &self,
        pipeline: &Pipeline,
        id: &str,
        terms: Terms,
        by: &str,
    ) -> Result<Schedule, ScheduleError> {
        let planner = self
            .get(id)
            .map(|schedule| schedule.planner)
            .ok_or_else(|| TermsError::Unknown { id: id.to_owned() })?;
        let (terms, takes_tag) = check_terms(pipeline, &planner, terms)?;
        let now = self.now();
        let edited = self.change(|book| Ok(book.edit(id, terms, takes_tag, by, now)?.clone()))?;
        self.audit(AuditKind::ScheduleEdited, by, &edited);
        Ok(edited)
    }

    /// Admin `by` revokes schedule `id`: it is gone, and no run of it applies from now on;
    /// audited.
    pub fn revoke(&self, id: &str, by: &str) -> Result<Schedule, ScheduleError> {
        let revoked = self.change(|book| Ok(book.revoke(id)?))?;
        self.audit(AuditKind::ScheduleRevoked, by, &revoked);
        Ok(revoked)
    }

    /// Records the last run of schedule `id`; `Ok(false)` (nothing written) when the schedule
    /// was revoked or edited since the run began.
    pub fn record_run(&self, id: &str, run: LastRun) -> Result<bool, StoreError> {
        let mut book = lock(&self.book);
        let mut next = book.clone();
        if !next.record_run(id, run) {
            return Ok(false);
        }
        self.store.save(StateFile::Schedules, &next)?;
        *book = next;
        Ok(true)
    }

    fn change<T>(
        &self,
        edit: impl FnOnce(&mut ScheduleBook) -> Result<T, ScheduleError>,
    ) -> Result<T, ScheduleError> {
        let mut book = lock(&self.book);
        let mut next = book.clone();
        let changed = edit(&mut next)?;
        self.store.save(StateFile::Schedules, &next)?;
        *book = next;
        Ok(changed)
    }

    fn audit(&self, kind: AuditKind, by: &str, schedule: &Schedule) {
        self.auditor.decision(
            kind,
            Some(by),
            "ok",
            format!(
                "schedule {} revision {} planner {} rules {} every {} s input {}",
                schedule.id,
                schedule.revision,
                schedule.planner,
                schedule.rule_ids.join(","),
                schedule.period_seconds,
                Value::Object(schedule.input.clone()),
            ),
        );
    }
}

/// Checks `terms` for a schedule of `planner`: [`normalize`]d; the planner loaded, granted and
/// enabled; every rule id in the allowlist, in the planner's scope and not destructive; the
/// input, tag included, within [`MAX_INPUT_BYTES`]. Also says whether the planner takes a tag
/// (its input schema has a `tag` property). Blocks (`describe()`).
pub fn check_terms(
    pipeline: &Pipeline,
    planner: &str,
    terms: Terms,
) -> Result<(Terms, bool), TermsError> {
    let terms = normalize(terms)?;
    let plugin = pipeline
        .plugins
        .get(planner)
        .ok_or_else(|| TermsError::UnknownPlanner {
            name: planner.to_owned(),
        })?;
    if !pipeline.grant(planner).usable() {
        return Err(TermsError::NotGranted {
            name: planner.to_owned(),
        });
    }
    for rule_id in &terms.rule_ids {
        let effect =
            rule_effect(&pipeline.allowlist, rule_id).ok_or_else(|| TermsError::UnknownRule {
                rule_id: rule_id.clone(),
            })?;
        if !plugin.manifest().scope.contains(rule_id) {
            return Err(TermsError::OutsideScope {
                rule_id: rule_id.clone(),
                planner: planner.to_owned(),
            });
        }
        if effect == nos_allowlist::Effect::Destructive {
            return Err(TermsError::DestructiveRule {
                rule_id: rule_id.clone(),
            });
        }
    }
    // The tag adds at most `,"tag":"nos<20 digits>"`.
    let n_bytes = Value::Object(terms.input.clone()).to_string().len() + 32;
    if n_bytes > MAX_INPUT_BYTES {
        return Err(TermsError::InputTooLarge {
            n_bytes,
            max: MAX_INPUT_BYTES,
        });
    }
    let takes_tag = plugin.describe().is_ok_and(|info| {
        serde_json::from_str::<Value>(&info.input_schema)
            .ok()
            .and_then(|schema| {
                schema
                    .get("properties")?
                    .get(super::model::TAG_FIELD)
                    .cloned()
            })
            .is_some()
    });
    Ok((terms, takes_tag))
}

/// The effect of allowlist rule `rule_id`, a command or a managed rule.
fn rule_effect(
    allowlist: &nos_allowlist::Allowlist,
    rule_id: &str,
) -> Option<nos_allowlist::Effect> {
    allowlist.rule(rule_id).map(|rule| rule.effect).or_else(|| {
        allowlist
            .managed_rules()
            .iter()
            .find(|rule| rule.id == rule_id)
            .map(|rule| rule.effect)
    })
}
