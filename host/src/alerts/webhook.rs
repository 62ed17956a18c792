//! The alert webhook: every [`Transition`] POSTed as JSON to `[alerts] webhook_url`, signed
//! with the shared secret of `[alerts] webhook_secret_file`.
//!
//! The request: `POST <webhook_url>`, `Content-Type: application/json`, the body
//! [`WebhookBody`] (`{"change":"raised","alert":{…}}`, the alert being the stored record,
//! [`Alert`]: `id`, `kind`, `subject`, `severity`, `first_seen`, `last_seen`, `message`,
//! `state`, `acknowledged` (`{by, at}`), `cleared_at`, `occurrence`), and two headers:
//! * `X-Nos-Timestamp`: Unix seconds when this attempt was signed;
//! * `X-Nos-Signature`: `sha256=<hex>`, the HMAC-SHA256 under the secret of
//!   `"<timestamp>.<body>"` (the timestamp's decimal digits, a dot, the exact body bytes).
//!
//! A receiver recomputes the HMAC over the bytes it received ([`verify`] does it), compares in
//! constant time, and refuses a timestamp far from its own clock (a replay).
//!
//! Delivery never blocks nosd: [`Webhook::send`] puts the body on a bounded queue
//! ([`QUEUE_LEN`]) and returns; one tokio task posts them in order, each attempt bounded by
//! [`RetryPolicy::timeout`], retried [`RetryPolicy::attempts`] times in all with doubling
//! backoff on a network error or a non-2xx answer. A full queue, or a body that exhausted its
//! attempts, is logged (`warn`) and dropped: the alert itself is in the state directory, the
//! journal and the audit log regardless. Redirects are not followed (a signed body goes only
//! where the admin said).

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use tokio::sync::mpsc;

use super::model::{Alert, Change, Transition};
use crate::clock::Clock;

/// Bodies waiting for delivery; one more is dropped (with a log line).
pub const QUEUE_LEN: usize = 64;
/// The largest secret file read.
pub const MAX_SECRET_BYTES: usize = 4096;
/// The header with the signing time.
pub const TIMESTAMP_HEADER: &str = "x-nos-timestamp";
/// The header with the signature.
pub const SIGNATURE_HEADER: &str = "x-nos-signature";

/// How hard one body is tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (default 5).
    pub attempts: u32,
    /// The wait after the first failure, doubled after each further one (default 2 s: 2, 4,
    /// 8, 16 s, about half a minute in all).
    pub first_backoff: Duration,
    /// The bound on one attempt, connecting included (default 10 s).
    pub timeout: Duration,
}

/// The defaults of [`RetryPolicy`].
pub const DEFAULT_RETRY: RetryPolicy = RetryPolicy {
    attempts: 5,
    first_backoff: Duration::from_secs(2),
    timeout: Duration::from_secs(10),
};

/// What the webhook is POSTed.
#[derive(Debug, Clone, Serialize)]
pub struct WebhookBody<'a> {
    pub change: Change,
    pub alert: &'a Alert,
}

/// Why the webhook cannot be set up (nosd does not start).
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("cannot read the webhook secret {path}: {source}")]
    SecretUnreadable {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the webhook secret {path} is empty")]
    SecretEmpty { path: std::path::PathBuf },
    #[error("the webhook secret {path} is {n_bytes} bytes, more than {MAX_SECRET_BYTES}")]
    SecretTooLong {
        path: std::path::PathBuf,
        n_bytes: usize,
    },
    #[error("cannot build the webhook's HTTP client: {0}")]
    Client(String),
    #[error("the webhook needs a tokio runtime to deliver from")]
    NoRuntime,
}

/// Where and how to deliver.
pub struct WebhookTarget {
    pub url: reqwest::Url,
    pub secret: Vec<u8>,
    pub retry: RetryPolicy,
}

/// The handle nosd keeps: cheap to clone, sends never wait.
#[derive(Clone)]
pub struct Webhook {
    queue: mpsc::Sender<Vec<u8>>,
}

/// `sha256=<hex>` of `"<timestamp>.<body>"` under `secret`.
pub fn sign(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(mac(secret, timestamp, body).finalize().into_bytes())
    )
}

/// Whether `signature` (the `X-Nos-Signature` value) is `secret`'s signature of `timestamp`
/// and `body`, compared in constant time.
pub fn verify(secret: &[u8], timestamp: u64, body: &[u8], signature: &str) -> bool {
    let Some(digest) = signature
        .strip_prefix("sha256=")
        .and_then(|hex_digest| hex::decode(hex_digest).ok())
    else {
        return false;
    };
    mac(secret, timestamp, body).verify_slice(&digest).is_ok()
}

fn mac(secret: &[u8], timestamp: u64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes a key of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// Reads a secret file: its bytes without trailing whitespace (a newline an editor added).
pub fn read_secret(path: &std::path::Path) -> Result<Vec<u8>, WebhookError> {
    let bytes = std::fs::read(path).map_err(|source| WebhookError::SecretUnreadable {
        path: path.to_path_buf(),
        source,
    })?;
    if bytes.len() > MAX_SECRET_BYTES {
        return Err(WebhookError::SecretTooLong {
            path: path.to_path_buf(),
            n_bytes: bytes.len(),
        });
    }
    let n_kept = bytes.trim_ascii_end().len();
    if n_kept == 0 {
        return Err(WebhookError::SecretEmpty {
            path: path.to_path_buf(),
        });
    }
    Ok(bytes[..n_kept].to_vec())
}

impl Webhook {
    /// Starts the delivery task on the current tokio runtime.
    pub fn start(target: WebhookTarget, clock: Arc<dyn Clock>) -> Result<Webhook, WebhookError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| WebhookError::NoRuntime)?;
        let client = reqwest::Client::builder()
            .timeout(target.retry.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("nosd/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| WebhookError::Client(err.to_string()))?;
        let (queue, bodies) = mpsc::channel(QUEUE_LEN);
        runtime.spawn(deliver_all(client, target, clock, bodies));
        Ok(Webhook { queue })
    }

    /// Queues one transition; never waits (a full queue drops it, with a log line).
    pub fn send(&self, transition: &Transition) {
        let body = WebhookBody {
            change: transition.change,
            alert: &transition.alert,
        };
        let bytes = match serde_json::to_vec(&body) {
            Ok(bytes) => bytes,
            Err(err) => {
                tracing::warn!(alert = transition.alert.id, %err, "alert webhook: cannot encode the alert");
                return;
            }
        };
        if self.queue.try_send(bytes).is_err() {
            tracing::warn!(
                alert = transition.alert.id,
                "alert webhook: {QUEUE_LEN} deliveries waiting, this one is dropped"
            );
        }
    }
}

async fn deliver_all(
    client: reqwest::Client,
    target: WebhookTarget,
    clock: Arc<dyn Clock>,
    mut bodies: mpsc::Receiver<Vec<u8>>,
) {
    while let Some(body) = bodies.recv().await {
        deliver(&client, &target, clock.as_ref(), body).await;
    }
}

async fn deliver(
    client: &reqwest::Client,
    target: &WebhookTarget,
    clock: &dyn Clock,
    body: Vec<u8>,
) {
    let mut backoff = target.retry.first_backoff;
    for attempt in 1..=target.retry.attempts.max(1) {
        let timestamp = clock.now();
        let signature = sign(&target.secret, timestamp, &body);
        let sent = client
            .post(target.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, signature)
            .body(body.clone())
            .send()
            .await;
        let failure = match sent {
            Ok(response) if response.status().is_success() => return,
            Ok(response) => format!("answered {}", response.status()),
            // Without the URL: the error would repeat it.
            Err(err) => err.without_url().to_string(),
        };
        tracing::warn!(
            host = target.url.host_str().unwrap_or(""),
            attempt,
            attempts = target.retry.attempts,
            %failure,
            "alert webhook delivery failed"
        );
        if attempt < target.retry.attempts {
            tokio::time::sleep(backoff).await;
            backoff = backoff.saturating_mul(2);
        }
    }
    tracing::warn!(
        host = target.url.host_str().unwrap_or(""),
        "alert webhook: giving up on one delivery after {} attempts",
        target.retry.attempts
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_covers_timestamp_and_body() {
        let signature = sign(b"s3cret", 1_800_000_000, b"{\"a\":1}");
        assert!(signature.starts_with("sha256="));
        assert_eq!(signature.len(), "sha256=".len() + 64);
        assert!(verify(b"s3cret", 1_800_000_000, b"{\"a\":1}", &signature));
        assert!(!verify(b"wrong", 1_800_000_000, b"{\"a\":1}", &signature));
        assert!(!verify(b"s3cret", 1_800_000_001, b"{\"a\":1}", &signature));
        assert!(!verify(b"s3cret", 1_800_000_000, b"{\"a\":2}", &signature));
        assert!(!verify(b"s3cret", 1_800_000_000, b"{\"a\":1}", "sha256=zz"));
        assert!(!verify(
            b"s3cret",
            1_800_000_000,
            b"{\"a\":1}",
            &signature[7..]
        ));
    }

    /// The MAC is plain HMAC-SHA256 (RFC 4231 test case 2 checks the crate) of the bytes
    /// `"<timestamp>.<body>"`.
    #[test]
    fn hmac_is_rfc_4231_hmac_sha256_of_timestamp_dot_body() {
        let mut rfc = <Hmac<Sha256> as Mac>::new_from_slice(b"Jefe").unwrap();
        rfc.update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(rfc.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let mut plain = <Hmac<Sha256> as Mac>::new_from_slice(b"Jefe").unwrap();
        plain.update(b"12.x");
        assert_eq!(
            sign(b"Jefe", 12, b"x"),
            format!("sha256={}", hex::encode(plain.finalize().into_bytes()))
        );
    }

    #[test]
    fn secret_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "abc\n").unwrap();
        assert_eq!(read_secret(&path).unwrap(), b"abc");
        std::fs::write(&path, "\n").unwrap();
        assert!(matches!(
            read_secret(&path),
            Err(WebhookError::SecretEmpty { .. })
        ));
        std::fs::write(&path, vec![b'a'; MAX_SECRET_BYTES + 1]).unwrap();
        assert!(matches!(
            read_secret(&path),
            Err(WebhookError::SecretTooLong { .. })
        ));
        assert!(matches!(
            read_secret(&dir.path().join("absent")),
            Err(WebhookError::SecretUnreadable { .. })
        ));
    }
}
