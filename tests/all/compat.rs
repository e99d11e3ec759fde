//! Compatibility: a guest built against an earlier WIT version, kept as a
//! binary (`tests/fixtures/testbed-0.1.0.wasm`, never rebuilt), keeps
//! linking and running on today's host: calls, spawning children of its
//! own, contexts and streams.

use crate::common::{self, assert_no_leftovers, cbor};
use tractor_host::wire::ContextOutcome;
use tractor_host::{Manifest, Nursery, Tree};

fn old_testbed() -> Tree {
    static TREE: std::sync::OnceLock<Tree> = std::sync::OnceLock::new();
    let t = TREE.get_or_init(|| {
        let dir = tempdir();
        let wasm = common::repo().join("tests/fixtures/testbed-0.1.0.wasm");
        let text = format!(
            "[root]\ncomponent = \"testbed\"\nfunc = \"add\"\nargs = [1, 2]\n\n[component.testbed]\nsource = {:?}\n",
            wasm.display().to_string()
        );
        let m = Manifest::parse(&text, &dir.join("tractor.toml")).expect("manifest");
        Tree::prepare(&m, common::host_exe()).expect("the 0.1.0 guest loads")
    });
    let mut t = t.clone();
    t.info.id = tractor_host::spawn::new_uid();
    t.force_backend(common::backend());
    t
}

fn tempdir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("tractor-compat-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

each_backend! {
async fn a_guest_built_against_0_1_0_still_links_and_runs() {
    let tree = old_testbed();
    let n = Nursery::open(&tree.driver());
    let p = n.start_actor("old", Some("testbed")).await.unwrap();
    assert_eq!(p.run("add", cbor(&(2, 3))).unwrap().get().await.unwrap(), cbor(&5));
    // It spawns children of its own through the 0.1.0 nursery imports.
    assert_eq!(p.run("fan-out", cbor(&[3])).unwrap().get().await.unwrap(), cbor(&6u64));
    // And serves a context with a stream.
    let (ctx, first) = p.open_context("echo-ctx", cbor(&[41]), ("tester", "t-1")).await.unwrap();
    let first: i64 = ciborium::from_reader(&first[..]).unwrap();
    assert_eq!(first, 42);
    let mut s = ctx.open_stream().unwrap();
    let mut msg = Vec::new();
    ciborium::into_writer(&"hello", &mut msg).unwrap();
    s.core().send(msg.clone()).await.unwrap();
    assert_eq!(s.recv().await.unwrap(), Some(msg));
    s.core().close();
    assert_eq!(ctx.result().await, ContextOutcome::Returned(cbor(&1)));
    n.wait().await.unwrap();
    assert_no_leftovers(&tree.info.id);
}
}
