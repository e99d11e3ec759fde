//! Frames coming in: from the parent link (`read_parent`) and, through
//! the same handler, from peer links (`on_frame`).

use super::{peers, Actor};
use crate::context::{CalleeContext, StreamCore};
use crate::error::{ErrorKind, RemoteError};
use crate::wire::{self, ContextOutcome, Msg};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Route frames from the parent until it closes the pipe: calls are queued
/// for the main instance, contexts get a task each, stream frames go to
/// their context, a cancel or EOF cancels the actor.
pub(super) async fn read_parent(actor: Arc<Actor>, read: tokio::net::unix::pipe::Receiver) {
    let scope = &actor.scope;
    let mut read = tokio::io::BufReader::with_capacity(64 * 1024, wire::frame::Spinning::new(read));
    let broken = |why: String| {
        let e = RemoteError::new(ErrorKind::Protocol, format!("protocol error from parent: {why}"))
            .with_actor(&scope.me.name, &scope.me.uid);
        tracing::error!(actor = %scope.me.name, "{}", e.message);
        actor.protocol_error.store(true, Ordering::SeqCst);
        let _ = actor.out.send(Msg::Failed { error: e });
        scope.cancel_actor("a protocol error");
    };
    loop {
        let msg = match wire::read_msg(&mut read).await {
            Ok(Msg::Cancel { by }) => {
                scope.cancel_actor(&by);
                continue;
            }
            Ok(Msg::TreeResponse { id, resp }) => {
                scope.bus.answered(id, resp);
                continue;
            }
            Ok(Msg::Status { id }) => {
                super::status::answer(&actor, id);
                continue;
            }
            Ok(msg) => msg,
            Err(wire::FrameError::Closed) => {
                scope.cancel_actor("parent exited");
                break;
            }
            Err(e) => break broken(e.to_string()),
        };
        if let Err(why) = on_frame(&actor, msg, &peers::From::Parent) {
            break broken(why);
        }
    }
}

/// Handle one frame about calls and contexts, from the parent or a peer
/// (whose ids are moved into its own namespace first). `Err` is a
/// protocol error.
pub(super) fn on_frame(actor: &Arc<Actor>, mut msg: Msg, from: &peers::From) -> Result<(), String> {
    let scope = &actor.scope;
    match &mut msg {
        Msg::Call(r) | Msg::OpenContext(r) => {
            peers::check_id(r.id, from)?;
            r.id = from.local(r.id);
        }
        Msg::CancelCall { id, .. } => {
            peers::check_id(*id, from)?;
            *id = from.local(*id);
        }
        Msg::CancelContext { cid, .. } | Msg::Stream { cid, .. } | Msg::Credit { cid, .. } | Msg::StreamEnd { cid } => {
            peers::check_id(*cid, from)?;
            *cid = from.local(*cid);
        }
        _ => {}
    }
    match msg {
        Msg::Call(req) => {
            if actor.contexts.lock().unwrap().contains_key(&req.id) {
                return Err(format!("call id {} is an open context's", req.id & !peers::PEER_BIT));
            }
            actor.calls.arrive(req)
        }
        Msg::OpenContext(req) => {
            if actor.contexts.lock().unwrap().contains_key(&req.id) || actor.calls.in_flight(req.id) {
                return Err(format!("context id {} is already in flight", req.id & !peers::PEER_BIT));
            }
            let stream = StreamCore::new(req.id, actor.out.clone(), from.name(), (&scope.me.name, &scope.me.uid));
            let callee = CalleeContext::new(req.id, stream, actor.out.clone());
            actor.contexts.lock().unwrap().insert(req.id, callee.clone());
            if scope.cancel.is_cancelled() {
                callee.cancel_by(&scope.cancelled_by.lock().unwrap().clone().unwrap_or_default(), None);
            }
            match &actor.context_tasks {
                Some(to_instance) => {
                    if let Err(mpsc::error::SendError((_, callee))) = to_instance.send((req, callee)) {
                        callee.done(ContextOutcome::Failed(actor.calls.gone("its parent")));
                    }
                }
                None => drop(actor.context_set.lock().unwrap().spawn(actor.clone().serve_context(req, callee))),
            }
            Ok(())
        }
        msg @ (Msg::CancelContext { .. } | Msg::Stream { .. } | Msg::Credit { .. } | Msg::StreamEnd { .. }) => {
            let cid = match &msg {
                Msg::CancelContext { cid, .. }
                | Msg::Stream { cid, .. }
                | Msg::Credit { cid, .. }
                | Msg::StreamEnd { cid } => *cid,
                _ => unreachable!("matched above"),
            };
            let c = actor.contexts.lock().unwrap().get(&cid).cloned();
            // Unknown ids are late frames for a context already ended.
            match c.map(|c| c.on_frame(msg)) {
                Some(Err(why)) => Err(why),
                _ => Ok(()),
            }
        }
        Msg::CancelCall { id, by } => {
            actor.calls.cancel(id, &by);
            Ok(())
        }
        other => Err(format!("unexpected message {}", other.name())),
    }
}
