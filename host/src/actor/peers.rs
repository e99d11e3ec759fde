//! The found actor's side of peer links: a listener on an abstract unix
//! socket (nothing left on disk, whatever kills us), gated by the uid of
//! the connecting process, the token only the registrar hands out, and a
//! limit; then the finder's two pipes, served like the parent link.
//!
//! Peer frames share the actor's call book and context table: their ids
//! are moved into a namespace of their own (`PEER_BIT | link << 40 | id`)
//! on the way in and back on the way out, so calls from the parent and
//! from every peer are served side by side, in arrival order.

use super::Actor;
use crate::error::RemoteError;
use crate::wire::{self, Msg, PeerMsg};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, UnixAddr};
use std::collections::HashMap;
use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::linux::net::SocketAddrExt as _;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// Set in the id of every call and context that came over a peer link.
pub(super) const PEER_BIT: u64 = 1 << 63;
const LINK_SHIFT: u32 = 40;
const ID_MASK: u64 = (1 << LINK_SHIFT) - 1;

/// How many peer links an actor serves at once.
pub const MAX_PEERS: usize = 64;

/// How long a connection may take to say hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);

/// The peer links of one actor.
#[derive(Default)]
pub struct PeerLinks {
    links: Mutex<HashMap<u32, Link>>,
    next: AtomicU32,
    /// Set once the actor said goodbye: no new link is accepted.
    closed: AtomicBool,
    /// The links' readers, which hold the actor: stopped when it exits, so
    /// that a finder keeping its link open cannot keep the actor alive.
    readers: Mutex<Vec<tokio::task::AbortHandle>>,
}

struct Link {
    tx: mpsc::UnboundedSender<Msg>,
}

/// Who sent a frame: the parent, or peer link `link` (its finder's name).
#[derive(Clone)]
pub(super) enum From {
    Parent,
    Peer { link: u32, name: String },
}

impl From {
    /// The id a frame of ours carries for `id` of theirs.
    pub(super) fn local(&self, id: u64) -> u64 {
        match self {
            From::Parent => id,
            From::Peer { link, .. } => PEER_BIT | (u64::from(*link) << LINK_SHIFT) | id,
        }
    }

    /// Who is on the other side, for errors.
    pub(super) fn name(&self) -> &str {
        match self {
            From::Parent => "the caller",
            From::Peer { name, .. } => name,
        }
    }
}

/// The id of a frame that answers (or streams on) a call or context.
fn id_of(msg: &mut Msg) -> Option<&mut u64> {
    match msg {
        Msg::Return { id, .. } | Msg::CallFailed { id, .. } => Some(id),
        Msg::Started { cid, .. }
        | Msg::ContextDone { cid, .. }
        | Msg::Stream { cid, .. }
        | Msg::Credit { cid, .. }
        | Msg::StreamEnd { cid } => Some(cid),
        _ => None,
    }
}

impl PeerLinks {
    /// How many peer links are open.
    pub fn count(&self) -> usize {
        self.links.lock().unwrap().len()
    }

    /// For the actor's writer: keep a frame meant for a peer (sending it
    /// down that link with its own id); pass the parent's through.
    pub fn divert(&self, mut msg: Msg) -> Option<Msg> {
        if let Msg::PeerClosing { .. } = msg {
            // The actor's last word to every peer, after every answer.
            self.closed.store(true, Ordering::SeqCst);
            for (_, link) in self.links.lock().unwrap().drain() {
                let _ = link.tx.send(msg.clone());
            }
            return None;
        }
        let Some(id) = id_of(&mut msg) else { return Some(msg) };
        if *id & PEER_BIT == 0 {
            return Some(msg);
        }
        let link = ((*id & !PEER_BIT) >> LINK_SHIFT) as u32;
        *id &= ID_MASK;
        if let Some(l) = self.links.lock().unwrap().get(&link) {
            let _ = l.tx.send(msg);
        }
        None
    }
}

/// Listen on `addr` and serve peer links for `actor` until the task is
/// aborted. Binding happens before this returns, so that the actor is
/// reachable by the time it reports ready.
pub(super) fn listen(actor: &Arc<Actor>, addr: &str, token: String) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let listener = std::os::unix::net::UnixListener::bind_addr(&std::os::unix::net::SocketAddr::from_abstract_name(
        addr.as_bytes(),
    )?)?;
    listener.set_nonblocking(true)?;
    let listener = tokio::net::UnixListener::from_std(listener)?;
    let actor = actor.clone();
    let token = Arc::new(token);
    Ok(tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            // Only processes of our own user; anyone else is dropped unheard.
            if !crate::discovery::same_user(&sock) {
                tracing::warn!(actor = %actor.scope.me.name, "refused a peer connection from another user");
                continue;
            }
            let (actor, token) = (actor.clone(), token.clone());
            tokio::spawn(async move {
                if let Ok(Err(why)) = tokio::time::timeout(HELLO_TIMEOUT, accept(&actor, sock, &token)).await {
                    tracing::warn!(actor = %actor.scope.me.name, "refused a peer link: {why}");
                }
            });
        }
    }))
}

/// Read a connection's `Hello`, check it, and if it passes, serve the two
/// pipes it brought.
async fn accept(actor: &Arc<Actor>, sock: tokio::net::UnixStream, token: &str) -> Result<(), String> {
    let (hello, mut fds) = read_hello(&sock).await?;
    let PeerMsg::Hello { from_name, from_uid, token: theirs } = hello else {
        return Err("the first frame was not a Hello".into());
    };
    let refusal = admit(actor, token, &theirs, fds.len());
    if let Some(reason) = refusal {
        let mut buf = Vec::new();
        if crate::framing::encode_frame(&PeerMsg::Refused { reason: reason.clone() }, &mut buf).is_ok() {
            let _ = write_all(&sock, &buf).await;
        }
        return Err(format!("'{from_name}' ({from_uid}): {reason}"));
    }
    let links = &actor.peers;
    {
        let mut l = links.links.lock().unwrap();
        let n = links.next.fetch_add(1, Ordering::Relaxed) % (1 << 23);
        let (tx, rx) = mpsc::unbounded_channel();
        let write = fds.pop().expect("two");
        let read = fds.pop().expect("two");
        let link = crate::spawn::LinkFds { rx: read, tx: write }.into_async().map_err(|e| e.to_string())?;
        tokio::spawn(wire::pump(link.tx, rx));
        l.insert(n, Link { tx });
        let reader = tokio::spawn(serve_link(actor.clone(), link.rx, From::Peer { link: n, name: from_name.clone() }));
        let mut readers = links.readers.lock().unwrap();
        readers.retain(|r| !r.is_finished());
        readers.push(reader.abort_handle());
    }
    let mut buf = Vec::new();
    crate::framing::encode_frame(&PeerMsg::Ready { pid: std::process::id() }, &mut buf).map_err(|e| e.to_string())?;
    write_all(&sock, &buf).await.map_err(|e| e.to_string())
}

/// Why a `Hello` is refused, if it is.
fn admit(actor: &Actor, token: &str, theirs: &str, fds: usize) -> Option<String> {
    if !crate::discovery::same_token(token, theirs) {
        return Some("wrong token".into());
    }
    if fds != 2 {
        return Some(format!("a Hello brings 2 descriptors, not {fds}"));
    }
    if actor.peers.closed.load(Ordering::SeqCst) {
        return Some("the actor is exiting".into());
    }
    if actor.peers.links.lock().unwrap().len() >= MAX_PEERS {
        return Some(format!("it already serves {MAX_PEERS} peer links"));
    }
    None
}

/// Serve one peer link until it closes or breaks the protocol; then its
/// calls and contexts are cancelled (the finder is gone) and the actor
/// serves on.
async fn serve_link(actor: Arc<Actor>, read: tokio::net::unix::pipe::Receiver, from: From) {
    let mut read = tokio::io::BufReader::with_capacity(64 * 1024, wire::frame::Spinning::new(read));
    let From::Peer { link, name } = from.clone() else { return };
    loop {
        let msg = match wire::read_msg(&mut read).await {
            Ok(m) => m,
            Err(wire::FrameError::Closed) => break,
            Err(e) => {
                tracing::warn!(actor = %actor.scope.me.name, "peer '{name}' broke the protocol: {e}");
                break;
            }
        };
        if let Err(why) = super::frames::on_frame(&actor, msg, &from) {
            // Only this link goes: the actor and its other links are fine.
            tracing::warn!(actor = %actor.scope.me.name, "peer '{name}' broke the protocol: {why}; dropping its link");
            break;
        }
    }
    actor.peers.links.lock().unwrap().remove(&link);
    let prefix = From::Peer { link, name: name.clone() }.local(0);
    let mine = |id: u64| id & !ID_MASK == prefix;
    actor.calls.cancel_where(mine, &name);
    let contexts: Vec<_> =
        actor.contexts.lock().unwrap().iter().filter(|(id, _)| mine(**id)).map(|(_, c)| c.clone()).collect();
    for c in contexts {
        c.cancel_by(&name, None);
    }
}

/// Reject ids a peer cannot use (they would leave its namespace).
pub(super) fn check_id(id: u64, from: &From) -> Result<(), String> {
    if matches!(from, From::Peer { .. }) && id > ID_MASK {
        return Err(format!("id {id} is out of range for a peer link (at most {ID_MASK})"));
    }
    Ok(())
}

async fn read_hello(sock: &tokio::net::UnixStream) -> Result<(PeerMsg, Vec<OwnedFd>), String> {
    let mut got = Vec::new();
    let mut fds = Vec::new();
    loop {
        if got.len() >= 4 {
            let len = u32::from_be_bytes(got[..4].try_into().expect("4 bytes")) as usize;
            if len > 64 * 1024 {
                return Err(format!("a Hello of {len} bytes"));
            }
            if got.len() >= 4 + len {
                let msg = crate::framing::decode_as::<PeerMsg>(&got[4..4 + len]).map_err(|e| e.to_string())?;
                return Ok((msg, fds));
            }
        }
        let mut data = [0u8; 4096];
        let received = sock
            .async_io(tokio::io::Interest::READABLE, || {
                let mut cmsg = nix::cmsg_space!([RawFd; 2]);
                let mut iov = [IoSliceMut::new(&mut data)];
                let msg = recvmsg::<UnixAddr>(sock.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC)
                    .map_err(std::io::Error::from)?;
                let mut fds = Vec::new();
                if let Ok(cmsgs) = msg.cmsgs() {
                    for c in cmsgs {
                        if let ControlMessageOwned::ScmRights(list) = c {
                            // SAFETY: the kernel just installed these descriptors for us.
                            fds.extend(list.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
                        }
                    }
                }
                Ok((msg.bytes, fds))
            })
            .await;
        match received {
            Ok((0, _)) => return Err("closed before its Hello".into()),
            Ok((n, more)) => {
                fds.extend(more);
                got.extend_from_slice(&data[..n]);
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

async fn write_all(sock: &tokio::net::UnixStream, mut buf: &[u8]) -> std::io::Result<()> {
    while !buf.is_empty() {
        sock.writable().await?;
        match sock.try_write(buf) {
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

impl PeerLinks {
    /// The actor is exiting: refuse new links, stop reading the open ones,
    /// and queue `PeerClosing` (it goes out after every answer already
    /// queued, then each link closes).
    pub(super) fn goodbye(&self, out: &mpsc::UnboundedSender<Msg>, reason: RemoteError) {
        self.closed.store(true, Ordering::SeqCst);
        for r in self.readers.lock().unwrap().drain(..) {
            r.abort();
        }
        let _ = out.send(Msg::PeerClosing { reason });
    }
}
