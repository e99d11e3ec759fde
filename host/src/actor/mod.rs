//! The actor process: what runs after `tractor-host __actor`.
//!
//! It reads its [`StartActor`] from the parent pipe, loads its component,
//! then serves: a `run-in-actor` child makes its one call and exits; a daemon
//! answers calls one at a time until it is cancelled or its parent goes away.
//!
//! Cancellation (a `Cancel` frame, or EOF on the parent pipe) cancels the
//! actor's scope: blocking host imports return `cancelled`, the guest gets a
//! moment to unwind, a guest still spinning in wasm is interrupted through
//! epoch interruption, and every child is torn down before the process exits.

mod guest;
pub mod host_api;
pub mod output;

use crate::component;
use crate::error::{ErrorKind, RemoteError};
use crate::nursery::{ActorCtx, ActorInfo, TreeInfo};
use crate::spawn;
use crate::wire::{self, Msg, RunRequest, StartActor};
use guest::{Guest, InterruptFlag};
use host_api::ActorState;
use output::{Prefixed, Target};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// How long wasm may keep running after cancellation before it is
/// interrupted (enough to unwind from a `cancelled` checkpoint).
const SPIN_GRACE: Duration = Duration::from_millis(10);

/// How long a cancelled guest may take to return before its call is
/// abandoned (covers guests blocked in WASI calls we cannot wake).
const RETURN_GRACE: Duration = Duration::from_millis(1500);

/// Entry point of an actor process; returns the process exit code.
pub fn main() -> i32 {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tractor actor: cannot start tokio: {e}");
            return 70;
        }
    };
    let code = rt.block_on(run());
    // Do not wait for stray blocking tasks (e.g. a guest stuck in a host
    // call we abandoned): the process is done.
    rt.shutdown_timeout(Duration::from_millis(100));
    code
}

async fn run() -> i32 {
    // SAFETY: called once, first thing in the actor process.
    let sock = match unsafe { spawn::inherited_pipe() }.and_then(tokio::net::UnixStream::from_std) {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "tractor actor: no parent pipe on fd {}: {e} (this subcommand is internal)",
                spawn::ACTOR_FD
            );
            return 64;
        }
    };
    let (mut read, mut write) = sock.into_split();
    let start = match wire::read_msg(&mut read).await {
        Ok(Msg::Start(s)) => s,
        Ok(other) => {
            eprintln!("tractor actor: protocol error from parent: expected Start, got {other:?}");
            return 65;
        }
        Err(e) => {
            eprintln!("tractor actor: protocol error from parent: {e}");
            return 65;
        }
    };

    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Msg>();
    let writer = tokio::spawn(async move {
        while let Some(msg) = out_rx.recv().await {
            if wire::write_msg(&mut write, &msg).await.is_err() {
                break;
            }
        }
    });

    let code = serve(start, read, out_tx).await;
    let _ = writer.await;
    code
}

fn actor_ctx(start: &StartActor, exe: std::path::PathBuf) -> Arc<ActorCtx> {
    ActorCtx::new(
        ActorInfo {
            name: start.name.clone(),
            uid: start.uid.clone(),
            pid: std::process::id(),
            depth: start.depth,
            component: start.component.clone(),
        },
        start.depth + 1,
        TreeInfo {
            host_exe: exe,
            components: start.components.clone(),
            id: std::env::var(crate::nursery::TREE_ENV).unwrap_or_default(),
        },
        false,
    )
}

async fn serve(
    start: StartActor,
    mut read: tokio::net::unix::OwnedReadHalf,
    out: mpsc::UnboundedSender<Msg>,
) -> i32 {
    let exe = std::env::current_exe().unwrap_or_else(|_| "/proc/self/exe".into());
    let ctx = actor_ctx(&start, exe);
    let interrupt: InterruptFlag = Default::default();
    let fail = |e: RemoteError| {
        let _ = out.send(Msg::Failed { error: e });
        1
    };

    let engine = match component::engine() {
        Ok(e) => e,
        Err(e) => {
            return fail(
                RemoteError::new(ErrorKind::Internal, format!("{e:#}"))
                    .with_actor(&start.name, &start.uid),
            )
        }
    };
    let Some(entry) = start.components.iter().find(|c| c.name == start.component) else {
        return fail(
            RemoteError::new(
                ErrorKind::NoSuchComponent,
                format!("no component named `{}`", start.component),
            )
            .with_actor(&start.name, &start.uid),
        );
    };
    let stdout = Prefixed::new(&start.name, Target::Stdout);
    let stderr = Prefixed::new(&start.name, Target::Stderr);
    let wasi = wasmtime_wasi::WasiCtx::builder()
        .stdout(stdout.clone())
        .stderr(stderr.clone())
        .build();
    let state = ActorState::new(wasi, ctx.clone());
    let mut guest =
        match Guest::load(&engine, &entry.name, &entry.cwasm, state, interrupt.clone()).await {
            Ok(g) => g,
            Err(e) => return fail(e),
        };
    let _ = out.send(Msg::Ready {
        pid: std::process::id(),
    });

    // Incoming frames: calls are queued for the guest; a cancel or the
    // parent's disappearance cancels the actor.
    let (call_tx, mut call_rx) = mpsc::unbounded_channel::<RunRequest>();
    let reader_ctx = ctx.clone();
    let reader_out = out.clone();
    let reader = tokio::spawn(async move {
        loop {
            match wire::read_msg(&mut read).await {
                Ok(Msg::Call(req)) => {
                    let _ = call_tx.send(req);
                }
                Ok(Msg::Cancel { by }) => reader_ctx.cancel_actor(&by),
                Ok(other) => {
                    let e = RemoteError::new(
                        ErrorKind::Protocol,
                        format!("protocol error from parent: unexpected message {other:?}"),
                    );
                    let _ = reader_out.send(Msg::Failed { error: e });
                    reader_ctx.cancel_actor("protocol error");
                    break;
                }
                Err(wire::FrameError::Closed) => {
                    reader_ctx.cancel_actor("parent exited");
                    break;
                }
                Err(e) => {
                    tracing::error!(actor = %reader_ctx.me.name, "protocol error from parent: {e}");
                    reader_ctx.cancel_actor("protocol error");
                    break;
                }
            }
        }
    });

    // Once cancelled, interrupt wasm that keeps running past SPIN_GRACE.
    let ticker_ctx = ctx.clone();
    let ticker_flag = interrupt.clone();
    let ticker_engine = engine.clone();
    tokio::spawn(async move {
        ticker_ctx.cancel.cancelled().await;
        tokio::time::sleep(SPIN_GRACE).await;
        ticker_flag.store(true, Ordering::Relaxed);
        loop {
            ticker_engine.increment_epoch();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });

    let code = if let Some(req) = &start.run {
        match answer(&mut guest, &ctx, req, &out).await {
            Some(e) if !e.is_cancelled() => 1,
            _ => 0,
        }
    } else {
        loop {
            let req = tokio::select! {
                r = call_rx.recv() => match r { Some(r) => r, None => break 0 },
                _ = ctx.cancel.cancelled() => break 0,
            };
            let failed = answer(&mut guest, &ctx, &req, &out).await;
            // A trapped instance cannot be entered again: the daemon as a
            // whole has failed, which its nursery must hear about.
            if guest.is_poisoned() {
                if let Some(error) = failed.filter(|e| !e.is_cancelled()) {
                    let _ = out.send(Msg::Failed { error });
                }
                break 1;
            }
        }
    };
    // Structured teardown: no child outlives us.
    ctx.cancel_actor("its parent exiting");
    ctx.cancel_all_children().await;
    drop(guest);
    // The reader holds a sender: stop it so the writer can drain and end.
    reader.abort();
    let _ = reader.await;
    stdout.finish();
    stderr.finish();
    code
}

/// Run one call and send its outcome; returns the error, if it failed.
async fn answer(
    guest: &mut Guest,
    ctx: &Arc<ActorCtx>,
    req: &RunRequest,
    out: &mpsc::UnboundedSender<Msg>,
) -> Option<RemoteError> {
    let call = guest.call(&req.func, &req.args);
    let abandon = async {
        ctx.cancel.cancelled().await;
        tokio::time::sleep(RETURN_GRACE).await;
    };
    let outcome = tokio::select! {
        o = call => o,
        _ = abandon => Err(ctx.cancelled_error()),
    };
    // A guest interrupted or unwinding because we were cancelled reports
    // who cancelled it; a real failure is still reported as such.
    let outcome = match outcome {
        Err(e) if ctx.cancel.is_cancelled() && e.is_cancelled() => Err(ctx.cancelled_error()),
        o => o,
    };
    let (msg, failed) = match outcome {
        Ok(value) => (Msg::Return { id: req.id, value }, None),
        Err(error) => (
            Msg::CallFailed {
                id: req.id,
                error: error.clone(),
            },
            Some(error),
        ),
    };
    let _ = out.send(msg);
    failed
}
