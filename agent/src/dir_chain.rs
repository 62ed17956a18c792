//! The agent's one check that a path is reached only through directories no one but root can
//! change: used by the exec-time checks (mount targets, key files) and by the managed files
//! (fstab and crypttab directories, mount directories, the key directory).
//!
//! The walk starts at `/` and opens one component at a time with `openat2` relative to the
//! previous one (`O_PATH | O_NOFOLLOW`, `RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS`), so no
//! symlink is followed anywhere and each check is made on the very directory the next step
//! opens from: nothing can be swapped between a check and its use. Every directory on the way
//! must be root-owned and not group- or other-writable; because every ancestor passes, no
//! unprivileged user can replace a component after the walk either, which is what lets callers
//! keep using the path afterwards.
//!
//! This module never writes and never spawns.

use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
use nix::sys::stat::{FileStat, SFlag, fstat};

/// Why a path was refused; each message names the component at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("not absolute")]
    NotAbsolute,
    #[error("component {0:?} is not allowed")]
    BadComponent(String),
    #[error("{0}: is or passes through a symlink or non-directory")]
    SymlinkOrNotDir(String),
    #[error("{0}: is a symlink")]
    Symlink(String),
    #[error("{0}: not a directory")]
    NotDir(String),
    #[error("{component}: owned by uid {uid}, not root")]
    NotRootOwned { component: String, uid: u32 },
    #[error("{component}: writable by group or others (mode {mode:o})")]
    Writable { component: String, mode: u32 },
    /// `/` itself could not be opened or a component could not be stat'ed.
    #[error("{0}")]
    Io(String),
    /// A component could not be opened for another reason (missing, permission, …).
    #[error("{component}: {}", errno.desc())]
    Open { component: String, errno: Errno },
}

impl ChainError {
    /// Whether the walk stopped because a component does not exist.
    pub fn is_missing(&self) -> bool {
        matches!(
            self,
            ChainError::Open {
                errno: Errno::ENOENT,
                ..
            }
        )
    }
}

/// Walks to `path`, requiring every directory on the way, the last one included, to be
/// root-owned and not group- or other-writable. Returns the `O_PATH` fd of the directory.
pub fn open_dir(path: &Path) -> Result<(OwnedFd, FileStat), ChainError> {
    walk(path, true)
}

/// Walks to `path` like [`open_dir`], but the last component may be anything except a symlink
/// (the caller checks what it is: a key file, say). Returns its `O_PATH` fd and its stat.
pub fn open_entry(path: &Path) -> Result<(OwnedFd, FileStat), ChainError> {
    walk(path, false)
}

/// Whether `stat` (of `component`) is a root-owned directory not writable by group or others.
pub fn check_dir_owner(component: &str, stat: &FileStat) -> Result<(), ChainError> {
    if SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT != SFlag::S_IFDIR {
        return Err(ChainError::NotDir(component.to_owned()));
    }
    if stat.st_uid != 0 {
        return Err(ChainError::NotRootOwned {
            component: component.to_owned(),
            uid: stat.st_uid,
        });
    }
    if stat.st_mode & 0o022 != 0 {
        return Err(ChainError::Writable {
            component: component.to_owned(),
            mode: stat.st_mode & 0o7777,
        });
    }
    Ok(())
}

fn walk(path: &Path, last_is_dir: bool) -> Result<(OwnedFd, FileStat), ChainError> {
    let Some(relative) = path.as_os_str().as_bytes().strip_prefix(b"/") else {
        return Err(ChainError::NotAbsolute);
    };
    let how = |flags: OFlag| {
        OpenHow::new()
            .flags(flags | OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_NO_SYMLINKS | ResolveFlag::RESOLVE_NO_MAGICLINKS)
    };
    let root = File::open("/").map_err(|err| ChainError::Io(err.to_string()))?;
    let mut dir: OwnedFd = root.into();
    let mut stat = fstat(dir.as_fd()).map_err(|err| ChainError::Io(err.to_string()))?;
    check_dir_owner("/", &stat)?;
    let components: Vec<&OsStr> = if relative.is_empty() {
        Vec::new()
    } else {
        relative
            .split(|b| *b == b'/')
            .map(OsStr::from_bytes)
            .collect()
    };
    for (component_idx, component) in components.iter().enumerate() {
        let name = component.to_string_lossy().into_owned();
        if component.is_empty() || name == "." || name == ".." {
            return Err(ChainError::BadComponent(name));
        }
        let is_last = component_idx + 1 == components.len();
        let flags = if is_last && !last_is_dir {
            OFlag::empty()
        } else {
            OFlag::O_DIRECTORY
        };
        let next = openat2(dir.as_fd(), *component, how(flags)).map_err(|errno| match errno {
            Errno::ELOOP | Errno::ENOTDIR => ChainError::SymlinkOrNotDir(name.clone()),
            _ => ChainError::Open {
                component: name.clone(),
                errno,
            },
        })?;
        stat = fstat(next.as_fd()).map_err(|err| ChainError::Io(err.to_string()))?;
        if SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK {
            return Err(ChainError::Symlink(name));
        }
        if !is_last || last_is_dir {
            check_dir_owner(&name, &stat)?;
        }
        dir = next;
    }
    Ok((dir, stat))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::chain_fixture;

    #[test]
    fn every_directory_on_the_way_is_checked() {
        let dir = chain_fixture("nos-chain-");
        let good = dir.path().join("pool");
        std::fs::write(dir.path().join("file"), b"x").unwrap();
        assert!(open_dir(&good).is_ok());
        assert!(open_dir(Path::new("/")).is_ok());
        assert!(open_entry(&dir.path().join("file")).is_ok());
        let refused = |path: &str| open_dir(Path::new(path)).unwrap_err();
        let root = dir.path().display();
        assert_eq!(
            refused(&format!("{root}/link")),
            ChainError::SymlinkOrNotDir("link".into())
        );
        assert_eq!(
            refused(&format!("{root}/link/x")),
            ChainError::SymlinkOrNotDir("link".into())
        );
        assert_eq!(
            refused(&format!("{root}/file")),
            ChainError::SymlinkOrNotDir("file".into())
        );
        assert_eq!(
            refused(&format!("{root}/writable")).to_string(),
            "writable: writable by group or others (mode 777)"
        );
        assert_eq!(
            refused(&format!("{root}/pool/../pool")),
            ChainError::BadComponent("..".into())
        );
        assert_eq!(
            refused(&format!("{root}//pool")),
            ChainError::BadComponent(String::new())
        );
        assert_eq!(refused("relative"), ChainError::NotAbsolute);
        let missing = refused(&format!("{root}/missing"));
        assert!(missing.is_missing(), "{missing}");
        assert!(!refused(&format!("{root}/link")).is_missing());
        // /tmp is 1777.
        assert!(matches!(refused("/tmp"), ChainError::Writable { .. }));
        // A symlink as the last component of an entry is opened as itself (O_PATH | O_NOFOLLOW)
        // and refused by its stat.
        assert_eq!(
            open_entry(&dir.path().join("link")).unwrap_err(),
            ChainError::Symlink("link".into())
        );
    }
}
