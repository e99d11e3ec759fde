//! Limits: memory, CPU time per call, children and depth, each ending the
//! offending actor (or spawn) with a `limit` error naming it, while the rest
//! of the tree carries on.

mod common;

use ciborium::Value;
use common::{assert_no_leftovers, cbor, host_exe, testbed};
use tractor_host::manifest::Manifest;
use tractor_host::nursery::Nursery;
use tractor_host::tree::Tree;
use tractor_host::ErrorKind;

/// The testbed component under a manifest with extra `[tree]` and
/// `[component.testbed.limits]` settings.
fn limited(tree_table: &str, limits: &str) -> Tree {
    let source = testbed().manifest.components["testbed"].source.clone();
    let dir =
        std::env::temp_dir().join(format!("tractor-limits-{}", tractor_host::spawn::new_uid()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = format!(
        "[root]\ncomponent = \"testbed\"\n\n[tree]\n{tree_table}\n\n[component.testbed]\nsource = \"{}\"\n\n[component.testbed.limits]\n{limits}\n",
        source.display()
    );
    std::fs::write(dir.join("tractor.toml"), text).unwrap();
    let mut tree = Tree::prepare(&Manifest::load(&dir).unwrap(), host_exe()).unwrap();
    tree.info.id = tractor_host::spawn::new_uid();
    tree
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_beyond_the_limit_ends_that_actor_only() {
    let tree = limited("", "memory = \"48MiB\"");
    let ctx = tree.driver();
    // Another nursery's actor: the limit must not touch it.
    let others = Nursery::open(&ctx);
    let calm = others.start_actor("calm", Some("testbed")).await.unwrap();
    let n = Nursery::open(&ctx);
    let p = n
        .run_in_actor("hog", Some("testbed"), "hog", cbor(&[8]))
        .await
        .unwrap();
    assert_eq!(p.result().await.unwrap(), cbor(&(8u64 << 20)));
    let p = n
        .run_in_actor("glutton", Some("testbed"), "hog", cbor(&[200]))
        .await
        .unwrap();
    let e = p.result().await.unwrap_err();
    assert_eq!(
        (e.kind, e.actor_name.as_str()),
        (ErrorKind::Limit, "glutton"),
        "{e}"
    );
    assert!(e.message.contains("memory limit of 48MiB exceeded"), "{e}");
    let w = n.wait().await.unwrap_err();
    assert_eq!(w.kind, ErrorKind::Limit);
    assert_eq!(
        calm.run("add", cbor(&(1, 2))).unwrap().get().await.unwrap(),
        cbor(&3)
    );
    others.wait().await.unwrap();
    assert_no_leftovers(&tree.info.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_over_its_cpu_budget_is_stopped() {
    let tree = limited("", "cpu-per-call = \"200ms\"");
    let n = Nursery::open(&tree.driver());
    let p = n
        .run_in_actor("spinner", Some("testbed"), "spin", Value::Array(vec![]))
        .await
        .unwrap();
    let e = p.result().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Limit, "{e}");
    assert!(
        e.message.contains("cpu-per-call limit of 200ms exceeded"),
        "{e}"
    );
    let _ = n.wait().await;
    assert_no_leftovers(&tree.info.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbounded_recursion_traps_on_the_stack_limit() {
    let tree = testbed();
    let n = Nursery::open(&tree.driver());
    let p = n
        .run_in_actor("deep", Some("testbed"), "recurse", cbor(&[0]))
        .await
        .unwrap();
    let e = p.result().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Trap, "{e}");
    assert!(e.message.contains("call stack exhausted"), "{e}");
    let _ = n.wait().await;
    assert_no_leftovers(&tree.info.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_and_depth_limits_refuse_the_spawn() {
    let tree = limited("max-depth = 2", "children = 2");
    let n = Nursery::open(&tree.driver());
    let p = n
        .run_in_actor("parent", Some("testbed"), "spawn-many", cbor(&[3]))
        .await
        .unwrap();
    let e = p.result().await.unwrap_err();
    assert_eq!(
        (e.kind, e.actor_name.as_str()),
        (ErrorKind::Limit, "parent"),
        "{e}"
    );
    assert!(e.message.contains("children limit of 2 exceeded"), "{e}");
    let _ = n.wait().await;
    // A fresh nursery: the failure above cancelled the first one.
    let n = Nursery::open(&tree.driver());
    let p = n
        .run_in_actor("top", Some("testbed"), "nest", cbor(&(5, false)))
        .await
        .unwrap();
    let e = p.result().await.unwrap_err();
    let limit = e
        .walk()
        .into_iter()
        .find(|x| x.kind == ErrorKind::Limit)
        .cloned();
    let limit = limit.unwrap_or_else(|| panic!("no limit error in {e}"));
    assert!(
        limit.message.contains("max-depth limit of 2 exceeded"),
        "{limit}"
    );
    let _ = n.wait().await;
    assert_no_leftovers(&tree.info.id);
}
