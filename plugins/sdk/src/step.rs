//! Typed step builders: the only way the planners in this repository build steps.

use crate::{Effect, ManagedRequest, Plan, Request, Step};

fn argv_of(argv: &[&str]) -> Request {
    Request::Argv(argv.iter().map(|token| (*token).to_owned()).collect())
}

impl Step {
    /// A step that only reads state (`btrfs filesystem show`, `blkid`).
    pub fn read(id: &str, title: impl Into<String>, argv: &[&str]) -> Step {
        Step::new(id, title.into(), argv_of(argv), Effect::Read, None)
    }

    /// A step that changes state that can be undone (mount, open, add a device).
    pub fn state(id: &str, title: impl Into<String>, argv: &[&str]) -> Step {
        Step::new(id, title.into(), argv_of(argv), Effect::State, None)
    }

    /// A step that destroys or rewrites data; a human must type `confirmation` first.
    pub fn destructive(
        id: &str,
        title: impl Into<String>,
        argv: &[&str],
        confirmation: &str,
    ) -> Step {
        Step::new(
            id,
            title.into(),
            argv_of(argv),
            Effect::Destructive,
            Some(confirmation.to_owned()),
        )
    }

    /// A step that makes a managed file or entry exist (fstab/crypttab entry, key file, mount
    /// directory).
    pub fn ensure(id: &str, title: impl Into<String>, request: ManagedRequest) -> Step {
        Step::new(
            id,
            title.into(),
            Request::Ensure(request),
            Effect::State,
            None,
        )
    }

    /// A step that makes a managed file or entry be gone (an fstab entry, an empty mount
    /// directory).
    pub fn remove(id: &str, title: impl Into<String>, request: ManagedRequest) -> Step {
        Step::new(
            id,
            title.into(),
            Request::Remove(request),
            Effect::State,
            None,
        )
    }

    /// The argv to run if a later step fails.
    pub fn with_rollback(mut self, argv: &[&str]) -> Step {
        self.rollback = Some(argv_of(argv));
        self
    }

    /// Undo an `ensure` step if a later step fails: remove what it made.
    pub fn with_rollback_remove(mut self) -> Step {
        if let Request::Ensure(managed) = &self.request {
            self.rollback = Some(Request::Remove(managed.clone()));
        }
        self
    }

    fn new(
        id: &str,
        title: String,
        request: Request,
        effect: Effect,
        confirmation: Option<String>,
    ) -> Step {
        Step {
            id: id.to_owned(),
            title,
            request,
            effect,
            rollback: None,
            confirmation,
        }
    }
}

impl Plan {
    pub fn new() -> Plan {
        Plan {
            steps: Vec::new(),
            warnings: Vec::new(),
        }
    }

    pub fn push(&mut self, step: Step) {
        self.steps.push(step);
    }

    pub fn extend_steps(&mut self, steps: impl IntoIterator<Item = Step>) {
        self.steps.extend(steps);
    }

    pub fn warn(&mut self, warning: impl Into<String>) {
        self.warnings.push(warning.into());
    }

    /// The argv of each argv step, joined by spaces: for snapshot tests of planner logic.
    pub fn render_lines(&self) -> String {
        let mut out = String::new();
        for step in &self.steps {
            let request = render_request(&step.request);
            let effect = match step.effect {
                Effect::Read => "read",
                Effect::State => "state",
                Effect::Destructive => "destructive",
            };
            out.push_str(&format!("{} [{effect}] {request}", step.id));
            if let Some(word) = &step.confirmation {
                out.push_str(&format!(" (confirm: {word})"));
            }
            if let Some(rollback) = &step.rollback {
                out.push_str(&format!(" (rollback: {})", render_request(rollback)));
            }
            out.push('\n');
        }
        for warning in &self.warnings {
            out.push_str(&format!("warning: {warning}\n"));
        }
        out
    }
}

fn render_request(request: &Request) -> String {
    match request {
        Request::Argv(argv) => argv.join(" "),
        Request::Ensure(managed) => format!("ensure {}", render_managed(managed)),
        Request::Remove(managed) => format!("remove {}", render_managed(managed)),
    }
}

fn render_managed(managed: &ManagedRequest) -> String {
    match managed {
        ManagedRequest::MountDir(path) => format!("mount dir {path}"),
        ManagedRequest::KeyFile(path) => format!("key file {path}"),
        ManagedRequest::FstabEntry(e) => {
            format!(
                "fstab UUID={} {} btrfs {}",
                e.uuid,
                e.target,
                e.options.join(",")
            )
        }
        ManagedRequest::CrypttabEntry(e) => {
            format!(
                "crypttab {} UUID={} {} luks",
                e.name, e.device_uuid, e.key_file
            )
        }
    }
}

impl Default for Plan {
    fn default() -> Self {
        Plan::new()
    }
}
