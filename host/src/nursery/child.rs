//! One child actor as its parent sees it: routing its frames, its calls
//! and contexts in flight, the cancellation ladder, and settling
//! everything once its process has ended.

use super::info::{ActorInfo, CallResult};
use crate::context::{CallerContext, StreamCore};
use crate::error::{ErrorKind, RemoteError};
use crate::spawn::{Backend, Killer, Process};
use crate::wire::{self, CallRequest, ContextOutcome, Msg, TreeReq};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

/// How long a child sent SIGTERM gets before SIGKILL.
pub(super) const TERM_GRACE: Duration = Duration::from_millis(500);

#[derive(Default)]
pub(super) struct ChildState {
    pub(super) pending: HashMap<u64, oneshot::Sender<CallResult>>,
    /// Open contexts into this child, by context id.
    pub(super) contexts: HashMap<u64, Arc<CallerContext>>,
    pub(super) next_id: u64,
    pub(super) cancelled_by: Option<String>,
    pub(super) gone: Option<RemoteError>,
    /// The signal we had to send after the grace period, if any.
    pub(super) forced: Option<&'static str>,
    /// Status requests sent to it and not yet answered, by id.
    pub(super) statuses: HashMap<u64, oneshot::Sender<Vec<crate::wire::ActorStatus>>>,
}

/// One child actor process, as seen by its parent.
pub struct ChildActor {
    pub(super) info: ActorInfo,
    pub(super) run_once: bool,
    /// Found through discovery rather than spawned: not ours to cancel.
    pub(super) peer: bool,
    pub(super) tx: mpsc::UnboundedSender<Msg>,
    pub(super) state: Mutex<ChildState>,
    pub(super) result: watch::Sender<Option<CallResult>>,
    pub(super) exited: watch::Sender<bool>,
    /// Set once it reported `Ready` (its component loaded and instantiated).
    pub(super) ready: watch::Sender<bool>,
    pub(super) grace: Duration,
    pub(super) killer: Killer,
    pub(super) backend: Backend,
    /// When it was spawned (or, for a peer, found).
    pub(super) since: std::time::Instant,
}

impl std::fmt::Debug for ChildActor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildActor").field("info", &self.info).finish()
    }
}

/// How a child is known to the tree's registrar: registered (if at all)
/// when it reports ready, unregistered once reaped.
pub(super) struct Registration {
    pub(super) bus: Arc<crate::discovery::TreeBus>,
    /// Its entry (one not discoverable is registered too, hidden, so that
    /// its own lookups can be checked against its grants).
    pub(super) entry: crate::wire::Entry,
    /// For an actor on another host: which, and how long its link may be
    /// silent before it counts as lost.
    pub(super) remote: Option<(String, Duration)>,
}

/// Called once when a child has ended, with its final outcome.
pub(super) type OnEnd = Box<dyn FnOnce(&Arc<ChildActor>, &CallResult) + Send>;

/// Id of the single call a `run-in-actor` child makes.
pub(super) const RUN_ONCE_ID: u64 = 0;

impl ChildActor {
    /// Its identity.
    pub fn info(&self) -> &ActorInfo {
        &self.info
    }

    /// The backend that started it.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// True once its process has exited and been reaped.
    pub fn has_exited(&self) -> bool {
        *self.exited.borrow()
    }

    pub(super) fn err(&self, kind: ErrorKind, msg: impl Into<String>) -> RemoteError {
        RemoteError::new(kind, msg).with_actor(&self.info.name, &self.info.uid)
    }

    /// Calls and contexts fail at once into an actor that has exited (saying
    /// how it ended) or that is being cancelled.
    pub(super) fn usable(&self, st: &ChildState) -> Result<(), RemoteError> {
        if let Some(gone) = &st.gone {
            return Err(gone.clone());
        }
        if let Some(by) = &st.cancelled_by {
            return Err(self.err(
                ErrorKind::ActorGone,
                format!("actor '{}' was cancelled by '{by}'; it takes no more calls", self.info.name),
            ));
        }
        Ok(())
    }

    /// Send a call; the receiver yields its outcome.
    pub(super) fn call(
        &self,
        func: &str,
        args: ciborium::Value,
    ) -> Result<(u64, oneshot::Receiver<CallResult>), RemoteError> {
        let mut st = self.state.lock().unwrap();
        self.usable(&st)?;
        st.next_id += 1;
        let id = st.next_id;
        let (tx, rx) = oneshot::channel();
        st.pending.insert(id, tx);
        drop(st);
        let req = CallRequest { id, func: func.to_string(), args };
        if self.tx.send(Msg::Call(req)).is_err() {
            self.state.lock().unwrap().pending.remove(&id);
            return Err(self.err(ErrorKind::ActorGone, format!("actor '{}' has exited", self.info.name)));
        }
        Ok((id, rx))
    }

    /// Cancel call `id` in the child (it may be queued or running) and fail
    /// its waiter at once.
    pub(super) fn cancel_call(&self, id: u64, by: &str) {
        let waiter = self.state.lock().unwrap().pending.remove(&id);
        if let Some(tx) = waiter {
            let _ = tx
                .send(Err(RemoteError::cancelled(format!("call cancelled by '{by}'"))
                    .with_actor(&self.info.name, &self.info.uid)));
            if !self.has_exited() {
                let _ = self.tx.send(Msg::CancelCall { id, by: by.to_string() });
            }
        }
    }

    /// Route a context frame from the child (`Err`: a protocol error).
    pub(super) fn route_context(&self, msg: Msg) -> Result<(), String> {
        let cid = match &msg {
            Msg::Started { cid, .. }
            | Msg::ContextDone { cid, .. }
            | Msg::Stream { cid, .. }
            | Msg::Credit { cid, .. }
            | Msg::StreamEnd { cid } => *cid,
            _ => return Ok(()),
        };
        let mut st = self.state.lock().unwrap();
        let Some(c) = st.contexts.get(&cid).cloned() else {
            return Ok(()); // a late frame for a context we already gave up on
        };
        if matches!(msg, Msg::ContextDone { .. }) {
            st.contexts.remove(&cid);
        }
        drop(st);
        c.on_frame(msg)
    }

    /// Send an `OpenContext` and register its state.
    pub(super) fn open_context(
        &self,
        func: &str,
        args: ciborium::Value,
        me: (&str, &str),
    ) -> Result<(u64, Arc<CallerContext>), RemoteError> {
        let mut st = self.state.lock().unwrap();
        self.usable(&st)?;
        st.next_id += 1;
        let cid = st.next_id;
        let ctx = CallerContext::new(StreamCore::new(cid, self.tx.clone(), &self.info.name, me));
        st.contexts.insert(cid, ctx.clone());
        drop(st);
        let req = CallRequest { id: cid, func: func.to_string(), args };
        if self.tx.send(Msg::OpenContext(req)).is_err() {
            self.state.lock().unwrap().contexts.remove(&cid);
            return Err(self.err(ErrorKind::ActorGone, format!("actor '{}' has exited", self.info.name)));
        }
        Ok((cid, ctx))
    }

    /// Cancel the child and wait until its process has exited, killing it
    /// after the grace period. Idempotent.
    pub async fn cancel(&self, by: &str) {
        let first = {
            let mut st = self.state.lock().unwrap();
            let first = st.cancelled_by.is_none();
            if first {
                st.cancelled_by = Some(by.to_string());
            }
            first
        };
        if first && !self.has_exited() {
            let _ = self.tx.send(Msg::Cancel { by: by.to_string() });
        }
        let mut exited = self.exited.subscribe();
        // The ladder: a grace period to tear down, then SIGTERM, then SIGKILL.
        for (wait, signal, name) in [(self.grace, libc::SIGTERM, "SIGTERM"), (TERM_GRACE, libc::SIGKILL, "SIGKILL")] {
            if tokio::time::timeout(wait, exited.wait_for(|e| *e)).await.is_ok() {
                return;
            }
            self.force(signal, name);
        }
        let _ = exited.wait_for(|e| *e).await;
    }

    /// Send `signal` to a child that ignored its cancellation, and say so.
    pub(super) fn force(&self, signal: libc::c_int, name: &'static str) {
        if self.has_exited() {
            return;
        }
        tracing::warn!(
            "actor '{}' (pid {}, {}) did not exit within {:?} of being cancelled: sending {name}",
            self.info.name,
            self.info.pid,
            self.backend,
            self.grace
        );
        self.state.lock().unwrap().forced = Some(name);
        self.killer.signal(signal);
    }

    /// Wait for the outcome of a `run-in-actor` child.
    pub(super) async fn outcome(&self) -> CallResult {
        let mut rx = self.result.subscribe();
        let v = rx.wait_for(|r| r.is_some()).await;
        match v {
            Ok(r) => r.clone().expect("checked is_some"),
            Err(_) => Err(self.err(ErrorKind::Internal, "result channel closed")),
        }
    }

    /// Wait until the process has exited.
    pub async fn wait_exited(&self) {
        let mut rx = self.exited.subscribe();
        let _ = rx.wait_for(|e| *e).await;
    }

    /// Wait until it has reported ready (its component loaded and
    /// instantiated) or has exited, whichever is first; true if ready.
    pub async fn wait_ready(&self) -> bool {
        let (mut ready, mut exited) = (self.ready.subscribe(), self.exited.subscribe());
        tokio::select! {
            r = ready.wait_for(|r| *r) => r.is_ok(),
            _ = exited.wait_for(|e| *e) => *self.ready.borrow(),
        }
    }
}

/// Route the child's messages until its pipe closes, then reap it and
/// settle everything still waiting on it.
pub(super) async fn supervise(
    child: Arc<ChildActor>,
    read: tokio::net::unix::pipe::Receiver,
    writer: tokio::task::JoinHandle<()>,
    mut proc: Process,
    on_end: OnEnd,
    registration: Registration,
) {
    let Registration { bus, entry, remote } = registration;
    let mut registered = false;
    let mut failure: Option<RemoteError> = None;
    // How a remote actor ended, as its relay reported it.
    let mut remote_exit: Option<crate::spawn::Exit> = None;
    let mut read = tokio::io::BufReader::with_capacity(64 * 1024, wire::frame::Spinning::new(read));
    loop {
        let next = match &remote {
            None => wire::read_msg(&mut read).await,
            Some((host, dead_after)) => match tokio::time::timeout(*dead_after, wire::read_msg(&mut read)).await {
                Ok(next) => next,
                Err(_) => {
                    failure.get_or_insert(child.err(
                        ErrorKind::ActorDied,
                        format!(
                            "lost contact with actor '{}' on host '{host}' (no frame for {dead_after:?}: a network \
                             partition or the host is down)",
                            child.info.name
                        ),
                    ));
                    child.killer.cut();
                    break;
                }
            },
        };
        match next {
            Ok(Msg::Heartbeat) if remote.is_some() => {}
            Ok(Msg::Exited { code, signal }) if remote.is_some() => {
                remote_exit = Some(match (code, signal) {
                    (Some(c), _) => crate::spawn::Exit::Code(c),
                    (None, Some(s)) => crate::spawn::Exit::Signal(s),
                    (None, None) => crate::spawn::Exit::Lost("its relay could not tell how it ended".into()),
                });
            }
            Ok(Msg::Output { data }) if remote.is_some() => {
                use std::io::Write as _;
                let _ = std::io::stdout().lock().write_all(&data);
            }
            Ok(Msg::Ready { .. }) => {
                // The spawner registers its child, once it can be called
                // (before anyone hears it is ready).
                if !registered {
                    registered = true;
                    bus.tell(TreeReq::Register(Box::new(entry.clone())));
                }
                child.ready.send_replace(true);
            }
            Ok(Msg::TreeRequest { id, req }) => {
                bus.forward(&child.info.uid, id, req, child.tx.clone());
            }
            Ok(Msg::TreeCancel { id }) => bus.withdraw(&child.info.uid, id),
            Ok(Msg::StatusReport { id, actors }) => child.status_reported(id, actors),
            Ok(Msg::Return { id, value }) => settle(&child, id, Ok(value)),
            Ok(Msg::CallFailed { id, error }) => settle(&child, id, Err(error)),
            Ok(Msg::Failed { error }) => {
                failure.get_or_insert(error);
            }
            Ok(
                msg @ (Msg::Started { .. }
                | Msg::ContextDone { .. }
                | Msg::Stream { .. }
                | Msg::Credit { .. }
                | Msg::StreamEnd { .. }),
            ) => {
                if let Err(why) = child.route_context(msg) {
                    failure.get_or_insert(
                        child.err(
                            ErrorKind::Protocol,
                            format!("protocol error from actor '{}': {why}", child.info.name),
                        ),
                    );
                    proc.killer().signal(libc::SIGKILL);
                    break;
                }
            }
            Ok(other) => {
                failure.get_or_insert(child.err(
                    ErrorKind::Protocol,
                    format!("protocol error from actor '{}': unexpected message {}", child.info.name, other.name()),
                ));
                proc.killer().signal(libc::SIGKILL);
                break;
            }
            Err(wire::FrameError::Closed) => break,
            Err(e) => {
                failure.get_or_insert(
                    child.err(ErrorKind::Protocol, format!("protocol error from actor '{}': {e}", child.info.name)),
                );
                proc.killer().signal(libc::SIGKILL);
                break;
            }
        }
    }
    // Nobody will answer these now.
    child.state.lock().unwrap().statuses.clear();
    let status = proc.wait().await;
    // ssh's own status cannot tell a dead relay from a dead connection
    // (255 for both), so a remote link that ended without `Exited` says so.
    let status = match (remote_exit, &remote) {
        (Some(exit), _) => exit,
        (None, Some(_)) if failure.is_none() => crate::spawn::Exit::Lost(format!(
            "its link ended without word from its relay (ssh {status}): the relay, the ssh client or the \
             connection died"
        )),
        (None, _) => status,
    };
    // Reaped: it and its subtree leave the registry, and what it waited
    // for is withdrawn.
    bus.child_gone(&child.info.uid);
    if registered {
        bus.tell(TreeReq::Unregister { uid: child.info.uid.clone() });
    }
    // Close the child's pidfd and both ends of its link before anyone hears
    // the child is gone, so a nursery that has finished waiting holds no
    // descriptor for it.
    drop(proc);
    drop(read);
    writer.abort();
    let _ = writer.await;
    let (cancelled_by, forced) = {
        let st = child.state.lock().unwrap();
        (st.cancelled_by.clone(), st.forced)
    };
    let death = match (&cancelled_by, &status) {
        (Some(by), _) => {
            let how = forced.map_or(String::new(), |sig| {
                format!(" and killed with {sig} after the {:?} grace period", child.grace)
            });
            RemoteError::cancelled(format!("actor '{}' was cancelled by '{by}'{how}", child.info.name))
                .with_actor(&child.info.name, &child.info.uid)
        }
        (None, s) if s.success() => {
            child.err(ErrorKind::ActorDied, format!("actor '{}' exited without reporting a result", child.info.name))
        }
        (None, s) => {
            let on = remote.as_ref().map_or(String::new(), |(h, _)| format!(" on host '{h}'"));
            child.err(ErrorKind::ActorDied, format!("actor '{}'{on} died: {s}", child.info.name))
        }
    };
    let clean_exit = failure.is_none() && status.success();
    // An actor-level failure report beats the generic death message, even
    // from a child we were cancelling: it failed before it could comply.
    let death = failure.unwrap_or(death);
    let pending: Vec<_> = {
        let mut st = child.state.lock().unwrap();
        st.gone = Some(if death.is_cancelled() {
            child.err(ErrorKind::ActorGone, format!("actor '{}' has exited: {}", child.info.name, death.message))
        } else {
            death.clone()
        });
        st.pending.drain().collect()
    };
    for (_, tx) in pending {
        let _ = tx.send(Err(death.clone()));
    }
    let contexts: Vec<_> = child.state.lock().unwrap().contexts.drain().map(|(_, c)| c).collect();
    for c in contexts {
        c.finish(match &cancelled_by {
            Some(by) if death.is_cancelled() => ContextOutcome::Cancelled { by: by.clone() },
            _ => ContextOutcome::Failed(death.clone()),
        });
    }
    let outcome = if child.run_once {
        child.result.send_if_modified(|r| {
            if r.is_none() {
                *r = Some(Err(death.clone()));
                true
            } else {
                false
            }
        });
        child.result.borrow().clone().expect("set above")
    } else if clean_exit {
        // A daemon that ended cleanly did its job.
        Ok(ciborium::Value::Null)
    } else {
        Err(death)
    };
    // Record the outcome with the nursery before anyone waiting for the
    // exit can look at the nursery's verdict.
    on_end(&child, &outcome);
    child.exited.send_replace(true);
}

pub(super) fn settle(child: &ChildActor, id: u64, outcome: CallResult) {
    if child.run_once && id == RUN_ONCE_ID {
        child.result.send_replace(Some(outcome));
    } else if let Some(tx) = child.state.lock().unwrap().pending.remove(&id) {
        let _ = tx.send(outcome);
    }
}
