//! The order of things for one request, written once: version, authenticate, judge (allowlist),
//! exec-time checks, run, audit. Every decision of the agent is made here or in the modules it
//! calls; the server only moves frames.
//!
//! This module never touches the socket.

use std::path::Path;
use std::sync::Arc;

use nos_allowlist::{ManagedAction, ManagedRequest};
use nos_machine::fact_commands;
use nos_machine::files as facts;
use nos_protocol::{
    ErrorCode, FactText, Facts, MAX_POOL_READINGS, MAX_STEPS, PROTOCOL_VERSION, PoolReadings,
    Probe, RejectStage, Rejection, Request, RequestBody, ResponseBody, StepResult,
};

use crate::audit::{AuditLog, Record, redact};
use crate::exec::{self, ExecError, Prepared};
use crate::jobs::Jobs;
use crate::managed::{self, ManagedConfig};
use crate::policy::{Effect, Policy, Rejected};
use crate::trust::{Peer, Trust, TrustError};

/// Everything a request may need, shared by all connections.
#[derive(Debug)]
pub struct Agent {
    pub policy: Policy,
    pub trust: Trust,
    pub jobs: Jobs,
    pub audit: Arc<AuditLog>,
    pub managed: ManagedConfig,
    /// Dry-run mode (`--dry-run`, for the demo without root): every request is judged by the
    /// allowlist and answered with what would run; nothing runs but the fact commands of
    /// [`RequestBody::Facts`], and no managed file is written.
    pub dry_run: bool,
}

/// Who sent a request, for the audit log.
struct Caller<'a> {
    peer: &'a Peer,
    token_id: Option<&'a str>,
    request: serde_json::Value,
}

impl Caller<'_> {
    fn record(&self, verdict: &'static str) -> Record<'_> {
        Record {
            uid: self.peer.uid,
            pid: self.peer.pid,
            token_id: self.token_id,
            request: self.request.clone(),
            verdict,
            rule_id: None,
            detail: None,
            outcome: None,
            exit_code: None,
            duration_ms: None,
        }
    }
}

fn error(code: ErrorCode, message: impl Into<String>) -> ResponseBody {
    ResponseBody::Error {
        code,
        message: message.into(),
    }
}

/// Handles one request from an already admitted peer.
pub fn handle(agent: &Agent, peer: &Peer, request: Request) -> ResponseBody {
    let mut caller = Caller {
        peer,
        token_id: None,
        request: redact(&request.body),
    };
    if request.version != PROTOCOL_VERSION {
        let message = format!(
            "protocol version {} is not {PROTOCOL_VERSION}",
            request.version
        );
        return audited_error(
            agent,
            &caller,
            "error",
            message.clone(),
            ErrorCode::UnsupportedVersion,
            message,
        );
    }
    if let RequestBody::Register { bootstrap_token } = &request.body {
        return match agent.trust.register(bootstrap_token) {
            Ok(new_token) => {
                audit(
                    agent,
                    Record {
                        token_id: Some(&new_token.token_id),
                        ..caller.record("registered")
                    },
                );
                ResponseBody::Token {
                    token_id: new_token.token_id,
                    token: new_token.token,
                }
            }
            Err(err) => audited_error(
                agent,
                &caller,
                "refused",
                err.to_string(),
                ErrorCode::RegistrationRefused,
                err.to_string(),
            ),
        };
    }
    let token_id = match agent.trust.authenticate(request.token.as_deref()) {
        Ok(token_id) => token_id,
        Err(err) => {
            return audited_error(
                agent,
                &caller,
                "refused",
                err.to_string(),
                ErrorCode::Unauthenticated,
                public_message(&err),
            );
        }
    };
    caller.token_id = Some(&token_id);
    match request.body {
        RequestBody::Register { .. } => error(ErrorCode::Internal, "unreachable"),
        RequestBody::Rotate => match agent.trust.rotate() {
            Ok(new_token) => {
                audit(
                    agent,
                    Record {
                        detail: Some(format!("new token {}", new_token.token_id)),
                        ..caller.record("rotated")
                    },
                );
                ResponseBody::Token {
                    token_id: new_token.token_id,
                    token: new_token.token,
                }
            }
            Err(err) => internal(agent, &caller, err.to_string()),
        },
        RequestBody::Run { argv } if agent.dry_run => dry_run_one(agent, &caller, &argv),
        RequestBody::RunSteps { steps } if agent.dry_run => {
            let mut results = Vec::with_capacity(steps.len());
            for (step_idx, argv) in steps.iter().enumerate() {
                match dry_run_one(agent, &caller, argv) {
                    ResponseBody::Ran { result } => results.push(result),
                    ResponseBody::Rejected { mut rejection } => {
                        rejection.step_idx = Some(step_idx);
                        return ResponseBody::Rejected { rejection };
                    }
                    other => return other,
                }
            }
            ResponseBody::Steps {
                results,
                completed: true,
                rejection: None,
            }
        }
        RequestBody::Run { argv } => run_one(agent, &caller, &argv),
        RequestBody::RunSteps { steps } => run_steps(agent, &caller, &steps),
        RequestBody::JobStatus { job } => {
            audit_read(agent, caller.record("status"));
            match agent.jobs.status(job) {
                Some(state) => ResponseBody::Job { job, state },
                None => error(ErrorCode::UnknownJob, format!("no job {job}")),
            }
        }
        RequestBody::Cancel { job } => {
            if agent.jobs.cancel(job) {
                audit(agent, caller.record("cancel"));
                ResponseBody::Cancelling { job }
            } else {
                error(ErrorCode::UnknownJob, format!("no job {job}"))
            }
        }
        RequestBody::Facts => facts(agent, &caller),
        RequestBody::Managed { action, request } => {
            managed_change(agent, &caller, action.into(), &request.into())
        }
    }
}

/// Dry-run: judge by the allowlist only (exec-time checks need the real devices) and answer
/// every match, read-only ones included, with what would run. A read-only step of a plan checks
/// what the steps before it would have made, on devices the dry run's (fixture) facts name, so
/// running it for real could only fail or mislead; the machine's facts still come from
/// [`RequestBody::Facts`].
fn dry_run_one(agent: &Agent, caller: &Caller<'_>, argv: &[String]) -> ResponseBody {
    let command = match agent.policy.check(argv) {
        Ok(command) => command,
        Err(rejected) => return refuse(agent, caller, allowlist_rejection(rejected, None)),
    };
    let mut rendered = vec![command.program.display().to_string()];
    rendered.extend(command.args.iter().cloned());
    audit(
        agent,
        Record {
            rule_id: Some(&command.rule_id),
            detail: Some(format!("dry run, not executed: {}", rendered.join(" "))),
            ..caller.record("dry_run")
        },
    );
    ResponseBody::Ran {
        result: StepResult {
            rule_id: command.rule_id,
            stdout: nos_protocol::Captured {
                text: format!("dry run: would run {}", rendered.join(" ")),
                truncated_bytes: 0,
                lossy: false,
            },
            argv: rendered,
            outcome: nos_protocol::Outcome::Ok,
            exit_code: Some(0),
            signal: None,
            state: Some("dry_run".into()),
            stderr: nos_protocol::Captured {
                text: String::new(),
                truncated_bytes: 0,
                lossy: false,
            },
            duration_ms: 0,
        },
    }
}

/// Judges a managed-file request by the allowlist, records the decision (synced), then writes.
fn managed_change(
    agent: &Agent,
    caller: &Caller<'_>,
    action: ManagedAction,
    request: &ManagedRequest,
) -> ResponseBody {
    let matched = match agent.policy.check_managed(action, request) {
        Ok(matched) => matched,
        Err(rejected) => return refuse(agent, caller, allowlist_rejection(rejected, None)),
    };
    if agent.dry_run {
        audit(
            agent,
            Record {
                rule_id: Some(&matched.rule_id),
                detail: Some(format!(
                    "dry run, not written: {} {:?}",
                    action.as_str(),
                    matched.request
                )),
                ..caller.record("dry_run")
            },
        );
        return ResponseBody::Managed {
            rule_id: matched.rule_id.clone(),
            path: format!("(dry run) {:?}", matched.request),
            changed: false,
            backup: None,
        };
    }
    let decided = Record {
        rule_id: Some(&matched.rule_id),
        detail: Some(format!("{} {:?}", action.as_str(), matched.request)),
        ..caller.record("decided")
    };
    if let Err(err) = agent.audit.append(&decided) {
        return unrecorded(&err);
    }
    match managed::apply(&agent.managed, &matched) {
        Ok(applied) => {
            let detail = format!("{} changed={}", applied.path.display(), applied.changed);
            audit(
                agent,
                Record {
                    rule_id: Some(&applied.rule_id),
                    detail: Some(detail),
                    ..caller.record("allowed")
                },
            );
            ResponseBody::Managed {
                rule_id: applied.rule_id,
                path: applied.path.display().to_string(),
                changed: applied.changed,
                backup: applied.backup.map(|path| path.display().to_string()),
            }
        }
        Err(err) => {
            let rejection = Rejection {
                step_idx: None,
                token_idx: None,
                stage: RejectStage::ExecTime,
                reason: err.to_string(),
            };
            refuse_matched(agent, caller, &matched.rule_id, rejection)
        }
    }
}

/// What the caller learns about a token failure: not whether the id exists.
fn public_message(err: &TrustError) -> String {
    match err {
        TrustError::MissingToken => "missing token".into(),
        _ => "invalid token".into(),
    }
}

fn internal(agent: &Agent, caller: &Caller<'_>, message: String) -> ResponseBody {
    tracing::error!(%message, "internal error");
    audited_error(
        agent,
        caller,
        "error",
        message,
        ErrorCode::Internal,
        "internal error, see the agent log".into(),
    )
}

/// Judges and prepares one argv: allowlist first, then the exec-time checks.
fn judge(agent: &Agent, argv: &[String], step_idx: Option<usize>) -> Result<Prepared, Rejection> {
    let command = agent
        .policy
        .check(argv)
        .map_err(|rejected| allowlist_rejection(rejected, step_idx))?;
    let arg_sources = command.arg_sources.clone();
    exec::prepare(command).map_err(|err| exec_rejection(&err, &arg_sources, step_idx))
}

/// The refusal of a request (or of step `step_idx`) by the allowlist.
fn allowlist_rejection(rejected: Rejected, step_idx: Option<usize>) -> Rejection {
    Rejection {
        step_idx,
        token_idx: rejected.token_idx,
        stage: RejectStage::Allowlist,
        reason: rejected.reason,
    }
}

/// The refusal of a request (or of step `step_idx`) by an exec-time check.
fn exec_rejection(
    err: &ExecError,
    arg_sources: &[Option<usize>],
    step_idx: Option<usize>,
) -> Rejection {
    Rejection {
        step_idx,
        token_idx: err.token_idx(arg_sources),
        stage: RejectStage::ExecTime,
        reason: err.to_string(),
    }
}

/// Before a command of a state-changing or destructive rule runs, its decision is appended and
/// synced; if that fails nothing runs (fail closed), so such a command never runs unrecorded.
/// Read-only rules are recorded once, after they ran.
fn record_decision(agent: &Agent, caller: &Caller<'_>, prepared: &Prepared) -> std::io::Result<()> {
    let command = prepared.command();
    if command.effect == Effect::Read {
        return Ok(());
    }
    let record = Record {
        rule_id: Some(&command.rule_id),
        detail: Some(prepared.argv().join(" ")),
        ..caller.record("decided")
    };
    agent.audit.append(&record)
}

/// The answer when a decision could not be recorded: nothing ran.
fn unrecorded(err: &std::io::Error) -> ResponseBody {
    tracing::error!(%err, "cannot write the audit log: refusing to run");
    error(
        ErrorCode::Internal,
        "the audit log cannot be written; nothing ran",
    )
}

/// Records a finished command; read-only rules are synced lazily (see `audit`).
fn record_result(agent: &Agent, caller: &Caller<'_>, result: &StepResult, effect: Effect) {
    let record = Record {
        rule_id: Some(&result.rule_id),
        outcome: Some(result.outcome),
        exit_code: result.exit_code,
        duration_ms: Some(result.duration_ms),
        detail: Some(result.argv.join(" ")),
        ..caller.record("allowed")
    };
    let appended = match effect {
        Effect::Read => agent.audit.append_lazy(&record),
        Effect::State | Effect::Destructive => agent.audit.append(&record),
    };
    if let Err(err) = appended {
        tracing::error!(%err, "cannot write the audit log");
    }
}

/// Records a refusal and answers with it: the one way a request is refused.
fn refuse(agent: &Agent, caller: &Caller<'_>, rejection: Rejection) -> ResponseBody {
    record_rejection(agent, caller, None, &rejection);
    ResponseBody::Rejected { rejection }
}

/// [`refuse`] for a request that matched rule `rule_id` and was refused after that.
fn refuse_matched(
    agent: &Agent,
    caller: &Caller<'_>,
    rule_id: &str,
    rejection: Rejection,
) -> ResponseBody {
    record_rejection(agent, caller, Some(rule_id), &rejection);
    ResponseBody::Rejected { rejection }
}

fn record_rejection(
    agent: &Agent,
    caller: &Caller<'_>,
    rule_id: Option<&str>,
    rejection: &Rejection,
) {
    audit(
        agent,
        Record {
            rule_id,
            detail: Some(rejection.reason.clone()),
            ..caller.record("rejected")
        },
    );
}

/// Records `verdict` with `detail`, then answers with the error `code` and `message`: for a
/// request refused before any rule is judged (version, authentication, step count) and for
/// the agent's own failures.
fn audited_error(
    agent: &Agent,
    caller: &Caller<'_>,
    verdict: &'static str,
    detail: String,
    code: ErrorCode,
    message: String,
) -> ResponseBody {
    audit(
        agent,
        Record {
            detail: Some(detail),
            ..caller.record(verdict)
        },
    );
    error(code, message)
}

fn run_one(agent: &Agent, caller: &Caller<'_>, argv: &[String]) -> ResponseBody {
    let prepared = match judge(agent, argv, None) {
        Ok(prepared) => prepared,
        Err(rejection) => return refuse(agent, caller, rejection),
    };
    let effect = prepared.command().effect;
    if let Err(err) = record_decision(agent, caller, &prepared) {
        return unrecorded(&err);
    }
    if !prepared.command().job {
        let result = exec::run(prepared);
        record_result(agent, caller, &result, effect);
        return ResponseBody::Ran { result };
    }
    let slot = match agent.jobs.reserve() {
        Ok(slot) => slot,
        Err(busy) => return error(ErrorCode::Busy, busy.to_string()),
    };
    let rule_id = prepared.command().rule_id.clone();
    let argv = prepared.argv();
    let running = match exec::spawn(prepared) {
        Ok(running) => running,
        Err(err) => {
            let result = exec::spawn_failed(rule_id, argv, &err);
            record_result(agent, caller, &result, effect);
            return ResponseBody::Ran { result };
        }
    };
    let audit_log = Arc::clone(&agent.audit);
    let finish_record = Record {
        rule_id: None,
        ..caller.record("job_finished")
    };
    let (uid, pid, token_id, request) = (
        finish_record.uid,
        finish_record.pid,
        finish_record.token_id.map(str::to_owned),
        finish_record.request,
    );
    let on_finish = move |result: &StepResult| {
        let record = Record {
            uid,
            pid,
            token_id: token_id.as_deref(),
            request,
            verdict: "job_finished",
            rule_id: Some(&result.rule_id),
            detail: None,
            outcome: Some(result.outcome),
            exit_code: result.exit_code,
            duration_ms: Some(result.duration_ms),
        };
        if let Err(err) = audit_log.append(&record) {
            tracing::error!(%err, "cannot write the audit log");
        }
    };
    let job = slot.start(running, on_finish);
    audit(
        agent,
        Record {
            rule_id: Some(&rule_id),
            detail: Some(format!("job {job}: {}", argv.join(" "))),
            ..caller.record("allowed")
        },
    );
    ResponseBody::JobStarted { job, rule_id }
}

fn run_steps(agent: &Agent, caller: &Caller<'_>, steps: &[Vec<String>]) -> ResponseBody {
    if steps.len() > MAX_STEPS || steps.is_empty() {
        let message = format!("{} steps: between 1 and {MAX_STEPS} allowed", steps.len());
        return audited_error(
            agent,
            caller,
            "rejected",
            message.clone(),
            ErrorCode::TooManySteps,
            message,
        );
    }
    // Every step is judged by the allowlist before anything runs.
    let mut commands = Vec::with_capacity(steps.len());
    for (step_idx, argv) in steps.iter().enumerate() {
        match agent.policy.check(argv) {
            Ok(command) => commands.push(command),
            Err(rejected) => {
                return refuse(agent, caller, allowlist_rejection(rejected, Some(step_idx)));
            }
        }
    }
    // Exec-time checks run just before each step: an earlier step may create what a later one
    // needs (a mount directory, a filesystem).
    let mut results = Vec::with_capacity(commands.len());
    for (step_idx, command) in commands.into_iter().enumerate() {
        let arg_sources = command.arg_sources.clone();
        let prepared = match exec::prepare(command) {
            Ok(prepared) => prepared,
            Err(err) => {
                let rejection = exec_rejection(&err, &arg_sources, Some(step_idx));
                record_rejection(agent, caller, None, &rejection);
                return ResponseBody::Steps {
                    results,
                    completed: false,
                    rejection: Some(rejection),
                };
            }
        };
        let effect = prepared.command().effect;
        if let Err(err) = record_decision(agent, caller, &prepared) {
            return unrecorded(&err);
        }
        let result = exec::run(prepared);
        record_result(agent, caller, &result, effect);
        let succeeded = result.succeeded();
        results.push(result);
        if !succeeded {
            return ResponseBody::Steps {
                results,
                completed: false,
                rejection: None,
            };
        }
    }
    ResponseBody::Steps {
        results,
        completed: true,
        rejection: None,
    }
}

/// Gathers every raw fact in one round trip. Each command goes through the allowlist like any
/// request and must match a read-only rule that is not a job; a command that is refused or
/// fails makes its text [`FactText::Unavailable`] with the reason (the host then treats what
/// it would have said as unknown), except lsblk, without which there are no facts.
fn facts(agent: &Agent, caller: &Caller<'_>) -> ResponseBody {
    audit_read(agent, caller.record("facts"));
    let lsblk = match read_fact(agent, caller, &owned(fact_commands::LSBLK_ARGV)) {
        Ok(text) => text,
        Err(reason) => return error(ErrorCode::FactUnavailable, reason),
    };
    // Only the devices the allowlist lets this agent probe (the demo's accepts loop devices
    // only); the others are left out, so the host knows they were not looked at. One call per
    // device: given several, blkid stops at the first blank one.
    // The probes run on `PROBE_THREADS` threads at once.
    let probe_argvs: Vec<(Vec<String>, String)> =
        facts::block_devices(Path::new("/sys/class/block"))
            .into_iter()
            .map(|device| (fact_commands::blkid_probe_argv(&device), device))
            .filter(|(argv, _)| agent.policy.check(argv).is_ok())
            .collect();
    let chunk_len = probe_argvs
        .len()
        .div_ceil(fact_commands::PROBE_THREADS)
        .max(1);
    let probes: Vec<Probe> = std::thread::scope(|scope| {
        let workers: Vec<_> = probe_argvs
            .chunks(chunk_len)
            .map(|chunk| {
                scope.spawn(move || {
                    chunk
                        .iter()
                        .map(|(argv, device)| Probe {
                            output: read_fact(agent, caller, argv).into(),
                            device: device.clone(),
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            // A worker that panicked leaves its devices out: the host then calls them
            // "not probed", never blank.
            .flat_map(|worker| worker.join().unwrap_or_default())
            .collect()
    });
    let mountinfo = facts::read_text(Path::new("/proc/self/mountinfo"));
    let pools = pool_readings(agent, caller, &mountinfo);
    ResponseBody::Facts {
        facts: Facts {
            lsblk,
            probes,
            btrfs_show: read_fact(agent, caller, &owned(fact_commands::BTRFS_SHOW_ARGV)).into(),
            mountinfo,
            swaps: facts::read_text(Path::new("/proc/swaps")),
            pools,
        },
    }
}

/// The health readings of each mounted btrfs filesystem whose mount path the read-only pool
/// rules accept (the others are left out, like unprobeable devices), at most
/// [`MAX_POOL_READINGS`]. A reading that fails is that pool's error text, never the facts'.
fn pool_readings(agent: &Agent, caller: &Caller<'_>, mountinfo: &FactText) -> Vec<PoolReadings> {
    let Ok(text) = mountinfo.text() else {
        return Vec::new();
    };
    let mounts = nos_machine::proc_text::parse_mountinfo(text);
    nos_machine::proc_text::btrfs_mount_points(&mounts, |path| {
        agent
            .policy
            .check(&fact_commands::device_stats_argv(path))
            .is_ok()
    })
    .into_iter()
    .take(MAX_POOL_READINGS)
    .map(|mount_path| PoolReadings {
        device_stats: read_fact(
            agent,
            caller,
            &fact_commands::device_stats_argv(&mount_path),
        )
        .into(),
        scrub_status: read_fact(
            agent,
            caller,
            &fact_commands::scrub_status_argv(&mount_path),
        )
        .into(),
        subvolumes: read_fact(
            agent,
            caller,
            &fact_commands::subvolume_list_argv(&mount_path),
        )
        .into(),
        mount_path,
    })
    .collect()
}

fn owned(argv: &[&str]) -> Vec<String> {
    argv.iter().map(|token| (*token).to_owned()).collect()
}

/// Runs one fact command; `Err` says why there is no text.
fn read_fact(agent: &Agent, caller: &Caller<'_>, argv: &[String]) -> Result<String, String> {
    let prepared = match judge(agent, argv, None) {
        Ok(prepared) if prepared.command().effect == Effect::Read && !prepared.command().job => {
            prepared
        }
        Ok(prepared) => {
            return Err(format!(
                "rule {} for this fact is not a read-only rule",
                prepared.command().rule_id
            ));
        }
        Err(rejection) => return Err(rejection.reason),
    };
    let result = exec::run(prepared);
    record_result(agent, caller, &result, Effect::Read);
    if !result.succeeded() {
        return Err(format!(
            "{} failed: {}",
            result.rule_id,
            result.stderr.text.trim()
        ));
    }
    if result.stdout.truncated_bytes > 0 {
        return Err(format!(
            "{}: output cut after {} bytes",
            result.rule_id,
            result.stdout.text.len()
        ));
    }
    Ok(result.stdout.text)
}

/// Appends a record of a read-only request (status poll, facts) without waiting for the disk.
fn audit_read(agent: &Agent, record: Record<'_>) {
    if let Err(err) = agent.audit.append_lazy(&record) {
        tracing::error!(%err, "cannot write the audit log");
    }
}

/// Appends to the audit log; a failure is logged loudly (the record also went to tracing).
fn audit(agent: &Agent, record: Record<'_>) {
    if let Err(err) = agent.audit.append(&record) {
        tracing::error!(%err, "cannot write the audit log");
    }
}
