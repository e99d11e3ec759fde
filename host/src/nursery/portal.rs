//! Handles on a child: the portal, a call in flight, and the caller's side
//! of a context.

use super::child::ChildActor;
use super::info::{ActorInfo, CallResult};
use crate::context::{CallerContext, Receiver};
use crate::error::{ErrorKind, RemoteError};
use crate::wire::{ContextOutcome, Msg};
use std::sync::Arc;
use tokio::sync::oneshot;

/// A handle on a child actor.
#[derive(Debug, Clone)]
pub struct Portal {
    pub(super) child: Arc<ChildActor>,
    /// Name of the actor holding the portal (the canceller of its calls).
    pub(super) caller: String,
}

/// A call in flight; await [`PendingCall::get`] for its outcome.
#[derive(Debug)]
#[must_use = "dropping a pending call cancels it in the actor serving it"]
pub struct PendingCall {
    pub(super) rx: oneshot::Receiver<CallResult>,
    pub(super) actor: String,
    /// Set until the outcome is known: dropping the call then cancels the
    /// remote work (a timeout around a call must not leave it running).
    pub(super) cancel_on_drop: Option<(Arc<ChildActor>, u64, String)>,
}

impl Drop for PendingCall {
    fn drop(&mut self) {
        if let Some((child, id, by)) = self.cancel_on_drop.take() {
            child.cancel_call(id, &by);
        }
    }
}

impl PendingCall {
    /// Wait for the outcome.
    pub async fn get(mut self) -> CallResult {
        self.ready().await
    }

    /// The outcome if it has arrived; never blocks.
    pub fn try_get(&mut self) -> Option<CallResult> {
        let outcome = match self.rx.try_recv() {
            Ok(o) => o,
            Err(oneshot::error::TryRecvError::Empty) => return None,
            Err(oneshot::error::TryRecvError::Closed) => Err(self.dropped()),
        };
        self.cancel_on_drop = None;
        Some(outcome)
    }

    /// Wait for the outcome without consuming the call (for pollables).
    pub async fn ready(&mut self) -> CallResult {
        let outcome = (&mut self.rx).await.unwrap_or_else(|_| Err(self.dropped()));
        self.cancel_on_drop = None;
        outcome
    }

    pub(super) fn dropped(&self) -> RemoteError {
        RemoteError::new(ErrorKind::Internal, format!("call into '{}' was dropped", self.actor))
    }
}

impl Portal {
    /// The child's identity.
    pub fn info(&self) -> &ActorInfo {
        &self.child.info
    }

    /// The child itself.
    pub fn child(&self) -> &Arc<ChildActor> {
        &self.child
    }

    /// Start a call to export `func`; never blocks. Fails at once if the
    /// actor was cancelled or has exited.
    pub fn run(&self, func: &str, args: ciborium::Value) -> Result<PendingCall, RemoteError> {
        let (id, rx) = self.child.call(func, args)?;
        Ok(PendingCall {
            rx,
            actor: self.child.info.name.clone(),
            cancel_on_drop: Some((self.child.clone(), id, self.caller.clone())),
        })
    }

    /// True for a child of this actor's nurseries; false for an actor
    /// found through discovery.
    pub fn is_child(&self) -> bool {
        !self.child.peer
    }

    /// The return value of a `run-in-actor` child.
    pub async fn result(&self) -> CallResult {
        if self.child.peer {
            return Err(self.child.err(
                ErrorKind::BadArgs,
                format!(
                    "actor '{}' is not a child of '{}': it has no result for us (use run)",
                    self.child.info.name, self.caller
                ),
            ));
        }
        if !self.child.run_once {
            return Err(self.child.err(
                ErrorKind::BadArgs,
                format!("actor '{}' was started with start-actor; it has no result (use run)", self.child.info.name),
            ));
        }
        self.child.outcome().await
    }

    /// Cancel the child and wait for its process to exit. `denied` for an
    /// actor found through discovery: only its parent's nursery owns it.
    pub async fn cancel_actor(&self, by: &str) -> Result<(), RemoteError> {
        if self.child.peer {
            return Err(self.child.err(
                ErrorKind::Denied,
                format!(
                    "actor '{}' is not a child of '{}'; only its parent's nursery can cancel it",
                    self.child.info.name, self.caller
                ),
            ));
        }
        self.child.cancel(by).await;
        Ok(())
    }

    /// Open a 2-way context on export `func` of the child (whose first
    /// parameter is the context) and wait for the value it passes to
    /// `started`. `me` names the caller (name, uid) for the callee's errors.
    pub async fn open_context(
        &self,
        func: &str,
        args: ciborium::Value,
        me: (&str, &str),
    ) -> Result<(Context, Vec<u8>), RemoteError> {
        let (cid, state) = self.child.open_context(func, args, me)?;
        let ctx = Context { cid, child: self.child.clone(), state, caller: me.0.to_string() };
        let first = ctx.state.started().await?;
        Ok((ctx, first))
    }
}

/// The caller's handle on an open context.
#[derive(Debug)]
pub struct Context {
    pub(super) cid: u64,
    pub(super) child: Arc<ChildActor>,
    pub(super) state: Arc<CallerContext>,
    pub(super) caller: String,
}

impl Context {
    /// The callee's identity.
    pub fn callee(&self) -> &ActorInfo {
        &self.child.info
    }

    /// The shared state, for waiting on it without borrowing the handle.
    pub fn state(&self) -> Arc<CallerContext> {
        self.state.clone()
    }

    /// Open the context's stream (once).
    pub fn open_stream(&self) -> Result<Receiver, RemoteError> {
        self.state.stream.open()
    }

    /// Wait for the callee's function to end: its return value, a
    /// cancellation naming the canceller, or its failure.
    pub async fn result(&self) -> ContextOutcome {
        self.state.outcome().await
    }

    /// Cancel the callee's function (with the caller's failure, if it is
    /// failing). Returns at once; see [`Context::result`] for the outcome.
    pub fn cancel(&self, error: Option<RemoteError>) {
        if !self.state.is_done() {
            let _ = self.child.tx.send(Msg::CancelContext { cid: self.cid, by: self.caller.clone(), error });
        }
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        // Structured: a context nobody holds any more must not keep the
        // callee's function running.
        self.cancel(None);
    }
}
