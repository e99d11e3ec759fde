//! The tree bus: how an actor's requests reach the registrar. In the
//! driver they go to it directly; in an actor process they go up the
//! parent link as [`Msg::TreeRequest`]s, each hop forwarding its
//! children's with an id of its own and routing the answers back down.

use super::registrar::Registrar;
use crate::error::{ErrorKind, RemoteError};
use crate::wire::{Msg, TreeReq, TreeResp};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

/// Where requests go from here.
enum Up {
    /// This is the driver.
    Registrar(Arc<Registrar>),
    /// This is an actor: its parent link.
    Parent(mpsc::UnboundedSender<Msg>),
    /// An actor whose parent does not speak the tree bus.
    Nowhere,
}

/// A request sent up and not yet answered.
enum Pending {
    /// Asked here; the answer goes to this waiter.
    Local(oneshot::Sender<TreeResp>),
    /// Forwarded for child `child` (its request `id`, its link `to`).
    Forwarded { child: String, id: u64, to: mpsc::UnboundedSender<Msg> },
}

/// One actor's (or the driver's) end of the tree bus.
pub struct TreeBus {
    up: Up,
    next: AtomicU64,
    pending: Mutex<HashMap<u64, Pending>>,
    /// Forwarded requests by (child uid, child's id): our id for them (in
    /// an actor) or the task answering them (in the driver).
    forwarded: Arc<Mutex<HashMap<(String, u64), Forward>>>,
}

impl std::fmt::Debug for TreeBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.registrar().is_some() { "TreeBus(registrar)" } else { "TreeBus(parent)" })
    }
}

enum Forward {
    Up(u64),
    Task(tokio::task::AbortHandle),
}

impl TreeBus {
    /// The driver's bus, in front of its registrar.
    pub fn driver(registrar: Arc<Registrar>) -> TreeBus {
        Self::new(Up::Registrar(registrar))
    }

    /// An actor's bus, over its parent link.
    pub fn actor(parent: mpsc::UnboundedSender<Msg>) -> TreeBus {
        Self::new(Up::Parent(parent))
    }

    /// The bus of an actor whose parent has no registrar: registrations go
    /// nowhere, lookups are `denied`.
    pub fn none() -> TreeBus {
        Self::new(Up::Nowhere)
    }

    fn new(up: Up) -> TreeBus {
        TreeBus { up, next: AtomicU64::new(1), pending: Default::default(), forwarded: Default::default() }
    }

    /// The registrar, if this is the driver's bus.
    pub fn registrar(&self) -> Option<&Arc<Registrar>> {
        match &self.up {
            Up::Registrar(r) => Some(r),
            Up::Parent(_) | Up::Nowhere => None,
        }
    }

    /// Send a request that gets no answer (`Register`, `Unregister`).
    pub fn tell(&self, req: TreeReq) {
        match &self.up {
            // Synchronous: `ask` returns at once for these.
            Up::Registrar(r) => drop(futures::executor::block_on(r.ask(req))),
            Up::Parent(tx) => drop(tx.send(Msg::TreeRequest { id: 0, req })),
            Up::Nowhere => {}
        }
    }

    /// Ask the registrar and wait for its answer. Dropping the future
    /// withdraws the request (a cancelled `wait-for-actor`).
    pub async fn ask(&self, req: TreeReq) -> Result<TreeResp, RemoteError> {
        let gone =
            || RemoteError::new(ErrorKind::ActorGone, "the tree's registrar cannot be reached (the tree is ending)");
        match &self.up {
            Up::Registrar(r) => r.ask(req).await.ok_or_else(gone),
            Up::Nowhere => Ok(TreeResp::Error(no_registrar())),
            Up::Parent(tx) => {
                let id = self.next.fetch_add(1, Ordering::Relaxed);
                let (otx, orx) = oneshot::channel();
                self.pending.lock().unwrap().insert(id, Pending::Local(otx));
                let guard = Withdraw { bus: self, id, tx };
                if tx.send(Msg::TreeRequest { id, req }).is_err() {
                    return Err(gone());
                }
                let r = orx.await.map_err(|_| gone());
                std::mem::forget(guard);
                r
            }
        }
    }

    /// A child sent request `id`: pass it on, and its answer back down `to`.
    pub fn forward(&self, child: &str, id: u64, req: TreeReq, to: mpsc::UnboundedSender<Msg>) {
        if id == 0 {
            return self.tell(req);
        }
        let key = (child.to_string(), id);
        match &self.up {
            Up::Registrar(r) => {
                let (r, book) = (r.clone(), self.forwarded.clone());
                // Under the lock, so the task cannot remove its entry
                // before it is there.
                let mut forwarded = self.forwarded.lock().unwrap();
                let k = key.clone();
                let task = tokio::spawn(async move {
                    if let Some(resp) = r.ask(req).await {
                        let _ = to.send(Msg::TreeResponse { id, resp });
                    }
                    book.lock().unwrap().remove(&k);
                });
                forwarded.insert(key, Forward::Task(task.abort_handle()));
            }
            Up::Nowhere => {
                let _ = to.send(Msg::TreeResponse { id, resp: TreeResp::Error(no_registrar()) });
            }
            Up::Parent(up) => {
                let mine = self.next.fetch_add(1, Ordering::Relaxed);
                self.pending.lock().unwrap().insert(mine, Pending::Forwarded { child: child.to_string(), id, to });
                self.forwarded.lock().unwrap().insert(key, Forward::Up(mine));
                let _ = up.send(Msg::TreeRequest { id: mine, req });
            }
        }
    }

    /// Child `child` withdrew its request `id`.
    pub fn withdraw(&self, child: &str, id: u64) {
        let f = self.forwarded.lock().unwrap().remove(&(child.to_string(), id));
        self.cancel(f);
    }

    fn cancel(&self, f: Option<Forward>) {
        match f {
            Some(Forward::Task(t)) => t.abort(),
            Some(Forward::Up(mine)) => {
                self.pending.lock().unwrap().remove(&mine);
                if let Up::Parent(up) = &self.up {
                    let _ = up.send(Msg::TreeCancel { id: mine });
                }
            }
            None => {}
        }
    }

    /// Child `child` has ended: withdraw everything it was waiting for.
    pub fn child_gone(&self, child: &str) {
        let mine: Vec<Forward> = {
            let mut f = self.forwarded.lock().unwrap();
            let keys: Vec<_> = f.keys().filter(|(c, _)| c == child).cloned().collect();
            keys.into_iter().filter_map(|k| f.remove(&k)).collect()
        };
        for f in mine {
            self.cancel(Some(f));
        }
    }

    /// The answer to our request `id` came down from the parent.
    pub fn answered(&self, id: u64, resp: TreeResp) {
        let p = self.pending.lock().unwrap().remove(&id);
        match p {
            Some(Pending::Local(tx)) => drop(tx.send(resp)),
            Some(Pending::Forwarded { child, id: theirs, to }) => {
                self.forwarded.lock().unwrap().remove(&(child, theirs));
                let _ = to.send(Msg::TreeResponse { id: theirs, resp });
            }
            None => {} // withdrawn meanwhile
        }
    }
}

fn no_registrar() -> RemoteError {
    RemoteError::new(
        ErrorKind::Denied,
        "this tree has no registrar: the actor's parent does not speak the tree bus (StartActor.registry)",
    )
}

/// Withdraws a request whose asker stopped waiting.
struct Withdraw<'a> {
    bus: &'a TreeBus,
    id: u64,
    tx: &'a mpsc::UnboundedSender<Msg>,
}

impl Drop for Withdraw<'_> {
    fn drop(&mut self) {
        if self.bus.pending.lock().unwrap().remove(&self.id).is_some() {
            let _ = self.tx.send(Msg::TreeCancel { id: self.id });
        }
    }
}
