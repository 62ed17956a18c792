//! The loaded allowlist as plain data: binaries, placeholder types, rules.
//!
//! Everything here was validated by `load`; nothing here parses, matches or does IO. Types,
//! binaries, params and flags are referred to by index into their owning vector, so a rule can
//! never name something that does not exist.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// Where a definition came from: file name, 1-based line and column.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Origin {
    pub file: String,
    pub line: usize,
    pub col: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

/// File-wide settings; only the main file may set them.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// Mount paths live strictly below one of these (default `/srv`, `/mnt`).
    pub mount_roots: Vec<String>,
    /// Key files live directly in this directory (default `/etc/nos/keys`).
    pub key_dir: String,
    /// Appended to every `mount_options` value when rendering; no rule can remove them.
    pub forced_mount_options: Vec<String>,
    /// Added to every managed boot-table entry: to the options of an fstab entry (after the
    /// forced mount options) and to the fourth field of a crypttab entry (after `luks`). Always
    /// `nofail` and one `x-systemd.device-timeout=<n>s`, so a missing disk never stops a boot
    /// (see `parse::settings::DEFAULT_BOOT_OPTIONS`).
    pub forced_boot_options: Vec<String>,
    /// Limits for rules that do not set their own.
    pub default_limits: Limits,
}

/// A program that rules may run. A request names it by `name` or by exactly `path`.
#[derive(Clone, Debug, PartialEq)]
pub struct Binary {
    pub name: String,
    pub path: String,
    pub sha256: Option<[u8; 32]>,
    /// The program understands `--` as the end of options, so the agent renders it.
    pub end_of_options: bool,
    pub origin: Origin,
}

/// What a rule does to the system, for the admin and the auditor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Effect {
    /// Reads state only.
    Read,
    /// Changes state without destroying data (mount, balance).
    State,
    /// May destroy data (mkfs, luksFormat, device remove); needs a typed confirmation.
    Destructive,
}

impl Effect {
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Read => "read",
            Effect::State => "state",
            Effect::Destructive => "destructive",
        }
    }
}

/// Per-rule execution limits, enforced by the agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock budget; on expiry the process group gets SIGTERM.
    pub timeout: Duration,
    /// Grace between SIGTERM and SIGKILL.
    pub kill_after: Duration,
    /// Bytes of stdout kept; the rest is dropped and the truncation reported.
    pub max_stdout: usize,
    /// Bytes of stderr kept; the rest is dropped and the truncation reported.
    pub max_stderr: usize,
    /// Non-zero exit codes that are a state, not a failure (`1 = "running"`); 0 is always "ok".
    pub exit_states: BTreeMap<i32, String>,
}

/// A named placeholder type declared in `[[type]]`.
#[derive(Clone, Debug, PartialEq)]
pub struct TypeDef {
    pub name: String,
    pub kind: Kind,
    pub origin: Origin,
}

/// The closed set of placeholder kinds. Each accepts a small, regular language; none accepts a
/// token that starts with `-`, contains whitespace, a control character or a non-ASCII byte.
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    Device(DeviceSpec),
    MountPath(MountPathSpec),
    KeyFile(KeyFileSpec),
    Label(NameSpec),
    MapperName(NameSpec),
    Enum(Vec<String>),
    Int { min: u64, max: u64 },
    Devid { max: u64 },
    Uuid,
    MountOptions(MountOptionsSpec),
    Subvolume(SubvolumeSpec),
}

impl Kind {
    /// The name of every kind, as `kind = "…"` spells it, in declaration order.
    pub const NAMES: [&'static str; 11] = [
        "device",
        "mount_path",
        "key_file",
        "label",
        "mapper_name",
        "enum",
        "int",
        "devid",
        "uuid",
        "mount_options",
        "subvolume",
    ];

    /// The name of this kind, one of [`Kind::NAMES`].
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Device(_) => "device",
            Kind::MountPath(_) => "mount_path",
            Kind::KeyFile(_) => "key_file",
            Kind::Label(_) => "label",
            Kind::MapperName(_) => "mapper_name",
            Kind::Enum(_) => "enum",
            Kind::Int { .. } => "int",
            Kind::Devid { .. } => "devid",
            Kind::Uuid => "uuid",
            Kind::MountOptions(_) => "mount_options",
            Kind::Subvolume(_) => "subvolume",
        }
    }
}

/// The ways a block device may be named.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DeviceForm {
    /// `/dev/<kernel name>`, the name starting with one of `kernel_names`.
    Kernel,
    ById,
    ByUuid,
    ByPartuuid,
    ByLabel,
    ByPath,
    /// `/dev/mapper/<mapper name>`.
    Mapper,
}

impl DeviceForm {
    pub const ALL: [DeviceForm; 7] = [
        DeviceForm::Kernel,
        DeviceForm::ById,
        DeviceForm::ByUuid,
        DeviceForm::ByPartuuid,
        DeviceForm::ByLabel,
        DeviceForm::ByPath,
        DeviceForm::Mapper,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeviceForm::Kernel => "kernel",
            DeviceForm::ById => "by-id",
            DeviceForm::ByUuid => "by-uuid",
            DeviceForm::ByPartuuid => "by-partuuid",
            DeviceForm::ByLabel => "by-label",
            DeviceForm::ByPath => "by-path",
            DeviceForm::Mapper => "mapper",
        }
    }

    /// The directory a name of this form lives in.
    pub fn dir(self) -> &'static str {
        match self {
            DeviceForm::Kernel => "/dev",
            DeviceForm::ById => "/dev/disk/by-id",
            DeviceForm::ByUuid => "/dev/disk/by-uuid",
            DeviceForm::ByPartuuid => "/dev/disk/by-partuuid",
            DeviceForm::ByLabel => "/dev/disk/by-label",
            DeviceForm::ByPath => "/dev/disk/by-path",
            DeviceForm::Mapper => "/dev/mapper",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct DeviceSpec {
    pub forms: Vec<DeviceForm>,
    /// Kernel names are one of these prefixes followed by `[a-z0-9]+` (`sd` + `b1`).
    pub kernel_names: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct MountPathSpec {
    pub roots: Vec<String>,
    /// Components below the root: 1 ..= max_depth.
    pub max_depth: usize,
}

/// A btrfs subvolume inside a mounted pool: a share, a snapshot, or a snapshot container.
///
/// The pool is `<root>/P[/P]...` with 1 to `pool_depth` components (the pool's `mount_path`
/// depth); every component is a plain path component that does not start with `.`, except the
/// one fixed `.snapshots` component of the snapshot forms.
#[derive(Clone, Debug, PartialEq)]
pub struct SubvolumeSpec {
    pub roots: Vec<String>,
    pub pool_depth: usize,
    pub form: SubvolumeForm,
}

/// Which subvolumes of a pool a type names; the three languages are disjoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SubvolumeForm {
    /// `<pool>/<share>`.
    Share,
    /// `<pool>/.snapshots` or `<pool>/.snapshots/<share>`: the containers snapshots live in.
    SnapshotDir,
    /// `<pool>/.snapshots/<share>/<timestamp>`, the timestamp `YYYYMMDDTHHMMSSZ[-tag]`.
    Snapshot,
}

impl SubvolumeForm {
    pub const ALL: [SubvolumeForm; 3] = [
        SubvolumeForm::Share,
        SubvolumeForm::SnapshotDir,
        SubvolumeForm::Snapshot,
    ];

    /// The name `form = "…"` spells.
    pub fn as_str(self) -> &'static str {
        match self {
            SubvolumeForm::Share => "share",
            SubvolumeForm::SnapshotDir => "snapshot_dir",
            SubvolumeForm::Snapshot => "snapshot",
        }
    }
}

/// The one directory of a pool that holds its snapshots.
pub const SNAPSHOTS_DIR: &str = ".snapshots";

#[derive(Clone, Debug, PartialEq)]
pub struct KeyFileSpec {
    pub dir: String,
    /// Required file-name suffix (`.key`); may be empty.
    pub suffix: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NameSpec {
    pub max_len: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub struct MountOptionsSpec {
    pub allow: Vec<OptionPattern>,
    /// Items a request may give, not counting the forced ones.
    pub max_items: usize,
    /// The settings' forced options (`nosuid`, `nodev`): always accepted, never counted, and
    /// appended to the canonical value when missing.
    pub forced: Vec<String>,
}

/// One allowed mount option: a fixed word, or a fixed prefix followed by a typed value.
#[derive(Clone, Debug, PartialEq)]
pub enum OptionPattern {
    Exact(String),
    Valued { prefix: String, ty: TypeId },
}

impl OptionPattern {
    /// The option's key (the part before `=`), used to reject duplicates.
    pub fn key(&self) -> &str {
        let text = match self {
            OptionPattern::Exact(word) => word.as_str(),
            OptionPattern::Valued { prefix, .. } => prefix.as_str(),
        };
        text.split('=').next().unwrap_or(text)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TypeId(pub usize);

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BinaryId(pub usize);

/// One `[[rule]]`: the only shape of argv it admits.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    pub id: String,
    pub description: String,
    pub binary: BinaryId,
    pub effect: Effect,
    pub template: Vec<Item>,
    pub params: Vec<Param>,
    pub flags: Vec<Flag>,
    /// Params whose values must all differ from each other (`replace start` old != new).
    pub distinct: Vec<usize>,
    /// Fewest flag occurrences a request must give (a balance needs a filter).
    pub min_flags: usize,
    pub limits: Limits,
    /// Long-running: the agent runs it as a job whose status can be polled.
    pub job: bool,
    /// May run while a job holds its pool (it only reads or stops that job's operation, such as
    /// a scrub or balance cancel): nosd takes no pool lock for a plan of such steps and reads.
    pub beside_jobs: bool,
    pub origin: Origin,
}

/// One element of a rule's token template.
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    /// This exact token.
    Literal(String),
    /// Zero or more declared flags, in any order in a request, rendered in declared order.
    Flags,
    /// `--`: optional in a request, rendered when the binary supports it.
    EndOfOptions,
    /// `[token]`: optional in a request, always rendered (`btrfs replace status -1`).
    Implied(String),
    /// The value(s) of `params[i]`.
    Param(usize),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    pub name: String,
    pub ty: TypeId,
    pub arity: Arity,
    /// Whether the agent refuses this param's devices when they are in use. Only a device param
    /// of a state-changing or destructive rule is ever checked; read-only rules never are.
    pub in_use: InUsePolicy,
}

/// What the agent does, just before the spawn, with a device argument that is in use (the
/// device or one of its partitions mounted, claimed exclusively, held by md/dm, active swap, or
/// holding the root filesystem).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InUsePolicy {
    /// Refused: the default for every device param, and the only policy of a non-device one.
    Refused,
    /// The param names a device that is in use by design (a member of the mounted pool being
    /// changed, as for `btrfs device remove`); declared in the allowlist with its reason.
    Allowed { reason: String },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arity {
    One,
    Many {
        min: usize,
        max: usize,
        distinct: bool,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Flag {
    pub name: String,
    /// `-f`, `-L` (value in the next token) or `-dconvert=` (value joined).
    pub token: String,
    pub value: FlagValue,
    /// How often it may appear.
    pub max: usize,
    /// Indexes of flags it may not be combined with.
    pub conflicts: Vec<usize>,
    /// Indexes of flags that must be present when this one is.
    pub requires: Vec<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlagValue {
    None,
    /// The value is the next token.
    Separate(TypeId),
    /// The value follows the token in the same argv element.
    Joined(TypeId),
}

impl FlagValue {
    pub fn ty(self) -> Option<TypeId> {
        match self {
            FlagValue::None => None,
            FlagValue::Separate(ty) | FlagValue::Joined(ty) => Some(ty),
        }
    }
}
