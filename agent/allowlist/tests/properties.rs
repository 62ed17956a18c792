//! Property tests of the matcher and loader over generated argvs and texts.
//!
//! Argvs are generated from the default allowlist's own rules with values that are mostly
//! valid and sometimes subtly not, so both verdicts are exercised. Properties:
//! * matching the rendered canonical argv gives back the same rule and the same values;
//! * every accepted argv satisfies the static invariants (no `.`/`..`/empty components, mount
//!   paths strictly under a root, printable ASCII, counts in bounds, no value starting with `-`);
//! * no generated argv matches two rules (load found no overlap);
//! * nothing panics: arbitrary argvs and arbitrary or mutated allowlist texts.

use nos_allowlist::grammar::{Arity, FlagValue, Item, Kind, Rule, TypeId};
use nos_allowlist::{Allowlist, MAX_ARGV_TOKENS, Reason, Source, Value, Verdict};
use proptest::prelude::*;
use proptest::string::string_regex;

fn default_text() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../allowlist.toml"))
        .expect("read allowlist.toml")
}

fn default_allowlist() -> Allowlist {
    Allowlist::load(&[Source {
        name: "allowlist.toml".into(),
        text: default_text(),
    }])
    .expect("default allowlist loads")
}

fn regex(pattern: &str) -> BoxedStrategy<String> {
    string_regex(pattern).expect("valid regex").boxed()
}

/// Tokens for a type: mostly of its shape, sometimes just outside it.
fn value_strategy(allowlist: &Allowlist, ty: TypeId) -> BoxedStrategy<String> {
    match &allowlist.type_of(ty).kind {
        Kind::Device(_) => prop_oneof![
            4 => regex("/dev/(sd|vd|xvd|hd|nvme|mmcblk|loop)[a-z0-9]{1,5}"),
            2 => regex("/dev/disk/by-(id|uuid|partuuid|label|path)/[A-Za-z0-9._@:+-]{1,30}"),
            1 => regex("/dev/mapper/[A-Za-z0-9_.-]{1,20}"),
            1 => regex("/dev/[a-z./]{0,12}"),
            1 => regex("-[a-z-]{1,8}"),
        ]
        .boxed(),
        Kind::MountPath(_) => prop_oneof![
            5 => regex("/(srv|mnt)(/[A-Za-z0-9._@:+-]{1,8}){1,4}"),
            1 => regex("/(srv|mnt|etc|srvx|)(/[A-Za-z0-9.]{0,3}){0,6}/?"),
        ]
        .boxed(),
        Kind::Subvolume(_) => prop_oneof![
            3 => regex("/(srv|mnt)(/[A-Za-z0-9._-]{1,6}){1,4}"),
            3 => regex("/(srv|mnt)(/[a-z]{1,4}){1,4}/\\.snapshots(/[a-z]{1,4})?/[0-9]{8}T[0-9]{6}Z(-[a-z0-9]{1,3})?"),
            1 => regex("/(srv|mnt)/[a-z]{1,3}/(\\.snapshots|\\.|\\.\\.)(/[A-Za-z0-9.]{0,4}){0,3}/?"),
        ]
        .boxed(),
        Kind::KeyFile(_) => regex("/etc/nos/(keys|key)/[A-Za-z0-9._-]{0,10}(\\.key)?"),
        Kind::Label(_) => regex("[A-Za-z0-9._ /-]{0,12}"),
        Kind::MapperName(_) => regex("[A-Za-z0-9_.-]{0,12}"),
        Kind::Enum(values) => {
            let mut words = values.clone();
            words.extend(["raid5".to_owned(), "RAID1".to_owned()]);
            proptest::sample::select(words).boxed()
        }
        Kind::Int { .. } | Kind::Devid { .. } => regex("(0|[1-9][0-9]{0,5}|-1|01|\\+2)"),
        Kind::Uuid => regex("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-fA-F]{4}-[0-9a-f]{12}"),
        Kind::MountOptions(_) => {
            let words = [
                "noatime",
                "ssd",
                "compress=zstd:3",
                "compress=zstd:16",
                "discard=async",
                "subvol=home",
                "nosuid",
                "nodev",
                "suid",
                "bind",
                "",
                "degraded",
            ];
            proptest::collection::vec(proptest::sample::select(words.to_vec()), 1..5)
                .prop_map(|items| items.join(","))
                .boxed()
        }
    }
}

/// Argvs shaped like `rule`, by name or absolute path, flags in any order, counts near bounds.
fn argv_strategy(allowlist: &Allowlist, rule: &Rule) -> BoxedStrategy<Vec<String>> {
    let binary = allowlist.binary_of(rule);
    let program = proptest::sample::select(vec![binary.name.clone(), binary.path.clone()])
        .prop_map(|program| vec![program])
        .boxed();
    let mut parts: Vec<BoxedStrategy<Vec<String>>> = vec![program];
    for item in &rule.template {
        parts.push(match item {
            Item::Literal(literal) => Just(vec![literal.clone()]).boxed(),
            Item::EndOfOptions => proptest::option::of(Just("--".to_owned()))
                .prop_map(|token| token.into_iter().collect())
                .boxed(),
            Item::Implied(implied) => proptest::option::of(Just(implied.clone()))
                .prop_map(|token| token.into_iter().collect())
                .boxed(),
            Item::Flags => {
                let flags: Vec<BoxedStrategy<Vec<String>>> = rule
                    .flags
                    .iter()
                    .map(|flag| match flag.value {
                        FlagValue::None => Just(vec![flag.token.clone()]).boxed(),
                        FlagValue::Joined(ty) => {
                            let token = flag.token.clone();
                            value_strategy(allowlist, ty)
                                .prop_map(move |value| vec![format!("{token}{value}")])
                                .boxed()
                        }
                        FlagValue::Separate(ty) => {
                            let token = flag.token.clone();
                            value_strategy(allowlist, ty)
                                .prop_map(move |value| vec![token.clone(), value])
                                .boxed()
                        }
                    })
                    .collect();
                proptest::collection::vec(
                    proptest::sample::select((0..flags.len()).collect::<Vec<_>>()),
                    0..=flags.len(),
                )
                .prop_flat_map(move |chosen| {
                    chosen
                        .into_iter()
                        .map(|idx| flags[idx].clone())
                        .collect::<Vec<_>>()
                })
                .prop_map(|tokens| tokens.concat())
                .boxed()
            }
            Item::Param(param_idx) => {
                let param = &rule.params[*param_idx];
                let values = value_strategy(allowlist, param.ty);
                match param.arity {
                    Arity::One => values.prop_map(|value| vec![value]).boxed(),
                    Arity::Many { max, .. } => {
                        proptest::collection::vec(values, 0..=max + 1).boxed()
                    }
                }
            }
        });
    }
    parts.prop_map(|parts| parts.concat()).boxed()
}

fn any_rule_argv() -> impl Strategy<Value = Vec<String>> {
    let allowlist = default_allowlist();
    let strategies: Vec<BoxedStrategy<Vec<String>>> = allowlist
        .rules()
        .iter()
        .map(|rule| argv_strategy(&allowlist, rule))
        .collect();
    proptest::sample::select((0..strategies.len()).collect::<Vec<_>>())
        .prop_flat_map(move |idx| strategies[idx].clone())
}

/// The static invariants every allowed argv satisfies.
fn assert_invariants(allowlist: &Allowlist, argv: &[String], values: &[Vec<Value>]) {
    assert!(argv.len() <= MAX_ARGV_TOKENS);
    for token in argv {
        assert!(
            token.chars().all(|ch| ch.is_ascii_graphic()),
            "non-printable in {token:?}"
        );
    }
    for value in values.iter().flatten() {
        let text = value.render();
        assert!(!text.starts_with('-'), "value {text:?} starts with '-'");
        if let Value::Device(path) | Value::MountPath(path) | Value::KeyFile(path) = value {
            let components: Vec<&str> = path.split('/').skip(1).collect();
            assert!(
                path.starts_with('/')
                    && components
                        .iter()
                        .all(|c| !c.is_empty() && *c != "." && *c != ".."),
                "bad path {path}"
            );
        }
        if let Value::MountPath(path) = value {
            assert!(
                allowlist
                    .settings()
                    .mount_roots
                    .iter()
                    .any(|root| path.starts_with(&format!("{root}/"))),
                "{path} is not strictly below a mount root"
            );
        }
        if let Value::MountOptions(items) = value {
            for forced in &allowlist.settings().forced_mount_options {
                assert!(items.contains(forced), "{items:?} lacks {forced}");
            }
            assert!(
                !items
                    .iter()
                    .any(|item| item == "suid" || item == "dev" || item == "bind")
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

    #[test]
    fn accepted_argvs_round_trip_and_keep_the_invariants(argv in any_rule_argv()) {
        let allowlist = default_allowlist();
        match allowlist.check(&argv) {
            Verdict::Allowed(matched) => {
                assert_invariants(&allowlist, &matched.canonical_argv(), matched.param_values());
                let flag_values: Vec<Vec<Value>> = matched.flag_values().iter().map(|occurrences| occurrences.iter().flatten().cloned().collect()).collect();
                assert_invariants(&allowlist, &argv, &flag_values);
                let Verdict::Allowed(again) = allowlist.check(&matched.canonical_argv()) else {
                    panic!("canonical argv {:?} of {argv:?} is rejected", matched.canonical_argv());
                };
                prop_assert_eq!(again.rule_id(), matched.rule_id());
                prop_assert_eq!(again.param_values(), matched.param_values());
                prop_assert_eq!(again.flag_values(), matched.flag_values());
                prop_assert_eq!(again.canonical_argv(), matched.canonical_argv());
                let command = matched.command();
                prop_assert_eq!(command.arg_sources.len(), command.args.len());
                for (arg, source) in command.args.iter().zip(&command.arg_sources) {
                    if let Some(token_idx) = source {
                        prop_assert!((1..argv.len()).contains(token_idx), "{arg} traced to token {token_idx} of {argv:?}");
                        // A rendered argument is its source token, or the canonical form of it
                        // (forced mount options appended; a joined flag is one token either way).
                        prop_assert!(arg == &argv[*token_idx] || arg.starts_with(&argv[*token_idx]), "{arg} vs {}", argv[*token_idx]);
                    }
                }
            }
            Verdict::Rejected(rejection) => {
                prop_assert!(!matches!(rejection.reason, Reason::Ambiguous { .. }), "{argv:?} matches several rules");
                prop_assert!(rejection.token_idx.is_none_or(|idx| idx <= argv.len()), "token index out of range");
            }
        }
    }

    #[test]
    fn arbitrary_argvs_never_panic(argv in proptest::collection::vec(any::<String>(), 0..70)) {
        let allowlist = default_allowlist();
        if let Verdict::Allowed(matched) = allowlist.check(&argv) {
            assert_invariants(&allowlist, &matched.canonical_argv(), matched.param_values());
        }
    }

    #[test]
    fn arbitrary_texts_never_panic_the_loader(text in any::<String>()) {
        let _ = Allowlist::load(&[Source { name: "fuzz.toml".into(), text }]);
    }

    #[test]
    fn mutated_allowlists_never_panic_the_loader(edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let mut bytes = default_text().into_bytes();
        for (at, byte) in edits {
            let idx = at.index(bytes.len());
            bytes[idx] = byte;
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if let Ok(allowlist) = Allowlist::load(&[Source { name: "mutated.toml".into(), text }]) {
            // Whatever loaded still checks without panicking.
            let _ = allowlist.check(&["btrfs".into(), "device".into(), "add".into(), "/dev/sdb".into(), "/srv/pool".into()]);
        }
    }
}

/// The generator is only useful if it reaches every rule with accepted argvs and also produces
/// rejections; otherwise the properties above would hold vacuously.
#[test]
fn generator_reaches_every_rule() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let allowlist = default_allowlist();
    let strategy = any_rule_argv();
    let mut runner = TestRunner::deterministic();
    let mut allowed_rules = std::collections::BTreeSet::new();
    let (mut n_allowed, mut n_rejected) = (0, 0);
    // Deterministic; stops once every rule was accepted and both outcomes were seen (adding a
    // rule reshuffles the sequence, so a fixed count would be brittle).
    for _ in 0..100_000 {
        if n_allowed > 1000 && n_rejected > 1000 && allowed_rules.len() == allowlist.rules().len() {
            break;
        }
        let argv = strategy.new_tree(&mut runner).expect("generate").current();
        match allowlist.check(&argv) {
            Verdict::Allowed(matched) => {
                n_allowed += 1;
                allowed_rules.insert(matched.rule_id().to_owned());
            }
            Verdict::Rejected(_) => n_rejected += 1,
        }
    }
    let missing: Vec<&str> = allowlist
        .rules()
        .iter()
        .map(|rule| rule.id.as_str())
        .filter(|id| !allowed_rules.contains(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "no accepted argv generated for {missing:?}"
    );
    assert!(
        n_allowed > 1000 && n_rejected > 1000,
        "allowed {n_allowed}, rejected {n_rejected}"
    );
}
