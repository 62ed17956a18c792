//! Registry + one observation → what each registered pool is doing, its health, the
//! importable filesystems, and the next registry. Pure: no IO, `now` passed in.
//!
//! Per registered pool, exactly one [`PoolState`], the first that holds:
//!
//! 1. [`PoolState::MembersMissing`]: btrfs reports devices missing (`btrfs filesystem show`), or
//!    a recorded member's devid is not among the devices present; with the missing devids.
//! 2. [`PoolState::MountedElsewhere`]: mounted, but not at its registered mount point; reported
//!    with where, never taken as the new place.
//! 3. [`PoolState::NotMounted`]: with the input a mount plan needs.
//! 4. [`PoolState::Mounted`].
//!
//! A mounted filesystem that is not registered is registered when the agent read its health at
//! its mount point (see the module docs of [`crate::pools`]). A btrfs filesystem on the disks
//! that is neither registered nor mounted is [`Importable`].
//!
//! Device error counters: the current reading is judged against the registry's baseline, which
//! moves to the current reading only when that shows no counter finding, so a counter that grew
//! keeps the pool in `errors` until someone accepts the new counters.

use crate::facts::btrfs_show::ShownFilesystem;
use crate::facts::{BlockDevice, BtrfsDevice, BtrfsFilesystem, DeviceState, Facts};
use crate::gather::Observation;
use crate::health::device_stats::{self, DeviceStats, ErrorCounters};
use crate::health::scrub_status::{self, ScrubStatus};
use crate::health::{Finding, Health, LastScrub, PoolReading, StatsReading, Thresholds, classify};

use super::registry::{
    GoodState, MAX_POOLS, MemberRecord, PoolRecord, Registry, ScrubRecord, StatsRecord,
};

/// What [`reconcile`] judges with.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub thresholds: Thresholds,
    /// The zone btrfs printed scrub times in, seconds east of UTC.
    pub scrub_time_utc_offset_seconds: i64,
}

/// The result of one reconcile.
#[derive(Debug, Clone)]
pub struct Reconciled {
    pub registry: Registry,
    pub report: Report,
}

/// Every registered pool's status and the importable filesystems, as of `at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub at: u64,
    pub pools: Vec<PoolStatus>,
    pub importable: Vec<Importable>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolStatus {
    pub uuid: String,
    pub label: Option<String>,
    /// The registered mount point.
    pub mountpoint: String,
    pub state: PoolState,
    pub health: Health,
    pub members: Vec<MemberStatus>,
    pub data_profile: String,
    pub metadata_profile: String,
    pub encrypted: bool,
    pub last_scrub: Option<ScrubRecord>,
    /// Every scrub the registry has seen, newest first.
    pub scrub_history: Vec<ScrubRecord>,
    /// The last scrub as this observation read it (`btrfs scrub status`; the registry's
    /// record when it was not read, unknown when it could not be): what the health and the
    /// scrub schedule judge.
    pub scrub: LastScrub,
    pub last_good: Option<GoodState>,
}

/// What a registered pool is doing (see the module docs for the order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolState {
    Mounted,
    /// Registered but not mounted; `mount` is what a mount plan takes.
    NotMounted {
        mount: MountInput,
    },
    /// Mounted, at `mountpoint` instead of the registered one; `None` when it is mounted
    /// where nos cannot see (another mount namespace: its members are in use, but no mount
    /// of it is in the agent's table).
    MountedElsewhere {
        mountpoint: Option<String>,
    },
    /// Devices are missing: the pool is degraded. `missing_devids` are the ones known by devid;
    /// `n_missing` counts all.
    MembersMissing {
        missing_devids: Vec<u64>,
        n_missing: u64,
        mounted: bool,
    },
}

/// The input of a mount plan for a registered pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInput {
    pub uuid: String,
    pub mountpoint: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberStatus {
    pub devid: u64,
    pub path: String,
    pub by_id: Option<String>,
    pub missing: bool,
    /// The latest counters read for this devid (`None` when not read).
    pub counters: Option<ErrorCounters>,
}

/// A btrfs filesystem on the disks, not registered and not mounted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Importable {
    pub uuid: String,
    pub label: Option<String>,
    pub devices: Vec<String>,
    pub total_devices: Option<u64>,
    pub n_missing: u64,
}

impl PoolState {
    /// The name the API shows.
    pub fn as_str(&self) -> &'static str {
        match self {
            PoolState::Mounted => "mounted",
            PoolState::NotMounted { .. } => "not-mounted",
            PoolState::MountedElsewhere { .. } => "mounted-elsewhere",
            PoolState::MembersMissing { .. } => "members-missing",
        }
    }
}

/// The raw readings of one mounted pool, parsed once.
struct Parsed<'a> {
    mount_path: &'a str,
    stats: Result<Vec<DeviceStats>, String>,
    scrub: Result<ScrubStatus, String>,
}

/// See the module docs.
pub fn reconcile(
    registry: &Registry,
    observation: &Observation,
    settings: &Settings,
    now: u64,
) -> Reconciled {
    let parsed: Vec<Parsed<'_>> = observation
        .pools
        .iter()
        .map(|raw| Parsed {
            mount_path: &raw.mount_path,
            stats: raw
                .device_stats
                .text()
                .map_err(str::to_owned)
                .and_then(|text| device_stats::parse(text).map_err(|err| err.to_string())),
            scrub: raw
                .scrub_status
                .text()
                .map_err(str::to_owned)
                .and_then(|text| scrub_status::parse(text).map_err(|err| err.to_string())),
        })
        .collect();
    let facts = &observation.facts;
    let mut records = registry.pools.clone();
    for fs in &facts.filesystems {
        let known = records.iter().any(|record| record.uuid == fs.uuid);
        if known || readings_of(&parsed, fs).is_none() {
            continue;
        }
        if records.len() >= MAX_POOLS {
            tracing::warn!(uuid = %fs.uuid, "more than {MAX_POOLS} pools: not registered");
            continue;
        }
        records.push(PoolRecord {
            uuid: fs.uuid.clone(),
            label: fs.label.clone(),
            mountpoint: fs.mountpoint.clone(),
            members: Vec::new(),
            data_profile: fs.data_profile.clone(),
            metadata_profile: fs.metadata_profile.clone(),
            encrypted: false,
            registered_at: now,
            last_good: None,
            last_scrub: None,
            scrub_history: Vec::new(),
            stats_baseline: None,
            last_stats: None,
        });
    }
    records.sort_by(|a, b| a.uuid.cmp(&b.uuid));
    let mut pools = Vec::new();
    for record in &mut records {
        pools.push(judge(
            record,
            facts,
            &observation.shown,
            &parsed,
            settings,
            now,
        ));
    }
    let importable = importable(facts, &observation.shown, &records);
    Reconciled {
        registry: Registry { pools: records },
        report: Report {
            at: now,
            pools,
            importable,
        },
    }
}

/// The readings of a mounted filesystem: at its mount point, else the one whose scrub status
/// names its UUID (the agent reads each filesystem at its first mount under the mount roots).
fn readings_of<'p, 'a>(parsed: &'p [Parsed<'a>], fs: &BtrfsFilesystem) -> Option<&'p Parsed<'a>> {
    parsed
        .iter()
        .find(|reading| reading.mount_path == fs.mountpoint)
        .or_else(|| {
            parsed
                .iter()
                .find(|reading| matches!(&reading.scrub, Ok(status) if status.fsid == fs.uuid))
        })
}

/// One registered pool's status; updates its record with what was seen.
fn judge(
    record: &mut PoolRecord,
    facts: &Facts,
    shown: &[ShownFilesystem],
    parsed: &[Parsed<'_>],
    settings: &Settings,
    now: u64,
) -> PoolStatus {
    let mounted = facts.filesystems.iter().find(|fs| fs.uuid == record.uuid);
    let present = present_members(facts, shown, &record.uuid, mounted);
    refresh_members(record, facts, &present);
    let shown_fs = shown_of(shown, record, &present);
    let n_missing = shown_fs.n_missing();
    // A recorded devid not among the present ones is missing, but only when every present
    // device's devid is known (without `btrfs filesystem show` they are all unknown).
    let devids_known = present
        .iter()
        .all(|device| device.devid != crate::facts::UNKNOWN_DEVID);
    let missing_devids: Vec<u64> = record
        .members
        .iter()
        .map(|member| member.devid)
        .filter(|devid| devids_known && !present.iter().any(|device| device.devid == *devid))
        .chain(shown_fs.missing_devids.iter().copied())
        .fold(Vec::new(), |mut devids, devid| {
            if !devids.contains(&devid) {
                devids.push(devid);
            }
            devids
        });
    let readings = mounted.and_then(|fs| readings_of(parsed, fs));
    let fallback_fs;
    let filesystem = match mounted {
        Some(fs) => {
            record.label = fs.label.clone();
            record.data_profile = fs.data_profile.clone();
            record.metadata_profile = fs.metadata_profile.clone();
            fs
        }
        None => {
            fallback_fs = BtrfsFilesystem {
                uuid: record.uuid.clone(),
                label: record.label.clone(),
                mountpoint: String::new(),
                devices: present.clone(),
                data_profile: record.data_profile.clone(),
                metadata_profile: record.metadata_profile.clone(),
                size_bytes: 0,
                used_bytes: 0,
                subvolumes: None,
            };
            &fallback_fs
        }
    };
    record.encrypted = record.members.iter().any(|member| {
        device_of(facts, &member.path).is_some_and(|device| device.device_type == "crypt")
    });
    let not_read: String;
    let baseline: Option<Vec<DeviceStats>> = record
        .stats_baseline
        .as_ref()
        .map(|stats| stats.iter().map(StatsRecord::to_stats).collect());
    let stats = match readings.map(|reading| &reading.stats) {
        Some(Ok(current)) => StatsReading::Read {
            current,
            recorded: baseline.as_deref(),
        },
        Some(Err(reason)) => StatsReading::Unavailable { reason },
        None => {
            not_read = match mounted {
                Some(fs) => format!("not read at {}", fs.mountpoint),
                None => "the pool is not mounted".to_owned(),
            };
            StatsReading::Unavailable { reason: &not_read }
        }
    };
    let last_scrub = match readings.map(|reading| &reading.scrub) {
        Some(Ok(status)) => LastScrub::from_status(status, settings.scrub_time_utc_offset_seconds),
        Some(Err(reason)) => LastScrub::Unknown {
            reason: reason.clone(),
        },
        None => record
            .last_scrub
            .as_ref()
            .map_or(LastScrub::Never, ScrubRecord::to_last),
    };
    let health = classify(
        &PoolReading {
            filesystem,
            shown: &shown_fs,
            stats,
            last_scrub: &last_scrub,
            now_unix_seconds: now,
            registered_unix_seconds: record.registered_at,
        },
        &settings.thresholds,
    );
    if let Some(scrub) = ScrubRecord::from_last(&last_scrub) {
        record.record_scrub(scrub);
    }
    let current_stats: Option<Vec<StatsRecord>> = match readings.map(|reading| &reading.stats) {
        Some(Ok(current)) => Some(current.iter().map(StatsRecord::from_stats).collect()),
        _ => None,
    };
    if let Some(current) = &current_stats {
        let counter_finding = health.findings.iter().any(|finding| {
            matches!(
                finding,
                Finding::CounterGrew { .. }
                    | Finding::CounterWentDown { .. }
                    | Finding::ErrorsWithoutRecord { .. }
            )
        });
        if !counter_finding {
            record.stats_baseline = Some(current.clone());
        }
        record.last_stats = Some(current.clone());
    }
    let state = match (n_missing.max(missing_devids.len() as u64), mounted) {
        (n_missing @ 1.., mounted) => PoolState::MembersMissing {
            missing_devids: missing_devids.clone(),
            n_missing,
            mounted: mounted.is_some(),
        },
        (0, Some(fs)) if fs.mountpoint != record.mountpoint => PoolState::MountedElsewhere {
            mountpoint: Some(fs.mountpoint.clone()),
        },
        (0, Some(_)) => PoolState::Mounted,
        (0, None) if mounted_out_of_view(facts, &present) => {
            PoolState::MountedElsewhere { mountpoint: None }
        }
        (0, None) => PoolState::NotMounted {
            mount: MountInput {
                uuid: record.uuid.clone(),
                mountpoint: record.mountpoint.clone(),
            },
        },
    };
    if state == PoolState::Mounted {
        record.last_good = Some(GoodState {
            at: now,
            n_members: record.members.len(),
            size_bytes: filesystem.size_bytes,
        });
    }
    // Counters are shown only when read now: a recorded reading of an unmounted pool is old.
    let read_now = current_stats.as_deref().unwrap_or_default();
    let members = record
        .members
        .iter()
        .map(|member| MemberStatus {
            devid: member.devid,
            path: member.path.clone(),
            by_id: member.by_id.clone(),
            missing: missing_devids.contains(&member.devid),
            counters: read_now
                .iter()
                .find(|stats| stats.devid == member.devid)
                .map(StatsRecord::counters),
        })
        .collect();
    PoolStatus {
        uuid: record.uuid.clone(),
        label: record.label.clone(),
        mountpoint: record.mountpoint.clone(),
        state,
        health,
        members,
        data_profile: record.data_profile.clone(),
        metadata_profile: record.metadata_profile.clone(),
        encrypted: record.encrypted,
        last_scrub: record.last_scrub.clone(),
        scrub_history: record.scrub_history.clone(),
        scrub: last_scrub,
        last_good: record.last_good,
    }
}

/// The members present now: the mounted filesystem's, or (not mounted) every block device that
/// holds this UUID's btrfs, with the devid `btrfs filesystem show` gives it.
fn present_members(
    facts: &Facts,
    shown: &[ShownFilesystem],
    uuid: &str,
    mounted: Option<&BtrfsFilesystem>,
) -> Vec<BtrfsDevice> {
    if let Some(fs) = mounted {
        return fs.devices.clone();
    }
    facts
        .block_devices
        .iter()
        .filter(|device| {
            device.fstype.as_deref() == Some("btrfs") && device.uuid.as_deref() == Some(uuid)
        })
        .map(|device| BtrfsDevice {
            devid: crate::facts::btrfs_show::devid_of(shown, uuid, &device.path)
                .unwrap_or(crate::facts::UNKNOWN_DEVID),
            path: device.path.clone(),
            size_bytes: device.size_bytes,
        })
        .collect()
}

/// Members by devid: a present member with a known devid updates (or adds) its record; a
/// recorded member not present keeps its record, so its devid can be named as missing.
fn refresh_members(record: &mut PoolRecord, facts: &Facts, present: &[BtrfsDevice]) {
    for device in present
        .iter()
        .filter(|device| device.devid != crate::facts::UNKNOWN_DEVID)
    {
        let member = MemberRecord {
            devid: device.devid,
            path: device.path.clone(),
            by_id: device_of(facts, &device.path).and_then(|found| found.by_id.first().cloned()),
        };
        match record
            .members
            .iter_mut()
            .find(|known| known.devid == device.devid)
        {
            Some(known) => *known = member,
            None => record.members.push(member),
        }
    }
    record.members.sort_by_key(|member| member.devid);
}

/// What `btrfs filesystem show` said of this pool; when it did not list it at all, every
/// recorded member is missing (no device of the pool is present).
fn shown_of(
    shown: &[ShownFilesystem],
    record: &PoolRecord,
    present: &[BtrfsDevice],
) -> ShownFilesystem {
    if let Some(found) = shown.iter().find(|fs| fs.uuid == record.uuid) {
        return found.clone();
    }
    let missing_devids: Vec<u64> = match present.is_empty() {
        true => record.members.iter().map(|member| member.devid).collect(),
        false => Vec::new(),
    };
    ShownFilesystem {
        uuid: record.uuid.clone(),
        total_devices: (!missing_devids.is_empty()).then_some(record.members.len() as u64),
        missing_devids,
        ..ShownFilesystem::default()
    }
}

/// Whether a present member is in use although no mount of the pool is in view: it is mounted
/// in another namespace (the kernel's member list says so, see `facts::assemble`).
fn mounted_out_of_view(facts: &Facts, present: &[BtrfsDevice]) -> bool {
    present.iter().any(|member| {
        device_of(facts, &member.path).is_some_and(|device| device.state == DeviceState::InUse)
    })
}

fn device_of<'f>(facts: &'f Facts, path: &str) -> Option<&'f BlockDevice> {
    facts
        .block_devices
        .iter()
        .find(|device| device.path == path)
}

/// btrfs filesystems on the disks that are not registered and not mounted (anywhere: a member
/// in use is mounted outside nos's view).
fn importable(facts: &Facts, shown: &[ShownFilesystem], records: &[PoolRecord]) -> Vec<Importable> {
    let mut found: Vec<Importable> = Vec::new();
    for device in &facts.block_devices {
        let (Some("btrfs"), Some(uuid)) = (device.fstype.as_deref(), device.uuid.as_deref()) else {
            continue;
        };
        let registered = records.iter().any(|record| record.uuid == uuid);
        let mounted = facts.filesystems.iter().any(|fs| fs.uuid == uuid);
        if registered || mounted || device.state == DeviceState::InUse {
            continue;
        }
        match found.iter_mut().find(|fs| fs.uuid == uuid) {
            Some(fs) => fs.devices.push(device.path.clone()),
            None => {
                let listed = shown.iter().find(|fs| fs.uuid == uuid);
                found.push(Importable {
                    uuid: uuid.to_owned(),
                    label: device.label.clone(),
                    devices: vec![device.path.clone()],
                    total_devices: listed.and_then(|fs| fs.total_devices),
                    n_missing: listed.map_or(0, ShownFilesystem::n_missing),
                });
            }
        }
    }
    found.sort_by(|a, b| a.uuid.cmp(&b.uuid));
    found
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::facts::real_tests::raw;
    use crate::health::DEFAULT_THRESHOLDS;
    use expect_test::{Expect, expect};
    use nos_protocol::{FactText, PoolReadings};

    const UUID: &str = "00b3a85f-67a1-4ead-97e8-a2c61cc26544";
    pub(in crate::pools) const SETTINGS: Settings = Settings {
        thresholds: DEFAULT_THRESHOLDS,
        scrub_time_utc_offset_seconds: 0,
    };
    /// A day after the captured scrub of `raid1-scrubbed` (Wed Dec 2 16:40:37 2026, UTC).
    pub(in crate::pools) const NOW: u64 = 1_796_229_637 + 86_400;

    fn health_capture(scenario: &str, file: &str) -> FactText {
        let path = format!(
            "{}/tests/data/health/real/{scenario}/{file}",
            env!("CARGO_MANIFEST_DIR")
        );
        FactText::Text {
            text: std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{path}: {err}")),
        }
    }

    /// A captured facts scenario; with `readings`, the captured health scenario's device stats
    /// and scrub status as the agent's readings of every mounted filesystem.
    pub(in crate::pools) fn observe(
        facts_scenario: &str,
        readings: Option<(&str, &str)>,
    ) -> Observation {
        let (facts, shown) =
            crate::facts::build_with_shown(&raw(facts_scenario, "lsblk-tree.json"), &[], &[])
                .unwrap();
        let pools = match readings {
            Some((stats, scrub)) => facts
                .filesystems
                .iter()
                .map(|fs| PoolReadings {
                    mount_path: fs.mountpoint.clone(),
                    device_stats: health_capture(stats, "device-stats.json"),
                    scrub_status: health_capture(scrub, "scrub-status.txt"),
                    subvolumes: FactText::not_read(),
                })
                .collect(),
            None => Vec::new(),
        };
        Observation {
            facts,
            shown,
            pools,
        }
    }

    fn check(reconciled: &Reconciled, expect: Expect) {
        let mut lines = Vec::new();
        for pool in &reconciled.report.pools {
            lines.push(format!(
                "{} {:?} at {}: {:?} {}",
                pool.uuid,
                pool.label,
                pool.mountpoint,
                pool.state,
                pool.health.state.as_str()
            ));
            lines.extend(
                pool.health
                    .reasons()
                    .iter()
                    .map(|reason| format!("  - {reason}")),
            );
            for member in &pool.members {
                lines.push(format!(
                    "  devid {} {} missing={} counters={:?}",
                    member.devid,
                    member.path,
                    member.missing,
                    member.counters.map(|c| c.each().map(|(_, n)| n))
                ));
            }
        }
        for found in &reconciled.report.importable {
            lines.push(format!(
                "importable {} {:?} {:?} total={:?} missing={}",
                found.uuid, found.label, found.devices, found.total_devices, found.n_missing
            ));
        }
        expect.assert_eq(&lines.join("\n"));
    }

    fn step(registry: &Registry, observation: &Observation, now: u64) -> Reconciled {
        reconcile(registry, observation, &SETTINGS, now)
    }

    #[test]
    fn a_pool_read_at_its_mount_point_is_registered_and_followed() {
        let mounted = observe("btrfs-mounted", Some(("raid1-scrubbed", "raid1-scrubbed")));
        let first = step(&Registry::default(), &mounted, NOW);
        check(
            &first,
            expect![[r#"
                00b3a85f-67a1-4ead-97e8-a2c61cc26544 Some("fixpool") at /tmp/nos-capture.1PB2A1/mnt-fixpool: Mounted ok
                  - size unknown: fullness is not judged
                  devid 1 /dev/loop6 missing=false counters=Some([0, 0, 0, 0, 0])
                  devid 2 /dev/loop7 missing=false counters=Some([0, 0, 0, 0, 0])"#]],
        );
        let record = &first.registry.pools[0];
        assert_eq!(record.registered_at, NOW);
        assert_eq!(record.last_good.map(|good| good.n_members), Some(2));
        assert_eq!(
            record.last_scrub.as_ref().map(|scrub| scrub.state.as_str()),
            Some("finished")
        );

        // Unmounted later: shown as such, with its mount input, judged on its recorded scrub.
        let unmounted = observe("btrfs-unmounted", None);
        let second = step(&first.registry, &unmounted, NOW + 60);
        check(
            &second,
            expect![[r#"
                00b3a85f-67a1-4ead-97e8-a2c61cc26544 Some("fixpool") at /tmp/nos-capture.1PB2A1/mnt-fixpool: NotMounted { mount: MountInput { uuid: "00b3a85f-67a1-4ead-97e8-a2c61cc26544", mountpoint: "/tmp/nos-capture.1PB2A1/mnt-fixpool" } } ok
                  - device error counters not read: the pool is not mounted
                  - size unknown: fullness is not judged
                  devid 1 /dev/loop6 missing=false counters=None
                  devid 2 /dev/loop7 missing=false counters=None"#]],
        );
        assert!(
            second.report.importable.is_empty(),
            "registered, so not importable"
        );
        assert_eq!(second.registry.pools[0].last_good, record.last_good);

        // Its disks gone: every recorded member is missing, by devid.
        let gone = step(&second.registry, &observe("blank", None), NOW + 120);
        check(
            &gone,
            expect![[r#"
                00b3a85f-67a1-4ead-97e8-a2c61cc26544 Some("fixpool") at /tmp/nos-capture.1PB2A1/mnt-fixpool: MembersMissing { missing_devids: [1, 2], n_missing: 2, mounted: false } degraded
                  - 2 of 2 devices missing (devids 1, 2): the pool has lost redundancy until the missing devices are replaced or removed
                  - device error counters not read: the pool is not mounted
                  - size unknown: fullness is not judged
                  devid 1 /dev/loop6 missing=true counters=None
                  devid 2 /dev/loop7 missing=true counters=None"#]],
        );
    }

    /// Each scrub run is one entry of the history, newest first, updated in place while it
    /// runs; a run seen again (same start or resume) is not added twice.
    #[test]
    fn scrubs_are_kept_one_entry_per_run() {
        let mut registry = Registry::default();
        for scrub in [
            "raid1-scrub-running",
            "raid1-scrubbed",
            "raid1-scrubbed",
            "raid1-scrub-cancelled",
            "raid1-scrub-resumed",
        ] {
            let observation = observe("btrfs-mounted", Some(("raid1-scrubbed", scrub)));
            registry = step(&registry, &observation, NOW).registry;
        }
        let history: Vec<String> = registry.pools[0]
            .scrub_history
            .iter()
            .map(|run| {
                format!(
                    "{} resumed={} since={}",
                    run.state, run.resumed, run.since_unix_seconds
                )
            })
            .collect();
        expect![[r#"
            finished resumed=true since=1796229645
            aborted resumed=false since=1796229637"#]]
        .assert_eq(&history.join("\n"));
        assert_eq!(
            registry.pools[0].last_scrub.as_ref(),
            registry.pools[0].scrub_history.first()
        );
    }

    #[test]
    fn unregistered_and_unmounted_is_importable() {
        check(
            &step(&Registry::default(), &observe("btrfs-unmounted", None), NOW),
            expect![[
                r#"importable 00b3a85f-67a1-4ead-97e8-a2c61cc26544 Some("fixpool") ["/dev/loop6", "/dev/loop7"] total=Some(2) missing=0"#
            ]],
        );
    }

    #[test]
    fn mounted_where_the_agent_reads_nothing_is_not_registered() {
        let reconciled = step(&Registry::default(), &observe("btrfs-mounted", None), NOW);
        check(&reconciled, expect![[""]]);
        assert!(reconciled.registry.pools.is_empty());
    }

    #[test]
    fn mounted_elsewhere_is_reported_not_adopted() {
        let mounted = observe("btrfs-mounted", Some(("raid1-scrubbed", "raid1-scrubbed")));
        let mut registry = step(&Registry::default(), &mounted, NOW).registry;
        registry.pools[0].mountpoint = "/srv/fixpool".into();
        let reconciled = step(&registry, &mounted, NOW);
        assert_eq!(
            reconciled.report.pools[0].state,
            PoolState::MountedElsewhere {
                mountpoint: Some("/tmp/nos-capture.1PB2A1/mnt-fixpool".into())
            }
        );
        assert_eq!(reconciled.registry.pools[0].mountpoint, "/srv/fixpool");
    }

    #[test]
    fn mounted_in_another_namespace_is_elsewhere_not_unmounted() {
        let mounted = observe("btrfs-mounted", Some(("raid1-scrubbed", "raid1-scrubbed")));
        let registry = step(&Registry::default(), &mounted, NOW).registry;
        // Not in the agent's mount table, but the kernel lists its members as mounted.
        let summary = crate::facts::assemble::BtrfsSummary {
            uuid: UUID.into(),
            data_profile: "raid1".into(),
            metadata_profile: "raid1".into(),
            size_bytes: 1,
            used_bytes: 0,
            label: Some("fixpool".into()),
            members: vec!["loop6".into(), "loop7".into()],
        };
        let (facts, shown) = crate::facts::build_with_shown(
            &raw("btrfs-unmounted", "lsblk-tree.json"),
            &[summary],
            &[],
        )
        .unwrap();
        let observation = Observation {
            facts,
            shown,
            pools: Vec::new(),
        };
        let reconciled = step(&registry, &observation, NOW);
        assert_eq!(
            reconciled.report.pools[0].state,
            PoolState::MountedElsewhere { mountpoint: None }
        );
        assert!(reconciled.report.importable.is_empty());
    }

    #[test]
    fn grown_counters_stay_reported_until_accepted() {
        let clean = observe(
            "btrfs-mounted",
            Some(("raid1-never-scrubbed", "raid1-scrubbed")),
        );
        let registry = step(&Registry::default(), &clean, NOW).registry;
        let corrupted = observe("btrfs-mounted", Some(("raid1-corrupted", "raid1-scrubbed")));
        let first = step(&registry, &corrupted, NOW + 60);
        let second = step(&first.registry, &corrupted, NOW + 120);
        for reconciled in [&first, &second] {
            let health = &reconciled.report.pools[0].health;
            assert_eq!(health.state.as_str(), "errors", "{health:?}");
            assert_eq!(
                health.reasons()[0],
                "/dev/loop0 (devid 1): corruption_errs grew from 0 to 16 since the last record"
            );
        }
        assert_eq!(
            second.registry.pools[0].stats_baseline,
            registry.pools[0].stats_baseline
        );
        assert_ne!(
            second.registry.pools[0].last_stats,
            registry.pools[0].last_stats
        );

        // Accepted: the latest reading is the new baseline, and the same counters are healthy.
        let mut accepted = second.registry.clone();
        assert!(accepted.accept_counters(UUID));
        assert!(!accepted.accept_counters("00000000-0000-4000-8000-000000000000"));
        let third = step(&accepted, &corrupted, NOW + 180);
        assert_eq!(third.report.pools[0].health.state.as_str(), "ok");
    }

    #[test]
    fn a_failed_reading_is_that_pools_reason() {
        let mut observation = observe("btrfs-mounted", Some(("raid1-scrubbed", "raid1-scrubbed")));
        observation.pools[0].device_stats = FactText::Unavailable {
            reason: "btrfs.device.stats failed: ERROR: cannot check /srv/x".into(),
        };
        let reconciled = step(&Registry::default(), &observation, NOW);
        assert_eq!(
            reconciled.report.pools[0].health.reasons()[0],
            "device error counters not read: btrfs.device.stats failed: ERROR: cannot check /srv/x"
        );
    }
}
