//! The storage pipeline: plan → preview → apply, and the jobs that apply runs.
//!
//! `plans` holds plans server-side (id, sha256 of the canonical form, creator session, expiry,
//! the facts fingerprint they were made from); only a [`CheckedPlan`] from `plan::check` is
//! ever stored, and apply takes a plan *id*, so a client never sends steps. [`create_plan`],
//! [`admit_apply`] (or, for a plan nosd schedules itself, [`admit_unattended`]) and
//! [`start_job`] are the application layer: every check of that path, in order, with one
//! [`Refusal`] per reason. `grants` keeps who may plan with which planner,
//! `jobs` persists every job's record in the state directory and holds the per-pool locks;
//! `apply` runs the steps through an [`port::AgentPort`] (the agent socket in nosd, a fake in
//! tests), rolling back in reverse on failure. This module never knows HTTP; `http/` maps its
//! answers.

mod admission;
pub mod apply;
pub mod canonical;
pub mod grants;
pub mod jobs;
pub mod locks;
pub mod port;
mod refusal;
pub mod setup;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use nos_allowlist::Allowlist;
use serde::Serialize;
use sha2::{Digest, Sha256};

pub use admission::{Admitted, Requester, admit_apply, admit_unattended, create_plan, start_job};
pub use refusal::Refusal;

use crate::audit::Auditor;
use crate::clock::{Clock, UnixSeconds};
use crate::facts::Facts;
use crate::gather::Observation;
use crate::plan::check::CheckedPlan;
use crate::plan::types::{Effect, ManagedRequest, Request};
use crate::plugin::Planner;
use crate::store::StateDir;
use crate::unpoisoned::lock;
use grants::PluginGrant;

/// How long gathered facts are served from the cache by `GET /facts`, in seconds (default 5).
/// Plans and apply always gather fresh facts.
pub const FACTS_CACHE_SECONDS: u64 = 5;
/// At most this many stored plans; the oldest is dropped first. Bounds memory, not the disk.
pub const MAX_PLANS: usize = 256;
/// At most this many bytes of planner input; more is refused before the planner runs.
pub const MAX_INPUT_BYTES: usize = 16 * 1024;
/// The confirmation of a plan without destructive steps.
pub const DEFAULT_CONFIRMATION: &str = "APPLY";

/// A plan stored server-side.
pub struct StoredPlan {
    pub id: String,
    pub sha256: String,
    pub plugin: String,
    pub input: String,
    /// The pool as the input names it (mount point, pool or label): what the plan shows.
    pub pool: String,
    /// The pool lock this plan's job takes ([`pool_key`]: by filesystem UUID when the facts know
    /// the pool).
    pub lock: String,
    pub session_id: String,
    pub username: String,
    pub created_at: u64,
    pub expires_at: u64,
    pub facts_fingerprint: String,
    pub confirmation: String,
    pub checked: Arc<CheckedPlan>,
}

/// Everything the pipeline needs at run time.
pub struct Pipeline {
    pub allowlist: Allowlist,
    pub port: Arc<dyn port::AgentPort>,
    /// The planners loaded at start, by name; the set never changes while nosd runs.
    pub plugins: BTreeMap<String, Arc<Planner>>,
    /// The planners that did not load at start, each with its reason; nosd serves without them.
    pub failed: Vec<FailedPlugin>,
    /// The grant of each planner, by name (persisted by component hash, see [`grants`]).
    grants: Mutex<BTreeMap<String, PluginGrant>>,
    /// The snapshot locks (persisted in `snapshot-locks.json`, see [`locks`]).
    locks: Mutex<locks::LocksFile>,
    plans: Mutex<HashMap<String, Arc<StoredPlan>>>,
    pub jobs: jobs::JobTable,
    pub plan_ttl_seconds: u64,
    facts_cache: Mutex<Option<(u64, Facts)>>,
    /// Told of every fresh observation (the pool registry, then the alerts), set once after
    /// the build.
    observer: OnceLock<Arc<dyn PipelineObserver>>,
    auditor: Auditor,
    clock: Arc<dyn Clock>,
    store: Arc<StateDir>,
}

/// A configured planner that did not load: where it is and why (missing file, bad hash,
/// unsupported API version, compile error, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedPlugin {
    pub path: String,
    pub reason: String,
}

/// What [`Pipeline::new`] is built from.
pub struct PipelineParts {
    pub allowlist: Allowlist,
    pub port: Arc<dyn port::AgentPort>,
    pub plugins: BTreeMap<String, (Arc<Planner>, PluginGrant)>,
    pub failed: Vec<FailedPlugin>,
    /// The snapshot locks as `snapshot-locks.json` holds them at start.
    pub locks: locks::LocksFile,
    pub jobs: jobs::JobTable,
    pub plan_ttl_seconds: u64,
    pub auditor: Auditor,
    pub clock: Arc<dyn Clock>,
    pub store: Arc<StateDir>,
}

impl Pipeline {
    pub fn new(parts: PipelineParts) -> Pipeline {
        let grants = parts
            .plugins
            .iter()
            .map(|(name, (_, grant))| (name.clone(), *grant))
            .collect();
        Pipeline {
            allowlist: parts.allowlist,
            port: parts.port,
            plugins: parts
                .plugins
                .into_iter()
                .map(|(name, (plugin, _))| (name, plugin))
                .collect(),
            failed: parts.failed,
            grants: Mutex::new(grants),
            locks: Mutex::new(parts.locks),
            plans: Mutex::new(HashMap::new()),
            jobs: parts.jobs,
            plan_ttl_seconds: parts.plan_ttl_seconds,
            facts_cache: Mutex::new(None),
            observer: OnceLock::new(),
            auditor: parts.auditor,
            clock: parts.clock,
            store: parts.store,
        }
    }

    pub fn now(&self) -> UnixSeconds {
        self.clock.now()
    }

    /// The grant of plugin `name` now (neither granted nor enabled for an unknown name).
    pub fn grant(&self, name: &str) -> PluginGrant {
        lock(&self.grants).get(name).copied().unwrap_or_default()
    }

    /// Every loaded planner with its grant, by name.
    pub fn plugins_with_grants(&self) -> Vec<(String, Arc<Planner>, PluginGrant)> {
        self.plugins
            .iter()
            .map(|(name, plugin)| (name.clone(), plugin.clone(), self.grant(name)))
            .collect()
    }

    /// Facts from the cache when younger than [`FACTS_CACHE_SECONDS`], unless `refresh`.
    pub fn cached_facts(&self, refresh: bool) -> Result<Facts, Refusal> {
        let now = self.now();
        if !refresh
            && let Some((at, facts)) = lock(&self.facts_cache).as_ref()
            && now.saturating_sub(*at) < FACTS_CACHE_SECONDS
        {
            return Ok(facts.clone());
        }
        self.fresh_facts(now).map_err(Refusal::unreachable)
    }

    /// Facts gathered now through the agent (and cached); the observer, if any, is told of
    /// the whole observation before they are returned.
    fn fresh_facts(&self, now: UnixSeconds) -> Result<Facts, port::PortError> {
        let mut observation = self.port.observe()?;
        locks::mark(&lock(&self.locks), &mut observation.facts);
        *lock(&self.facts_cache) = Some((now, observation.facts.clone()));
        if let Some(observer) = self.observer.get() {
            observer.observed(&observation, &self.jobs, now);
        }
        Ok(observation.facts)
    }

    /// Forgets the cached facts: the next plan reads the machine again.
    pub fn drop_cached_facts(&self) {
        *lock(&self.facts_cache) = None;
    }

    /// Tells the observer of each fstab entry job `job_id` removed: a `Remove` step of an
    /// fstab entry that is done.
    fn tell_removed_fstab_entries(&self, plan: &CheckedPlan, job_id: &str) {
        let (Some(observer), Some(job)) = (self.observer.get(), self.jobs.get(job_id)) else {
            return;
        };
        for (checked, record) in plan.steps().iter().zip(&job.steps) {
            if let Request::Remove(ManagedRequest::FstabEntry(entry)) = &checked.step().request
                && record.state == jobs::StepState::Done
            {
                observer.fstab_entry_removed(&entry.uuid);
            }
        }
    }

    /// The SMART reading of disk `name` (its kernel name or path, as the facts list it; never a
    /// partition), read now through the agent's `smartctl.health` rule and judged by
    /// `health::smart`.
    pub fn smart(&self, name: &str) -> Result<crate::health::smart::SmartReport, Refusal> {
        let facts = self.cached_facts(false)?;
        let device = facts
            .block_devices
            .iter()
            .find(|device| {
                (device.kname == name || device.path == name) && device.device_type != "part"
            })
            .ok_or_else(|| Refusal::UnknownDisk {
                name: name.to_owned(),
            })?;
        let argv = nos_machine::fact_commands::smart_argv(&device.path);
        let read = self
            .port
            .read(&argv)
            .map_err(|err| Refusal::ReadFailed(err.to_string()))?;
        crate::health::smart::parse(&read.stdout).map_err(|err| {
            Refusal::ReadFailed(format!(
                "{} (exit {}): {err}",
                read.rule_id,
                read.exit_code
                    .map_or_else(|| "none".to_owned(), |code| code.to_string())
            ))
        })
    }

    /// Installs the one observer of fresh facts; a second one is ignored.
    pub fn set_observer(&self, observer: Arc<dyn PipelineObserver>) {
        let _ = self.observer.set(observer);
    }

    fn store_plan(&self, plan: StoredPlan) -> Arc<StoredPlan> {
        let plan = Arc::new(plan);
        let mut plans = lock(&self.plans);
        if plans.len() >= MAX_PLANS
            && let Some(oldest) = plans
                .values()
                .min_by_key(|plan| plan.created_at)
                .map(|plan| plan.id.clone())
        {
            plans.remove(&oldest);
        }
        plans.insert(plan.id.clone(), plan.clone());
        plan
    }

    fn plan(&self, id: &str) -> Option<Arc<StoredPlan>> {
        lock(&self.plans).get(id).cloned()
    }

    /// Plan `id` if session `session_id` made it; another session's plan is not shown at all.
    pub fn plan_of(&self, id: &str, session_id: &str) -> Option<Arc<StoredPlan>> {
        self.plan(id).filter(|plan| plan.session_id == session_id)
    }
}

/// Told of every facts refresh, whoever asked for it (a plan, an apply, `GET /facts`, `GET
/// /pools?refresh=true`, the periodic refresh), with the job table as it is then, and of every
/// fstab entry a job removed: how the pool registry and the alerts follow the machine without a
/// second round trip. Called on the thread that gathered the facts, never an async worker.
pub trait PipelineObserver: Send + Sync {
    fn observed(&self, observation: &Observation, jobs: &jobs::JobTable, now: UnixSeconds);
    /// A job's step removed the managed fstab entry of filesystem `uuid` (the step is done,
    /// whatever the later steps did): the pool was exported or destroyed.
    fn fstab_entry_removed(&self, uuid: &str);
}

/// Where nosd keeps its pipeline: empty without `[pipeline]`, set once at start.
#[derive(Default)]
pub struct PipelineSlot(OnceLock<Arc<Pipeline>>);

impl PipelineSlot {
    /// The pipeline, or [`Refusal::Unconfigured`].
    pub fn get(&self) -> Result<Arc<Pipeline>, Refusal> {
        self.0.get().cloned().ok_or(Refusal::Unconfigured)
    }

    /// Installs the pipeline; a second one is ignored (there is one per nosd).
    pub fn set(&self, pipeline: Arc<Pipeline>) {
        let _ = self.0.set(pipeline);
    }
}

/// The part of the facts a plan depends on, hashed: every block device its steps name (by path,
/// `/dev/<kernel name>` or a by-id link; a device's record includes its mount points and its
/// holders, so a new partition or mount on it counts) and the shape of every btrfs filesystem
/// (identity, mount point, members, profiles: a pool that appeared, went, or changed members or
/// profiles is always material) with the subvolumes the steps name (a snapshot locked, or a
/// subvolume made or gone at a path the plan uses, since it was made). Left out: fresh UUIDs, the time, devices the plan does not name
/// (plugging in a USB stick does not make every pending plan stale) and a pool's allocated and
/// used bytes (a pool in use changes them every second). A plan is stale when this differs at
/// apply.
pub fn facts_fingerprint(facts: &Facts, plan: &CheckedPlan) -> String {
    #[derive(Serialize)]
    struct Relevant<'a> {
        block_devices: Vec<&'a crate::facts::BlockDevice>,
        filesystems: Vec<Shape<'a>>,
    }
    #[derive(Serialize)]
    struct Shape<'a> {
        uuid: &'a str,
        label: Option<&'a str>,
        mountpoint: &'a str,
        devices: &'a [crate::facts::BtrfsDevice],
        data_profile: &'a str,
        metadata_profile: &'a str,
        /// The subvolumes the plan names (with their locks); `None` when they were not read.
        subvolumes: Option<Vec<&'a crate::facts::Subvolume>>,
    }
    let mut named: std::collections::BTreeSet<&str> = std::collections::BTreeSet::new();
    for checked in plan.steps() {
        let step = checked.step();
        for request in std::iter::once(&step.request).chain(step.rollback.as_ref()) {
            if let Request::Argv(argv) = request {
                named.extend(argv.iter().map(String::as_str));
            }
        }
    }
    let block_devices = facts
        .block_devices
        .iter()
        .filter(|device| {
            named.contains(device.path.as_str())
                || named.contains(format!("/dev/{}", device.kname).as_str())
                || device
                    .by_id
                    .iter()
                    .any(|link| named.contains(link.as_str()))
        })
        .collect();
    let filesystems = facts
        .filesystems
        .iter()
        .map(|fs| Shape {
            uuid: &fs.uuid,
            label: fs.label.as_deref(),
            mountpoint: &fs.mountpoint,
            devices: &fs.devices,
            data_profile: &fs.data_profile,
            metadata_profile: &fs.metadata_profile,
            subvolumes: fs.subvolumes.as_ref().map(|list| {
                list.iter()
                    .filter(|subvolume| named.contains(fs.subvolume_path(subvolume).as_str()))
                    .collect()
            }),
        })
        .collect();
    let bytes = serde_json::to_vec(&Relevant {
        block_devices,
        filesystems,
    })
    .unwrap_or_default();
    hex::encode(Sha256::digest(bytes))
}

/// The words a human types to apply: the distinct confirmation words of the destructive
/// steps, in plan order, separated by one space; [`DEFAULT_CONFIRMATION`] when there are none.
pub fn confirmation_of(plan: &CheckedPlan) -> String {
    let mut words: Vec<&str> = Vec::new();
    for checked in plan.steps() {
        let step = checked.step();
        if let Some(word) = step.confirmation.as_deref()
            && !words.contains(&word)
        {
            words.push(word);
        } else if step.effect == Effect::Destructive && step.confirmation.is_none() {
            continue;
        }
    }
    if words.is_empty() {
        DEFAULT_CONFIRMATION.to_string()
    } else {
        words.join(" ")
    }
}

/// The pool as `input` names it: its `mountpoint`, else `pool`, else `label`.
fn named_pool(input: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(input).unwrap_or_default();
    ["mountpoint", "pool", "label"]
        .iter()
        .find_map(|field| value.get(field).and_then(|v| v.as_str()))
        .map(str::to_owned)
}

/// The pool as `input` names it, shown with the plan (`default` when it names none).
pub fn pool_name(input: &str) -> String {
    named_pool(input).unwrap_or_else(|| "default".to_string())
}

/// Which pool a plan's job locks: the input's `mountpoint`, else `pool`, else `label`,
/// resolved through `facts` to the filesystem's UUID (`uuid:<fs uuid>`), so the same pool named
/// by path, by UUID or by label takes one lock. A name that matches no filesystem in the facts
/// (a pool about to be created) locks by the name itself (`name:<text>`).
pub fn pool_key(input: &str, facts: &Facts) -> String {
    match named_pool(input) {
        Some(name) => match filesystem_uuid(&name, facts) {
            Some(uuid) => format!("uuid:{uuid}"),
            None => format!("name:{name}"),
        },
        None => "default".to_string(),
    }
}

/// The UUID of the filesystem `name` denotes: its UUID, its mountpoint or its label (the
/// first match in that order, so a label that looks like another pool's UUID never wins).
fn filesystem_uuid<'a>(name: &str, facts: &'a Facts) -> Option<&'a str> {
    let by = |matches: &dyn Fn(&crate::facts::BtrfsFilesystem) -> bool| {
        facts.filesystems.iter().find(|fs| matches(fs))
    };
    by(&|fs| fs.uuid.eq_ignore_ascii_case(name))
        .or_else(|| by(&|fs| fs.mountpoint == name))
        .or_else(|| by(&|fs| fs.label.as_deref() == Some(name)))
        .map(|fs| fs.uuid.as_str())
}

/// A fresh random id (128 bits, hex).
pub fn random_id() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // No randomness means no unguessable ids: fail loudly in the id rather than reuse one.
        return String::new();
    }
    hex::encode(bytes)
}

/// A fresh random (v4) UUID in the canonical text form.
pub fn random_uuid() -> String {
    let mut bytes = [0u8; 16];
    let _ = getrandom::fill(&mut bytes);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = hex::encode(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::types::{Plan, Step};

    fn plan_on(devices: &[&str]) -> CheckedPlan {
        let allowlist = Allowlist::load(&[nos_allowlist::Source {
            name: "allowlist.toml".into(),
            text: include_str!("../../../allowlist.toml").to_owned(),
        }])
        .expect("the default allowlist loads");
        let mut argv: Vec<String> = ["mkfs.btrfs", "-d", "raid1", "-m", "raid1", "--"]
            .map(str::to_owned)
            .to_vec();
        argv.extend(devices.iter().map(|device| (*device).to_owned()));
        let plan = Plan {
            steps: vec![Step {
                id: "mkfs".into(),
                title: "mkfs".into(),
                request: Request::Argv(argv),
                effect: Effect::Destructive,
                rollback: None,
                confirmation: Some("tank".into()),
            }],
            warnings: Vec::new(),
        };
        crate::plan::check::check(
            plan,
            &allowlist,
            &crate::plan::check::Scope::new([]),
            &fixture(),
        )
    }

    fn fixture() -> Facts {
        Facts::from_file_json(include_bytes!("../../tests/data/facts/fixture.json")).unwrap()
    }

    #[test]
    fn issue_16_pool_lock_is_by_filesystem_uuid() {
        let facts = fixture();
        let pool = &facts.filesystems[1];
        let by_uuid = pool_key(&format!("{{\"pool\": \"{}\"}}", pool.uuid), &facts);
        let by_path = pool_key(
            &format!("{{\"mountpoint\": \"{}\"}}", pool.mountpoint),
            &facts,
        );
        assert_eq!(by_uuid, format!("uuid:{}", pool.uuid));
        assert_eq!(by_path, by_uuid, "one pool, one lock");
        if let Some(label) = &pool.label {
            let by_label = pool_key(&format!("{{\"label\": \"{label}\"}}"), &facts);
            assert_eq!(by_label, by_uuid);
        }
        // A pool not in the facts yet (about to be created) locks by its name.
        assert_eq!(pool_key("{\"label\": \"newpool\"}", &facts), "name:newpool");
        assert_eq!(pool_key("{}", &facts), "default");
    }

    #[test]
    fn a_plan_is_stale_only_when_what_it_names_changes() {
        // Named by path and by a by-id link.
        let plan = plan_on(&[
            "/dev/sdb",
            "/dev/disk/by-id/ata-WDC_WD40EFRX-68N32N0_WD-AAA2",
        ]);
        let base = facts_fingerprint(&fixture(), &plan);
        assert_eq!(base, facts_fingerprint(&fixture(), &plan), "deterministic");

        // A device the plan does not name appears, or one it does not name changes: not stale.
        let mut facts = fixture();
        let mut stick = facts.block_devices[7].clone();
        stick.path = "/dev/sdz".into();
        stick.kname = "sdz".into();
        facts.block_devices.push(stick);
        facts.block_devices[6].fstype = Some("vfat".into());
        facts.fresh_uuids = vec!["f00dcafe-0000-4000-8000-000000000000".into()];
        assert_eq!(base, facts_fingerprint(&facts, &plan));

        // Any change to a named device (by path, or by its by-id link): stale.
        let changes: [fn(&mut Facts); 4] = [
            |facts| facts.block_devices[2].fstype = Some("ext4".into()),
            |facts| facts.block_devices[2].mountpoints = vec!["/mnt".into()],
            |facts| facts.block_devices[3].holders = vec!["sdc1".into()],
            |facts| facts.block_devices[3].size_bytes -= 1,
        ];
        for change in changes {
            let mut facts = fixture();
            change(&mut facts);
            assert_ne!(base, facts_fingerprint(&facts, &plan));
        }
        // A pool being written to: not stale.
        let mut facts = fixture();
        facts.filesystems[1].used_bytes += 1 << 30;
        facts.filesystems[1].size_bytes += 1 << 30;
        assert_eq!(base, facts_fingerprint(&facts, &plan));

        // A named device that went away, and a pool that went or changed shape: stale.
        let mut facts = fixture();
        facts.block_devices.remove(2);
        assert_ne!(base, facts_fingerprint(&facts, &plan));
        let pool_changes: [fn(&mut Facts); 4] = [
            |facts| {
                facts.filesystems.remove(0);
            },
            |facts| facts.filesystems[1].data_profile = "raid1".into(),
            |facts| {
                facts.filesystems[0].devices.pop();
            },
            |facts| facts.filesystems[0].mountpoint = "/srv/elsewhere".into(),
        ];
        for change in pool_changes {
            let mut facts = fixture();
            change(&mut facts);
            assert_ne!(base, facts_fingerprint(&facts, &plan));
        }
    }
}
