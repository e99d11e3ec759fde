//! Descriptors a spawner hands a new actor besides its link: the granted
//! folders, already open, so the child never resolves their paths itself.
//!
//! A process actor finds the `i`-th one on fd [`FIRST_HANDED_FD`]` + i`
//! (after its link on fds 3 and 4), whichever process backend started it; a
//! thread actor is given the descriptors themselves. Its `StartActor` names
//! each by number, and the actor claims it from here.

use std::collections::BTreeSet;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Most descriptors one actor may be handed (one per granted folder).
pub const MAX_HANDED: usize = 32;

/// The descriptor a process actor finds its first handed descriptor on.
pub const FIRST_HANDED_FD: RawFd = super::ACTOR_FD + 2;

/// The descriptors an actor was handed and has not claimed yet.
#[derive(Debug)]
pub enum Handed {
    /// Open in this process at these numbers (a process actor).
    Numbered(BTreeSet<RawFd>),
    /// Given to this thread actor.
    Owned(Vec<OwnedFd>),
}

impl Handed {
    /// What an `exec` actor process inherited: every descriptor from
    /// [`FIRST_HANDED_FD`] on that is open now.
    ///
    /// # Safety
    /// Call first thing in the process, before anything else opens
    /// descriptors (they would be taken for handed ones).
    pub unsafe fn inherited() -> Handed {
        let open = std::fs::read_dir("/proc/self/fd")
            .map(|d| {
                d.flatten()
                    .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<RawFd>().ok()))
                    .filter(|fd| *fd >= FIRST_HANDED_FD)
                    .collect::<BTreeSet<_>>()
            })
            .unwrap_or_default();
        // The read_dir itself held a descriptor that is closed again.
        Handed::Numbered(open.into_iter().filter(|fd| fd_is_open(*fd)).collect())
    }

    /// Nothing handed over.
    pub fn none() -> Handed {
        Handed::Numbered(BTreeSet::new())
    }

    /// Claim descriptor `fd`, once.
    pub fn take(&mut self, fd: RawFd) -> std::io::Result<OwnedFd> {
        let missing = || std::io::Error::other("not handed over by the parent (or already used)");
        match self {
            Handed::Numbered(set) => {
                if !set.remove(&fd) {
                    return Err(missing());
                }
                // SAFETY: plain fcntl; grandchildren must not inherit it.
                if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // SAFETY: it was open when the process started, nothing
                // else claimed it (we just removed it from the set).
                Ok(unsafe { OwnedFd::from_raw_fd(fd) })
            }
            Handed::Owned(fds) => {
                let i = fds.iter().position(|f| f.as_raw_fd() == fd).ok_or_else(missing)?;
                Ok(fds.swap_remove(i))
            }
        }
    }

    /// Close whatever was handed over but not claimed.
    pub fn close_rest(&mut self) {
        match self {
            Handed::Numbered(set) => {
                for fd in std::mem::take(set) {
                    // SAFETY: an unclaimed inherited descriptor nobody owns.
                    unsafe { libc::close(fd) };
                }
            }
            Handed::Owned(fds) => fds.clear(),
        }
    }
}

fn fd_is_open(fd: RawFd) -> bool {
    // SAFETY: plain fcntl query.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

/// Move `fds` onto consecutive numbers from `first` in this (single
/// threaded, freshly forked) process, moving `keep` out of the way first;
/// returns `keep` at its new numbers.
///
/// # Safety
/// Only in a single-threaded child between fork and running the actor.
pub unsafe fn place(fds: Vec<OwnedFd>, first: RawFd, keep: Vec<OwnedFd>) -> std::io::Result<Vec<OwnedFd>> {
    let above = first + fds.len() as RawFd;
    let lift = |fd: OwnedFd| -> std::io::Result<OwnedFd> {
        // SAFETY: F_DUPFD_CLOEXEC returns a new descriptor >= `above`.
        let n = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, above) };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: fcntl just returned it.
        Ok(unsafe { OwnedFd::from_raw_fd(n) })
    };
    let keep = keep.into_iter().map(lift).collect::<std::io::Result<Vec<_>>>()?;
    let lifted = fds.into_iter().map(lift).collect::<std::io::Result<Vec<_>>>()?;
    for (i, fd) in lifted.iter().enumerate() {
        // SAFETY: the targets are below `above`, where nothing we keep lives;
        // dup2 clears close-on-exec on the copy, as exec'd children expect.
        if unsafe { libc::dup2(fd.as_raw_fd(), first + i as RawFd) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(keep)
}
