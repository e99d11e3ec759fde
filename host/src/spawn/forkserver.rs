//! The `forkserver` backend: actor processes forked from a warm zygote.
//!
//! The tree's driver starts one zygote (`tractor-host __zygote`) per tree.
//! It sets up the engine, loads and links every component of the tree,
//! checks that it has exactly one thread (forking a multi-threaded process
//! is unsafe) and listens on an abstract unix socket, serving requests
//! without any async runtime: a `poll` loop over its control pipe, the
//! listener, a `signalfd` for `SIGCHLD` and one connection per actor.
//!
//! An actor that wants a child connects, sends [`ZygoteMsg::Fork`] with the
//! child's side of a fresh link (two pipe ends) attached, and gets the pid
//! back. The
//! connection then lives as long as the child: signals go down it, the exit
//! status comes back up it. The promises of the `exec` backend hold:
//!
//! - **no zombies**: the zygote reaps every child and reports its status;
//! - **parent death kills children**: if the requester dies its connection
//!   closes and the zygote SIGKILLs the child; if the zygote dies, its
//!   children die by `PR_SET_PDEATHSIG`; and the child still treats EOF on
//!   its own pipe as its parent's death;
//! - **output forwarding**: children inherit the zygote's stdout/stderr,
//!   which are the root's.
//!
//! A forked child keeps only what it may share (the engine and the linked,
//! read-only components, mapped copy-on-write); it closes every descriptor
//! of the zygote (listener, control pipe, other actors' connections) and
//! unblocks signals before it runs the actor.
//!
//! This is the client half and the protocol ([`ZygoteMsg`]); the zygote
//! itself is actor-process code, in `actor::zygote`.

use super::{exec, Exit, Inner, KillVia, Killer, Link, LinkFds, Process, Spawned, MAX_HANDED};
use crate::framing::{encode_frame, read_frame};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags, UnixAddr};
use serde::{Deserialize, Serialize};
use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::linux::net::SocketAddrExt as _;
use std::os::unix::net::{SocketAddr, UnixStream as StdUnixStream};
use std::path::Path;
use tokio::io::AsyncWriteExt as _;
use tokio::sync::{mpsc, oneshot};

/// The hidden subcommand that turns the host binary into a tree's zygote.
pub const ZYGOTE_SUBCOMMAND: &str = "__zygote";

/// A running zygote, owned by the tree's driver: dropping it kills it, and
/// with it (through their death signal) every actor it forked.
pub struct Zygote {
    /// The abstract socket name actors connect to.
    pub addr: String,
    /// The zygote's pid.
    pub pid: u32,
    _process: exec::Child,
    _control: Link,
}

impl std::fmt::Debug for Zygote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Zygote").field("addr", &self.addr).field("pid", &self.pid).finish()
    }
}

impl Zygote {
    /// Start the zygote of tree `tree_id` with its `components` (whatever
    /// the zygote's side makes of them: this side only starts processes),
    /// and wait
    /// until it listens.
    pub async fn start(exe: &Path, tree_id: &str, components: &impl Serialize) -> std::io::Result<Zygote> {
        let components = ciborium::Value::serialized(components).map_err(std::io::Error::other)?;
        let (mut process, mut control) = exec::start(exe, ZYGOTE_SUBCOMMAND, false, tree_id, Vec::new()).await?;
        let addr = format!("tractor-zygote-{tree_id}-{}", super::new_uid());
        let mut init = Vec::new();
        encode_frame(&ZygoteMsg::Init { components, addr: addr.clone() }, &mut init).map_err(std::io::Error::other)?;
        control.tx.write_all(&init).await?;
        match read_frame::<ZygoteMsg, _>(&mut control.rx).await {
            Ok(ZygoteMsg::Listening { pid }) => Ok(Zygote { addr, pid, _process: process, _control: control }),
            Ok(other) => Err(std::io::Error::other(format!("zygote: unexpected message {other:?}"))),
            Err(e) => {
                let status = process.wait().await;
                Err(std::io::Error::other(format!("the zygote failed to start ({e}; it {status})")))
            }
        }
    }
}

/// Send `frame` on `conn` with descriptors `fds` attached (`SCM_RIGHTS`).
pub fn send_with_fds(conn: &StdUnixStream, frame: &[u8], fds: &[RawFd]) -> std::io::Result<()> {
    sendmsg::<UnixAddr>(
        conn.as_raw_fd(),
        &[IoSlice::new(frame)],
        &[ControlMessage::ScmRights(fds)],
        MsgFlags::empty(),
        None,
    )?;
    Ok(())
}

/// Ask the zygote at `addr` for a new actor process, handing it `handed`.
pub async fn fork_actor(addr: &str, new_group: bool, handed: Vec<OwnedFd>) -> std::io::Result<Spawned> {
    if handed.len() > MAX_HANDED {
        return Err(std::io::Error::other(format!("at most {MAX_HANDED} descriptors can be handed to an actor")));
    }
    let numbers = super::handed_numbers(handed.len());
    let (ours, theirs) = LinkFds::pair()?;
    let conn = StdUnixStream::connect_addr(&SocketAddr::from_abstract_name(addr.as_bytes())?)
        .map_err(|e| std::io::Error::other(format!("cannot reach the forkserver `{addr}`: {e}")))?;
    let mut frame = Vec::new();
    encode_frame(&ZygoteMsg::Fork { new_group }, &mut frame).map_err(std::io::Error::other)?;
    let fds: Vec<RawFd> = [theirs.rx.as_raw_fd(), theirs.tx.as_raw_fd()]
        .into_iter()
        .chain(handed.iter().map(|f| f.as_raw_fd()))
        .collect();
    send_with_fds(&conn, &frame, &fds)?;
    drop((theirs, handed));
    conn.set_nonblocking(true)?;
    let (mut r, mut w) = tokio::net::UnixStream::from_std(conn)?.into_split();
    let pid = match read_frame::<ZygoteMsg, _>(&mut r).await {
        Ok(ZygoteMsg::Forked { pid }) => pid,
        Ok(ZygoteMsg::Refused { reason }) => {
            return Err(std::io::Error::other(format!("the forkserver refused: {reason}")))
        }
        Ok(other) => return Err(std::io::Error::other(format!("forkserver: unexpected message {other:?}"))),
        Err(e) => return Err(std::io::Error::other(format!("forkserver: {e}"))),
    };
    let (kill_tx, mut kill_rx) = mpsc::unbounded_channel::<i32>();
    let (exit_tx, exit_rx) = oneshot::channel();
    // Relay signals down and the exit status up. Once every handle on the
    // child is gone the connection closes, and the zygote kills the child.
    tokio::spawn(async move {
        let exit = loop {
            tokio::select! {
                sig = kill_rx.recv() => match sig {
                    Some(signal) => {
                        let mut buf = Vec::new();
                        if encode_frame(&ZygoteMsg::Signal { signal }, &mut buf).is_ok() {
                            let _ = w.write_all(&buf).await;
                        }
                    }
                    None => return,
                },
                msg = read_frame::<ZygoteMsg, _>(&mut r) => break match msg {
                    Ok(ZygoteMsg::Exited { code: Some(c), .. }) => Exit::Code(c),
                    Ok(ZygoteMsg::Exited { signal: Some(s), .. }) => Exit::Signal(s),
                    Ok(other) => Exit::Lost(format!("unexpected message from the forkserver: {other:?}")),
                    Err(e) => Exit::Lost(format!("the forkserver went away ({e})")),
                },
            }
        };
        let _ = exit_tx.send(exit);
    });
    let process = Process { inner: Inner::Reported(exit_rx), killer: Killer(KillVia::Channel(kill_tx)) };
    Ok(Spawned { process, link: ours.into_async()?, pid, handed: numbers })
}

/// Messages between the tree's zygote (the forkserver) and the actors that
/// ask it for children; one connection per forked actor, which lives as
/// long as that actor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum ZygoteMsg {
    /// Creator → zygote, first frame on its control pipe: load these
    /// components and listen on the abstract socket `addr`.
    Init {
        /// Every component of the tree.
        components: ciborium::Value,
        /// Abstract unix socket name to listen on.
        addr: String,
    },
    /// Zygote → creator: listening, and single-threaded (safe to fork).
    Listening {
        /// The zygote's pid.
        pid: u32,
    },
    /// Requester → zygote, with the new actor's side of its link (read end, write end)
    /// attached (`SCM_RIGHTS`): fork an actor process on it.
    Fork {
        /// Make the actor lead a new process group.
        new_group: bool,
    },
    /// Zygote → requester: the actor process is running.
    Forked {
        /// Its pid.
        pid: u32,
    },
    /// Zygote → requester: no actor was started.
    Refused {
        /// Why.
        reason: String,
    },
    /// Requester → zygote: deliver this signal to the actor.
    Signal {
        /// Signal number.
        signal: i32,
    },
    /// Zygote → requester: the actor ended and was reaped.
    Exited {
        /// Exit code, if it exited.
        code: Option<i32>,
        /// Signal number, if it was killed.
        signal: Option<i32>,
    },
}
