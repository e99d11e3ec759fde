//! Nurseries and portals: the parent's side of the actor tree.
//!
//! A [`Nursery`] starts child actor processes and does not finish
//! ([`Nursery::wait`]) until every one of them has ended. A child failure is
//! recorded at once, cancels the nursery's scope (so the parent's next
//! checkpoint sees it) and cancels the siblings, whether or not anyone is
//! awaiting that child's [`Portal`].
//!
//! The same types back the guest-facing WIT resources (`actor::imports`) and
//! the native Rust API, so a Rust program drives actors exactly as a guest
//! does.
//!
//! Files: `info` (identity, the tree), `scope` (the spawning side and one
//! spawn), `child` (a child as its parent sees it), `portal` (handles on a
//! child); this one, the nursery itself.

mod child;
mod discover;
mod info;
mod peer;
mod portal;
mod scope;
mod status;

pub use child::ChildActor;
pub use info::{ActorInfo, CallResult, TreeInfo};
pub use portal::{Context, PendingCall, Portal};
pub use scope::{ActorScope, ScopeParts, SpawnOptions, Teardown};
pub use status::STATUS_TIMEOUT;

use scope::spawn_child;

use crate::error::{ErrorKind, RemoteError};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

#[derive(Default)]
struct NurseryState {
    children: Vec<Arc<ChildActor>>,
    /// Spawns started and not yet registered (or failed).
    spawning: usize,
    errors: Vec<RemoteError>,
    closed: bool,
}

struct NurseryInner {
    actor: Arc<ActorScope>,
    scope: CancellationToken,
    /// Cancelled once the nursery is closed or dropped, to end its watcher.
    closed: CancellationToken,
    state: Mutex<NurseryState>,
    changed: watch::Sender<u64>,
}

impl NurseryInner {
    /// A child ended: record a failure and, on the first one, cancel the
    /// scope and every sibling at once.
    fn child_ended(self: &Arc<Self>, outcome: &CallResult) {
        if let Err(e) = outcome {
            // A real failure counts even from a child we were cancelling:
            // only the cancellation itself is not an error.
            if !e.is_cancelled() {
                let first = {
                    let mut st = self.state.lock().unwrap();
                    st.errors.push(e.clone());
                    st.errors.len() == 1
                };
                if first {
                    self.scope.cancel();
                }
            }
        }
        self.changed.send_modify(|g| *g += 1);
    }

    async fn cancel_children(&self) {
        let kids = self.state.lock().unwrap().children.clone();
        futures::future::join_all(kids.iter().map(|c| c.cancel(&self.actor.me.name))).await;
    }
}

/// A supervision scope for child actors (see module docs).
pub struct Nursery {
    inner: Arc<NurseryInner>,
}

impl Nursery {
    /// Open a nursery in `actor`.
    pub fn open(actor: &Arc<ActorScope>) -> Nursery {
        let scope = actor.cancel.child_token();
        let inner = Arc::new(NurseryInner {
            actor: actor.clone(),
            scope: scope.clone(),
            closed: CancellationToken::new(),
            state: Mutex::new(NurseryState::default()),
            changed: watch::channel(0).0,
        });
        // When the scope is cancelled (parent cancelled, or a child failed),
        // every child is cancelled too.
        let weak = Arc::downgrade(&inner);
        let closed = inner.closed.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = scope.cancelled() => {}
                _ = closed.cancelled() => return,
            }
            if let Some(inner) = weak.upgrade() {
                inner.cancel_children().await;
            }
        });
        Nursery { inner }
    }

    /// The nursery's cancel scope.
    pub fn scope(&self) -> &CancellationToken {
        &self.inner.scope
    }

    /// Why the scope was cancelled: the children's failure(s), or a plain
    /// cancellation of the enclosing actor. `None` while not cancelled.
    pub fn cancel_reason(&self) -> Option<RemoteError> {
        if !self.inner.scope.is_cancelled() {
            return None;
        }
        let actor = &self.inner.actor;
        let errors = self.inner.state.lock().unwrap().errors.clone();
        Some(RemoteError::group(errors, &actor.me.name, &actor.me.uid).unwrap_or_else(|| actor.cancelled_error()))
    }

    fn check_open(&self) -> Result<(), RemoteError> {
        if self.inner.state.lock().unwrap().closed {
            return Err(self.inner.actor.error(ErrorKind::BadArgs, "the nursery is closed"));
        }
        if let Some(reason) = self.cancel_reason() {
            return Err(reason);
        }
        Ok(())
    }

    /// Start a child; see [`Nursery::start_actor`] and [`Nursery::run_in_actor`].
    pub async fn spawn(
        &self,
        name: &str,
        component: Option<&str>,
        run: Option<(String, ciborium::Value)>,
        opts: SpawnOptions,
    ) -> Result<Portal, RemoteError> {
        self.check_open()?;
        let weak = Arc::downgrade(&self.inner);
        let on_end = Box::new(move |_: &Arc<ChildActor>, o: &CallResult| {
            if let Some(inner) = weak.upgrade() {
                inner.child_ended(o);
            }
        });
        // A task of its own, so that a caller who stops waiting (a
        // cancelled checkpoint, a timeout) cannot drop a spawn half-way:
        // the child is started and registered here, or not at all, and
        // `wait` waits for spawns in flight.
        self.inner.state.lock().unwrap().spawning += 1;
        let inner = self.inner.clone();
        let (name, component) = (name.to_string(), component.map(str::to_string));
        let task = tokio::spawn(async move {
            let child = spawn_child(&inner.actor, &name, component.as_deref(), run, opts, on_end).await;
            {
                let mut st = inner.state.lock().unwrap();
                st.spawning -= 1;
                if let Ok(child) = &child {
                    st.children.push(child.clone());
                }
            }
            inner.changed.send_modify(|g| *g += 1);
            let child = child?;
            // A cancel that raced with the spawn must still reach the new child.
            if inner.scope.is_cancelled() {
                child.cancel(&inner.actor.me.name).await;
            }
            Ok(Portal { child, caller: inner.actor.me.name.clone() })
        });
        task.await
            .unwrap_or_else(|e| Err(self.inner.actor.error(ErrorKind::Internal, format!("spawn task failed: {e}"))))
    }

    /// Start a long-lived child that serves `portal.run` calls until
    /// cancelled. `component` defaults to the caller's own.
    pub async fn start_actor(&self, name: &str, component: Option<&str>) -> Result<Portal, RemoteError> {
        self.spawn(name, component, None, SpawnOptions::default()).await
    }

    /// Start a child that runs export `func` with `args` once, then exits.
    pub async fn run_in_actor(
        &self,
        name: &str,
        component: Option<&str>,
        func: &str,
        args: ciborium::Value,
    ) -> Result<Portal, RemoteError> {
        self.spawn(name, component, Some((func.to_string(), args)), SpawnOptions::default()).await
    }

    /// True once a child failed, or every `run-in-actor` child has its
    /// result (so [`Nursery::wait`] would only have daemons left to cancel).
    pub fn is_settled(&self) -> bool {
        let st = self.inner.state.lock().unwrap();
        !st.errors.is_empty()
            || st.children.iter().filter(|c| c.run_once).all(|c| c.result.borrow().is_some() || c.has_exited())
    }

    /// Wait until the nursery is settled (see [`Nursery::is_settled`]).
    pub async fn settled(&self) {
        let mut rx = self.inner.changed.subscribe();
        loop {
            if self.is_settled() || self.inner.scope.is_cancelled() {
                return;
            }
            tokio::select! {
                r = rx.changed() => if r.is_err() { return },
                _ = self.inner.scope.cancelled() => {}
            }
        }
    }

    /// Wait for every `run-in-actor` child, then cancel the daemons, and
    /// return once every child process has exited. Returns the children's
    /// failures (several as one group), or `cancelled` if the enclosing actor
    /// was cancelled.
    pub async fn wait(&self) -> Result<(), RemoteError> {
        self.settled().await;
        self.spawned().await;
        self.inner.cancel_children().await;
        let kids = self.inner.state.lock().unwrap().children.clone();
        futures::future::join_all(kids.iter().map(|c| c.wait_exited())).await;
        self.inner.state.lock().unwrap().closed = true;
        self.inner.closed.cancel();
        match self.cancel_reason() {
            Some(reason) => Err(reason),
            None => Ok(()),
        }
    }

    /// Cancel every child and wait until each has exited. The nursery stays
    /// usable and cancelled children are not failures. Idempotent.
    pub async fn cancel(&self) {
        self.spawned().await;
        self.inner.cancel_children().await;
    }

    /// Wait until no spawn is in flight: a child still being started is a
    /// child too.
    async fn spawned(&self) {
        let mut changes = self.inner.changed.subscribe();
        while self.inner.state.lock().unwrap().spawning > 0 {
            if changes.changed().await.is_err() {
                return;
            }
        }
    }
}

impl Drop for Nursery {
    fn drop(&mut self) {
        self.inner.closed.cancel();
        let open = !self.inner.state.lock().unwrap().closed;
        if open {
            // Structured concurrency still holds for a nursery dropped
            // without `wait`: its children are cancelled, never leaked.
            let inner = self.inner.clone();
            if let Ok(h) = tokio::runtime::Handle::try_current() {
                h.spawn(async move { inner.cancel_children().await });
            }
        }
    }
}
