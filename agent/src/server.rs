//! The accept loop and the per-connection loop: glue between the socket and the pipeline.
//!
//! Before a single byte is read, the peer's credentials come from the kernel (`SO_PEERCRED`);
//! a refused peer gets one `PeerRefused` error frame and the connection is closed. Each admitted
//! connection gets its own thread, with at most [`ServerConfig::max_connections`] at once (more get
//! `Busy` and are closed). A frame must arrive completely within [`ServerConfig::frame_timeout`]
//! of the moment the server starts waiting for it, so a slow sender (slowloris) or an idle
//! connection is dropped; responses are written with the same timeout.
//!
//! This module makes no decision about a request: it decodes, calls `pipeline::handle`, encodes.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nos_protocol::{
    Decoder, ErrorCode, FrameError, MAX_REQUEST_FRAME, MAX_RESPONSE_FRAME, PROTOCOL_VERSION,
    Request, Response, ResponseBody, decode, encode,
};

use crate::audit::Record;
use crate::pipeline::{self, Agent};
use crate::trust::{Peer, peer_of};

/// Default for [`ServerConfig::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 16;
/// Default for [`ServerConfig::frame_timeout`]: 10 s.
pub const DEFAULT_FRAME_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Connections served at once. Does not bound jobs, which outlive their connection.
    pub max_connections: usize,
    /// Time allowed to receive one whole request frame (idle time before it included) and to
    /// write one response. Does not bound how long a command runs (the rule's timeout does).
    pub frame_timeout: Duration,
}

/// Serves forever.
pub fn serve(
    listener: UnixListener,
    agent: Arc<Agent>,
    config: ServerConfig,
) -> std::io::Result<()> {
    let active = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(stream) => stream,
            Err(err) => {
                tracing::warn!(%err, "accept failed");
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let peer = match peer_of(&stream) {
            Ok(peer) => peer,
            Err(err) => {
                tracing::warn!(%err, "no peer credentials; closing");
                continue;
            }
        };
        if !agent.trust.peer_allowed(&peer) {
            refuse_peer(&agent, &peer, stream, &config);
            continue;
        }
        if active.fetch_add(1, Ordering::SeqCst) >= config.max_connections {
            active.fetch_sub(1, Ordering::SeqCst);
            tracing::warn!(uid = peer.uid, pid = peer.pid, "too many connections");
            send_error(stream, &config, ErrorCode::Busy, "too many connections");
            continue;
        }
        let agent = Arc::clone(&agent);
        let connection_active = Arc::clone(&active);
        let connection_config = config.clone();
        let spawned = std::thread::Builder::new()
            .name("conn".into())
            .spawn(move || {
                serve_connection(&agent, &peer, stream, &connection_config);
                connection_active.fetch_sub(1, Ordering::SeqCst);
            });
        if let Err(err) = spawned {
            active.fetch_sub(1, Ordering::SeqCst);
            tracing::error!(%err, "cannot spawn a connection thread");
        }
    }
    Ok(())
}

fn refuse_peer(agent: &Agent, peer: &Peer, stream: UnixStream, config: &ServerConfig) {
    let record = Record {
        uid: peer.uid,
        pid: peer.pid,
        token_id: None,
        request: serde_json::Value::Null,
        verdict: "refused",
        rule_id: None,
        detail: Some(format!(
            "peer uid {} gid {} may not connect",
            peer.uid, peer.gid
        )),
        outcome: None,
        exit_code: None,
        duration_ms: None,
    };
    if let Err(err) = agent.audit.append(&record) {
        tracing::error!(%err, "cannot write the audit log");
    }
    send_error(stream, config, ErrorCode::PeerRefused, "peer not allowed");
}

fn send_error(mut stream: UnixStream, config: &ServerConfig, code: ErrorCode, message: &str) {
    let _ = stream.set_write_timeout(Some(config.frame_timeout));
    let response = Response {
        version: PROTOCOL_VERSION,
        id: 0,
        body: ResponseBody::Error {
            code,
            message: message.into(),
        },
    };
    if let Ok(frame) = encode(&response, MAX_RESPONSE_FRAME) {
        let _ = stream.write_all(&frame);
    }
}

fn serve_connection(agent: &Agent, peer: &Peer, mut stream: UnixStream, config: &ServerConfig) {
    if stream
        .set_write_timeout(Some(config.frame_timeout))
        .is_err()
    {
        return;
    }
    let mut decoder = Decoder::new(MAX_REQUEST_FRAME);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let payload = match read_frame(&mut stream, &mut decoder, &mut buf, config.frame_timeout) {
            Ok(Some(payload)) => payload,
            Ok(None) => return,
            Err(ReadError::Frame(err)) => {
                tracing::warn!(uid = peer.uid, pid = peer.pid, %err, "bad frame; closing");
                send_error(stream, config, ErrorCode::BadFrame, &err.to_string());
                return;
            }
            Err(ReadError::Io(err)) => {
                tracing::debug!(uid = peer.uid, %err, "connection dropped");
                return;
            }
        };
        let (id, body) = match decode::<Request>(&payload) {
            Ok(request) => {
                let id = request.id;
                (id, pipeline::handle(agent, peer, request))
            }
            // The framing is intact, so the connection stays usable after a malformed message.
            Err(err) => (
                0,
                ResponseBody::Error {
                    code: ErrorCode::BadFrame,
                    message: err.to_string(),
                },
            ),
        };
        let response = Response {
            version: PROTOCOL_VERSION,
            id,
            body,
        };
        let frame = match encode(&response, MAX_RESPONSE_FRAME) {
            Ok(frame) => frame,
            Err(err) => {
                let body = ResponseBody::Error {
                    code: ErrorCode::Internal,
                    message: format!("response: {err}"),
                };
                match encode(
                    &Response {
                        version: PROTOCOL_VERSION,
                        id,
                        body,
                    },
                    MAX_RESPONSE_FRAME,
                ) {
                    Ok(frame) => frame,
                    Err(_) => return,
                }
            }
        };
        if stream.write_all(&frame).is_err() {
            return;
        }
    }
}

enum ReadError {
    Frame(FrameError),
    Io(std::io::Error),
}

/// Reads one whole frame within `timeout`; None on a clean end of stream between frames.
fn read_frame(
    stream: &mut UnixStream,
    decoder: &mut Decoder,
    buf: &mut [u8],
    timeout: Duration,
) -> Result<Option<Vec<u8>>, ReadError> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(payload) = decoder.poll_frame().map_err(ReadError::Frame)? {
            return Ok(Some(payload));
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(ReadError::Io(std::io::ErrorKind::TimedOut.into()));
        }
        stream
            .set_read_timeout(Some(remaining))
            .map_err(ReadError::Io)?;
        let want = decoder.wanted().min(buf.len());
        match stream.read(&mut buf[..want]) {
            Ok(0) => {
                decoder.handle_eof().map_err(ReadError::Frame)?;
                return Ok(None);
            }
            Ok(n_read) => decoder
                .handle_bytes(&buf[..n_read])
                .map_err(ReadError::Frame)?,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(ReadError::Io(err)),
        }
    }
}
