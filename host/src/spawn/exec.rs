//! The `exec` backend: a fresh process per actor.
//!
//! An actor process is the host binary re-executed with the hidden `__actor`
//! subcommand. Its side of a fresh [`Link`] is installed as fds 3 (from the
//! parent, [`ACTOR_FD`]) and 4 (to the parent); stdin is closed and stdout/stderr are inherited, so guest
//! output reaches the root's terminal.
//!
//! Two independent mechanisms make sure no actor outlives its parent:
//! `PR_SET_PDEATHSIG(SIGKILL)`, which the child sets first thing (then
//! checks its parent is still the one that spawned it), and EOF on fd 3,
//! which the actor treats as "my parent is gone". Because the death signal
//! fires when the *thread* that spawned the child exits, every spawn happens
//! on one dedicated thread that lives as long as the process.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::sync::{Mutex, OnceLock};

use super::{Exit, Inner, KillVia, Killer, Link, LinkFds, Process, Spawned};

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
pub async fn spawn_actor(exe: &Path, new_group: bool, tree_id: &str, handed: Vec<OwnedFd>) -> std::io::Result<Spawned> {
    let numbers = super::handed_numbers(handed.len());
    let (child, link) = start(exe, ACTOR_SUBCOMMAND, new_group, tree_id, handed).await?;
    let pid = child.pid as u32;
    let killer = Killer(KillVia::Pid(child.pid));
    Ok(Spawned { process: Process { inner: Inner::Exec(child), killer }, link, pid, handed: numbers })
}

/// Start `exe <subcommand>` on the fork thread with a fresh link on its
/// fds 3 and 4 and `handed` on the fds after them; returns the child and
/// our side.
pub(super) async fn start(
    exe: &Path,
    subcommand: &'static str,
    new_group: bool,
    tree_id: &str,
    handed: Vec<OwnedFd>,
) -> std::io::Result<(Child, Link)> {
    let (ours, theirs) = LinkFds::pair()?;
    let exe: PathBuf = exe.to_path_buf();
    let tree_id = tree_id.to_string();
    let pid = on_fork_thread(move || posix_spawn(&exe, subcommand, &theirs, &handed, new_group, &tree_id)).await?;
    Ok((Child::adopt(pid)?, ours.into_async()?))
}

/// Start `exe __exec-child <program> <args…>` on the fork thread: the
/// program (ssh) with each `(fd, target)` of `fds` installed, dying with
/// us (see [`exec_child`]). Returns the child.
pub(crate) async fn start_program(
    exe: &Path,
    program_and_args: Vec<String>,
    fds: Vec<(OwnedFd, i32)>,
    tree_id: &str,
) -> std::io::Result<Child> {
    let exe: PathBuf = exe.to_path_buf();
    let tree_id = tree_id.to_string();
    let pid = on_fork_thread(move || {
        let args: Vec<String> = [EXEC_CHILD_SUBCOMMAND.to_string()].into_iter().chain(program_and_args).collect();
        let moves: Vec<(i32, i32)> = fds.iter().map(|(fd, t)| (fd.as_raw_fd(), *t)).collect();
        let null_stdin = !moves.iter().any(|m| m.1 == 0);
        spawn_program(&exe, &args, &moves, null_stdin, false, &tree_id)
    })
    .await?;
    Child::adopt(pid)
}

/// Run a spawn on the fork thread (see module docs) and wait for its pid.
async fn on_fork_thread(
    spawn: impl FnOnce() -> std::io::Result<libc::pid_t> + Send + 'static,
) -> std::io::Result<libc::pid_t> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = tx.send(spawn());
    });
    fork_thread()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .send(job)
        .map_err(|_| std::io::Error::other("fork thread is gone"))?;
    rx.await.map_err(|_| std::io::Error::other("fork thread dropped the request"))?
}

/// The hidden subcommand that runs a program (ssh) tied to our life.
pub const EXEC_CHILD_SUBCOMMAND: &str = "__exec-child";

/// `tractor-host __exec-child <program> <args…>`: set the death signal
/// (posix_spawn cannot), check the parent is still there, ignore ^C (the
/// tree tears it down), then become the program.
pub fn exec_child() -> i32 {
    use std::os::unix::process::CommandExt as _;
    let mut args = std::env::args_os().skip(2);
    let Some(program) = args.next() else {
        eprintln!("tractor: __exec-child needs a program (this subcommand is internal)");
        return 64;
    };
    // SAFETY: plain prctl/getppid/signal calls before exec.
    unsafe {
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
            return 71;
        }
        let parent = std::env::var(PARENT_ENV).ok().and_then(|p| p.parse::<libc::pid_t>().ok());
        if parent.is_some_and(|p| p != libc::getppid()) {
            return 1;
        }
        libc::signal(libc::SIGINT, libc::SIG_IGN);
    }
    let e = std::process::Command::new(&program).args(args).exec();
    eprintln!("tractor: cannot run {}: {e}", program.to_string_lossy());
    127
}

/// Environment variable telling an `exec` child its parent's pid, so it can
/// tell whether its parent died before it set its death signal.
const PARENT_ENV: &str = "TRACTOR_PARENT_PID";

/// `posix_spawn` (a vfork: the parent's page tables are not copied, which
/// a profile of 1,000 spawns found to be a third of their cost with fork)
/// of `exe <subcommand>` with `theirs` as its fds 3 and 4, `handed` from fd
/// 5 on, stdin on /dev/null, the tree id and our pid in its environment.
fn posix_spawn(
    exe: &Path,
    subcommand: &str,
    theirs: &LinkFds,
    handed: &[OwnedFd],
    new_group: bool,
    tree_id: &str,
) -> std::io::Result<libc::pid_t> {
    let sources: Vec<i32> = [theirs.rx.as_raw_fd(), theirs.tx.as_raw_fd()]
        .into_iter()
        .chain(handed.iter().map(|f| f.as_raw_fd()))
        .collect();
    let moves: Vec<(i32, i32)> = sources.iter().enumerate().map(|(i, fd)| (*fd, ACTOR_FD + i as i32)).collect();
    spawn_program(exe, &[subcommand.to_string()], &moves, true, new_group, tree_id)
}

/// `posix_spawn` of `exe args…` with each `(source, target)` of `moves`
/// installed as its fd `target`, stdin on /dev/null if `null_stdin`, the
/// tree id and our pid in its environment.
fn spawn_program(
    exe: &Path,
    args: &[String],
    moves: &[(i32, i32)],
    null_stdin: bool,
    new_group: bool,
    tree_id: &str,
) -> std::io::Result<libc::pid_t> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt as _;
    let cstr = |b: &[u8]| CString::new(b).map_err(|_| std::io::Error::other("NUL byte in an argument"));
    let path = cstr(exe.as_os_str().as_bytes())?;
    let args: Vec<CString> = args.iter().map(|a| cstr(a.as_bytes())).collect::<Result<_, _>>()?;
    let mut env = Vec::new();
    for (k, v) in std::env::vars_os() {
        if k != super::TREE_ENV && k != PARENT_ENV {
            env.push(cstr(&[k.as_bytes(), b"=", v.as_bytes()].concat())?);
        }
    }
    env.push(cstr(format!("{}={tree_id}", super::TREE_ENV).as_bytes())?);
    env.push(cstr(format!("{PARENT_ENV}={}", std::process::id()).as_bytes())?);
    let argv: Vec<*const libc::c_char> =
        [path.as_ptr()].into_iter().chain(args.iter().map(|a| a.as_ptr())).chain([std::ptr::null()]).collect();
    let envp: Vec<*const libc::c_char> = env.iter().map(|c| c.as_ptr()).chain([std::ptr::null()]).collect();
    // Each source goes to a spare number above every source and target
    // first, then to its target: moving one never clobbers another.
    let sources: Vec<i32> = moves.iter().map(|m| m.0).collect();
    let last_target = moves.iter().map(|m| m.1).max().unwrap_or(0);
    let spare = sources.iter().copied().max().unwrap_or(0).max(last_target) + 1;
    let check = |rc: libc::c_int| if rc == 0 { Ok(()) } else { Err(std::io::Error::from_raw_os_error(rc)) };
    // SAFETY: the file actions and attributes are initialised before use
    // and destroyed after; every pointer passed lives until posix_spawn
    // returns.
    unsafe {
        let mut actions: libc::posix_spawn_file_actions_t = std::mem::zeroed();
        check(libc::posix_spawn_file_actions_init(&mut actions))?;
        let mut attrs: libc::posix_spawnattr_t = std::mem::zeroed();
        if let Err(e) = check(libc::posix_spawnattr_init(&mut attrs)) {
            libc::posix_spawn_file_actions_destroy(&mut actions);
            return Err(e);
        }
        let result = (|| {
            for (i, from) in sources.iter().enumerate() {
                check(libc::posix_spawn_file_actions_adddup2(&mut actions, *from, spare + i as i32))?;
            }
            for (i, (_, target)) in moves.iter().enumerate() {
                check(libc::posix_spawn_file_actions_adddup2(&mut actions, spare + i as i32, *target))?;
                check(libc::posix_spawn_file_actions_addclose(&mut actions, spare + i as i32))?;
            }
            if null_stdin {
                check(libc::posix_spawn_file_actions_addopen(
                    &mut actions,
                    0,
                    c"/dev/null".as_ptr(),
                    libc::O_RDONLY,
                    0,
                ))?;
            }
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            check(libc::posix_spawnattr_setsigmask(&mut attrs, &none))?;
            let mut flags = libc::POSIX_SPAWN_SETSIGMASK;
            if new_group {
                check(libc::posix_spawnattr_setpgroup(&mut attrs, 0))?;
                flags |= libc::POSIX_SPAWN_SETPGROUP;
            }
            check(libc::posix_spawnattr_setflags(&mut attrs, flags as libc::c_short))?;
            let mut pid = 0;
            check(libc::posix_spawn(
                &mut pid,
                path.as_ptr(),
                &actions,
                &attrs,
                argv.as_ptr() as *const *mut libc::c_char,
                envp.as_ptr() as *const *mut libc::c_char,
            ))?;
            Ok(pid)
        })();
        libc::posix_spawnattr_destroy(&mut attrs);
        libc::posix_spawn_file_actions_destroy(&mut actions);
        result
    }
}

/// A child process of ours, reaped through a pidfd (so waiting needs no
/// SIGCHLD handler and cannot race with a reused pid). Dropping it before
/// it was reaped kills and reaps it.
pub struct Child {
    /// Its pid.
    pub pid: libc::pid_t,
    pidfd: tokio::io::unix::AsyncFd<OwnedFd>,
    reaped: bool,
}

impl Child {
    fn adopt(pid: libc::pid_t) -> std::io::Result<Child> {
        use std::os::fd::FromRawFd;
        // SAFETY: pidfd_open on our own unreaped child, which cannot be recycled.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd < 0 {
            let e = std::io::Error::last_os_error();
            // SAFETY: plain kill/waitpid of our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
            return Err(e);
        }
        // SAFETY: the syscall just gave us this descriptor.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        // SAFETY: an OwnedFd stays open and keeps its number while owned.
        let pidfd = unsafe { tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
            .map_err(std::io::Error::from)?;
        Ok(Child { pid, pidfd, reaped: false })
    }

    /// How it ended, if it has (reaping it then); `None` while it runs.
    pub fn try_exit(&mut self) -> Option<Exit> {
        if self.reaped {
            return Some(Exit::Lost("already reaped".into()));
        }
        match reap(self.pidfd.get_ref().as_raw_fd(), libc::WNOHANG) {
            Ok(Some(exit)) => {
                self.reaped = true;
                Some(exit)
            }
            Ok(None) => None,
            Err(e) => Some(Exit::Lost(e.to_string())),
        }
    }

    /// Wait until it has exited, and reap it.
    pub async fn wait(&mut self) -> Exit {
        loop {
            let reaped = {
                let mut guard = match self.pidfd.readable().await {
                    Ok(g) => g,
                    Err(e) => return Exit::Lost(format!("cannot wait: {e}")),
                };
                let r = reap(self.pidfd.get_ref().as_raw_fd(), libc::WNOHANG);
                if matches!(r, Ok(None)) {
                    guard.clear_ready();
                }
                r
            };
            match reaped {
                Ok(Some(exit)) => {
                    self.reaped = true;
                    return exit;
                }
                Ok(None) => {}
                Err(e) => return Exit::Lost(format!("cannot reap: {e}")),
            }
        }
    }
}

/// Reap the child behind `pidfd` if it has ended (or wait, without WNOHANG).
fn reap(pidfd: std::os::fd::RawFd, flags: libc::c_int) -> std::io::Result<Option<Exit>> {
    // SAFETY: a zeroed siginfo is a valid value for waitid to fill.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: waitid on a pidfd we own, with a valid siginfo pointer.
    let rc = unsafe { libc::waitid(libc::P_PIDFD, pidfd as libc::id_t, &mut info, libc::WEXITED | flags) };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: waitid filled `info` for a child event (or left it zeroed).
    let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
    if pid == 0 {
        return Ok(None);
    }
    Ok(Some(if info.si_code == libc::CLD_EXITED { Exit::Code(status) } else { Exit::Signal(status) }))
}

impl Drop for Child {
    fn drop(&mut self) {
        if !self.reaped {
            // SAFETY: plain kill(2) of our unreaped child.
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
            let _ = reap(self.pidfd.get_ref().as_raw_fd(), 0);
        }
    }
}

/// Take the link to its parent an actor process inherited on [`ACTOR_FD`]
/// (and the fd after it).
///
/// # Safety
/// Call once, in an actor process, before anything else may own fds 3 and 4.
pub unsafe fn inherited_link() -> std::io::Result<LinkFds> {
    use std::os::fd::FromRawFd;
    // SAFETY: plain signal/prctl/getppid calls, first thing in the process.
    unsafe {
        // Torn down by its parent, not by the terminal's ^C.
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // The parent may have died before the death signal was set.
        let parent = std::env::var(PARENT_ENV).ok().and_then(|p| p.parse::<libc::pid_t>().ok());
        if parent.is_some_and(|p| p != libc::getppid()) {
            libc::_exit(1);
        }
    }
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
