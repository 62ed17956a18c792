//! Every plugin in `plugins/`, built fresh by `build.rs`, run as a real component: real planners
//! on fixture facts, hostile guests ending in their typed error within bounded time, and the
//! host serving the next call after each. `foreach_plugin!` makes a plugin without a test here
//! a compile error.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use nos_allowlist::{Allowlist, Source};
use nos_host::facts::Facts;
use nos_host::plan::check::{self, CheckedPlan, StepVerdict};
use nos_host::plan::types::{Plan, Refusal, Request};
use nos_host::plugin::{AuthPolicyPlugin, HostConfig, Planner, PluginError, PluginHost};

include!(concat!(env!("OUT_DIR"), "/plugins.rs"));

macro_rules! assert_test_exists {
    ($name:ident, $dir:expr) => {
        #[allow(unused_imports)]
        use self::$name as _;
    };
}
foreach_plugin!(assert_test_exists);

/// Every hostile call must end within this wall-clock time (deadlines are 1 s by default).
const HOSTILE_BOUND: Duration = Duration::from_secs(15);

static HOST: LazyLock<PluginHost> =
    LazyLock::new(|| PluginHost::new(&HostConfig::new(None)).expect("plugin host"));

static ALLOWLIST: LazyLock<Allowlist> = LazyLock::new(|| {
    let text = include_str!("../../allowlist.toml").to_owned();
    Allowlist::load(&[Source {
        name: "allowlist.toml".into(),
        text,
    }])
    .expect("default allowlist")
});

/// Judge a plugin's plan against the real default allowlist and the plugin's own scope.
fn checked(plugin: &Planner, plan: Plan) -> CheckedPlan {
    check::check(plan, &ALLOWLIST, &plugin.manifest().scope, &facts())
}

/// Each step's verdict, one line per step.
fn verdict_lines(checked: &CheckedPlan) -> String {
    let mut out = String::new();
    for step in checked.steps() {
        match step.verdict() {
            StepVerdict::Allowed { rule_id, canonical } => {
                out.push_str(&format!(
                    "{}: allowed by {rule_id}: {canonical}\n",
                    step.step().id
                ));
            }
            StepVerdict::Rejected { reason } => {
                out.push_str(&format!("{}: REJECTED: {reason}\n", step.step().id));
            }
        }
    }
    out
}

/// Run a real planner on the fixture facts; every step must pass the default allowlist.
fn plan_all_allowed(plugin: &Planner, input: &str) -> Plan {
    let plan = plugin.plan(&facts(), input).unwrap().answer.unwrap();
    let judged = checked(plugin, plan.clone());
    assert!(judged.all_allowed(), "{input}\n{}", verdict_lines(&judged));
    plan
}

fn facts() -> Facts {
    Facts::from_file_json(include_bytes!("data/facts/fixture.json")).expect("fixture facts")
}

fn load(dir: &str) -> Planner {
    HOST.load_planner(Path::new(dir))
        .unwrap_or_else(|e| panic!("load {dir}: {e}"))
}

fn load_policy(dir: &str) -> AuthPolicyPlugin {
    HOST.load_auth_policy(Path::new(dir))
        .unwrap_or_else(|e| panic!("load {dir}: {e}"))
}

fn plan_lines(plan: &Plan) -> String {
    let mut out = String::new();
    for step in &plan.steps {
        out.push_str(&format!("{} [{}] {}", step.id, step.effect, step.request));
        if let Some(word) = &step.confirmation {
            out.push_str(&format!(" (confirm: {word})"));
        }
        if let Some(rollback) = &step.rollback {
            out.push_str(&format!(" (rollback: {rollback})"));
        }
        out.push('\n');
    }
    for warning in &plan.warnings {
        out.push_str(&format!("warning: {warning}\n"));
    }
    out
}

/// The host still serves a real planner after whatever just happened.
fn assert_host_still_serves() {
    let pool = load(BTRFS_POOL);
    let call = pool
        .plan(
            &facts(),
            r#"{"devices": ["/dev/sdb", "/dev/sdc"], "label": "tank", "mountpoint": "/srv/tank"}"#,
        )
        .expect("btrfs-pool after a hostile call");
    assert!(call.answer.is_ok(), "{:?}", call.answer);
}

/// Run a hostile planner; it must fail within the bound, and the host must serve on.
fn hostile_plan(dir: &str, input: &str) -> PluginError {
    let plugin = load(dir);
    let started = Instant::now();
    let result = plugin.plan(&facts(), input);
    let elapsed = started.elapsed();
    assert!(elapsed < HOSTILE_BOUND, "{dir} took {elapsed:?}");
    let err = match result {
        Ok(call) => panic!(
            "{dir} was expected to fail, got {:?}",
            call.answer.map(|p| p.steps.len())
        ),
        Err(err) => err,
    };
    // The same loaded plugin is not poisoned: a second call fails the same way, afresh
    // (a reused instance would say "cannot enter component instance" instead).
    let again = plugin.plan(&facts(), input).err().map(|e| e.to_string());
    assert_eq!(again, Some(err.to_string()), "{dir}: second call");
    assert_host_still_serves();
    err
}

/// Copy a built plugin into a temporary directory with an edited manifest.
fn with_manifest(dir: &str, edit: impl FnOnce(String) -> String) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let src = Path::new(dir);
    std::fs::copy(src.join("plugin.wasm"), tmp.path().join("plugin.wasm")).unwrap();
    let manifest = std::fs::read_to_string(src.join("plugin.toml")).unwrap();
    std::fs::write(tmp.path().join("plugin.toml"), edit(manifest)).unwrap();
    let path = tmp.path().to_path_buf();
    (tmp, path)
}

#[test]
fn btrfs_pool() {
    let pool = load(BTRFS_POOL);
    let info = pool.describe().unwrap();
    assert_eq!(info.name, "btrfs-pool");
    assert!(info.input_schema.contains("\"devices\""));
    for input in [
        r#"{"devices": ["/dev/sdb", "/dev/sdc"], "label": "tank", "mountpoint": "/srv/tank"}"#,
        r#"{"devices": ["nvme0n1"], "label": "fast", "mountpoint": "/mnt/fast"}"#,
        r#"{"devices": ["sdb", "sdc", "sdd"], "label": "big", "mountpoint": "/srv/big", "data_profile": "raid1c3", "metadata_profile": "raid1c3"}"#,
        r#"{"devices": ["nvme0n1", "nvme1n1"], "label": "fast", "mountpoint": "/srv/fast", "encrypt": true}"#,
    ] {
        plan_all_allowed(&pool, input);
    }
    let plan = plan_all_allowed(
        &pool,
        r#"{"devices": ["/dev/sdb", "/dev/sdc"], "label": "tank", "mountpoint": "/srv/tank", "encrypt": true}"#,
    );
    expect_test::expect![[r#"
        key-file [state] ensure key file /etc/nos/keys/tank.key
        luks-format-sdb [destructive] cryptsetup luksFormat --type luks2 --batch-mode --key-file /etc/nos/keys/tank.key --uuid 6a1d8b9f-2c3d-4e4f-9a51-23456789abcd /dev/sdb (confirm: tank)
        luks-open-sdb [state] cryptsetup open --key-file /etc/nos/keys/tank.key /dev/sdb luks-tank-0 (rollback: cryptsetup close luks-tank-0)
        luks-format-sdc [destructive] cryptsetup luksFormat --type luks2 --batch-mode --key-file /etc/nos/keys/tank.key --uuid 7b2e9c0a-3d4e-4f50-8b62-3456789abcde /dev/sdc (confirm: tank)
        luks-open-sdc [state] cryptsetup open --key-file /etc/nos/keys/tank.key /dev/sdc luks-tank-1 (rollback: cryptsetup close luks-tank-1)
        mkfs [destructive] mkfs.btrfs -L tank -U 5f0c7a8e-1b2c-4d3e-8f40-123456789abc -d raid1 -m raid1 /dev/mapper/luks-tank-0 /dev/mapper/luks-tank-1 (confirm: tank)
        mount-dir [state] ensure mount dir /srv/tank (rollback: remove mount dir /srv/tank)
        mount [state] mount -t btrfs -o compress=zstd:3,noatime /dev/mapper/luks-tank-0 /srv/tank (rollback: umount /srv/tank)
        crypttab-sdb [state] ensure crypttab luks-tank-0 UUID=6a1d8b9f-2c3d-4e4f-9a51-23456789abcd /etc/nos/keys/tank.key luks (rollback: remove crypttab luks-tank-0 UUID=6a1d8b9f-2c3d-4e4f-9a51-23456789abcd /etc/nos/keys/tank.key luks)
        crypttab-sdc [state] ensure crypttab luks-tank-1 UUID=7b2e9c0a-3d4e-4f50-8b62-3456789abcde /etc/nos/keys/tank.key luks (rollback: remove crypttab luks-tank-1 UUID=7b2e9c0a-3d4e-4f50-8b62-3456789abcde /etc/nos/keys/tank.key luks)
        fstab [state] ensure fstab UUID=5f0c7a8e-1b2c-4d3e-8f40-123456789abc /srv/tank btrfs compress=zstd:3,noatime (rollback: remove fstab UUID=5f0c7a8e-1b2c-4d3e-8f40-123456789abc /srv/tank btrfs compress=zstd:3,noatime)
        verify [read] btrfs filesystem show /dev/mapper/luks-tank-0
    "#]]
    .assert_eq(&plan_lines(&plan));

    // A refusal is an answer, not a failure.
    let call = pool
        .plan(
            &facts(),
            r#"{"devices": ["/dev/sda"], "label": "x", "mountpoint": "/srv/x"}"#,
        )
        .unwrap();
    assert_eq!(
        call.answer,
        Err(Refusal::Refused(
            "device /dev/sda is in use (sda1 is mounted at /; partition sda1: ext4, 238 GiB); \
             unmount or stop what uses it first"
                .into()
        ))
    );
    let call = pool.plan(&facts(), "not json").unwrap();
    assert!(
        matches!(call.answer, Err(Refusal::InvalidInput(_))),
        "{:?}",
        call.answer
    );
}

#[test]
fn hostile_infinite_loop() {
    let err = hostile_plan(HOSTILE_INFINITE_LOOP, "{}");
    assert!(
        matches!(
            err,
            PluginError::OutOfFuel {
                budget: 100_000_000,
                ..
            }
        ),
        "{err}"
    );

    // With fuel to spare, the wall-clock deadline stops it instead.
    let (_tmp, dir) = with_manifest(HOSTILE_INFINITE_LOOP, |m| {
        format!("{m}\n[limits]\nfuel = 2_000_000_000_000\ndeadline-ms = 50\n")
            .replace("[limits]\n[limits]", "[limits]")
    });
    let plugin = HOST.load_planner(&dir).unwrap();
    let started = Instant::now();
    let err = plugin.plan(&facts(), "{}").unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    expect_test::expect!["plugin hostile-infinite-loop exceeded its deadline of 50 ms"]
        .assert_eq(&err.to_string());
}

/// More calls at once than the instance pool has slots: the extra call is a typed `Busy`, never
/// a panic or a wait, the call holding the slot ends in its own typed error, and the host serves
/// again once the slot is free.
#[test]
fn pool_exhaustion_is_busy() {
    let host = PluginHost::new(&HostConfig {
        max_concurrent_calls: 1,
        ..HostConfig::new(None)
    })
    .unwrap();
    let (_tmp, dir) = with_manifest(HOSTILE_INFINITE_LOOP, |m| {
        format!("{m}\n[limits]\nfuel = 2_000_000_000_000\ndeadline-ms = 3000\n")
    });
    let looping = host.load_planner(&dir).unwrap();
    let pool = host.load_planner(Path::new(BTRFS_POOL)).unwrap();
    let input = r#"{"devices": ["/dev/sdb"], "label": "a", "mountpoint": "/srv/a"}"#;
    // The looping call holds the only slot until its fuel runs out (the cap, about 80 ms);
    // meanwhile btrfs-pool is asked again and again. If btrfs-pool won the race for the slot,
    // the looping call was the busy one: try again.
    let busy = (0..20).find_map(|_| {
        std::thread::scope(|scope| {
            let holder = scope.spawn(|| looping.plan(&facts(), "{}").unwrap_err());
            let busy = loop {
                // Leave the holder time to take the slot (a spinning caller would hold it).
                std::thread::sleep(Duration::from_millis(2));
                match pool.plan(&facts(), input) {
                    Err(err) => break Some(err),
                    Ok(_) if holder.is_finished() => break None,
                    Ok(_) => {}
                }
            };
            let held = holder.join().unwrap();
            let busy = busy?;
            assert!(
                matches!(held, PluginError::OutOfFuel { .. }),
                "the slot holder: {held}"
            );
            Some(busy)
        })
    });
    let busy = busy.expect("the pool of one slot was never seen full");
    assert!(matches!(busy, PluginError::Busy { max: 1, .. }), "{busy}");
    expect_test::expect!["plugin btrfs-pool: all 1 plugin call slots are in use; try again"]
        .assert_eq(&busy.to_string());
    assert!(pool.plan(&facts(), input).unwrap().answer.is_ok());
}

#[test]
fn hostile_memory_hog() {
    let err = hostile_plan(HOSTILE_MEMORY_HOG, "{}");
    assert!(
        matches!(
            err,
            PluginError::MemoryLimit {
                limit: 33_554_432,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn hostile_stack_overflow() {
    let err = hostile_plan(HOSTILE_STACK_OVERFLOW, "{}");
    expect_test::expect!["plugin hostile-stack-overflow overflowed its wasm stack (524288 bytes)"]
        .assert_eq(&err.to_string());
}

#[test]
fn hostile_panic() {
    let err = hostile_plan(HOSTILE_PANIC, "{}");
    let PluginError::Panic { message, .. } = &err else {
        panic!("expected a panic error, got {err}");
    };
    assert!(
        message.contains("planner bug: cannot handle 11 devices"),
        "{message}"
    );
}

#[test]
fn hostile_huge_plan() {
    let err = hostile_plan(HOSTILE_HUGE_PLAN, "{}");
    expect_test::expect![
        "plugin hostile-huge-plan tried to pass more than 16777216 bytes to the host in one call"
    ]
    .assert_eq(&err.to_string());
}

#[test]
fn hostile_huge_string() {
    let err = hostile_plan(HOSTILE_HUGE_STRING, "{}");
    expect_test::expect![
        "plugin hostile-huge-string tried to pass more than 16777216 bytes to the host in one call"
    ]
    .assert_eq(&err.to_string());
    let err = load(HOSTILE_HUGE_STRING).describe().unwrap_err();
    expect_test::expect!["plugin hostile-huge-string returned a malformed result: describe(): summary is longer than 1024 bytes or has control characters"]
        .assert_eq(&err.to_string());
}

#[test]
fn hostile_forbidden_argv() {
    // The plugin runs fine; its plan is what `plan::check` rejects, step by step.
    let plugin = load(HOSTILE_FORBIDDEN_ARGV);
    let plan = plugin.plan(&facts(), "{}").unwrap().answer.unwrap();
    assert_eq!(
        plan.steps[1].request,
        Request::Argv(vec![
            "sh".into(),
            "-c".into(),
            "dd if=/dev/zero of=/dev/sda".into()
        ])
    );
    let judged = checked(&plugin, plan);
    assert_eq!(judged.n_rejected(), 2);
    expect_test::expect![[r#"
        show: allowed by btrfs.filesystem.show: /usr/bin/btrfs filesystem show -- /dev/sdf
        wipe: REJECTED: token 2: the token has U+0020 at byte 2: only printable ASCII without spaces is allowed
        mkfs-root: REJECTED: token 3: devices `/etc/passwd` is not a valid disk: it is not a device path of an allowed form (/dev/<kernel name>, /dev/disk/by-*/<name>, /dev/mapper/<name>) (closest rule: mkfs.btrfs)
    "#]].assert_eq(&verdict_lines(&judged));
}

#[test]
fn hostile_out_of_scope() {
    let plugin = load(HOSTILE_OUT_OF_SCOPE);
    assert!(
        !plugin
            .manifest()
            .scope
            .contains("btrfs.device.remove.devid")
    );
    let plan = plugin.plan(&facts(), "{}").unwrap().answer.unwrap();
    let judged = checked(&plugin, plan);
    expect_test::expect![[r#"
        show: allowed by btrfs.filesystem.show: /usr/bin/btrfs filesystem show -- /dev/sdf
        remove: REJECTED: rule btrfs.device.remove.devid is outside the plugin's scope
    "#]]
    .assert_eq(&verdict_lines(&judged));
}

fn load_err(dir: &Path) -> PluginError {
    match HOST.load(dir) {
        Ok(_) => panic!("{} was expected to be refused at load", dir.display()),
        Err(err) => err,
    }
}

#[test]
fn hostile_wasi_fs() {
    let err = load_err(Path::new(HOSTILE_WASI_FS));
    let PluginError::ForbiddenImport { imports, .. } = &err else {
        panic!("expected a forbidden import, got {err}");
    };
    assert!(
        imports.iter().any(|i| i.starts_with("wasi:filesystem/")),
        "{err}"
    );
    assert_host_still_serves();
}

#[test]
fn hostile_wasi_sockets() {
    let err = load_err(Path::new(HOSTILE_WASI_SOCKETS));
    let PluginError::ForbiddenImport { imports, .. } = &err else {
        panic!("expected a forbidden import, got {err}");
    };
    assert!(
        imports.iter().any(|i| i.starts_with("wasi:sockets/")),
        "{err}"
    );
    assert_host_still_serves();
}

#[test]
fn hostile_bad_hash() {
    let err = load_err(Path::new(HOSTILE_BAD_HASH));
    let PluginError::HashMismatch {
        expected, actual, ..
    } = &err
    else {
        panic!("expected a hash mismatch, got {err}");
    };
    assert_eq!(expected, &"0".repeat(64));
    assert_eq!(actual.len(), 64);
    assert_host_still_serves();
}

#[test]
fn hostile_api_version() {
    let err = load_err(Path::new(HOSTILE_API_VERSION));
    expect_test::expect![
        "plugin hostile-api-version targets planner API 0.9.0; this host supports 0.1.0 to 0.3.0"
    ]
    .assert_eq(&err.to_string());

    // A manifest that lies about the version is caught by the component's export name.
    let (_tmp, dir) = with_manifest(HOSTILE_API_VERSION, |m| {
        m.replace("api-version = \"0.9.0\"", "api-version = \"0.1.0\"")
    });
    expect_test::expect![
        "plugin hostile-api-version targets planner API 0.9.0; this host supports 0.1.0 to 0.3.0"
    ]
    .assert_eq(&load_err(&dir).to_string());
}

#[test]
fn swapped_component_loses_its_manifest() {
    // The manifest of btrfs-pool with another plugin's component: the hash no longer matches.
    let (_tmp, dir) = with_manifest(BTRFS_POOL, |m| m);
    std::fs::copy(
        Path::new(HOSTILE_PANIC).join("plugin.wasm"),
        dir.join("plugin.wasm"),
    )
    .unwrap();
    assert!(matches!(load_err(&dir), PluginError::HashMismatch { .. }));
}

/// A handle is typed by its world, so a planner call on an auth policy does not compile (the
/// `compile_fail` example in `plugin/mod.rs`); what is left to refuse is loading a plugin as
/// the wrong world.
#[test]
fn wrong_kind_is_refused() {
    let err = HOST
        .load_auth_policy(Path::new(BTRFS_POOL))
        .err()
        .expect("a planner is no auth policy");
    expect_test::expect!["plugin btrfs-pool is a planner plugin, not a auth-policy"]
        .assert_eq(&err.to_string());
    let err = HOST
        .load_planner(Path::new(AUTH_DEFAULT))
        .err()
        .expect("an auth policy is no planner");
    expect_test::expect!["plugin auth-default is a auth-policy plugin, not a planner"]
        .assert_eq(&err.to_string());
    // Loaded as either world, a plugin says what it is and narrows to that world only.
    let any = HOST.load(Path::new(AUTH_DEFAULT)).unwrap();
    assert_eq!(any.describe().unwrap().name, "auth-default");
    assert!(matches!(
        any.into_planner(),
        Err(PluginError::WrongKind { .. })
    ));
}

#[test]
fn compile_cache_hits_after_a_miss() {
    let cache_dir = tempfile::tempdir().unwrap();
    let config = HostConfig::new(Some(cache_dir.path().join("cache")));
    let cold = PluginHost::new(&config).unwrap();
    let plugin = cold.load(Path::new(BTRFS_POOL)).unwrap();
    assert_eq!(
        plugin.cache_outcome(),
        Some(nos_host::plugin::cache::CacheOutcome::Miss)
    );
    drop((plugin, cold));
    let warm = PluginHost::new(&config).unwrap();
    let plugin = warm.load_planner(Path::new(BTRFS_POOL)).unwrap();
    assert_eq!(
        plugin.cache_outcome(),
        Some(nos_host::plugin::cache::CacheOutcome::Hit)
    );
    assert!(
        plugin
            .plan(
                &facts(),
                r#"{"devices": ["/dev/sdb"], "label": "a", "mountpoint": "/srv/a"}"#
            )
            .unwrap()
            .answer
            .is_ok()
    );

    // A corrupt artefact is recompiled, not trusted. It is replaced by rename, as the cache
    // itself does: truncating a mapped artefact in place would fault the process (SIGBUS).
    for entry in std::fs::read_dir(cache_dir.path().join("cache")).unwrap() {
        let path = entry.unwrap().path();
        let tmp = path.with_extension("garbage");
        std::fs::write(&tmp, b"garbage").unwrap();
        std::fs::rename(&tmp, &path).unwrap();
    }
    let plugin = warm.load(Path::new(BTRFS_POOL)).unwrap();
    assert_eq!(
        plugin.cache_outcome(),
        Some(nos_host::plugin::cache::CacheOutcome::Miss)
    );
}

/// The attack found from outside: another plugin's artefact moved under a verified component's
/// name is never loaded (its tag does not verify), and neither is an artefact or a cache
/// directory another user owns.
#[test]
fn compile_cache_trusts_only_its_own_artefacts() {
    let cache_dir = tempfile::tempdir().unwrap();
    let dir = cache_dir.path().join("cache");
    let host = PluginHost::new(&HostConfig::new(Some(dir.clone()))).unwrap();
    let artefacts = |dir: &Path| -> Vec<PathBuf> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "cwasm"))
            .collect();
        paths.sort();
        paths
    };
    host.load(Path::new(BTRFS_POOL)).unwrap();
    let pool_artefact = artefacts(&dir).pop().unwrap();
    host.load(Path::new(BTRFS_DEVICES)).unwrap();
    let devices_artefact = artefacts(&dir)
        .into_iter()
        .find(|path| *path != pool_artefact)
        .unwrap();
    std::fs::copy(&devices_artefact, &pool_artefact).unwrap();
    let planner = host.load_planner(Path::new(BTRFS_POOL)).unwrap();
    assert_eq!(
        planner.cache_outcome(),
        Some(nos_host::plugin::cache::CacheOutcome::Miss),
        "a swapped artefact was loaded"
    );
    assert_eq!(planner.describe().unwrap().name, "btrfs-pool");
    // Recompiled and re-tagged: the next load hits.
    let again = host.load_planner(Path::new(BTRFS_POOL)).unwrap();
    assert_eq!(
        again.cache_outcome(),
        Some(nos_host::plugin::cache::CacheOutcome::Hit)
    );

    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIP compile_cache_trusts_only_its_own_artefacts (ownership half): needs root");
        return;
    }
    let nobody = Some(nix::unistd::Uid::from_raw(65534));
    nix::unistd::chown(&pool_artefact, nobody, None).unwrap();
    let foreign = host.load_planner(Path::new(BTRFS_POOL)).unwrap();
    assert_eq!(
        foreign.cache_outcome(),
        Some(nos_host::plugin::cache::CacheOutcome::Miss),
        "an artefact another user owns was loaded"
    );
    nix::unistd::chown(&dir, nobody, None).unwrap();
    let refused = PluginHost::new(&HostConfig::new(Some(dir.clone())));
    assert!(
        matches!(&refused, Err(PluginError::Cache(_))),
        "a cache directory another user owns was opened"
    );
    if let Err(err) = refused {
        assert!(err.to_string().contains("owned by uid 65534"), "{err}");
    }
}

#[test]
fn btrfs_devices() {
    let plugin = load(BTRFS_DEVICES);
    for input in [
        r#"{"action": "add", "pool": "/srv/solo", "device": "/dev/sdd", "data_profile": "raid1", "metadata_profile": "raid1"}"#,
        r#"{"action": "add", "pool": "pool", "device": "sdd"}"#,
        r#"{"action": "remove", "pool": "/srv/pool", "devid": 2, "data_profile": "single", "metadata_profile": "dup"}"#,
        r#"{"action": "remove", "pool": "/srv/pool", "device": "/dev/sdg", "data_profile": "single", "metadata_profile": "dup"}"#,
        r#"{"action": "remove-missing", "pool": "/srv/solo"}"#,
    ] {
        plan_all_allowed(&plugin, input);
    }
    let plan = plan_all_allowed(
        &plugin,
        r#"{"action": "replace", "pool": "/srv/pool", "devid": 1, "new_device": "/dev/sdd"}"#,
    );
    expect_test::expect![[r#"
        replace-devid-1 [destructive] btrfs replace start /dev/sdf /dev/sdd /srv/pool (confirm: sdd)
        replace-status [read] btrfs replace status -1 /srv/pool
        verify [read] btrfs filesystem show /dev/sdg
    "#]]
    .assert_eq(&plan_lines(&plan));
    let refusal = plugin
        .plan(
            &facts(),
            r#"{"action": "remove", "pool": "/srv/pool", "devid": 2}"#,
        )
        .unwrap()
        .answer
        .unwrap_err();
    expect_test::expect!["refused: data profile raid1 needs at least 2 devices, got 1"]
        .assert_eq(&refusal.to_string());
}

/// The fixture with pool `pool` (sdf + sdg, raid1) unmounted and, when `lost` is set, sdg gone:
/// facts read from a file are classified again, so its members hold data.
fn facts_with_the_pool_unmounted(lost: bool) -> Facts {
    let mut value: serde_json::Value =
        serde_json::from_slice(include_bytes!("data/facts/fixture.json")).expect("fixture");
    value["filesystems"]
        .as_array_mut()
        .expect("filesystems")
        .retain(|fs| fs["mountpoint"] != "/srv/pool");
    let devices = value["block_devices"]
        .as_array_mut()
        .expect("block_devices");
    devices.retain(|device| !(lost && device["kname"] == "sdg"));
    for device in devices.iter_mut() {
        if device["label"] == "pool" {
            device["mountpoints"] = serde_json::json!([]);
        }
    }
    Facts::from_file_json(&serde_json::to_vec(&value).expect("json")).expect("facts")
}

/// Every action passes the default allowlist and the host's device checks: the degraded mount
/// of a pool missing a member (its own destructive rule, confirmed by the label), the export of
/// a mounted pool, the destroy of an unmounted one (the wipe rule on members that hold data).
#[test]
fn btrfs_lifecycle() {
    let plugin = load(BTRFS_LIFECYCLE);
    let judged = |facts: &Facts, input: &str| {
        let plan = plugin.plan(facts, input).unwrap().answer.unwrap();
        let judged = check::check(plan, &ALLOWLIST, &plugin.manifest().scope, facts);
        assert!(judged.all_allowed(), "{input}\n{}", verdict_lines(&judged));
        verdict_lines(&judged)
    };
    let degraded = facts_with_the_pool_unmounted(true);
    let unmounted = facts_with_the_pool_unmounted(false);
    let out = [
        judged(
            &degraded,
            r#"{"action": "mount-degraded", "pool": "pool", "mountpoint": "/srv/pool", "read_write": true}"#,
        ),
        judged(
            &unmounted,
            r#"{"action": "import", "pool": "0b3c1d2e-1111-4000-8000-000000000001", "mountpoint": "/srv/pool"}"#,
        ),
        judged(&facts(), r#"{"action": "export", "pool": "/srv/pool"}"#),
        judged(
            &unmounted,
            r#"{"action": "destroy", "pool": "pool", "mountpoint": "/srv/pool"}"#,
        ),
    ]
    .concat();
    expect_test::expect![[r#"
        scan: allowed by btrfs.device.scan: /usr/bin/btrfs device scan -- /dev/sdf
        mount-dir: allowed by managed.mount_dir: ensure mount dir /srv/pool
        mount-degraded: allowed by mount.btrfs.degraded: /usr/bin/mount --no-canonicalize -t btrfs -o degraded -o rw,nosuid,nodev -- /dev/sdf /srv/pool
        verify: allowed by btrfs.filesystem.show: /usr/bin/btrfs filesystem show -- /dev/sdf
        scan: allowed by btrfs.device.scan: /usr/bin/btrfs device scan -- /dev/sdf /dev/sdg
        mount-dir: allowed by managed.mount_dir: ensure mount dir /srv/pool
        mount: allowed by mount.btrfs: /usr/bin/mount --no-canonicalize -t btrfs -o compress=zstd:3,noatime,nosuid,nodev -- /dev/sdf /srv/pool
        fstab: allowed by managed.fstab: ensure fstab UUID=0b3c1d2e-1111-4000-8000-000000000001 /srv/pool btrfs compress=zstd:3,noatime,nosuid,nodev,nofail,x-systemd.device-timeout=30s
        verify: allowed by btrfs.filesystem.show: /usr/bin/btrfs filesystem show -- /dev/sdf
        umount: allowed by umount: /usr/bin/umount -- /srv/pool
        fstab: allowed by managed.fstab: remove fstab UUID=0b3c1d2e-1111-4000-8000-000000000001 /srv/pool btrfs noatime,nosuid,nodev,nofail,x-systemd.device-timeout=30s
        mount-dir: allowed by managed.mount_dir: remove mount dir /srv/pool
        fstab: allowed by managed.fstab: remove fstab UUID=0b3c1d2e-1111-4000-8000-000000000001 /srv/pool btrfs noatime,nosuid,nodev,nofail,x-systemd.device-timeout=30s
        mount-dir: allowed by managed.mount_dir: remove mount dir /srv/pool
        wipe-sdf: allowed by wipefs: /usr/sbin/wipefs --all -- /dev/sdf
        wipe-sdg: allowed by wipefs: /usr/sbin/wipefs --all -- /dev/sdg
    "#]].assert_eq(&out);
    // A mounted pool is never destroyed: its members are in use.
    let refusal = plugin
        .plan(&facts(), r#"{"action": "destroy", "pool": "pool"}"#)
        .unwrap()
        .answer
        .unwrap_err();
    assert!(
        refusal.to_string().contains("unmount it first"),
        "{refusal}"
    );
}

/// A planner built against the frozen 0.1.0 API still loads and plans (its facts are lowered
/// without the device state it cannot see).
#[test]
fn hostile_legacy_v0_1() {
    let plugin = load(HOSTILE_LEGACY_V0_1);
    let plan = plan_all_allowed(&plugin, "{}");
    expect_test::expect![[r#"
        show [read] btrfs filesystem show /dev/sdf
    "#]]
    .assert_eq(&plan_lines(&plan));
}

/// The fixture facts plus a disk with a GPT table and an ext4 partition, classified by the host.
fn facts_with_a_used_disk() -> Facts {
    let mut value: serde_json::Value =
        serde_json::from_slice(include_bytes!("data/facts/fixture.json")).expect("fixture");
    let devices = value["block_devices"]
        .as_array_mut()
        .expect("block_devices");
    devices.push(serde_json::json!({
        "path": "/dev/sdx", "kname": "sdx", "size_bytes": 4_000_787_030_016u64,
        "rotational": true, "device_type": "disk", "holders": ["sdx1"],
        "serial": "WD-XYZ123", "model": "WDC WD40EFRX", "partition_table": "gpt",
    }));
    devices.push(serde_json::json!({
        "path": "/dev/sdx1", "kname": "sdx1", "size_bytes": 4_000_785_104_896u64,
        "rotational": true, "device_type": "part", "parent": "sdx",
        "fstype": "ext4", "usage": "filesystem", "label": "photos",
        "uuid": "3f1b2c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
    }));
    Facts::from_file_json(&serde_json::to_vec(&value).expect("json")).expect("facts")
}

/// A disk with a GPT table and an ext4 partition: the wipe plan names what it destroys and asks
/// for the serial; pools refuse it by disk and by partition, with no force input.
#[test]
fn disk_wipe_a_partitioned_disk() {
    let plugin = load(DISK_WIPE);
    let facts = facts_with_a_used_disk();
    let plan = plugin
        .plan(&facts, r#"{"device": "sdx"}"#)
        .unwrap()
        .answer
        .unwrap();
    let judged = check::check(plan.clone(), &ALLOWLIST, &plugin.manifest().scope, &facts);
    assert!(judged.all_allowed(), "{}", verdict_lines(&judged));
    expect_test::expect![[r#"
        wipe-sdx1 [destructive] wipefs --all -- /dev/sdx1 (confirm: WD-XYZ123)
        wipe-sdx [destructive] wipefs --all -- /dev/sdx (confirm: WD-XYZ123)
        warning: partition /dev/sdx1: the ext4 signature 'photos' (3.6 TiB) is destroyed
        warning: /dev/sdx (3.6 TiB, WDC WD40EFRX, WD-XYZ123): the partition table (1 partition) of type gpt and any other signature is destroyed; the data on it cannot be recovered
    "#]].assert_eq(&plan_lines(&plan));

    // A pool is never built on it, by disk or by partition, and nothing passes a force flag.
    let pool = load(BTRFS_POOL);
    for device in ["/dev/sdx", "sdx1"] {
        let input = format!(
            r#"{{"devices": ["/dev/sdb", "{device}"], "label": "tank", "mountpoint": "/srv/tank"}}"#
        );
        let refusal = pool.plan(&facts, &input).unwrap().answer.unwrap_err();
        assert!(refusal.to_string().contains("disk-wipe"), "{refusal}");
    }
    let refusal = pool
        .plan(
            &facts,
            r#"{"devices": ["/dev/sdx"], "label": "tank", "mountpoint": "/srv/tank", "force": true}"#,
        )
        .unwrap()
        .answer
        .unwrap_err();
    assert!(matches!(refusal, Refusal::InvalidInput(_)), "{refusal}");

    // A blank disk has nothing to wipe; a device in use is refused with why.
    for (device, needle) in [("sdb", "is blank"), ("sda1", "is in use")] {
        let input = format!(r#"{{"device": "{device}"}}"#);
        let refusal = plugin.plan(&facts, &input).unwrap().answer.unwrap_err();
        assert!(refusal.to_string().contains(needle), "{device}: {refusal}");
    }
}

#[test]
fn btrfs_maintenance() {
    let plugin = load(BTRFS_MAINTENANCE);
    let plan = plugin
        .plan(
            &facts(),
            r#"{"action": "balance-start", "pool": "pool", "usage_percent": 30}"#,
        )
        .unwrap()
        .answer
        .unwrap();
    expect_test::expect![[r#"
        balance [state] btrfs balance start -dusage=30 -musage=30 /srv/pool
    "#]]
    .assert_eq(&plan_lines(&plan));
    for input in [
        r#"{"action": "repair-profiles", "pool": "/srv/pool"}"#,
        r#"{"action": "scrub-start", "pool": "/srv/pool"}"#,
        r#"{"action": "scrub-status", "pool": "/srv/pool"}"#,
        r#"{"action": "scrub-cancel", "pool": "/srv/pool"}"#,
        r#"{"action": "scrub-resume", "pool": "/srv/pool"}"#,
    ] {
        plan_all_allowed(&plugin, input);
    }
}

/// The wipe plan for a disk that holds data (`sdx`) passes the host's device check (the only
/// destructive rule that may touch it); for the disk under `/` the planner refuses, and a
/// pool plan on the disk that holds data is rejected by the host, whatever the planner said.
#[test]
fn disk_wipe() {
    let plugin = load(DISK_WIPE);
    let facts = facts_with_a_used_disk();
    let plan = plugin
        .plan(&facts, r#"{"device": "/dev/sdx"}"#)
        .unwrap()
        .answer
        .unwrap();
    let judged = checked(&plugin, plan);
    assert!(judged.all_allowed(), "{}", verdict_lines(&judged));
    let refusal = plugin
        .plan(&facts, r#"{"device": "sda"}"#)
        .unwrap()
        .answer
        .unwrap_err();
    expect_test::expect!["refused: /dev/sda is in use: sda1 is mounted at /; partition sda1: ext4, 238 GiB; nothing on it is wiped"]
        .assert_eq(&refusal.to_string());
    let pool = load(BTRFS_POOL);
    let mut plan = pool
        .plan(
            &facts,
            r#"{"devices": ["/dev/sdb"], "label": "x", "mountpoint": "/srv/x"}"#,
        )
        .unwrap()
        .answer
        .unwrap();
    // A planner that ignored what the facts say: the host still refuses.
    for step in &mut plan.steps {
        if let nos_host::plan::types::Request::Argv(argv) = &mut step.request {
            for token in argv.iter_mut().filter(|token| *token == "/dev/sdb") {
                *token = "/dev/sdx".into();
            }
        }
    }
    let judged = check::check(plan, &ALLOWLIST, &pool.manifest().scope, &facts);
    assert!(
        verdict_lines(&judged).contains("device holds data: /dev/sdx"),
        "{}",
        verdict_lines(&judged)
    );
}

#[test]
fn auth_default() {
    use nos_host::plugin::policy::{
        LoginAttempt, LoginDecision, PasswordFeatures, PasswordVerdict,
    };
    let plugin = load_policy(AUTH_DEFAULT);
    assert_eq!(plugin.describe().unwrap().name, "auth-default");
    let attempt = LoginAttempt {
        username_known: true,
        client_ip: "192.0.2.7".into(),
        trusted_device: false,
        recent_user_failures: 6,
        recent_ip_failures: 0,
        seconds_since_last_failure: Some(15),
        totp_enrolled: true,
        now_unix_seconds: 1_800_000_000,
    };
    assert_eq!(
        plugin.decide_login(&attempt).unwrap(),
        LoginDecision::LockOut { seconds: 45 }
    );
    let trusted = LoginAttempt {
        trusted_device: true,
        ..attempt
    };
    assert_eq!(
        plugin.decide_login(&trusted).unwrap(),
        LoginDecision::RequireSecondFactor
    );
    let weak = PasswordFeatures {
        length_chars: 8,
        in_common_list: false,
        contains_username: false,
    };
    assert_eq!(
        plugin.check_password(&weak).unwrap(),
        PasswordVerdict::Reject("use at least 12 characters".into())
    );
}

/// The auth-default component behind nosd's `AuthPolicy` trait: its verdicts come through, the
/// built-in floor still applies, and a plugin that fails leaves the built-in verdict alone.
#[test]
fn auth_default_as_nosds_auth_policy() {
    use std::sync::Arc;

    use nos_host::auth::plugin_policy::PluginPolicy;
    use nos_host::auth::policy::{self, AttemptFacts, AuthPolicy, Decision};

    let facts = AttemptFacts {
        username_known: true,
        client_ip: "192.0.2.7".parse().unwrap(),
        trusted_device: false,
        user_failures: 6,
        ip_failures: 0,
        device_failures: 0,
        user_locked_for: 0,
        ip_locked_for: 0,
        device_locked_for: 0,
        breaker_wait: 0,
        seconds_since_last_failure: Some(15),
        totp_enrolled: true,
        now: 1_800_000_000,
    };
    let plugin = PluginPolicy::new(Arc::new(load_policy(AUTH_DEFAULT)));
    assert_eq!(
        plugin.decide(&facts).unwrap(),
        Decision::LockOut { seconds: 45 }
    );
    // Stricter than the built-in policy, which sees no lock in the counters: the plugin wins.
    assert_eq!(policy::decide(None, &facts), Decision::RequireSecondFactor);
    assert_eq!(
        policy::decide(Some(&plugin), &facts),
        Decision::LockOut { seconds: 45 }
    );
    // A trusted device is judged by its own counter, so the owner is not locked out.
    let trusted = AttemptFacts {
        trusted_device: true,
        ..facts.clone()
    };
    assert_eq!(
        policy::decide(Some(&plugin), &trusted),
        Decision::RequireSecondFactor
    );
    // A lock in the counters stands even if the plugin says proceed.
    let locked = AttemptFacts {
        user_failures: 0,
        seconds_since_last_failure: None,
        user_locked_for: 60,
        ..facts.clone()
    };
    assert_eq!(
        policy::decide(Some(&plugin), &locked),
        Decision::LockOut { seconds: 60 }
    );
    // A plugin that cannot answer (here: one that runs out of fuel) fails closed to the
    // built-in verdict.
    let broken = PluginPolicy::new(Arc::new(load_policy(HOSTILE_AUTH_POLICY)));
    assert!(broken.decide(&facts).is_err());
    assert_eq!(
        policy::decide(Some(&broken), &locked),
        Decision::LockOut { seconds: 60 }
    );
    assert_eq!(
        policy::decide(Some(&broken), &facts),
        policy::decide(None, &facts)
    );
}

/// A hostile auth policy: its login decision loops until fuel runs out, its password check
/// traps; each call ends in a typed error, the built-in verdict stands, the host serves on.
#[test]
fn hostile_auth_policy() {
    use std::sync::Arc;

    use nos_host::auth::plugin_policy::PluginPolicy;
    use nos_host::auth::policy::{self, AttemptFacts, AuthPolicy, Decision, PasswordFeatures};

    let hostile = PluginPolicy::load(&HOST, Path::new(HOSTILE_AUTH_POLICY)).unwrap();
    let facts = AttemptFacts {
        username_known: true,
        client_ip: "192.0.2.7".parse().unwrap(),
        trusted_device: false,
        user_failures: 0,
        ip_failures: 0,
        device_failures: 0,
        user_locked_for: 0,
        ip_locked_for: 30,
        device_locked_for: 0,
        breaker_wait: 0,
        seconds_since_last_failure: Some(1),
        totp_enrolled: false,
        now: 1_800_000_000,
    };
    let started = Instant::now();
    let err = hostile.decide(&facts).unwrap_err();
    assert!(started.elapsed() < HOSTILE_BOUND);
    assert!(err.to_string().contains("ran out of fuel"), "{err}");
    // Fail safe: the built-in verdict, never a looser one.
    assert_eq!(
        policy::decide(Some(&hostile), &facts),
        Decision::LockOut { seconds: 30 }
    );
    let open = AttemptFacts {
        ip_locked_for: 0,
        ..facts
    };
    assert_eq!(policy::decide(Some(&hostile), &open), Decision::Proceed);
    let features = PasswordFeatures {
        length_chars: 20,
        in_common_list: false,
        contains_username: false,
    };
    let err = hostile.check_password(&features).unwrap_err();
    assert!(err.to_string().contains("trapped"), "{err}");
    // The same host still runs a good policy afterwards.
    let good = PluginPolicy::new(Arc::new(load_policy(AUTH_DEFAULT)));
    assert_eq!(good.check_password(&features).unwrap(), None);
}

/// `[auth] policy_plugin` is loaded like a planner: a planner, a wrong hash or a missing
/// directory is refused with a message naming the key and the path.
#[test]
fn policy_plugin_loading_refuses_anything_but_a_verified_auth_policy() {
    use nos_host::auth::plugin_policy::from_config;
    use nos_host::config::AuthConfig;

    let load = |path: &str| {
        from_config(
            Some(&HOST),
            &AuthConfig {
                policy_plugin: Some(PathBuf::from(path)),
            },
        )
        .map(|policy| policy.map(|policy| policy.describe().0))
        .map_err(|err| err.to_string())
    };
    assert_eq!(load(AUTH_DEFAULT), Ok(Some("auth-default".to_string())));
    let planner = load(BTRFS_POOL).unwrap_err();
    assert!(
        planner.starts_with("[auth] policy_plugin ")
            && planner.ends_with("plugin btrfs-pool is a planner plugin, not a auth-policy"),
        "{planner}"
    );
    let bad_hash = load(HOSTILE_BAD_HASH).unwrap_err();
    assert!(bad_hash.contains("component sha256 is"), "{bad_hash}");
    let missing = load("/nonexistent/policy").unwrap_err();
    assert!(
        missing.contains("cannot read /nonexistent/policy"),
        "{missing}"
    );
    assert!(
        from_config(None, &AuthConfig::default()).unwrap().is_none(),
        "unset: built-in only"
    );
}

/// The fixture facts with subvolumes in its mounted pool: share `media` with two snapshots, the
/// older one locked. They reach the component through the 0.3.0 lowering, locks included.
fn facts_with_shares() -> Facts {
    use nos_host::facts::{Subvolume, SubvolumeKind};
    let mut facts = facts();
    let subvolume = |id: u64, path: &str, kind, locked| Subvolume {
        id,
        path: path.into(),
        kind,
        share: (kind != SubvolumeKind::SnapshotDir).then(|| "media".into()),
        uuid: format!("00000000-0000-4000-8000-{id:012}"),
        parent_uuid: None,
        locked,
    };
    facts.filesystems[0].subvolumes = Some(vec![
        subvolume(256, "media", SubvolumeKind::Share, false),
        subvolume(257, ".snapshots", SubvolumeKind::SnapshotDir, false),
        subvolume(258, ".snapshots/media", SubvolumeKind::SnapshotDir, false),
        subvolume(
            259,
            ".snapshots/media/20261130T190000Z-nos1",
            SubvolumeKind::Snapshot,
            true,
        ),
        subvolume(
            260,
            ".snapshots/media/20261201T190000Z-nos1",
            SubvolumeKind::Snapshot,
            false,
        ),
    ]);
    facts.now_unix_seconds = 1_796_238_000; // 2026-12-02T19:00:00Z
    facts
}

fn judged_with_shares(plugin: &Planner, input: &str) -> String {
    let facts = facts_with_shares();
    let plan = plugin.plan(&facts, input).unwrap().answer.unwrap();
    let judged = check::check(plan, &ALLOWLIST, &plugin.manifest().scope, &facts);
    assert!(judged.all_allowed(), "{input}\n{}", verdict_lines(&judged));
    verdict_lines(&judged)
}

#[test]
fn shares() {
    let plugin = load(SHARES);
    let out = [
        judged_with_shares(
            &plugin,
            r#"{"action": "create", "pool": "/srv/pool", "name": "docs"}"#,
        ),
        judged_with_shares(
            &plugin,
            r#"{"action": "delete", "pool": "/srv/pool", "name": "media"}"#,
        ),
    ]
    .concat();
    expect_test::expect![[r#"
        create: allowed by btrfs.subvolume.create.share: /usr/bin/btrfs subvolume create -- /srv/pool/docs
        delete: allowed by btrfs.subvolume.delete.share: /usr/bin/btrfs subvolume delete -- /srv/pool/media
    "#]]
    .assert_eq(&out);
}

#[test]
fn snapshots() {
    let plugin = load(SNAPSHOTS);
    let out = [
        judged_with_shares(
            &plugin,
            r#"{"action": "take", "pool": "/srv/pool", "share": "media", "tag": "nos1", "keep": {"hourly": 1}}"#,
        ),
        judged_with_shares(
            &plugin,
            r#"{"action": "replace-live", "pool": "/srv/pool", "share": "media", "name": "20261201T190000Z-nos1"}"#,
        ),
    ]
    .concat();
    expect_test::expect![[r#"
        snapshot: allowed by btrfs.subvolume.snapshot: /usr/bin/btrfs subvolume snapshot -r -- /srv/pool/media /srv/pool/.snapshots/media/20261202T190000Z-nos1
        prune-0: allowed by btrfs.subvolume.delete.snapshot: /usr/bin/btrfs subvolume delete -- /srv/pool/.snapshots/media/20261201T190000Z-nos1
        snapshot: allowed by btrfs.subvolume.snapshot: /usr/bin/btrfs subvolume snapshot -r -- /srv/pool/media /srv/pool/.snapshots/media/20261202T190000Z-replaced
        delete-live: allowed by btrfs.subvolume.delete.share: /usr/bin/btrfs subvolume delete -- /srv/pool/media
        restore: allowed by btrfs.subvolume.restore: /usr/bin/btrfs subvolume snapshot -- /srv/pool/.snapshots/media/20261201T190000Z-nos1 /srv/pool/media
    "#]]
    .assert_eq(&out);
    let locked = plugin
        .plan(
            &facts_with_shares(),
            r#"{"action": "delete", "pool": "/srv/pool", "share": "media", "name": "20261130T190000Z-nos1"}"#,
        )
        .unwrap()
        .answer
        .unwrap_err();
    assert!(locked.to_string().contains("is locked"), "{locked}");
}
