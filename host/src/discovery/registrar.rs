//! The tree's registrar: who is alive, by name and uid, and who waits for
//! whom. It lives in the driver, the top of the process tree, so it cannot
//! die before any actor it lists; entries are made and removed by the
//! spawners (on `Ready`, after reaping), so none is ever stale.

use crate::error::{ErrorKind, RemoteError};
use crate::sandbox::glob_matches;
use crate::wire::{Entry, TreeReq, TreeResp};
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::oneshot;

/// The uid the driver asks with: it may look up anyone.
pub const DRIVER_UID: &str = "host";

/// The registrar of one tree (see module docs).
#[derive(Default)]
pub struct Registrar {
    tables: Mutex<Tables>,
}

#[derive(Default)]
struct Tables {
    by_uid: HashMap<String, Entry>,
    /// Uids in registration order (lookups by name take the newest).
    order: Vec<String>,
    children: HashMap<String, Vec<String>>,
    waiters: HashMap<u64, Waiter>,
    next_waiter: u64,
}

struct Waiter {
    from: String,
    name: String,
    tx: oneshot::Sender<Entry>,
}

/// Removes a `wait-for-actor` that is no longer awaited.
struct WaitGuard<'a>(&'a Registrar, u64);

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        self.0.tables.lock().unwrap().waiters.remove(&self.1);
    }
}

impl Registrar {
    /// Handle one request; `None` for those that get no answer
    /// (`Register`, `Unregister`). Dropping the future withdraws a wait.
    pub async fn ask(&self, req: TreeReq) -> Option<TreeResp> {
        let rx = {
            let mut t = self.tables.lock().unwrap();
            match req {
                TreeReq::Register(e) => {
                    t.register(*e);
                    return None;
                }
                TreeReq::Unregister { uid } => {
                    t.unregister(&uid);
                    return None;
                }
                TreeReq::Find { from, name } => {
                    return Some(match t.check(&from, &name) {
                        Err(e) => TreeResp::Error(e),
                        Ok(()) => TreeResp::Found(t.newest(&from, &name).map(Box::new)),
                    })
                }
                TreeReq::FindUid { from, uid } => {
                    let found = t.by_uid.get(&uid).filter(|e| e.discoverable && e.uid != from).cloned();
                    return Some(match found {
                        Some(e) => match t.check(&from, &e.name) {
                            Err(err) => TreeResp::Error(err),
                            Ok(()) => TreeResp::Found(Some(Box::new(e))),
                        },
                        None => TreeResp::Found(None),
                    });
                }
                TreeReq::Query { from, name } => {
                    return Some(match t.check(&from, &name) {
                        Err(e) => TreeResp::Error(e),
                        Ok(()) => TreeResp::Entries(t.listed(&from, |e| e.name == name)),
                    })
                }
                TreeReq::List { from } => {
                    let may = t.patterns(&from);
                    let visible = |e: &Entry| may.as_ref().is_none_or(|p| p.iter().any(|p| glob_matches(p, &e.name)));
                    return Some(TreeResp::Entries(t.listed(&from, visible)));
                }
                TreeReq::WaitFor { from, name } => {
                    if let Err(e) = t.check(&from, &name) {
                        return Some(TreeResp::Error(e));
                    }
                    if let Some(e) = t.newest(&from, &name) {
                        return Some(TreeResp::Found(Some(Box::new(e))));
                    }
                    let (tx, rx) = oneshot::channel();
                    t.next_waiter += 1;
                    let id = t.next_waiter;
                    t.waiters.insert(id, Waiter { from, name, tx });
                    (id, rx)
                }
            }
        };
        let (id, rx) = rx;
        let _guard = WaitGuard(self, id);
        match rx.await {
            Ok(e) => Some(TreeResp::Found(Some(Box::new(e)))),
            // The registrar is being dropped with the tree.
            Err(_) => Some(TreeResp::Error(RemoteError::new(ErrorKind::Cancelled, "the tree is ending"))),
        }
    }

    /// Every live entry, tokens left out (for `ps` and tests).
    pub fn entries(&self) -> Vec<Entry> {
        self.tables.lock().unwrap().listed(DRIVER_UID, |_| true)
    }

    /// How many `wait-for-actor`s are parked (a test hook: none may leak).
    pub fn waiting(&self) -> usize {
        self.tables.lock().unwrap().waiters.len()
    }
}

impl Tables {
    fn register(&mut self, e: Entry) {
        let uid = e.uid.clone();
        self.children.entry(e.parent_uid.clone()).or_default().push(uid.clone());
        let woken: Vec<u64> = self
            .waiters
            .iter()
            .filter(|(_, w)| e.discoverable && w.name == e.name && w.from != e.uid)
            .map(|(id, _)| *id)
            .collect();
        for id in woken {
            if let Some(w) = self.waiters.remove(&id) {
                let _ = w.tx.send(e.clone());
            }
        }
        self.order.push(uid.clone());
        self.by_uid.insert(uid, e);
    }

    /// Drop `uid` and its whole subtree.
    fn unregister(&mut self, uid: &str) {
        let mut gone = vec![uid.to_string()];
        let mut i = 0;
        while i < gone.len() {
            if let Some(kids) = self.children.remove(&gone[i]) {
                gone.extend(kids);
            }
            i += 1;
        }
        for g in &gone {
            if let Some(e) = self.by_uid.remove(g) {
                if let Some(siblings) = self.children.get_mut(&e.parent_uid) {
                    siblings.retain(|s| s != g);
                }
            }
        }
        self.order.retain(|u| self.by_uid.contains_key(u));
    }

    /// The `discover` patterns of actor `from` (`None`: the driver, which
    /// may see everything).
    fn patterns(&self, from: &str) -> Option<Vec<String>> {
        if from == DRIVER_UID {
            return None;
        }
        Some(self.by_uid.get(from).map(|e| e.discover.clone()).unwrap_or_default())
    }

    fn check(&self, from: &str, name: &str) -> Result<(), RemoteError> {
        let Some(mine) = self.patterns(from) else { return Ok(()) };
        if mine.iter().any(|p| glob_matches(p, name)) {
            return Ok(());
        }
        let who = self.by_uid.get(from).map_or(from, |e| e.name.as_str());
        let holds = if mine.is_empty() { "none".to_string() } else { mine.join(", ") };
        Err(RemoteError::new(
            ErrorKind::Denied,
            format!(
                "actor '{who}' may not discover `{name}`: no `discover` grant covers it (it holds: {holds}; grant it \
                 with `discover = [\"{name}\"]` in its component's [grants])"
            ),
        )
        .with_actor(who, from))
    }

    fn newest(&self, from: &str, name: &str) -> Option<Entry> {
        self.order
            .iter()
            .rev()
            .filter_map(|u| self.by_uid.get(u))
            .find(|e| e.discoverable && e.name == name && e.uid != from)
            .cloned()
    }

    fn listed(&self, from: &str, keep: impl Fn(&Entry) -> bool) -> Vec<Entry> {
        self.order
            .iter()
            .filter_map(|u| self.by_uid.get(u))
            .filter(|e| (e.discoverable || from == DRIVER_UID) && keep(e))
            .map(|e| Entry { token: String::new(), ..e.clone() })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, uid: &str, parent: &str) -> Entry {
        Entry {
            name: name.into(),
            uid: uid.into(),
            pid: 1,
            host: String::new(),
            depth: 1,
            component: "c".into(),
            parent_uid: parent.into(),
            peer_addr: format!("addr-{uid}"),
            token: format!("token-{uid}"),
            discover: vec!["*".into()],
            backend: "exec".into(),
            discoverable: true,
        }
    }

    fn ask(r: &Registrar, req: TreeReq) -> Option<TreeResp> {
        futures::executor::block_on(r.ask(req))
    }

    #[test]
    fn the_newest_live_entry_wins_and_a_subtree_goes_at_once() {
        let r = Registrar::default();
        for (n, u, p) in [("db", "a", ""), ("db", "b", ""), ("leaf", "c", "b"), ("leaf2", "d", "c")] {
            ask(&r, TreeReq::Register(Box::new(entry(n, u, p))));
        }
        let found = |name: &str, from: &str| match ask(&r, TreeReq::Find { from: from.into(), name: name.into() }) {
            Some(TreeResp::Found(e)) => e.map(|e| e.uid),
            other => panic!("{other:?}"),
        };
        assert_eq!(found("db", DRIVER_UID), Some("b".into()));
        // Never the asker itself.
        assert_eq!(found("db", "b"), Some("a".into()));
        assert_eq!(found("nobody", DRIVER_UID), None);
        assert_eq!(found("leaf2", "a"), Some("d".into()));
        ask(&r, TreeReq::Unregister { uid: "b".into() });
        assert_eq!(found("db", DRIVER_UID), Some("a".into()));
        assert_eq!(found("leaf2", DRIVER_UID), None, "the subtree went with its root");
        assert_eq!(r.entries().iter().map(|e| e.uid.as_str()).collect::<Vec<_>>(), ["a"]);
        assert!(r.entries()[0].token.is_empty(), "listings carry no token");
    }

    #[test]
    fn lookups_need_a_discover_grant() {
        let r = Registrar::default();
        let mut w = entry("w", "w", "");
        w.discover = vec!["worker*".into()];
        ask(&r, TreeReq::Register(Box::new(w)));
        ask(&r, TreeReq::Register(Box::new(entry("db", "d", ""))));
        ask(&r, TreeReq::Register(Box::new(entry("worker-1", "k", ""))));
        match ask(&r, TreeReq::Find { from: "w".into(), name: "db".into() }) {
            Some(TreeResp::Error(e)) => {
                assert_eq!(e.kind, ErrorKind::Denied);
                assert!(e.message.contains("`db`") && e.message.contains("worker*"), "{}", e.message);
            }
            other => panic!("{other:?}"),
        }
        match ask(&r, TreeReq::List { from: "w".into() }) {
            Some(TreeResp::Entries(list)) => {
                assert_eq!(list.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), ["worker-1"])
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_waiter_is_woken_by_the_registration_and_withdrawn_when_dropped() {
        let r = std::sync::Arc::new(Registrar::default());
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            let waiting = r.ask(TreeReq::WaitFor { from: DRIVER_UID.into(), name: "late".into() });
            let registered = async {
                tokio::task::yield_now().await;
                assert_eq!(r.waiting(), 1);
                r.ask(TreeReq::Register(Box::new(entry("late", "l", "")))).await;
            };
            let (resp, _) = tokio::join!(waiting, registered);
            assert!(matches!(resp, Some(TreeResp::Found(Some(e))) if e.uid == "l"));
            let mut abandoned = Box::pin(r.ask(TreeReq::WaitFor { from: DRIVER_UID.into(), name: "never".into() }));
            assert!(futures::poll!(&mut abandoned).is_pending());
            assert_eq!(r.waiting(), 1);
            drop(abandoned);
            assert_eq!(r.waiting(), 0, "a dropped wait leaves no waiter");
        });
    }
}
