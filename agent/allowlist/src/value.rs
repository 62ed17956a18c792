//! Static checks of single tokens against placeholder kinds, and the typed values they yield.
//!
//! Pure: no filesystem access. A path that passes here may still be refused by the agent's
//! exec-time checks (block device, symlinks, ownership); this module only guarantees the shape.

use std::fmt;

use super::grammar::{
    DeviceForm, DeviceSpec, KeyFileSpec, Kind, MountOptionsSpec, MountPathSpec, NameSpec,
    OptionPattern, SNAPSHOTS_DIR, SubvolumeForm, SubvolumeSpec, TypeDef,
};

/// Longest path component accepted (NAME_MAX).
pub const MAX_COMPONENT_LEN: usize = 255;
/// Longest path accepted (PATH_MAX).
pub const MAX_PATH_LEN: usize = 4096;
/// Longest decimal integer accepted (u64 has 20 digits).
const MAX_INT_DIGITS: usize = 20;

/// A value that passed its type's static check, in canonical form.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Value {
    Device(String),
    MountPath(String),
    KeyFile(String),
    Label(String),
    MapperName(String),
    Enum(String),
    Int(u64),
    Devid(u64),
    Uuid(String),
    /// The items in request order, followed by the forced options that were missing.
    MountOptions(Vec<String>),
    Subvolume(String),
}

impl Value {
    /// The token this value renders to.
    pub fn render(&self) -> String {
        match self {
            Value::Device(text)
            | Value::MountPath(text)
            | Value::KeyFile(text)
            | Value::Label(text)
            | Value::MapperName(text)
            | Value::Enum(text)
            | Value::Uuid(text)
            | Value::Subvolume(text) => text.clone(),
            Value::Int(n) | Value::Devid(n) => n.to_string(),
            Value::MountOptions(items) => items.join(","),
        }
    }
}

/// Why a token is not a value of a type. Messages are lowercase and name what was wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValueError {
    Empty,
    LeadingDash,
    NotAbsolute,
    TrailingSlash,
    EmptyComponent,
    DotComponent(String),
    BadChar {
        ch: char,
        at: usize,
    },
    ComponentTooLong {
        len: usize,
    },
    PathTooLong {
        len: usize,
    },
    NotUnder {
        dirs: Vec<String>,
    },
    RootItself(String),
    TooDeep {
        depth: usize,
        max: usize,
    },
    DeviceForm {
        path: String,
    },
    KernelName {
        name: String,
        prefixes: Vec<String>,
    },
    MapperControl,
    KeySuffix {
        suffix: String,
    },
    HiddenName,
    TooLong {
        len: usize,
        max: usize,
    },
    NotInEnum {
        values: Vec<String>,
    },
    NotDecimal,
    LeadingZero,
    OutOfRange {
        min: u64,
        max: u64,
    },
    NotUuid,
    OptionEmptyItem,
    OptionNotAllowed {
        item: String,
    },
    OptionDuplicate {
        key: String,
    },
    OptionValue {
        item: String,
        error: Box<ValueError>,
    },
    TooManyOptions {
        n: usize,
        max: usize,
    },
    /// The path has the wrong shape for its subvolume form (the pool's depth included).
    SubvolumeShape {
        form: SubvolumeForm,
        pool_depth: usize,
    },
    /// The last component of a snapshot path is not a timestamp.
    SnapshotName(String),
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueError::Empty => write!(f, "is empty"),
            ValueError::LeadingDash => write!(
                f,
                "starts with `-` where a value is expected (option injection)"
            ),
            ValueError::NotAbsolute => write!(f, "is not an absolute path"),
            ValueError::TrailingSlash => write!(f, "ends with `/`"),
            ValueError::EmptyComponent => write!(f, "has an empty path component (`//`)"),
            ValueError::DotComponent(dot) => write!(f, "has a `{dot}` path component"),
            ValueError::BadChar { ch, at } => write!(
                f,
                "has the character {} at byte {at}, outside the allowed set",
                escape_char(*ch)
            ),
            ValueError::ComponentTooLong { len } => write!(
                f,
                "has a path component of {len} bytes (at most {MAX_COMPONENT_LEN})"
            ),
            ValueError::PathTooLong { len } => {
                write!(f, "is a path of {len} bytes (at most {MAX_PATH_LEN})")
            }
            ValueError::NotUnder { dirs } => write!(f, "is not below {}", dirs.join(" or ")),
            ValueError::RootItself(root) => write!(
                f,
                "is the root `{root}` itself, not a path strictly below it"
            ),
            ValueError::TooDeep { depth, max } => {
                write!(f, "is {depth} components below its root (at most {max})")
            }
            ValueError::DeviceForm { .. } => write!(
                f,
                "is not a device path of an allowed form (/dev/<kernel name>, /dev/disk/by-*/<name>, /dev/mapper/<name>)"
            ),
            ValueError::KernelName { name, prefixes } => write!(
                f,
                "`{name}` is not a kernel device name ({}, then [a-z0-9]+)",
                prefixes.join("|")
            ),
            ValueError::MapperControl => {
                write!(f, "names /dev/mapper/control, which is not a block device")
            }
            ValueError::KeySuffix { suffix } => write!(f, "does not end with `{suffix}`"),
            ValueError::HiddenName => write!(f, "is a hidden name (starts with `.`)"),
            ValueError::SubvolumeShape { form, pool_depth } => write!(
                f,
                "is not a {} path ({}, the pool 1 to {pool_depth} components below a mount root)",
                form.as_str(),
                subvolume_shape(*form)
            ),
            ValueError::SnapshotName(name) => write!(
                f,
                "has the snapshot name `{}`, not YYYYMMDDTHHMMSSZ[-tag] (tag: [a-z0-9]{{1,32}})",
                escape(name)
            ),
            ValueError::TooLong { len, max } => write!(f, "is {len} bytes long (at most {max})"),
            ValueError::NotInEnum { values } => write!(f, "is not one of {}", values.join(", ")),
            ValueError::NotDecimal => write!(f, "is not an unsigned decimal integer"),
            ValueError::LeadingZero => write!(f, "has a leading zero"),
            ValueError::OutOfRange { min, max } => write!(f, "is outside {min}..={max}"),
            ValueError::NotUuid => write!(
                f,
                "is not a canonical lowercase uuid (8-4-4-4-12 hex digits)"
            ),
            ValueError::OptionEmptyItem => write!(f, "has an empty mount option"),
            ValueError::OptionNotAllowed { item } => {
                write!(f, "has the mount option `{item}`, which is not allowed")
            }
            ValueError::OptionDuplicate { key } => write!(f, "repeats the mount option `{key}`"),
            ValueError::OptionValue { item, error } => {
                write!(f, "has the mount option `{item}` whose value {error}")
            }
            ValueError::TooManyOptions { n, max } => {
                write!(f, "has {n} mount options (at most {max})")
            }
        }
    }
}

/// Shows a character so that an auditor can see what it is, whatever the terminal.
pub fn escape_char(ch: char) -> String {
    if ch.is_ascii_graphic() {
        format!("`{ch}`")
    } else {
        format!("U+{:04X}", ch as u32)
    }
}

/// Escapes a token for display: printable ASCII as is, everything else as `\u{..}`.
pub fn escape(token: &str) -> String {
    token
        .chars()
        .flat_map(|ch| {
            if ch == ' ' || ch.is_ascii_graphic() {
                vec![ch]
            } else {
                format!("\\u{{{:x}}}", ch as u32).chars().collect()
            }
        })
        .collect()
}

/// Checks `token` against the type `ty` of the allowlist whose types are `types`.
pub fn check(types: &[TypeDef], ty: &TypeDef, token: &str) -> Result<Value, ValueError> {
    check_forcing(types, ty, token, &[])
}

/// [`check`], where a `mount_options` value also gets `extra_forced` as forced options: accepted
/// when the token gives them, never counted against `max_items`, appended when missing, so each
/// is in the value exactly once. An fstab entry's options get the settings' boot options this
/// way ([`crate::managed`]). `extra_forced` means nothing to the other kinds.
pub fn check_forcing(
    types: &[TypeDef],
    ty: &TypeDef,
    token: &str,
    extra_forced: &[String],
) -> Result<Value, ValueError> {
    if token.is_empty() {
        return Err(ValueError::Empty);
    }
    if token.starts_with('-') {
        return Err(ValueError::LeadingDash);
    }
    match &ty.kind {
        Kind::Device(spec) => check_device(spec, token).map(|()| Value::Device(token.to_owned())),
        Kind::MountPath(spec) => {
            check_mount_path(spec, token).map(|()| Value::MountPath(token.to_owned()))
        }
        Kind::KeyFile(spec) => {
            check_key_file(spec, token).map(|()| Value::KeyFile(token.to_owned()))
        }
        Kind::Label(spec) => {
            check_name(spec, token, is_label_char).map(|()| Value::Label(token.to_owned()))
        }
        Kind::MapperName(spec) => {
            check_name(spec, token, is_mapper_char).map(|()| Value::MapperName(token.to_owned()))
        }
        Kind::Enum(values) => {
            if values.iter().any(|value| value == token) {
                Ok(Value::Enum(token.to_owned()))
            } else {
                Err(ValueError::NotInEnum {
                    values: values.clone(),
                })
            }
        }
        Kind::Int { min, max } => check_int(token, *min, *max).map(Value::Int),
        Kind::Devid { max } => check_int(token, 1, *max).map(Value::Devid),
        Kind::Uuid => check_uuid(token).map(|()| Value::Uuid(token.to_owned())),
        Kind::MountOptions(spec) => {
            check_mount_options(types, spec, extra_forced, token).map(Value::MountOptions)
        }
        Kind::Subvolume(spec) => {
            check_subvolume(spec, token).map(|()| Value::Subvolume(token.to_owned()))
        }
    }
}

/// The shape of a subvolume form's paths, in words.
pub fn subvolume_shape(form: SubvolumeForm) -> &'static str {
    match form {
        SubvolumeForm::Share => "<pool>/<share>",
        SubvolumeForm::SnapshotDir => "<pool>/.snapshots or <pool>/.snapshots/<share>",
        SubvolumeForm::Snapshot => "<pool>/.snapshots/<share>/<timestamp>",
    }
}

/// A path component character: `[A-Za-z0-9._@:+-]`.
pub fn is_component_char(ch: char) -> bool {
    ch.is_ascii_alphanumeric() || matches!(ch, '.' | '_' | '@' | ':' | '+' | '-')
}

/// A label character: `[A-Za-z0-9._-]`.
pub fn is_label_char(ch: char) -> bool {
    ch.is_ascii_alphanumeric() || matches!(ch, '.' | '_' | '-')
}

/// A device-mapper name character: `[A-Za-z0-9_-]`.
pub fn is_mapper_char(ch: char) -> bool {
    ch.is_ascii_alphanumeric() || matches!(ch, '_' | '-')
}

/// The components of an absolute path after the static checks every path gets.
///
/// ```text
/// path      = 1*( "/" component )
/// component = 1*255( ALPHA / DIGIT / "." / "_" / "@" / ":" / "+" / "-" ), not "." or ".."
/// ```
pub fn path_components(path: &str) -> Result<Vec<&str>, ValueError> {
    if path.len() > MAX_PATH_LEN {
        return Err(ValueError::PathTooLong { len: path.len() });
    }
    if let Some((at, ch)) = path
        .char_indices()
        .find(|&(_, ch)| ch != '/' && !is_component_char(ch))
    {
        return Err(ValueError::BadChar { ch, at });
    }
    let Some(rest) = path.strip_prefix('/') else {
        return Err(ValueError::NotAbsolute);
    };
    if rest.is_empty() || rest.ends_with('/') {
        return Err(ValueError::TrailingSlash);
    }
    let components: Vec<&str> = rest.split('/').collect();
    for component in &components {
        match *component {
            "" => return Err(ValueError::EmptyComponent),
            "." | ".." => return Err(ValueError::DotComponent((*component).to_owned())),
            _ if component.len() > MAX_COMPONENT_LEN => {
                return Err(ValueError::ComponentTooLong {
                    len: component.len(),
                });
            }
            _ => {}
        }
    }
    Ok(components)
}

/// The part of `path` strictly below the directory `dir`, if `path` is below it.
fn strip_dir<'a>(path: &'a str, dir: &str) -> Option<&'a str> {
    path.strip_prefix(dir)?.strip_prefix('/')
}

fn check_device(spec: &DeviceSpec, path: &str) -> Result<(), ValueError> {
    path_components(path)?;
    let form_error = || ValueError::DeviceForm {
        path: path.to_owned(),
    };
    // The most specific directory wins: `/dev/disk/by-id/x` is never read as a kernel name.
    let (form, name) = DeviceForm::ALL
        .iter()
        .rev()
        .find_map(|&form| strip_dir(path, form.dir()).map(|name| (form, name)))
        .ok_or_else(form_error)?;
    if name.contains('/') || !spec.forms.contains(&form) {
        return Err(form_error());
    }
    match form {
        DeviceForm::Kernel => check_kernel_name(spec, name),
        DeviceForm::Mapper if name == "control" => Err(ValueError::MapperControl),
        DeviceForm::Mapper => check_name(&NameSpec { max_len: 127 }, name, is_mapper_char),
        _ if name.starts_with('.') => Err(ValueError::HiddenName),
        _ => Ok(()),
    }
}

fn check_kernel_name(spec: &DeviceSpec, name: &str) -> Result<(), ValueError> {
    let matches_prefix = spec.kernel_names.iter().any(|prefix| {
        name.strip_prefix(prefix.as_str()).is_some_and(|rest| {
            !rest.is_empty()
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
    });
    if matches_prefix {
        Ok(())
    } else {
        Err(ValueError::KernelName {
            name: name.to_owned(),
            prefixes: spec.kernel_names.clone(),
        })
    }
}

/// What `path` is below the root it is under: never a root itself, always under one.
fn below_roots<'a>(roots: &[String], path: &'a str) -> Result<&'a str, ValueError> {
    if let Some(root) = roots.iter().find(|root| root.as_str() == path) {
        return Err(ValueError::RootItself(root.clone()));
    }
    roots
        .iter()
        .find_map(|root| strip_dir(path, root))
        .ok_or_else(|| ValueError::NotUnder {
            dirs: roots.to_vec(),
        })
}

fn check_mount_path(spec: &MountPathSpec, path: &str) -> Result<(), ValueError> {
    let components = path_components(path)?;
    let below = below_roots(&spec.roots, path)?;
    let depth = below.split('/').count();
    if depth > spec.max_depth {
        return Err(ValueError::TooDeep {
            depth,
            max: spec.max_depth,
        });
    }
    if components
        .iter()
        .any(|component| component.starts_with('.'))
    {
        return Err(ValueError::HiddenName);
    }
    Ok(())
}

/// ```text
/// subvolume    = root "/" pool "/" ( share / ".snapshots" [ "/" share ] / ".snapshots/" share "/" timestamp )
/// pool         = component *( "/" component )          ; 1..=pool_depth components
/// share        = component                              ; not starting with "."
/// timestamp    = 8DIGIT "T" 6DIGIT "Z" [ "-" 1*32( %x61-7A / DIGIT ) ]
/// ```
///
/// Which alternative a type takes is its form; the forms are disjoint (a share path has no
/// `.snapshots` component, the two snapshot forms differ in length).
fn check_subvolume(spec: &SubvolumeSpec, path: &str) -> Result<(), ValueError> {
    path_components(path)?;
    let below = below_roots(&spec.roots, path)?;
    let components: Vec<&str> = below.split('/').collect();
    let snapshots_idx = components
        .iter()
        .position(|component| *component == SNAPSHOTS_DIR);
    let pool_len = match snapshots_idx {
        Some(idx) => idx,
        None => components.len() - 1,
    };
    let tail_len = components.len() - pool_len;
    let shape_ok = (1..=spec.pool_depth).contains(&pool_len)
        && match spec.form {
            SubvolumeForm::Share => snapshots_idx.is_none() && tail_len == 1,
            SubvolumeForm::SnapshotDir => snapshots_idx.is_some() && (1..=2).contains(&tail_len),
            SubvolumeForm::Snapshot => snapshots_idx.is_some() && tail_len == 3,
        };
    if !shape_ok {
        return Err(ValueError::SubvolumeShape {
            form: spec.form,
            pool_depth: spec.pool_depth,
        });
    }
    let hidden = components
        .iter()
        .enumerate()
        .any(|(idx, component)| Some(idx) != snapshots_idx && component.starts_with('.'));
    if hidden {
        return Err(ValueError::HiddenName);
    }
    if spec.form == SubvolumeForm::Snapshot {
        let name = components.last().copied().unwrap_or_default();
        if !is_snapshot_name(name) {
            return Err(ValueError::SnapshotName(name.to_owned()));
        }
    }
    Ok(())
}

/// `YYYYMMDDTHHMMSSZ[-tag]` by shape only: the calendar is the retention crate's business; the
/// allowlist only needs the name to be inert and recognisable.
fn is_snapshot_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let digits = |range: std::ops::Range<usize>| bytes[range].iter().all(u8::is_ascii_digit);
    if bytes.len() < 16 || bytes[8] != b'T' || bytes[15] != b'Z' || !digits(0..8) || !digits(9..15)
    {
        return false;
    }
    match &bytes[16..] {
        [] => true,
        [b'-', tag @ ..] => {
            (1..=32).contains(&tag.len())
                && tag
                    .iter()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        }
        _ => false,
    }
}

fn check_key_file(spec: &KeyFileSpec, path: &str) -> Result<(), ValueError> {
    path_components(path)?;
    let name = strip_dir(path, &spec.dir)
        .filter(|name| !name.contains('/'))
        .ok_or_else(|| ValueError::NotUnder {
            dirs: vec![spec.dir.clone()],
        })?;
    if name.starts_with('.') {
        return Err(ValueError::HiddenName);
    }
    if !name.ends_with(spec.suffix.as_str()) || name.len() == spec.suffix.len() {
        return Err(ValueError::KeySuffix {
            suffix: spec.suffix.clone(),
        });
    }
    Ok(())
}

/// ```text
/// name = first *( char ) ; first = char except "." and "-" ; length 1..=max_len
/// ```
fn check_name(spec: &NameSpec, token: &str, allowed: fn(char) -> bool) -> Result<(), ValueError> {
    if let Some((at, ch)) = token.char_indices().find(|&(_, ch)| !allowed(ch)) {
        return Err(ValueError::BadChar { ch, at });
    }
    if token.len() > spec.max_len {
        return Err(ValueError::TooLong {
            len: token.len(),
            max: spec.max_len,
        });
    }
    if token.starts_with('.') {
        return Err(ValueError::HiddenName);
    }
    Ok(())
}

/// ```text
/// int = "0" / ( %x31-39 *DIGIT )     ; no sign, no leading zeros, at most 20 digits
/// ```
pub fn check_int(token: &str, min: u64, max: u64) -> Result<u64, ValueError> {
    if token.is_empty()
        || token.len() > MAX_INT_DIGITS
        || !token.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(ValueError::NotDecimal);
    }
    if token.len() > 1 && token.starts_with('0') {
        return Err(ValueError::LeadingZero);
    }
    match token.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(ValueError::OutOfRange { min, max }),
    }
}

/// ```text
/// uuid = 8hex "-" 4hex "-" 4hex "-" 4hex "-" 12hex   ; hex = DIGIT / %x61-66 (lowercase)
/// ```
fn check_uuid(token: &str) -> Result<(), ValueError> {
    let groups: Vec<&str> = token.split('-').collect();
    let lengths = groups.iter().map(|group| group.len()).collect::<Vec<_>>();
    let hex = |group: &&str| {
        group
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    if lengths == [8, 4, 4, 4, 12] && groups.iter().all(hex) {
        Ok(())
    } else {
        Err(ValueError::NotUuid)
    }
}

/// ```text
/// options = item *( "," item ) ; item = a forced option or one of the declared patterns
///                                ; keys distinct
/// ```
fn check_mount_options(
    types: &[TypeDef],
    spec: &MountOptionsSpec,
    extra_forced: &[String],
    token: &str,
) -> Result<Vec<String>, ValueError> {
    let mut items: Vec<String> = Vec::new();
    let mut keys: Vec<&str> = Vec::new();
    let mut n_requested = 0;
    let forced = || spec.forced.iter().chain(extra_forced);
    for item in token.split(',') {
        if item.is_empty() {
            return Err(ValueError::OptionEmptyItem);
        }
        let key = match forced().find(|forced| forced.as_str() == item) {
            Some(forced) => forced.as_str(),
            None => {
                n_requested += 1;
                if n_requested > spec.max_items {
                    return Err(ValueError::TooManyOptions {
                        n: n_requested,
                        max: spec.max_items,
                    });
                }
                match_option(types, spec, item)?.key()
            }
        };
        if keys.contains(&key) {
            return Err(ValueError::OptionDuplicate {
                key: key.to_owned(),
            });
        }
        keys.push(key);
        items.push(item.to_owned());
    }
    for forced in forced() {
        if !items.contains(forced) {
            items.push(forced.clone());
        }
    }
    Ok(items)
}

/// The one pattern that admits `item`; exact words win over valued prefixes.
pub fn match_option<'a>(
    types: &[TypeDef],
    spec: &'a MountOptionsSpec,
    item: &str,
) -> Result<&'a OptionPattern, ValueError> {
    if let Some(pattern) = spec
        .allow
        .iter()
        .find(|pattern| matches!(pattern, OptionPattern::Exact(word) if word == item))
    {
        return Ok(pattern);
    }
    let mut value_error = None;
    for pattern in &spec.allow {
        if let OptionPattern::Valued { prefix, ty } = pattern
            && let Some(value) = item.strip_prefix(prefix.as_str())
        {
            match check(types, &types[ty.0], value) {
                Ok(_) => return Ok(pattern),
                Err(error) => value_error = Some(error),
            }
        }
    }
    Err(match value_error {
        Some(error) => ValueError::OptionValue {
            item: escape(item),
            error: Box::new(error),
        },
        None => ValueError::OptionNotAllowed { item: escape(item) },
    })
}

/// Representative accepted values of a type: at least one of each shape it admits, including
/// its extremes. Used to find overlaps and to show examples.
pub fn samples(types: &[TypeDef], ty: &TypeDef) -> Vec<String> {
    let candidates: Vec<String> = match &ty.kind {
        Kind::Device(spec) => spec
            .forms
            .iter()
            .flat_map(|form| match form {
                DeviceForm::Kernel => spec
                    .kernel_names
                    .iter()
                    .flat_map(|prefix| [format!("/dev/{prefix}a"), format!("/dev/{prefix}0")])
                    .collect(),
                other => vec![format!("{}/a", other.dir())],
            })
            .collect(),
        Kind::MountPath(spec) => spec
            .roots
            .iter()
            .flat_map(|root| {
                [
                    format!("{root}/a"),
                    format!("{root}{}", "/a".repeat(spec.max_depth)),
                ]
            })
            .collect(),
        Kind::KeyFile(spec) => vec![format!("{}/a{}", spec.dir, spec.suffix)],
        Kind::Subvolume(spec) => spec
            .roots
            .iter()
            .flat_map(|root| {
                let deepest = "/a".repeat(spec.pool_depth);
                match spec.form {
                    SubvolumeForm::Share => {
                        vec![format!("{root}/a/a"), format!("{root}{deepest}/a")]
                    }
                    SubvolumeForm::SnapshotDir => vec![
                        format!("{root}/a/.snapshots"),
                        format!("{root}{deepest}/.snapshots/a"),
                    ],
                    SubvolumeForm::Snapshot => vec![
                        format!("{root}/a/.snapshots/a/20260101T000000Z"),
                        format!("{root}{deepest}/.snapshots/a/20261231T235959Z-hourly"),
                    ],
                }
            })
            .collect(),
        Kind::Label(spec) | Kind::MapperName(spec) => {
            vec!["a".to_owned(), "0".to_owned(), "a".repeat(spec.max_len)]
        }
        Kind::Enum(values) => values.clone(),
        Kind::Int { min, max } => vec![
            min.to_string(),
            max.to_string(),
            (min / 2 + max / 2).to_string(),
        ],
        Kind::Devid { max } => vec!["1".to_owned(), max.to_string()],
        Kind::Uuid => vec!["00000000-0000-0000-0000-000000000000".to_owned()],
        Kind::MountOptions(spec) => spec
            .allow
            .iter()
            .filter_map(|pattern| match pattern {
                OptionPattern::Exact(word) => Some(word.clone()),
                OptionPattern::Valued { prefix, ty } => samples(types, &types[ty.0])
                    .into_iter()
                    .next()
                    .map(|value| format!("{prefix}{value}")),
            })
            .chain(spec.forced.iter().cloned())
            .collect(),
    };
    candidates
        .into_iter()
        .filter(|token| check(types, ty, token).is_ok())
        .collect()
}

/// Tokens a type rejects, each showing one static rule: injection, traversal, lookalikes,
/// out-of-range values. Used to show rejected examples.
pub fn counter_samples(ty: &TypeDef) -> Vec<String> {
    let mut tokens = vec!["-f".to_owned()];
    match &ty.kind {
        Kind::Device(_) => tokens.extend(
            [
                "/dev/shm/x",
                "/dev/../etc/passwd",
                "/dev/sd\u{430}",
                "/tmp/disk.img",
                "/dev/mapper/control",
            ]
            .map(str::to_owned),
        ),
        Kind::MountPath(spec) => {
            let root = spec.roots.first().cloned().unwrap_or_default();
            tokens.extend([
                root.clone(),
                format!("{root}/../etc"),
                format!("{root}//x"),
                format!("{root}/x/"),
                "/etc/nos".to_owned(),
            ]);
            tokens.push(format!("{root}{}", "/a".repeat(spec.max_depth + 1)));
        }
        Kind::Subvolume(spec) => {
            let root = spec.roots.first().cloned().unwrap_or_default();
            tokens.extend([
                root.clone(),
                format!("{root}/pool"),
                format!("{root}/pool/../etc"),
                format!("{root}/pool/.hidden"),
                format!("{root}/pool/.snapshots/share/latest"),
                format!("{root}/pool/.snapshots/share/20260101T000000Z/x"),
                format!("{root}/pool/.snapshots/.snapshots/20260101T000000Z"),
                format!("{root}{}/share", "/a".repeat(spec.pool_depth + 1)),
            ]);
        }
        Kind::KeyFile(spec) => tokens.extend([
            format!("{}/../shadow{}", spec.dir, spec.suffix),
            format!("/tmp/a{}", spec.suffix),
            format!("{}/sub/a{}", spec.dir, spec.suffix),
        ]),
        Kind::Label(spec) | Kind::MapperName(spec) => tokens.extend([
            "a b".to_owned(),
            "a/b".to_owned(),
            ".hidden".to_owned(),
            "a".repeat(spec.max_len + 1),
        ]),
        Kind::Enum(values) => tokens.extend(values.first().map(|value| value.to_uppercase() + "x")),
        Kind::Int { max, .. } => tokens.extend([
            "01".to_owned(),
            "+1".to_owned(),
            max.saturating_add(1).to_string(),
        ]),
        Kind::Devid { max } => tokens.extend(["0".to_owned(), max.saturating_add(1).to_string()]),
        Kind::Uuid => tokens.extend(
            [
                "00000000-0000-0000-0000-00000000000G",
                "0000000000000000000000000000000000000",
            ]
            .map(str::to_owned),
        ),
        Kind::MountOptions(_) => tokens.extend(
            [
                "suid",
                "bind",
                "noatime,,ssd",
                "noatime,noatime",
                "loop",
                "device=/dev/sda",
            ]
            .map(str::to_owned),
        ),
    }
    tokens
}
