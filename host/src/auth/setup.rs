//! First-run setup: a one-time token, then the first admin with TOTP and recovery codes.
//!
//! While no account exists, [`ensure_setup_token`] draws a 128-bit token valid for
//! [`SETUP_TOKEN_SECONDS`], logs it and writes it 0600 to `<state dir>/setup-token`. Creating
//! the admin is decided under the users lock, so of two concurrent setups exactly one wins;
//! afterwards every setup call answers [`AuthError::SetupDone`] (HTTP 410) for good.

use subtle::ConstantTimeEq;

use super::service::AuthService;
use super::{AuthError, TotpState, User, password, recovery_codes, totp, valid_username};
use crate::audit::AuditKind;
use crate::session::token::Token;

/// Lifetime of a setup token.
pub const SETUP_TOKEN_SECONDS: u64 = 15 * 60;
/// File holding the setup token while setup is pending.
pub const SETUP_TOKEN_FILE: &str = "setup-token";

/// Draws a setup token if no account exists; returns it for the log.
pub async fn ensure_setup_token(auth: &AuthService) -> Result<Option<String>, AuthError> {
    if !auth.users.lock().await.users.is_empty() {
        auth.store().remove(SETUP_TOKEN_FILE)?;
        return Ok(None);
    }
    let mut random = [0u8; 16];
    getrandom::fill(&mut random)?;
    let token_text = hex::encode(random);
    let token_hash = token_hash(&token_text);
    let now = auth.now();
    auth.store()
        .write_secret(SETUP_TOKEN_FILE, format!("{token_text}\n").as_bytes())?;
    auth.with_setup(|setup| {
        setup.token_hash = Some(token_hash);
        setup.expires_at = now + SETUP_TOKEN_SECONDS;
        setup.pending_totp = None;
    });
    Ok(Some(token_text))
}

fn token_hash(token_text: &str) -> crate::session::token::TokenHash {
    let mut padded = [0u8; 32];
    let bytes = token_text.as_bytes();
    let n_bytes = bytes.len().min(32);
    padded[..n_bytes].copy_from_slice(&bytes[..n_bytes]);
    Token::from_bytes(padded).hash()
}

async fn check_token(auth: &AuthService, token_text: &str) -> Result<(), AuthError> {
    if !auth.users.lock().await.users.is_empty() {
        return Err(AuthError::SetupDone);
    }
    let now = auth.now();
    let presented = token_hash(token_text);
    let valid = auth.with_setup(|setup| {
        let matches = setup
            .token_hash
            .map(|expected| {
                bool::from(
                    String::from(expected)
                        .as_bytes()
                        .ct_eq(String::from(presented).as_bytes()),
                )
            })
            .unwrap_or(false);
        matches && token_text.len() == 32 && now < setup.expires_at
    });
    if valid {
        Ok(())
    } else {
        Err(AuthError::SetupRefused)
    }
}

/// What the admin's authenticator app needs.
pub struct TotpEnrolment {
    pub secret_base32: String,
    pub otpauth_uri: String,
    pub qr_svg: String,
}

pub fn enrolment(secret: &[u8], username: &str) -> TotpEnrolment {
    let uri = totp::otpauth_uri(secret, username);
    TotpEnrolment {
        secret_base32: totp::encode_secret(secret),
        qr_svg: totp::qr_svg(&uri),
        otpauth_uri: uri,
    }
}

/// Step 1: a fresh TOTP secret for the coming admin.
pub async fn begin(
    auth: &AuthService,
    token_text: &str,
    username: &str,
) -> Result<TotpEnrolment, AuthError> {
    check_token(auth, token_text).await?;
    if !valid_username(username) {
        return Err(AuthError::Invalid(
            "username must match [a-z][a-z0-9_-]{2,31}".into(),
        ));
    }
    let secret = totp::generate_secret()?;
    auth.with_setup(|setup| setup.pending_totp = Some(secret.clone()));
    Ok(enrolment(&secret, username))
}

/// Step 2: creates the admin; returns the recovery codes, shown once.
pub async fn complete(
    auth: &AuthService,
    token_text: &str,
    username: &str,
    new_password: &str,
    code: &str,
) -> Result<Vec<String>, AuthError> {
    check_token(auth, token_text).await?;
    if !valid_username(username) {
        return Err(AuthError::Invalid(
            "username must match [a-z][a-z0-9_-]{2,31}".into(),
        ));
    }
    let new_password = password::normalize(new_password);
    super::login::check_new_password(auth, username, &new_password)
        .await
        .map_err(|rejection| AuthError::Invalid(rejection.to_string()))?;
    let secret = auth
        .with_setup(|setup| setup.pending_totp.clone())
        .ok_or_else(|| AuthError::Invalid("call /api/v1/setup/totp first".into()))?;
    let now = auth.now();
    let step = totp::accept(&secret, code, now, None)
        .map_err(|_| AuthError::Invalid("totp code does not match".into()))?;
    let password_hash = auth.hasher.hash(&new_password).await?;
    let codes = recovery_codes::generate()?;
    let code_hashes = hash_codes(auth, &codes).await?;

    let mut users = auth.users.lock().await;
    if !users.users.is_empty() {
        return Err(AuthError::SetupDone);
    }
    users.users.insert(
        username.to_string(),
        User {
            password_hash,
            totp: Some(TotpState {
                secret: totp::encode_secret(&secret),
                last_used_step: Some(step),
            }),
            recovery_codes: code_hashes,
            created_at: now,
            password_changed_at: now,
            one_time_login: None,
            notices: Vec::new(),
        },
    );
    auth.persist_users(&users).await?;
    drop(users);
    auth.with_setup(|setup| {
        setup.token_hash = None;
        setup.pending_totp = None;
    });
    auth.store().remove(SETUP_TOKEN_FILE)?;
    auth.auditor.record(
        AuditKind::SetupCompleted,
        Some(username),
        None,
        "first admin created",
    );
    Ok(codes)
}

/// Hashes recovery codes in their canonical form.
pub async fn hash_codes(auth: &AuthService, codes: &[String]) -> Result<Vec<String>, AuthError> {
    let mut hashes = Vec::with_capacity(codes.len());
    for code in codes {
        let canonical = recovery_codes::canonical(code)
            .ok_or_else(|| AuthError::Internal("generated code does not parse".into()))?;
        hashes.push(auth.hasher.hash(&canonical).await?);
    }
    Ok(hashes)
}
