//! The JSON bodies of first-run setup and login, as anyone may send them: never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nos_host::http::api::{LoginRequest, SetupBeginRequest, SetupCompleteRequest};

fuzz_target!(|data: &[u8]| {
    let _ = serde_json::from_slice::<LoginRequest>(data);
    let _ = serde_json::from_slice::<SetupBeginRequest>(data);
    let _ = serde_json::from_slice::<SetupCompleteRequest>(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = nos_host::auth::username_key(text);
    }
});
