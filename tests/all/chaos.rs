//! The chaos suite: signals to the root, kills inside the tree, guests that
//! trap, spin or ignore cancellation, and many spawn/cancel cycles. After
//! each case the outcome is the documented one, no actor process of the
//! tree is left, and the driving process holds no more file descriptors
//! than before.

use crate::common;
use crate::common::{assert_no_leftovers, assert_tree_gone_within, cbor, daemon_tree, testbed, tree_processes};
use ciborium::Value;
use std::process::Child;
use std::time::{Duration, Instant};
use tractor_host::spawn::Backend;
use tractor_host::wire::ContextOutcome;
use tractor_host::ErrorKind;
use tractor_host::Nursery;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// The fd count once the process-wide pieces a first spawn creates (tokio's
/// child-signal pipe) exist: a spawn and cancel, then a count.
async fn settled_fds(tree: &tractor_host::Tree) -> usize {
    let n = Nursery::open(&tree.driver());
    let p = n.start_actor("warm-up", Some("testbed")).await.unwrap();
    p.cancel_actor("chaos").await.unwrap();
    n.wait().await.unwrap();
    open_fds()
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: plain kill(2).
    assert_eq!(unsafe { libc::kill(pid as i32, sig) }, 0);
}

fn stderr_of(child: &mut Child) -> String {
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    err
}

#[test]
fn sigkill_of_the_root_takes_the_whole_tree() {
    let _serial = common::serial();
    for backend in Backend::ALL {
        let (mut root, id) = daemon_tree(backend);
        signal(root.id(), libc::SIGKILL);
        root.wait().unwrap();
        let took = assert_tree_gone_within(&id, Duration::from_secs(1));
        eprintln!("daemon_tree ({backend}) gone {took:?} after SIGKILL of the root");
    }
}

#[test]
fn sigkill_of_the_zygote_takes_every_forked_actor() {
    let _serial = common::serial();
    let (mut root, id) = daemon_tree(Backend::Forkserver);
    signal(common::zygotes(&id)[0], libc::SIGKILL);
    let status = root.wait().unwrap();
    let err = stderr_of(&mut root);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("died"), "{err}");
    assert_tree_gone_within(&id, Duration::from_secs(1));
}

#[test]
fn sigterm_and_sigint_tear_the_tree_down_in_order() {
    let _serial = common::serial();
    for (sig, code, backend) in [
        (libc::SIGTERM, 143, Backend::Exec),
        (libc::SIGINT, 130, Backend::Exec),
        (libc::SIGTERM, 143, Backend::Forkserver),
        (libc::SIGINT, 130, Backend::Thread),
    ] {
        let (mut root, id) = daemon_tree(backend);
        let start = Instant::now();
        signal(root.id(), sig);
        assert_eq!(root.wait().unwrap().code(), Some(code));
        eprintln!("daemon_tree torn down in {:?} after signal {sig}", start.elapsed());
        let err = stderr_of(&mut root);
        // Orderly: nobody had to be killed.
        assert!(!err.contains("SIGKILL") && !err.contains("sending SIGTERM"), "{err}");
        common::assert_all_gone(&id);
    }
}

#[test]
fn sigkill_of_an_inner_actor_is_a_remote_error_and_the_tree_goes() {
    let _serial = common::serial();
    let (mut root, id) = daemon_tree(Backend::Exec);
    let pids = tree_processes(&id);
    // Any actor but the root actor (the host is the parent of the root).
    let root_actor = pids.iter().copied().find(|p| parent_of(*p) == root.id()).unwrap();
    let inner: Vec<u32> = pids.iter().copied().filter(|p| *p != root.id() && *p != root_actor).collect();
    let victim = inner[(std::process::id() as usize) % inner.len()];
    let name = actor_name(victim);
    signal(victim, libc::SIGKILL);
    let status = root.wait().unwrap();
    let err = stderr_of(&mut root);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("actor '{name}' died: killed by signal 9")), "{err}");
    common::assert_all_gone(&id);
}

fn parent_of(pid: u32) -> u32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit(')').next().and_then(|r| r.split_whitespace().nth(1)).and_then(|p| p.parse().ok()).unwrap_or(0)
}

/// The name `daemon_tree` gave the actor process `pid`, from its place in
/// the process tree (siblings start in name order, so pids grow with it).
fn actor_name(pid: u32) -> String {
    let parent = parent_of(pid);
    let siblings: Vec<u32> = sorted_children(parent);
    let index = siblings.iter().position(|p| *p == pid).unwrap();
    if sorted_children(parent_of(parent)).len() == 1 {
        // Our parent is the root actor (its own parent, tractor-host, has one child).
        format!("branch_{index}")
    } else {
        let parent_index = sorted_children(parent_of(parent)).iter().position(|p| *p == parent).unwrap();
        format!("branch_{parent_index}.leaf_{index}")
    }
}

/// Children of `pid`, in spawn order (pids grow in this test's lifetime).
fn sorted_children(pid: u32) -> Vec<u32> {
    let mut kids: Vec<u32> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|p| parent_of(*p) == pid)
        .collect();
    kids.sort();
    kids
}

each_backend! {
serial async fn a_trap_mid_stream_fails_only_that_context() {
    let tree = testbed();
    let fds = settled_fds(&tree).await;
    let n = Nursery::open(&tree.driver());
    let p = n.start_actor("streamer", Some("testbed")).await.unwrap();
    let (ctx, _) = p.open_context("trap-mid-stream", cbor(&[3]), ("chaos", "c")).await.unwrap();
    let mut s = ctx.open_stream().unwrap();
    for _ in 0..3 {
        assert!(s.recv().await.unwrap().is_some());
    }
    let e = s.recv().await.unwrap_err();
    assert_eq!((e.kind, e.actor_name.as_str()), (ErrorKind::Trap, "streamer"), "{e}");
    assert!(matches!(ctx.result().await, ContextOutcome::Failed(f) if f.kind == ErrorKind::Trap));
    // The context had an instance of its own: the actor still serves.
    assert_eq!(p.run("add", cbor(&(1, 1))).unwrap().get().await.unwrap(), cbor(&2));
    drop((s, ctx));
    n.wait().await.unwrap();
    assert_no_leftovers(&tree.info.id);
    let now = open_fds();
    assert!(now <= fds, "file descriptors leaked: {now} open, {fds} before");
}
}

each_backend! {
serial async fn a_timeout_cancels_the_remote_call_even_in_a_spinning_guest() {
    let tree = testbed();
    let fds = settled_fds(&tree).await;
    let n = Nursery::open(&tree.driver());
    let p = n.start_actor("worker", Some("testbed")).await.unwrap();
    for func in ["sleep-forever", "spin"] {
        let call = p.run(func, Value::Array(vec![])).unwrap();
        assert!(tokio::time::timeout(Duration::from_millis(100), call.get()).await.is_err());
        // Had the call kept running, this would queue behind it forever.
        let add = p.run("add", cbor(&(2, 3))).unwrap().get();
        let sum = tokio::time::timeout(Duration::from_secs(10), add).await.expect("the remote call was not cancelled");
        assert_eq!(sum.unwrap(), cbor(&5), "after cancelling {func}");
    }
    n.wait().await.unwrap();
    assert_no_leftovers(&tree.info.id);
    let now = open_fds();
    assert!(now <= fds, "file descriptors leaked: {now} open, {fds} before");
}
}

each_backend! {
serial async fn guest_timeouts_cancel_remote_calls_and_nurseries() {
    let tree = testbed();
    let n = Nursery::open(&tree.driver());
    let start = Instant::now();
    let p = n.run_in_actor("caller", Some("testbed"), "call-with-timeout", cbor(&[100])).await.unwrap();
    let msg = format!("{:?}", p.result().await.unwrap());
    assert!(msg.contains("Cancelled") && msg.contains("deadline") && msg.contains("add = 3"), "{msg}");
    let p = n.run_in_actor("keeper", Some("testbed"), "nursery-with-timeout", cbor(&[100])).await.unwrap();
    let msg = format!("{:?}", p.result().await.unwrap());
    assert!(msg.contains("Cancelled") && msg.contains("deadline"), "{msg}");
    n.wait().await.unwrap();
    assert!(start.elapsed() < Duration::from_secs(10), "{:?}", start.elapsed());
    assert_no_leftovers(&tree.info.id);
}
}

each_backend! {
serial async fn cancelling_a_spinning_or_blocked_actor_is_prompt() {
    let tree = testbed();
    let n = Nursery::open(&tree.driver());
    for func in ["spin", "sleep-forever"] {
        let p = n.start_actor(func, Some("testbed")).await.unwrap();
        let call = p.run(func, Value::Array(vec![])).unwrap();
        let start = Instant::now();
        p.cancel_actor("chaos").await.unwrap();
        let took = start.elapsed();
        eprintln!("cancel -> exit of a {func} guest: {took:?}");
        assert!(took < Duration::from_secs(1), "{func}: {took:?}");
        let e = call.get().await.unwrap_err();
        assert!(e.is_cancelled() || e.kind == ErrorKind::ActorGone, "{e}");
    }
    n.wait().await.unwrap();
    assert_no_leftovers(&tree.info.id);
}
}

each_backend! {
serial async fn an_actor_that_cannot_comply_is_killed_after_the_grace_period() {
    if !common::backend().is_process() {
        // SIGSTOP freezes a process; a thread actor shares ours.
        return;
    }
    let mut tree = testbed();
    tree.info.grace = Duration::from_millis(200);
    let n = Nursery::open(&tree.driver());
    let p = n.start_actor("frozen", Some("testbed")).await.unwrap();
    // Make sure it is up, then freeze it: it can no longer react to anything.
    assert_eq!(p.run("add", cbor(&(1, 1))).unwrap().get().await.unwrap(), cbor(&2));
    signal(p.info().pid, libc::SIGSTOP);
    let start = Instant::now();
    p.cancel_actor("chaos").await.unwrap();
    let took = start.elapsed();
    let e = p.run("add", cbor(&(1, 1))).unwrap_err();
    assert_eq!(e.kind, ErrorKind::ActorGone, "{e}");
    assert!(e.message.contains("killed with SIGKILL after the 200ms grace period"), "{e}");
    // grace, then SIGTERM (pending on a stopped process), then SIGKILL.
    assert!(took >= Duration::from_millis(200) && took < Duration::from_secs(3), "{took:?}");
    n.wait().await.unwrap();
    assert_no_leftovers(&tree.info.id);
}
}

each_backend! {
serial async fn two_hundred_spawn_and_cancel_cycles_leak_nothing() {
    let tree = testbed();
    let ctx = tree.driver();
    let fds = settled_fds(&tree).await;
    let start = Instant::now();
    for i in 0..200 {
        let n = Nursery::open(&ctx);
        let p = n.start_actor(&format!("cycle_{i}"), Some("testbed")).await.unwrap();
        p.cancel_actor("chaos").await.unwrap();
        n.wait().await.unwrap();
    }
    eprintln!("200 spawn+cancel cycles: {:?}", start.elapsed());
    assert_eq!(common::tree_actors(&tree.info.id), 0);
    let now = open_fds();
    assert!(now <= fds, "file descriptors leaked: {now} open, {fds} before");
}
}
