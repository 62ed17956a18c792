//! Findings for `nosctl allowlist audit`: what in an allowlist deserves an auditor's eye.
//!
//! Pure: facts about the binaries on disk (owner, mode, symlinks, digest) are gathered by the
//! caller and passed in as `BinaryFacts`, so this module never touches the filesystem.

use std::fmt;

use super::Allowlist;
use super::grammar::{
    Arity, DeviceForm, Effect, InUsePolicy, Kind, MountPathSpec, OptionPattern, SubvolumeSpec,
};

/// How much a finding matters; `--fail-on` picks the threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(text: &str) -> Option<Severity> {
        Severity::ALL
            .into_iter()
            .find(|severity| severity.as_str() == text)
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    /// What kind of finding it is; its string form (`binary.writable`) is stable.
    pub code: FindingCode,
    /// The rule, type or binary it is about.
    pub subject: String,
    pub message: String,
}

/// The kind of a finding. Its string form ([`FindingCode::as_str`], `binary.writable`) is what
/// `nosctl allowlist audit` prints and its JSON carries, so it never changes; each code has one
/// severity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FindingCode {
    /// `settings.mount_root`, critical: a settings mount root is or lies in a system directory.
    SettingsMountRoot,
    /// `binary.unpinned`, low: a binary has no sha256 pin.
    BinaryUnpinned,
    /// `binary.missing`, high: a binary's path does not exist.
    BinaryMissing,
    /// `binary.not_file`, high: a binary's path is not a regular file.
    BinaryNotFile,
    /// `binary.owner`, critical: a binary is not owned by root.
    BinaryOwner,
    /// `binary.writable`, critical: a binary is writable by group or others.
    BinaryWritable,
    /// `binary.setid`, info: a binary is setuid or setgid.
    BinarySetid,
    /// `binary.symlink`, medium: a binary is reached through a symlink.
    BinarySymlink,
    /// `binary.parent`, critical: a parent directory of a binary is not root-owned or is group/other-writable.
    BinaryParent,
    /// `binary.digest`, critical: a binary's sha256 is not its pin.
    BinaryDigest,
    /// `type.device_by_content`, low: a device type accepts names chosen by whoever formatted the disk (by-label, by-uuid, by-partuuid).
    TypeDeviceByContent,
    /// `type.mount_root`, critical: a mount path type's root is or lies in a system directory.
    TypeMountRoot,
    /// `type.broad_int`, low: an int type accepts a very wide range.
    TypeBroadInt,
    /// `type.dangerous_mount_option`, high: a mount options type allows an option that changes what a mount is.
    TypeDangerousMountOption,
    /// `type.degraded`, low: a mount options type allows `degraded`.
    TypeDegraded,
    /// `rule.destructive`, info: a rule may destroy data.
    RuleDestructive,
    /// `rule.force_flag`, low: a rule allows a force flag.
    RuleForceFlag,
    /// `rule.in_use_allowed`, low: a rule's device param may name a device in use.
    RuleInUseAllowed,
    /// `rule.broad_variadic`, info: a variadic param takes many values.
    RuleBroadVariadic,
    /// `rule.repeated_devices`, medium: a variadic device param may repeat a device.
    RuleRepeatedDevices,
    /// `managed.key_removal`, high: key files may be removed.
    ManagedKeyRemoval,
}

impl FindingCode {
    pub const ALL: [FindingCode; 21] = [
        FindingCode::SettingsMountRoot,
        FindingCode::BinaryUnpinned,
        FindingCode::BinaryMissing,
        FindingCode::BinaryNotFile,
        FindingCode::BinaryOwner,
        FindingCode::BinaryWritable,
        FindingCode::BinarySetid,
        FindingCode::BinarySymlink,
        FindingCode::BinaryParent,
        FindingCode::BinaryDigest,
        FindingCode::TypeDeviceByContent,
        FindingCode::TypeMountRoot,
        FindingCode::TypeBroadInt,
        FindingCode::TypeDangerousMountOption,
        FindingCode::TypeDegraded,
        FindingCode::RuleDestructive,
        FindingCode::RuleForceFlag,
        FindingCode::RuleInUseAllowed,
        FindingCode::RuleBroadVariadic,
        FindingCode::RuleRepeatedDevices,
        FindingCode::ManagedKeyRemoval,
    ];

    /// The stable string form, `area.what`.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingCode::SettingsMountRoot => "settings.mount_root",
            FindingCode::BinaryUnpinned => "binary.unpinned",
            FindingCode::BinaryMissing => "binary.missing",
            FindingCode::BinaryNotFile => "binary.not_file",
            FindingCode::BinaryOwner => "binary.owner",
            FindingCode::BinaryWritable => "binary.writable",
            FindingCode::BinarySetid => "binary.setid",
            FindingCode::BinarySymlink => "binary.symlink",
            FindingCode::BinaryParent => "binary.parent",
            FindingCode::BinaryDigest => "binary.digest",
            FindingCode::TypeDeviceByContent => "type.device_by_content",
            FindingCode::TypeMountRoot => "type.mount_root",
            FindingCode::TypeBroadInt => "type.broad_int",
            FindingCode::TypeDangerousMountOption => "type.dangerous_mount_option",
            FindingCode::TypeDegraded => "type.degraded",
            FindingCode::RuleDestructive => "rule.destructive",
            FindingCode::RuleForceFlag => "rule.force_flag",
            FindingCode::RuleInUseAllowed => "rule.in_use_allowed",
            FindingCode::RuleBroadVariadic => "rule.broad_variadic",
            FindingCode::RuleRepeatedDevices => "rule.repeated_devices",
            FindingCode::ManagedKeyRemoval => "managed.key_removal",
        }
    }

    /// How much a finding of this kind matters.
    pub fn severity(self) -> Severity {
        match self {
            FindingCode::SettingsMountRoot => Severity::Critical,
            FindingCode::BinaryUnpinned => Severity::Low,
            FindingCode::BinaryMissing => Severity::High,
            FindingCode::BinaryNotFile => Severity::High,
            FindingCode::BinaryOwner => Severity::Critical,
            FindingCode::BinaryWritable => Severity::Critical,
            FindingCode::BinarySetid => Severity::Info,
            FindingCode::BinarySymlink => Severity::Medium,
            FindingCode::BinaryParent => Severity::Critical,
            FindingCode::BinaryDigest => Severity::Critical,
            FindingCode::TypeDeviceByContent => Severity::Low,
            FindingCode::TypeMountRoot => Severity::Critical,
            FindingCode::TypeBroadInt => Severity::Low,
            FindingCode::TypeDangerousMountOption => Severity::High,
            FindingCode::TypeDegraded => Severity::Low,
            FindingCode::RuleDestructive => Severity::Info,
            FindingCode::RuleForceFlag => Severity::Low,
            FindingCode::RuleInUseAllowed => Severity::Low,
            FindingCode::RuleBroadVariadic => Severity::Info,
            FindingCode::RuleRepeatedDevices => Severity::Medium,
            FindingCode::ManagedKeyRemoval => Severity::High,
        }
    }
}

/// Pads like a string, so `{:<28}` lines findings up in a table.
impl fmt::Display for FindingCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// What the caller found on disk for one binary path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BinaryFacts {
    pub path: String,
    pub state: BinaryState,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BinaryState {
    Missing,
    NotRegularFile,
    Present {
        owner_uid: u32,
        mode: u32,
        /// The first component of the path that is a symlink (`/sbin` on merged-/usr).
        symlinked_component: Option<String>,
        /// A parent directory not owned by root or writable by group/others.
        unsafe_parent: Option<String>,
        sha256: [u8; 32],
    },
}

/// Mount options that let a mount escape its intended shape.
const DANGEROUS_OPTIONS: [&str; 12] = [
    "bind", "rbind", "remount", "move", "loop", "device", "helper", "exec", "user", "users",
    "owner", "context",
];
/// Directories that must never be a mount root.
const SYSTEM_DIRS: [&str; 14] = [
    "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/proc", "/root", "/run", "/sbin",
    "/sys", "/usr", "/var",
];
/// An integer range wider than this is reported as broad.
const BROAD_INT_RANGE: u64 = 1_000_000;
/// A variadic param allowing more values than this is reported.
const BROAD_VARIADIC: usize = 8;

/// All findings, most severe first.
pub fn audit(allowlist: &Allowlist, facts: &[BinaryFacts]) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut add = |code: FindingCode, subject: &str, message: String| {
        findings.push(Finding {
            severity: code.severity(),
            code,
            subject: subject.to_owned(),
            message,
        })
    };

    for root in &allowlist.settings().mount_roots {
        if in_system_dir(root) {
            add(
                FindingCode::SettingsMountRoot,
                root,
                format!("mount root `{root}` is or lies in a system directory"),
            );
        }
    }
    for binary in allowlist.binaries() {
        if binary.sha256.is_none() {
            add(
                FindingCode::BinaryUnpinned,
                &binary.name,
                format!(
                    "{} is not pinned by sha256; a replaced binary would still run",
                    binary.path
                ),
            );
        }
        match facts
            .iter()
            .find(|found| found.path == binary.path)
            .map(|found| &found.state)
        {
            None => {}
            Some(BinaryState::Missing) => add(
                FindingCode::BinaryMissing,
                &binary.name,
                format!("{} does not exist", binary.path),
            ),
            Some(BinaryState::NotRegularFile) => add(
                FindingCode::BinaryNotFile,
                &binary.name,
                format!("{} is not a regular file", binary.path),
            ),
            Some(BinaryState::Present {
                owner_uid,
                mode,
                symlinked_component,
                unsafe_parent,
                sha256,
            }) => {
                if *owner_uid != 0 {
                    add(
                        FindingCode::BinaryOwner,
                        &binary.name,
                        format!("{} is owned by uid {owner_uid}, not root", binary.path),
                    );
                }
                if mode & 0o022 != 0 {
                    add(
                        FindingCode::BinaryWritable,
                        &binary.name,
                        format!(
                            "{} is writable by group or others (mode {:04o})",
                            binary.path,
                            mode & 0o7777
                        ),
                    );
                }
                if mode & 0o6000 != 0 {
                    add(
                        FindingCode::BinarySetid,
                        &binary.name,
                        format!(
                            "{} is setuid/setgid (mode {:04o}); the agent runs it as root anyway",
                            binary.path,
                            mode & 0o7777
                        ),
                    );
                }
                if let Some(component) = symlinked_component {
                    add(
                        FindingCode::BinarySymlink,
                        &binary.name,
                        format!("{} is reached through the symlink {component}", binary.path),
                    );
                }
                if let Some(parent) = unsafe_parent {
                    add(
                        FindingCode::BinaryParent,
                        &binary.name,
                        format!(
                            "{parent}, a parent of {}, is not root-owned or is group/other-writable",
                            binary.path
                        ),
                    );
                }
                if let Some(pin) = binary.sha256
                    && pin != *sha256
                {
                    add(
                        FindingCode::BinaryDigest,
                        &binary.name,
                        format!(
                            "{} has sha256 {}, not the pinned {}",
                            binary.path,
                            hex::encode(sha256),
                            hex::encode(pin)
                        ),
                    );
                }
            }
        }
    }
    for ty in allowlist.types() {
        match &ty.kind {
            Kind::Device(spec)
                if spec.forms.iter().any(|form| {
                    matches!(
                        form,
                        DeviceForm::ByLabel | DeviceForm::ByPartuuid | DeviceForm::ByUuid
                    )
                }) =>
            {
                add(
                    FindingCode::TypeDeviceByContent,
                    &ty.name,
                    "accepts /dev/disk/by-label|by-uuid|by-partuuid names, which whoever formatted a disk chooses; the agent resolves them to kernel names".to_owned(),
                );
            }
            Kind::MountPath(MountPathSpec { roots, .. })
            | Kind::Subvolume(SubvolumeSpec { roots, .. }) => {
                for root in roots {
                    if in_system_dir(root) {
                        add(
                            FindingCode::TypeMountRoot,
                            &ty.name,
                            format!("mount root `{root}` is or lies in a system directory"),
                        );
                    }
                }
            }
            Kind::Int { min, max } if max - min > BROAD_INT_RANGE => {
                add(
                    FindingCode::TypeBroadInt,
                    &ty.name,
                    format!("accepts a range of {} integers", max - min),
                );
            }
            Kind::MountOptions(spec) => {
                for pattern in &spec.allow {
                    if DANGEROUS_OPTIONS.contains(&pattern.key()) || pattern.key().starts_with("x-")
                    {
                        add(
                            FindingCode::TypeDangerousMountOption,
                            &ty.name,
                            format!("allows the mount option `{}`", pattern.key()),
                        );
                    }
                    if let OptionPattern::Exact(word) = pattern
                        && word == "degraded"
                    {
                        add(
                            FindingCode::TypeDegraded,
                            &ty.name,
                            "allows mounting degraded, which hides a missing device".to_owned(),
                        );
                    }
                }
            }
            _ => {}
        }
    }
    for rule in allowlist.rules() {
        if rule.effect == Effect::Destructive {
            add(
                FindingCode::RuleDestructive,
                &rule.id,
                format!(
                    "destructive: {}",
                    if rule.description.is_empty() {
                        "may destroy data"
                    } else {
                        &rule.description
                    }
                ),
            );
        }
        for flag in &rule.flags {
            if matches!(flag.token.as_str(), "-f" | "--force") {
                add(
                    FindingCode::RuleForceFlag,
                    &rule.id,
                    format!(
                        "allows the force flag `{}`, which overrides the tool's own safety checks",
                        flag.token
                    ),
                );
            }
        }
        for param in &rule.params {
            if let InUsePolicy::Allowed { reason } = &param.in_use {
                add(
                    FindingCode::RuleInUseAllowed,
                    &rule.id,
                    format!(
                        "{} may name a device in use (mounted, swap, held, the root device): {reason}",
                        param.name
                    ),
                );
            }
            if let Arity::Many { max, .. } = param.arity
                && max > BROAD_VARIADIC
            {
                add(
                    FindingCode::RuleBroadVariadic,
                    &rule.id,
                    format!("{} takes up to {max} values", param.name),
                );
            }
            if let Arity::Many {
                distinct: false, ..
            } = param.arity
                && matches!(allowlist.type_of(param.ty).kind, Kind::Device(_))
            {
                add(
                    FindingCode::RuleRepeatedDevices,
                    &rule.id,
                    format!("{} may repeat the same device", param.name),
                );
            }
        }
    }
    for rule in allowlist.managed_rules() {
        if rule.kind == super::ManagedKind::KeyFile
            && rule.actions.contains(&super::ManagedAction::Remove)
        {
            add(
                FindingCode::ManagedKeyRemoval,
                &rule.id,
                "key files may be removed, which makes their LUKS devices unreadable".to_owned(),
            );
        }
    }
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.subject.cmp(&b.subject))
    });
    findings
}

/// `/` itself, or a path at or below any other system directory.
fn in_system_dir(path: &str) -> bool {
    SYSTEM_DIRS
        .iter()
        .any(|dir| path == *dir || (*dir != "/" && path.starts_with(&format!("{dir}/"))))
}
