//! The mountinfo and swaps readers (the agent's in-use and umount checks, the host's facts) on
//! arbitrary text: never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nos_machine::proc_text::{parse_mountinfo, parse_swaps, root_source, unescape};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for mount in parse_mountinfo(&text) {
        assert!(!mount.mount_point.contains('\n'));
    }
    let _ = root_source(&text);
    let _ = parse_swaps(&text);
    let _ = unescape(&text);
});
