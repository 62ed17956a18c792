//! The socket protocol between nos-agent and its callers (nosd, nosctl): versioned, typed
//! messages and a sans-IO length-prefixed JSON codec.
//!
//! **API Boundary.** Every type here is an IPC contract: a field renamed here breaks a deployed
//! nosd talking to a newer agent. New request kinds are added as new variants; a change of meaning
//! bumps [`PROTOCOL_VERSION`].
//!
//! This crate never reads or writes a socket, never spawns and never reads the clock: the agent's
//! server and the host's client move bytes in and out of a [`Decoder`] and call [`encode`].
//!
//! Wire format: each message is one frame, a 4-byte big-endian payload length followed by that
//! many bytes of UTF-8 JSON. A frame longer than the receiver's limit is refused as soon as its
//! header arrives, before any of its payload is buffered.
//!
//! There is deliberately no "write this file" and no "run this string" request: commands are argv
//! vectors judged by the allowlist, and managed files are typed [`ManagedRequest`]s.

#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// Whether a managed entry is to exist or to be gone: the wire form of
/// [`nos_allowlist::ManagedAction`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ManagedAction {
    Ensure,
    Remove,
}

impl From<ManagedAction> for nos_allowlist::ManagedAction {
    fn from(action: ManagedAction) -> Self {
        match action {
            ManagedAction::Ensure => nos_allowlist::ManagedAction::Ensure,
            ManagedAction::Remove => nos_allowlist::ManagedAction::Remove,
        }
    }
}

/// A managed-file change as it crosses the socket: the wire form of
/// [`nos_allowlist::ManagedRequest`], which the agent judges. Its JSON is
/// `{"kind": "fstab_entry", "uuid": …, "target": …, "options": …}`; an unknown kind or field is
/// a malformed frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ManagedRequest {
    MountDir {
        path: String,
    },
    KeyFile {
        path: String,
    },
    FstabEntry {
        uuid: String,
        target: String,
        options: String,
    },
    CrypttabEntry {
        name: String,
        device_uuid: String,
        key: String,
    },
}

impl From<ManagedRequest> for nos_allowlist::ManagedRequest {
    fn from(request: ManagedRequest) -> Self {
        use nos_allowlist::ManagedRequest as Grammar;
        match request {
            ManagedRequest::MountDir { path } => Grammar::MountDir { path },
            ManagedRequest::KeyFile { path } => Grammar::KeyFile { path },
            ManagedRequest::FstabEntry {
                uuid,
                target,
                options,
            } => Grammar::FstabEntry {
                uuid,
                target,
                options,
            },
            ManagedRequest::CrypttabEntry {
                name,
                device_uuid,
                key,
            } => Grammar::CrypttabEntry {
                name,
                device_uuid,
                key,
            },
        }
    }
}

/// The protocol version this library speaks. A request with another version gets
/// [`ErrorCode::UnsupportedVersion`] and the connection stays usable.
pub const PROTOCOL_VERSION: u32 = 2;

/// Length of the frame header: a big-endian `u32` payload length.
pub const HEADER_LEN: usize = 4;

/// Largest request payload the agent accepts, in bytes (64 KiB).
///
/// A larger header is refused before its payload is read; the agent answers with a
/// [`ErrorCode::BadFrame`] error and closes the connection, because it cannot resynchronise on a
/// stream whose next bytes it refused to read. It bounds one frame only, not the number of frames
/// on a connection (the server's read timeout and connection limit do that).
pub const MAX_REQUEST_FRAME: usize = 64 * 1024;

/// Largest response payload a client accepts, in bytes (16 MiB).
///
/// Responses carry captured command output, which the agent caps per rule (`max_stdout`,
/// `max_stderr`, 1 MiB and 64 KiB by default, in raw bytes). JSON escaping can multiply output
/// by up to six, so the agent encodes responses with [`encode_response`], which shortens the
/// captured outputs (counted in encoded bytes, each cut reported in `truncated_bytes`) until the
/// frame fits. Only a response that is too large without any output is refused.
pub const MAX_RESPONSE_FRAME: usize = 16 * 1024 * 1024;

/// Most steps one [`RequestBody::RunSteps`] may carry. More is a [`ErrorCode::TooManySteps`].
pub const MAX_STEPS: usize = 32;

/// What went wrong with a frame: the agent's (or client's) own failures, not verdicts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {len} bytes exceeds the limit of {limit} bytes")]
    TooLarge { len: usize, limit: usize },
    #[error("empty frame")]
    Empty,
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("connection closed inside a frame ({have} of {want} bytes received)")]
    Truncated { have: usize, want: usize },
}

/// A sans-IO frame decoder: push bytes with [`Decoder::handle_bytes`], take complete frames with
/// [`Decoder::poll_frame`], and report the end of the stream with [`Decoder::handle_eof`].
///
/// After an error the decoder is poisoned: every later call returns the same error (as rustls
/// does), so a caller cannot accidentally resume on a desynchronised stream.
#[derive(Debug)]
pub struct Decoder {
    limit: usize,
    buf: Vec<u8>,
    error: Option<FrameError>,
}

impl Decoder {
    /// A decoder that refuses frames whose payload exceeds `limit` bytes.
    pub fn new(limit: usize) -> Decoder {
        Decoder {
            limit,
            buf: Vec::new(),
            error: None,
        }
    }

    /// How many more bytes complete the frame being received (at least 1). A caller that reads
    /// at most this many bytes at a time never makes the decoder buffer more than one frame.
    pub fn wanted(&self) -> usize {
        match self.header_len() {
            None => HEADER_LEN - self.buf.len(),
            Some(len) => (HEADER_LEN + len).saturating_sub(self.buf.len()).max(1),
        }
    }

    /// Buffers received bytes. Fails as soon as a header announces an oversized or empty frame.
    pub fn handle_bytes(&mut self, bytes: &[u8]) -> Result<(), FrameError> {
        self.check_poisoned()?;
        // Never hold more than one maximal frame plus one maximal follower, whatever the caller
        // pushes at once.
        let hard_cap = 2 * (HEADER_LEN + self.limit);
        if self.buf.len().saturating_add(bytes.len()) > hard_cap {
            return self.poison(FrameError::TooLarge {
                len: self.buf.len().saturating_add(bytes.len()),
                limit: self.limit,
            });
        }
        self.buf.extend_from_slice(bytes);
        self.check_header()
    }

    /// Takes the next complete frame's payload, if one has fully arrived.
    pub fn poll_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        self.check_poisoned()?;
        self.check_header()?;
        let Some(len) = self.header_len() else {
            return Ok(None);
        };
        if self.buf.len() < HEADER_LEN + len {
            return Ok(None);
        }
        let payload = self.buf[HEADER_LEN..HEADER_LEN + len].to_vec();
        self.buf.drain(..HEADER_LEN + len);
        Ok(Some(payload))
    }

    /// The peer closed the stream: fine between frames, an error inside one.
    pub fn handle_eof(&mut self) -> Result<(), FrameError> {
        self.check_poisoned()?;
        if self.buf.is_empty() {
            return Ok(());
        }
        let want = self.header_len().map_or(HEADER_LEN, |len| HEADER_LEN + len);
        self.poison(FrameError::Truncated {
            have: self.buf.len(),
            want,
        })
    }

    fn header_len(&self) -> Option<usize> {
        let header: [u8; HEADER_LEN] = self.buf.get(..HEADER_LEN)?.try_into().ok()?;
        Some(u32::from_be_bytes(header) as usize)
    }

    fn check_header(&mut self) -> Result<(), FrameError> {
        match self.header_len() {
            Some(0) => self.poison(FrameError::Empty),
            Some(len) if len > self.limit => self.poison(FrameError::TooLarge {
                len,
                limit: self.limit,
            }),
            _ => Ok(()),
        }
    }

    fn check_poisoned(&self) -> Result<(), FrameError> {
        match &self.error {
            Some(err) => Err(err.clone()),
            None => Ok(()),
        }
    }

    fn poison<T>(&mut self, err: FrameError) -> Result<T, FrameError> {
        self.buf = Vec::new();
        self.error = Some(err.clone());
        Err(err)
    }
}

/// Serialises `message` into one frame (header + JSON), refusing payloads over `limit` bytes.
pub fn encode<T: Serialize>(message: &T, limit: usize) -> Result<Vec<u8>, FrameError> {
    let payload =
        serde_json::to_vec(message).map_err(|err| FrameError::Malformed(err.to_string()))?;
    if payload.is_empty() {
        return Err(FrameError::Empty);
    }
    if payload.len() > limit || u32::try_from(payload.len()).is_err() {
        return Err(FrameError::TooLarge {
            len: payload.len(),
            limit,
        });
    }
    let mut frame = Vec::with_capacity(HEADER_LEN + payload.len());
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(&payload);
    Ok(frame)
}

/// Room kept per captured output for the digits `truncated_bytes` gains when it is cut.
const TRUNCATED_DIGITS_SLACK: usize = 24;

/// Encodes a response within `limit`, as [`encode`] does, except that a response whose captured
/// outputs make it too large has those outputs shortened to fair shares of the room left by the
/// rest of the message (an output smaller than its share is kept whole), counted in JSON-encoded
/// bytes. Fails only when the message is
/// too large even with every output empty.
pub fn encode_response(response: &mut Response, limit: usize) -> Result<Vec<u8>, FrameError> {
    match encode(&*response, limit) {
        Err(FrameError::TooLarge { .. }) => {}
        other => return other,
    }
    let mut outputs = response.body.captured_mut();
    let n_outputs = outputs.len();
    let texts: Vec<String> = outputs
        .iter_mut()
        .map(|captured| std::mem::take(&mut captured.text))
        .collect();
    drop(outputs);
    let without_outputs = serde_json::to_vec(&*response)
        .map_err(|err| FrameError::Malformed(err.to_string()))?
        .len();
    let mut outputs = response.body.captured_mut();
    for (captured, text) in outputs.iter_mut().zip(texts) {
        captured.text = text;
    }
    let room = limit
        .saturating_sub(without_outputs)
        .saturating_sub(n_outputs * TRUNCATED_DIGITS_SLACK);
    // Fair shares, smallest first: an output that fits in its share is kept whole and leaves
    // the rest of its share to the larger ones.
    let mut by_size: Vec<(usize, usize)> = outputs
        .iter()
        .map(|captured| captured.text.chars().map(json_escaped_len).sum())
        .enumerate()
        .collect();
    by_size.sort_by_key(|&(_, n_encoded)| n_encoded);
    let mut room_left = room;
    for (n_done, (output_idx, n_encoded)) in by_size.into_iter().enumerate() {
        let share = room_left / (n_outputs - n_done);
        let kept = n_encoded.min(share);
        outputs[output_idx].cap_encoded(kept);
        room_left -= kept;
    }
    drop(outputs);
    encode(&*response, limit)
}

/// Bytes `c` takes inside a JSON string as serde_json writes it: `"`, `\` and the short
/// escapes take 2, other control characters 6 (`\u00XX`), everything else its UTF-8 length.
pub fn json_escaped_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
        '\u{0}'..='\u{1f}' => 6,
        _ => c.len_utf8(),
    }
}

impl Captured {
    /// Shortens `text` at a character boundary so that it JSON-encodes in at most `max_encoded`
    /// bytes (quotes not counted); the bytes cut off are added to `truncated_bytes`.
    pub fn cap_encoded(&mut self, max_encoded: usize) {
        let mut n_encoded = 0;
        let mut keep = self.text.len();
        for (byte_idx, c) in self.text.char_indices() {
            n_encoded += json_escaped_len(c);
            if n_encoded > max_encoded {
                keep = byte_idx;
                break;
            }
        }
        let n_cut = self.text.len() - keep;
        self.text.truncate(keep);
        self.truncated_bytes = self.truncated_bytes.saturating_add(n_cut as u64);
    }
}

impl ResponseBody {
    /// Every captured output the response carries, in order.
    fn captured_mut(&mut self) -> Vec<&mut Captured> {
        let results: Vec<&mut StepResult> = match self {
            ResponseBody::Ran { result }
            | ResponseBody::Job {
                state: JobState::Finished { result },
                ..
            } => vec![result],
            ResponseBody::Steps { results, .. } => results.iter_mut().collect(),
            _ => Vec::new(),
        };
        results
            .into_iter()
            .flat_map(|result| [&mut result.stdout, &mut result.stderr])
            .collect()
    }
}

/// Parses one frame's payload. Unknown fields and unknown variants are errors, not ignored.
pub fn decode<T: DeserializeOwned>(payload: &[u8]) -> Result<T, FrameError> {
    serde_json::from_slice(payload).map_err(|err| FrameError::Malformed(err.to_string()))
}

/// One request frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// Must equal [`PROTOCOL_VERSION`].
    pub version: u32,
    /// Chosen by the client and echoed in the response.
    pub id: u64,
    /// The per-agent token (`<token id>.<secret>`), required on everything but
    /// [`RequestBody::Register`].
    #[serde(default)]
    pub token: Option<String>,
    pub body: RequestBody,
}

/// What the client asks for.
///
/// nosd sends `Register`, `Run`, `JobStatus`, `Facts` and `Managed`. `Rotate`, `RunSteps` and
/// `Cancel` are the administrator's, through `nosctl agent` (token rotation by hand, a batch of
/// argvs judged all-or-nothing, stopping a job); each is judged exactly like the others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum RequestBody {
    /// Trade the bootstrap token for a fresh per-agent token; revokes any earlier per-agent token.
    Register { bootstrap_token: String },
    /// Replace the presented per-agent token by a fresh one; the old one stops working at once.
    /// (`nosctl agent rotate`.)
    Rotate,
    /// Check one argv against the allowlist and run it. A rule marked as a job answers
    /// [`ResponseBody::JobStarted`] at once instead of waiting.
    Run { argv: Vec<String> },
    /// Check every step first (any rejection: nothing runs), then run them in order, stopping at
    /// the first failure. Job rules run inline here: the response waits for them.
    /// (`nosctl agent steps`; nosd runs a plan step by step with `Run`, to record each.)
    RunSteps { steps: Vec<Vec<String>> },
    /// The state of a job started by [`RequestBody::Run`].
    JobStatus { job: u64 },
    /// Terminate a running job's process group (SIGTERM, then SIGKILL after its grace period).
    /// (`nosctl agent cancel`.)
    Cancel { job: u64 },
    /// Everything the host needs to build the planners' facts, in one round trip: the output of
    /// the read-only fact commands (`nos_machine::fact_commands`) and the kernel files the host cannot
    /// see from its own namespace, all as raw text. The host parses it, once.
    Facts,
    /// A typed change to a file the agent manages, judged by the allowlist's `[[managed]]` rules
    /// (see [`ManagedRequest`]): ensure or remove a mount directory, a key file, an fstab or
    /// crypttab entry.
    Managed {
        action: ManagedAction,
        request: ManagedRequest,
    },
}

/// One response frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Response {
    pub version: u32,
    /// The request's id (0 when the request could not be parsed).
    pub id: u64,
    pub body: ResponseBody,
}

/// The agent's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ResponseBody {
    /// A new per-agent token. Only its hash is kept by the agent: this is the one time it is shown.
    Token { token_id: String, token: String },
    /// A step ran to completion (successfully or not: see [`StepResult::outcome`]).
    Ran { result: StepResult },
    /// A job rule was accepted and started.
    JobStarted { job: u64, rule_id: String },
    /// Results of [`RequestBody::RunSteps`], in order; steps after a failure are absent.
    /// `rejection` is set when a step failed its exec-time checks (the steps before it ran).
    Steps {
        results: Vec<StepResult>,
        completed: bool,
        rejection: Option<Rejection>,
    },
    /// A job's state.
    Job { job: u64, state: JobState },
    /// Cancellation was requested; poll [`RequestBody::JobStatus`] for the end.
    Cancelling { job: u64 },
    /// Gathered facts.
    Facts { facts: Facts },
    /// A managed file was changed (or already had the requested content).
    Managed {
        rule_id: String,
        path: String,
        changed: bool,
        backup: Option<String>,
    },
    /// The request was judged and refused: by the allowlist, or by an exec-time check.
    Rejected { rejection: Rejection },
    /// The request could not be handled at all.
    Error { code: ErrorCode, message: String },
}

/// Why a request was refused. Static and exec-time rejections have the same shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rejection {
    /// Which step of a [`RequestBody::RunSteps`] (None for single requests).
    pub step_idx: Option<usize>,
    /// Which argv token (0 = program), when one token is to blame.
    pub token_idx: Option<usize>,
    pub stage: RejectStage,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectStage {
    /// The allowlist matched no rule (pure check on the argv).
    Allowlist,
    /// The argv matched, but the filesystem disagreed (device not a block device, symlinked
    /// mount path, binary hash mismatch, …).
    ExecTime,
}

/// What happened to one command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepResult {
    pub rule_id: String,
    /// What actually ran: the absolute program followed by the rendered arguments.
    pub argv: Vec<String>,
    pub outcome: Outcome,
    /// The exit code, when the process exited on its own.
    pub exit_code: Option<i32>,
    /// The signal that ended the process, when one did.
    pub signal: Option<i32>,
    /// The rule's name for the exit code (`"ok"` for 0, e.g. `"running"` for balance status 1).
    pub state: Option<String>,
    pub stdout: Captured,
    pub stderr: Captured,
    pub duration_ms: u64,
}

impl StepResult {
    pub fn succeeded(&self) -> bool {
        self.outcome == Outcome::Ok
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Exit code 0 or one the rule names as a non-failure state.
    Ok,
    /// Any other exit code, or death by a signal the agent did not send.
    Failed,
    /// The rule's timeout expired and the process group was killed.
    TimedOut,
    /// A cancel request killed the process group.
    Cancelled,
    /// The program could not be started at all.
    SpawnFailed,
}

/// Captured output of one stream, capped per rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Captured {
    /// The kept bytes, decoded as UTF-8 (invalid sequences replaced, see `lossy`).
    pub text: String,
    /// Bytes the program wrote beyond the cap and the agent discarded. Never silently zero.
    pub truncated_bytes: u64,
    /// Whether invalid UTF-8 was replaced by U+FFFD.
    pub lossy: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case", deny_unknown_fields)]
pub enum JobState {
    Running { rule_id: String, elapsed_ms: u64 },
    Finished { result: StepResult },
}

/// The raw material of the facts, gathered by the agent in one round trip. Every text is what the
/// tool printed or the kernel file held, verbatim (capped at [`MAX_FACT_TEXT`] bytes); the host
/// parses each with the one parser for that tool and decides what is unknown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Facts {
    /// `nos_machine::fact_commands::LSBLK_ARGV`'s JSON (tree form, children nested); without it the
    /// agent answers [`ErrorCode::FactUnavailable`] instead.
    pub lsblk: String,
    /// `blkid -p -o export` of every block device the allowlist lets the agent probe, one call
    /// per device (`nos_machine::fact_commands::blkid_probe_argv`); a device left out was not
    /// looked at, which the host tells apart from "looked at, nothing found".
    pub probes: Vec<Probe>,
    /// `nos_machine::fact_commands::BTRFS_SHOW_ARGV`'s output.
    pub btrfs_show: FactText,
    /// The agent's `/proc/self/mountinfo` (its mount namespace is where pools are mounted).
    pub mountinfo: FactText,
    /// `/proc/swaps`.
    pub swaps: FactText,
    /// The health readings of every mounted btrfs filesystem whose mount path the allowlist's
    /// read-only pool rules accept (one per filesystem, at most [`MAX_POOL_READINGS`]). Absent
    /// from an older agent's answer, which reads as "none read".
    #[serde(default)]
    pub pools: Vec<PoolReadings>,
}

/// Most entries in [`Facts::pools`]; the agent reads no more filesystems than this.
pub const MAX_POOL_READINGS: usize = 64;

/// The raw health readings of one mounted btrfs filesystem, each verbatim or why there is none;
/// a command that failed is recorded here and never fails the whole facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolReadings {
    /// Where it is mounted, as the agent's mount table says (the path the commands were given).
    pub mount_path: String,
    /// `nos_machine::fact_commands::device_stats_argv`'s JSON.
    pub device_stats: FactText,
    /// `nos_machine::fact_commands::scrub_status_argv`'s text.
    pub scrub_status: FactText,
    /// `nos_machine::fact_commands::subvolume_list_argv`'s text: the pool's shares and
    /// snapshots. Absent from an older agent's answer, which reads as "not read".
    #[serde(default = "FactText::not_read")]
    pub subvolumes: FactText,
}

/// One device's `blkid -p` output, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Probe {
    /// `/dev/<kname>`.
    pub device: String,
    pub output: FactText,
}

/// Most bytes of any one text in [`Facts`]; a longer one is [`FactText::Unavailable`].
pub const MAX_FACT_TEXT: usize = 2 << 20;

/// One fact's raw text, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case", deny_unknown_fields)]
pub enum FactText {
    Text { text: String },
    Unavailable { reason: String },
}

impl From<Result<String, String>> for FactText {
    /// The text, or why there is none.
    fn from(result: Result<String, String>) -> FactText {
        match result {
            Ok(text) => FactText::Text { text },
            Err(reason) => FactText::Unavailable { reason },
        }
    }
}

impl FactText {
    /// What a field an older agent did not send reads as.
    pub fn not_read() -> FactText {
        FactText::Unavailable {
            reason: "not read by this agent".into(),
        }
    }

    /// The text, or the reason it is missing.
    pub fn text(&self) -> Result<&str, &str> {
        match self {
            FactText::Text { text } => Ok(text),
            FactText::Unavailable { reason } => Err(reason),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame was oversized, empty or not a valid request.
    BadFrame,
    UnsupportedVersion,
    /// Missing, unknown, revoked or wrong token.
    Unauthenticated,
    /// Bootstrap token wrong, or registration disabled by configuration.
    RegistrationRefused,
    TooManySteps,
    UnknownJob,
    /// Too many connections or running jobs; retry later.
    Busy,
    /// The peer's uid/gid (from the kernel) may not talk to the agent.
    PeerRefused,
    /// A fact was requested whose allowlist rule is missing or not read-only.
    FactUnavailable,
    /// The agent failed on its own side (IO, spawn machinery); details are in its log.
    Internal,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn step_result(stdout: &str, stderr: &str) -> StepResult {
        let captured = |text: &str| Captured {
            text: text.to_owned(),
            truncated_bytes: 0,
            lossy: false,
        };
        StepResult {
            rule_id: "test.rule".into(),
            argv: vec!["/usr/bin/head".into()],
            outcome: Outcome::Ok,
            exit_code: Some(0),
            signal: None,
            state: None,
            stdout: captured(stdout),
            stderr: captured(stderr),
            duration_ms: 1,
        }
    }

    /// Issue 15: 3 MiB of control bytes escape to 18 MiB, beyond the 16 MiB response frame.
    /// The response is shortened in encoded bytes and always fits, with the cut reported.
    #[test]
    fn issue_15_escaped_output_is_capped_to_fit_the_frame() {
        let control = "\u{1}".repeat(3 << 20);
        let mut response = Response {
            version: PROTOCOL_VERSION,
            id: 7,
            body: ResponseBody::Steps {
                results: vec![
                    step_result(&control, "short"),
                    step_result("plain", &control),
                ],
                completed: true,
                rejection: None,
            },
        };
        assert!(matches!(
            encode(&response, MAX_RESPONSE_FRAME),
            Err(FrameError::TooLarge { .. })
        ));
        let frame = encode_response(&mut response, MAX_RESPONSE_FRAME).unwrap();
        assert!(frame.len() - HEADER_LEN <= MAX_RESPONSE_FRAME);
        let decoded: Response = decode(&frame[HEADER_LEN..]).unwrap();
        assert_eq!(decoded, response);
        let ResponseBody::Steps { results, .. } = decoded.body else {
            panic!("not steps")
        };
        for captured in results
            .iter()
            .flat_map(|result| [&result.stdout, &result.stderr])
        {
            let original = if captured.text.starts_with('\u{1}') || captured.truncated_bytes > 0 {
                control.len()
            } else {
                captured.text.len()
            };
            assert_eq!(
                captured.text.len() as u64 + captured.truncated_bytes,
                original as u64
            );
        }
        // Short outputs are shortened only as far as their share demands: not at all.
        assert_eq!(results[0].stderr.text, "short");
        assert_eq!(results[1].stdout.text, "plain");
        assert!(results[0].stdout.truncated_bytes > 0);
        // A response that fits is encoded exactly as `encode` does.
        let mut small = Response {
            version: PROTOCOL_VERSION,
            id: 8,
            body: ResponseBody::Ran {
                result: step_result("hello\n", ""),
            },
        };
        assert_eq!(
            encode_response(&mut small, MAX_RESPONSE_FRAME).unwrap(),
            encode(&small, MAX_RESPONSE_FRAME).unwrap()
        );
    }

    proptest! {
        /// The encoded-length count agrees with serde_json's own encoding of any text.
        #[test]
        fn escaped_len_matches_serde_json(text in "\\PC*|[\\x00-\\x20\"\\\\]{0,40}") {
            let counted: usize = text.chars().map(json_escaped_len).sum();
            prop_assert_eq!(counted, serde_json::to_string(&text).unwrap().len() - 2);
            let mut captured = Captured { text: text.clone(), truncated_bytes: 0, lossy: false };
            captured.cap_encoded(counted / 2);
            let kept: usize = captured.text.chars().map(json_escaped_len).sum();
            prop_assert!(kept <= counted / 2);
            prop_assert!(text.starts_with(&captured.text));
            prop_assert_eq!(captured.text.len() as u64 + captured.truncated_bytes, text.len() as u64);
        }
    }

    /// The wire form of a managed request is exact: no unknown kind, no extra or missing field.
    #[test]
    fn requests_have_an_exact_json_form() {
        let request: ManagedRequest =
            serde_json::from_str(r#"{"kind": "mount_dir", "path": "/srv/pool"}"#).expect("parse");
        assert_eq!(
            request,
            ManagedRequest::MountDir {
                path: "/srv/pool".into()
            }
        );
        for bad in [
            r#"{"kind": "file", "path": "/etc/passwd", "content": "x"}"#,
            r#"{"kind": "mount_dir", "path": "/srv/a", "mode": 4095}"#,
            r#"{"kind": "mount_dir"}"#,
        ] {
            assert!(
                serde_json::from_str::<ManagedRequest>(bad).is_err(),
                "{bad} parsed"
            );
        }
    }

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut bytes = (payload.len() as u32).to_be_bytes().to_vec();
        bytes.extend_from_slice(payload);
        bytes
    }

    #[test]
    fn roundtrip_request() {
        let request = Request {
            version: PROTOCOL_VERSION,
            id: 7,
            token: Some("abc.def".into()),
            body: RequestBody::Run {
                argv: vec!["true".into()],
            },
        };
        let bytes = encode(&request, MAX_REQUEST_FRAME).unwrap();
        let mut decoder = Decoder::new(MAX_REQUEST_FRAME);
        // Byte by byte: partial headers and payloads must wait, not fail.
        for byte in &bytes[..bytes.len() - 1] {
            decoder.handle_bytes(std::slice::from_ref(byte)).unwrap();
            assert_eq!(decoder.poll_frame().unwrap(), None);
        }
        decoder.handle_bytes(&bytes[bytes.len() - 1..]).unwrap();
        let payload = decoder.poll_frame().unwrap().unwrap();
        assert_eq!(decode::<Request>(&payload).unwrap(), request);
        decoder.handle_eof().unwrap();
    }

    #[test]
    fn wire_shape_is_stable() {
        let request = Request {
            version: 1,
            id: 1,
            token: None,
            body: RequestBody::JobStatus { job: 3 },
        };
        expect_test::expect![[
            r#"{"version":1,"id":1,"token":null,"body":{"type":"job_status","job":3}}"#
        ]]
        .assert_eq(&serde_json::to_string(&request).unwrap());
    }

    #[test]
    fn oversized_header_is_refused_before_payload() {
        let mut decoder = Decoder::new(16);
        let err = decoder.handle_bytes(&17u32.to_be_bytes()).unwrap_err();
        assert_eq!(err, FrameError::TooLarge { len: 17, limit: 16 });
        // Poisoned: the same error again, even for good bytes.
        assert_eq!(decoder.handle_bytes(&frame(b"{}")).unwrap_err(), err);
        assert_eq!(decoder.poll_frame().unwrap_err(), err);
    }

    #[test]
    fn empty_and_truncated_frames() {
        let mut decoder = Decoder::new(16);
        assert_eq!(
            decoder.handle_bytes(&[0, 0, 0, 0]).unwrap_err(),
            FrameError::Empty
        );
        let mut decoder = Decoder::new(16);
        decoder.handle_bytes(&[0, 0, 0, 5, b'{']).unwrap();
        assert_eq!(
            decoder.handle_eof().unwrap_err(),
            FrameError::Truncated { have: 5, want: 9 }
        );
    }

    #[test]
    fn two_frames_in_one_read() {
        let mut bytes = frame(b"{\"a\":1}");
        bytes.extend(frame(b"[]"));
        let mut decoder = Decoder::new(64);
        decoder.handle_bytes(&bytes).unwrap();
        assert_eq!(decoder.poll_frame().unwrap().unwrap(), b"{\"a\":1}");
        assert_eq!(decoder.poll_frame().unwrap().unwrap(), b"[]");
        assert_eq!(decoder.poll_frame().unwrap(), None);
    }

    #[test]
    fn unknown_fields_and_variants_are_malformed() {
        for text in [
            r#"{"version":1,"id":1,"body":{"type":"run_string","cmd":"rm -rf /"}}"#,
            r#"{"version":1,"id":1,"body":{"type":"run","argv":["x"],"shell":true}}"#,
            r#"{"version":1,"id":1,"body":{"type":"managed","request":{"kind":"write_file","path":"/etc/passwd"}}}"#,
            r#"{"version":1,"id":-1,"body":{"type":"rotate"}}"#,
        ] {
            assert!(
                matches!(
                    decode::<Request>(text.as_bytes()),
                    Err(FrameError::Malformed(_))
                ),
                "{text}"
            );
        }
    }

    proptest! {
        #[test]
        fn decoder_never_panics(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..8)) {
            let mut decoder = Decoder::new(32);
            for chunk in &chunks {
                if decoder.handle_bytes(chunk).is_err() { break; }
                while let Ok(Some(payload)) = decoder.poll_frame() {
                    let _ = decode::<Request>(&payload);
                }
            }
            let _ = decoder.handle_eof();
        }

        #[test]
        fn wanted_never_overshoots(len in 1u32..100, split in 0usize..104) {
            let mut decoder = Decoder::new(128);
            let bytes = frame(&vec![b'x'; len as usize]);
            let split = split.min(bytes.len());
            decoder.handle_bytes(&bytes[..split]).unwrap();
            if split < bytes.len() {
                prop_assert!(decoder.wanted() <= bytes.len() - split);
            }
        }
    }
}
