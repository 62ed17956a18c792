//! Managed-file requests: the only file changes nos asks of the agent, as typed requests judged
//! by the same placeholder types as argvs. There is no "write this file" request.
//!
//! ```text
//! mount_dir       path                         a directory below a mount root
//! key_file        path                         random key bytes made by the agent, 0400
//! fstab_entry     uuid, target, options        one line in nos's managed block of /etc/fstab
//! crypttab_entry  name, device_uuid, key       one line in nos's managed block of /etc/crypttab
//! ```
//!
//! Boot safety is policy here, not in the writer: every fstab and crypttab entry carries the
//! settings' `forced_boot_options` (`nofail` and an `x-systemd.device-timeout=`), whatever the
//! request says, and the fstab entry's options type may not allow `degraded` (a load error, see
//! [`NEVER_AT_BOOT`]). The explicit `mount` rule may still allow `degraded` for a confirmed repair.
//!
//! Pure: judges and canonicalises; the agent does the writing.

use super::Allowlist;
use super::grammar::{Effect, Kind, Origin, TypeId};
use super::matcher::{Reason, Rejection};
use super::value::{self, Value};

/// Boot goes on without the entry when its device is missing: systemd makes the mount (or the
/// crypt setup) only *wanted* by `local-fs.target` (`cryptsetup.target`), not required, so a
/// missing pool disk no longer drops the machine into emergency mode (systemd #5836).
pub const NOFAIL: &str = "nofail";
/// The option that bounds how long systemd waits for the entry's device to appear (its default
/// is `DefaultDeviceTimeoutSec=`, 90 s); valid in fstab (systemd.mount(5)) and crypttab(5).
pub const DEVICE_TIMEOUT_OPTION: &str = "x-systemd.device-timeout=";
/// Longest device timeout `forced_boot_options` may set, in seconds.
pub const MAX_DEVICE_TIMEOUT_S: u64 = 600;
/// The boot options when `[settings]` sets none. 30 s: a present disk shows up within a few
/// seconds of udev starting and a 3.5" disk spins up in 5 to 15 s, so 30 s is twice the slowest
/// healthy case; a missing disk then fails its entry after a third of systemd's default 90 s, and
/// units ordered after the pool (shares, backups) wait no longer than that. A disk slower than
/// this costs an unmounted pool (`nofail`), never a boot.
pub const DEFAULT_BOOT_OPTIONS: [&str; 2] = [NOFAIL, "x-systemd.device-timeout=30s"];
/// Mount options an fstab entry's options type may not allow: a pool is never mounted
/// `degraded` at boot, only by an explicit, confirmed mount. `ro` stays allowed (read-only at
/// boot is safe).
pub const NEVER_AT_BOOT: [&str; 1] = ["degraded"];
/// The first item of a crypttab entry's options: the device is LUKS; the boot options follow.
pub const CRYPTTAB_TYPE: &str = "luks";

/// What may be managed. Each kind has a fixed set of fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ManagedKind {
    MountDir,
    KeyFile,
    FstabEntry,
    CrypttabEntry,
}

impl ManagedKind {
    pub const ALL: [ManagedKind; 4] = [
        ManagedKind::MountDir,
        ManagedKind::KeyFile,
        ManagedKind::FstabEntry,
        ManagedKind::CrypttabEntry,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ManagedKind::MountDir => "mount_dir",
            ManagedKind::KeyFile => "key_file",
            ManagedKind::FstabEntry => "fstab_entry",
            ManagedKind::CrypttabEntry => "crypttab_entry",
        }
    }

    /// The fields of this kind and the placeholder kind each field's type must have.
    pub fn fields(self) -> &'static [(&'static str, &'static str)] {
        match self {
            ManagedKind::MountDir => &[("path", "mount_path")],
            ManagedKind::KeyFile => &[("path", "key_file")],
            ManagedKind::FstabEntry => &[
                ("uuid", "uuid"),
                ("target", "mount_path"),
                ("options", "mount_options"),
            ],
            ManagedKind::CrypttabEntry => &[
                ("name", "mapper_name"),
                ("device_uuid", "uuid"),
                ("key", "key_file"),
            ],
        }
    }
}

/// Whether the entry is to exist or to be gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ManagedAction {
    Ensure,
    Remove,
}

impl ManagedAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ManagedAction::Ensure => "ensure",
            ManagedAction::Remove => "remove",
        }
    }
}

/// One `[[managed]]` rule.
#[derive(Clone, Debug, PartialEq)]
pub struct ManagedRule {
    pub id: String,
    pub kind: ManagedKind,
    pub effect: Effect,
    pub description: String,
    pub actions: Vec<ManagedAction>,
    /// The type of each of the kind's fields, in `ManagedKind::fields` order.
    pub field_types: Vec<TypeId>,
    pub origin: Origin,
}

/// A request to change a managed file, as the allowlist judges it (the socket carries its wire
/// form, `nos_protocol::ManagedRequest`; the corpus of [`crate::testcases`] spells it as
/// `managed = { kind = "fstab_entry", uuid = …, target = …, options = … }`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
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

impl std::fmt::Display for ManagedRequest {
    /// The entry as requested, as people read it: `mount dir …`, `key file …`, `fstab UUID=…
    /// <target> btrfs <options>`, `crypttab <name> UUID=… <key> luks`. A [`ManagedMatch`] shows
    /// the entry as it will be written.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        describe(f, self, CRYPTTAB_TYPE)
    }
}

/// `request` for people, with `crypttab_options` as a crypttab entry's fourth field.
fn describe(
    f: &mut std::fmt::Formatter<'_>,
    request: &ManagedRequest,
    crypttab_options: &str,
) -> std::fmt::Result {
    match request {
        ManagedRequest::MountDir { path } => write!(f, "mount dir {path}"),
        ManagedRequest::KeyFile { path } => write!(f, "key file {path}"),
        ManagedRequest::FstabEntry {
            uuid,
            target,
            options,
        } => write!(f, "fstab UUID={uuid} {target} btrfs {options}"),
        ManagedRequest::CrypttabEntry {
            name,
            device_uuid,
            key,
        } => write!(
            f,
            "crypttab {name} UUID={device_uuid} {key} {crypttab_options}"
        ),
    }
}

impl ManagedRequest {
    pub fn kind(&self) -> ManagedKind {
        match self {
            ManagedRequest::MountDir { .. } => ManagedKind::MountDir,
            ManagedRequest::KeyFile { .. } => ManagedKind::KeyFile,
            ManagedRequest::FstabEntry { .. } => ManagedKind::FstabEntry,
            ManagedRequest::CrypttabEntry { .. } => ManagedKind::CrypttabEntry,
        }
    }

    /// The field values in `ManagedKind::fields` order.
    pub fn field_values(&self) -> Vec<&str> {
        match self {
            ManagedRequest::MountDir { path } | ManagedRequest::KeyFile { path } => vec![path],
            ManagedRequest::FstabEntry {
                uuid,
                target,
                options,
            } => vec![uuid, target, options],
            ManagedRequest::CrypttabEntry {
                name,
                device_uuid,
                key,
            } => vec![name, device_uuid, key],
        }
    }
}

/// The answer to "may the agent make this file change?".
#[must_use]
#[derive(Clone, Debug, PartialEq)]
pub enum ManagedVerdict {
    Allowed(ManagedMatch),
    Rejected(Rejection),
}

/// A managed request that passed, with its values canonical (mount options carry the forced ones).
#[derive(Clone, Debug, PartialEq)]
pub struct ManagedMatch {
    pub rule_id: String,
    pub effect: Effect,
    pub action: ManagedAction,
    pub request: ManagedRequest,
    pub values: Vec<Value>,
    /// The `max_depth` of the `mount_path` type the rule declares for its mount-path field
    /// (`path` of `mount_dir`, `target` of `fstab_entry`), `None` for kinds without one: the
    /// agent creates no mount directory deeper than this below its root.
    pub mount_depth: Option<usize>,
    /// The settings' `forced_boot_options` for an fstab or crypttab entry (an fstab entry's
    /// canonical options already end with them), empty for the other kinds.
    pub boot_options: Vec<String>,
}

impl ManagedMatch {
    /// The fourth field of a crypttab line: `luks` and the boot options,
    /// `luks,nofail,x-systemd.device-timeout=30s` by default.
    pub fn crypttab_options(&self) -> String {
        std::iter::once(CRYPTTAB_TYPE)
            .chain(self.boot_options.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl std::fmt::Display for ManagedMatch {
    /// The entry as it will be written, every forced option included: what a plan shows.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        describe(f, &self.request, &self.crypttab_options())
    }
}

pub(super) fn check(
    allowlist: &Allowlist,
    action: ManagedAction,
    request: &ManagedRequest,
) -> ManagedVerdict {
    let reject = |rule_id: Option<String>, reason| {
        ManagedVerdict::Rejected(Rejection {
            token_idx: None,
            rule_id,
            reason,
        })
    };
    let kind = request.kind();
    let Some(rule) = allowlist.managed.iter().find(|rule| rule.kind == kind) else {
        return reject(
            None,
            Reason::NoRules {
                program: format!("managed {}", kind.as_str()),
            },
        );
    };
    if !rule.actions.contains(&action) {
        return reject(
            Some(rule.id.clone()),
            Reason::ActionNotAllowed {
                action: action.as_str(),
            },
        );
    }
    // Only the two boot tables get the boot options; an fstab entry's go into its options.
    let boot_options = match kind {
        ManagedKind::FstabEntry | ManagedKind::CrypttabEntry => {
            allowlist.settings.forced_boot_options.clone()
        }
        ManagedKind::MountDir | ManagedKind::KeyFile => Vec::new(),
    };
    let mut values = Vec::new();
    let mut mount_depth = None;
    for ((field, _), (token, ty)) in kind
        .fields()
        .iter()
        .zip(request.field_values().into_iter().zip(&rule.field_types))
    {
        let type_def = allowlist.type_of(*ty);
        if let Kind::MountPath(spec) = &type_def.kind {
            mount_depth = Some(spec.max_depth);
        }
        let printable = token.chars().all(|ch| ch.is_ascii_graphic());
        match value::check_forcing(&allowlist.types, type_def, token, &boot_options) {
            Ok(value) if printable => values.push(value),
            Ok(_) => {
                let (at, ch) = token
                    .char_indices()
                    .find(|&(_, ch)| !ch.is_ascii_graphic())
                    .unwrap_or((0, ' '));
                return reject(Some(rule.id.clone()), Reason::ForbiddenChar { ch, at });
            }
            Err(error) => {
                return reject(
                    Some(rule.id.clone()),
                    Reason::BadValue {
                        what: (*field).to_owned(),
                        type_name: type_def.name.clone(),
                        token: (*token).to_owned(),
                        error,
                    },
                );
            }
        }
    }
    let canonical = |idx: usize| values[idx].render();
    let request = match kind {
        ManagedKind::MountDir => ManagedRequest::MountDir { path: canonical(0) },
        ManagedKind::KeyFile => ManagedRequest::KeyFile { path: canonical(0) },
        ManagedKind::FstabEntry => ManagedRequest::FstabEntry {
            uuid: canonical(0),
            target: canonical(1),
            options: canonical(2),
        },
        ManagedKind::CrypttabEntry => ManagedRequest::CrypttabEntry {
            name: canonical(0),
            device_uuid: canonical(1),
            key: canonical(2),
        },
    };
    ManagedVerdict::Allowed(ManagedMatch {
        rule_id: rule.id.clone(),
        effect: rule.effect,
        action,
        request,
        values,
        mount_depth,
        boot_options,
    })
}

/// Whether a type of `kind` may fill a field that needs `expected` (a `Kind::name`).
pub(super) fn fits(kind: &Kind, expected: &str) -> bool {
    kind.name() == expected
}
