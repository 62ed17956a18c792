//! The HTTP server loop: accepts TCP connections and serves the router over HTTP/1.1 with
//! limits on slow and greedy clients, which `axum::serve` does not have.
//!
//! * A request's header must arrive within [`ServeLimits::header_read_timeout`], so a client
//!   trickling header bytes (slowloris) is cut off.
//! * A request's body must arrive within [`ServeLimits::body_read_timeout`] of its header; when
//!   the deadline passes, reading the body fails and the handler answers 400.
//! * One peer address holds at most [`ServeLimits::max_connections_per_address`] connections;
//!   more are closed at once without a byte read.
//!
//! This module knows nothing of routes or state: it takes a finished [`Router`]. The descriptor
//! limit itself is the unit's (`LimitNOFILE=`), and the per-address cap does not bound the total
//! number of connections from many addresses.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::ConnectInfo;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::config::HttpConfig;

/// Default for [`ServeLimits::header_read_timeout`]: 10 s.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default for [`ServeLimits::body_read_timeout`]: 30 s.
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Default for [`ServeLimits::max_connections_per_address`]: 256 (a reverse proxy on the same
/// host sends everything from one address, so this is well above what one browser opens).
pub const DEFAULT_MAX_CONNECTIONS_PER_ADDRESS: usize = 256;
/// How long a graceful shutdown waits for open connections (SSE streams never end by themselves)
/// before it returns and drops them.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The limits [`serve`] applies to every connection.
#[derive(Debug, Clone, Copy)]
pub struct ServeLimits {
    /// Time to receive one request's whole header, counted by hyper from the moment it starts
    /// reading that header. When it passes, the connection is closed (after a 408 where hyper can
    /// still send one). Does not bound the body or the response.
    pub header_read_timeout: Duration,
    /// Time to receive one request's whole body, from the moment its header was read. When it
    /// passes, the body read fails (the handler answers 400) and the connection is closed. Does not
    /// bound the response (SSE streams are long-lived by design).
    pub body_read_timeout: Duration,
    /// Connections open at once from one peer IP address (the TCP peer, not a forwarded client
    /// address: behind a proxy this bounds the proxy). Further ones are closed at once.
    pub max_connections_per_address: usize,
}

impl ServeLimits {
    /// The limits configured in `[http]`.
    pub fn from_config(http: &HttpConfig) -> ServeLimits {
        ServeLimits {
            header_read_timeout: Duration::from_millis(http.header_read_timeout_ms),
            body_read_timeout: Duration::from_millis(http.body_read_timeout_ms),
            max_connections_per_address: http.max_connections_per_address,
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets open connections finish
/// their current request for up to [`SHUTDOWN_GRACE`].
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()>,
) {
    let per_address = Arc::new(AddressCounts::default());
    let (stop_sender, stop_receiver) = tokio::sync::watch::channel(());
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // EMFILE and friends: back off instead of spinning on the same error.
                    tracing::warn!(%err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(connection_guard) =
            AddressCounts::enter(&per_address, peer.ip(), limits.max_connections_per_address)
        else {
            tracing::warn!(%peer, "too many connections from one address; closing");
            drop(stream);
            continue;
        };
        let router = router.clone();
        let mut stop = stop_receiver.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
                let mut request =
                    request.map(|body| DeadlineBody::new(body, limits.body_read_timeout));
                request.extensions_mut().insert(ConnectInfo(peer));
                router.clone().oneshot(request)
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                _ = stop.changed() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(err) = result {
                tracing::debug!(%peer, %err, "connection ended with an error");
            }
            drop(connection_guard);
        });
    }
    drop(stop_receiver);
    let _ = stop_sender.send(());
    if tokio::time::timeout(SHUTDOWN_GRACE, stop_sender.closed())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the shutdown grace; dropping them");
    }
}

/// Open connections per peer address.
#[derive(Default)]
struct AddressCounts {
    counts: Mutex<HashMap<IpAddr, usize>>,
}

/// One counted connection; leaving drops the count.
struct AddressGuard {
    counts: Arc<AddressCounts>,
    address: IpAddr,
}

impl AddressCounts {
    fn enter(counts: &Arc<AddressCounts>, address: IpAddr, max: usize) -> Option<AddressGuard> {
        let mut table = counts.counts.lock().unwrap_or_else(|p| p.into_inner());
        let n_open = table.entry(address).or_insert(0);
        if *n_open >= max {
            return None;
        }
        *n_open += 1;
        Some(AddressGuard {
            counts: Arc::clone(counts),
            address,
        })
    }
}

impl Drop for AddressGuard {
    fn drop(&mut self) {
        let mut table = self.counts.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n_open) = table.get_mut(&self.address) {
            *n_open = n_open.saturating_sub(1);
            if *n_open == 0 {
                table.remove(&self.address);
            }
        }
    }
}

/// Why a request body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyReadError {
    #[error("request body not received within {0:?}")]
    Timeout(Duration),
    #[error("reading the request body: {0}")]
    Read(#[from] hyper::Error),
}

/// A request body that fails once its deadline has passed.
struct DeadlineBody {
    inner: Incoming,
    timeout: Duration,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl DeadlineBody {
    fn new(inner: Incoming, timeout: Duration) -> DeadlineBody {
        DeadlineBody {
            inner,
            timeout,
            deadline: Box::pin(tokio::time::sleep(timeout)),
        }
    }
}

impl Body for DeadlineBody {
    type Data = Bytes;
    type Error = BodyReadError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyReadError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                Poll::Ready(frame.map(|frame| frame.map_err(BodyReadError::from)))
            }
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(BodyReadError::Timeout(this.timeout)))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
