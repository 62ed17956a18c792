//! The login flow with fakes: a virtual clock, a state directory in a tempdir, an in-memory
//! audit sink and a scripted auth policy. No sockets, no HTTP, no sleeping.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use super::*;
use crate::audit::{AuditEvent, Auditor, MemoryAudit};
use crate::auth::policy::{AttemptFacts, AuthPolicy, Decision, PasswordFeatures, PolicyError};
use crate::auth::service::AuthDeps;
use crate::auth::{TotpState, User};
use crate::clock::ManualClock;
use crate::config::Config;
use crate::store::StateDir;

/// A TOTP-step aligned instant plus 10 s.
const T0: u64 = 1_800_000_010;
const PASSWORD: &str = "correct horse battery staple 42";

struct Fixture {
    _dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
    audit: Arc<MemoryAudit>,
    auth: AuthService,
    sessions: SessionService,
}

/// A policy that answers every attempt with the same verdict.
struct Scripted(Decision);

impl AuthPolicy for Scripted {
    fn decide(&self, _: &AttemptFacts) -> Result<Decision, PolicyError> {
        Ok(self.0)
    }

    fn check_password(&self, _: &PasswordFeatures) -> Result<Option<String>, PolicyError> {
        Ok(None)
    }
}

/// A policy that always fails, as a trapping plugin does.
struct Broken;

impl AuthPolicy for Broken {
    fn decide(&self, _: &AttemptFacts) -> Result<Decision, PolicyError> {
        Err(PolicyError::Failed("trap".into()))
    }

    fn check_password(&self, _: &PasswordFeatures) -> Result<Option<String>, PolicyError> {
        Err(PolicyError::Failed("trap".into()))
    }
}

fn fixture(limits_toml: &str, policy: Option<Arc<dyn AuthPolicy>>) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[state]\ndir = \"{}\"\n[argon2]\nmemory_kib = 19456\niterations = 2\n[limits]\nip_burst = 1000\n{limits_toml}",
        dir.path().display()
    );
    let config = Config::from_toml_str(&text, Path::new("test.toml")).unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let audit = Arc::new(MemoryAudit::default());
    let store = Arc::new(StateDir::open(dir.path()).unwrap());
    let auth = AuthService::open(AuthDeps {
        store: store.clone(),
        clock: clock.clone(),
        auditor: Auditor::new(audit.clone(), clock.clone()),
        policy,
        argon2: config.argon2,
        limits: config.limits,
    })
    .unwrap();
    let sessions = SessionService::open(store, clock.clone(), &config.session).unwrap();
    Fixture {
        _dir: dir,
        clock,
        audit,
        auth,
        sessions,
    }
}

impl Fixture {
    /// Adds `username` with [`PASSWORD`], and TOTP with `secret` when given.
    async fn add_user(&self, username: &str, totp_secret: Option<&[u8]>) {
        let password_hash = self.auth.hasher.hash(PASSWORD).await.unwrap();
        let user = User {
            password_hash,
            totp: totp_secret.map(|secret| TotpState {
                secret: totp::encode_secret(secret),
                last_used_step: None,
            }),
            recovery_codes: Vec::new(),
            created_at: T0,
            password_changed_at: T0,
            one_time_login: None,
            notices: Vec::new(),
        };
        let mut users = self.auth.users.lock().await;
        users.users.insert(username.into(), user);
    }

    async fn login(
        &self,
        username: &str,
        password: &str,
        code: Option<&str>,
    ) -> Result<LoginSuccess, AuthError> {
        self.login_from(username, password, code, "192.0.2.1").await
    }

    async fn login_from(
        &self,
        username: &str,
        password: &str,
        code: Option<&str>,
        client_ip: &str,
    ) -> Result<LoginSuccess, AuthError> {
        let attempt = LoginAttempt {
            username: username.into(),
            password: password.into(),
            code: code.map(str::to_string),
            client_ip: client_ip.parse::<IpAddr>().unwrap(),
            user_agent: "tests".into(),
            device_token: None,
        };
        login(&self.auth, &self.sessions, attempt).await
    }

    fn kinds(&self) -> Vec<AuditKind> {
        self.audit
            .events()
            .iter()
            .map(|event: &AuditEvent| event.kind)
            .collect()
    }

    fn n_sessions(&self, username: &str) -> usize {
        self.sessions.with_table(|table| table.list(username).len())
    }
}

const SECRET: &[u8] = b"12345678901234567890";

#[tokio::test]
async fn right_password_starts_a_session_and_a_trusted_device() {
    let fixture = fixture("", None);
    fixture.add_user("admin", None).await;
    let success = fixture.login("Admin", PASSWORD, None).await.unwrap();
    assert_eq!(success.username, "admin");
    assert!(success.new_device.is_some());
    assert!(!success.used_recovery_code);
    assert_eq!(fixture.n_sessions("admin"), 1);
    assert_eq!(fixture.kinds(), [AuditKind::LoginSucceeded]);
    // Counted before the hash, uncounted on success.
    assert!(fixture.auth.limits.lock().await.users.is_empty());
}

#[tokio::test]
async fn wrong_password_and_unknown_user_fail_alike_and_are_counted() {
    let fixture = fixture("", None);
    fixture.add_user("admin", None).await;
    let wrong = fixture.login("admin", "not the password", None).await;
    assert!(matches!(wrong, Err(AuthError::Failed)), "{wrong:?}");
    let unknown = fixture.login("nobody", PASSWORD, None).await;
    assert!(matches!(unknown, Err(AuthError::Failed)), "{unknown:?}");
    assert_eq!(
        fixture.kinds(),
        [AuditKind::LoginFailed, AuditKind::LoginFailed]
    );
    let limits = fixture.auth.limits.lock().await;
    assert_eq!(limits.users["admin"].consecutive, 1);
    assert_eq!(limits.users["nobody"].consecutive, 1);
    assert_eq!(fixture.n_sessions("admin"), 0);
}

#[tokio::test]
async fn lockout_refuses_before_any_hash_and_ends_with_time() {
    let fixture = fixture("free_failures = 2\nbase_lock_seconds = 60\n", None);
    fixture.add_user("admin", None).await;
    for _ in 0..2 {
        let failed = fixture.login("admin", "wrong", None).await;
        assert!(matches!(failed, Err(AuthError::Failed)), "{failed:?}");
    }
    assert!(fixture.kinds().contains(&AuditKind::LockedOut));
    let hashes_before = fixture.auth.hasher.n_computed();
    let locked = fixture.login("admin", PASSWORD, None).await;
    let Err(AuthError::Throttled { retry_after }) = locked else {
        panic!("not locked: {locked:?}");
    };
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(fixture.auth.hasher.n_computed(), hashes_before, "no hash");
    fixture.clock.advance(retry_after);
    fixture.login("admin", PASSWORD, None).await.unwrap();
}

#[tokio::test]
async fn totp_is_required_once_enrolled() {
    let fixture = fixture("", None);
    fixture.add_user("admin", Some(SECRET)).await;

    let missing = fixture.login("admin", PASSWORD, None).await;
    assert!(matches!(missing, Err(AuthError::Failed)), "{missing:?}");
    let wrong_code = totp::code_at(SECRET, T0 + 3600);
    let wrong = fixture.login("admin", PASSWORD, Some(&wrong_code)).await;
    assert!(matches!(wrong, Err(AuthError::Failed)), "{wrong:?}");
    // A right password with a wrong code is audited apart and noticed to the holder.
    let n_second_factor = fixture
        .kinds()
        .iter()
        .filter(|kind| **kind == AuditKind::SecondFactorFailed)
        .count();
    assert_eq!(n_second_factor, 2);
    let users = fixture.auth.users.lock().await;
    assert_eq!(users.users["admin"].notices.len(), 2);
    drop(users);

    let right_code = totp::code_at(SECRET, T0);
    fixture
        .login("admin", PASSWORD, Some(&right_code))
        .await
        .unwrap();
    // The step is used: the same code again is refused.
    let replay = fixture.login("admin", PASSWORD, Some(&right_code)).await;
    assert!(matches!(replay, Err(AuthError::Failed)), "{replay:?}");
    assert_eq!(fixture.n_sessions("admin"), 1);
}

#[tokio::test]
async fn a_policy_can_lock_out_or_deny_but_not_loosen() {
    let locking = fixture(
        "",
        Some(Arc::new(Scripted(Decision::LockOut { seconds: 77 }))),
    );
    locking.add_user("admin", None).await;
    let locked = locking.login("admin", PASSWORD, None).await;
    assert!(
        matches!(locked, Err(AuthError::Throttled { retry_after: 77 })),
        "{locked:?}"
    );

    let denying = fixture("", Some(Arc::new(Scripted(Decision::DenyGeneric))));
    denying.add_user("admin", None).await;
    let denied = denying.login("admin", PASSWORD, None).await;
    assert!(matches!(denied, Err(AuthError::Failed)), "{denied:?}");

    // "Proceed" does not lift the built-in second factor.
    let loosening = fixture("", Some(Arc::new(Scripted(Decision::Proceed))));
    loosening.add_user("admin", Some(SECRET)).await;
    let without_code = loosening.login("admin", PASSWORD, None).await;
    assert!(
        matches!(without_code, Err(AuthError::Failed)),
        "{without_code:?}"
    );
}

#[tokio::test]
async fn a_failing_policy_leaves_the_built_in_verdict_and_is_audited() {
    let fixture = fixture("", Some(Arc::new(Broken)));
    fixture.add_user("admin", None).await;
    fixture.login("admin", PASSWORD, None).await.unwrap();
    assert_eq!(
        fixture.kinds(),
        [AuditKind::AuthPolicyFailed, AuditKind::LoginSucceeded]
    );
}

#[tokio::test]
async fn the_breaker_trickles_every_client_once_tripped() {
    let fixture = fixture(
        "free_failures = 100\nglobal_failures = 3\nglobal_window_seconds = 600\nglobal_trickle_seconds = 30\n",
        None,
    );
    fixture.add_user("admin", None).await;
    // A spray from three networks trips it.
    for client in ["198.51.100.1", "198.51.100.2", "198.51.100.3"] {
        let failed = fixture.login_from("admin", "wrong", None, client).await;
        assert!(matches!(failed, Err(AuthError::Failed)), "{failed:?}");
    }
    // Tripped: a new network may try once, then waits for the trickle.
    let first = fixture
        .login_from("admin", PASSWORD, None, "203.0.113.9")
        .await;
    assert!(first.is_ok(), "{first:?}");
    let second = fixture
        .login_from("admin", PASSWORD, None, "203.0.113.9")
        .await;
    assert!(
        matches!(second, Err(AuthError::Throttled { retry_after: 30 })),
        "{second:?}"
    );
    // Quiet for the window: the breaker resets.
    fixture.clock.advance(600);
    let later = fixture
        .login_from("admin", PASSWORD, None, "203.0.113.9")
        .await;
    assert!(later.is_ok(), "{later:?}");
}
