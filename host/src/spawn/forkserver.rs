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

use super::{exec, Exit, Inner, KillVia, Killer, Link, LinkFds, Process, Spawned};
use crate::wire::frame::{decode_as, encode_frame};
use crate::wire::{read_frame, ComponentEntry, ZygoteMsg, MAX_FRAME};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags, UnixAddr};
use std::collections::HashMap;
use std::io::{IoSlice, IoSliceMut, Read as _, Write as _};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::linux::net::SocketAddrExt as _;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream as StdUnixStream};
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
    /// Start the zygote of tree `tree_id` with its `components`, and wait
    /// until it listens.
    pub async fn start(exe: &Path, tree_id: &str, components: &[ComponentEntry]) -> std::io::Result<Zygote> {
        let (mut process, mut control) = exec::start(exe, ZYGOTE_SUBCOMMAND, false, tree_id, Vec::new()).await?;
        let addr = format!("tractor-zygote-{tree_id}-{}", super::new_uid());
        let mut init = Vec::new();
        encode_frame(&ZygoteMsg::Init { components: components.to_vec(), addr: addr.clone() }, &mut init)
            .map_err(std::io::Error::other)?;
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
    sendmsg::<UnixAddr>(
        conn.as_raw_fd(),
        &[IoSlice::new(&frame)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )?;
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

/// Most descriptors one fork request hands over besides the link (one per
/// granted folder).
const MAX_HANDED: usize = crate::sandbox::MAX_DIRS;

/// Entry point of the zygote process; returns its exit code.
pub fn main() -> i32 {
    // SAFETY: called once, first thing in the zygote process.
    let control = match unsafe { super::inherited_link() } {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tractor zygote: no control pipe on fd {}: {e} (this subcommand is internal)", super::ACTOR_FD);
            return 64;
        }
    };
    match Server::set_up(control) {
        Ok(mut server) => server.serve(),
        Err(e) => {
            eprintln!("tractor zygote: {e}");
            70
        }
    }
}

/// One requester's connection and the child forked for it.
struct Conn {
    sock: StdUnixStream,
    buf: Vec<u8>,
    fds: Vec<OwnedFd>,
    child: Option<libc::pid_t>,
    closed: bool,
}

struct Server {
    control: LinkFds,
    listener: UnixListener,
    sigchld: SignalFd,
    conns: Vec<Conn>,
    /// Children not yet reaped.
    live: HashMap<libc::pid_t, ()>,
    uid: libc::uid_t,
}

impl Server {
    fn set_up(control: LinkFds) -> Result<Server, String> {
        // Tell the zygote from its actors in `ps` (they share its command line).
        set_comm(c"tractor-zygote");
        let (components, addr) = match read_blocking(&control.rx) {
            Ok(ZygoteMsg::Init { components, addr }) => (components, addr),
            Ok(other) => return Err(format!("expected Init, got {other:?}")),
            Err(e) => return Err(format!("cannot read Init: {e}")),
        };
        let engine = crate::component::shared_engine().map_err(|e| format!("{e:#}"))?;
        for c in &components {
            // A component that fails to load is reported by the actor that
            // tries to run it, with the actor's name.
            let _ = crate::actor::preload(&engine, c);
        }
        // Run the one-time set-up every actor's WASI context would do
        // (the random generators probe the CPU with cpuid, a VM exit
        // each), so forked actors inherit it done.
        drop(wasmtime_wasi::WasiCtx::builder().build());
        let listener =
            UnixListener::bind_addr(&SocketAddr::from_abstract_name(addr.as_bytes()).map_err(|e| e.to_string())?)
                .map_err(|e| format!("cannot listen on `{addr}`: {e}"))?;
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let mut mask = SigSet::empty();
        mask.add(Signal::SIGCHLD);
        mask.thread_block().map_err(|e| format!("cannot block SIGCHLD: {e}"))?;
        let sigchld = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(|e| format!("cannot create a signalfd: {e}"))?;
        let threads = std::fs::read_dir("/proc/self/task").map(|d| d.count()).unwrap_or(0);
        if threads != 1 {
            return Err(format!("{threads} threads after set-up; forking would be unsafe"));
        }
        write_blocking(&control.tx, &ZygoteMsg::Listening { pid: std::process::id() }).map_err(|e| e.to_string())?;
        // SAFETY: getuid cannot fail.
        let uid = unsafe { libc::getuid() };
        Ok(Server { control, listener, sigchld, conns: Vec::new(), live: HashMap::new(), uid })
    }

    fn serve(&mut self) -> i32 {
        loop {
            let mut fds: Vec<libc::pollfd> =
                [self.control.rx.as_raw_fd(), self.listener.as_raw_fd(), self.sigchld.as_raw_fd()]
                    .into_iter()
                    .chain(self.conns.iter().map(|c| c.sock.as_raw_fd()))
                    .map(|fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 })
                    .collect();
            // SAFETY: `fds` is a valid array of pollfds of the given length.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
            if n < 0 {
                if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return self.shut_down(71);
            }
            let ready = |i: usize| fds[i].revents != 0;
            if ready(0) {
                // The tree's driver closed the control pipe (or died): the
                // tree is over.
                return self.shut_down(0);
            }
            if ready(1) {
                self.accept();
            }
            if ready(2) {
                while let Ok(Some(_)) = self.sigchld.read_signal() {}
                self.reap();
            }
            for i in 0..self.conns.len() {
                if fds.get(3 + i).is_some_and(|p| p.revents != 0) {
                    self.read_conn(i);
                }
            }
            self.conns.retain(|c| !c.closed);
        }
    }

    fn accept(&mut self) {
        while let Ok((sock, _)) = self.listener.accept() {
            // Only processes of our own user may ask for actors.
            let same_user = nix::sys::socket::getsockopt(&sock, nix::sys::socket::sockopt::PeerCredentials)
                .is_ok_and(|c| c.uid() == self.uid);
            if !same_user || sock.set_nonblocking(true).is_err() {
                continue;
            }
            self.conns.push(Conn { sock, buf: Vec::new(), fds: Vec::new(), child: None, closed: false });
        }
    }

    fn read_conn(&mut self, i: usize) {
        let mut data = [0u8; 4096];
        let mut cmsg = nix::cmsg_space!([RawFd; 2 + MAX_HANDED]);
        let fd = self.conns[i].sock.as_raw_fd();
        let got = {
            let mut iov = [IoSliceMut::new(&mut data)];
            match recvmsg::<UnixAddr>(fd, &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC) {
                Ok(msg) => {
                    let mut fds = Vec::new();
                    if let Ok(cmsgs) = msg.cmsgs() {
                        for c in cmsgs {
                            if let ControlMessageOwned::ScmRights(list) = c {
                                // SAFETY: the kernel just installed these descriptors for us.
                                fds.extend(list.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
                            }
                        }
                    }
                    Some((msg.bytes, fds))
                }
                Err(nix::errno::Errno::EAGAIN) | Err(nix::errno::Errno::EINTR) => return,
                Err(_) => None,
            }
        };
        match got {
            Some((0, _)) | None => {
                // The requester is gone: so must its child be.
                self.drop_conn(i);
                return;
            }
            Some((n, fds)) => {
                let conn = &mut self.conns[i];
                conn.buf.extend_from_slice(&data[..n]);
                conn.fds.extend(fds);
            }
        }
        while let Some(msg) = self.next_frame(i) {
            match msg {
                Ok(ZygoteMsg::Fork { new_group }) => self.fork(i, new_group),
                Ok(ZygoteMsg::Signal { signal }) => {
                    if let Some(pid) = self.conns[i].child.filter(|p| self.live.contains_key(p)) {
                        // SAFETY: plain kill(2) of a child we have not reaped.
                        unsafe { libc::kill(pid, signal) };
                    }
                }
                _ => {
                    self.drop_conn(i);
                    return;
                }
            }
        }
    }

    /// The next complete frame buffered on connection `i`, if any.
    fn next_frame(&mut self, i: usize) -> Option<Result<ZygoteMsg, String>> {
        let conn = &mut self.conns[i];
        if conn.closed || conn.buf.len() < 4 {
            return None;
        }
        let len = u32::from_be_bytes(conn.buf[..4].try_into().expect("4 bytes")) as usize;
        if len > MAX_FRAME {
            return Some(Err("frame too large".into()));
        }
        if conn.buf.len() < 4 + len {
            return None;
        }
        let msg = decode_as::<ZygoteMsg>(&conn.buf[4..4 + len]).map_err(|e| e.to_string());
        conn.buf.drain(..4 + len);
        Some(msg)
    }

    fn drop_conn(&mut self, i: usize) {
        let conn = &mut self.conns[i];
        conn.closed = true;
        if let Some(pid) = conn.child.filter(|p| self.live.contains_key(p)) {
            // SAFETY: plain kill(2) of a child we have not reaped.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }

    fn reply(&mut self, i: usize, msg: &ZygoteMsg) {
        let mut buf = Vec::new();
        if encode_frame(msg, &mut buf).is_ok() {
            // A few bytes into a socket buffer the requester keeps empty (it
            // reads every reply): a requester that stopped reading, so that
            // even this would block, loses the reply rather than stall us.
            let _ = self.conns[i].sock.write_all(&buf);
        }
    }

    fn fork(&mut self, i: usize, new_group: bool) {
        if self.conns[i].child.is_some() {
            return self.reply(i, &ZygoteMsg::Refused { reason: "one actor per connection".into() });
        }
        let mut fds = std::mem::take(&mut self.conns[i].fds);
        if fds.len() < 2 {
            return self.reply(i, &ZygoteMsg::Refused { reason: "the request must carry the two pipe ends".into() });
        }
        let handed = fds.split_off(2);
        let Ok::<[OwnedFd; 2], _>([rx, tx]) = fds.try_into() else { unreachable!("two left") };
        let link = LinkFds { rx, tx };
        // Everything the child must close: ours, and other actors' sockets.
        let mut theirs: Vec<RawFd> = vec![
            self.control.rx.as_raw_fd(),
            self.control.tx.as_raw_fd(),
            self.listener.as_raw_fd(),
            self.sigchld.as_raw_fd(),
        ];
        for c in &self.conns {
            theirs.push(c.sock.as_raw_fd());
            theirs.extend(c.fds.iter().map(|f| f.as_raw_fd()));
        }
        let zygote = std::process::id() as libc::pid_t;
        // SAFETY: the zygote is single-threaded (checked at set-up), so the
        // child may run ordinary code after fork.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            child(zygote, new_group, &theirs, link, handed);
        }
        drop((link, handed));
        if pid < 0 {
            let e = std::io::Error::last_os_error();
            return self.reply(i, &ZygoteMsg::Refused { reason: format!("fork failed: {e}") });
        }
        self.live.insert(pid, ());
        self.conns[i].child = Some(pid);
        self.reply(i, &ZygoteMsg::Forked { pid: pid as u32 });
    }

    /// Reap every child that has ended and tell its requester how.
    fn reap(&mut self) {
        loop {
            let mut status = 0;
            // SAFETY: plain waitpid(2) with a valid status pointer.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid <= 0 {
                return;
            }
            self.live.remove(&pid);
            let (code, signal) = if libc::WIFEXITED(status) {
                (Some(libc::WEXITSTATUS(status)), None)
            } else {
                (None, Some(libc::WTERMSIG(status)))
            };
            if let Some(i) = self.conns.iter().position(|c| c.child == Some(pid) && !c.closed) {
                self.reply(i, &ZygoteMsg::Exited { code, signal });
                self.conns[i].closed = true;
            }
        }
    }

    /// The tree is over: kill and reap whatever is left, then exit.
    fn shut_down(&mut self, code: i32) -> i32 {
        for pid in self.live.keys() {
            // SAFETY: plain kill(2) of children we have not reaped.
            unsafe { libc::kill(*pid, libc::SIGKILL) };
        }
        for pid in std::mem::take(&mut self.live).into_keys() {
            let mut status = 0;
            // SAFETY: plain waitpid(2) with a valid status pointer.
            unsafe { libc::waitpid(pid, &mut status, 0) };
        }
        code
    }
}

/// The forked child: become an actor process on `link`, with `handed` on
/// the descriptors an `exec` actor would find them on. Never returns.
fn child(zygote: libc::pid_t, new_group: bool, theirs: &[RawFd], link: LinkFds, handed: Vec<OwnedFd>) -> ! {
    // SAFETY: plain syscalls in a single-threaded child.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        // The zygote may have died before the prctl took effect.
        if libc::getppid() != zygote {
            libc::_exit(1);
        }
        if new_group {
            libc::setpgid(0, 0);
        }
        set_comm(c"tractor-host");
        for fd in theirs {
            libc::close(*fd);
        }
    }
    let _ = SigSet::all().thread_unblock();
    let n = handed.len() as RawFd;
    // SAFETY: single-threaded, just forked, before the actor runs.
    let link = match unsafe { super::handed::place(handed, super::FIRST_HANDED_FD, vec![link.rx, link.tx]) } {
        Ok(mut kept) => LinkFds { tx: kept.pop().expect("two kept"), rx: kept.pop().expect("two kept") },
        // SAFETY: plain _exit.
        Err(_) => unsafe { libc::_exit(71) },
    };
    let handed = super::Handed::Numbered((0..n).map(|i| super::FIRST_HANDED_FD + i).collect());
    let code = crate::actor::run_blocking(link, handed);
    std::process::exit(code)
}

/// Set this process's name (`/proc/self/comm`, what `ps` and `pgrep` show).
fn set_comm(name: &std::ffi::CStr) {
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
    unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr()) };
}

/// Read one frame from a blocking pipe.
fn read_blocking(fd: &OwnedFd) -> std::io::Result<ZygoteMsg> {
    let mut sock = std::fs::File::from(fd.try_clone()?);
    let mut head = [0u8; 4];
    sock.read_exact(&mut head)?;
    let len = u32::from_be_bytes(head) as usize;
    if len > MAX_FRAME {
        return Err(std::io::Error::other("frame too large"));
    }
    let mut body = vec![0u8; len];
    sock.read_exact(&mut body)?;
    decode_as(&body).map_err(std::io::Error::other)
}

/// Write one frame to a blocking pipe.
fn write_blocking(fd: &OwnedFd, msg: &ZygoteMsg) -> std::io::Result<()> {
    let mut buf = Vec::new();
    encode_frame(msg, &mut buf).map_err(std::io::Error::other)?;
    let mut sock = std::fs::File::from(fd.try_clone()?);
    sock.write_all(&buf)
}
