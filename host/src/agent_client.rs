//! The host side of the agent socket: the only place in the host that opens it.
//!
//! A blocking client over one Unix stream: it frames requests with the agent library's sans-IO
//! codec, checks that each response echoes the request's id and the protocol version, and refuses
//! responses over [`MAX_RESPONSE_FRAME`]. It never retries: a request that may have run is not
//! sent twice. The agent closes a connection that stays idle longer than its frame timeout
//! (10 s by default), so a long-lived caller reconnects rather than keeping one open.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nos_protocol::{
    Decoder, FrameError, MAX_REQUEST_FRAME, MAX_RESPONSE_FRAME, PROTOCOL_VERSION, Request,
    RequestBody, Response, ResponseBody, decode, encode,
};

/// The longest token file read; a token is about 81 bytes.
pub const MAX_TOKEN_FILE: u64 = 1024;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("agent socket {path}: {source}")]
    Connect {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("agent socket io: {0}")]
    Io(#[from] std::io::Error),
    #[error("agent frame: {0}")]
    Frame(#[from] FrameError),
    #[error("agent closed the connection without answering")]
    Closed,
    #[error("agent answered request {got} (version {version}) to request {want}")]
    Mismatch { want: u64, got: u64, version: u32 },
    #[error("token file {path}: {reason}")]
    TokenFile { path: PathBuf, reason: String },
}

/// One connection to the agent.
#[derive(Debug)]
pub struct AgentClient {
    stream: UnixStream,
    decoder: Decoder,
    next_id: u64,
    token: Option<String>,
}

impl AgentClient {
    /// Connects to the socket at `path`. `io_timeout` bounds each read and write (None: wait as
    /// long as the agent needs, e.g. for a list of steps that includes a balance).
    pub fn connect(path: &Path, io_timeout: Option<Duration>) -> Result<AgentClient, ClientError> {
        let stream = UnixStream::connect(path).map_err(|source| ClientError::Connect {
            path: path.to_owned(),
            source,
        })?;
        stream.set_read_timeout(io_timeout)?;
        stream.set_write_timeout(io_timeout)?;
        Ok(AgentClient {
            stream,
            decoder: Decoder::new(MAX_RESPONSE_FRAME),
            next_id: 1,
            token: None,
        })
    }

    /// Sends `token` with every later request.
    pub fn set_token(&mut self, token: String) {
        self.token = Some(token);
    }

    /// Sends one request and waits for its response.
    pub fn request(&mut self, body: RequestBody) -> Result<ResponseBody, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        let request = Request {
            version: PROTOCOL_VERSION,
            id,
            token: self.token.clone(),
            body,
        };
        if let Err(err) = self.stream.write_all(&encode(&request, MAX_REQUEST_FRAME)?) {
            // The agent may have refused the connection (peer, busy) and closed it before our
            // write: its error frame is still waiting to be read.
            return match self.read_frame() {
                Ok(payload) => Ok(decode::<Response>(&payload)?.body),
                Err(_) => Err(err.into()),
            };
        }
        let response: Response = decode(&self.read_frame()?)?;
        // id 0 is the agent's answer to a frame it could not attribute (refused peer, bad frame).
        if response.version != PROTOCOL_VERSION || (response.id != id && response.id != 0) {
            return Err(ClientError::Mismatch {
                want: id,
                got: response.id,
                version: response.version,
            });
        }
        Ok(response.body)
    }

    fn read_frame(&mut self) -> Result<Vec<u8>, ClientError> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            if let Some(payload) = self.decoder.poll_frame()? {
                return Ok(payload);
            }
            let want = self.decoder.wanted().min(buf.len());
            match self.stream.read(&mut buf[..want]) {
                Ok(0) => {
                    self.decoder.handle_eof()?;
                    return Err(ClientError::Closed);
                }
                Ok(n_read) => self.decoder.handle_bytes(&buf[..n_read])?,
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(err.into()),
            }
        }
    }
}

/// Reads a token file (trimmed), refusing oversized or empty ones.
pub fn read_token_file(path: &Path) -> Result<String, ClientError> {
    let bad = |reason: String| ClientError::TokenFile {
        path: path.to_owned(),
        reason,
    };
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(MAX_TOKEN_FILE).read_to_string(&mut text))
        .map_err(|err| bad(err.to_string()))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(bad("empty".into()));
    }
    Ok(token.to_owned())
}
