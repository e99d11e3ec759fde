//! Starting actors: three interchangeable backends behind one handle.
//!
//! - [`Backend::Exec`] re-executes the host binary with the hidden `__actor`
//!   subcommand ([`exec`]). Full process isolation; ~3–4 ms a spawn.
//! - [`Backend::Forkserver`] asks the tree's zygote, a single-threaded
//!   process that has the engine set up and every component loaded and
//!   linked, to fork a new actor process ([`forkserver`]). Same isolation,
//!   a fraction of the start-up cost.
//! - [`Backend::Thread`] runs the actor on a new thread of the spawning
//!   process, with its own store, limits and runtime ([`thread`]). No OS
//!   isolation and no parallelism beyond the parent's process, but the
//!   cheapest actor there is.
//!
//! Whatever the backend, the parent talks to the child over a [`Link`] (a
//! pipe each way) carrying [`Msg`](crate::wire::Msg) frames, and gets a
//! [`Process`] to wait for and to signal: the rest of the runtime cannot
//! tell them apart.

pub mod exec;
pub mod forkserver;
mod handed;
mod policy;
pub mod ssh;
pub mod thread;

pub use exec::{inherited_link, ACTOR_FD, ACTOR_SUBCOMMAND};
pub use forkserver::ZYGOTE_SUBCOMMAND;

pub use handed::{place as place_handed, Handed, FIRST_HANDED_FD, MAX_HANDED};
pub use policy::{valid_name, Backend, SpawnPolicy, UnknownBackend};

use std::os::fd::OwnedFd;
use std::path::Path;
use tokio::net::unix::pipe;
use tokio::sync::{mpsc, oneshot};

/// How an actor ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this status code.
    Code(i32),
    /// It was killed by this signal.
    Signal(i32),
    /// A thread actor that was stopped from outside (the in-process
    /// equivalent of a kill).
    Aborted,
    /// Its fate is unknown (the zygote that forked it went away).
    Lost(String),
}

impl Exit {
    /// True for a zero exit code.
    pub fn success(&self) -> bool {
        *self == Exit::Code(0)
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exited with status {c}"),
            Exit::Signal(s) => write!(f, "killed by signal {s}"),
            Exit::Aborted => write!(f, "its thread was stopped"),
            Exit::Lost(why) => write!(f, "lost: {why}"),
        }
    }
}

/// A running actor, whatever its backend: wait for it, signal it.
pub struct Process {
    inner: Inner,
    killer: Killer,
}

enum Inner {
    Exec(exec::Child),
    Reported(oneshot::Receiver<Exit>),
    /// The local ssh client of a remote actor: its own end says only that
    /// the link is gone (how the actor ended comes as `Msg::Exited`).
    Ssh {
        child: exec::Child,
        host: String,
        last: std::sync::Arc<std::sync::Mutex<String>>,
        _session: Box<dyn Send + Sync>,
    },
}

impl Process {
    /// Wait until the actor has ended (and, for a process, been reaped).
    pub async fn wait(&mut self) -> Exit {
        match &mut self.inner {
            Inner::Exec(child) => child.wait().await,
            Inner::Reported(rx) => rx.await.unwrap_or_else(|_| Exit::Lost("its supervisor went away".into())),
            Inner::Ssh { child, host, last, .. } => {
                let exit = child.wait().await;
                let tail = last.lock().unwrap().clone();
                let tail = if tail.is_empty() { String::new() } else { format!(": {tail}") };
                Exit::Lost(format!("contact with host '{host}' ended (ssh {exit}{tail})"))
            }
        }
    }

    /// A handle that can signal the actor while someone else waits for it.
    pub fn killer(&self) -> Killer {
        self.killer.clone()
    }
}

/// Sends signals to an actor. For a thread actor, SIGTERM and SIGKILL both
/// stop its thread at the next point it yields (every epoch tick in wasm).
#[derive(Clone, Debug)]
pub struct Killer(KillVia);

#[derive(Clone, Debug)]
enum KillVia {
    Pid(libc::pid_t),
    Channel(mpsc::UnboundedSender<i32>),
    Remote(std::sync::Arc<RemoteKill>),
    Nothing,
}

/// Signals for a remote actor: a `Signal` frame its relay delivers, or,
/// once the link is gone, SIGKILL of the local ssh client.
#[derive(Debug)]
struct RemoteKill {
    ssh_pid: libc::pid_t,
    link: std::sync::OnceLock<mpsc::UnboundedSender<crate::wire::Msg>>,
}

impl RemoteKill {
    fn new(ssh_pid: libc::pid_t) -> RemoteKill {
        RemoteKill { ssh_pid, link: std::sync::OnceLock::new() }
    }
}

impl Killer {
    /// A killer that signals nothing (for an actor that is not ours).
    pub fn none() -> Killer {
        Killer(KillVia::Nothing)
    }

    /// Deliver `signal` (a no-op once the actor is gone).
    pub fn signal(&self, signal: i32) {
        match &self.0 {
            // SAFETY: plain kill(2). Callers only signal an actor they have
            // not yet seen exit, so the pid is not reaped and not reused.
            KillVia::Pid(pid) => unsafe {
                libc::kill(*pid, signal);
            },
            KillVia::Channel(tx) => {
                let _ = tx.send(signal);
            }
            KillVia::Remote(r) => {
                let sent = r.link.get().is_some_and(|tx| tx.send(crate::wire::Msg::Signal { signal }).is_ok());
                if !sent {
                    // SAFETY: plain kill(2) of our own ssh child, not yet reaped.
                    unsafe { libc::kill(r.ssh_pid, libc::SIGKILL) };
                }
            }
            KillVia::Nothing => {}
        }
    }

    /// For a remote actor: where its `Signal` frames go (the link's
    /// outgoing queue, made after the spawn).
    pub fn attach(&self, link: &mpsc::UnboundedSender<crate::wire::Msg>) {
        if let KillVia::Remote(r) = &self.0 {
            let _ = r.link.set(link.clone());
        }
    }

    /// Drop the link to a remote actor's relay: SIGKILL its ssh client
    /// (when the link is dead; a no-op for other backends).
    pub fn cut(&self) {
        if let KillVia::Remote(r) = &self.0 {
            // SAFETY: plain kill(2) of our own ssh child, not yet reaped.
            unsafe { libc::kill(r.ssh_pid, libc::SIGKILL) };
        }
    }
}

/// One side of a parent/child edge, ready for async use: a pipe to read
/// frames from and one to write frames to.
///
/// Pipes rather than a socket pair: a unix socket wakes its peer's epoll
/// for write space after every read, which costs a second cross-process
/// wakeup per message (a third of a call's time in a profile); a pipe wakes
/// its writer only if it was full.
pub struct Link {
    /// Frames from the other side.
    pub rx: pipe::Receiver,
    /// Frames to the other side.
    pub tx: pipe::Sender,
}

/// One side of an edge as plain descriptors, before it is handed over (to a
/// child process, a forked child or a thread).
pub struct LinkFds {
    /// Read end of the pipe from the other side.
    pub rx: OwnedFd,
    /// Write end of the pipe to the other side.
    pub tx: OwnedFd,
}

impl LinkFds {
    /// Two connected sides.
    pub fn pair() -> std::io::Result<(LinkFds, LinkFds)> {
        let (a_rx, a_tx) = std::io::pipe()?;
        let (b_rx, b_tx) = std::io::pipe()?;
        Ok((LinkFds { rx: b_rx.into(), tx: a_tx.into() }, LinkFds { rx: a_rx.into(), tx: b_tx.into() }))
    }

    /// Register with the current tokio runtime (makes both nonblocking).
    pub fn into_async(self) -> std::io::Result<Link> {
        Ok(Link { rx: pipe::Receiver::from_owned_fd(self.rx)?, tx: pipe::Sender::from_owned_fd(self.tx)? })
    }
}

/// A freshly started actor and our side of its link.
pub struct Spawned {
    /// The actor, to wait for and signal.
    pub process: Process,
    /// Our side of the link.
    pub link: Link,
    /// Its pid (for a thread actor, the pid of the process it lives in).
    pub pid: u32,
    /// The numbers the handed descriptors have in the actor, in order.
    pub handed: Vec<i32>,
}

/// One actor to start.
pub struct Request<'a> {
    /// How.
    pub backend: Backend,
    /// The host binary an `exec` actor runs.
    pub exe: &'a Path,
    /// Make a process actor lead a new process group (the tree's root does,
    /// so the whole tree can be signalled at once).
    pub new_group: bool,
    /// The tree's id ([`TREE_ENV`] in its environment).
    pub tree_id: &'a str,
    /// The tree's forkserver address, if it has one.
    pub zygote: Option<&'a str>,
    /// Descriptors the actor gets besides its link (see [`Handed`]).
    pub handed: Vec<OwnedFd>,
    /// What a `thread` actor runs.
    pub thread_entry: thread::Entry,
    /// For the `ssh` backend: where, and how.
    pub ssh: Option<ssh::SshSpawn<'a>>,
}

/// Start an actor as `req` says.
pub async fn spawn(req: Request<'_>) -> std::io::Result<Spawned> {
    let Request { backend, exe, new_group, tree_id, zygote, handed, thread_entry, ssh } = req;
    match backend {
        Backend::Ssh => {
            let ssh = ssh.ok_or_else(|| std::io::Error::other("an ssh spawn needs a host"))?;
            if !handed.is_empty() {
                return Err(std::io::Error::other(format!(
                    "folder grants cannot cross to host '{}' (a path there is another filesystem)",
                    ssh.host.name
                )));
            }
            ssh::spawn_actor(exe, tree_id, ssh).await
        }
        Backend::Exec => exec::spawn_actor(exe, new_group, tree_id, handed).await,
        Backend::Forkserver => {
            let addr = zygote.ok_or_else(|| {
                std::io::Error::other(
                    "this tree has no forkserver (set `spawn = \"forkserver\"` in the manifest's [tree] or on a \
                     component, or run with --spawn forkserver)",
                )
            })?;
            forkserver::fork_actor(addr, new_group, handed).await
        }
        Backend::Thread => thread::spawn_actor(tree_id, handed, thread_entry),
    }
}

/// Environment variable naming the tree an actor process belongs to.
pub const TREE_ENV: &str = "TRACTOR_TREE";

/// A random id for a new actor (12 hex digits).
pub fn new_uid() -> String {
    use std::io::Read;
    let mut b = [0u8; 6];
    if std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b)).is_err() {
        let t =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos() as u64;
        b.copy_from_slice(&(t ^ std::process::id() as u64).to_le_bytes()[..6]);
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The numbers a process actor finds `n` handed descriptors on.
fn handed_numbers(n: usize) -> Vec<i32> {
    (0..n as i32).map(|i| FIRST_HANDED_FD + i).collect()
}
