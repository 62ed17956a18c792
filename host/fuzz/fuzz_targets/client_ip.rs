//! Client-address resolution from `X-Forwarded-For`, RFC 7239 `Forwarded` and `X-Real-IP`, as
//! sent by anyone: never a panic, and an untrusted peer is always itself.
#![no_main]

use std::net::IpAddr;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use nos_host::http::client_ip::resolve;
use nos_host::net::{Cidr, ForwardingHeader};

const NAMES: [&str; 3] = ["x-forwarded-for", "forwarded", "x-real-ip"];

fuzz_target!(|data: &[u8]| {
    // NUL separates header values; value i goes to header NAMES[i % 3] (repeats allowed).
    let mut headers = HeaderMap::new();
    for (value_idx, value) in data.split(|byte| *byte == 0).enumerate() {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.append(
                HeaderName::from_static(NAMES[value_idx % NAMES.len()]),
                value,
            );
        }
    }
    let trust: Vec<Cidr> = ["127.0.0.0/8", "10.0.0.0/8", "::1"]
        .iter()
        .filter_map(|cidr| Cidr::try_from((*cidr).to_string()).ok())
        .collect();
    let proxy: IpAddr = [127, 0, 0, 1].into();
    let stranger: IpAddr = [192, 0, 2, 7].into();
    for header in [ForwardingHeader::XForwardedFor, ForwardingHeader::Forwarded] {
        let _ = resolve(proxy, &headers, &trust, header);
        if let Ok(ip) = resolve(stranger, &headers, &trust, header) {
            assert_eq!(ip, stranger, "an untrusted peer's header was believed");
        }
    }
});
