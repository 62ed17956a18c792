//! The matcher on arbitrary argvs against the default allowlist: never a panic, and whatever
//! it accepts re-checks to the same rule from its canonical argv.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use nos_allowlist::{Allowlist, Source, Verdict};

static ALLOWLIST: LazyLock<Allowlist> = LazyLock::new(|| {
    let text = include_str!("../../../../allowlist.toml").to_owned();
    Allowlist::load(&[Source { name: "allowlist.toml".into(), text }]).expect("default allowlist loads")
});

fuzz_target!(|data: &[u8]| {
    // NUL separates tokens, so the fuzzer can reach every byte inside a token but NUL.
    let argv: Vec<String> = String::from_utf8_lossy(data).split('\0').map(str::to_owned).collect();
    if let Verdict::Allowed(matched) = ALLOWLIST.check(&argv) {
        let Verdict::Allowed(again) = ALLOWLIST.check(&matched.canonical_argv()) else {
            panic!("canonical argv of {argv:?} is rejected");
        };
        assert_eq!(again.rule_id(), matched.rule_id());
        assert_eq!(again.param_values(), matched.param_values());
    }
});
