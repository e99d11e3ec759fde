//! The `exec` backend: a fresh process per actor.
//!
//! An actor process is the host binary re-executed with the hidden `__actor`
//! subcommand. Its side of a fresh [`Link`] is installed as fds 3 (from the
//! parent, [`ACTOR_FD`]) and 4 (to the parent); stdin is closed and stdout/stderr are inherited, so guest
//! output reaches the root's terminal.
//!
//! Two independent mechanisms make sure no actor outlives its parent:
//! `PR_SET_PDEATHSIG(SIGKILL)` set between fork and exec, and EOF on fd 3,
//! which the actor treats as "my parent is gone". Because the death signal
//! fires when the *thread* that forked exits, every fork happens on one
//! dedicated thread that lives as long as the process.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::sync::{Mutex, OnceLock};

use super::{Inner, KillVia, Killer, Link, LinkFds, Process, Spawned};

/// The file descriptor on which an actor process reads from its parent;
/// it writes to its parent on the next one.
pub const ACTOR_FD: i32 = 3;

/// The hidden subcommand that turns the host binary into an actor process.
pub const ACTOR_SUBCOMMAND: &str = "__actor";

type Job = Box<dyn FnOnce() + Send>;

/// The long-lived thread all forks happen on (see module docs).
fn fork_thread() -> &'static Mutex<std_mpsc::Sender<Job>> {
    static TX: OnceLock<Mutex<std_mpsc::Sender<Job>>> = OnceLock::new();
    TX.get_or_init(|| {
        let (tx, rx) = std_mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("tractor-fork".into())
            .spawn(move || {
                for job in rx {
                    job();
                }
            })
            .expect("cannot start the fork thread");
        Mutex::new(tx)
    })
}

/// Start `exe __actor` as a child actor process.
///
/// With `new_group`, the child leads a new process group (the root of a
/// tree does this, so the whole tree can be signalled at once).
pub async fn spawn_actor(exe: &Path, new_group: bool, tree_id: &str) -> std::io::Result<Spawned> {
    let (child, link) = start(exe, ACTOR_SUBCOMMAND, new_group, tree_id).await?;
    let pid = child.id().unwrap_or(0);
    let killer = Killer(KillVia::Pid(pid as libc::pid_t));
    Ok(Spawned { process: Process { inner: Inner::Exec(child), killer }, link, pid })
}

/// Start `exe <subcommand>` on the fork thread with a fresh link on its
/// fds 3 and 4; returns the child and our side.
pub(super) async fn start(
    exe: &Path,
    subcommand: &'static str,
    new_group: bool,
    tree_id: &str,
) -> std::io::Result<(tokio::process::Child, Link)> {
    let (ours, theirs) = LinkFds::pair()?;
    let handle = tokio::runtime::Handle::current();
    let exe: PathBuf = exe.to_path_buf();
    let tree_id = tree_id.to_string();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _rt = handle.enter();
        let _ = tx.send(fork_exec(&exe, subcommand, theirs, new_group, &tree_id));
    });
    fork_thread()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .send(job)
        .map_err(|_| std::io::Error::other("fork thread is gone"))?;
    let child = rx.await.map_err(|_| std::io::Error::other("fork thread dropped the request"))??;
    Ok((child, ours.into_async()?))
}

/// Fork and exec `exe <subcommand>` with `theirs` as its fds 3 and 4.
fn fork_exec(
    exe: &Path,
    subcommand: &str,
    theirs: LinkFds,
    new_group: bool,
    tree_id: &str,
) -> std::io::Result<tokio::process::Child> {
    let parent = std::process::id() as libc::pid_t;
    let (rx, tx) = (theirs.rx.as_raw_fd(), theirs.tx.as_raw_fd());
    let mut cmd = std::process::Command::new(exe);
    cmd.arg(subcommand).stdin(std::process::Stdio::null()).env(crate::nursery::TREE_ENV, tree_id);
    if new_group {
        cmd.process_group(0);
    }
    // SAFETY: only async-signal-safe libc calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before the prctl took effect.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            // Move both out of the way first (either may sit on 3 or 4),
            // then onto 3 and 4; dup2 clears close-on-exec.
            let (r, w) = (libc::fcntl(rx, libc::F_DUPFD_CLOEXEC, 10), libc::fcntl(tx, libc::F_DUPFD_CLOEXEC, 10));
            if r < 0 || w < 0 || libc::dup2(r, ACTOR_FD) < 0 || libc::dup2(w, ACTOR_FD + 1) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // Actors are torn down by their parent, not by the terminal's ^C.
            libc::signal(libc::SIGINT, libc::SIG_IGN);
            Ok(())
        });
    }
    let mut cmd = tokio::process::Command::from(cmd);
    cmd.kill_on_drop(true);
    let child = cmd.spawn();
    drop(theirs);
    child
}

/// Take the link to its parent an actor process inherited on [`ACTOR_FD`]
/// (and the fd after it).
///
/// # Safety
/// Call once, in an actor process, before anything else may own fds 3 and 4.
pub unsafe fn inherited_link() -> std::io::Result<LinkFds> {
    use std::os::fd::FromRawFd;
    for fd in [ACTOR_FD, ACTOR_FD + 1] {
        // SAFETY: plain fcntl; keeps grandchildren from inheriting them,
        // and fails (EBADF) if nothing was installed there.
        if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    // SAFETY: fds 3 and 4 were installed for us by `fork_exec`; the caller
    // promises nothing else owns them.
    Ok(unsafe { LinkFds { rx: OwnedFd::from_raw_fd(ACTOR_FD), tx: OwnedFd::from_raw_fd(ACTOR_FD + 1) } })
}
