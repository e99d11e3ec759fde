//! Discovery and peer links (the failure table of the design study, row by
//! row): actors find each other through the driver's registrar and call
//! each other over peer links; finding is never owning. Real processes,
//! real abstract sockets, the testbed component built from source.

use crate::common::{assert_no_leftovers, cbor, testbed};
use ciborium::Value;
use std::time::{Duration, Instant};
use tractor_host::{ErrorKind, Nursery, Tree};

/// The testbed tree with every actor allowed to discover `patterns`.
fn discovering(patterns: &[&str]) -> Tree {
    let mut tree = testbed();
    for c in &mut tree.info.components {
        c.grants.discover = patterns.iter().map(|p| p.to_string()).collect();
    }
    tree
}

fn text(v: Value) -> String {
    v.deserialized().unwrap()
}

fn int(v: Value) -> i64 {
    v.deserialized().unwrap()
}

/// Wait until `check` holds (polling the driver's own state, which has
/// no event to wait on from outside); fails after a minute.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < Duration::from_secs(60), "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// No abstract peer socket of tree `id` is left (tractor #454: socket
/// files after SIGKILL; ours are abstract, so none can be).
pub fn assert_no_peer_sockets(id: &str) {
    let table = std::fs::read_to_string("/proc/net/unix").unwrap();
    let name = format!("@tractor-peer-{id}-");
    assert!(!table.contains(&name), "a peer socket of tree {id} is left:\n{table}");
}

each_backend! {
async fn a_found_actor_is_a_portal_to_a_non_child() {
    let tree = discovering(&["*"]);
    let driver = tree.driver();
    let n = Nursery::open(&driver);
    let db = n.start_actor("db", Some("testbed")).await.unwrap();
    assert!(db.child().wait_ready().await);
    let finder = n.start_actor("finder", Some("testbed")).await.unwrap();
    let ask = |func: &str, args: Value| finder.run(func, args).unwrap().get();
    // A typed call over the peer link, and the portal knows it is a peer.
    assert_eq!(int(ask("find-and-add", cbor(&("db", 2, 3))).await.unwrap()), 5);
    let info: Option<(String, bool)> = ask("find-info", cbor(&("db",))).await.unwrap().deserialized().unwrap();
    assert_eq!(info, Some((db.info().uid.clone(), false)));
    // Absence is not an error.
    let none: Option<(String, bool)> = ask("find-info", cbor(&("nobody",))).await.unwrap().deserialized().unwrap();
    assert_eq!(none, None);
    // A context over the peer link streams like one to a child.
    assert_eq!(int(ask("find-and-sum", cbor(&("db", 100))).await.unwrap()), 4950);
    // Names are not unique: the newest wins, and query lists both.
    let db2 = n.start_actor("db", Some("testbed")).await.unwrap();
    assert!(db2.child().wait_ready().await);
    let info: Option<(String, bool)> = ask("find-info", cbor(&("db",))).await.unwrap().deserialized().unwrap();
    assert_eq!(info.map(|i| i.0), Some(db2.info().uid.clone()));
    let both: Vec<String> = driver.query_actor("db").await.unwrap().into_iter().map(|e| e.uid).collect();
    assert_eq!(both, [db.info().uid.clone(), db2.info().uid.clone()]);
    // The registry, as a guest sees it (itself included).
    let names: Vec<String> = ask("registry-names", Value::Array(vec![])).await.unwrap().deserialized().unwrap();
    assert_eq!(names, ["db", "finder", "db"]);
    n.wait().await.unwrap();
    // Reaping unregisters: nothing is stale once the nursery is done.
    assert_eq!(driver.registry().await.unwrap(), []);
    assert_no_leftovers(&tree.info.id);
    assert_no_peer_sockets(&tree.info.id);
}
}

each_backend! {
async fn wait_for_actor_waits_and_a_timeout_withdraws_it() {
    let tree = discovering(&["*"]);
    let driver = tree.driver();
    let registrar = driver.registrar().unwrap().clone();
    let n = Nursery::open(&driver);
    let finder = n.start_actor("finder", Some("testbed")).await.unwrap();
    let waiting = finder.run("wait-and-add", cbor(&("late", 20, 22, 600_000))).unwrap();
    eventually("the finder waits", || registrar.waiting() == 1).await;
    n.start_actor("late", Some("testbed")).await.unwrap();
    assert_eq!(int(waiting.get().await.unwrap()), 42);
    // Bounded by a cancel scope: cancelled, and no waiter is left behind.
    let e = finder.run("wait-and-add", cbor(&("never", 1, 1, 50))).unwrap().get().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Cancelled, "{e}");
    eventually("the wait is withdrawn", || registrar.waiting() == 0).await;
    n.wait().await.unwrap();
    assert_no_leftovers(&tree.info.id);
    assert_no_peer_sockets(&tree.info.id);
}
}

each_backend! {
async fn a_finder_cannot_cancel_what_it_found() {
    let tree = discovering(&["*"]);
    let n = Nursery::open(&tree.driver());
    let db = n.start_actor("db", Some("testbed")).await.unwrap();
    assert!(db.child().wait_ready().await);
    let finder = n.start_actor("finder", Some("testbed")).await.unwrap();
    let how = text(finder.run("find-and-cancel", cbor(&("db",))).unwrap().get().await.unwrap());
    assert!(how.starts_with("denied: ") && how.contains("only its parent's nursery can cancel it"), "{how}");
    // The found actor is unaffected.
    assert_eq!(int(db.run("add", cbor(&(1, 2))).unwrap().get().await.unwrap()), 3);
    n.wait().await.unwrap();
    assert_no_leftovers(&tree.info.id);
}
}

each_backend! {
async fn a_found_actor_cancelled_by_its_parent_fails_the_finders_calls() {
    let tree = discovering(&["*"]);
    let n = Nursery::open(&tree.driver());
    let db = n.start_actor("db", Some("testbed")).await.unwrap();
    assert!(db.child().wait_ready().await);
    let finder = n.start_actor("finder", Some("testbed")).await.unwrap();
    let (ctx, _) = finder.open_context("hold-a-call", cbor(&("db",)), ("tester", "t-1")).await.unwrap();
    // The finder has a call running in db: its owner cancels db.
    db.cancel_actor("tractor-host").await.unwrap();
    let report = match ctx.result().await {
        tractor_host::wire::ContextOutcome::Returned(v) => text(v),
        other => panic!("{other:?}"),
    };
    let (first, later) = report.split_once('|').unwrap();
    // Running, it is cancelled; still queued in db, it never ran: either
    // way the finder hears who cancelled db.
    assert!(first.starts_with("cancelled: ") || first.starts_with("actor-gone: "), "{report}");
    assert!(first.contains("cancelled by 'tractor-host'"), "{report}");
    assert!(later.starts_with("actor-gone: ") && later.contains("'db'"), "{report}");
    // The finder itself was not cancelled by its peer's end.
    assert_eq!(int(finder.run("add", cbor(&(2, 2))).unwrap().get().await.unwrap()), 4);
    n.wait().await.unwrap();
    assert_no_leftovers(&tree.info.id);
    assert_no_peer_sockets(&tree.info.id);
}
}

/// db in one nursery, and in another a finder holding a call into it
/// (`hold-a-call`, whose context is started once the call is under way).
struct Held {
    owner: Nursery,
    other: Nursery,
    db: tractor_host::Portal,
    finder: tractor_host::Portal,
    ctx: tractor_host::Context,
}

async fn holding(tree: &Tree) -> Held {
    let driver = tree.driver();
    let (owner, other) = (Nursery::open(&driver), Nursery::open(&driver));
    let db = owner.start_actor("db", Some("testbed")).await.unwrap();
    assert!(db.child().wait_ready().await);
    let finder = other.start_actor("finder", Some("testbed")).await.unwrap();
    let (ctx, _) = finder.open_context("hold-a-call", cbor(&("db",)), ("tester", "t-1")).await.unwrap();
    Held { owner, other, db, finder, ctx }
}

each_backend! {
async fn a_found_actor_that_dies_fails_only_the_call_into_it() {
    if !crate::common::backend().is_process() {
        // SIGKILL targets a process; a thread actor shares ours.
        return;
    }
    let tree = discovering(&["*"]);
    // Two nurseries: db's death must not cancel the finder as a sibling.
    let Held { owner, other, db, finder, ctx } = holding(&tree).await;
    // SAFETY: plain kill(2) of a child we have not reaped.
    unsafe { libc::kill(db.info().pid as i32, libc::SIGKILL) };
    let report = match ctx.result().await {
        tractor_host::wire::ContextOutcome::Returned(v) => text(v),
        other => panic!("{other:?}"),
    };
    let (first, later) = report.split_once('|').unwrap();
    assert!(first.starts_with("actor-died: ") && first.contains("'db'"), "{report}");
    assert!(later.starts_with("actor-gone: ") && later.contains("'db'"), "{report}");
    // The holder keeps running; the owner hears of the death.
    assert_eq!(int(finder.run("add", cbor(&(2, 2))).unwrap().get().await.unwrap()), 4);
    db.child().wait_exited().await;
    let e = owner.wait().await.unwrap_err();
    assert!(e.walk().iter().any(|x| x.actor_name == "db" && x.kind == ErrorKind::ActorDied), "{e}");
    other.wait().await.unwrap();
    assert_no_leftovers(&tree.info.id);
    assert_no_peer_sockets(&tree.info.id);
}
}

each_backend! {
async fn a_finder_that_dies_has_its_calls_cancelled() {
    if !crate::common::backend().is_process() {
        return;
    }
    let tree = discovering(&["*"]);
    // Two nurseries: the finder's death must not cancel db as a sibling.
    let Held { owner, other, db, finder, ctx } = holding(&tree).await;
    // SAFETY: plain kill(2) of a child we have not reaped.
    unsafe { libc::kill(finder.info().pid as i32, libc::SIGKILL) };
    drop(ctx);
    // db serves one call at a time: it answers only if the dead finder's
    // `sleep-forever` was cancelled when its link closed.
    assert_eq!(int(db.run("add", cbor(&(3, 4))).unwrap().get().await.unwrap()), 7);
    finder.child().wait_exited().await;
    let e = other.wait().await.unwrap_err();
    assert!(e.walk().iter().any(|x| x.actor_name == "finder"), "{e}");
    owner.wait().await.unwrap();
    assert_no_leftovers(&tree.info.id);
    assert_no_peer_sockets(&tree.info.id);
}
}

each_backend! {
async fn lookups_need_a_discover_grant_and_a_child_gets_no_more_than_its_spawner() {
    let mut tree = discovering(&["worker*"]);
    let mut wide = tree.info.components.iter().find(|c| c.name == "testbed").unwrap().clone();
    wide.name = "wide".into();
    wide.grants.discover = vec!["*".into()];
    tree.info.components.push(wide);
    let n = Nursery::open(&tree.driver());
    let db = n.start_actor("db", Some("testbed")).await.unwrap();
    assert!(db.child().wait_ready().await);
    let finder = n.start_actor("worker-1", Some("testbed")).await.unwrap();
    let e = finder.run("find-info", cbor(&("db",))).unwrap().get().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Denied, "{e}");
    assert!(e.message.contains("`db`") && e.message.contains("worker*"), "{e}");
    // What the grant covers is found (itself excluded: none).
    let me: Option<(String, bool)> =
        finder.run("find-info", cbor(&("worker-1",))).unwrap().get().await.unwrap().deserialized().unwrap();
    assert_eq!(me, None);
    let how = text(finder.run("spawn-of", cbor(&("wide",))).unwrap().get().await.unwrap());
    assert!(how.starts_with("denied: ") && how.contains("discover *"), "{how}");
    n.wait().await.unwrap();
    assert_no_leftovers(&tree.info.id);
}
}

each_backend! {
async fn the_registry_follows_the_live_tree() {
    let tree = discovering(&["*"]);
    let driver = tree.driver();
    let n = Nursery::open(&driver);
    // branch -> leaf1, leaf2 (they wait to be cancelled).
    n.run_in_actor("branch", Some("testbed"), "leaves", cbor(&("leaf", 2, 0, true))).await.unwrap();
    // Registration is an event the driver can wait on: each leaf's.
    for name in ["branch", "leaf1", "leaf2"] {
        driver.wait_for_actor(name).await.unwrap();
    }
    let entries = driver.registry().await.unwrap();
    let branch = entries.iter().find(|e| e.name == "branch").unwrap();
    assert_eq!(branch.parent_uid, "", "the driver's child is a root");
    for leaf in entries.iter().filter(|e| e.name.starts_with("leaf")) {
        assert_eq!(leaf.parent_uid, branch.uid, "{leaf:?}");
        assert!(leaf.token.is_empty(), "a listing hands out no token");
    }
    n.cancel().await;
    let _ = n.wait().await;
    assert_eq!(driver.registry().await.unwrap(), [], "the whole subtree left with its reaping");
    assert_no_leftovers(&tree.info.id);
    assert_no_peer_sockets(&tree.info.id);
}
}

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

each_backend! {
serial async fn thousands_of_finds_leak_no_descriptor() {
    let tree = discovering(&["*"]);
    let driver = tree.driver();
    let n = Nursery::open(&driver);
    let db = n.start_actor("db", Some("testbed")).await.unwrap();
    assert!(db.child().wait_ready().await);
    let me = std::process::id();
    let (mine, theirs) = (fds(me), fds(db.info().pid));
    for i in 0..2000 {
        // Each portal is dropped at once: every find makes a new link.
        let peer = driver.find_actor("db").await.unwrap().expect("db is registered");
        assert_eq!(int(peer.run("add", cbor(&(i, 1))).unwrap().get().await.unwrap()), i + 1);
    }
    // Closed links are reaped asynchronously on both sides: wait for it.
    eventually("the driver's descriptors are back", || fds(me) <= mine).await;
    eventually("db's descriptors are back", || fds(db.info().pid) <= theirs).await;
    n.wait().await.unwrap();
    assert_no_leftovers(&tree.info.id);
    assert_no_peer_sockets(&tree.info.id);
}
}
