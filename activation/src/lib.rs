//! systemd socket activation: the listening sockets a service manager passes to this process
//! (`sd_listen_fds(3)`), for `nosd` and `nos-agent`.
//!
//! [`parse`] is the pure half: it reads the three environment values (`LISTEN_PID`,
//! `LISTEN_FDS`, `LISTEN_FDNAMES`) with an exact grammar and bounds. [`take`] is the only IO:
//! it checks that every passed descriptor is a listening Unix stream socket, marks it
//! close-on-exec and takes ownership of it, once per process. A service that finds a socket it
//! was not written for refuses to start ([`Sockets::finish`]) rather than ignore it.
#![deny(unsafe_code)]

use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::sys::socket::{SockType, UnixAddr, getsockname, getsockopt, sockopt};

/// The first passed descriptor (`SD_LISTEN_FDS_START`).
pub const LISTEN_FDS_START: RawFd = 3;
/// More sockets than any nos unit declares; a larger count is a misconfiguration or an attack.
pub const MAX_FDS: usize = 16;
/// systemd's limit on a `FileDescriptorName=`.
pub const MAX_NAME: usize = 255;
/// The name systemd gives a socket whose unit sets no `FileDescriptorName=` and passes no
/// `LISTEN_FDNAMES` at all.
pub const UNNAMED: &str = "unknown";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ActivationError {
    #[error("{var}={value:?}: not a decimal number")]
    NotANumber { var: &'static str, value: String },
    #[error("LISTEN_FDS={0}: at most {MAX_FDS} sockets are accepted")]
    TooMany(usize),
    #[error("LISTEN_FDNAMES has {names} names for LISTEN_FDS={fds}")]
    NameCount { names: usize, fds: usize },
    #[error(
        "LISTEN_FDNAMES: name {index} {name:?} is not a valid socket name (1-{MAX_NAME} printable ASCII characters)"
    )]
    BadName { index: usize, name: String },
    #[error("LISTEN_FDNAMES names {0:?} twice")]
    DuplicateName(String),
    #[error("socket activation: the passed sockets were already taken by this process")]
    AlreadyTaken,
    #[error("passed descriptor {fd} ({name:?}) is not a listening Unix stream socket: {reason}")]
    NotAListener {
        fd: RawFd,
        name: String,
        reason: String,
    },
    #[error("socket activation passed {0:?}, which this service does not use")]
    Unexpected(Vec<String>),
    #[error("socket activation passed {found} sockets; exactly one was expected")]
    NotExactlyOne { found: usize },
}

/// One passed descriptor, before ownership is taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passed {
    pub fd: RawFd,
    pub name: String,
}

/// The passed descriptors described by the environment of process `pid`, or `None` when the
/// environment does not address this process (no `LISTEN_PID`, or another process's).
pub fn parse(
    pid: u32,
    listen_pid: Option<&str>,
    listen_fds: Option<&str>,
    listen_fdnames: Option<&str>,
) -> Result<Option<Vec<Passed>>, ActivationError> {
    let (Some(listen_pid), Some(listen_fds)) = (listen_pid, listen_fds) else {
        return Ok(None);
    };
    if number("LISTEN_PID", listen_pid)? != pid as usize {
        return Ok(None);
    }
    let count = number("LISTEN_FDS", listen_fds)?;
    if count > MAX_FDS {
        return Err(ActivationError::TooMany(count));
    }
    let names: Vec<String> = match listen_fdnames {
        None => vec![UNNAMED.to_string(); count],
        Some(names) if count == 0 && names.is_empty() => Vec::new(),
        Some(names) => names.split(':').map(str::to_string).collect(),
    };
    if names.len() != count {
        return Err(ActivationError::NameCount {
            names: names.len(),
            fds: count,
        });
    }
    for (index, name) in names.iter().enumerate() {
        let valid = !name.is_empty()
            && name.len() <= MAX_NAME
            && name.bytes().all(|b| b.is_ascii_graphic());
        if !valid {
            return Err(ActivationError::BadName {
                index,
                name: name.chars().take(MAX_NAME).collect(),
            });
        }
        // Unnamed sockets may repeat; a name a service looks up may not.
        if name != UNNAMED && names[..index].contains(name) {
            return Err(ActivationError::DuplicateName(name.clone()));
        }
    }
    Ok(Some(
        names
            .into_iter()
            .zip(LISTEN_FDS_START..)
            .map(|(name, fd)| Passed { fd, name })
            .collect(),
    ))
}

fn number(var: &'static str, value: &str) -> Result<usize, ActivationError> {
    let not_a_number = || ActivationError::NotANumber {
        var,
        value: value.chars().take(32).collect(),
    };
    if value.is_empty() || value.len() > 10 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(not_a_number());
    }
    value.parse().map_err(|_| not_a_number())
}

/// The sockets passed to this process, owned. Claim each with [`Sockets::named`] or
/// [`Sockets::only`], then call [`Sockets::finish`] so a socket nobody claimed is an error.
#[derive(Debug, Default)]
pub struct Sockets {
    sockets: Vec<(String, UnixListener)>,
}

static TAKEN: AtomicBool = AtomicBool::new(false);

/// Takes the sockets systemd passed to this process (none when it passed none). Every one must
/// be a listening Unix stream socket; each becomes close-on-exec, so no command nos runs
/// inherits it. A second call in one process is [`ActivationError::AlreadyTaken`].
pub fn take() -> Result<Sockets, ActivationError> {
    let var = |name| std::env::var(name).ok();
    let passed = parse(
        std::process::id(),
        var("LISTEN_PID").as_deref(),
        var("LISTEN_FDS").as_deref(),
        var("LISTEN_FDNAMES").as_deref(),
    )?
    .unwrap_or_default();
    if TAKEN.swap(true, Ordering::SeqCst) {
        return Err(ActivationError::AlreadyTaken);
    }
    let mut sockets = Vec::with_capacity(passed.len());
    for Passed { fd, name } in passed {
        let not_a_listener = |reason: String| ActivationError::NotAListener {
            fd,
            name: name.clone(),
            reason,
        };
        let owned = own(fd).map_err(|errno| not_a_listener(errno.desc().to_string()))?;
        check_listener(&owned).map_err(not_a_listener)?;
        nix::fcntl::fcntl(
            &owned,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        )
        .map_err(|errno| not_a_listener(format!("setting close-on-exec: {}", errno.desc())))?;
        sockets.push((name, UnixListener::from(owned)));
    }
    Ok(Sockets { sockets })
}

/// Takes ownership of passed descriptor `fd`, after checking it is open.
fn own(fd: RawFd) -> Result<OwnedFd, nix::errno::Errno> {
    #[allow(unsafe_code)]
    // SAFETY: `fd` is in the range the service manager passed to this process (LISTEN_PID is
    // ours, checked by `parse`), and the TAKEN flag makes this the only place, called once per
    // process, that claims those descriptors. The borrow only lives for the fstat that proves
    // the descriptor is open before ownership is taken.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    nix::sys::stat::fstat(borrowed)?;
    #[allow(unsafe_code)]
    // SAFETY: as above; the descriptor is open and nothing else in this process owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn check_listener(fd: &OwnedFd) -> Result<(), String> {
    let errno = |what: &str, errno: nix::errno::Errno| format!("{what}: {}", errno.desc());
    match getsockopt(fd, sockopt::SockType) {
        Ok(SockType::Stream) => {}
        Ok(other) => return Err(format!("socket type {other:?}, not a stream")),
        Err(err) => return Err(errno("not a socket", err)),
    }
    if !getsockopt(fd, sockopt::AcceptConn).map_err(|err| errno("SO_ACCEPTCONN", err))? {
        return Err("not listening".into());
    }
    use std::os::fd::AsRawFd;
    getsockname::<UnixAddr>(fd.as_raw_fd()).map_err(|err| errno("not a Unix socket", err))?;
    Ok(())
}

impl Sockets {
    /// The socket named `name` (`FileDescriptorName=`), if one was passed.
    pub fn named(&mut self, name: &str) -> Option<UnixListener> {
        let index = self.sockets.iter().position(|(n, _)| n == name)?;
        Some(self.sockets.remove(index).1)
    }

    /// The one socket passed, whatever its name; `None` when none was passed.
    pub fn only(&mut self) -> Result<Option<UnixListener>, ActivationError> {
        match self.sockets.len() {
            0 => Ok(None),
            1 => Ok(self.sockets.pop().map(|(_, socket)| socket)),
            found => Err(ActivationError::NotExactlyOne { found }),
        }
    }

    /// Fails when a passed socket was not claimed: a unit passing sockets this service does
    /// not serve is a misconfiguration that must not go unnoticed.
    pub fn finish(self) -> Result<(), ActivationError> {
        if self.sockets.is_empty() {
            Ok(())
        } else {
            Err(ActivationError::Unexpected(
                self.sockets.into_iter().map(|(name, _)| name).collect(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passed(names: &[&str]) -> Option<Vec<Passed>> {
        Some(
            names
                .iter()
                .zip(LISTEN_FDS_START..)
                .map(|(name, fd)| Passed {
                    fd,
                    name: name.to_string(),
                })
                .collect(),
        )
    }

    #[test]
    fn addressed_to_this_process_only() {
        assert_eq!(parse(42, None, Some("1"), None), Ok(None));
        assert_eq!(parse(42, Some("41"), Some("1"), None), Ok(None));
        assert_eq!(parse(42, Some("42"), None, None), Ok(None));
        assert_eq!(
            parse(42, Some("42"), Some("1"), None),
            Ok(passed(&["unknown"]))
        );
        assert_eq!(
            parse(42, Some("42"), Some("2"), Some("recovery:http")),
            Ok(passed(&["recovery", "http"]))
        );
        assert_eq!(parse(42, Some("42"), Some("0"), Some("")), Ok(passed(&[])));
    }

    #[test]
    fn exact_numbers() {
        for bad in ["", "+1", "-1", " 1", "1 ", "0x1", "1e2", "99999999999", "١"] {
            assert!(
                matches!(
                    parse(42, Some("42"), Some(bad), None),
                    Err(ActivationError::NotANumber {
                        var: "LISTEN_FDS",
                        ..
                    })
                ),
                "{bad:?}"
            );
        }
        assert!(matches!(
            parse(42, Some("042x"), Some("1"), None),
            Err(ActivationError::NotANumber {
                var: "LISTEN_PID",
                ..
            })
        ));
        assert_eq!(
            parse(42, Some("42"), Some("17"), None),
            Err(ActivationError::TooMany(17))
        );
    }

    #[test]
    fn names_match_the_count_and_the_grammar() {
        assert_eq!(
            parse(42, Some("42"), Some("2"), Some("recovery")),
            Err(ActivationError::NameCount { names: 1, fds: 2 })
        );
        assert_eq!(
            parse(42, Some("42"), Some("1"), Some("a:b")),
            Err(ActivationError::NameCount { names: 2, fds: 1 })
        );
        for bad in ["", "with space", "tab\t", "é", &"x".repeat(256)] {
            assert!(
                matches!(
                    parse(42, Some("42"), Some("1"), Some(bad)),
                    Err(ActivationError::BadName { index: 0, .. })
                ),
                "{bad:?}"
            );
        }
        assert_eq!(
            parse(42, Some("42"), Some("2"), Some("recovery:recovery")),
            Err(ActivationError::DuplicateName("recovery".into()))
        );
        assert_eq!(
            parse(42, Some("42"), Some("2"), Some("unknown:unknown")),
            Ok(passed(&["unknown", "unknown"]))
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics(pid in proptest::option::of(".{0,12}"), fds in proptest::option::of(".{0,12}"), names in proptest::option::of(".{0,300}")) {
            let _ = parse(7, pid.as_deref(), fds.as_deref(), names.as_deref());
        }
    }

    #[test]
    fn finish_names_unclaimed_sockets() {
        let listener = |name: &str| {
            let dir =
                std::env::temp_dir().join(format!("nos-activation-{}-{name}", std::process::id()));
            let _ = std::fs::remove_file(&dir);
            let socket = UnixListener::bind(&dir).unwrap();
            std::fs::remove_file(&dir).unwrap();
            (name.to_string(), socket)
        };
        let mut sockets = Sockets {
            sockets: vec![listener("recovery"), listener("extra")],
        };
        assert!(sockets.named("recovery").is_some());
        assert!(sockets.named("recovery").is_none());
        assert_eq!(
            sockets.only().map(|s| s.is_some()),
            Ok(true),
            "one left: only() takes it"
        );
        let mut two = Sockets {
            sockets: vec![listener("a"), listener("b")],
        };
        assert_eq!(
            two.only().map(|_| ()),
            Err(ActivationError::NotExactlyOne { found: 2 })
        );
        assert_eq!(
            two.finish(),
            Err(ActivationError::Unexpected(vec!["a".into(), "b".into()]))
        );
        assert_eq!(Sockets::default().finish(), Ok(()));
    }
}
