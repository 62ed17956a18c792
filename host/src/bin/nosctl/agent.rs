//! `nosctl agent`: drive the root agent by hand over its socket.
//!
//! Exit status: 0 when the agent ran the request successfully, 1 when it rejected it, the command
//! failed, or the agent answered with an error.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use nos_host::agent_client::{AgentClient, read_token_file};
use nos_protocol::{
    JobState, ManagedAction, ManagedRequest, RequestBody, ResponseBody, StepResult,
};

#[derive(Debug, Subcommand)]
pub enum AgentCmd {
    /// Check ARGV against the agent's allowlist and run it.
    Run {
        #[command(flatten)]
        conn: Conn,
        /// The command, program first (bare name or its configured absolute path).
        #[arg(last = true, required = true)]
        argv: Vec<String>,
    },
    /// Check every step of a JSON file (`[["btrfs", "balance", ...], ...]`) first, then run them
    /// in order, stopping at the first failure.
    Steps {
        #[command(flatten)]
        conn: Conn,
        /// JSON array of argv arrays.
        file: PathBuf,
    },
    /// Ensure (or with --remove, remove) a managed file entry.
    Managed {
        #[command(flatten)]
        conn: Conn,
        #[arg(long)]
        remove: bool,
        #[command(subcommand)]
        entry: ManagedEntry,
    },
    /// Trade the bootstrap token for a per-agent token, written to --token-out (mode 0600).
    Register {
        #[arg(long, default_value = "/run/nos/agent.sock")]
        socket: PathBuf,
        #[arg(long, default_value = "/etc/nos/agent-bootstrap-token")]
        bootstrap_file: PathBuf,
        #[arg(long)]
        token_out: PathBuf,
        /// Give the token file to this user (and its primary group), e.g. `nos` for nosd.
        #[arg(long)]
        owner: Option<String>,
    },
    /// Replace the token in --token-file by a fresh one; the old one stops working.
    Rotate {
        #[command(flatten)]
        conn: Conn,
    },
    /// Show a job's state.
    Job {
        #[command(flatten)]
        conn: Conn,
        job: u64,
    },
    /// Cancel a running job.
    Cancel {
        #[command(flatten)]
        conn: Conn,
        job: u64,
    },
    /// Print the agent's raw facts (what nosd's facts are built from), as JSON.
    Facts {
        #[command(flatten)]
        conn: Conn,
    },
}

#[derive(Debug, Subcommand)]
pub enum ManagedEntry {
    /// A root-owned mount directory below a mount root.
    MountDir { path: String },
    /// A key file of random bytes in the key directory (never removed).
    KeyFile { path: String },
    /// An fstab line in nos's managed block.
    Fstab {
        uuid: String,
        target: String,
        options: String,
    },
    /// A crypttab line in nos's managed block.
    Crypttab {
        name: String,
        device_uuid: String,
        key: String,
    },
}

#[derive(Debug, Args)]
pub struct Conn {
    #[arg(long, default_value = "/run/nos/agent.sock")]
    socket: PathBuf,
    #[arg(long)]
    token_file: PathBuf,
    /// Print the raw JSON response.
    #[arg(long)]
    json: bool,
}

pub fn main(cmd: AgentCmd) -> anyhow::Result<std::process::ExitCode> {
    let (conn, body) = match cmd {
        AgentCmd::Register {
            socket,
            bootstrap_file,
            token_out,
            owner,
        } => {
            let owner = match owner {
                Some(name) => {
                    let user = nix::unistd::User::from_name(&name)?
                        .with_context(|| format!("no user {name}"))?;
                    Some((user.uid.as_raw(), user.gid.as_raw()))
                }
                None => None,
            };
            let mut client = AgentClient::connect(&socket, Some(Duration::from_secs(30)))?;
            let bootstrap_token = bootstrap_token(&bootstrap_file)?;
            return match client.request(RequestBody::Register { bootstrap_token })? {
                ResponseBody::Token { token_id, token } => {
                    write_token(&token_out, &token, owner)?;
                    println!(
                        "registered: token id {token_id} written to {}",
                        token_out.display()
                    );
                    Ok(std::process::ExitCode::SUCCESS)
                }
                other => report(&other, false),
            };
        }
        AgentCmd::Rotate { conn } => (conn, RequestBody::Rotate),
        AgentCmd::Run { conn, argv } => (conn, RequestBody::Run { argv }),
        AgentCmd::Steps { conn, file } => {
            let text =
                std::fs::read_to_string(&file).with_context(|| format!("{}", file.display()))?;
            let steps: Vec<Vec<String>> = serde_json::from_str(&text)
                .with_context(|| format!("{}: a JSON array of argv arrays", file.display()))?;
            (conn, RequestBody::RunSteps { steps })
        }
        AgentCmd::Managed {
            conn,
            remove,
            entry,
        } => {
            let action = if remove {
                ManagedAction::Remove
            } else {
                ManagedAction::Ensure
            };
            let request = match entry {
                ManagedEntry::MountDir { path } => ManagedRequest::MountDir { path },
                ManagedEntry::KeyFile { path } => ManagedRequest::KeyFile { path },
                ManagedEntry::Fstab {
                    uuid,
                    target,
                    options,
                } => ManagedRequest::FstabEntry {
                    uuid,
                    target,
                    options,
                },
                ManagedEntry::Crypttab {
                    name,
                    device_uuid,
                    key,
                } => ManagedRequest::CrypttabEntry {
                    name,
                    device_uuid,
                    key,
                },
            };
            (conn, RequestBody::Managed { action, request })
        }
        AgentCmd::Job { conn, job } => (conn, RequestBody::JobStatus { job }),
        AgentCmd::Cancel { conn, job } => (conn, RequestBody::Cancel { job }),
        AgentCmd::Facts { conn } => (conn, RequestBody::Facts),
    };
    let rotating = matches!(body, RequestBody::Rotate);
    let mut client = AgentClient::connect(&conn.socket, None)?;
    client.set_token(read_token_file(&conn.token_file)?);
    let response = client.request(body)?;
    if rotating && let ResponseBody::Token { token_id, token } = &response {
        // The new token keeps the old file's owner (e.g. nosd's user).
        let metadata = std::fs::metadata(&conn.token_file)?;
        let owner = Some((
            std::os::unix::fs::MetadataExt::uid(&metadata),
            std::os::unix::fs::MetadataExt::gid(&metadata),
        ));
        write_token(&conn.token_file, token, owner)?;
        println!(
            "rotated: new token id {token_id} written to {}",
            conn.token_file.display()
        );
        return Ok(std::process::ExitCode::SUCCESS);
    }
    report(&response, conn.json)
}

/// Replaces `path` with the token (mode 0600, owned by `owner` when given), atomically.
fn write_token(path: &Path, token: &str, owner: Option<(u32, u32)>) -> anyhow::Result<()> {
    let written = match owner {
        Some((uid, gid)) => {
            nos_fs::write_atomic_owned(path, token.as_bytes(), 0o600, nos_fs::Owner { uid, gid })
        }
        None => nos_fs::write_atomic(path, token.as_bytes(), 0o600),
    };
    written.with_context(|| format!("{}", path.display()))
}

fn report(response: &ResponseBody, json: bool) -> anyhow::Result<std::process::ExitCode> {
    let ok = match response {
        ResponseBody::Ran { result } => result.succeeded(),
        ResponseBody::Steps { completed, .. } => *completed,
        ResponseBody::Job {
            state: JobState::Finished { result },
            ..
        } => result.succeeded(),
        ResponseBody::Rejected { .. } | ResponseBody::Error { .. } => false,
        _ => true,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(response)?);
    } else {
        match response {
            ResponseBody::Ran { result }
            | ResponseBody::Job {
                state: JobState::Finished { result },
                ..
            } => print_result(result),
            ResponseBody::Rejected { rejection } => {
                let token = rejection
                    .token_idx
                    .map(|idx| format!(" (token {idx})"))
                    .unwrap_or_default();
                eprintln!(
                    "rejected ({:?}){token}: {}",
                    rejection.stage, rejection.reason
                );
            }
            ResponseBody::Error { code, message } => eprintln!("agent error {code:?}: {message}"),
            ResponseBody::JobStarted { job, rule_id } => println!("job {job} started ({rule_id})"),
            ResponseBody::Job {
                job,
                state:
                    JobState::Running {
                        rule_id,
                        elapsed_ms,
                    },
            } => {
                println!("job {job} running ({rule_id}, {elapsed_ms} ms)")
            }
            ResponseBody::Facts { facts } => println!("{}", serde_json::to_string_pretty(facts)?),
            ResponseBody::Steps {
                results,
                completed,
                rejection,
            } => {
                results.iter().for_each(print_result);
                if let Some(rejection) = rejection {
                    eprintln!(
                        "step {:?} rejected ({:?}): {}",
                        rejection.step_idx, rejection.stage, rejection.reason
                    );
                }
                if !completed {
                    eprintln!("[stopped after {} of the steps]", results.len());
                }
            }
            other => println!("{}", serde_json::to_string_pretty(other)?),
        }
    }
    Ok(if ok {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    })
}

fn print_result(result: &StepResult) {
    print!("{}", result.stdout.text);
    eprint!("{}", result.stderr.text);
    for (name, captured) in [("stdout", &result.stdout), ("stderr", &result.stderr)] {
        if captured.truncated_bytes > 0 {
            eprintln!(
                "[{name} truncated: {} bytes dropped]",
                captured.truncated_bytes
            );
        }
    }
    eprintln!(
        "[{} {:?} exit={:?} signal={:?} state={:?} {} ms] {}",
        result.rule_id,
        result.outcome,
        result.exit_code,
        result.signal,
        result.state,
        result.duration_ms,
        result.argv.join(" ")
    );
}

/// How often, and how many times, `agent register` looks for the bootstrap token the agent
/// writes (10 s in all).
const BOOTSTRAP_POLL: Duration = Duration::from_millis(50);
const BOOTSTRAP_POLLS: u32 = 200;

/// The bootstrap token. Under socket activation the first connection is what starts the agent,
/// and the agent writes the token at its first start, so a missing or still empty file is
/// waited for (up to [`BOOTSTRAP_POLLS`] × [`BOOTSTRAP_POLL`]) before its error is reported.
fn bootstrap_token(path: &std::path::Path) -> anyhow::Result<String> {
    let mut polls = 0;
    loop {
        match read_token_file(path) {
            Ok(token) => return Ok(token),
            Err(err) if polls >= BOOTSTRAP_POLLS => return Err(err.into()),
            Err(_) => {
                polls += 1;
                std::thread::sleep(BOOTSTRAP_POLL);
            }
        }
    }
}
