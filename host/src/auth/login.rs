//! The login flow: flood control → policy → password → second factor → counters → session.
//!
//! Order matters: everything that can refuse without a hash (flood control, lockouts) runs
//! first, so a spray is throttled before it costs argon2 time; every path that reaches the
//! password check hashes exactly once, against the user's hash or the dummy. One-time
//! consumptions (TOTP step, recovery code) are persisted before the session is created.
//!
//! A locked key answers 429 with Retry-After *before* hashing, for known and unknown usernames
//! alike (the same counters exist for both), so a lock reveals nothing and a spray costs no
//! argon2 time; every attempt that is not refused that way hashes exactly once. Each attempt is
//! counted as a failure before its hash runs and uncounted on success (or when the hasher is
//! busy), so concurrent requests cannot exceed a key's free failures. Login is one step:
//! username, password and — once TOTP is enrolled — a TOTP or recovery code, so no
//! intermediate answer tells whether the password was right.

use std::net::IpAddr;

use super::lockout::FailureCounter;
use super::policy::{self, AttemptFacts, Decision, PolicyError};
use super::service::{AuthService, RateKey};
use super::{AuthError, lockout, password, recovery_codes, totp, username_key};
use crate::audit::AuditKind;
use crate::net::client_key;
use crate::session::service::SessionService;
use crate::session::store::IssuedTokens;
use crate::session::token::{Token, TokenHash};

/// Trusted devices kept per user; the oldest is forgotten beyond it.
pub const MAX_DEVICES_PER_USER: usize = 20;

/// One login attempt as received (already size-bounded by HTTP).
pub struct LoginAttempt {
    pub username: String,
    pub password: String,
    pub code: Option<String>,
    pub client_ip: IpAddr,
    pub user_agent: String,
    /// The trusted-device cookie, if the browser sent one.
    pub device_token: Option<Token>,
}

/// A successful login.
#[derive(Debug)]
pub struct LoginSuccess {
    pub username: String,
    pub tokens: IssuedTokens,
    /// A new trusted-device token to set, when the browser had none for this user.
    pub new_device: Option<Token>,
    pub recovery_codes_left: usize,
    pub used_recovery_code: bool,
}

enum SecondFactor {
    Totp(String),
    RecoveryCode(String),
    Missing,
    Malformed,
}

fn classify(code: Option<&str>) -> SecondFactor {
    match code {
        None | Some("") => SecondFactor::Missing,
        Some(code) if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) => {
            SecondFactor::Totp(code.to_string())
        }
        Some(code) => match recovery_codes::canonical(code) {
            Some(canonical) => SecondFactor::RecoveryCode(canonical),
            None => SecondFactor::Malformed,
        },
    }
}

/// Credentials that passed every check; counters already cleared.
pub struct Verified {
    pub user_key: String,
    pub trusted: bool,
    pub used_recovery_code: bool,
}

/// Logs in: verifies, then starts a fresh session (and a trusted device if there was none).
pub async fn login(
    auth: &AuthService,
    sessions: &SessionService,
    attempt: LoginAttempt,
) -> Result<LoginSuccess, AuthError> {
    let verified = verify_credentials(auth, &attempt).await?;
    let now = auth.now();
    let Verified {
        user_key,
        trusted,
        used_recovery_code,
    } = verified;
    let new_device = if trusted {
        None
    } else {
        Some(Token::generate()?)
    };
    let recovery_codes_left = {
        let mut users = auth.users.lock().await;
        if let Some(token) = &new_device {
            users.devices.insert(
                String::from(token.hash()),
                super::TrustedDevice {
                    username: user_key.clone(),
                    created_at: now,
                },
            );
            // Keep the newest devices of this user only.
            let mut own: Vec<(u64, String)> = users
                .devices
                .iter()
                .filter(|(_, device)| device.username == user_key)
                .map(|(hash, device)| (device.created_at, hash.clone()))
                .collect();
            own.sort();
            let n_excess = own.len().saturating_sub(MAX_DEVICES_PER_USER);
            for (_, hash) in own.into_iter().take(n_excess) {
                users.devices.remove(&hash);
            }
            auth.persist_users(&users).await?;
        }
        users
            .users
            .get(&user_key)
            .map(|user| user.recovery_codes.len())
            .unwrap_or(0)
    };

    let tokens = sessions
        .start(&user_key, &attempt.user_agent, attempt.client_ip)
        .await?;
    auth.auditor.record(
        AuditKind::LoginSucceeded,
        Some(&user_key),
        Some(attempt.client_ip),
        if used_recovery_code {
            "with a recovery code"
        } else if trusted {
            "trusted device"
        } else {
            ""
        },
    );
    if used_recovery_code {
        auth.auditor.record(
            AuditKind::RecoveryCodeUsed,
            Some(&user_key),
            Some(attempt.client_ip),
            format!("{recovery_codes_left} left"),
        );
    }
    Ok(LoginSuccess {
        username: user_key,
        tokens,
        new_device,
        recovery_codes_left,
        used_recovery_code,
    })
}

/// Runs every check of a login attempt without starting a session (also used to re-authenticate).
pub async fn verify_credentials(
    auth: &AuthService,
    attempt: &LoginAttempt,
) -> Result<Verified, AuthError> {
    let now = auth.now();
    let user_key = username_key(&attempt.username);
    let ip_key = client_key(attempt.client_ip).to_string();

    // Trusted device: valid only for the username it was issued to.
    let device_hash: Option<TokenHash> = match &attempt.device_token {
        Some(token) => {
            let hash = token.hash();
            let users = auth.users.lock().await;
            let hex_hash = String::from(hash);
            users
                .devices
                .get(&hex_hash)
                .filter(|device| device.username == user_key)
                .map(|_| hash)
        }
        None => None,
    };
    let trusted = device_hash.is_some();

    let flood_key = match device_hash {
        Some(hash) => RateKey::Device(hash),
        None => RateKey::Client(client_key(attempt.client_ip)),
    };
    if let Err(retry_after) = auth.check_flood(flood_key) {
        return Err(AuthError::Throttled { retry_after });
    }

    let (username_known, totp_enrolled, password_hash, one_time_login) = {
        let users = auth.users.lock().await;
        match users.users.get(&user_key) {
            Some(user) => (
                true,
                user.totp.is_some(),
                Some(user.password_hash.clone()),
                user.one_time_login
                    .clone()
                    .filter(|code| code.expires_at > now),
            ),
            None => (false, false, None, None),
        }
    };

    let breaker_rules = auth.breaker_rules();
    let breaker_wait = if trusted {
        0
    } else {
        auth.with_breaker(|breaker| {
            breaker.admit(&breaker_rules, client_key(attempt.client_ip), now)
        })
    };
    let base_facts = AttemptFacts {
        username_known,
        client_ip: attempt.client_ip,
        trusted_device: trusted,
        user_failures: 0,
        ip_failures: 0,
        device_failures: 0,
        user_locked_for: 0,
        ip_locked_for: 0,
        device_locked_for: 0,
        breaker_wait,
        seconds_since_last_failure: None,
        totp_enrolled,
        now,
    };
    let keys = CounterKeys {
        user: &user_key,
        ip: &ip_key,
        device: device_hash,
    };
    // The plugin (if any) is asked first, on the blocking pool and outside the counter lock: a
    // slow or hostile plugin (bounded by its deadline) then holds neither a runtime worker nor
    // the lock. Its verdict is combined below with the built-in one on fresh counters. An
    // attempt the built-in policy already locks out costs no plugin call.
    let plugin_answer = match &auth.policy {
        Some(plugin) => {
            let facts = with_counters(&*auth.limits.lock().await, &keys, base_facts.clone());
            if let Decision::LockOut { seconds } = policy::builtin(&facts) {
                return Err(AuthError::Throttled {
                    retry_after: seconds.max(1),
                });
            }
            let plugin = plugin.clone();
            let answer = tokio::task::spawn_blocking(move || plugin.decide(&facts))
                .await
                .unwrap_or_else(|err| Err(PolicyError::Failed(err.to_string())));
            if let Err(err) = &answer {
                policy_failed(auth, Some(&user_key), Some(attempt.client_ip), err);
            }
            Some(answer)
        }
        None => None,
    };
    // Decide and count under one lock: the attempt is counted as a failure *before* hashing
    // (and uncounted on success), so concurrent attempts cannot all slip past the lock check.
    let (decision, precount) = {
        let mut limits = auth.limits.lock().await;
        let facts = with_counters(&limits, &keys, base_facts);
        let decision = policy::combine(plugin_answer.as_ref(), &facts);
        if let Decision::LockOut { seconds } = decision {
            return Err(AuthError::Throttled {
                retry_after: seconds.max(1),
            });
        }
        let precount = count_failure(auth, &mut limits, &user_key, &ip_key, device_hash, now);
        (decision, precount)
    };
    let checked = check_secrets(
        auth,
        attempt,
        &user_key,
        trusted,
        decision,
        password_hash.as_deref(),
        one_time_login.as_ref(),
        now,
    )
    .await;
    let (password_ok, second_factor_ok, used_recovery_code) = match checked {
        Ok(checked) => checked,
        Err(err) => {
            // Busy or broken, not wrong: the attempt does not count.
            precount.undo(&mut *auth.limits.lock().await);
            return Err(err);
        }
    };

    if !(password_ok && second_factor_ok) {
        if password_ok {
            auth.auditor.record(
                AuditKind::SecondFactorFailed,
                Some(&user_key),
                Some(attempt.client_ip),
                "password correct, second factor wrong",
            );
            auth.notify(
                &user_key,
                AuditKind::SecondFactorFailed,
                &format!(
                    "correct password with a wrong code from {}",
                    attempt.client_ip
                ),
            )
            .await;
        }
        settle_failure(auth, &user_key, attempt.client_ip, &precount).await?;
        return Err(AuthError::Failed);
    }
    // Success: clear this source's counters.
    {
        let mut limits = auth.limits.lock().await;
        limits.users.remove(&user_key);
        match device_hash {
            Some(hash) => {
                limits.devices.remove(&String::from(hash));
            }
            None => {
                limits.ips.remove(&ip_key);
            }
        }
        auth.persist_limits(&limits).await?;
    }

    Ok(Verified {
        user_key,
        trusted,
        used_recovery_code,
    })
}

/// Checks password (or one-time login code) and second factor; consumes what is one-time.
#[allow(clippy::too_many_arguments)]
async fn check_secrets(
    auth: &AuthService,
    attempt: &LoginAttempt,
    user_key: &str,
    trusted: bool,
    decision: Decision,
    password_hash: Option<&str>,
    one_time_login: Option<&super::OneTimeLogin>,
    now: u64,
) -> Result<(bool, bool, bool), AuthError> {
    let typed_password = password::normalize(&attempt.password);
    let usable = !typed_password.is_empty()
        && typed_password.chars().count() <= password::MAX_LEN
        && decision != Decision::DenyGeneric;
    let target = if usable { password_hash } else { None };
    let mut password_ok = if trusted {
        auth.hasher.verify_trusted(target, &typed_password).await?
    } else {
        auth.hasher.verify(target, &typed_password).await?
    };
    if password_ok && target.is_some_and(|phc| auth.hasher.needs_rehash(phc)) {
        // The configured cost rose since this hash was made: upgrade it now that we know the
        // password. A failure here does not fail the login.
        if let Ok(upgraded) = auth.hasher.hash(&typed_password).await {
            let mut users = auth.users.lock().await;
            if let Some(user) = users.users.get_mut(user_key) {
                user.password_hash = upgraded;
                auth.persist_users(&users).await?;
            }
        }
    }

    // A one-time login code from recovery mode stands in for password and second factor.
    let mut used_one_time_login = false;
    if let (false, true, Some(one_time)) = (password_ok, usable, one_time_login)
        && auth
            .hasher
            .verify(Some(&one_time.hash), &typed_password)
            .await?
    {
        let mut users = auth.users.lock().await;
        if let Some(user) = users.users.get_mut(user_key)
            && user
                .one_time_login
                .as_ref()
                .is_some_and(|current| current.hash == one_time.hash)
        {
            user.one_time_login = None;
            auth.persist_users(&users).await?;
            used_one_time_login = true;
            password_ok = true;
        }
    }

    let mut used_recovery_code = false;
    let second_factor_ok = if !password_ok {
        false
    } else if used_one_time_login {
        true
    } else if decision == Decision::RequireSecondFactor {
        match classify(attempt.code.as_deref()) {
            SecondFactor::Totp(code) => consume_totp(auth, user_key, &code, now).await?,
            SecondFactor::RecoveryCode(code) => {
                used_recovery_code = consume_recovery_code(auth, user_key, &code).await?;
                used_recovery_code
            }
            SecondFactor::Missing | SecondFactor::Malformed => false,
        }
    } else {
        true
    };

    Ok((password_ok, second_factor_ok, used_recovery_code))
}

async fn consume_totp(
    auth: &AuthService,
    user_key: &str,
    code: &str,
    now: u64,
) -> Result<bool, AuthError> {
    let mut users = auth.users.lock().await;
    let Some(user) = users.users.get_mut(user_key) else {
        return Ok(false);
    };
    let Some(totp_state) = user.totp.as_mut() else {
        return Ok(false);
    };
    let Some(secret) = totp::decode_secret(&totp_state.secret) else {
        return Ok(false);
    };
    match totp::accept(&secret, code, now, totp_state.last_used_step) {
        Ok(step) => {
            totp_state.last_used_step = Some(step);
            // Persisted before any session exists: a replay after a crash is still refused.
            auth.persist_users(&users).await?;
            Ok(true)
        }
        Err(_) => Ok(false),
    }
}

async fn consume_recovery_code(
    auth: &AuthService,
    user_key: &str,
    canonical: &str,
) -> Result<bool, AuthError> {
    let hashes = {
        let users = auth.users.lock().await;
        users
            .users
            .get(user_key)
            .map(|user| user.recovery_codes.clone())
            .unwrap_or_default()
    };
    let Some(idx) = auth.hasher.verify_any(&hashes, canonical).await? else {
        return Ok(false);
    };
    let mut users = auth.users.lock().await;
    let Some(user) = users.users.get_mut(user_key) else {
        return Ok(false);
    };
    // Double spend: only the caller that still finds the hash removes it.
    let Some(position) = user
        .recovery_codes
        .iter()
        .position(|hash| *hash == hashes[idx])
    else {
        return Ok(false);
    };
    user.recovery_codes.remove(position);
    auth.persist_users(&users).await?;
    Ok(true)
}

/// Counters as they were before an attempt was pre-counted, to undo it.
struct Precount {
    user: Option<(String, Option<FailureCounter>)>,
    ip: Option<(String, Option<FailureCounter>)>,
    device: Option<(String, Option<FailureCounter>)>,
    newly_locked: Vec<&'static str>,
}

impl Precount {
    fn undo(&self, limits: &mut super::LimitsFile) {
        for (map, saved) in [
            (&mut limits.users, &self.user),
            (&mut limits.ips, &self.ip),
            (&mut limits.devices, &self.device),
        ] {
            if let Some((key, previous)) = saved {
                match previous {
                    Some(counter) => map.insert(key.clone(), *counter),
                    None => map.remove(key),
                };
            }
        }
    }
}

/// The counter keys of one attempt.
struct CounterKeys<'a> {
    user: &'a str,
    ip: &'a str,
    device: Option<TokenHash>,
}

/// `facts` with the counters of `keys` as they stand in `limits`.
fn with_counters(
    limits: &super::LimitsFile,
    keys: &CounterKeys<'_>,
    facts: AttemptFacts,
) -> AttemptFacts {
    let now = facts.now;
    let user = limits.users.get(keys.user).copied().unwrap_or_default();
    let ip = limits.ips.get(keys.ip).copied().unwrap_or_default();
    let device = keys
        .device
        .and_then(|hash| limits.devices.get(&String::from(hash)).copied())
        .unwrap_or_default();
    let last_failure = user.last_failure_at.max(ip.last_failure_at);
    AttemptFacts {
        user_failures: user.consecutive,
        ip_failures: ip.consecutive,
        device_failures: device.consecutive,
        user_locked_for: lockout::retry_after(&user, now).unwrap_or(0),
        ip_locked_for: lockout::retry_after(&ip, now).unwrap_or(0),
        device_locked_for: lockout::retry_after(&device, now).unwrap_or(0),
        seconds_since_last_failure: (last_failure > 0).then(|| now.saturating_sub(last_failure)),
        ..facts
    }
}

/// A failed auth-policy plugin call: the built-in verdict stands; logged and audited.
fn policy_failed(
    auth: &AuthService,
    username: Option<&str>,
    client: Option<IpAddr>,
    err: &PolicyError,
) {
    tracing::warn!(%err, "auth policy plugin failed; using the built-in policy");
    auth.auditor.record(
        AuditKind::AuthPolicyFailed,
        username,
        client,
        err.to_string(),
    );
}

/// A new password (NFKC-normalised): the built-in rules first, then the auth-policy plugin,
/// which sees only derived features (length, in the common list, contains the username) and
/// can only refuse more. A failing plugin leaves the built-in verdict (logged and audited).
pub async fn check_new_password(
    auth: &AuthService,
    username: &str,
    password: &str,
) -> Result<(), password::PasswordRejection> {
    password::check_policy(username, password)?;
    let Some(plugin) = auth.policy.clone() else {
        return Ok(());
    };
    let features = password::features(username, password);
    let answer = tokio::task::spawn_blocking(move || plugin.check_password(&features))
        .await
        .unwrap_or_else(|err| Err(PolicyError::Failed(err.to_string())));
    match answer {
        Ok(None) => Ok(()),
        Ok(Some(reason)) => Err(password::PasswordRejection::Policy(reason)),
        Err(err) => {
            policy_failed(auth, Some(username), None, &err);
            Ok(())
        }
    }
}

/// Counts one failure for the attempt's keys, in memory; returns what it changed.
fn count_failure(
    auth: &AuthService,
    limits: &mut super::LimitsFile,
    user_key: &str,
    ip_key: &str,
    device_hash: Option<TokenHash>,
    now: u64,
) -> Precount {
    let mut precount = Precount {
        user: None,
        ip: None,
        device: None,
        newly_locked: Vec::new(),
    };
    let mut bump = |map: &mut std::collections::BTreeMap<String, FailureCounter>,
                    key: &str,
                    rules: &lockout::LockoutRules,
                    label: &'static str| {
        let previous = map.get(key).copied();
        let next = lockout::record_failure(&previous.unwrap_or_default(), rules, now);
        if lockout::retry_after(&next, now).is_some() {
            precount.newly_locked.push(label);
        }
        map.insert(key.to_string(), next);
        (key.to_string(), previous)
    };
    match device_hash {
        Some(hash) => {
            let saved = bump(
                &mut limits.devices,
                &String::from(hash),
                &auth.device_rules(),
                "device",
            );
            precount.device = Some(saved);
        }
        None => {
            let breaker_rules = auth.breaker_rules();
            auth.with_breaker(|breaker| breaker.record_failure(&breaker_rules, now));
            let saved_user = bump(&mut limits.users, user_key, &auth.user_rules(), "username");
            let saved_ip = bump(&mut limits.ips, ip_key, &auth.ip_rules(), "client");
            precount.user = Some(saved_user);
            precount.ip = Some(saved_ip);
        }
    }
    if limits.users.len() + limits.ips.len() + limits.devices.len() > 3 * super::MAX_COUNTERS {
        limits.prune(now);
    }
    precount
}

/// Makes a counted failure durable and audits it.
async fn settle_failure(
    auth: &AuthService,
    user_key: &str,
    client_ip: IpAddr,
    precount: &Precount,
) -> Result<(), AuthError> {
    {
        let limits = auth.limits.lock().await;
        auth.persist_limits(&limits).await?;
    }
    auth.auditor
        .record(AuditKind::LoginFailed, Some(user_key), Some(client_ip), "");
    if !precount.newly_locked.is_empty() {
        auth.auditor.record(
            AuditKind::LockedOut,
            Some(user_key),
            Some(client_ip),
            precount.newly_locked.join(","),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests;
