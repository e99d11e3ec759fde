//! Gathering the subtree's status for `tractor-host ps`: each parent asks
//! its live children ([`Msg::Status`]) and fills in what it knows of them
//! better than they do (name, backend, parent), so a child that is still
//! starting, or does not answer, is listed all the same.

use super::child::ChildActor;
use super::scope::ActorScope;
use crate::wire::{ActorStatus, Msg, RunState};
use std::time::Duration;
use tokio::sync::oneshot;

/// How long one child gets to answer (with its own subtree's answers).
/// Past it the child is listed `unresponsive` and its subtree is left out.
pub const STATUS_TIMEOUT: Duration = Duration::from_secs(2);

impl ChildActor {
    /// What its parent knows of it, with `state`.
    fn known(&self, parent_uid: &str, state: RunState) -> ActorStatus {
        ActorStatus {
            name: self.info.name.clone(),
            uid: self.info.uid.clone(),
            parent_uid: parent_uid.to_string(),
            depth: self.info.depth,
            pid: self.info.pid,
            component: self.info.component.clone(),
            backend: self.backend.to_string(),
            host: String::new(),
            state,
            calls: 0,
            contexts: 0,
            peers: 0,
            served: 0,
            uptime_ms: self.since.elapsed().as_millis() as u64,
            cpu_ms: 0,
            rss_bytes: None,
            wasm_bytes: 0,
        }
    }

    /// Its status and its subtree's (it first); empty once it has exited.
    pub async fn status(&self, parent_uid: &str) -> Vec<ActorStatus> {
        if self.has_exited() {
            return Vec::new();
        }
        if !*self.ready.borrow() {
            return vec![self.known(parent_uid, RunState::Starting)];
        }
        let (tx, rx) = oneshot::channel();
        let id = {
            let mut st = self.state.lock().unwrap();
            st.next_id += 1;
            let id = st.next_id;
            st.statuses.insert(id, tx);
            id
        };
        let _ = self.tx.send(Msg::Status { id });
        match tokio::time::timeout(STATUS_TIMEOUT, rx).await {
            Ok(Ok(mut actors)) if !actors.is_empty() => {
                // Its own figures, our knowledge of who it is.
                let r = actors[0].clone();
                actors[0] = ActorStatus {
                    host: r.host,
                    calls: r.calls,
                    contexts: r.contexts,
                    peers: r.peers,
                    served: r.served,
                    cpu_ms: r.cpu_ms,
                    rss_bytes: r.rss_bytes,
                    wasm_bytes: r.wasm_bytes,
                    ..self.known(parent_uid, r.state)
                };
                actors
            }
            // Exited meanwhile.
            Ok(_) if self.has_exited() => Vec::new(),
            _ => {
                self.state.lock().unwrap().statuses.remove(&id);
                vec![self.known(parent_uid, RunState::Unresponsive)]
            }
        }
    }

    /// Its answer to status request `id` came.
    pub(super) fn status_reported(&self, id: u64, actors: Vec<ActorStatus>) {
        if let Some(tx) = self.state.lock().unwrap().statuses.remove(&id) {
            let _ = tx.send(actors);
        }
    }
}

impl ActorScope {
    /// The status of every live child and of their subtrees, each actor
    /// after its parent, children in the order they were spawned.
    pub async fn children_status(&self) -> Vec<ActorStatus> {
        let parent = if self.grants.is_none() { "" } else { self.me.uid.as_str() };
        let kids = self.live_children();
        let all = futures::future::join_all(kids.iter().map(|c| c.status(parent))).await;
        all.into_iter().flatten().collect()
    }
}
