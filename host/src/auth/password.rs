//! Passwords: the policy (length, common list, username) and argon2id hashing with bounded
//! concurrency.
//!
//! At most `hash_concurrency` hashes run at once (default 2) and at most `hash_queue` callers
//! wait (default 16); the next caller gets [`HashError::Busy`] at once, which HTTP turns into 503
//! with Retry-After. This bounds memory (each hash holds `memory_kib`), not CPU time of the
//! hashes already admitted. Every "no usable credential" path verifies against a real dummy
//! hash computed at start with the live parameters, so timing does not reveal which path ran.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;
use unicode_normalization::UnicodeNormalization;

use crate::config::Argon2Config;

/// Shortest accepted password, in Unicode code points after NFKC.
pub const MIN_LEN: usize = 12;
/// Longest accepted password, in code points after NFKC; longer ones are refused, never cut.
pub const MAX_LEN: usize = 256;

/// Trusted-device verifications admitted at once, beside the shared queue.
pub const TRUSTED_QUEUE: usize = 4;

/// Mark Burnett's 10 000 most common passwords (npm `common-password` 0.1.2, ISC; provenance
/// and checksums in `common_passwords/README.md` and `packaging/debian/copyright-license`).
const TOP_10K: &str = include_str!("common_passwords/top10k.txt");
/// nos's own additions: NAS and product words.
const NOS_COMMON: &str = include_str!("common_passwords/nos.txt");

/// Both lists, lowercased, in one set built on first use (about 10 000 short strings).
static COMMON: LazyLock<HashSet<String>> = LazyLock::new(|| {
    TOP_10K
        .lines()
        .chain(NOS_COMMON.lines())
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_lowercase)
        .collect()
});

/// Whether `password` (already NFKC-normalised) is on the embedded common-password lists,
/// compared case-insensitively (NIST SP 800-63B 5.1.1.2: check against known-compromised
/// values; case folding also catches `Password1234`).
pub fn is_common(password: &str) -> bool {
    COMMON.contains(&password.to_lowercase())
}

/// Context words a password must not contain.
const CONTEXT_WORDS: [&str; 3] = ["nos-admin", "password", "qwertyuiop"];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordRejection {
    #[error("password must be at least {MIN_LEN} characters")]
    TooShort,
    #[error("password must be at most {MAX_LEN} characters")]
    TooLong,
    #[error("password is too common")]
    Common,
    #[error("password must not contain the username")]
    ContainsUsername,
    /// Refused by the auth-policy plugin, with its reason (bounded, no control characters).
    #[error("{0}")]
    Policy(String),
}

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("too many password checks in progress")]
    Busy,
    #[error("password hashing failed: {0}")]
    Internal(String),
}

/// NFKC; no trimming, no case folding, no truncation.
pub fn normalize(password: &str) -> String {
    password.nfkc().collect()
}

/// Checks a new password (already normalised) for `username`.
pub fn check_policy(username: &str, password: &str) -> Result<(), PasswordRejection> {
    let n_chars = password.chars().count();
    if n_chars < MIN_LEN {
        return Err(PasswordRejection::TooShort);
    }
    if n_chars > MAX_LEN {
        return Err(PasswordRejection::TooLong);
    }
    let lowered = password.to_lowercase();
    if !username.is_empty() && lowered.contains(&username.to_lowercase()) {
        return Err(PasswordRejection::ContainsUsername);
    }
    if is_common(&lowered) || CONTEXT_WORDS.iter().any(|word| lowered == *word) {
        return Err(PasswordRejection::Common);
    }
    Ok(())
}

/// What the auth-policy plugin may know of a new password (NFKC-normalised): derived facts,
/// never the password itself.
pub fn features(username: &str, password: &str) -> crate::plugin::policy::PasswordFeatures {
    let lowered = password.to_lowercase();
    crate::plugin::policy::PasswordFeatures {
        length_chars: u32::try_from(password.chars().count()).unwrap_or(u32::MAX),
        in_common_list: is_common(&lowered),
        contains_username: !username.is_empty() && lowered.contains(&username.to_lowercase()),
    }
}

/// argon2id with admission control.
pub struct Hasher {
    argon2: Argon2<'static>,
    permits: Arc<Semaphore>,
    admitted: AtomicUsize,
    max_admitted: usize,
    trusted_admitted: AtomicUsize,
    dummy_phc: String,
    n_computed: AtomicU64,
    in_flight: AtomicUsize,
    peak_in_flight: AtomicUsize,
}

struct Admission<'a>(&'a AtomicUsize);

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Hasher {
    /// Builds the hasher and computes the dummy hash (one real hash, at start).
    pub fn new(
        config: Argon2Config,
        concurrency: usize,
        queue: usize,
    ) -> Result<Hasher, HashError> {
        let params = Params::new(
            config.memory_kib,
            config.iterations,
            config.parallelism,
            None,
        )
        .map_err(|err| HashError::Internal(err.to_string()))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let dummy_phc = hash_blocking(&argon2, "nos dummy password, never matches")?;
        Ok(Hasher {
            argon2,
            permits: Arc::new(Semaphore::new(concurrency)),
            admitted: AtomicUsize::new(0),
            max_admitted: concurrency + queue,
            trusted_admitted: AtomicUsize::new(0),
            dummy_phc,
            n_computed: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            peak_in_flight: AtomicUsize::new(0),
        })
    }

    /// How many hashes this hasher has computed (verifications included).
    pub fn n_computed(&self) -> u64 {
        self.n_computed.load(Ordering::SeqCst)
    }

    /// Whether a stored hash was made with other parameters than the configured ones (so a
    /// successful login should replace it). Unparseable hashes count as needing a rehash.
    pub fn needs_rehash(&self, phc: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(phc) else {
            return true;
        };
        let Ok(stored) = Params::try_from(&parsed) else {
            return true;
        };
        let live = self.argon2.params();
        parsed.algorithm.as_str() != "argon2id"
            || (stored.m_cost(), stored.t_cost(), stored.p_cost())
                != (live.m_cost(), live.t_cost(), live.p_cost())
    }

    /// The most hashes that ever ran at the same time (never above `hash_concurrency`).
    pub fn peak_in_flight(&self) -> usize {
        self.peak_in_flight.load(Ordering::SeqCst)
    }

    /// Runs `work` on the blocking pool while counting it as one hash in flight.
    async fn run_blocking<R: Send + 'static>(
        &self,
        work: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R, HashError> {
        let now_in_flight = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak_in_flight
            .fetch_max(now_in_flight, Ordering::SeqCst);
        let result = tokio::task::spawn_blocking(work)
            .await
            .map_err(|err| HashError::Internal(err.to_string()));
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        result
    }

    /// Hashes a password to a PHC string.
    pub async fn hash(&self, password: &str) -> Result<String, HashError> {
        let _admission = self.admit()?;
        let _permit = self.permits.acquire().await.map_err(|_| HashError::Busy)?;
        let argon2 = self.argon2.clone();
        let password = password.to_string();
        self.n_computed.fetch_add(1, Ordering::SeqCst);
        self.run_blocking(move || hash_blocking(&argon2, &password))
            .await?
    }

    /// Verifies against `phc`, or against the dummy hash when there is none (always false then).
    pub async fn verify(&self, phc: Option<&str>, password: &str) -> Result<bool, HashError> {
        let admission = self.admit()?;
        self.verify_admitted(admission, phc, password).await
    }

    /// [`Hasher::verify`] for a trusted device: it waits in a small reserved queue
    /// ([`TRUSTED_QUEUE`]) instead of the shared one, so a hashing flood from untrusted
    /// clients cannot turn the owner away with 503. It still waits for a hash slot.
    pub async fn verify_trusted(
        &self,
        phc: Option<&str>,
        password: &str,
    ) -> Result<bool, HashError> {
        let admission = self.admit_trusted()?;
        self.verify_admitted(admission, phc, password).await
    }

    async fn verify_admitted(
        &self,
        _admission: Admission<'_>,
        phc: Option<&str>,
        password: &str,
    ) -> Result<bool, HashError> {
        let _permit = self.permits.acquire().await.map_err(|_| HashError::Busy)?;
        let (target, real) = match phc {
            Some(phc) => (phc.to_string(), true),
            None => (self.dummy_phc.clone(), false),
        };
        let argon2 = self.argon2.clone();
        let password = password.to_string();
        self.n_computed.fetch_add(1, Ordering::SeqCst);
        let matched = self
            .run_blocking(move || verify_blocking(&argon2, &target, &password))
            .await?;
        Ok(real && matched)
    }

    /// Verifies against several hashes in one admission; returns the index that matched.
    pub async fn verify_any(
        &self,
        phcs: &[String],
        secret: &str,
    ) -> Result<Option<usize>, HashError> {
        let _admission = self.admit()?;
        let _permit = self.permits.acquire().await.map_err(|_| HashError::Busy)?;
        let argon2 = self.argon2.clone();
        let mut targets = phcs.to_vec();
        if targets.is_empty() {
            targets.push(self.dummy_phc.clone());
        }
        let real = !phcs.is_empty();
        let secret = secret.to_string();
        self.n_computed
            .fetch_add(targets.len() as u64, Ordering::SeqCst);
        let found = self
            .run_blocking(move || {
                targets
                    .iter()
                    .position(|target| verify_blocking(&argon2, target, &secret))
            })
            .await?;
        Ok(found.filter(|_| real))
    }

    fn admit_trusted(&self) -> Result<Admission<'_>, HashError> {
        let previously = self.trusted_admitted.fetch_add(1, Ordering::SeqCst);
        let admission = Admission(&self.trusted_admitted);
        if previously >= TRUSTED_QUEUE {
            return Err(HashError::Busy);
        }
        Ok(admission)
    }

    fn admit(&self) -> Result<Admission<'_>, HashError> {
        let previously = self.admitted.fetch_add(1, Ordering::SeqCst);
        let admission = Admission(&self.admitted);
        if previously >= self.max_admitted {
            return Err(HashError::Busy);
        }
        Ok(admission)
    }
}

fn hash_blocking(argon2: &Argon2<'static>, password: &str) -> Result<String, HashError> {
    let mut salt_bytes = [0u8; 16];
    getrandom::fill(&mut salt_bytes).map_err(|err| HashError::Internal(err.to_string()))?;
    let salt =
        SaltString::encode_b64(&salt_bytes).map_err(|err| HashError::Internal(err.to_string()))?;
    argon2
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|err| HashError::Internal(err.to_string()))
}

fn verify_blocking(argon2: &Argon2<'static>, phc: &str, password: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => argon2.verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_table() {
        let cases: [(&str, &str, Result<(), PasswordRejection>); 7] = [
            ("admin", "short-pass1", Err(PasswordRejection::TooShort)),
            ("admin", "correct horse battery", Ok(())),
            (
                "admin",
                "my-admin-is-great",
                Err(PasswordRejection::ContainsUsername),
            ),
            ("alice", "123456789012", Err(PasswordRejection::Common)),
            ("alice", "QWERTYUIOPASDFGH", Err(PasswordRejection::Common)),
            ("alice", &"x".repeat(256), Ok(())),
            ("alice", &"x".repeat(257), Err(PasswordRejection::TooLong)),
        ];
        for (username, password, expected) in cases {
            assert_eq!(check_policy(username, password), expected, "{password}");
        }
    }

    #[test]
    fn the_top_10k_list_is_embedded_and_matched_without_case() {
        assert_eq!(TOP_10K.lines().count(), 10_000);
        assert!(COMMON.len() >= 10_000);
        // Entries from the list (the few of 12 characters or more, so the length rule alone
        // would let them through), in any case, are refused.
        for common in [
            "contortionist",
            "Scandinavian",
            "UNBELIEVABLE",
            "businessbabe",
        ] {
            assert!(
                TOP_10K
                    .lines()
                    .any(|line| line.eq_ignore_ascii_case(common))
            );
            assert_eq!(
                check_policy("alice", &normalize(common)),
                Err(PasswordRejection::Common),
                "{common}"
            );
        }
        // Short ones are on the list too (the length rule refuses them first).
        assert!(is_common("PASSWORD") && is_common("qwerty") && is_common("123456"));
        // Full-width letters fold to the listed word under NFKC.
        assert!(is_common(&normalize("ｃｏｎｔｏｒｔｉｏｎｉｓｔ")));
        // A strong password is accepted.
        assert_eq!(check_policy("alice", "vinyl-orbit-lantern-91"), Ok(()));
        assert!(!is_common("vinyl-orbit-lantern-91"));
    }

    #[tokio::test]
    async fn hashes_verify_and_weaker_parameters_ask_for_a_rehash() {
        let floor = Argon2Config {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
        };
        let stronger = Argon2Config {
            iterations: 3,
            ..floor
        };
        let old = Hasher::new(floor, 2, 4).unwrap();
        let new = Hasher::new(stronger, 2, 4).unwrap();
        let phc = old.hash("a long enough password").await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(
            old.verify(Some(&phc), "a long enough password")
                .await
                .unwrap()
        );
        assert!(
            !old.verify(Some(&phc), "a long enough passwor")
                .await
                .unwrap()
        );
        assert!(!old.verify(None, "a long enough password").await.unwrap());
        assert!(!old.needs_rehash(&phc));
        assert!(new.needs_rehash(&phc));
        assert!(new.needs_rehash("$plain$whatever"));
        assert_eq!(old.n_computed(), 4);
    }

    #[test]
    fn nfkc_equivalents_normalise_equal_and_nothing_is_truncated() {
        assert_eq!(normalize("ｐａｓｓｗｏｒｄ１２３４"), "password1234");
        assert_ne!(normalize("abc def "), "abc def");
    }
}
