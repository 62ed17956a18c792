//! How the pipeline reaches the agent: gathering facts and running one step.
//!
//! [`AgentSocket`] is the production port (through `agent_client`, a fresh connection per
//! call because the agent closes idle connections); tests substitute their own. A step that
//! the agent starts as a job (balance, replace) is polled here until it ends, and each poll is
//! reported as progress, so the executor never sees the difference.

use std::path::{Path, PathBuf};
use std::time::Duration;

use nos_protocol::{
    Facts as RawFacts, JobState, ManagedAction, Outcome, RequestBody, ResponseBody,
};

use crate::agent_client::{AgentClient, read_token_file};
use crate::facts::Facts;
use crate::gather::{LocalFiles, Observation, gather};
use crate::plan::types::Request;

/// At most this many bytes of a step's stdout and stderr are kept in a job record.
pub const MAX_EXCERPT_BYTES: usize = 4096;
/// How often a long-running agent job is polled.
pub const JOB_POLL_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum PortError {
    #[error("agent unreachable: {0}")]
    Unreachable(String),
    #[error("agent refused: {0}")]
    Refused(String),
    #[error("facts unusable: {0}")]
    Facts(String),
}

/// What one step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRun {
    pub ok: bool,
    /// The rule that judged it (`None` when the agent refused before judging).
    pub rule_id: Option<String>,
    /// What ran, as the agent rendered it.
    pub ran: String,
    pub exit_code: Option<i32>,
    /// stdout and stderr excerpts (bounded), or the refusal.
    pub output: String,
}

pub trait AgentPort: Send + Sync {
    /// Block devices and mounted btrfs filesystems, through the agent's read-only facts.
    fn facts(&self) -> Result<Facts, PortError>;
    /// The facts with what pool health reads beside them, from the same round trip. A port
    /// that only has facts (a fixture, a fake) shows nothing more.
    fn observe(&self) -> Result<Observation, PortError> {
        self.facts().map(Observation::of_facts)
    }
    /// Run one request; long jobs are polled to their end, each poll reported to `progress`.
    fn run(&self, request: &Request, progress: &mut dyn FnMut(String)) -> StepRun;
    /// Run one command of a read-only rule and hand back its whole stdout (the agent caps it)
    /// and exit code, whatever the code: for readings whose tool says in its output what the
    /// code means (smartctl). A port that reads nothing refuses.
    fn read(&self, argv: &[String]) -> Result<ReadOutput, PortError> {
        let _ = argv;
        Err(PortError::Refused(
            "this agent port reads no commands".into(),
        ))
    }
}

/// The whole output of a read ([`AgentPort::read`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOutput {
    pub rule_id: String,
    pub exit_code: Option<i32>,
    pub stdout: String,
}

/// The agent over its Unix socket.
pub struct AgentSocket {
    pub socket: PathBuf,
    pub token_file: PathBuf,
    /// Where btrfs allocation summaries are read (`/sys/fs/btrfs`); readable without root.
    pub sysfs_btrfs: PathBuf,
    /// Serve these facts (JSON, as `nosctl facts` prints them) instead of asking the agent:
    /// the demo's dry-run mode, where the machine's real disks must not appear.
    pub fixture_facts: Option<PathBuf>,
}

impl AgentSocket {
    fn connect(&self, timeout: Option<Duration>) -> Result<AgentClient, PortError> {
        let token = read_token_file(&self.token_file)
            .map_err(|err| PortError::Unreachable(err.to_string()))?;
        let mut client = AgentClient::connect(&self.socket, timeout)
            .map_err(|err| PortError::Unreachable(err.to_string()))?;
        client.set_token(token);
        Ok(client)
    }

    /// One round trip: the agent runs the fact commands and reads the kernel files.
    fn raw_facts(&self) -> Result<RawFacts, PortError> {
        match self.request(RequestBody::Facts)? {
            ResponseBody::Facts { facts } => Ok(facts),
            other => Err(PortError::Refused(describe(&other))),
        }
    }

    fn request(&self, body: RequestBody) -> Result<ResponseBody, PortError> {
        self.connect(Some(Duration::from_secs(30)))?
            .request(body)
            .map_err(|err| PortError::Unreachable(err.to_string()))
    }
}

impl AgentPort for AgentSocket {
    fn facts(&self) -> Result<Facts, PortError> {
        self.observe().map(|observation| observation.facts)
    }

    fn observe(&self) -> Result<Observation, PortError> {
        if let Some(path) = &self.fixture_facts {
            let text = std::fs::read_to_string(path)
                .map_err(|err| PortError::Facts(format!("{}: {err}", path.display())))?;
            return Facts::from_file_json(text.as_bytes())
                .map(Observation::of_facts)
                .map_err(|err| PortError::Facts(format!("{}: {err}", path.display())));
        }
        let files = LocalFiles {
            sysfs_btrfs: &self.sysfs_btrfs,
            by_id: Path::new("/dev/disk/by-id"),
        };
        gather(&self.raw_facts()?, &files).map_err(PortError::Facts)
    }

    fn read(&self, argv: &[String]) -> Result<ReadOutput, PortError> {
        match self.request(RequestBody::Run {
            argv: argv.to_vec(),
        })? {
            ResponseBody::Ran { result } if result.stdout.truncated_bytes == 0 => Ok(ReadOutput {
                rule_id: result.rule_id,
                exit_code: result.exit_code,
                stdout: result.stdout.text,
            }),
            ResponseBody::Ran { result } => Err(PortError::Refused(format!(
                "{}: output cut after {} bytes",
                result.rule_id,
                result.stdout.text.len()
            ))),
            other => Err(PortError::Refused(describe(&other))),
        }
    }

    fn run(&self, request: &Request, progress: &mut dyn FnMut(String)) -> StepRun {
        let body = match request {
            Request::Argv(argv) => RequestBody::Run { argv: argv.clone() },
            Request::Ensure(managed) => RequestBody::Managed {
                action: ManagedAction::Ensure,
                request: managed.into(),
            },
            Request::Remove(managed) => RequestBody::Managed {
                action: ManagedAction::Remove,
                request: managed.into(),
            },
        };
        let refused = |message: String| StepRun {
            ok: false,
            rule_id: None,
            ran: request.to_string(),
            exit_code: None,
            output: message,
        };
        let response = match self.request(body) {
            Ok(response) => response,
            Err(err) => return refused(err.to_string()),
        };
        match response {
            ResponseBody::Ran { result } => from_result(&result),
            ResponseBody::JobStarted { job, rule_id } => {
                progress(format!("started as agent job {job} ({rule_id})"));
                loop {
                    std::thread::sleep(JOB_POLL_INTERVAL);
                    match self.request(RequestBody::JobStatus { job }) {
                        Ok(ResponseBody::Job {
                            state: JobState::Finished { result },
                            ..
                        }) => return from_result(&result),
                        Ok(ResponseBody::Job {
                            state: JobState::Running { elapsed_ms, .. },
                            ..
                        }) => progress(format!("running for {} s", elapsed_ms / 1000)),
                        Ok(other) => return refused(describe(&other)),
                        Err(err) => return refused(err.to_string()),
                    }
                }
            }
            ResponseBody::Managed {
                rule_id,
                path,
                changed,
                ..
            } => StepRun {
                ok: true,
                rule_id: Some(rule_id),
                ran: request.to_string(),
                exit_code: None,
                output: format!("{path}: {}", if changed { "changed" } else { "already so" }),
            },
            other => refused(describe(&other)),
        }
    }
}

fn from_result(result: &nos_protocol::StepResult) -> StepRun {
    let mut output = excerpt(&result.stdout.text);
    let stderr = excerpt(&result.stderr.text);
    if !stderr.is_empty() {
        if !output.is_empty() {
            output.push('\n');
        }
        output.push_str(&stderr);
    }
    StepRun {
        ok: result.outcome == Outcome::Ok,
        rule_id: Some(result.rule_id.clone()),
        ran: result.argv.join(" "),
        exit_code: result.exit_code,
        output,
    }
}

/// The last [`MAX_EXCERPT_BYTES`] of `text`, on a char boundary.
pub fn excerpt(text: &str) -> String {
    if text.len() <= MAX_EXCERPT_BYTES {
        return text.trim_end().to_string();
    }
    let mut start = text.len() - MAX_EXCERPT_BYTES;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", text[start..].trim_end())
}

fn describe(response: &ResponseBody) -> String {
    match response {
        ResponseBody::Rejected { rejection } => format!(
            "rejected by the agent ({:?}): {}",
            rejection.stage, rejection.reason
        ),
        ResponseBody::Error { code, message } => format!("agent error {code:?}: {message}"),
        other => serde_json::to_string(other).unwrap_or_else(|_| "unexpected answer".into()),
    }
}
