//! A plan as the host holds it: ordered steps of typed requests, as a planner returned them
//! and before anything has judged them. Plain data; [`validate`] enforces the size bounds a
//! plugin's output must respect, and only `check` turns a plan into a `CheckedPlan`.

use std::collections::BTreeSet;
use std::fmt;

/// At most this many steps in a plan.
pub const MAX_STEPS: usize = 256;
/// At most this many tokens in one argv (program included).
pub const MAX_ARGV_TOKENS: usize = 64;
/// At most this many bytes in one argv token, path or managed-entry field.
pub const MAX_TOKEN_BYTES: usize = 4096;
/// At most this many bytes in a step title or a warning.
pub const MAX_TEXT_BYTES: usize = 1024;
/// At most this many bytes in a step id or confirmation word.
pub const MAX_WORD_BYTES: usize = 64;
/// At most this many warnings in a plan.
pub const MAX_WARNINGS: usize = 64;
/// At most this many options in an fstab entry.
pub const MAX_OPTIONS: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub steps: Vec<Step>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Unique within the plan, `[a-z0-9-]`.
    pub id: String,
    pub title: String,
    pub request: Request,
    pub effect: Effect,
    pub rollback: Option<Request>,
    /// The word a human must type before a destructive step runs.
    pub confirmation: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// argv[0] is the program, bare or absolute. Never a shell string.
    Argv(Vec<String>),
    /// Make a managed file or entry exist.
    Ensure(ManagedRequest),
    /// Make a managed file or entry be gone.
    Remove(ManagedRequest),
}

/// A file the agent manages on the plan's behalf. Never a free-form file write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManagedRequest {
    /// A mount directory below a mount root.
    MountDir(String),
    /// A key file in the key directory; the agent fills it with random bytes.
    KeyFile(String),
    FstabEntry(FstabEntry),
    CrypttabEntry(CrypttabEntry),
}

/// `UUID=<uuid> <target> btrfs <options>` in nos's managed block of /etc/fstab. The allowlist
/// appends the forced mount and boot options (`nosuid,nodev,nofail,x-systemd.device-timeout=…`)
/// to `options` and refuses `degraded`; the checked step's canonical text shows the result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FstabEntry {
    pub uuid: String,
    pub target: String,
    pub options: Vec<String>,
}

/// `<name> UUID=<device_uuid> <key_file> luks,…` in nos's managed block of /etc/crypttab: the
/// allowlist decides the options after `luks` (`nofail,x-systemd.device-timeout=…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrypttabEntry {
    pub name: String,
    pub device_uuid: String,
    pub key_file: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Read,
    State,
    Destructive,
}

/// A planner's own answer when it will not plan: part of its contract, not a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The input does not match the planner's schema.
    InvalidInput(String),
    /// The request is understood but refused (a mounted device, raid5, …).
    Refused(String),
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Effect::Read => "read",
            Effect::State => "state",
            Effect::Destructive => "destructive",
        })
    }
}

impl fmt::Display for Request {
    /// argv joined by spaces (for people, never for a shell); managed requests as
    /// `ensure|remove <kind> <fields>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Request::Argv(argv) => f.write_str(&argv.join(" ")),
            Request::Ensure(managed) => write!(f, "ensure {managed}"),
            Request::Remove(managed) => write!(f, "remove {managed}"),
        }
    }
}

impl fmt::Display for ManagedRequest {
    /// As the allowlist describes the entry (`fstab UUID=… /mnt/… btrfs …`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        nos_allowlist::ManagedRequest::from(nos_protocol::ManagedRequest::from(self)).fmt(f)
    }
}

impl From<&ManagedRequest> for nos_protocol::ManagedRequest {
    fn from(managed: &ManagedRequest) -> Self {
        match managed {
            ManagedRequest::MountDir(path) => Self::MountDir { path: path.clone() },
            ManagedRequest::KeyFile(path) => Self::KeyFile { path: path.clone() },
            ManagedRequest::FstabEntry(entry) => Self::FstabEntry {
                uuid: entry.uuid.clone(),
                target: entry.target.clone(),
                options: entry.options.join(","),
            },
            ManagedRequest::CrypttabEntry(entry) => Self::CrypttabEntry {
                name: entry.name.clone(),
                device_uuid: entry.device_uuid.clone(),
                key: entry.key_file.clone(),
            },
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::InvalidInput(message) => write!(f, "invalid input: {message}"),
            Refusal::Refused(message) => write!(f, "refused: {message}"),
        }
    }
}

/// Check a plugin's plan against the size and shape bounds above; `Err` names the first
/// offending step or field. Runs before the allowlist sees anything.
pub fn validate(plan: &Plan) -> Result<(), String> {
    if plan.steps.len() > MAX_STEPS {
        return Err(format!(
            "plan has {} steps, more than {MAX_STEPS}",
            plan.steps.len()
        ));
    }
    if plan.warnings.len() > MAX_WARNINGS {
        return Err(format!(
            "plan has {} warnings, more than {MAX_WARNINGS}",
            plan.warnings.len()
        ));
    }
    for warning in &plan.warnings {
        bounded("warning", warning, MAX_TEXT_BYTES)?;
    }
    let mut ids = BTreeSet::new();
    for (step_idx, step) in plan.steps.iter().enumerate() {
        let at = |message: String| format!("step {step_idx}: {message}");
        let id_ok = (1..=MAX_WORD_BYTES).contains(&step.id.len())
            && step
                .id
                .bytes()
                .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-'));
        if !id_ok {
            return Err(at(format!(
                "id {:?} must be 1-{MAX_WORD_BYTES} of [a-z0-9-]",
                truncate(&step.id)
            )));
        }
        if !ids.insert(step.id.as_str()) {
            return Err(at(format!("id {:?} is used twice", step.id)));
        }
        bounded("title", &step.title, MAX_TEXT_BYTES).map_err(at)?;
        validate_request(&step.request).map_err(at)?;
        if let Some(rollback) = &step.rollback {
            validate_request(rollback).map_err(|m| at(format!("rollback: {m}")))?;
        }
        match (&step.effect, &step.confirmation) {
            (Effect::Destructive, None) => {
                return Err(at("a destructive step needs a confirmation word".into()));
            }
            (_, Some(word)) => {
                let word_ok = (1..=MAX_WORD_BYTES).contains(&word.len())
                    && word.chars().all(|c| c.is_ascii_graphic());
                if !word_ok {
                    return Err(at(format!(
                        "confirmation word {:?} must be 1-{MAX_WORD_BYTES} printable ASCII characters",
                        truncate(word)
                    )));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn validate_request(request: &Request) -> Result<(), String> {
    match request {
        Request::Argv(argv) => {
            if argv.is_empty() || argv.len() > MAX_ARGV_TOKENS {
                return Err(format!(
                    "argv has {} tokens, not 1-{MAX_ARGV_TOKENS}",
                    argv.len()
                ));
            }
            argv.iter()
                .try_for_each(|token| bounded("argv token", token, MAX_TOKEN_BYTES))
        }
        Request::Ensure(managed) | Request::Remove(managed) => validate_managed(managed),
    }
}

fn validate_managed(managed: &ManagedRequest) -> Result<(), String> {
    match managed {
        ManagedRequest::MountDir(path) => bounded("mount dir", path, MAX_TOKEN_BYTES),
        ManagedRequest::KeyFile(path) => bounded("key file path", path, MAX_TOKEN_BYTES),
        ManagedRequest::FstabEntry(entry) => {
            for field in [&entry.uuid, &entry.target] {
                bounded("fstab field", field, MAX_TOKEN_BYTES)?;
            }
            options(&entry.options)
        }
        ManagedRequest::CrypttabEntry(entry) => {
            for field in [&entry.name, &entry.device_uuid, &entry.key_file] {
                bounded("crypttab field", field, MAX_TOKEN_BYTES)?;
            }
            Ok(())
        }
    }
}

fn options(options: &[String]) -> Result<(), String> {
    if options.len() > MAX_OPTIONS {
        return Err(format!(
            "{} options, more than {MAX_OPTIONS}",
            options.len()
        ));
    }
    options
        .iter()
        .try_for_each(|option| bounded("option", option, MAX_TOKEN_BYTES))
}

/// Length bound, and no control characters (they would forge lines in fstab, logs or a terminal).
fn bounded(what: &str, text: &str, max_bytes: usize) -> Result<(), String> {
    if text.len() > max_bytes {
        return Err(format!(
            "{what} is {} bytes, more than {max_bytes}",
            text.len()
        ));
    }
    if let Some(c) = text.chars().find(|c| c.is_control()) {
        return Err(format!(
            "{what} {:?} contains control character {c:?}",
            truncate(text)
        ));
    }
    Ok(())
}

/// At most 64 characters of an untrusted string, for error messages.
fn truncate(text: &str) -> String {
    let mut out: String = text.chars().take(64).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(id: &str, argv: &[&str]) -> Step {
        Step {
            id: id.into(),
            title: "t".into(),
            request: Request::Argv(argv.iter().map(|t| (*t).into()).collect()),
            effect: Effect::Read,
            rollback: None,
            confirmation: None,
        }
    }

    fn plan(steps: Vec<Step>) -> Plan {
        Plan {
            steps,
            warnings: vec![],
        }
    }

    #[test]
    fn bounds_and_shapes() {
        assert_eq!(validate(&plan(vec![step("a", &["btrfs"])])), Ok(()));
        let cases: Vec<(Plan, &str)> = vec![
            (
                plan(vec![step("a", &[]); 1]),
                "step 0: argv has 0 tokens, not 1-64",
            ),
            (
                plan(vec![step("a", &["x"]), step("a", &["y"])]),
                "step 1: id \"a\" is used twice",
            ),
            (
                plan(vec![step("A b", &["x"])]),
                "step 0: id \"A b\" must be 1-64 of [a-z0-9-]",
            ),
            (
                plan(vec![step("a", &["x\nUUID=evil / btrfs"])]),
                "step 0: argv token \"x\\nUUID=evil / btrfs\" contains control character '\\n'",
            ),
            (
                plan(
                    (0..=MAX_STEPS)
                        .map(|i| step(&format!("s{i}"), &["x"]))
                        .collect(),
                ),
                "plan has 257 steps, more than 256",
            ),
            (
                Plan {
                    steps: vec![],
                    warnings: vec!["w".repeat(MAX_TEXT_BYTES + 1)],
                },
                "warning is 1025 bytes, more than 1024",
            ),
        ];
        for (plan, expected) in cases {
            assert_eq!(validate(&plan), Err(expected.to_owned()));
        }
        let mut destructive = step("wipe", &["mkfs.btrfs"]);
        destructive.effect = Effect::Destructive;
        assert_eq!(
            validate(&plan(vec![destructive.clone()])),
            Err("step 0: a destructive step needs a confirmation word".into())
        );
        destructive.confirmation = Some("two words".into());
        assert!(
            validate(&plan(vec![destructive]))
                .unwrap_err()
                .contains("printable ASCII")
        );
    }
}
