//! The accept loop and the per-connection loop: glue between the socket and the pipeline.
//!
//! Before a single byte is read, the peer's credentials come from the kernel (`SO_PEERCRED`);
//! a refused peer gets one `PeerRefused` error frame and the connection is closed. Each admitted
//! connection gets its own thread, with at most [`ServerConfig::max_connections`] at once. A frame
//! must arrive completely within [`ServerConfig::frame_timeout`] of the moment the server starts
//! waiting for it, so a slow sender (slowloris) or an idle connection is dropped; responses are
//! written with the same timeout.
//!
//! When every slot is taken, a new connection reclaims one instead of being refused: the
//! connection that has waited longest for a request and has never presented a valid token is shut
//! down. So an allowed peer that only connects (or trickles bytes) cannot keep nosd out by holding
//! every slot until the frame timeout; a connection that is running a request, or that has
//! presented the agent's token, is never reclaimed. Only when no slot is reclaimable does the new
//! connection get `Busy` and is closed.
//!
//! This module makes no decision about a request: it decodes, calls `pipeline::handle`, encodes.

use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nos_protocol::{
    Decoder, ErrorCode, FrameError, MAX_REQUEST_FRAME, MAX_RESPONSE_FRAME, PROTOCOL_VERSION,
    Request, Response, ResponseBody, decode, encode, encode_response,
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
    /// Connections served at once. Does not bound jobs, which outlive their connection. When
    /// every slot is taken, the longest-waiting connection without a valid token is reclaimed
    /// (see the module docs); `Busy` only when none is.
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
    let slots = Arc::new(Slots::new(config.max_connections));
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
        let Some(slot) = slots.admit(&stream) else {
            tracing::warn!(uid = peer.uid, pid = peer.pid, "too many connections");
            send_error(stream, &config, ErrorCode::Busy, "too many connections");
            continue;
        };
        let agent = Arc::clone(&agent);
        let connection_slots = Arc::clone(&slots);
        let connection_config = config.clone();
        let spawned = std::thread::Builder::new()
            .name("conn".into())
            .spawn(move || {
                serve_connection(
                    &agent,
                    &peer,
                    stream,
                    &connection_slots,
                    slot,
                    &connection_config,
                );
                connection_slots.release(slot);
            });
        if let Err(err) = spawned {
            slots.release(slot);
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

fn serve_connection(
    agent: &Agent,
    peer: &Peer,
    mut stream: UnixStream,
    slots: &Slots,
    slot: SlotId,
    config: &ServerConfig,
) {
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
        let decoded = decode::<Request>(&payload);
        let holds_token = decoded
            .as_ref()
            .is_ok_and(|request| agent.trust.authenticate(request.token.as_deref()).is_ok());
        // A reclaimed connection's request is dropped unanswered, as its peer was told by the
        // shutdown; from here on until the response is written the slot cannot be reclaimed.
        if !slots.start_request(slot, holds_token) {
            return;
        }
        let (id, body) = match decoded {
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
        let mut response = Response {
            version: PROTOCOL_VERSION,
            id,
            body,
        };
        // Captured output is shortened (in encoded bytes) until the frame fits.
        let frame = match encode_response(&mut response, MAX_RESPONSE_FRAME) {
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
        slots.wait_for_request(slot);
    }
}

/// Identifies one admitted connection in [`Slots`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SlotId(u64);

/// The connection slots: who holds one, and which of them may be reclaimed.
struct Slots {
    capacity: usize,
    table: Mutex<SlotTable>,
}

struct SlotTable {
    next_id: u64,
    entries: Vec<SlotEntry>,
}

struct SlotEntry {
    id: SlotId,
    /// Since when the connection waits for a request; None while it runs one.
    waiting_since: Option<Instant>,
    /// It has presented a valid token, so it is never reclaimed.
    holds_token: bool,
    /// A handle to shut the connection down when it is reclaimed.
    stream: UnixStream,
}

impl Slots {
    fn new(capacity: usize) -> Slots {
        Slots {
            capacity,
            table: Mutex::new(SlotTable {
                next_id: 0,
                entries: Vec::new(),
            }),
        }
    }

    /// Takes a slot for `stream`, reclaiming the longest-waiting connection without a token when
    /// every slot is taken; None when no slot is free or reclaimable.
    fn admit(&self, stream: &UnixStream) -> Option<SlotId> {
        let handle = stream.try_clone().ok()?;
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        if table.entries.len() >= self.capacity {
            let reclaim_idx = table
                .entries
                .iter()
                .enumerate()
                .filter(|(_, entry)| !entry.holds_token)
                .filter_map(|(entry_idx, entry)| Some((entry_idx, entry.waiting_since?)))
                .min_by_key(|(_, since)| *since)
                .map(|(entry_idx, _)| entry_idx)?;
            let reclaimed = table.entries.swap_remove(reclaim_idx);
            tracing::warn!(
                slot = reclaimed.id.0,
                "all slots taken; reclaiming an idle connection"
            );
            let _ = reclaimed.stream.shutdown(Shutdown::Both);
        }
        let id = SlotId(table.next_id);
        table.next_id += 1;
        table.entries.push(SlotEntry {
            id,
            waiting_since: Some(Instant::now()),
            holds_token: false,
            stream: handle,
        });
        Some(id)
    }

    /// Marks the slot as running a request; false when it was reclaimed meanwhile.
    fn start_request(&self, slot: SlotId, holds_token: bool) -> bool {
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        match table.entries.iter_mut().find(|entry| entry.id == slot) {
            Some(entry) => {
                entry.waiting_since = None;
                entry.holds_token |= holds_token;
                true
            }
            None => false,
        }
    }

    /// Marks the slot as waiting for its next request.
    fn wait_for_request(&self, slot: SlotId) {
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = table.entries.iter_mut().find(|entry| entry.id == slot) {
            entry.waiting_since = Some(Instant::now());
        }
    }

    /// Frees the slot (a no-op when it was reclaimed).
    fn release(&self, slot: SlotId) {
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        table.entries.retain(|entry| entry.id != slot);
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
