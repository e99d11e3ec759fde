//! 2-way contexts and streams through real actor processes, driven from the
//! native API (the testbed component is the callee).

use crate::common::{assert_no_leftovers, cbor, testbed};
use serde::{de::DeserializeOwned, Serialize};
use std::time::Duration;
use tractor_host::wire::ContextOutcome;
use tractor_host::{Context, Nursery, Portal};
use tractor_host::{ErrorKind, RemoteError};
use tractor_host::{Receiver, WINDOW};

const ME: (&str, &str) = ("tester", "t-1");

fn enc<T: Serialize + ?Sized>(v: &T) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).unwrap();
    out
}

fn dec<T: DeserializeOwned>(b: &[u8]) -> T {
    ciborium::from_reader(b).unwrap()
}

async fn send<T: Serialize + ?Sized>(s: &Receiver, v: &T) -> Result<(), RemoteError> {
    s.core().send(enc(v)).await
}

async fn recv<T: DeserializeOwned>(s: &mut Receiver) -> Result<Option<T>, RemoteError> {
    Ok(s.recv().await?.map(|b| dec(&b)))
}

async fn open(p: &Portal, func: &str, args: ciborium::Value) -> Result<(Context, Vec<u8>), RemoteError> {
    p.open_context(func, args, ME).await
}

async fn daemon(name: &str) -> (tractor_host::Tree, Nursery, Portal) {
    let tree = testbed();
    let n = Nursery::open(&tree.driver());
    let p = n.start_actor(name, Some("testbed")).await.unwrap();
    (tree, n, p)
}

each_backend! {
async fn started_value_then_echo_until_the_caller_closes() {
    let (tree, n, p) = daemon("echo").await;
    let (ctx, first) = open(&p, "echo-ctx", cbor(&[41])).await.unwrap();
    assert_eq!(dec::<i64>(&first), 42);
    let mut s = ctx.open_stream().unwrap();
    for i in 0..3 {
        send(&s, &format!("msg {i}")).await.unwrap();
        assert_eq!(recv::<String>(&mut s).await.unwrap().unwrap(), format!("msg {i}"));
    }
    // Closing our end ends the callee's receive loop; it still returns.
    s.core().close();
    assert_eq!(ctx.result().await, ContextOutcome::Returned(cbor(&3)));
    let e = send(&s, &1).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Closed, "{e}");
    n.wait().await.unwrap();
    assert_no_leftovers(&tree.info.id);
}
}

each_backend! {
async fn closing_a_stream_is_a_half_close() {
    // The caller sends everything and closes at once; the callee still
    // answers each message after it has seen the close arrive.
    let (tree, n, p) = daemon("echo").await;
    let (ctx, _) = open(&p, "echo-ctx", cbor(&[0])).await.unwrap();
    let mut s = ctx.open_stream().unwrap();
    for i in 0..200u32 {
        send(&s, &i).await.unwrap();
    }
    s.core().close();
    for i in 0..200u32 {
        assert_eq!(recv::<u32>(&mut s).await.unwrap(), Some(i));
    }
    assert_eq!(recv::<u32>(&mut s).await.unwrap(), None);
    assert_eq!(ctx.result().await, ContextOutcome::Returned(cbor(&200)));
    n.wait().await.unwrap();
    assert_no_leftovers(&tree.info.id);
}
}

each_backend! {
async fn misuse_in_the_callee_is_a_remote_error_for_the_caller() {
    let (tree, n, p) = daemon("misuser").await;
    let (ctx, first) = open(&p, "started-twice", cbor(&())).await.unwrap();
    assert_eq!(dec::<i64>(&first), 1);
    let ContextOutcome::Failed(e) = ctx.result().await else { panic!("started twice did not fail") };
    assert!(e.message.contains("`started` was called twice"), "{e}");
    assert_eq!(e.actor_name, "misuser");

    let e = open(&p, "stream-before-started", cbor(&())).await.unwrap_err();
    assert!(e.message.contains("before `started`"), "{e}");
    assert_eq!(e.actor_name, "misuser");

    // Context functions are not plain calls, and the reverse.
    let e = p.run("echo-ctx", cbor(&[1])).unwrap().get().await.unwrap_err();
    assert!(e.message.contains("takes a context"), "{e}");
    let e = open(&p, "add", cbor(&(1, 2))).await.unwrap_err();
    assert!(e.message.contains("does not take a context"), "{e}");
    n.wait().await.unwrap();
    assert_no_leftovers(&tree.info.id);
}
}

each_backend! {
async fn the_callee_closing_ends_the_callers_loop() {
    let (tree, n, p) = daemon("producer").await;
    let (ctx, _) = open(&p, "produce", cbor(&[5])).await.unwrap();
    let mut s = ctx.open_stream().unwrap();
    send(&s, "go").await.unwrap();
    let mut got = Vec::new();
    while let Some(x) = recv::<u32>(&mut s).await.unwrap() {
        got.push(x);
    }
    assert_eq!(got, vec![0, 1, 2, 3, 4]);
    assert_eq!(ctx.result().await, ContextOutcome::Returned(cbor(&5)));
    let e = send(&s, &1).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Closed, "{e}");
    n.wait().await.unwrap();
    assert_no_leftovers(&tree.info.id);
}
}

each_backend! {
async fn an_error_mid_stream_reaches_the_caller_in_order() {
    let (tree, n, p) = daemon("flaky").await;
    let (ctx, _) = open(&p, "fail-mid-stream", cbor(&[3])).await.unwrap();
    let mut s = ctx.open_stream().unwrap();
    for i in 0..3u32 {
        assert_eq!(recv::<u32>(&mut s).await.unwrap(), Some(i));
    }
    let e = recv::<u32>(&mut s).await.unwrap_err();
    assert_eq!((e.actor_name.as_str(), e.message.as_str()), ("flaky", "failed mid-stream"), "{e}");
    assert!(matches!(ctx.result().await, ContextOutcome::Failed(f) if f == e));
    n.wait().await.unwrap();
    assert_no_leftovers(&tree.info.id);
}
}

each_backend! {
async fn a_caller_failure_reaches_the_callee_as_a_remote_error() {
    let (tree, n, p) = daemon("echo").await;
    let (ctx, _) = open(&p, "echo-ctx", cbor(&[0])).await.unwrap();
    let _s = ctx.open_stream().unwrap();
    let boom = RemoteError::new(ErrorKind::Guest, "caller exploded").with_actor(ME.0, ME.1);
    ctx.cancel(Some(boom.clone()));
    // The callee was blocked in receive: it got our error and let it
    // propagate, which ends the context as cancelled by us, not as a
    // failure of its own.
    assert_eq!(ctx.result().await, ContextOutcome::Cancelled { by: ME.0.into() });
    // One that looks at the error sees ours.
    let (ctx, _) = open(&p, "why-cancelled", cbor(&())).await.unwrap();
    ctx.cancel(Some(boom));
    assert_eq!(ctx.result().await, ContextOutcome::Returned(cbor(&"guest: caller exploded")));
    n.wait().await.unwrap();
    assert_no_leftovers(&tree.info.id);
}
}

each_backend! {
async fn cancellation_is_an_outcome_naming_who_cancelled() {
    let (tree, n, p) = daemon("sleepy").await;
    let (ctx, _) = open(&p, "wait-for-cancel", cbor(&())).await.unwrap();
    ctx.cancel(None);
    assert_eq!(ctx.result().await, ContextOutcome::Cancelled { by: ME.0.into() });

    let (ctx, _) = open(&p, "cancel-self", cbor(&())).await.unwrap();
    assert_eq!(ctx.result().await, ContextOutcome::Cancelled { by: "sleepy".into() });
    n.wait().await.unwrap();
    assert_no_leftovers(&tree.info.id);
}
}

each_backend! {
async fn cancelling_the_actor_cancels_every_open_context() {
    let (tree, n, p) = daemon("shared").await;
    let (a, _) = open(&p, "wait-for-cancel", cbor(&())).await.unwrap();
    let (b, _) = open(&p, "wait-for-cancel", cbor(&())).await.unwrap();
    p.cancel_actor("the-canceller").await.unwrap();
    for ctx in [a, b] {
        assert_eq!(ctx.result().await, ContextOutcome::Cancelled { by: "the-canceller".into() });
    }
    n.wait().await.unwrap();
    assert_no_leftovers(&tree.info.id);
}
}

each_backend! {
async fn backpressure_blocks_a_fast_sender_and_loses_nothing() {
    let (tree, n, p) = daemon("slow").await;
    // The callee sleeps before reading anything.
    let (ctx, _) = open(&p, "consume-after", cbor(&[1500])).await.unwrap();
    let s = ctx.open_stream().unwrap();
    let total = 5 * WINDOW as u64;
    for i in 0..WINDOW as u64 {
        send(&s, &i).await.unwrap();
    }
    // The window is full: the next send must wait for the receiver.
    let blocked = tokio::time::timeout(Duration::from_millis(200), send(&s, &(WINDOW as u64))).await;
    assert!(blocked.is_err(), "a send beyond the window did not block");
    for i in WINDOW as u64..total {
        send(&s, &i).await.unwrap();
    }
    s.core().close();
    assert_eq!(ctx.result().await, ContextOutcome::Returned(cbor(&(total * (total - 1) / 2))));
    n.wait().await.unwrap();
    assert_no_leftovers(&tree.info.id);
}
}

each_backend! {
async fn a_daemon_serves_several_contexts_and_calls_at_once() {
    let (tree, n, p) = daemon("busy").await;
    let (c1, _) = open(&p, "echo-ctx", cbor(&[0])).await.unwrap();
    let (c2, _) = open(&p, "echo-ctx", cbor(&[0])).await.unwrap();
    let (mut s1, mut s2) = (c1.open_stream().unwrap(), c2.open_stream().unwrap());
    send(&s1, "one").await.unwrap();
    send(&s2, "two").await.unwrap();
    // A plain call is answered while both contexts are in the middle of a stream.
    assert_eq!(p.run("add", cbor(&(2, 2))).unwrap().get().await.unwrap(), cbor(&4));
    assert_eq!(recv::<String>(&mut s2).await.unwrap().unwrap(), "two");
    assert_eq!(recv::<String>(&mut s1).await.unwrap().unwrap(), "one");
    s1.core().close();
    s2.core().close();
    assert_eq!(c1.result().await, ContextOutcome::Returned(cbor(&1)));
    assert_eq!(c2.result().await, ContextOutcome::Returned(cbor(&1)));
    n.wait().await.unwrap();
    assert_no_leftovers(&tree.info.id);
}
}

each_backend! {
async fn broadcast_consumers_see_everything_and_a_slow_one_lags_alone() {
    let (tree, n, p) = daemon("source").await;
    let count = 3000u32;
    let (ctx, _) = open(&p, "produce", cbor(&[count])).await.unwrap();
    let primary = ctx.open_stream().unwrap();
    let mut fast = primary.subscribe(4096);
    let mut slow = primary.subscribe(16);
    send(&primary, "go").await.unwrap();
    for i in 0..count {
        assert_eq!(recv::<u32>(&mut fast).await.unwrap(), Some(i));
    }
    assert_eq!(recv::<u32>(&mut fast).await.unwrap(), None);
    // The slow consumer never read: it lagged, without stalling anyone.
    let e = recv::<u32>(&mut slow).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Lagged, "{e}");
    assert!(e.message.contains("lagged by"), "{e}");
    // ...and it can carry on from what is still buffered.
    let next = recv::<u32>(&mut slow).await.unwrap().unwrap();
    assert!(next > 0 && next < count, "{next}");
    assert_eq!(ctx.result().await, ContextOutcome::Returned(cbor(&count)));
    n.wait().await.unwrap();
    assert_no_leftovers(&tree.info.id);
}
}
