//! TOTP (RFC 6238: SHA-1, 6 digits, 30 s, ±1 step) with replay prevention.
//!
//! [`accept`] returns the matched time step only if it is newer than the last step used; the
//! caller must persist that step before issuing a session. This module never reads the clock
//! and never stores anything.

use totp_rs::{Algorithm, Secret, TOTP};

use crate::clock::UnixSeconds;

/// Seconds per step.
pub const STEP_SECONDS: u64 = 30;
/// Steps accepted either side of now.
pub const SKEW_STEPS: u64 = 1;
/// Secret length in bytes (160 bits, RFC 4226's recommendation).
pub const SECRET_LEN: usize = 20;
/// Issuer shown by authenticator apps.
pub const ISSUER: &str = "nos";

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TotpRejection {
    #[error("code is not 6 digits")]
    Malformed,
    #[error("code does not match")]
    Mismatch,
    #[error("code was already used")]
    Replayed,
}

/// Draws a fresh secret from the OS CSPRNG.
pub fn generate_secret() -> Result<Vec<u8>, getrandom::Error> {
    let mut secret = vec![0u8; SECRET_LEN];
    getrandom::fill(&mut secret)?;
    Ok(secret)
}

/// Base32 (RFC 4648, no padding), as authenticator apps expect.
pub fn encode_secret(secret: &[u8]) -> String {
    match Secret::Raw(secret.to_vec()).to_encoded() {
        Secret::Encoded(text) => text,
        Secret::Raw(_) => String::new(),
    }
}

pub fn decode_secret(text: &str) -> Option<Vec<u8>> {
    Secret::Encoded(text.to_string()).to_bytes().ok()
}

/// The `otpauth://` URI for enrolment.
pub fn otpauth_uri(secret: &[u8], account: &str) -> String {
    format!(
        "otpauth://totp/{ISSUER}:{account}?secret={}&issuer={ISSUER}&algorithm=SHA1&digits=6&period={STEP_SECONDS}",
        encode_secret(secret)
    )
}

/// The URI as a QR code in SVG.
pub fn qr_svg(uri: &str) -> String {
    match qrcode::QrCode::new(uri.as_bytes()) {
        Ok(code) => code
            .render::<qrcode::render::svg::Color>()
            .min_dimensions(200, 200)
            .build(),
        Err(_) => String::new(),
    }
}

fn totp(secret: &[u8]) -> Option<TOTP> {
    TOTP::new(Algorithm::SHA1, 6, 1, STEP_SECONDS, secret.to_vec()).ok()
}

/// The code for the step containing `at` (used by tests and enrolment checks).
pub fn code_at(secret: &[u8], at: UnixSeconds) -> String {
    totp(secret)
        .map(|totp| totp.generate(at))
        .unwrap_or_default()
}

/// The step a code matches within ±[`SKEW_STEPS`] of `now`.
pub fn matched_step(secret: &[u8], code: &str, now: UnixSeconds) -> Result<u64, TotpRejection> {
    if code.len() != 6 || !code.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(TotpRejection::Malformed);
    }
    let totp = totp(secret).ok_or(TotpRejection::Mismatch)?;
    let current = now / STEP_SECONDS;
    let mut found = None;
    for step in current.saturating_sub(SKEW_STEPS)..=current + SKEW_STEPS {
        let expected = totp.generate(step * STEP_SECONDS);
        let equal: bool =
            subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), code.as_bytes()).into();
        if equal && found.is_none() {
            found = Some(step);
        }
    }
    found.ok_or(TotpRejection::Mismatch)
}

/// Accepts a code only for a step newer than `last_used_step`; returns the new last step.
pub fn accept(
    secret: &[u8],
    code: &str,
    now: UnixSeconds,
    last_used_step: Option<u64>,
) -> Result<u64, TotpRejection> {
    let step = matched_step(secret, code, now)?;
    if last_used_step.is_some_and(|last| step <= last) {
        return Err(TotpRejection::Replayed);
    }
    Ok(step)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc6238_vector() {
        // RFC 6238 appendix B, SHA-1, T = 59 → 94287082 (8 digits); 6 digits → 287082.
        assert_eq!(code_at(SECRET, 59), "287082");
    }

    #[test]
    fn window_is_plus_minus_one_step_with_a_virtual_clock() {
        let now: u64 = 1_700_000_010;
        let offsets: [i64; 7] = [-90, -60, -30, 0, 30, 60, 90];
        let accepted: Vec<bool> = offsets
            .iter()
            .map(|offset| {
                let code = code_at(SECRET, now.saturating_add_signed(*offset));
                accept(SECRET, &code, now, None).is_ok()
            })
            .collect();
        assert_eq!(accepted, [false, false, true, true, true, false, false]);
    }

    #[test]
    fn replay_and_older_steps_are_refused() {
        let now = 1_700_000_010;
        let code_next = code_at(SECRET, now + 30);
        let step = accept(SECRET, &code_next, now, None).unwrap();
        assert_eq!(
            accept(SECRET, &code_next, now, Some(step)),
            Err(TotpRejection::Replayed)
        );
        let code_now = code_at(SECRET, now);
        assert_eq!(
            accept(SECRET, &code_now, now, Some(step)),
            Err(TotpRejection::Replayed)
        );
        assert_eq!(
            accept(SECRET, "12345", now, None),
            Err(TotpRejection::Malformed)
        );
        assert_eq!(
            accept(SECRET, "12345a", now, None),
            Err(TotpRejection::Malformed)
        );
    }

    #[test]
    fn uri_and_secret_roundtrip() {
        let uri = otpauth_uri(SECRET, "admin");
        assert_eq!(
            uri,
            "otpauth://totp/nos:admin?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=nos&algorithm=SHA1&digits=6&period=30"
        );
        assert_eq!(decode_secret(&encode_secret(SECRET)).unwrap(), SECRET);
        assert!(qr_svg(&uri).starts_with("<?xml"));
    }
}
