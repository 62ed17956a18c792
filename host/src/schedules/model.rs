//! The schedule book: every standing approval an admin gave, its last run and when it runs
//! next. Pure: no IO, no clock (`now` is an argument); [`super::service`] persists the book in
//! `schedules.json` and audits every change.
//!
//! When a schedule runs ([`next_run`]): its first run is at the first check after it is
//! approved (an admin sees at once whether its plan applies or is held); after that, one
//! period after the last run *started*. A check that finds it due runs it once, however many
//! periods went by (nosd was down, the machine slept): the next run is one period after that
//! run, never a catch-up run per missed period. A check that skips it (a job holds the pool)
//! records nothing, so it stays due for the next check.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::clock::UnixSeconds;

/// The shortest period accepted: 5 minutes.
pub const MIN_PERIOD_SECONDS: u64 = 300;
/// The longest period accepted: 366 days.
pub const MAX_PERIOD_SECONDS: u64 = 366 * 86_400;
/// At most this many schedules at once.
pub const MAX_SCHEDULES: usize = 64;
/// At most this many approved rule ids per schedule.
pub const MAX_RULE_IDS: usize = 64;
/// The input field the schedule's tag is given in.
pub const TAG_FIELD: &str = "tag";
/// Every tag is this prefix and the schedule's sequence number (`nos1`, `nos2`, …).
const TAG_PREFIX: &str = "nos";
/// Every id is this prefix and the schedule's sequence number (`s1`, `s2`, …).
const ID_PREFIX: &str = "s";

/// One standing approval: run `planner` on `input` every `period_seconds`, applying the plan
/// without a human when [`super::decide`] says so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    /// `s<n>`: short, never reused (the sequence only grows, revoked ids included).
    pub id: String,
    pub planner: String,
    /// The planner input as approved, a JSON object (with [`TAG_FIELD`] when the planner takes
    /// one).
    pub input: Map<String, Value>,
    /// The allowlist rules a step may use for the plan to apply unattended; sorted, unique,
    /// never empty.
    pub rule_ids: Vec<String>,
    pub period_seconds: u64,
    /// `nos<n>`: the tag of the snapshots this schedule makes (the only ones it may delete).
    pub tag: String,
    pub created_by: String,
    pub created_at: UnixSeconds,
    /// Starts at 1; every edit bumps it, and a run planned under an older one never applies.
    pub revision: u32,
    pub updated_by: String,
    pub updated_at: UnixSeconds,
    pub last_run: Option<LastRun>,
}

/// What the last run of a schedule did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastRun {
    /// When the run started.
    pub at: UnixSeconds,
    /// The schedule's revision it ran under.
    pub revision: u32,
    /// The sha256 of the plan's canonical form, when a plan was made.
    pub plan_sha256: Option<String>,
    pub outcome: RunOutcome,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum RunOutcome {
    /// The plan was applied unattended: its job.
    Applied { job_id: String },
    /// The plan was held for an admin, with why, and what it would have done.
    Held {
        reasons: Vec<String>,
        steps: Vec<HeldStep>,
    },
    /// The plan had no step.
    NothingToDo,
    /// No plan, or the plan was refused at admission (the reason in words).
    Failed { reason: String },
}

/// A step of a held plan as an admin reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldStep {
    pub id: String,
    pub title: String,
    pub effect: String,
    /// The allowlist rule, when the step was allowed.
    pub rule_id: Option<String>,
    /// What would run (allowed) or why it was rejected.
    pub detail: String,
}

/// What an admin approves, created or edited (the planner of a schedule never changes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terms {
    pub input: Map<String, Value>,
    pub rule_ids: Vec<String>,
    pub period_seconds: u64,
}

/// Why a schedule change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TermsError {
    #[error("no schedule with id {id:?}")]
    Unknown { id: String },
    #[error("no planner named {name:?} is loaded")]
    UnknownPlanner { name: String },
    #[error("planner {name} is not granted and enabled")]
    NotGranted { name: String },
    #[error("a schedule approves at least one rule id")]
    NoRules,
    #[error("at most {MAX_RULE_IDS} rule ids")]
    TooManyRules,
    #[error("no allowlist rule has id {rule_id:?}")]
    UnknownRule { rule_id: String },
    #[error("rule {rule_id} is outside the scope of planner {planner}")]
    OutsideScope { rule_id: String, planner: String },
    #[error("rule {rule_id} is destructive: only an admin applies it, never a schedule")]
    DestructiveRule { rule_id: String },
    #[error(
        "period_seconds = {period_seconds} must be {MIN_PERIOD_SECONDS}..={MAX_PERIOD_SECONDS}"
    )]
    BadPeriod { period_seconds: u64 },
    #[error("the input may not set \"tag\": nosd gives each schedule its own")]
    InputHasTag,
    #[error("the input is {n_bytes} bytes, over {max}")]
    InputTooLarge { n_bytes: usize, max: usize },
    #[error("at most {MAX_SCHEDULES} schedules")]
    TooMany,
}

impl TermsError {
    /// The stable name of the reason: the API's error code.
    pub fn code(&self) -> &'static str {
        match self {
            TermsError::Unknown { .. } => "schedule.unknown",
            TermsError::UnknownPlanner { .. } => "plugin.unknown",
            TermsError::NotGranted { .. } => "plugin.not_granted",
            TermsError::NoRules | TermsError::TooManyRules => "schedule.rule_ids",
            TermsError::UnknownRule { .. } => "schedule.unknown_rule",
            TermsError::OutsideScope { .. } => "schedule.rule_out_of_scope",
            TermsError::DestructiveRule { .. } => "schedule.destructive_rule",
            TermsError::BadPeriod { .. } => "schedule.bad_period",
            TermsError::InputHasTag => "schedule.input_has_tag",
            TermsError::InputTooLarge { .. } => "request.too_large",
            TermsError::TooMany => "schedule.too_many",
        }
    }
}

/// Every schedule, and the next sequence number.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleBook {
    next_seq: u64,
    schedules: Vec<Schedule>,
}

/// When `schedule` runs next: at its creation when it never ran, else one period after its
/// last run.
pub fn next_run(schedule: &Schedule) -> UnixSeconds {
    match &schedule.last_run {
        None => schedule.created_at,
        Some(run) => run.at.saturating_add(schedule.period_seconds),
    }
}

/// The ids of the schedules due at `now`, oldest first.
pub fn due(book: &ScheduleBook, now: UnixSeconds) -> Vec<String> {
    book.schedules
        .iter()
        .filter(|schedule| now >= next_run(schedule))
        .map(|schedule| schedule.id.clone())
        .collect()
}

/// Checks what does not need the allowlist or the planner: the period and the rule ids'
/// count (sorted and de-duplicated on the way), and that the input has no tag. The caller
/// checks each rule against the allowlist and the planner's scope.
pub fn normalize(mut terms: Terms) -> Result<Terms, TermsError> {
    if !(MIN_PERIOD_SECONDS..=MAX_PERIOD_SECONDS).contains(&terms.period_seconds) {
        return Err(TermsError::BadPeriod {
            period_seconds: terms.period_seconds,
        });
    }
    terms.rule_ids.sort();
    terms.rule_ids.dedup();
    if terms.rule_ids.is_empty() {
        return Err(TermsError::NoRules);
    }
    if terms.rule_ids.len() > MAX_RULE_IDS {
        return Err(TermsError::TooManyRules);
    }
    if terms.input.contains_key(TAG_FIELD) {
        return Err(TermsError::InputHasTag);
    }
    Ok(terms)
}

/// The input a schedule's run plans with: its approved input, with its tag when the planner
/// takes one (`takes_tag`).
fn tagged_input(input: Map<String, Value>, tag: &str, takes_tag: bool) -> Map<String, Value> {
    let mut input = input;
    if takes_tag {
        input.insert(TAG_FIELD.to_owned(), Value::String(tag.to_owned()));
    }
    input
}

impl ScheduleBook {
    pub fn list(&self) -> &[Schedule] {
        &self.schedules
    }

    pub fn get(&self, id: &str) -> Option<&Schedule> {
        self.schedules.iter().find(|schedule| schedule.id == id)
    }

    /// Adds a schedule of `planner` on normalized `terms`, approved by `by` at `now`; its id
    /// and tag are the next sequence number's.
    pub fn create(
        &mut self,
        planner: &str,
        terms: Terms,
        takes_tag: bool,
        by: &str,
        now: UnixSeconds,
    ) -> Result<&Schedule, TermsError> {
        if self.schedules.len() >= MAX_SCHEDULES {
            return Err(TermsError::TooMany);
        }
        self.next_seq += 1;
        let tag = format!("{TAG_PREFIX}{}", self.next_seq);
        let schedule = Schedule {
            id: format!("{ID_PREFIX}{}", self.next_seq),
            planner: planner.to_owned(),
            input: tagged_input(terms.input, &tag, takes_tag),
            rule_ids: terms.rule_ids,
            period_seconds: terms.period_seconds,
            tag,
            created_by: by.to_owned(),
            created_at: now,
            revision: 1,
            updated_by: by.to_owned(),
            updated_at: now,
            last_run: None,
        };
        let index = self.schedules.len();
        self.schedules.push(schedule);
        Ok(&self.schedules[index])
    }

    /// Replaces the terms of schedule `id` with normalized `terms` and bumps its revision; its
    /// tag and last run stay.
    pub fn edit(
        &mut self,
        id: &str,
        terms: Terms,
        takes_tag: bool,
        by: &str,
        now: UnixSeconds,
    ) -> Result<&Schedule, TermsError> {
        let schedule = self
            .schedules
            .iter_mut()
            .find(|schedule| schedule.id == id)
            .ok_or_else(|| TermsError::Unknown { id: id.to_owned() })?;
        schedule.input = tagged_input(terms.input, &schedule.tag, takes_tag);
        schedule.rule_ids = terms.rule_ids;
        schedule.period_seconds = terms.period_seconds;
        schedule.revision += 1;
        schedule.updated_by = by.to_owned();
        schedule.updated_at = now;
        Ok(schedule)
    }

    /// Removes schedule `id`: it never runs again (its id and tag are never given again).
    pub fn revoke(&mut self, id: &str) -> Result<Schedule, TermsError> {
        let index = self
            .schedules
            .iter()
            .position(|schedule| schedule.id == id)
            .ok_or_else(|| TermsError::Unknown { id: id.to_owned() })?;
        Ok(self.schedules.remove(index))
    }

    /// Records `run` as the last run of schedule `id` if it still has the revision the run
    /// was made under; `false` (nothing recorded) for a revoked or edited schedule.
    pub fn record_run(&mut self, id: &str, run: LastRun) -> bool {
        match self
            .schedules
            .iter_mut()
            .find(|schedule| schedule.id == id && schedule.revision == run.revision)
        {
            Some(schedule) => {
                schedule.last_run = Some(run);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const T0: u64 = 1_800_000_000;
    const DAY: u64 = 86_400;

    pub(crate) fn terms(period_seconds: u64) -> Terms {
        Terms {
            input: serde_json::json!({"action": "scrub-start", "pool": "/srv/tank"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            rule_ids: vec!["btrfs.scrub.start".into(), "btrfs.scrub.start".into()],
            period_seconds,
        }
    }

    fn ran(at: u64, revision: u32) -> LastRun {
        LastRun {
            at,
            revision,
            plan_sha256: None,
            outcome: RunOutcome::NothingToDo,
        }
    }

    #[test]
    fn a_schedule_runs_at_once_then_once_per_period_and_once_after_downtime() {
        let mut book = ScheduleBook::default();
        let terms = normalize(terms(DAY)).unwrap();
        let id = book
            .create("btrfs-maintenance", terms, false, "admin", T0)
            .unwrap()
            .id
            .clone();
        assert_eq!(due(&book, T0 - 1), Vec::<String>::new());
        assert_eq!(due(&book, T0), vec![id.clone()], "the first run is at once");

        // A simulated clock: a check every minute for 12 days, each due run recorded at the
        // check; nosd is down (no checks) from day 1 to day 11.
        let mut runs = vec![];
        let mut now = T0;
        while now < T0 + 12 * DAY {
            let down = (T0 + DAY + 60..T0 + 11 * DAY).contains(&now);
            if !down {
                for due_id in due(&book, now) {
                    assert!(book.record_run(&due_id, ran(now, 1)));
                    runs.push((now - T0) / 60);
                }
            }
            now += 60;
        }
        // At once, a day later, once when nosd came back (day 11), then a day after that.
        assert_eq!(runs, [0, 1440, 11 * 1440]);
        assert_eq!(
            next_run(book.get(&id).unwrap()),
            T0 + 11 * DAY + DAY,
            "one period after the catch-up run, not a run per missed period"
        );
    }

    #[test]
    fn an_edit_bumps_the_revision_and_a_run_of_an_older_one_is_not_recorded() {
        let mut book = ScheduleBook::default();
        let first = book
            .create("p", normalize(terms(DAY)).unwrap(), true, "admin", T0)
            .unwrap()
            .clone();
        assert_eq!(first.id, "s1");
        assert_eq!(first.tag, "nos1");
        assert_eq!(first.rule_ids, ["btrfs.scrub.start"], "sorted and unique");
        assert_eq!(
            first.input.get(TAG_FIELD),
            Some(&Value::String("nos1".into()))
        );
        let edited = book
            .edit(
                "s1",
                normalize(terms(2 * DAY)).unwrap(),
                true,
                "other",
                T0 + 5,
            )
            .unwrap()
            .clone();
        assert_eq!((edited.revision, edited.period_seconds), (2, 2 * DAY));
        assert_eq!(
            (edited.tag.as_str(), edited.updated_by.as_str()),
            ("nos1", "other")
        );
        assert!(
            !book.record_run("s1", ran(T0 + 6, 1)),
            "planned under revision 1"
        );
        assert!(book.record_run("s1", ran(T0 + 6, 2)));

        // A revoked schedule's id and tag are never given again.
        book.revoke("s1").unwrap();
        assert!(!book.record_run("s1", ran(T0 + 7, 2)));
        assert_eq!(due(&book, T0 + 100 * DAY), Vec::<String>::new());
        let second = book
            .create("p", normalize(terms(DAY)).unwrap(), false, "admin", T0)
            .unwrap();
        assert_eq!((second.id.as_str(), second.tag.as_str()), ("s2", "nos2"));
        assert_eq!(
            second.input.get(TAG_FIELD),
            None,
            "the planner takes no tag"
        );
        assert_eq!(
            book.revoke("s1"),
            Err(TermsError::Unknown { id: "s1".into() })
        );
    }

    #[test]
    fn terms_out_of_bounds_are_refused() {
        assert_eq!(
            normalize(terms(299)),
            Err(TermsError::BadPeriod {
                period_seconds: 299
            })
        );
        assert!(normalize(terms(MIN_PERIOD_SECONDS)).is_ok());
        assert!(normalize(terms(MAX_PERIOD_SECONDS)).is_ok());
        assert!(normalize(terms(MAX_PERIOD_SECONDS + 1)).is_err());
        let mut none = terms(DAY);
        none.rule_ids.clear();
        assert_eq!(normalize(none), Err(TermsError::NoRules));
        let mut tagged = terms(DAY);
        tagged
            .input
            .insert("tag".into(), Value::String("nos9".into()));
        assert_eq!(normalize(tagged), Err(TermsError::InputHasTag));
        let mut book = ScheduleBook::default();
        for _ in 0..MAX_SCHEDULES {
            book.create("p", normalize(terms(DAY)).unwrap(), false, "a", T0)
                .unwrap();
        }
        assert_eq!(
            book.create("p", normalize(terms(DAY)).unwrap(), false, "a", T0)
                .map(|schedule| schedule.id.clone()),
            Err(TermsError::TooMany)
        );
    }
}
