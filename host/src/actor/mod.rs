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

mod calls;
mod epoch;
mod frames;
mod guest;
mod link;
mod peers;
mod status;
mod tasks;
pub use link::{link, preload};
pub mod imports;
pub mod output;
pub mod zygote;

use crate::component;
use crate::context::CalleeContext;
use crate::error::{ErrorKind, RemoteError};
use crate::nursery::{ActorInfo, ActorScope, ScopeParts, TreeInfo};
use crate::spawn;
use crate::wire::ContextOutcome;
use crate::wire::{self, CallRequest, Msg, StartActor};
use calls::Calls;
use epoch::InterruptFlag;
use guest::{Guest, GuestTemplate};
use imports::{ActorState, CallScope, ContextRes};
use output::{Prefixed, Target};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::mpsc;

/// How long a cancelled guest may take to return before its call is
/// abandoned (covers guests blocked in WASI calls we cannot wake): three
/// quarters of the tree's grace period, so the actor still tears down its
/// own children and exits before its parent resorts to signals.
fn return_grace(scope: &ActorScope) -> Duration {
    scope.tree.grace * 3 / 4
}

/// How long a call cancelled by its caller may take to return before it is
/// abandoned (and the instance replaced).
const CALL_CANCEL_GRACE: Duration = Duration::from_millis(50);

/// Entry point of an `exec` actor process; returns the process exit code.
pub fn main() -> i32 {
    // SAFETY: called once, first thing in the actor process.
    match unsafe { spawn::inherited_link() } {
        // SAFETY: first thing after taking the link, before anything opens
        // descriptors.
        Ok(link) => run_blocking(link, unsafe { spawn::Handed::inherited() }),
        Err(e) => {
            eprintln!("tractor actor: no parent pipe on fd {}: {e} (this subcommand is internal)", spawn::ACTOR_FD);
            64
        }
    }
}

/// The `thread` backend's entry point: run the actor on this thread until
/// it ends (its exit code) or `stop` fires (`None`).
pub fn run_thread(link: spawn::LinkFds, handed: spawn::Handed, mut stop: spawn::thread::Stop) -> Option<i32> {
    status::mark_thread_actor();
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tractor actor: cannot start tokio: {e}");
            return Some(70);
        }
    };
    let code = rt.block_on(async {
        tokio::select! {
            biased;
            _ = stop.requested() => None,
            code = run_on(link, handed) => Some(code),
        }
    });
    // As for a process: stray blocking tasks do not hold the actor up.
    rt.shutdown_timeout(Duration::from_millis(100));
    code
}

/// The runtime an actor runs on: one thread, polling for I/O often (links
/// spin briefly before they park, see `wire::frame::Spinning`).
fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .event_interval(crate::wire::frame::EVENT_INTERVAL)
        .build()
}

/// Run an actor whose parent is on the other side of `link`, on a runtime
/// of its own, until it ends; returns its exit code.
///
/// One thread runs everything (wasm yields to the other tasks at every
/// epoch tick): cross-thread wakeups were the largest cost of a message
/// round trip, and parallelism comes from actors, one process each.
pub fn run_blocking(link: spawn::LinkFds, handed: spawn::Handed) -> i32 {
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tractor actor: cannot start tokio: {e}");
            return 70;
        }
    };
    let code = rt.block_on(run_on(link, handed));
    // Do not wait for stray blocking tasks (e.g. a guest stuck in a host
    // call we abandoned): the actor is done.
    rt.shutdown_timeout(Duration::from_millis(100));
    code
}

/// The actor itself, on the current runtime: read its `Start`, load its
/// component, serve its parent over `link` until done. `handed` holds the
/// descriptors its `Start` may name (its folders).
pub async fn run_on(link: spawn::LinkFds, mut handed: spawn::Handed) -> i32 {
    let (mut read, mut write) = match link.into_async() {
        Ok(l) => (l.rx, l.tx),
        Err(e) => {
            eprintln!("tractor actor: cannot use the link to its parent: {e}");
            return 64;
        }
    };
    let start = match wire::read_msg(&mut read).await {
        Ok(Msg::Start(s)) => *s,
        other => {
            let why = match other {
                Ok(msg) => format!("expected Start, got {}", msg.name()),
                Err(e) => e.to_string(),
            };
            // Nameless still: the name comes with Start.
            let message = format!("protocol error from parent of actor process {}: {why}", std::process::id());
            eprintln!("tractor actor: {message}");
            let error = RemoteError::new(ErrorKind::Protocol, message);
            let _ = wire::write_msg(&mut write, &Msg::Failed { error }).await;
            return 65;
        }
    };

    let (out_tx, out_rx) = mpsc::unbounded_channel::<Msg>();
    let peers = Arc::new(peers::PeerLinks::default());
    let writer = {
        let peers = peers.clone();
        tokio::spawn(wire::pump_diverting(write, out_rx, move |m| peers.divert(m)))
    };

    let code = serve(start, &mut handed, read, out_tx, peers).await;
    let _ = writer.await;
    code
}

fn actor_scope(
    start: &StartActor,
    exe: std::path::PathBuf,
    folders: crate::sandbox::Folders,
    out: &mpsc::UnboundedSender<Msg>,
) -> Arc<ActorScope> {
    let grants = crate::sandbox::Grants { dirs: folders.grants(), ..start.grants.clone() };
    ActorScope::new(ScopeParts {
        me: ActorInfo {
            name: start.name.clone(),
            uid: start.uid.clone(),
            pid: std::process::id(),
            depth: start.depth,
            component: start.component.clone(),
        },
        child_depth: start.depth + 1,
        tree: TreeInfo {
            host_exe: exe,
            components: start.components.clone(),
            id: start.tree_id.clone(),
            grace: Duration::from_millis(start.grace_ms),
            max_depth: start.max_depth,
            spawn: start.spawn.clone(),
            thread_entry: run_thread,
            hosts: start.hosts.clone(),
            here: start.host.clone(),
        },
        new_process_group: false,
        grants: Some(grants),
        folders,
        bus: if start.registry {
            crate::discovery::TreeBus::actor(out.clone())
        } else {
            crate::discovery::TreeBus::none()
        },
    })
}

/// What the actor process shares between its serving loop, its reader and
/// its context tasks.
struct Actor {
    scope: Arc<ActorScope>,
    template: GuestTemplate,
    out: mpsc::UnboundedSender<Msg>,
    stdout: Prefixed,
    stderr: Prefixed,
    /// Set once the actor is cancelled (stops wasm in every instance).
    interrupt: InterruptFlag,
    /// Contexts being served, by context id.
    contexts: Mutex<HashMap<u64, Arc<CalleeContext>>>,
    /// Plain calls: queued, running, cancelled.
    calls: Calls,
    /// Set once the parent broke the protocol (the actor then exits 65).
    protocol_error: std::sync::atomic::AtomicBool,
    /// Bytes of memory held by all the actor's stores (for the limit).
    memory: Arc<std::sync::atomic::AtomicUsize>,
    /// The limits of the actor's component.
    limits: crate::sandbox::Limits,
    /// For an async component: where contexts go to be served as tasks of
    /// its one instance.
    context_tasks: Option<mpsc::UnboundedSender<tasks::ContextWork>>,
    /// Set once a task of an async instance overstayed its cancellation:
    /// stops wasm in the instance, like `interrupt`.
    stuck: InterruptFlag,
    /// That task's function and the grace it had.
    stuck_task: Mutex<Option<(String, Duration)>>,
    /// Links from actors that found this one.
    peers: Arc<peers::PeerLinks>,
    /// Where a sync actor's context tasks run (each in an instance of its own).
    context_set: Mutex<tokio::task::JoinSet<()>>,
    /// What `ps` shows beyond the books.
    gauges: status::Gauges,
}

impl Actor {
    fn state(&self, callee: Option<Arc<CalleeContext>>) -> ActorState {
        let mut wasi = wasmtime_wasi::WasiCtx::builder();
        wasi.stdout(self.stdout.clone()).stderr(self.stderr.clone());
        if let Some(g) = &self.scope.grants {
            g.apply_env_and_network(&mut wasi);
        }
        // Checked when the actor starts (see `serve`), so this cannot fail here.
        let _ = self.scope.folders.preopen(&mut wasi);
        let wasi = wasi.build();
        let limiter = crate::sandbox::MemoryLimiter::new(self.limits.memory_bytes, self.memory.clone());
        ActorState::new(wasi, self.scope.clone(), callee, limiter)
    }

    /// Serve one context in an instance of its own, so it runs concurrently
    /// with plain calls and with other contexts.
    async fn serve_context(self: Arc<Self>, req: CallRequest, callee: Arc<CalleeContext>) {
        let own_flag: InterruptFlag = Default::default();
        let watch = {
            let (cancel, flag) = (callee.cancel.clone(), own_flag.clone());
            tokio::spawn(async move {
                cancel.cancelled().await;
                flag.store(true, Ordering::Relaxed);
            })
        };
        let res = ContextRes::callee(callee.clone(), self.scope.cancel.clone());
        let outcome = match self
            .template
            .instantiate(self.state(Some(callee.clone())), vec![self.interrupt.clone(), own_flag], None)
            .await
        {
            Ok(mut guest) => {
                let call = guest.call_context(&req.func, &req.args, res);
                let abandon = async {
                    tokio::select! {
                        _ = self.scope.cancel.cancelled() => {}
                        _ = callee.cancel.cancelled() => {}
                    }
                    tokio::time::sleep(return_grace(&self.scope)).await;
                    self.scope.teardowns_done().await;
                };
                tokio::select! {
                    o = call => o,
                    _ = abandon => Err(RemoteError::cancelled("abandoned after the grace period")),
                }
            }
            Err(e) => Err(e),
        };
        watch.abort();
        self.finish_context(&callee, outcome);
    }

    /// Report how a context's function ended to its caller.
    fn finish_context(&self, callee: &CalleeContext, outcome: crate::nursery::CallResult) {
        let outcome = match outcome {
            Ok(v) => ContextOutcome::Returned(v),
            // Cancelled, interrupted while cancelled, or handing back the
            // error its failing caller cancelled it with: all cancellations.
            Err(e)
                if e.is_cancelled()
                    || (e.kind == ErrorKind::Trap && callee.cancel.is_cancelled())
                    || callee.cancel_error().is_some_and(|why| *e.origin() == why) =>
            {
                let by = callee
                    .cancelled_by()
                    .or_else(|| self.scope.cancelled_by.lock().unwrap().clone())
                    .unwrap_or_else(|| self.scope.me.name.clone());
                ContextOutcome::Cancelled { by }
            }
            Err(e) => ContextOutcome::Failed(e),
        };
        callee.done(outcome);
        self.contexts.lock().unwrap().remove(&callee.cid);
        self.gauges.finished.fetch_add(1, Ordering::Relaxed);
    }
}

async fn serve(
    start: StartActor,
    handed: &mut spawn::Handed,
    read: tokio::net::unix::pipe::Receiver,
    out: mpsc::UnboundedSender<Msg>,
    peer_links: Arc<peers::PeerLinks>,
) -> i32 {
    let exe = std::env::current_exe().unwrap_or_else(|_| "/proc/self/exe".into());
    let who = (start.name.as_str(), start.uid.as_str());
    let fail = |e: RemoteError| {
        let _ = out.send(Msg::Failed { error: e });
        1
    };
    // Capabilities that cannot be set up (a granted folder vanished, a
    // descriptor that is not one) stop the actor before any guest code runs.
    let folders = crate::sandbox::Folders::claim(&start.grants.dirs, |n| handed.take(n));
    handed.close_rest();
    let folders = match folders.and_then(|f| f.preopen(&mut wasmtime_wasi::WasiCtx::builder()).map(|_| f)) {
        Ok(f) => f,
        Err(e) => return fail(RemoteError::new(ErrorKind::SpawnFailed, e).with_actor(who.0, who.1)),
    };
    let scope = actor_scope(&start, exe, folders, &out);
    let Some(entry) = start.components.iter().find(|c| c.name == start.component) else {
        return fail(
            RemoteError::new(ErrorKind::NoSuchComponent, format!("no component named `{}`", start.component))
                .with_actor(who.0, who.1),
        );
    };
    let template = match GuestTemplate::load(entry, who) {
        Ok(t) => t,
        Err(e) => return fail(e),
    };
    let (calls, mut call_rx) = Calls::new(out.clone(), who);
    let is_async = template.model == component::Model::Async;
    let (context_tx, mut context_rx) = mpsc::unbounded_channel();
    // Lines of an actor on another host than the driver's say which.
    let shown = if start.host.is_empty() { start.name.clone() } else { format!("{}@{}", start.name, start.host) };
    let actor = Arc::new(Actor {
        scope: scope.clone(),
        template,
        out: out.clone(),
        stdout: Prefixed::new(&shown, Target::Stdout),
        stderr: Prefixed::new(&shown, Target::Stderr),
        interrupt: Default::default(),
        contexts: Mutex::new(HashMap::new()),
        calls,
        protocol_error: Default::default(),
        memory: Default::default(),
        limits: entry.limits.clone(),
        context_tasks: is_async.then_some(context_tx),
        stuck: Default::default(),
        stuck_task: Mutex::new(None),
        peers: peer_links,
        context_set: Mutex::new(tokio::task::JoinSet::new()),
        gauges: Default::default(),
    });
    let stuck = Some(actor.stuck.clone());
    let mut guest = match actor.template.instantiate(actor.state(None), vec![actor.interrupt.clone()], stuck).await {
        Ok(g) => g,
        Err(e) => return fail(e),
    };
    // Reachable by peers before anyone hears it is ready.
    let listener = if start.peer_addr.is_empty() {
        None
    } else {
        match peers::listen(&actor, &start.peer_addr, start.token.clone()) {
            Ok(l) => Some(l),
            Err(e) => {
                let why = format!("cannot listen for peers on `{}`: {e}", start.peer_addr);
                return fail(RemoteError::new(ErrorKind::SpawnFailed, why).with_actor(who.0, who.1));
            }
        }
    };
    let _ = out.send(Msg::Ready { pid: std::process::id() });

    let reader = tokio::spawn(frames::read_parent(actor.clone(), read));

    // Once cancelled, interrupt wasm that keeps running (see guest::Ticker).
    {
        let a = actor.clone();
        tokio::spawn(async move {
            a.scope.cancel.cancelled().await;
            a.interrupt.store(true, Ordering::Relaxed);
        });
    }

    let code = if let Some(req) = &start.run {
        let e = RemoteError::new(
            ErrorKind::BadArgs,
            format!("actor '{}' runs one function (run-in-actor); it serves no calls", scope.me.name),
        );
        actor.calls.close(&mut call_rx, e.with_actor(who.0, who.1));
        let call = Arc::new(CallScope::default());
        actor.gauges.running_once.store(true, Ordering::Relaxed);
        let failed = answer(&mut guest, &scope, req, &out, &call).await;
        actor.gauges.running_once.store(false, Ordering::Relaxed);
        actor.gauges.finished.fetch_add(1, Ordering::Relaxed);
        match failed {
            Some(e) if !e.is_cancelled() => 1,
            _ => 0,
        }
    } else if is_async {
        let failed = tasks::serve(&actor, &mut guest, &mut call_rx, &mut context_rx).await;
        // Contexts that arrived too late to be served are told so (and
        // later ones, once the receiver is gone, by the reader).
        let gone = failed.clone().unwrap_or_else(|| actor.calls.gone("its parent"));
        context_rx.close();
        while let Ok((_, callee)) = context_rx.try_recv() {
            callee.done(ContextOutcome::Failed(gone.clone()));
        }
        drop(context_rx);
        match failed {
            Some(error) => {
                actor.calls.close(&mut call_rx, error.clone());
                let _ = out.send(Msg::Failed { error });
                1
            }
            None => 0,
        }
    } else {
        loop {
            let req = tokio::select! {
                r = call_rx.recv() => match r { Some(r) => r, None => break 0 },
                _ = scope.cancel.cancelled() => break 0,
            };
            let Some(call) = actor.calls.begin(req.id) else {
                continue; // cancelled while queued, and answered then
            };
            let failed = answer(&mut guest, &scope, &req, &out, &call).await;
            actor.calls.end(req.id);
            if !guest.is_poisoned() {
                continue;
            }
            // A call abandoned because its caller cancelled it: serve on
            // with a fresh instance.
            if call.token.is_cancelled() && !scope.cancel.is_cancelled() {
                match actor.template.instantiate(actor.state(None), vec![actor.interrupt.clone()], None).await {
                    Ok(fresh) => {
                        guest = fresh;
                        continue;
                    }
                    Err(e) => {
                        actor.calls.close(&mut call_rx, e.clone());
                        let _ = out.send(Msg::Failed { error: e });
                        break 1;
                    }
                }
            }
            // A trapped instance cannot be entered again: the daemon as a
            // whole has failed, which its nursery must hear about, and so
            // must every caller still queued.
            if let Some(error) = failed.filter(|e| !e.is_cancelled()) {
                actor.calls.close(&mut call_rx, error.clone());
                let _ = out.send(Msg::Failed { error });
                break 1;
            }
            // Interrupted because the actor was cancelled: it complied.
            break 0;
        }
    };
    // Whatever is still queued will never run.
    let by = scope.cancelled_by.lock().unwrap().clone().unwrap_or_else(|| "its parent".into());
    actor.calls.close(&mut call_rx, actor.calls.gone(&by));
    // Structured teardown: contexts end, then children, before we exit.
    scope.cancel_actor("its parent exiting");
    let mut tasks = std::mem::take(&mut *actor.context_set.lock().unwrap());
    while tasks.join_next().await.is_some() {}
    scope.cancel_all_children().await;
    drop(guest);
    // Peers hear why we went, after every answer they were owed.
    if let Some(l) = listener {
        l.abort();
    }
    // By now the actor is cancelled (if only by itself, exiting).
    let reason = scope.cancelled_error();
    actor.peers.goodbye(&out, reason);
    // The reader holds a sender: stop it so the writer can drain and end.
    reader.abort();
    let _ = reader.await;
    actor.stdout.finish();
    actor.stderr.finish();
    if actor.protocol_error.load(Ordering::SeqCst) {
        return 65;
    }
    code
}

/// Run one call and send its outcome; returns the error, if it failed.
///
/// A call whose caller cancels it gets [`CALL_CANCEL_GRACE`] to return from
/// its checkpoint; after that (a spinning guest) it is abandoned and the
/// instance poisoned, to be replaced by a fresh one.
async fn answer(
    guest: &mut Guest,
    scope: &Arc<ActorScope>,
    req: &CallRequest,
    out: &mpsc::UnboundedSender<Msg>,
    call: &Arc<CallScope>,
) -> Option<RemoteError> {
    guest.state_mut().set_call(Some(call.clone()));
    let mut abandoned = false;
    let outcome = {
        let running = guest.call(&req.func, &req.args);
        let abandon = async {
            tokio::select! {
                _ = scope.cancel.cancelled() => tokio::time::sleep(return_grace(scope)).await,
                _ = call.token.cancelled() => tokio::time::sleep(CALL_CANCEL_GRACE).await,
            }
            // A guest waiting for its children to end is complying.
            scope.teardowns_done().await;
        };
        tokio::select! {
            o = running => o,
            _ = abandon => {
                abandoned = true;
                Err(scope.cancelled_error())
            }
        }
    };
    if abandoned {
        guest.poison();
    }
    guest.state_mut().set_call(None);
    reply(scope, req.id, call, outcome, abandoned, out)
}

/// Send call `id`'s outcome; returns the error, if it failed.
fn reply(
    scope: &ActorScope,
    id: u64,
    call: &CallScope,
    outcome: crate::nursery::CallResult,
    abandoned: bool,
    out: &mpsc::UnboundedSender<Msg>,
) -> Option<RemoteError> {
    // A guest interrupted or unwinding because it was cancelled reports who
    // cancelled it; a real failure is still reported as such.
    let outcome = match outcome {
        Err(e) if scope.cancel.is_cancelled() && e.is_cancelled() => Err(scope.cancelled_error()),
        Err(e) if e.is_cancelled() || abandoned => Err(call.error(scope).unwrap_or(e)),
        o => o,
    };
    let (msg, failed) = match outcome {
        Ok(value) => (Msg::Return { id, value }, None),
        Err(error) => (Msg::CallFailed { id, error: error.clone() }, Some(error)),
    };
    let _ = out.send(msg);
    failed
}
