//! Checkpoints: the cancel scopes a blocking import is subject to (the
//! actor's, the guest's open nurseries and cancel scopes, the call or
//! context being served, contexts it holds as a caller) and the race of an
//! import against all of them.

use super::ActorState;
use crate::context::{CalleeContext, CallerContext};
use crate::error::RemoteError;
use crate::nursery::{ActorScope, Nursery};
use std::future::Future;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

/// A cancel scope opened by the guest.
#[derive(Debug, Default)]
pub struct GuestScope {
    pub(super) token: CancellationToken,
    /// Set when the deadline (rather than `cancel`) cancelled it.
    pub(super) deadline: Mutex<Option<std::time::Duration>>,
}

impl GuestScope {
    /// Cancel this scope `d` from now, unless it is cancelled (or closed)
    /// before.
    pub(super) fn expire_after(self: &Arc<Self>, d: std::time::Duration) {
        let s = self.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(d) => {
                    *s.deadline.lock().unwrap() = Some(d);
                    s.token.cancel();
                }
                _ = s.token.cancelled() => {}
            }
        });
    }
}

/// The cancel scope of one plain call served by the main instance.
#[derive(Debug, Default)]
pub struct CallScope {
    /// Cancelled when the caller cancels the call.
    pub token: CancellationToken,
    by: Mutex<Option<String>>,
}

impl CallScope {
    /// Cancel the call on behalf of `by`.
    pub fn cancel(&self, by: &str) {
        self.by.lock().unwrap().get_or_insert_with(|| by.to_string());
        self.token.cancel();
    }

    /// The error a checkpoint raises once the call is cancelled.
    pub fn error(&self, actor: &ActorScope) -> Option<RemoteError> {
        if !self.token.is_cancelled() {
            return None;
        }
        let by = self.by.lock().unwrap().clone().unwrap_or_default();
        Some(RemoteError::cancelled(format!("call cancelled by '{by}'")).with_actor(&actor.me.name, &actor.me.uid))
    }
}

impl ActorState {
    /// A `Send` snapshot of the current scopes, for checkpoints.
    pub(super) fn scopes(&self) -> Scopes {
        self.main.snapshot(&self.actor)
    }
}

impl super::TaskScopes {
    /// A `Send` snapshot of these scopes within `actor`, for checkpoints.
    pub(crate) fn snapshot(&self, actor: &Arc<ActorScope>) -> Scopes {
        Scopes {
            actor: actor.clone(),
            open: self.open.clone(),
            callee: self.callee.clone(),
            call: self.call.clone(),
            guest: self.guest.clone(),
            contexts: self.contexts.clone(),
        }
    }
}

/// The cancel scopes a checkpoint is subject to: the actor's own and those
/// of the guest's open nurseries.
pub(crate) struct Scopes {
    actor: Arc<ActorScope>,
    open: Vec<Arc<Nursery>>,
    callee: Option<Arc<CalleeContext>>,
    call: Option<Arc<CallScope>>,
    guest: Vec<Arc<GuestScope>>,
    contexts: Vec<Arc<CallerContext>>,
}

impl Scopes {
    /// These scopes but those of the guest's open nurseries (which a
    /// nursery's own `wait` handles itself).
    pub(super) fn without_nurseries(self) -> Scopes {
        Scopes { open: Vec::new(), ..self }
    }

    /// The error to raise if the current scope is cancelled.
    pub(super) fn cancel_error(&self) -> Option<RemoteError> {
        if self.actor.cancel.is_cancelled() {
            return Some(self.actor.cancelled_error());
        }
        if let Some(e) = self.callee.as_ref().and_then(|c| c.cancel_error()) {
            return Some(e);
        }
        if let Some(e) = self.call.as_ref().and_then(|c| c.error(&self.actor)) {
            return Some(e);
        }
        if let Some(e) = self.contexts.iter().find_map(|c| c.failure()) {
            return Some(e);
        }
        if let Some(g) = self.guest.iter().find(|g| g.token.is_cancelled()) {
            let why = match *g.deadline.lock().unwrap() {
                Some(d) => format!("cancelled: the scope's deadline of {d:?} passed"),
                None => "cancelled: the scope was cancelled".to_string(),
            };
            return Some(RemoteError::cancelled(why).with_actor(&self.actor.me.name, &self.actor.me.uid));
        }
        self.open.iter().rev().find_map(|n| n.cancel_reason())
    }

    /// Run `fut` unless or until the current scope is cancelled.
    pub(super) async fn guard<T>(&self, fut: impl Future<Output = T>) -> Result<T, RemoteError> {
        if let Some(e) = self.cancel_error() {
            return Err(e);
        }
        let mut tokens = vec![self.actor.cancel.clone()];
        tokens.extend(self.open.iter().map(|n| n.scope().clone()));
        tokens.extend(self.callee.iter().map(|c| c.cancel.clone()));
        tokens.extend(self.call.iter().map(|c| c.token.clone()));
        tokens.extend(self.guest.iter().map(|g| g.token.clone()));
        tokens.extend(self.contexts.iter().map(|c| c.failed.clone()));
        let any = futures::future::select_all(tokens.iter().map(|t| Box::pin(t.cancelled())));
        tokio::select! {
            v = fut => Ok(v),
            _ = any => Err(self.cancel_error().unwrap_or_else(|| self.actor.cancelled_error())),
        }
    }
}
