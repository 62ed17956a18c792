//! Whether a block device is in use, judged just before a state-changing or destructive command
//! runs on it (the `ExecCheck::NotInUse` the allowlist renders). The agent is the last line of
//! defence: it never relies on nosd's facts or on the tool's own checks.
//!
//! A device is in use when it, or any of its partitions
//! (`<sysfs>/dev/block/MAJ:MIN/<part>/partition`):
//! * is active swap (`<procfs>/swaps`);
//! * has holders (`holders/` non-empty: md, dm, bcache);
//! * backs a loop device (`<sysfs>/block/loop*/loop/backing_file`: loop takes no claim);
//! * is the device of the root filesystem (`stat("/")`, `stat(<procfs>/1/root)` and the source
//!   of `/` in the agent's and init's mountinfo);
//! * cannot be opened with `O_EXCL` (`EBUSY`: mounted, swap, a member of a mounted btrfs,
//!   claimed by md/dm), the one signal that covers every mount namespace at once.
//!
//! Only kernel-wide signals decide: the agent may run in a mount namespace of its own, so its
//! mount table is never used to clear a device (mountinfo only names the source of `/`, and
//! `/sys/fs/{btrfs,ext4,xfs}` only words the message of a claim already found).
//!
//! This module never spawns, never writes and never keeps a descriptor: the exclusive probe's fd
//! is closed before [`check`] returns, so the command that follows can claim the device itself.
//! It does not cover a claim made after it returns (between the check and the tool's own open);
//! nor a process that opened the device without `O_EXCL` (a plain `dd` writer is not a claim).

use std::fmt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nos_machine::proc_text::{parse_swaps, root_source};

/// Where the kernel's views live: `/sys` and `/proc` on the live system, a tempdir in tests.
#[derive(Debug, Clone)]
pub struct SystemPaths {
    pub sys: PathBuf,
    pub proc: PathBuf,
}

impl SystemPaths {
    pub fn live() -> SystemPaths {
        SystemPaths {
            sys: PathBuf::from("/sys"),
            proc: PathBuf::from("/proc"),
        }
    }
}

/// A device number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dev {
    pub major: u64,
    pub minor: u64,
}

impl Dev {
    pub fn from_raw(raw: u64) -> Dev {
        Dev {
            major: nix::sys::stat::major(raw),
            minor: nix::sys::stat::minor(raw),
        }
    }

    /// `MAJ:MIN` as sysfs writes it in `dev` files.
    fn parse(text: &str) -> Option<Dev> {
        let (major, minor) = text.trim().split_once(':')?;
        Some(Dev {
            major: major.parse().ok()?,
            minor: minor.parse().ok()?,
        })
    }
}

impl fmt::Display for Dev {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.major, self.minor)
    }
}

/// The live operations the check needs besides reading files; faked in tests.
pub trait Kernel {
    /// The device number of the block device at `path` (symlinks followed), if it is one.
    fn block_dev(&self, path: &Path) -> Option<Dev>;
    /// The device number of the filesystem holding `path` (`st_dev`); `None` when unreadable.
    fn fs_dev(&self, path: &Path) -> Option<Dev>;
    /// Opens `node` with `O_EXCL` and closes it again; the node must be device `dev`.
    fn probe_exclusive(&self, node: &Path, dev: Dev) -> Result<(), Probe>;
}

/// Why an exclusive probe did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// `EBUSY`: the kernel holds an exclusive claim (mount, swap, btrfs, md, dm).
    Busy,
    /// Anything else: the probe could not be made, so nothing is known.
    Failed(String),
}

/// What uses a device, for the refusal's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    /// The kernel name of what is used: the device itself or one of its partitions.
    pub name: String,
    /// True when `name` is a partition of the checked device (not the device itself).
    pub partition: bool,
    pub how: How,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum How {
    Swap,
    HeldBy(Vec<String>),
    /// The backing device of these loop devices.
    BacksLoop(Vec<String>),
    Root,
    /// Claimed exclusively; `mounted` says by what, when sysfs tells.
    Claimed {
        mounted: Option<String>,
    },
}

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.partition {
            write!(f, "partition ")?;
        }
        write!(f, "{} ", self.name)?;
        match &self.how {
            How::Swap => write!(f, "is active swap"),
            How::HeldBy(holders) => write!(f, "is held by {}", holders.join(", ")),
            How::BacksLoop(loops) => write!(f, "backs {}", loops.join(", ")),
            How::Root => write!(f, "holds the root filesystem"),
            How::Claimed {
                mounted: Some(mounted),
            } => write!(f, "is {mounted} (claimed exclusively)"),
            How::Claimed { mounted: None } => write!(
                f,
                "is claimed exclusively (mounted, active swap, or held by md/dm)"
            ),
        }
    }
}

/// The check's verdict when it is not "free".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    InUse(Usage),
    /// A signal could not be read: the device is treated as in use (fail closed).
    Unchecked(String),
}

/// Checks the block device `dev` (whose node the caller already verified) and its partitions.
pub fn check(paths: &SystemPaths, kernel: &dyn Kernel, dev: Dev) -> Result<(), Finding> {
    let members = members(paths, dev).map_err(Finding::Unchecked)?;
    let swaps_text = std::fs::read_to_string(paths.proc.join("swaps")).map_err(|err| {
        Finding::Unchecked(format!("{}: {err}", paths.proc.join("swaps").display()))
    })?;
    let swap_devs: Vec<(String, Option<Dev>)> = parse_swaps(&swaps_text)
        .map_err(Finding::Unchecked)?
        .into_iter()
        .map(|path| {
            let swap_dev = kernel.block_dev(Path::new(&path));
            (path, swap_dev)
        })
        .collect();
    let root_devs = root_devs(paths, kernel);
    let loops: Vec<(String, String, Option<Dev>)> = loop_backings(paths)
        .into_iter()
        .map(|(name, backing)| {
            let backing_dev = kernel.block_dev(Path::new(&backing));
            (name, backing, backing_dev)
        })
        .collect();
    for member in &members {
        let usage = |how: How| {
            Finding::InUse(Usage {
                name: member.name.clone(),
                partition: member.partition,
                how,
            })
        };
        let node = member.node.display().to_string();
        if swap_devs
            .iter()
            .any(|(path, swap_dev)| *path == node || *swap_dev == Some(member.dev))
        {
            return Err(usage(How::Swap));
        }
        if !member.holders.is_empty() {
            return Err(usage(How::HeldBy(member.holders.clone())));
        }
        let backed: Vec<String> = loops
            .iter()
            .filter(|(_, backing, backing_dev)| {
                *backing == node || *backing_dev == Some(member.dev)
            })
            .map(|(name, _, _)| name.clone())
            .collect();
        if !backed.is_empty() {
            return Err(usage(How::BacksLoop(backed)));
        }
        if root_devs.contains(&member.dev) {
            return Err(usage(How::Root));
        }
    }
    // Partitions first: a claimed partition also makes its disk busy, and the partition is the
    // better answer.
    for member in members.iter().rev() {
        match kernel.probe_exclusive(&member.node, member.dev) {
            Ok(()) => {}
            Err(Probe::Busy) => {
                return Err(Finding::InUse(Usage {
                    name: member.name.clone(),
                    partition: member.partition,
                    how: How::Claimed {
                        mounted: describe_claim(paths, &member.name),
                    },
                }));
            }
            Err(Probe::Failed(reason)) => {
                return Err(Finding::Unchecked(format!(
                    "{}: exclusive open failed: {reason}",
                    member.node.display()
                )));
            }
        }
    }
    Ok(())
}

/// The live kernel: `stat(2)` and `open(2)` with `O_EXCL`.
pub struct Live;

impl Kernel for Live {
    fn block_dev(&self, path: &Path) -> Option<Dev> {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let metadata = std::fs::metadata(path).ok()?;
        metadata
            .file_type()
            .is_block_device()
            .then(|| Dev::from_raw(metadata.rdev()))
    }

    fn fs_dev(&self, path: &Path) -> Option<Dev> {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path)
            .ok()
            .map(|metadata| Dev::from_raw(metadata.dev()))
    }

    fn probe_exclusive(&self, node: &Path, dev: Dev) -> Result<(), Probe> {
        use nix::fcntl::OFlag;
        use nix::sys::stat::{Mode, SFlag, fstat};
        // Read-only, so closing it again is not a close-after-write that udev would answer with
        // a change event; non-blocking, so a drive without media answers at once.
        let flags = OFlag::O_RDONLY
            | OFlag::O_EXCL
            | OFlag::O_CLOEXEC
            | OFlag::O_NOFOLLOW
            | OFlag::O_NONBLOCK;
        let fd = match nix::fcntl::open(node, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::EBUSY) => return Err(Probe::Busy),
            Err(errno) => return Err(Probe::Failed(errno.desc().to_owned())),
        };
        let stat = fstat(&fd).map_err(|errno| Probe::Failed(errno.desc().to_owned()))?;
        let is_block = SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == SFlag::S_IFBLK;
        // The fd closes here, before any command runs.
        drop(fd);
        if is_block && Dev::from_raw(stat.st_rdev) == dev {
            Ok(())
        } else {
            Err(Probe::Failed(format!("is not block device {dev}")))
        }
    }
}

/// The checked device or one of its partitions, as sysfs describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Member {
    name: String,
    partition: bool,
    dev: Dev,
    node: PathBuf,
    holders: Vec<String>,
}

/// The device `dev` first, then its partitions in name order.
fn members(paths: &SystemPaths, dev: Dev) -> Result<Vec<Member>, String> {
    let link = paths.sys.join(format!("dev/block/{dev}"));
    let dir = std::fs::canonicalize(&link).map_err(|err| format!("{}: {err}", link.display()))?;
    let mut members = vec![member(&dir, false)?];
    if members[0].dev != dev {
        return Err(format!(
            "{} describes {}, not {dev}",
            dir.display(),
            members[0].dev
        ));
    }
    let entries = std::fs::read_dir(&dir).map_err(|err| format!("{}: {err}", dir.display()))?;
    let mut partitions = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|err| format!("{}: {err}", dir.display()))?;
        if entry.path().join("partition").is_file() {
            partitions.push(member(&entry.path(), true)?);
        }
    }
    partitions.sort_by(|a, b| a.name.cmp(&b.name));
    members.extend(partitions);
    Ok(members)
}

fn member(dir: &Path, partition: bool) -> Result<Member, String> {
    let read = |file: &str| {
        std::fs::read_to_string(dir.join(file))
            .map_err(|err| format!("{}: {err}", dir.join(file).display()))
    };
    let sysfs_name = dir
        .file_name()
        .and_then(|name| name.to_str())
        .ok_or_else(|| format!("{}: no device name", dir.display()))?;
    // sysfs writes `/` in kernel names (cciss/c0d0) as `!`.
    let name = sysfs_name.replace('!', "/");
    let dev = Dev::parse(&read("dev")?)
        .ok_or_else(|| format!("{}: unreadable device number", dir.join("dev").display()))?;
    let devname = read("uevent")?
        .lines()
        .find_map(|line| line.strip_prefix("DEVNAME=").map(str::to_owned))
        .unwrap_or_else(|| name.clone());
    if devname
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return Err(format!("{}: bad kernel name {devname:?}", dir.display()));
    }
    let holders_dir = dir.join("holders");
    let mut holders: Vec<String> = std::fs::read_dir(&holders_dir)
        .map_err(|err| format!("{}: {err}", holders_dir.display()))?
        .filter_map(|entry| Some(entry.ok()?.file_name().to_string_lossy().into_owned()))
        .collect();
    holders.sort();
    Ok(Member {
        name,
        partition,
        dev,
        node: PathBuf::from(format!("/dev/{devname}")),
        holders,
    })
}

/// Every attached loop device with its backing file, in name order. A loop device opens its
/// backing device without a claim and registers no holder, so this is the only sign of it.
fn loop_backings(paths: &SystemPaths) -> Vec<(String, String)> {
    let Ok(entries) = std::fs::read_dir(paths.sys.join("block")) else {
        return Vec::new();
    };
    let mut loops: Vec<(String, String)> = entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_str()?.to_owned();
            if !name.starts_with("loop") {
                return None;
            }
            let backing = std::fs::read_to_string(entry.path().join("loop/backing_file")).ok()?;
            Some((name, backing.trim_end_matches('\n').to_owned()))
        })
        .collect();
    loops.sort();
    loops
}

/// Every device number that may hold `/`: the agent's and init's root (`st_dev`; a btrfs root
/// has an anonymous one, hence also) the mount source of `/` in both mount tables.
fn root_devs(paths: &SystemPaths, kernel: &dyn Kernel) -> Vec<Dev> {
    let mut devs: Vec<Dev> = [Path::new("/").to_path_buf(), paths.proc.join("1/root")]
        .iter()
        .filter_map(|path| kernel.fs_dev(path))
        .filter(|dev| dev.major != 0)
        .collect();
    for table in ["self/mountinfo", "1/mountinfo"] {
        let source = std::fs::read_to_string(paths.proc.join(table))
            .ok()
            .and_then(|text| root_source(&text));
        if let Some(dev) = source
            .filter(|source| source.starts_with("/dev/"))
            .and_then(|source| kernel.block_dev(Path::new(&source)))
        {
            devs.push(dev);
        }
    }
    devs
}

/// Words a claim found by the exclusive probe, from the filesystems' own sysfs directories
/// (kernel-wide, unlike a mount table): a member of a mounted btrfs, a mounted ext4 or xfs.
fn describe_claim(paths: &SystemPaths, name: &str) -> Option<String> {
    let sysfs_name = name.replace('/', "!");
    let btrfs = paths.sys.join("fs/btrfs");
    if let Ok(entries) = std::fs::read_dir(&btrfs) {
        for entry in entries.flatten() {
            if entry.path().join("devices").join(&sysfs_name).exists() {
                return Some(format!(
                    "a member of the mounted btrfs {}",
                    entry.file_name().to_string_lossy()
                ));
            }
        }
    }
    ["ext4", "xfs", "f2fs"]
        .into_iter()
        .find(|fstype| paths.sys.join("fs").join(fstype).join(&sysfs_name).is_dir())
        .map(|fstype| format!("mounted as {fstype}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// A fake sysfs/procfs tree and kernel: devices by number, their nodes, busy ones.
    struct Fake {
        dir: tempfile::TempDir,
        busy: Vec<Dev>,
        root: Option<Dev>,
        nodes: BTreeMap<String, Dev>,
    }

    const LOOP3: Dev = Dev { major: 7, minor: 3 };
    const LOOP3P1: Dev = Dev {
        major: 259,
        minor: 0,
    };
    const LOOP3P2: Dev = Dev {
        major: 259,
        minor: 1,
    };

    impl Fake {
        /// loop3 with partitions loop3p1 and loop3p2, nothing in use.
        fn new() -> Fake {
            let dir = tempfile::tempdir().unwrap();
            let fake = Fake {
                dir,
                busy: Vec::new(),
                root: None,
                nodes: BTreeMap::new(),
            };
            let disk = fake.sys().join("devices/virtual/block/loop3");
            fake.device(&disk, "loop3", LOOP3, false);
            fake.device(&disk.join("loop3p1"), "loop3p1", LOOP3P1, true);
            fake.device(&disk.join("loop3p2"), "loop3p2", LOOP3P2, true);
            std::fs::create_dir_all(fake.proc().join("1")).unwrap();
            std::fs::write(
                fake.proc().join("swaps"),
                "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n",
            )
            .unwrap();
            fake
        }

        fn sys(&self) -> PathBuf {
            self.dir.path().join("sys")
        }

        fn proc(&self) -> PathBuf {
            self.dir.path().join("proc")
        }

        fn paths(&self) -> SystemPaths {
            SystemPaths {
                sys: self.sys(),
                proc: self.proc(),
            }
        }

        fn device(&self, dir: &Path, name: &str, dev: Dev, partition: bool) {
            std::fs::create_dir_all(dir.join("holders")).unwrap();
            std::fs::write(dir.join("dev"), format!("{dev}\n")).unwrap();
            std::fs::write(
                dir.join("uevent"),
                format!("MAJOR={}\nMINOR={}\nDEVNAME={name}\n", dev.major, dev.minor),
            )
            .unwrap();
            if partition {
                std::fs::write(dir.join("partition"), "1\n").unwrap();
            }
            let links = self.sys().join("dev/block");
            std::fs::create_dir_all(&links).unwrap();
            std::os::unix::fs::symlink(dir, links.join(dev.to_string())).unwrap();
        }

        fn check(&self, dev: Dev) -> Result<(), Finding> {
            check(&self.paths(), self, dev)
        }
    }

    impl Kernel for Fake {
        fn block_dev(&self, path: &Path) -> Option<Dev> {
            self.nodes.get(path.to_str()?).copied()
        }

        fn fs_dev(&self, path: &Path) -> Option<Dev> {
            (path == Path::new("/")).then_some(self.root).flatten()
        }

        fn probe_exclusive(&self, _node: &Path, dev: Dev) -> Result<(), Probe> {
            if self.busy.contains(&dev) {
                Err(Probe::Busy)
            } else {
                Ok(())
            }
        }
    }

    fn message(result: Result<(), Finding>) -> String {
        match result {
            Ok(()) => "free".to_owned(),
            Err(Finding::InUse(usage)) => usage.to_string(),
            Err(Finding::Unchecked(reason)) => format!("unchecked: {reason}"),
        }
    }

    #[test]
    fn a_free_disk_and_its_partitions_pass() {
        let fake = Fake::new();
        assert_eq!(message(fake.check(LOOP3)), "free");
        assert_eq!(message(fake.check(LOOP3P2)), "free");
    }

    #[test]
    fn a_claimed_partition_is_named_before_its_busy_disk() {
        let mut fake = Fake::new();
        fake.busy = vec![LOOP3, LOOP3P1];
        assert_eq!(
            message(fake.check(LOOP3)),
            "partition loop3p1 is claimed exclusively (mounted, active swap, or held by md/dm)"
        );
        let ext4 = fake.sys().join("fs/ext4/loop3p1");
        std::fs::create_dir_all(ext4).unwrap();
        assert_eq!(
            message(fake.check(LOOP3)),
            "partition loop3p1 is mounted as ext4 (claimed exclusively)"
        );
        // The partition itself, and its unclaimed sibling.
        assert_eq!(
            message(fake.check(LOOP3P1)),
            "loop3p1 is mounted as ext4 (claimed exclusively)"
        );
        assert_eq!(message(fake.check(LOOP3P2)), "free");
    }

    #[test]
    fn a_btrfs_member_is_named_by_its_filesystem() {
        let mut fake = Fake::new();
        fake.busy = vec![LOOP3];
        let devices = fake
            .sys()
            .join("fs/btrfs/0123abcd-0000-4000-8000-00000000beef/devices");
        std::fs::create_dir_all(&devices).unwrap();
        std::fs::write(devices.join("loop3"), "").unwrap();
        assert_eq!(
            message(fake.check(LOOP3)),
            "loop3 is a member of the mounted btrfs 0123abcd-0000-4000-8000-00000000beef (claimed exclusively)"
        );
    }

    #[test]
    fn holders_swap_and_root_are_found_without_a_claim() {
        let fake = Fake::new();
        let holders = fake
            .sys()
            .join("devices/virtual/block/loop3/loop3p2/holders");
        std::fs::create_dir(holders.join("md127")).unwrap();
        assert_eq!(
            message(fake.check(LOOP3)),
            "partition loop3p2 is held by md127"
        );
        std::fs::remove_dir(holders.join("md127")).unwrap();

        let mut fake = Fake::new();
        std::fs::write(
            fake.proc().join("swaps"),
            "Filename\tType\tSize\tUsed\tPriority\n/dev/loop3p1                            partition\t1048572\t0\t-2\n",
        )
        .unwrap();
        assert_eq!(
            message(fake.check(LOOP3)),
            "partition loop3p1 is active swap"
        );
        // A swap listed under another name of the same device is matched by number.
        std::fs::write(
            fake.proc().join("swaps"),
            "Filename\tType\tSize\tUsed\tPriority\n/dev/disk/by-id/x\\040y partition\t1\t0\t-2\n",
        )
        .unwrap();
        fake.nodes.insert("/dev/disk/by-id/x y".into(), LOOP3);
        assert_eq!(message(fake.check(LOOP3)), "loop3 is active swap");

        // A loop device over a partition: loop takes no claim and registers no holder.
        let mut fake = Fake::new();
        let loop9 = fake.sys().join("block/loop9/loop");
        std::fs::create_dir_all(&loop9).unwrap();
        std::fs::write(loop9.join("backing_file"), "/dev/loop3p2\n").unwrap();
        std::fs::create_dir_all(fake.sys().join("block/loop8")).unwrap();
        assert_eq!(message(fake.check(LOOP3)), "partition loop3p2 backs loop9");
        // Named by another path: matched by device number.
        std::fs::write(loop9.join("backing_file"), "/dev/disk/by-id/other\n").unwrap();
        assert_eq!(message(fake.check(LOOP3)), "free");
        fake.nodes.insert("/dev/disk/by-id/other".into(), LOOP3);
        assert_eq!(message(fake.check(LOOP3)), "loop3 backs loop9");

        let mut fake = Fake::new();
        fake.root = Some(LOOP3P2);
        assert_eq!(
            message(fake.check(LOOP3)),
            "partition loop3p2 holds the root filesystem"
        );
        // A btrfs root's st_dev is anonymous: the mountinfo source of `/` names the device.
        let mut fake = Fake::new();
        std::fs::write(
            fake.proc().join("1/mountinfo"),
            "21 1 0:22 / / rw,relatime shared:1 - btrfs /dev/loop3p1 rw,space_cache=v2\n",
        )
        .unwrap();
        fake.nodes.insert("/dev/loop3p1".into(), LOOP3P1);
        assert_eq!(
            message(fake.check(LOOP3)),
            "partition loop3p1 holds the root filesystem"
        );
    }

    #[test]
    fn unreadable_signals_fail_closed() {
        let fake = Fake::new();
        let unknown = Dev {
            major: 8,
            minor: 16,
        };
        assert!(message(fake.check(unknown)).starts_with("unchecked: "));
        std::fs::remove_file(fake.proc().join("swaps")).unwrap();
        assert!(message(fake.check(LOOP3)).starts_with("unchecked: "));
    }

    /// The real probe on a real loop device: free, then busy while this test holds its own
    /// exclusive fd, then free again once that fd is closed.
    #[test]
    fn exclusive_probe_on_a_real_loop_device() {
        assert!(
            nix::unistd::geteuid().is_root() && Path::new("/dev/loop-control").exists(),
            "this test needs root and /dev/loop-control (loop devices); it is never skipped"
        );
        let images = tempfile::tempdir().unwrap();
        let image = images.path().join("probe.img");
        std::fs::File::create(&image)
            .unwrap()
            .set_len(16 << 20)
            .unwrap();
        let output = std::process::Command::new("losetup")
            .args(["-f", "--show"])
            .arg(&image)
            .output()
            .unwrap();
        assert!(output.status.success(), "losetup: {output:?}");
        let node = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        let detach = Detach(node.clone());
        let dev = Live.block_dev(&node).expect("a block device");
        assert_eq!(check(&SystemPaths::live(), &Live, dev), Ok(()));
        let held = nix::fcntl::open(
            &node,
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_EXCL,
            nix::sys::stat::Mode::empty(),
        )
        .unwrap();
        assert_eq!(Live.probe_exclusive(&node, dev), Err(Probe::Busy));
        let name = node.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(
            check(&SystemPaths::live(), &Live, dev),
            Err(Finding::InUse(Usage {
                name,
                partition: false,
                how: How::Claimed { mounted: None },
            }))
        );
        drop(held);
        assert_eq!(Live.probe_exclusive(&node, dev), Ok(()));
        // A node that is another device is refused, not probed as if it were the right one.
        assert!(matches!(
            Live.probe_exclusive(&node, Dev { major: 1, minor: 3 }),
            Err(Probe::Failed(_))
        ));
        drop(detach);
    }

    struct Detach(PathBuf);

    impl Drop for Detach {
        fn drop(&mut self) {
            let _ = std::process::Command::new("losetup")
                .arg("-d")
                .arg(&self.0)
                .status();
        }
    }
}
