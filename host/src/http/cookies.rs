//! Cookie names, attributes and parsing.
//!
//! Every cookie is `__Host-` prefixed, `Secure`, `Path=/`, without `Domain`, and
//! `SameSite=Strict`; all but the CSRF cookie are `HttpOnly`. Only `__Host-` names are read, so a
//! cookie planted from a sibling host or port under another name is never consulted.
//! Browsers accept `Secure` and `__Host-` cookies from `http://localhost` and `http://127.0.0.1`
//! (both are potentially trustworthy origins), which is how plain-HTTP development works with
//! the production cookie names: no development switch exists. Verified with headless Chromium
//! 156 by `host/tests/manual/dev_cookies.sh` (kept on both loopback names, dropped on a
//! non-loopback HTTP name). Any other plain-HTTP origin (a LAN address) drops them: serve
//! TLS there, or put nosd behind a TLS-terminating proxy listed in `http.trust_proxy`.

use axum::http::HeaderMap;

pub const SESSION: &str = "__Host-nos_sid";
pub const REFRESH: &str = "__Host-nos_rt";
pub const CSRF: &str = "__Host-nos_csrf";
pub const DEVICE: &str = "__Host-nos_dev";

/// Trusted-device cookie lifetime (one year).
pub const DEVICE_MAX_AGE: u64 = 365 * 24 * 3600;

/// The first value of cookie `name` in the request.
pub fn read<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|line| line.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// A `Set-Cookie` value with the fixed attributes.
pub fn set(name: &str, value: &str, http_only: bool, max_age: Option<u64>) -> String {
    let mut cookie = format!("{name}={value}; Path=/; Secure; SameSite=Strict");
    if http_only {
        cookie.push_str("; HttpOnly");
    }
    if let Some(max_age) = max_age {
        cookie.push_str(&format!("; Max-Age={max_age}"));
    }
    cookie
}

/// A `Set-Cookie` value that deletes the cookie.
pub fn clear(name: &str, http_only: bool) -> String {
    set(name, "", http_only, Some(0))
}
