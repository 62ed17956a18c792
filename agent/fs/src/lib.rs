//! nos-fs: the one way nos writes a file whole, for the agent (fstab, crypttab, their backups,
//! the token file, the bootstrap token, key files) and the host (its state files, the plugin
//! cache, the token file nosctl writes for nosd). Two kinds of writes share every step but the
//! commit: [`write_atomic`] (and [`write_atomic_owned`], for a file handed to another user)
//! replaces a file, [`create_new`] makes one that must not exist yet.
//!
//! [`write_atomic`] replaces `path` with new bytes so that a crash at any point leaves either
//! the old or the new content under that name, never a mix and never nothing:
//!
//! 1. open the directory of `path` (the one fsync'd in step 5);
//! 2. create a temporary sibling `.<name>.tmp.<pid>.<n>` with `O_CREAT | O_EXCL`, which never
//!    follows a symlink and never opens an existing file, give it to its [`Owner`] when one is
//!    asked for, then set exactly `mode` on it (the umask does not apply);
//! 3. write every byte and fsync the file;
//! 4. rename the temporary over `path`: this is the commit;
//! 5. fsync the directory, so that the rename itself survives a crash.
//!
//! **Fsync policy.** When [`write_atomic`] returns `Ok`, both the new content (step 3) and the
//! new directory entry (step 5) have been fsync'd: the write is durable on any filesystem that
//! honours fsync. An `Err` from any step before the rename leaves the old file untouched; an
//! `Err` from the directory fsync means the rename happened but may not survive a crash. On
//! every `Err` the temporary file is removed; a crash can leave one behind, which
//! [`remove_leftover_temps`] deletes (a temporary is never the committed state, so removing it
//! loses nothing acknowledged).
//!
//! [`create_new`] commits with `link(2)` instead of the rename in step 4, which fails when
//! anything (a file, a symlink, a dangling symlink) is at `path` ([`WriteError::Exists`]) and
//! never replaces it; the temporary name is then unlinked before the directory fsync. A crash
//! leaves no file or the whole file at `path`, never a short one, and the same fsync policy
//! holds.
//!
//! Because the file is replaced by rename, a reader that opened (or memory-mapped) the old file
//! keeps seeing the old bytes; nothing is ever truncated in place.
//!
//! What this crate does **not** do: it changes no owner unless asked ([`write_atomic_owned`];
//! otherwise the file belongs to the writing process: root for the agent, nosd's user for the
//! host); it does not serialise writers (two concurrent writes to one path each succeed and the
//! last rename wins, so callers hold their own lock); it does not check who may write the
//! directory (the agent walks a root-owned directory chain first, the host refuses a state or
//! cache directory others can write); and it creates no missing directory.
#![forbid(unsafe_code)]

use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The infix that marks a temporary file of [`write_atomic`] (and of the host's earlier
/// `<name>.tmp.<pid>.<random>` writer, so [`remove_leftover_temps`] finds both).
pub const TEMP_INFIX: &str = ".tmp.";

/// How many temporary names [`write_atomic`] tries before giving up: a name is taken only by a
/// leftover of an earlier process with the same pid (or by someone who can write the directory).
pub const MAX_TEMP_ATTEMPTS: u64 = 16;

/// A failed write or [`remove_leftover_temps`]: which step, on which path.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// `path` names no file (`/`, an empty path, or one ending in `..`).
    #[error("{path}: names no file to write")]
    NoFileName { path: PathBuf },
    /// [`create_new`] found something at `path`; nothing was written.
    #[error("{path}: already exists")]
    Exists { path: PathBuf },
    /// A step failed; `op` is a verb for the message ("create", "fsync directory", …).
    #[error("cannot {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl WriteError {
    /// The underlying IO error, for callers whose messages name the target path themselves.
    pub fn into_io(self) -> io::Error {
        match self {
            WriteError::NoFileName { path } => io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: names no file to write", path.display()),
            ),
            WriteError::Exists { path } => io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{}: already exists", path.display()),
            ),
            WriteError::Io { source, .. } => source,
        }
    }
}

/// Replaces `path` whole with `bytes`, the new file having exactly permission bits `mode`.
/// See the crate docs for the steps and the fsync policy.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), WriteError> {
    write_via_temp(path, bytes, mode, None, Commit::Replace)
}

/// The user and group a written file is given (`fchown` on the temporary, before any byte is
/// written): for root writing a file another user must read, such as nosctl writing nosd's
/// agent token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

/// [`write_atomic`], the new file owned by `owner`.
pub fn write_atomic_owned(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    owner: Owner,
) -> Result<(), WriteError> {
    write_via_temp(path, bytes, mode, Some(owner), Commit::Replace)
}

/// Creates `path` with `bytes` and exactly permission bits `mode`, or fails with
/// [`WriteError::Exists`] when anything is already there (see the crate docs).
pub fn create_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), WriteError> {
    write_via_temp(path, bytes, mode, None, Commit::CreateNew)
}

/// How the temporary becomes `path`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Commit {
    /// `rename(2)`: replaces whatever is at `path`.
    Replace,
    /// `link(2)`: fails when anything is at `path`.
    CreateNew,
}

fn write_via_temp(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    owner: Option<Owner>,
    commit: Commit,
) -> Result<(), WriteError> {
    let (dir_path, name) = split(path)?;
    let io_err = |op: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| WriteError::Io { op, path, source }
    };
    let dir = File::open(dir_path).map_err(io_err("open directory", dir_path))?;
    let (tmp_path, mut tmp) = create_temp(dir_path, name, mode, &NEXT_TEMP)?;
    let result = (|| {
        if let Some(Owner { uid, gid }) = owner {
            std::os::unix::fs::fchown(&tmp, Some(uid), Some(gid))
                .map_err(io_err("change the owner of", &tmp_path))?;
        }
        // After the chown, which may clear set-id bits: the mode ends exactly as asked.
        tmp.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(io_err("set the mode of", &tmp_path))?;
        tmp.write_all(bytes).map_err(io_err("write", &tmp_path))?;
        tmp.sync_all().map_err(io_err("fsync", &tmp_path))?;
        match commit {
            Commit::Replace => fs::rename(&tmp_path, path).map_err(io_err("rename onto", path)),
            Commit::CreateNew => fs::hard_link(&tmp_path, path).map_err(|source| {
                if source.kind() == io::ErrorKind::AlreadyExists {
                    WriteError::Exists {
                        path: path.to_path_buf(),
                    }
                } else {
                    io_err("link onto", path)(source)
                }
            }),
        }
    })();
    drop(tmp);
    // After an error the temporary is a partial file; after a link, a second name of the new
    // file (after a rename it is gone). A leftover is harmless and `remove_leftover_temps` finds it.
    if result.is_err() || commit == Commit::CreateNew {
        let _ = fs::remove_file(&tmp_path);
    }
    result?;
    dir.sync_all().map_err(io_err("fsync directory", dir_path))
}

/// Whether `file_name` is a temporary of [`write_atomic`] (or of the host's earlier writer).
pub fn is_temp_name(file_name: &OsStr) -> bool {
    file_name
        .to_str()
        .is_some_and(|name| name.contains(TEMP_INFIX))
}

/// Deletes every temporary file ([`is_temp_name`]) directly in `dir` and returns their paths.
/// Call it at start, before any writer runs.
pub fn remove_leftover_temps(dir: &Path) -> Result<Vec<PathBuf>, WriteError> {
    let entries = fs::read_dir(dir).map_err(|source| WriteError::Io {
        op: "list",
        path: dir.to_path_buf(),
        source,
    })?;
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        if !is_temp_name(&entry.file_name()) {
            continue;
        }
        let path = entry.path();
        fs::remove_file(&path).map_err(|source| WriteError::Io {
            op: "remove",
            path: path.clone(),
            source,
        })?;
        removed.push(path);
    }
    Ok(removed)
}

/// The directory to fsync and the file name: a bare relative name lives in `.`.
fn split(path: &Path) -> Result<(&Path, &OsStr), WriteError> {
    let no_file_name = || WriteError::NoFileName {
        path: path.to_path_buf(),
    };
    let name = path.file_name().ok_or_else(no_file_name)?;
    let dir = match path.parent() {
        Some(dir) if dir.as_os_str().is_empty() => Path::new("."),
        Some(dir) => dir,
        None => return Err(no_file_name()),
    };
    Ok((dir, name))
}

/// The number in the next temporary name of this process.
static NEXT_TEMP: AtomicU64 = AtomicU64::new(0);

/// Creates a fresh temporary sibling of `name` in `dir` (`O_CREAT | O_EXCL`, created with
/// `mode` minus the umask, so never wider than `mode`), numbered from `next`.
fn create_temp(
    dir: &Path,
    name: &OsStr,
    mode: u32,
    next: &AtomicU64,
) -> Result<(PathBuf, File), WriteError> {
    let mut attempt = 0;
    loop {
        let mut tmp_name = OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(
            "{TEMP_INFIX}{}.{}",
            std::process::id(),
            next.fetch_add(1, Ordering::Relaxed)
        ));
        let tmp_path = dir.join(tmp_name);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp_path)
        {
            Ok(file) => return Ok((tmp_path, file)),
            Err(err)
                if err.kind() == io::ErrorKind::AlreadyExists
                    && attempt + 1 < MAX_TEMP_ATTEMPTS =>
            {
                attempt += 1;
            }
            Err(source) => {
                return Err(WriteError::Io {
                    op: "create",
                    path: tmp_path,
                    source,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn new_file_gets_exactly_the_mode() {
        let dir = tempfile::tempdir().unwrap();
        for (name, mode) in [("a", 0o600), ("b", 0o644), ("c", 0o400), ("d", 0o777)] {
            let path = dir.path().join(name);
            write_atomic(&path, name.as_bytes(), mode).unwrap();
            let metadata = fs::metadata(&path).unwrap();
            assert_eq!(metadata.mode() & 0o7777, mode, "{name}");
            assert_eq!(fs::read(&path).unwrap(), name.as_bytes());
        }
        assert_eq!(names_in(dir.path()), ["a", "b", "c", "d"]);
    }

    #[test]
    fn replace_is_a_rename_and_sets_the_new_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write_atomic(&path, b"old", 0o644).unwrap();
        let mut old_reader = File::open(&path).unwrap();
        let old_inode = fs::metadata(&path).unwrap().ino();
        write_atomic(&path, b"new content", 0o600).unwrap();
        let metadata = fs::metadata(&path).unwrap();
        assert_eq!(metadata.mode() & 0o7777, 0o600);
        assert_ne!(
            metadata.ino(),
            old_inode,
            "replaced by rename, not in place"
        );
        assert_eq!(fs::read(&path).unwrap(), b"new content");
        // A reader of the old file keeps the old bytes (the plugin cache mmaps its artefacts).
        let mut old_bytes = Vec::new();
        old_reader.read_to_end(&mut old_bytes).unwrap();
        assert_eq!(old_bytes, b"old");
        assert_eq!(names_in(dir.path()), ["state.json"]);
    }

    #[test]
    fn a_symlink_at_the_target_is_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = dir.path().join("elsewhere");
        fs::write(&elsewhere, b"untouched").unwrap();
        let path = dir.path().join("link");
        std::os::unix::fs::symlink(&elsewhere, &path).unwrap();
        write_atomic(&path, b"file", 0o600).unwrap();
        assert!(fs::symlink_metadata(&path).unwrap().is_file());
        assert_eq!(fs::read(&elsewhere).unwrap(), b"untouched");
    }

    #[test]
    fn no_temp_file_is_left_on_error() {
        let dir = tempfile::tempdir().unwrap();
        // A non-empty directory at the target: the rename (the last step before the commit)
        // fails, after the temporary was created, written and fsync'd.
        let target = dir.path().join("target");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("inside"), b"x").unwrap();
        let err = write_atomic(&target, b"bytes", 0o600).unwrap_err();
        assert!(
            matches!(&err, WriteError::Io { op: "rename onto", path, .. } if *path == target),
            "{err}"
        );
        assert!(err.to_string().starts_with("cannot rename onto "), "{err}");
        assert_eq!(names_in(dir.path()), ["target"]);
        assert_eq!(names_in(&target), ["inside"]);
    }

    #[test]
    fn the_fsynced_directory_is_the_parent() {
        let split_of = |text: &str| {
            split(Path::new(text))
                .map(|(dir, name)| {
                    (
                        dir.display().to_string(),
                        name.to_string_lossy().into_owned(),
                    )
                })
                .map_err(|err| err.to_string())
        };
        assert_eq!(split_of("/etc/fstab"), Ok(("/etc".into(), "fstab".into())));
        assert_eq!(split_of("/fstab"), Ok(("/".into(), "fstab".into())));
        assert_eq!(split_of("fstab"), Ok((".".into(), "fstab".into())));
        assert_eq!(split_of("a/b"), Ok(("a".into(), "b".into())));
        for no_file in ["/", "", "a/.."] {
            assert!(split_of(no_file).is_err(), "{no_file:?}");
        }
        assert!(matches!(
            write_atomic(Path::new("/"), b"x", 0o600),
            Err(WriteError::NoFileName { .. })
        ));
        // A missing directory fails at the first step, before anything is created.
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let err = write_atomic(&missing.join("file"), b"x", 0o600).unwrap_err();
        assert!(
            matches!(&err, WriteError::Io { op: "open directory", path, .. } if *path == missing),
            "{err}"
        );
        assert_eq!(err.into_io().kind(), io::ErrorKind::NotFound);
        assert!(names_in(dir.path()).is_empty());
    }

    #[test]
    fn a_taken_temporary_name_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let name = OsStr::new("tokens.json");
        let pid = std::process::id();
        let plant = |n: u64| {
            fs::write(
                dir.path()
                    .join(format!(".tokens.json{TEMP_INFIX}{pid}.{n}")),
                b"",
            )
            .unwrap()
        };
        (0..3).for_each(plant);
        let next = AtomicU64::new(0);
        let (tmp_path, _file) = create_temp(dir.path(), name, 0o600, &next).unwrap();
        assert_eq!(
            tmp_path.file_name().unwrap().to_string_lossy(),
            format!(".tokens.json{TEMP_INFIX}{pid}.3")
        );
        // Every name within MAX_TEMP_ATTEMPTS taken: a typed `create` error, not a loop.
        (4..4 + MAX_TEMP_ATTEMPTS).for_each(plant);
        let err = create_temp(dir.path(), name, 0o600, &next).unwrap_err();
        assert!(
            matches!(&err, WriteError::Io { op: "create", source, .. }
                if source.kind() == io::ErrorKind::AlreadyExists),
            "{err}"
        );
    }

    #[test]
    fn an_owner_is_given_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let probe = dir.path().join("probe");
        fs::write(&probe, b"").unwrap();
        // Root hands the file to nobody; anyone else can only "give" it to themselves.
        let owner = match fs::metadata(&probe).unwrap() {
            metadata if metadata.uid() == 0 => Owner {
                uid: 65534,
                gid: 65534,
            },
            metadata => Owner {
                uid: metadata.uid(),
                gid: metadata.gid(),
            },
        };
        let token = dir.path().join("agent-token");
        write_atomic(&token, b"old", 0o644).unwrap();
        write_atomic_owned(&token, b"token", 0o600, owner).unwrap();
        let metadata = fs::metadata(&token).unwrap();
        assert_eq!(
            (metadata.uid(), metadata.gid(), metadata.mode() & 0o7777),
            (owner.uid, owner.gid, 0o600)
        );
        assert_eq!(fs::read(&token).unwrap(), b"token");
        assert_eq!(names_in(dir.path()), ["agent-token", "probe"]);
    }

    #[test]
    fn create_new_makes_a_file_once_and_never_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("tank.key");
        create_new(&key, b"secret", 0o400).unwrap();
        let metadata = fs::metadata(&key).unwrap();
        assert_eq!(
            (metadata.mode() & 0o7777, metadata.nlink()),
            (0o400, 1),
            "exact mode, and the temporary name is gone"
        );
        assert_eq!(fs::read(&key).unwrap(), b"secret");
        let err = create_new(&key, b"other", 0o400).unwrap_err();
        assert!(
            matches!(&err, WriteError::Exists { path } if *path == key),
            "{err}"
        );
        assert_eq!(err.into_io().kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&key).unwrap(), b"secret");
        // A dangling symlink counts as something: it is neither followed nor replaced.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &link).unwrap();
        assert!(matches!(
            create_new(&link, b"x", 0o600),
            Err(WriteError::Exists { .. })
        ));
        assert!(!dir.path().join("nowhere").exists());
        assert_eq!(names_in(dir.path()), ["link", "tank.key"]);
    }

    #[test]
    fn leftover_temporaries_are_recognised_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "state.json",
            "state.json.tmp.42.0011223344556677",
            ".fstab.tmp.7.0",
            "notatmp",
        ] {
            fs::write(dir.path().join(name), b"x").unwrap();
        }
        let mut removed: Vec<String> = remove_leftover_temps(dir.path())
            .unwrap()
            .iter()
            .map(|path| path.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        removed.sort();
        assert_eq!(
            removed,
            [".fstab.tmp.7.0", "state.json.tmp.42.0011223344556677"]
        );
        assert_eq!(names_in(dir.path()), ["notatmp", "state.json"]);
        assert!(matches!(
            remove_leftover_temps(&dir.path().join("missing")),
            Err(WriteError::Io { op: "list", .. })
        ));
    }
}
