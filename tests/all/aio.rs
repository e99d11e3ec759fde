//! Async actors (`tractor:actor@0.2.0`): one instance per actor, every call
//! and context a concurrent task on it, sharing its state. Real processes,
//! the real async testbed component built from source.

use crate::common::{assert_no_leftovers, cbor, testbed, testbed_async};
use ciborium::Value;
use futures::FutureExt;
use tractor_host::wire::ContextOutcome;
use tractor_host::{ErrorKind, Model, Nursery};

fn none() -> Value {
    Value::Array(vec![])
}

fn u64_of(v: Value) -> u64 {
    v.deserialized().unwrap()
}

#[test]
fn the_model_is_read_from_the_component() {
    let model = |t: &tractor_host::Tree, name: &str| t.info.components.iter().find(|c| c.name == name).unwrap().model;
    assert_eq!(model(&testbed_async(), "testbed-async"), Model::Async);
    assert_eq!(model(&testbed(), "testbed"), Model::Sync);
}

each_backend! {
async fn a_thousand_concurrent_calls_share_one_instance() {
    let tree = testbed_async();
    let n = Nursery::open(&tree.driver());
    let p = n.start_actor("counter", Some("testbed-async")).await.unwrap();
    let calls: Vec<_> = (0..1000).map(|_| p.run("incr", none()).unwrap().get()).collect();
    let mut seen: Vec<u64> = futures::future::join_all(calls).await.into_iter().map(|r| u64_of(r.unwrap())).collect();
    seen.sort();
    // One counter: every call saw the others' increments.
    assert_eq!(seen, (1..=1000).collect::<Vec<_>>());
    assert_eq!(u64_of(p.run("get", none()).unwrap().get().await.unwrap()), 1000);
    n.wait().await.unwrap();
    assert_no_leftovers(&tree.info.id);
}
}

each_backend! {
async fn a_context_sees_the_state_the_calls_change() {
    let tree = testbed_async();
    let n = Nursery::open(&tree.driver());
    let p = n.start_actor("feed", Some("testbed-async")).await.unwrap();
    let (ctx, first) = p.open_context("watch", cbor(&[200u64]), ("tester", "t-1")).await.unwrap();
    let first: u64 = ciborium::from_reader(&first[..]).unwrap();
    assert_eq!(first, 0);
    let mut s = ctx.open_stream().unwrap();
    let writers: Vec<_> = (0..200).map(|_| p.run("incr", none()).unwrap().get()).collect();
    for r in futures::future::join_all(writers).await {
        r.unwrap();
    }
    let mut last = 0;
    while let Some(b) = s.recv().await.unwrap() {
        let v: u64 = ciborium::from_reader(&b[..]).unwrap();
        assert!(v > last, "values must only grow: {v} after {last}");
        last = v;
    }
    assert_eq!(last, 200);
    let ContextOutcome::Returned(sent) = ctx.result().await else { panic!("watch did not return") };
    assert!(u64_of(sent) >= 1);
    n.wait().await.unwrap();
    assert_no_leftovers(&tree.info.id);
}
}

each_backend! {
async fn a_slow_call_does_not_hold_up_a_fast_one() {
    let tree = testbed_async();
    let n = Nursery::open(&tree.driver());
    let p = n.start_actor("server", Some("testbed-async")).await.unwrap();
    let mut slow = Box::pin(p.run("slow", cbor(&[60_000u32])).unwrap().get());
    // The slow call is running (sleeping) on the instance; a fast one is
    // answered meanwhile.
    assert!((&mut slow).now_or_never().is_none());
    assert_eq!(u64_of(p.run("incr", none()).unwrap().get().await.unwrap()), 1);
    assert!((&mut slow).now_or_never().is_none(), "the slow call cannot have finished");
    // Cancelling it (dropping the call) ends that task alone: the state and
    // the other tasks carry on.
    drop(slow);
    assert_eq!(u64_of(p.run("incr", none()).unwrap().get().await.unwrap()), 2);
    let e = p.run("fail", cbor(&["no"])).unwrap().get().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Guest, "{e}");
    assert_eq!(u64_of(p.run("get", none()).unwrap().get().await.unwrap()), 2);
    n.wait().await.unwrap();
    assert_no_leftovers(&tree.info.id);
}
}

each_backend! {
async fn an_async_actor_spawns_and_calls_children_concurrently() {
    let tree = testbed_async();
    let n = Nursery::open(&tree.driver());
    let p = n.run_in_actor("fan", Some("testbed-async"), "fan-out", cbor(&[3u32])).await.unwrap();
    // Three children, ten increments each at once: 1..=10 per child.
    assert_eq!(u64_of(p.result().await.unwrap()), 3 * 55);
    n.wait().await.unwrap();
    assert_no_leftovers(&tree.info.id);
}
}

each_backend! {
async fn a_task_that_never_yields_fails_the_actor_by_name() {
    let tree = testbed_async();
    let n = Nursery::open(&tree.driver());
    let p = n.start_actor("spinner", Some("testbed-async")).await.unwrap();
    // `started` says it runs; it then spins.
    let (spin, _) = p.open_context("spin", none(), ("tester", "t-1")).await.unwrap();
    // Cancel it: it never reaches a checkpoint, and one task of an
    // instance cannot be stopped alone, so the actor fails naming it.
    let queued = p.run("get", none()).unwrap();
    spin.cancel(None);
    // A call queued behind it is answered with the actor's failure.
    let e = queued.get().await.unwrap_err();
    assert!(e.to_string().contains("task `spin` did not yield"), "{e}");
    let e = n.wait().await.unwrap_err();
    assert!(e.to_string().contains("task `spin` did not yield"), "{e}");
    assert_no_leftovers(&tree.info.id);
}
}

each_backend! {
async fn a_trapping_task_fails_the_whole_actor() {
    let tree = testbed_async();
    let n = Nursery::open(&tree.driver());
    let p = n.start_actor("trapper", Some("testbed-async")).await.unwrap();
    assert_eq!(u64_of(p.run("incr", none()).unwrap().get().await.unwrap()), 1);
    let e = p.run("trap", none()).unwrap().get().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Trap, "{e}");
    // The instance is gone: the actor as a whole has failed.
    let e = n.wait().await.unwrap_err();
    assert!(e.to_string().contains("unreachable"), "{e}");
    assert_no_leftovers(&tree.info.id);
}
}

/// A tree holding both testbeds: the sync one (0.1.0) and the async one.
fn mixed() -> tractor_host::Tree {
    static TREE: std::sync::OnceLock<tractor_host::Tree> = std::sync::OnceLock::new();
    let t = TREE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("tractor-mixed-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (sync, asynch) = (testbed(), testbed_async());
        let path = |t: &tractor_host::Tree| t.manifest.components.values().next().unwrap().source.display().to_string();
        let text = format!(
            "[root]\ncomponent = \"testbed-async\"\nfunc = \"get\"\n\n\
             [component.testbed]\nsource = {:?}\n\n[component.testbed-async]\nsource = {:?}\n\n\
             [component.testbed-async.grants]\ndiscover = [\"sync\"]\n",
            path(&sync),
            path(&asynch)
        );
        let m = tractor_host::Manifest::parse(&text, &dir.join("tractor.toml")).expect("manifest");
        tractor_host::Tree::prepare(&m, crate::common::host_exe()).expect("both load")
    });
    let mut t = t.clone();
    t.info.id = tractor_host::spawn::new_uid();
    t.force_backend(crate::common::backend());
    t
}

each_backend! {
async fn sync_and_async_actors_interoperate_in_one_tree() {
    let tree = mixed();
    let n = Nursery::open(&tree.driver());
    let p = n.start_actor("async", Some("testbed-async")).await.unwrap();
    // An async actor spawns and calls a sync child, and an async one.
    assert_eq!(p.run("add-via", cbor(&("testbed", 2, 3))).unwrap().get().await.unwrap(), cbor(&5));
    assert_eq!(p.run("add-via", cbor(&("testbed-async", 4, 5))).unwrap().get().await.unwrap(), cbor(&9));
    // A sync actor next to it, driven the same way.
    let s = n.start_actor("sync", Some("testbed")).await.unwrap();
    assert_eq!(s.run("add", cbor(&(1, 1))).unwrap().get().await.unwrap(), cbor(&2));
    // The async actor finds the sync one by name (discovery@0.2.0) and
    // calls it over a peer link.
    assert_eq!(p.run("find-and-add", cbor(&("sync", 3, 4))).unwrap().get().await.unwrap(), cbor(&(7, false)));
    n.wait().await.unwrap();
    assert_no_leftovers(&tree.info.id);
}
}
