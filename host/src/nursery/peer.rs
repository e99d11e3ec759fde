//! The finder's side of a peer link: connecting to an actor the registrar
//! named, and routing its answers. A peer is a [`ChildActor`] that is not
//! ours: calls and contexts work as on a child; it cannot be cancelled
//! from here, and its death fails only the calls made to it.

use super::child::{settle, ChildActor, ChildState};
use super::info::ActorInfo;
use super::scope::ActorScope;
use crate::error::{ErrorKind, RemoteError};
use crate::spawn::{Backend, Killer, LinkFds};
use crate::wire::{self, ContextOutcome, Entry, Msg, PeerMsg};
use std::os::fd::AsRawFd;
use std::os::linux::net::SocketAddrExt as _;
use std::os::unix::net::{SocketAddr, UnixStream};
use std::sync::{Arc, Mutex, Weak};
use tokio::sync::{mpsc, watch};

impl ActorScope {
    /// A portal's target for `entry`: the link this actor already has to
    /// it, or a new one.
    pub(super) async fn peer(self: &Arc<Self>, entry: &Entry) -> Result<Arc<ChildActor>, RemoteError> {
        if let Some(p) = self.peers.lock().unwrap().get(&entry.uid).and_then(Weak::upgrade) {
            if p.state.lock().unwrap().gone.is_none() {
                return Ok(p);
            }
        }
        let gone = |why: String| {
            RemoteError::new(ErrorKind::ActorGone, format!("actor '{}' is no longer running ({why})", entry.name))
                .with_actor(&entry.name, &entry.uid)
        };
        let link = connect(entry, &self.me).await.map_err(|e| gone(e.to_string()))?;
        let (tx, rx) = mpsc::unbounded_channel();
        let peer = Arc::new(ChildActor {
            info: ActorInfo {
                name: entry.name.clone(),
                uid: entry.uid.clone(),
                pid: entry.pid,
                depth: entry.depth,
                component: entry.component.clone(),
            },
            run_once: false,
            peer: true,
            tx,
            state: Mutex::new(ChildState::default()),
            result: watch::channel(None).0,
            exited: watch::channel(false).0,
            ready: watch::channel(true).0,
            grace: self.tree.grace,
            killer: Killer::none(),
            backend: entry.backend.parse().unwrap_or(Backend::Exec),
            since: std::time::Instant::now(),
        });
        let link = link.into_async().map_err(|e| gone(e.to_string()))?;
        tokio::spawn(wire::pump(link.tx, rx));
        tokio::spawn(serve_peer(Arc::downgrade(&peer), link.rx, self.me.name.clone()));
        let mut peers = self.peers.lock().unwrap();
        peers.retain(|_, w| w.strong_count() > 0);
        peers.insert(entry.uid.clone(), Arc::downgrade(&peer));
        Ok(peer)
    }
}

/// Connect to `entry`'s peer listener and hand it its side of a new pipe
/// pair; our side, once it accepted.
async fn connect(entry: &Entry, me: &ActorInfo) -> std::io::Result<LinkFds> {
    let conn = UnixStream::connect_addr(&SocketAddr::from_abstract_name(entry.peer_addr.as_bytes())?)?;
    let (ours, theirs) = LinkFds::pair()?;
    let hello = PeerMsg::Hello { from_name: me.name.clone(), from_uid: me.uid.clone(), token: entry.token.clone() };
    let mut frame = Vec::new();
    crate::framing::encode_frame(&hello, &mut frame).map_err(std::io::Error::other)?;
    let fds = [theirs.rx.as_raw_fd(), theirs.tx.as_raw_fd()];
    crate::spawn::forkserver::send_with_fds(&conn, &frame, &fds)?;
    drop(theirs);
    conn.set_nonblocking(true)?;
    let mut conn = tokio::net::UnixStream::from_std(conn)?;
    match crate::framing::read_frame::<PeerMsg, _>(&mut conn).await {
        Ok(PeerMsg::Ready { .. }) => Ok(ours),
        Ok(PeerMsg::Refused { reason }) => Err(std::io::Error::other(format!("it refused the link: {reason}"))),
        Ok(other) => Err(std::io::Error::other(format!("unexpected {other:?}"))),
        Err(e) => Err(std::io::Error::other(format!("the link broke during its handshake: {e}"))),
    }
}

/// Route a peer's frames until its link closes, then fail whatever still
/// waits on it: with its `PeerClosing` reason if it said goodbye, else as
/// a death.
async fn serve_peer(peer: Weak<ChildActor>, read: tokio::net::unix::pipe::Receiver, me: String) {
    let mut read = tokio::io::BufReader::with_capacity(64 * 1024, wire::frame::Spinning::new(read));
    let mut closing: Option<RemoteError> = None;
    let broken = loop {
        let msg = match wire::read_msg(&mut read).await {
            Ok(m) => m,
            Err(wire::FrameError::Closed) => break None,
            Err(e) => break Some(e.to_string()),
        };
        let Some(p) = peer.upgrade() else { return };
        match msg {
            Msg::Return { id, value } => settle(&p, id, Ok(value)),
            Msg::CallFailed { id, error } => settle(&p, id, Err(error)),
            Msg::PeerClosing { reason } => closing = Some(reason),
            msg @ (Msg::Started { .. }
            | Msg::ContextDone { .. }
            | Msg::Stream { .. }
            | Msg::Credit { .. }
            | Msg::StreamEnd { .. }) => {
                if let Err(why) = p.route_context(msg) {
                    break Some(why);
                }
            }
            other => break Some(format!("unexpected message {}", other.name())),
        }
    };
    let Some(p) = peer.upgrade() else { return };
    let name = &p.info.name;
    let death = match (closing, broken) {
        (_, Some(why)) => p.err(ErrorKind::Protocol, format!("protocol error from peer '{name}': {why}")),
        (Some(reason), None) => p.err(ErrorKind::ActorGone, format!("actor '{name}' has exited: {}", reason.message)),
        (None, None) => p.err(
            ErrorKind::ActorDied,
            format!("actor '{name}' died while serving '{me}' (its peer link closed without PeerClosing)"),
        ),
    };
    let (pending, contexts) = {
        let mut st = p.state.lock().unwrap();
        // Later calls fail at once, as into any actor that has gone.
        st.gone = Some(if death.kind == ErrorKind::ActorDied {
            p.err(ErrorKind::ActorGone, format!("actor '{name}' is gone: {}", death.message))
        } else {
            death.clone()
        });
        (st.pending.drain().collect::<Vec<_>>(), st.contexts.drain().map(|(_, c)| c).collect::<Vec<_>>())
    };
    // After a goodbye, whatever is still pending never reached it (it
    // answered everything it had received): gone, like later calls.
    let for_pending = death.clone();
    for (_, tx) in pending {
        let _ = tx.send(Err(for_pending.clone()));
    }
    for c in contexts {
        c.finish(ContextOutcome::Failed(for_pending.clone()));
    }
    p.exited.send_replace(true);
}
