//! `admit_apply` with fakes: a virtual clock, a state directory in a tempdir, an in-memory audit
//! sink and a fake agent port. One case per refusal, in the order the checks run, and the
//! admitted path.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::*;
use crate::audit::{AuditEvent, Auditor, MemoryAudit};
use crate::clock::ManualClock;
use crate::facts::Facts;
use crate::pipeline::grants::PluginGrant;
use crate::pipeline::jobs::JobTable;
use crate::pipeline::port::{AgentPort, PortError, StepRun};
use crate::pipeline::{Pipeline, PipelineParts};
use crate::plan::types::{Effect, Plan, Request, Step};
use crate::store::StateDir;

const T0: u64 = 1_800_000_000;
const PLUGIN: &str = "btrfs-pool";

/// An agent that serves facts (or fails to) and runs nothing.
struct FakePort {
    facts: Mutex<Result<Facts, PortError>>,
}

impl AgentPort for FakePort {
    fn facts(&self) -> Result<Facts, PortError> {
        self.facts.lock().unwrap().clone()
    }

    fn run(&self, request: &Request, _progress: &mut dyn FnMut(String)) -> StepRun {
        StepRun {
            ok: true,
            rule_id: None,
            ran: request.to_string(),
            exit_code: Some(0),
            output: String::new(),
        }
    }
}

/// The raid1 pool the fixture's allowed plan makes over two blank disks of the fixture facts.
const MKFS: &[&str] = &[
    "mkfs.btrfs",
    "-d",
    "raid1",
    "-m",
    "raid1",
    "--",
    "/dev/sdb",
    "/dev/sdc",
];

/// A step running `argv`, titled by its id, without rollback.
fn argv_step(id: &str, argv: &[&str], effect: Effect, confirmation: Option<&str>) -> Step {
    Step {
        id: id.into(),
        title: id.into(),
        request: Request::Argv(argv.iter().map(|arg| arg.to_string()).collect()),
        effect,
        rollback: None,
        confirmation: confirmation.map(str::to_owned),
    }
}

fn fixture_facts() -> Facts {
    Facts::from_file_json(include_bytes!("../../../tests/data/facts/fixture.json")).unwrap()
}

struct Fixture {
    _dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
    audit: Arc<MemoryAudit>,
    port: Arc<FakePort>,
    pipeline: Pipeline,
    requester: Requester,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(T0));
        let audit = Arc::new(MemoryAudit::default());
        let store = Arc::new(StateDir::open(dir.path()).unwrap());
        let allowlist = nos_allowlist::Allowlist::load(&[nos_allowlist::Source {
            name: "allowlist.toml".into(),
            text: include_str!("../../../../allowlist.toml").to_owned(),
        }])
        .unwrap();
        let port = Arc::new(FakePort {
            facts: Mutex::new(Ok(fixture_facts())),
        });
        let (jobs, _) = JobTable::open(store.clone(), T0).unwrap();
        let pipeline = Pipeline::new(PipelineParts {
            allowlist,
            port: port.clone(),
            plugins: BTreeMap::new(),
            failed: Vec::new(),
            locks: Default::default(),
            jobs,
            plan_ttl_seconds: 600,
            auditor: Auditor::new(audit.clone(), clock.clone()),
            clock: clock.clone(),
            store,
        });
        crate::unpoisoned::lock(&pipeline.grants).insert(
            PLUGIN.into(),
            PluginGrant {
                enabled: true,
                granted: true,
            },
        );
        Fixture {
            _dir: dir,
            clock,
            audit,
            port,
            pipeline,
            requester: Requester {
                session_id: "session-a".into(),
                username: "admin".into(),
                reauth_valid_until: T0 + 300,
            },
        }
    }

    /// Stores a plan of one destructive step with `argv`, made now by the fixture's requester.
    fn store(&self, argv: &[&str]) -> Arc<StoredPlan> {
        let step = argv_step("mkfs", argv, Effect::Destructive, Some("tank"));
        self.store_as(&self.requester, step, "mkfs.btrfs")
    }

    /// Stores a plan of `step`, judged with `rule_id` in scope, made now by `requester`.
    fn store_as(&self, requester: &Requester, step: Step, rule_id: &str) -> Arc<StoredPlan> {
        let plan = Plan {
            steps: vec![step],
            warnings: Vec::new(),
        };
        let facts = fixture_facts();
        let checked = crate::plan::check::check(
            plan,
            &self.pipeline.allowlist,
            &crate::plan::check::Scope::new([rule_id.to_string()]),
            &facts,
        );
        let now = self.pipeline.now();
        self.pipeline.store_plan(StoredPlan {
            id: super::super::random_id(),
            sha256: "sha".into(),
            plugin: PLUGIN.into(),
            input: "{}".into(),
            pool: "/srv/tank".into(),
            lock: "name:/srv/tank".into(),
            session_id: requester.session_id.clone(),
            username: requester.username.clone(),
            created_at: now,
            expires_at: now + self.pipeline.plan_ttl_seconds,
            facts_fingerprint: super::super::facts_fingerprint(&facts, &checked),
            confirmation: super::super::confirmation_of(&checked),
            checked: Arc::new(checked),
        })
    }

    /// Stores the scrub a schedule would start, made now by `requester`.
    fn store_scrub(&self, requester: &Requester) -> Arc<StoredPlan> {
        let step = argv_step(
            "scrub",
            &["btrfs", "scrub", "start", "-B", "/srv/tank"],
            Effect::State,
            None,
        );
        let plan = self.store_as(requester, step, "btrfs.scrub.start");
        assert!(plan.checked.all_allowed(), "the scrub plan is allowed");
        plan
    }

    fn store_allowed(&self) -> Arc<StoredPlan> {
        let plan = self.store(MKFS);
        assert!(plan.checked.all_allowed(), "the fixture plan is allowed");
        plan
    }

    fn admit(&self, plan_id: &str, confirm: &str) -> Result<Admitted, Refusal> {
        admit_apply(&self.pipeline, &self.requester, plan_id, confirm)
    }

    fn refusals(&self) -> Vec<String> {
        self.audit
            .events()
            .into_iter()
            .filter(|event| event.kind == AuditKind::PlanApplyRefused)
            .map(|event| event.detail)
            .collect()
    }

    fn events(&self) -> Vec<AuditEvent> {
        self.audit.events()
    }
}

/// Applies `change` to a fresh fixture with one stored, allowed plan, asks to apply it with
/// `confirm`, and returns the refusal's code with what the audit log recorded.
fn refused(change: impl FnOnce(&mut Fixture, &StoredPlan) -> (String, String)) -> String {
    let mut fixture = Fixture::new();
    let plan = fixture.store_allowed();
    let (plan_id, confirm) = change(&mut fixture, &plan);
    let refusal = match fixture.admit(&plan_id, &confirm) {
        Ok(_) => panic!("admitted"),
        Err(refusal) => refusal,
    };
    let audited = fixture.refusals().join("\n");
    format!("{}: {refusal} | audited: {audited}", refusal.code())
}

#[test]
fn every_refusal_in_check_order() {
    let same = |_: &mut Fixture, plan: &StoredPlan| (plan.id.clone(), "tank".to_string());
    let cases: Vec<(&str, String)> = vec![
        (
            "unknown",
            refused(|_, _| ("no-such-plan".into(), "tank".into())),
        ),
        (
            "not yours",
            refused(|fixture, plan| {
                fixture.requester.session_id = "session-b".into();
                same(fixture, plan)
            }),
        ),
        (
            "revoked",
            refused(|fixture, plan| {
                crate::unpoisoned::lock(&fixture.pipeline.grants)
                    .insert(PLUGIN.into(), PluginGrant::default());
                same(fixture, plan)
            }),
        ),
        (
            "reauth",
            refused(|fixture, plan| {
                fixture.clock.advance(301);
                same(fixture, plan)
            }),
        ),
        (
            "expired",
            refused(|fixture, plan| {
                fixture.requester.reauth_valid_until = u64::MAX;
                fixture.clock.advance(660);
                same(fixture, plan)
            }),
        ),
        (
            "rejected",
            refused(|fixture, _| {
                let rejected = fixture.store(&["rm", "-rf", "/"]);
                (rejected.id.clone(), rejected.confirmation.clone())
            }),
        ),
        ("words", refused(|_, plan| (plan.id.clone(), "TANK".into()))),
        (
            "busy",
            refused(|fixture, plan| {
                let guard = fixture.pipeline.jobs.try_lock_pool(&plan.lock).unwrap();
                // Held past the admission, as a running job holds it.
                std::mem::forget(guard);
                same(fixture, plan)
            }),
        ),
        (
            "unreachable",
            refused(|fixture, plan| {
                *fixture.port.facts.lock().unwrap() =
                    Err(PortError::Unreachable("socket gone".into()));
                same(fixture, plan)
            }),
        ),
        (
            "stale",
            refused(|fixture, plan| {
                let mut facts = fixture_facts();
                facts.block_devices[2].mountpoints = vec!["/mnt".into()];
                *fixture.port.facts.lock().unwrap() = Ok(facts);
                same(fixture, plan)
            }),
        ),
    ];
    let lines: Vec<String> = cases
        .into_iter()
        .map(|(name, outcome)| format!("{name}: {outcome}"))
        .collect();
    // Plan ids are random: show them as <id>.
    let text = lines.join("\n");
    let text = mask_ids(&text);
    expect_test::expect![[r#"
        unknown: plan.unknown: no such plan | audited: plan no-such-plan: plan.unknown: no such plan
        not yours: plan.not_yours: only the session that created a plan may apply it | audited: plan <id>: plan.not_yours: only the session that created a plan may apply it
        revoked: plugin.not_granted: plugin btrfs-pool was revoked or disabled since this plan was made | audited: plan <id>: plugin.not_granted: plugin btrfs-pool was revoked or disabled since this plan was made
        reauth: auth.reauth_required: re-authentication required | audited: plan <id>: auth.reauth_required
        expired: plan.expired: plan expired 60 s ago; plan again | audited: plan <id>: plan.expired: plan expired 60 s ago; plan again
        rejected: plan.rejected_steps: 1 step(s) were rejected; this plan cannot be applied | audited: plan <id>: plan.rejected_steps: 1 step(s) were rejected; this plan cannot be applied
        words: plan.confirmation_mismatch: type exactly "tank" to apply | audited: plan <id>: plan.confirmation_mismatch: type exactly "tank" to apply
        busy: pool.busy: a job is already running on /srv/tank | audited: plan <id>: pool.busy: a job is already running on /srv/tank
        unreachable: agent.unavailable: cannot gather facts through the agent | audited: 
        stale: plan.stale: the devices changed since this plan was made; plan again | audited: plan <id>: plan.stale: the devices changed since this plan was made; plan again"#]].assert_eq(&text);
}

/// Replaces every 32-hex-digit id with `<id>`.
fn mask_ids(text: &str) -> String {
    let mut out = String::new();
    let mut run = String::new();
    for ch in text.chars() {
        if ch.is_ascii_hexdigit() {
            run.push(ch);
            continue;
        }
        out.push_str(if run.len() == 32 { "<id>" } else { &run });
        run.clear();
        out.push(ch);
    }
    out.push_str(if run.len() == 32 { "<id>" } else { &run });
    out
}

#[test]
fn an_admitted_plan_is_confirmed_used_up_and_holds_its_pool() {
    let fixture = Fixture::new();
    let plan = fixture.store_allowed();
    let admitted = fixture.admit(&plan.id, "tank").unwrap();
    assert_eq!(admitted.plan.id, plan.id);
    let confirmed: Vec<String> = fixture
        .events()
        .into_iter()
        .filter(|event| event.kind == AuditKind::PlanConfirmed)
        .map(|event| format!("{:?} {}", event.username, event.detail))
        .collect();
    assert_eq!(
        confirmed,
        [format!(
            "Some(\"admin\") plan {} sha256 sha: confirmed \"tank\"",
            plan.id
        )]
    );
    assert!(fixture.refusals().is_empty());
    // The pool is held for as long as the admission lives, then released.
    assert!(fixture.pipeline.jobs.try_lock_pool(&plan.lock).is_none());
    drop(admitted);
    assert!(fixture.pipeline.jobs.try_lock_pool(&plan.lock).is_some());
    // One use: the plan is gone.
    assert!(matches!(
        fixture.admit(&plan.id, "tank"),
        Err(Refusal::UnknownPlan { .. })
    ));
}

#[test]
fn nosd_applies_unattended_only_what_destroys_nothing() {
    let fixture = Fixture::new();
    let nosd = Requester::unattended("scrub-schedule");
    let scrub = fixture.store_scrub(&nosd);
    let admitted = admit_unattended(&fixture.pipeline, &nosd, &scrub.id).unwrap();
    assert_eq!(admitted.plan.id, scrub.id);
    drop(admitted);
    let confirmed: Vec<String> = fixture
        .events()
        .into_iter()
        .filter(|event| event.kind == AuditKind::PlanConfirmed)
        .map(|event| format!("{:?} {}", event.username, event.detail))
        .collect();
    assert_eq!(
        confirmed,
        [format!(
            "Some(\"nosd:scrub-schedule\") plan {} sha256 sha: unattended: no step is destructive or carries a rollback",
            scrub.id
        )]
    );

    let code = |result: Result<Admitted, Refusal>| match result {
        Ok(_) => panic!("admitted"),
        Err(refusal) => format!("{}: {refusal}", refusal.code()),
    };
    // A destructive step needs an admin, even in a plan nosd made.
    let mkfs = fixture.store_as(
        &nosd,
        argv_step("mkfs", MKFS, Effect::Destructive, Some("tank")),
        "mkfs.btrfs",
    );
    assert!(mkfs.checked.all_allowed());
    assert_eq!(
        code(admit_unattended(&fixture.pipeline, &nosd, &mkfs.id)),
        "plan.attended_only: step(s) mkfs destroy data or carry a rollback: only an admin applies this plan"
    );
    // nosd never applies an admin's plan, and an admin's session is no unattended requester.
    let admins = fixture.store_scrub(&fixture.requester);
    assert_eq!(
        code(admit_unattended(&fixture.pipeline, &nosd, &admins.id)),
        "plan.not_yours: only the session that created a plan may apply it"
    );
    assert_eq!(
        code(admit_unattended(
            &fixture.pipeline,
            &fixture.requester,
            &admins.id
        )),
        "plan.not_yours: only the session that created a plan may apply it"
    );
    // nosd's plan through the admin path: never re-authenticated.
    let again = fixture.store_scrub(&nosd);
    assert_eq!(
        code(admit_apply(
            &fixture.pipeline,
            &nosd,
            &again.id,
            crate::pipeline::DEFAULT_CONFIRMATION
        )),
        "auth.reauth_required: re-authentication required"
    );
}

/// While a scrub job holds its pool, the scrub's cancel (a `beside_jobs` rule) is admitted
/// without the pool lock, and so is a read; another scrub start is refused as busy.
#[test]
fn a_cancel_runs_beside_the_job_it_stops() {
    let fixture = Fixture::new();
    let scrub = fixture.store_scrub(&fixture.requester);
    let running = fixture.admit(&scrub.id, "APPLY").unwrap();
    assert!(fixture.pipeline.jobs.is_pool_locked(&scrub.lock));
    let cancel = fixture.store_as(
        &fixture.requester,
        argv_step(
            "cancel",
            &["btrfs", "scrub", "cancel", "/srv/tank"],
            Effect::State,
            None,
        ),
        "btrfs.scrub.cancel",
    );
    let status = fixture.store_as(
        &fixture.requester,
        argv_step(
            "status",
            &["btrfs", "scrub", "status", "-R", "/srv/tank"],
            Effect::Read,
            None,
        ),
        "btrfs.scrub.status",
    );
    for plan in [&cancel, &status] {
        assert!(plan.checked.all_allowed());
        assert!(runs_beside_jobs(&plan.checked, &fixture.pipeline.allowlist));
        let admitted = fixture.admit(&plan.id, "APPLY").unwrap();
        drop(admitted);
        // The running scrub's lock is untouched.
        assert!(fixture.pipeline.jobs.is_pool_locked(&scrub.lock));
    }
    let again = fixture.store_scrub(&fixture.requester);
    assert!(!runs_beside_jobs(
        &again.checked,
        &fixture.pipeline.allowlist
    ));
    assert!(matches!(
        fixture.admit(&again.id, "APPLY"),
        Err(Refusal::PoolBusy { .. })
    ));
    drop(running);
}
