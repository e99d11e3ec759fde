//! Serving an async component: one instance for the actor's whole life,
//! every plain call and every context a concurrent guest task on it, all
//! sharing its memory (tractor's "one actor, one event loop").
//!
//! Cancellation is cooperative: a cancelled task sees `cancelled` at its
//! next tractor import (each is a checkpoint). wasmtime 48 cannot stop one
//! task of an instance alone (its issue #11833), so a task that does not
//! return within the grace after its cancellation fails the actor as a
//! whole, with an error naming the task's function, as tractor hard-kills
//! a process whose task is stuck in sync code.

use super::calls::Queue;
use super::guest::{trap_error, Export, Guest, Who};
use super::imports::{CallScope, ContextRes, TaskScopes};
use super::{reply, return_grace, Actor, CALL_CANCEL_GRACE};
use crate::context::CalleeContext;
use crate::error::{ErrorKind, RemoteError};
use crate::value::args_to_vals;
use crate::wire::CallRequest;
use futures::stream::{FuturesUnordered, StreamExt};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::mpsc;
use wasmtime::component::{Accessor, Resource, Val};

/// A context for the async instance to serve.
pub(super) type ContextWork = (CallRequest, Arc<CalleeContext>);

/// What one task was, for answering it when it ends.
#[derive(Clone)]
enum Job {
    Call(u64, Arc<CallScope>),
    Context(Arc<CalleeContext>),
}

/// How a task ended.
enum Ended {
    /// It returned (or failed) with this outcome.
    Done(crate::nursery::CallResult),
    /// It trapped: the instance is unusable.
    Trapped(RemoteError),
    /// It was cancelled and did not return within the grace.
    Stuck(RemoteError),
}

/// Serve calls from `calls` and contexts from `contexts` as concurrent
/// tasks on `guest` until the actor is cancelled (and its tasks have
/// ended) or the instance fails; returns the actor's failure, if any.
pub(super) async fn serve(
    actor: &Arc<Actor>,
    guest: &mut Guest,
    calls: &mut Queue,
    contexts: &mut mpsc::UnboundedReceiver<ContextWork>,
) -> Option<RemoteError> {
    // Resolve every export once: inside the event loop the store is lent
    // out to it.
    let exports = guest.exports.clone();
    let mut resolved: HashMap<String, Arc<Export>> = HashMap::new();
    for name in exports.iter() {
        if let Ok(e) = guest.lookup(name) {
            resolved.insert(name.clone(), e);
        }
    }
    let (name, uid) = (guest.name.clone(), guest.uid.clone());
    let who = Who(&name, &uid);
    let scope = actor.scope.clone();
    let list = exports.join(", ");
    let lookup = |func: &str| {
        resolved.get(func).cloned().ok_or_else(|| {
            RemoteError::new(ErrorKind::NoSuchExport, format!("component has no export `{func}` (exports: {list})"))
                .with_actor(&name, &uid)
        })
    };
    let run = guest.store.run_concurrent(async |acc| {
        let mut running = FuturesUnordered::new();
        // Every task started and not yet answered, so none is left
        // unanswered when the instance fails.
        let mut unanswered: HashMap<u64, Job> = HashMap::new();
        let mut next = 0u64;
        let mut failure = None;
        let mut taking = true;
        let mut start = |unanswered: &mut HashMap<u64, Job>, job: Job| {
            next += 1;
            unanswered.insert(next, job.clone());
            (next, job)
        };
        loop {
            tokio::select! {
                biased;
                Some(((seq, job), ended)) = running.next(), if !running.is_empty() => {
                    unanswered.remove(&seq);
                    match ended {
                        Ended::Done(outcome) => answer(actor, job, outcome),
                        Ended::Trapped(e) | Ended::Stuck(e) => {
                            answer(actor, job, Err(e.clone()));
                            failure = Some(e);
                            break;
                        }
                    }
                },
                r = calls.recv(), if taking => match r {
                    Some(req) => {
                        let Some(call) = actor.calls.begin(req.id) else { continue };
                        let job = Job::Call(req.id, call.clone());
                        match lookup(&req.func).and_then(|e| plain(&e, &req.func, &name, &uid).map(|_| e)) {
                            Ok(export) => running.push(task(acc, actor, start(&mut unanswered, job), export, req, None, &who)),
                            Err(e) => answer(actor, job, Err(e)),
                        }
                    }
                    None => taking = false,
                },
                r = contexts.recv(), if taking => match r {
                    Some((req, callee)) => {
                        let job = Job::Context(callee.clone());
                        match lookup(&req.func).and_then(|e| takes_context(&e, &req.func, &name, &uid).map(|_| e)) {
                            Ok(export) => running.push(task(acc, actor, start(&mut unanswered, job), export, req, Some(callee), &who)),
                            Err(e) => answer(actor, job, Err(e)),
                        }
                    }
                    None => taking = false,
                },
                _ = scope.cancel.cancelled(), if taking => taking = false,
            }
            if !taking && running.is_empty() {
                break;
            }
        }
        drop(running);
        (failure, unanswered)
    });
    let (failure, unanswered) = match run.await {
        Ok(v) => v,
        Err(e) => (Some(stuck(actor, &who).unwrap_or_else(|| trap_error(&e, &name, &uid))), HashMap::new()),
    };
    // Interrupted because the actor was cancelled: it complied.
    let failure = failure.filter(|e| !(scope.cancel.is_cancelled() && e.is_cancelled()));
    let why = failure.clone().unwrap_or_else(|| scope.cancelled_error());
    for (_, job) in unanswered {
        answer(actor, job, Err(why.clone()));
    }
    failure
}

fn plain(e: &Export, func: &str, name: &str, uid: &str) -> Result<(), RemoteError> {
    if e.takes_context {
        return Err(RemoteError::new(
            ErrorKind::BadArgs,
            format!("export `{func}` takes a context: open it with open-context, not run"),
        )
        .with_actor(name, uid));
    }
    Ok(())
}

fn takes_context(e: &Export, func: &str, name: &str, uid: &str) -> Result<(), RemoteError> {
    if !e.takes_context {
        return Err(RemoteError::new(
            ErrorKind::BadArgs,
            format!("export `{func}` does not take a context as its first parameter: call it with run"),
        )
        .with_actor(name, uid));
    }
    Ok(())
}

/// Answer a task's caller.
fn answer(actor: &Actor, job: Job, outcome: crate::nursery::CallResult) {
    match job {
        Job::Call(id, call) => {
            reply(&actor.scope, id, &call, outcome, false, &actor.out);
            actor.calls.end(id);
        }
        Job::Context(callee) => actor.finish_context(&callee, outcome),
    }
}

/// One guest task: start the export, register its scopes for its imports
/// to find, wait for it to end (or to overstay its cancellation).
async fn task<'a>(
    acc: &'a Accessor<super::imports::ActorState>,
    actor: &'a Arc<Actor>,
    (seq, job): (u64, Job),
    export: Arc<Export>,
    req: CallRequest,
    callee: Option<Arc<CalleeContext>>,
    who: &'a Who<'a>,
) -> ((u64, Job), Ended) {
    let ended = run_task(acc, actor, &job, &export, &req, callee, who).await;
    ((seq, job), ended)
}

async fn run_task(
    acc: &Accessor<super::imports::ActorState>,
    actor: &Arc<Actor>,
    job: &Job,
    export: &Export,
    req: &CallRequest,
    callee: Option<Arc<CalleeContext>>,
    who: &Who<'_>,
) -> Ended {
    let err = |kind, m: String| RemoteError::new(kind, m).with_actor(who.0, who.1);
    let mut vals = match args_to_vals(&export.sig, &req.args) {
        Ok(v) => v,
        Err(e) => return Ended::Done(Err(err(ErrorKind::BadArgs, e.to_string()))),
    };
    let (call, token) = match job {
        Job::Call(_, c) => (Some(c.clone()), c.token.clone()),
        Job::Context(c) => (None, c.cancel.clone()),
    };
    // A context's function gets a host-owned handle on it, lent as the
    // `borrow<context>` for the duration of the task.
    let lent = match &callee {
        Some(c) => {
            let res = ContextRes::callee(c.clone(), actor.scope.cancel.clone());
            let pushed = acc.with(|mut a| -> Result<_, String> {
                let res = a.data_mut().table.push(res).map_err(|e| e.to_string())?;
                let any = Resource::<ContextRes>::new_own(res.rep())
                    .try_into_resource_any(&mut a)
                    .map_err(|e| format!("{e:#}"))?;
                Ok((res, any))
            });
            match pushed {
                Ok((res, any)) => {
                    vals.insert(0, Val::Resource(any));
                    Some((res, any))
                }
                Err(e) => return Ended::Done(Err(err(ErrorKind::Internal, format!("cannot pass the context: {e}")))),
            }
        }
        None => None,
    };
    let mut results = vec![Val::Bool(false); usize::from(export.sig.results.is_some())];
    let started = acc.with(|mut a| {
        let started = export.func.start_call_concurrent(&mut a, &vals, &mut results);
        // Registered before the guest runs (it runs once this task awaits),
        // so its first import already finds its scopes.
        if let Ok(call_ref) = &started {
            let scopes = TaskScopes::serving(call.clone(), callee.clone());
            a.data_mut().tasks.insert(call_ref.task(), scopes);
        }
        started.map(|c| (c.task(), c))
    });
    let (id, pending) = match started {
        Ok(v) => v,
        Err(e) => return Ended::Trapped(trap_error(&e, who.0, who.1)),
    };
    let grace = match job {
        Job::Call(..) => CALL_CANCEL_GRACE.max(return_grace(&actor.scope)),
        Job::Context(_) => return_grace(&actor.scope),
    };
    // The watch runs outside the store's event loop: a task spinning in
    // wasm keeps the loop from polling anything else, but yields to tokio
    // at every epoch tick, and the epoch callback then stops the instance.
    let overstay = {
        let (a, func) = (actor.clone(), req.func.clone());
        tokio::spawn(async move {
            tokio::select! {
                _ = token.cancelled() => {}
                _ = a.scope.cancel.cancelled() => {}
            }
            tokio::time::sleep(grace).await;
            a.scope.teardowns_done().await;
            a.stuck_task.lock().unwrap().get_or_insert((func, grace));
            a.stuck.store(true, std::sync::atomic::Ordering::Relaxed);
        })
    };
    let finished = export.func.finish_call_concurrent(acc, pending).await;
    overstay.abort();
    acc.with(|mut a| {
        let st = a.data_mut();
        st.tasks.remove(&id);
        // A context lent as `own` may already be dropped by the guest (and
        // its slot reused): delete only our own entry.
        if let (Some((res, _)), Some(c)) = (&lent, &callee) {
            let handle = Resource::<ContextRes>::new_own(res.rep());
            if st.table.get(&handle).is_ok_and(|r| r.is_callee_of(c)) {
                let _ = st.table.delete(handle);
            }
        }
        if let Some((_, any)) = lent {
            let _ = any.resource_drop(&mut a);
        }
    });
    match finished {
        Ok(()) => Ended::Done(who.finish(&req.func, &export.sig, &results)),
        Err(e) => match stuck(actor, who) {
            Some(e) => Ended::Stuck(e),
            None => Ended::Trapped(trap_error(&e, who.0, who.1)),
        },
    }
}

/// The actor's failure if one of its tasks overstayed its cancellation.
fn stuck(actor: &Actor, who: &Who<'_>) -> Option<RemoteError> {
    let (func, grace) = actor.stuck_task.lock().unwrap().clone()?;
    Some(
        RemoteError::new(
            ErrorKind::Trap,
            format!(
                "task `{func}` did not yield within {grace:?} of being cancelled (it never reached a checkpoint); \
                 one task of an instance cannot be stopped alone, so actor '{}' fails as a whole",
                who.0
            ),
        )
        .with_actor(who.0, who.1),
    )
}
