//! The tree's zygote: the forkserver's server side, run by `tractor-host
//! __zygote` (see `spawn::forkserver` for the design and the client).
//!
//! It is actor-process code: it sets up the engine and links every
//! component of the tree before it forks, so that each forked actor starts
//! warm; it serves without any async runtime (a `poll` loop), so that it
//! stays single-threaded and forking stays safe.

use crate::spawn::forkserver::ZygoteMsg;
use crate::spawn::{Handed, LinkFds, ACTOR_FD, FIRST_HANDED_FD, MAX_HANDED};
use crate::wire::frame::{decode_as, encode_frame};
use crate::wire::{ComponentEntry, MAX_FRAME};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, UnixAddr};
use std::collections::HashMap;
use std::io::{IoSliceMut, Read as _, Write as _};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::linux::net::SocketAddrExt as _;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream as StdUnixStream};

/// Entry point of the zygote process; returns its exit code.
pub fn main() -> i32 {
    // SAFETY: called once, first thing in the zygote process.
    let control = match unsafe { crate::spawn::inherited_link() } {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tractor zygote: no control pipe on fd {}: {e} (this subcommand is internal)", ACTOR_FD);
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
            Ok(ZygoteMsg::Init { components, addr }) => {
                let components: Vec<ComponentEntry> =
                    components.deserialized().map_err(|e| format!("bad components in Init: {e}"))?;
                (components, addr)
            }
            Ok(other) => return Err(format!("expected Init, got {other:?}")),
            Err(e) => return Err(format!("cannot read Init: {e}")),
        };
        for c in &components {
            // A component that fails to load is reported by the actor that
            // tries to run it, with the actor's name.
            let _ = super::preload(c);
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
    let link = match unsafe { crate::spawn::place_handed(handed, FIRST_HANDED_FD, vec![link.rx, link.tx]) } {
        Ok(mut kept) => LinkFds { tx: kept.pop().expect("two kept"), rx: kept.pop().expect("two kept") },
        // SAFETY: plain _exit.
        Err(_) => unsafe { libc::_exit(71) },
    };
    let handed = Handed::Numbered((0..n).map(|i| FIRST_HANDED_FD + i).collect());
    let code = super::run_blocking(link, handed);
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
