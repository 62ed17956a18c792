//! The exec-time checks: what the allowlist cannot see, verified on the live system just
//! before the spawn (see [`super`] for the list). A passing command becomes a [`Prepared`], which
//! holds the fds that pin what was checked: the binary that will be executed and the mount
//! targets that will be mounted on.
//!
//! This module inspects and never spawns.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use nix::sys::stat::SFlag;
use sha2::{Digest, Sha256};

use super::ExecError;
use crate::dir_chain::{self, ChainError};
use crate::in_use;
use crate::policy::{Command, ExecCheck};

/// Largest key file accepted by the exec-time key-file check, in bytes.
pub const MAX_KEY_FILE: u64 = 8192;

/// A command whose exec-time checks passed, holding the fds that pin what was checked.
#[derive(Debug)]
pub struct Prepared {
    pub(super) command: Command,
    /// Open binary for a sha256-pinned program: the child executes `/proc/self/fd/N`.
    pub(super) pinned_binary: Option<File>,
    /// Verified mount targets passed to `mount --no-canonicalize` as `/proc/self/fd/N`: the
    /// kernel mounts on exactly the directory that was checked, whatever happens to the path.
    pub(super) pinned_dirs: Vec<OwnedFd>,
    /// What [`super::run`] does with it.
    pub(super) action: Action,
}

/// How a prepared command is carried out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Action {
    /// Spawn the program.
    Spawn,
    /// `umount2(target, UMOUNT_NOFOLLOW)` in the agent: umount(8) has no way to refuse a
    /// symlink in the last component, and the target was checked against mountinfo.
    Unmount { target: PathBuf },
}

impl Prepared {
    /// The argv that will run: the program's path followed by the final arguments.
    pub fn argv(&self) -> Vec<String> {
        std::iter::once(self.command.program.display().to_string())
            .chain(self.command.args.iter().cloned())
            .collect()
    }

    pub fn command(&self) -> &Command {
        &self.command
    }
}

/// Runs every exec-time check of `command`, rewriting device arguments to kernel names.
pub fn prepare(mut command: Command) -> Result<Prepared, ExecError> {
    let n_args = command.args.len();
    let pin_mount_target = command
        .program
        .file_name()
        .is_some_and(|name| name == "mount")
        && command.args.iter().any(|arg| arg == "--no-canonicalize");
    let mut pinned_dirs = Vec::new();
    for check in command.checks.clone() {
        match check {
            ExecCheck::BlockDevice { arg_idx } => {
                let arg = command
                    .args
                    .get(arg_idx)
                    .ok_or(ExecError::BadArgIndex { arg_idx, n_args })?;
                command.args[arg_idx] = check_block_device(arg, arg_idx)?;
            }
            ExecCheck::MountPath { arg_idx } => {
                let arg = command
                    .args
                    .get(arg_idx)
                    .ok_or(ExecError::BadArgIndex { arg_idx, n_args })?;
                let (dir, _) =
                    dir_chain::open_dir(Path::new(arg)).map_err(chain_refused(arg, arg_idx))?;
                // Without --no-canonicalize, libmount turns /proc/self/fd/N back into a path
                // string before mount(2) (checked with strace), which would gain nothing.
                if pin_mount_target {
                    command.args[arg_idx] = format!("/proc/self/fd/{}", dir.as_raw_fd());
                    pinned_dirs.push(dir);
                }
            }
            ExecCheck::KeyFile { arg_idx } => {
                let arg = command
                    .args
                    .get(arg_idx)
                    .ok_or(ExecError::BadArgIndex { arg_idx, n_args })?;
                check_key_file(arg, arg_idx)?;
            }
            ExecCheck::Subvolume { arg_idx } => {
                let arg = command
                    .args
                    .get(arg_idx)
                    .ok_or(ExecError::BadArgIndex { arg_idx, n_args })?;
                check_subvolume(arg, arg_idx)?;
            }
            // Checked below, once every device argument has its kernel name.
            ExecCheck::DistinctDevices { .. } | ExecCheck::NotInUse { .. } => {}
        }
    }
    for check in &command.checks {
        if let ExecCheck::DistinctDevices { arg_idxs } = check {
            check_distinct(&command.args, arg_idxs)?;
        }
    }
    if command
        .program
        .file_name()
        .is_some_and(|name| name == "mount")
    {
        check_mount_options(&command.args)?;
    }
    let action = if command
        .program
        .file_name()
        .is_some_and(|name| name == "umount")
    {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        Action::Unmount {
            target: check_unmount_target(&command, &mountinfo)?,
        }
    } else {
        Action::Spawn
    };
    let pinned_binary = check_binary(&command)?;
    // Last, as close to the spawn as prepare gets: is any device in use right now?
    for check in &command.checks {
        if let ExecCheck::NotInUse { arg_idx } = check {
            let arg = command.args.get(*arg_idx).ok_or(ExecError::BadArgIndex {
                arg_idx: *arg_idx,
                n_args,
            })?;
            check_not_in_use(arg, *arg_idx)?;
        }
    }
    Ok(Prepared {
        command,
        pinned_binary,
        pinned_dirs,
        action,
    })
}

/// The one target of an `umount`: its only mount-path argument (already reached without a
/// symlink through trusted directories, by the `MountPath` check), which `mountinfo` must show
/// as the mount point of a btrfs filesystem. Anything else (a tmpfs, a bind of a system
/// directory, a plain directory) is refused.
fn check_unmount_target(command: &Command, mountinfo: &str) -> Result<PathBuf, ExecError> {
    let paths: Vec<usize> = command
        .checks
        .iter()
        .filter_map(|check| match check {
            ExecCheck::MountPath { arg_idx } => Some(*arg_idx),
            _ => None,
        })
        .collect();
    let [arg_idx] = paths[..] else {
        return Err(ExecError::UnmountArgs {
            n_paths: paths.len(),
        });
    };
    let n_args = command.args.len();
    let path = command
        .args
        .get(arg_idx)
        .ok_or(ExecError::BadArgIndex { arg_idx, n_args })?;
    let is_pool_mount = nos_machine::proc_text::parse_mountinfo(mountinfo)
        .iter()
        .any(|mount| mount.mount_point == *path && mount.fs_type == "btrfs");
    if is_pool_mount {
        Ok(PathBuf::from(path))
    } else {
        Err(ExecError::NotPoolMount {
            path: path.clone(),
            arg_idx,
        })
    }
}

/// `path` must resolve to a block device: `/dev/disk/by-*` and `/dev/mapper/*` links are followed
/// (root-owned directories maintained by udev), any other symlink is refused. Returns `/dev/<kernel name>` as the kernel reports it for the device number.
fn check_block_device(path: &str, arg_idx: usize) -> Result<String, ExecError> {
    let unsafe_path = |reason: String| ExecError::UnsafePath {
        path: path.to_owned(),
        reason,
        arg_idx,
    };
    // udev's links (and device-mapper's, which udev makes links to ../dm-N) are followed; any
    // other symlink is refused below as "not a block device".
    let resolved = if path.starts_with("/dev/disk/by-") || path.starts_with("/dev/mapper/") {
        std::fs::canonicalize(path).map_err(|err| unsafe_path(err.to_string()))?
    } else {
        PathBuf::from(path)
    };
    if !resolved.starts_with("/dev/") {
        return Err(unsafe_path(format!(
            "resolves to {} outside /dev",
            resolved.display()
        )));
    }
    let metadata =
        std::fs::symlink_metadata(&resolved).map_err(|err| unsafe_path(err.to_string()))?;
    if !metadata.file_type().is_block_device() {
        return Err(ExecError::NotBlockDevice {
            path: path.to_owned(),
            arg_idx,
        });
    }
    let rdev = metadata.rdev();
    let (major, minor) = (nix::sys::stat::major(rdev), nix::sys::stat::minor(rdev));
    let uevent = std::fs::read_to_string(format!("/sys/dev/block/{major}:{minor}/uevent"))
        .map_err(|err| unsafe_path(format!("no sysfs entry for {major}:{minor}: {err}")))?;
    let devname = uevent
        .lines()
        .find_map(|line| line.strip_prefix("DEVNAME="))
        .filter(|name| {
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/_-.".contains(&b))
        })
        .filter(|name| {
            !name
                .split('/')
                .any(|part| part.is_empty() || part == "." || part == "..")
        })
        .ok_or_else(|| unsafe_path(format!("no kernel name for {major}:{minor}")))?;
    let canonical = format!("/dev/{devname}");
    // The kernel name must be the same device node, not a stale or planted file.
    let canonical_metadata =
        std::fs::symlink_metadata(&canonical).map_err(|err| unsafe_path(err.to_string()))?;
    if !canonical_metadata.file_type().is_block_device() || canonical_metadata.rdev() != rdev {
        return Err(unsafe_path(format!(
            "{canonical} is not device {major}:{minor}"
        )));
    }
    Ok(canonical)
}
/// `path` (already the kernel name, by the block-device check) is not in use on the live
/// system; an unreadable signal refuses too.
fn check_not_in_use(path: &str, arg_idx: usize) -> Result<(), ExecError> {
    let unchecked = |reason: String| ExecError::InUseUnchecked {
        path: path.to_owned(),
        reason,
        arg_idx,
    };
    let metadata = std::fs::symlink_metadata(path).map_err(|err| unchecked(err.to_string()))?;
    if !metadata.file_type().is_block_device() {
        return Err(ExecError::NotBlockDevice {
            path: path.to_owned(),
            arg_idx,
        });
    }
    let dev = in_use::Dev::from_raw(metadata.rdev());
    in_use::check(&in_use::SystemPaths::live(), &in_use::Live, dev).map_err(|finding| match finding
    {
        in_use::Finding::InUse(usage) => ExecError::InUse {
            path: path.to_owned(),
            usage,
            arg_idx,
        },
        in_use::Finding::Unchecked(reason) => unchecked(reason),
    })
}
/// The device arguments at `arg_idxs` (already rewritten to kernel names by the block-device
/// check, so `/dev/sdb` and its by-id link compare equal) name different devices.
fn check_distinct(args: &[String], arg_idxs: &[usize]) -> Result<(), ExecError> {
    for (position, arg_idx) in arg_idxs.iter().enumerate() {
        let arg = args.get(*arg_idx).ok_or(ExecError::BadArgIndex {
            arg_idx: *arg_idx,
            n_args: args.len(),
        })?;
        for other_idx in &arg_idxs[position + 1..] {
            if args.get(*other_idx) == Some(arg) {
                return Err(ExecError::UnsafePath {
                    path: arg.clone(),
                    reason: format!("the same device is also argument {}", other_idx + 1),
                    arg_idx: *arg_idx,
                });
            }
        }
    }
    Ok(())
}
/// A key file: reached like a mount path, then a regular root-owned file of mode 0400 or
/// stricter and at most [`MAX_KEY_FILE`] bytes.
fn check_key_file(path: &str, arg_idx: usize) -> Result<(), ExecError> {
    let bad = |reason: String| ExecError::BadKeyFile {
        path: path.to_owned(),
        reason,
        arg_idx,
    };
    let (_fd, stat) =
        dir_chain::open_entry(Path::new(path)).map_err(chain_refused(path, arg_idx))?;
    if SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
        return Err(bad("not a regular file".into()));
    }
    if stat.st_uid != 0 {
        return Err(bad(format!("owned by uid {}, not root", stat.st_uid)));
    }
    // 0400 or stricter: nobody, root included, writes a key in place.
    if stat.st_mode & 0o7377 != 0 {
        return Err(bad(format!(
            "mode {:o} is not 0400 or stricter",
            stat.st_mode & 0o7777
        )));
    }
    let size = u64::try_from(stat.st_size).unwrap_or(u64::MAX);
    if size == 0 || size > MAX_KEY_FILE {
        return Err(bad(format!("size {size} outside 1..={MAX_KEY_FILE}")));
    }
    Ok(())
}
/// The inode number of every btrfs subvolume's root directory (`BTRFS_FIRST_FREE_OBJECTID`).
const BTRFS_SUBVOLUME_ROOT_INO: u64 = 256;

/// A subvolume argument: its parent is reached only through root-owned directories no one else
/// can write (the pool, `.snapshots`, a share's container); the subvolume itself, which a share's
/// users may own, is no symlink and, if it exists, a subvolume root. A missing one passes: it is
/// the target of a create or snapshot, and btrfs refuses a missing source itself.
fn check_subvolume(path: &str, arg_idx: usize) -> Result<(), ExecError> {
    let unsafe_path = |reason: String| ExecError::UnsafePath {
        path: path.to_owned(),
        reason,
        arg_idx,
    };
    let parent = Path::new(path)
        .parent()
        .ok_or_else(|| unsafe_path("has no parent directory".into()))?;
    dir_chain::open_dir(parent).map_err(chain_refused(path, arg_idx))?;
    match dir_chain::open_entry(Path::new(path)) {
        Ok((_fd, stat)) => {
            if SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT != SFlag::S_IFDIR
                || stat.st_ino != BTRFS_SUBVOLUME_ROOT_INO
            {
                return Err(unsafe_path("exists and is not a btrfs subvolume".into()));
            }
            Ok(())
        }
        Err(error) if error.is_missing() => Ok(()),
        Err(error) => Err(chain_refused(path, arg_idx)(error)),
    }
}

/// Defence in depth behind the renderer: a `mount` must carry `-o` with both `nosuid` and `nodev`.
fn check_mount_options(args: &[String]) -> Result<(), ExecError> {
    let options: Vec<&str> = args
        .windows(2)
        .filter(|pair| pair[0] == "-o")
        .flat_map(|pair| pair[1].split(','))
        .chain(
            args.iter()
                .filter_map(|arg| arg.strip_prefix("--options="))
                .flat_map(|value| value.split(',')),
        )
        .collect();
    if options.contains(&"nosuid")
        && options.contains(&"nodev")
        && !options.iter().any(|o| *o == "suid" || *o == "dev")
    {
        Ok(())
    } else {
        Err(ExecError::MountOptions)
    }
}
/// The program must be absolute, a regular file owned by root and not group/other-writable. When
/// the rule pins a sha256, the file is opened, hashed from that fd, and executed from that fd.
fn check_binary(command: &Command) -> Result<Option<File>, ExecError> {
    let program = &command.program;
    let bad = |reason: String| ExecError::Binary {
        path: program.clone(),
        reason,
    };
    if !program.is_absolute() {
        return Err(bad("not an absolute path".into()));
    }
    let mut file = File::open(program).map_err(|err| bad(err.to_string()))?;
    let metadata = file.metadata().map_err(|err| bad(err.to_string()))?;
    if !metadata.is_file() {
        return Err(bad("not a regular file".into()));
    }
    if metadata.uid() != 0 || metadata.mode() & 0o022 != 0 {
        return Err(bad(format!(
            "owner uid {} mode {:o}: must be root and not group/other-writable",
            metadata.uid(),
            metadata.mode() & 0o7777
        )));
    }
    let Some(expected) = command.sha256 else {
        return Ok(None);
    };
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n_read = file.read(&mut buf).map_err(|err| bad(err.to_string()))?;
        if n_read == 0 {
            break;
        }
        hasher.update(&buf[..n_read]);
    }
    let actual: [u8; 32] = hasher.finalize().into();
    if actual != expected {
        return Err(bad(format!(
            "sha256 {} does not match the pinned {}",
            hex::encode(actual),
            hex::encode(expected)
        )));
    }
    Ok(Some(file))
}

/// The refusal of argument `arg_idx` (`path`) when its directory chain does not pass.
fn chain_refused(path: &str, arg_idx: usize) -> impl Fn(ChainError) -> ExecError {
    move |err| ExecError::UnsafePath {
        path: path.to_owned(),
        reason: err.to_string(),
        arg_idx,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::test_support::command;
    use crate::tests::{chain_fixture, scratch};
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn exec_time_checks() {
        let dir = chain_fixture("nos-exec-");
        let good = dir.path().join("pool");
        let writable = dir.path().join("writable");
        let check_mount = |path: &str| {
            let mut probe = command("/usr/bin/true", &[path]);
            probe.checks = vec![ExecCheck::MountPath { arg_idx: 0 }];
            prepare(probe).map(|_| ())
        };
        assert!(check_mount(good.to_str().unwrap()).is_ok());
        for bad in [
            dir.path().join("link").display().to_string(),
            dir.path().join("link/x").display().to_string(),
            writable.display().to_string(),
            format!("{}/../pool", good.display()),
            "/tmp".into(),
            "relative".into(),
            dir.path().join("missing").display().to_string(),
        ] {
            let err = check_mount(&bad).unwrap_err();
            assert!(
                matches!(err, ExecError::UnsafePath { arg_idx: 0, .. }),
                "{bad}: {err}"
            );
            assert_eq!(err.token_idx(&[Some(1)]), Some(1));
        }
        let check_device = |path: &str| {
            let mut probe = command("/usr/bin/true", &[path]);
            probe.checks = vec![ExecCheck::BlockDevice { arg_idx: 0 }];
            prepare(probe).map(|prepared| prepared.command().args[0].clone())
        };
        assert!(matches!(
            check_device("/dev/null"),
            Err(ExecError::NotBlockDevice { .. })
        ));
        assert!(matches!(
            check_device("/etc/passwd"),
            Err(ExecError::UnsafePath { .. })
        ));
        assert!(check_device("/dev/../etc/passwd").is_err());
        if std::path::Path::new("/dev/loop0").exists() {
            assert_eq!(check_device("/dev/loop0").unwrap(), "/dev/loop0");
            let link = dir.path().join("loop-link");
            std::os::unix::fs::symlink("/dev/loop0", &link).unwrap();
            assert!(check_device(link.to_str().unwrap()).is_err());
        }
        let key = dir.path().join("key");
        std::fs::write(&key, [7u8; 64]).unwrap();
        let check_key = |mode: u32| {
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(mode)).unwrap();
            let mut probe = command("/usr/bin/true", &[key.to_str().unwrap()]);
            probe.checks = vec![ExecCheck::KeyFile { arg_idx: 0 }];
            prepare(probe).map(|_| ())
        };
        assert!(check_key(0o400).is_ok());
        assert!(matches!(
            check_key(0o600),
            Err(ExecError::BadKeyFile { .. })
        ));
        assert!(matches!(
            check_key(0o644),
            Err(ExecError::BadKeyFile { .. })
        ));
        let mut probe = command("/usr/bin/true", &["1"]);
        probe.checks = vec![ExecCheck::MountPath { arg_idx: 5 }];
        assert!(matches!(prepare(probe), Err(ExecError::BadArgIndex { .. })));
    }

    #[test]
    fn no_canonicalize_mounts_get_a_pinned_target() {
        let dir = scratch("nos-exec-");
        let target = dir.path().display().to_string();
        let mut mount = command(
            "/usr/bin/mount",
            &[
                "--no-canonicalize",
                "-o",
                "nosuid,nodev",
                "--",
                "/dev/x",
                &target,
            ],
        );
        mount.checks = vec![ExecCheck::MountPath { arg_idx: 5 }];
        let prepared = prepare(mount.clone()).unwrap();
        let rendered = &prepared.command().args[5];
        assert!(rendered.starts_with("/proc/self/fd/"), "{rendered}");
        assert_eq!(std::fs::read_link(rendered).unwrap(), dir.path());
        // Without --no-canonicalize the path stays (libmount would resolve the fd back anyway).
        mount.args.remove(0);
        mount.checks = vec![ExecCheck::MountPath { arg_idx: 4 }];
        assert_eq!(prepare(mount).unwrap().command().args[4], target);
    }

    #[test]
    fn mounts_need_nosuid_nodev() {
        let mount = |args: &[&str]| prepare(command("/usr/bin/mount", args)).map(|_| ());
        assert!(
            mount(&[
                "-t",
                "btrfs",
                "-o",
                "nosuid,nodev,noatime",
                "--",
                "/dev/x",
                "/srv/x"
            ])
            .is_ok()
        );
        assert!(matches!(
            mount(&["-t", "btrfs", "-o", "noatime", "/dev/x", "/srv/x"]),
            Err(ExecError::MountOptions)
        ));
        assert!(matches!(
            mount(&["/dev/x", "/srv/x"]),
            Err(ExecError::MountOptions)
        ));
        assert!(matches!(
            mount(&["-o", "nosuid,nodev,suid", "/dev/x", "/srv/x"]),
            Err(ExecError::MountOptions)
        ));
    }
}
