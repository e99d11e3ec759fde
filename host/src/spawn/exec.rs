//! The `exec` backend: a fresh process per actor.
//!
//! An actor process is the host binary re-executed with the hidden `__actor`
//! subcommand. Its end of a fresh socket pair is installed as fd 3
//! ([`ACTOR_FD`]); stdin is closed and stdout/stderr are inherited, so guest
//! output reaches the root's terminal.
//!
//! Two independent mechanisms make sure no actor outlives its parent:
//! `PR_SET_PDEATHSIG(SIGKILL)` set between fork and exec, and EOF on fd 3,
//! which the actor treats as "my parent is gone". Because the death signal
//! fires when the *thread* that forked exits, every fork happens on one
//! dedicated thread that lives as long as the process.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::sync::{Mutex, OnceLock};

use super::{Inner, KillVia, Killer, Process, Spawned};

/// The file descriptor on which an actor process finds its parent's pipe.
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
    let (child, sock) = start(exe, ACTOR_SUBCOMMAND, new_group, tree_id).await?;
    let pid = child.id().unwrap_or(0);
    let killer = Killer(KillVia::Pid(pid as libc::pid_t));
    Ok(Spawned { process: Process { inner: Inner::Exec(child), killer }, sock, pid })
}

/// Start `exe <subcommand>` on the fork thread with a fresh socket pair on
/// its fd 3; returns the child and our end.
pub(super) async fn start(
    exe: &Path,
    subcommand: &'static str,
    new_group: bool,
    tree_id: &str,
) -> std::io::Result<(tokio::process::Child, tokio::net::UnixStream)> {
    let (ours, theirs) = StdUnixStream::pair()?;
    let handle = tokio::runtime::Handle::current();
    let exe: PathBuf = exe.to_path_buf();
    let tree_id = tree_id.to_string();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _rt = handle.enter();
        let _ = tx.send(fork_exec(&exe, subcommand, OwnedFd::from(theirs), new_group, &tree_id));
    });
    fork_thread()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .send(job)
        .map_err(|_| std::io::Error::other("fork thread is gone"))?;
    let child = rx.await.map_err(|_| std::io::Error::other("fork thread dropped the request"))??;
    ours.set_nonblocking(true)?;
    Ok((child, tokio::net::UnixStream::from_std(ours)?))
}

/// Fork and exec `exe <subcommand>` with `theirs` as its fd 3.
fn fork_exec(
    exe: &Path,
    subcommand: &str,
    theirs: OwnedFd,
    new_group: bool,
    tree_id: &str,
) -> std::io::Result<tokio::process::Child> {
    let parent = std::process::id() as libc::pid_t;
    let fd = theirs.as_raw_fd();
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
            if fd == ACTOR_FD {
                let flags = libc::fcntl(fd, libc::F_GETFD);
                libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC);
            } else if libc::dup2(fd, ACTOR_FD) < 0 {
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

/// Take the parent pipe an actor process inherited on [`ACTOR_FD`].
///
/// # Safety
/// Call once, in an actor process, before anything else may own fd 3.
pub unsafe fn inherited_pipe() -> std::io::Result<StdUnixStream> {
    use std::os::fd::FromRawFd;
    // SAFETY: fd 3 was installed for us by `fork_exec`; the caller promises
    // nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(ACTOR_FD) };
    let sock = StdUnixStream::from(fd);
    // Keep grandchildren from inheriting it.
    // SAFETY: plain fcntl on an fd we own.
    unsafe {
        let flags = libc::fcntl(ACTOR_FD, libc::F_GETFD);
        libc::fcntl(ACTOR_FD, libc::F_SETFD, flags | libc::FD_CLOEXEC);
    }
    sock.set_nonblocking(true)?;
    Ok(sock)
}
