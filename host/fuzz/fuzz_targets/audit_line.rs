//! One line of nosd's hash-chained audit log (read back on start and by `nosctl audit verify`):
//! never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = nos_host::audit::chain::parse_line(data);
});
