//! The TOML loader on arbitrary text: it must return diagnostics, never panic or hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nos_allowlist::{Allowlist, Source};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data).into_owned();
    if let Ok(allowlist) = Allowlist::load(&[Source { name: "fuzz.toml".into(), text }]) {
        let _ = allowlist.check(&["btrfs".into(), "device".into(), "add".into(), "/dev/sdb".into(), "/srv/pool".into()]);
    }
});
