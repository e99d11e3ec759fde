//! `runtime@0.2.0`: the same resources as 0.1.0's (nurseries, portals,
//! contexts, streams, cancel scopes), as the tasks of an async instance use
//! them: blocking functions are `async` and only hold the store between
//! their awaits, so the instance's other tasks run meanwhile.

use super::super::context::Role;
use super::super::convert::{backend_from_wit, cbor_bytes, from_wit, grants_from_wit};
use super::super::{
    types, wit, CancelScopeRes, ContextRes, GuestScope, NurseryRes, PortalRes, StreamRes, TaskScopes, Wit, R,
};
use super::tractor::actor::{identity, runtime};
use super::ActorState;
use super::Fail;
use crate::error::ErrorKind;
use crate::nursery::{Nursery, SpawnOptions};
use crate::wire::ContextOutcome;
use std::sync::Arc;
use wasmtime::component::{Access, Accessor, AsAccessor, GuestTaskId, HasSelf, Resource};
use wasmtime::AsContextMut;

pub(super) type H = HasSelf<ActorState>;

/// The export task at the root of the current import's async call stack.
pub(super) fn root_task<T>(a: &mut Access<'_, T, H>) -> Option<GuestTaskId> {
    a.as_context_mut().async_call_stack().ok().and_then(|s| s.last())
}

/// The scopes of the task making the current import: those the serving
/// loop registered for its export task, else the actor's alone.
pub(super) fn scopes<T>(a: &mut Access<'_, T, H>) -> super::Scopes {
    let root = root_task(a);
    let st = a.get();
    match root.and_then(|t| st.tasks.get(&t)) {
        Some(t) => t.snapshot(&st.actor),
        None => TaskScopes::default().snapshot(&st.actor),
    }
}

/// Change the current task's scopes (nothing for a task the serving loop
/// did not start).
fn edit_task<T>(a: &mut Access<'_, T, H>, f: impl FnOnce(&mut TaskScopes)) {
    let root = root_task(a);
    if let Some(t) = root.and_then(|t| a.get().tasks.get_mut(&t)) {
        f(t)
    }
}

pub(super) fn with<T, R>(acc: &Accessor<T, H>, f: impl FnOnce(&mut Access<'_, T, H>) -> R) -> R {
    acc.as_accessor().with(|mut a| f(&mut a))
}

impl<T: Send> runtime::HostWithStore<T> for H {
    async fn sleep(acc: &Accessor<T, Self>, nanos: u64) -> R<Wit<()>> {
        let s = with(acc, |a| scopes(a));
        let d = std::time::Duration::from_nanos(nanos);
        wit(s.guard(tokio::time::sleep(d)).await.map_err(Fail::from))
    }

    async fn checkpoint(acc: &Accessor<T, Self>) -> R<Wit<()>> {
        let s = with(acc, |a| scopes(a));
        wit(s.guard(tokio::task::yield_now()).await.map_err(Fail::from))
    }
}

impl runtime::Host for ActorState {}
impl runtime::HostNursery for ActorState {}

impl<T: Send> runtime::HostNurseryWithStore<T> for H {
    async fn new(mut a: Access<'_, T, Self>) -> R<Resource<NurseryRes>> {
        let st = a.get();
        let nursery = Arc::new(Nursery::open(&st.actor));
        let res = NurseryRes { nursery: nursery.clone(), cancel: st.cancel_token() };
        let res = st.table.push(res)?;
        edit_task(&mut a, |t| t.open.push(nursery));
        Ok(res)
    }

    async fn start_actor(
        acc: &Accessor<T, Self>,
        this: Resource<NurseryRes>,
        name: String,
        component: Option<String>,
        options: types::SpawnOptions,
    ) -> R<Wit<Resource<PortalRes>>> {
        wit(spawn(acc, this, name, component, None, options).await)
    }

    async fn run_in_actor(
        acc: &Accessor<T, Self>,
        this: Resource<NurseryRes>,
        name: String,
        component: Option<String>,
        func: String,
        args: Vec<u8>,
        options: types::SpawnOptions,
    ) -> R<Wit<Resource<PortalRes>>> {
        wit(spawn(acc, this, name, component, Some((func, args)), options).await)
    }

    async fn wait(acc: &Accessor<T, Self>, this: Resource<NurseryRes>) -> R<Wit<()>> {
        let (n, outer, actor) = match with(acc, |a| {
            let n = a.get().table.get(&this).map(|r| r.nursery.clone());
            n.map(|n| (n, scopes(a).without_nurseries(), a.get().actor.clone()))
        }) {
            Ok(v) => v,
            Err(e) => return Err(e.into()),
        };
        let _teardown = actor.tearing_down();
        let r = super::super::nursery::wait_within(&n, &outer, &actor).await;
        with(acc, |a| edit_task(a, |t| t.open.retain(|o| !Arc::ptr_eq(o, &n))));
        wit(r.map_err(Fail::from))
    }

    async fn cancel(acc: &Accessor<T, Self>, this: Resource<NurseryRes>) -> R<Wit<()>> {
        let (n, actor) =
            with(acc, |a| a.get().table.get(&this).map(|r| r.nursery.clone()).map(|n| (n, a.get().actor.clone())))?;
        let _teardown = actor.tearing_down();
        n.cancel().await;
        Ok(Ok(()))
    }

    async fn drop(acc: &Accessor<T, Self>, this: Resource<NurseryRes>) -> R<()> {
        let (res, actor) = with(acc, |a| a.get().table.delete(this).map(|r| (r, a.get().actor.clone())))?;
        // A nursery dropped without `wait` still ends all its children.
        let _teardown = actor.tearing_down();
        let _ = res.nursery.wait().await;
        with(acc, |a| edit_task(a, |t| t.open.retain(|o| !Arc::ptr_eq(o, &res.nursery))));
        Ok(())
    }
}

/// `start-actor` and `run-in-actor`: check the arguments and grants, spawn
/// (a checkpoint), hand the task a portal.
async fn spawn<T>(
    acc: &Accessor<T, H>,
    this: Resource<NurseryRes>,
    name: String,
    component: Option<String>,
    run: Option<(String, Vec<u8>)>,
    options: types::SpawnOptions,
) -> Result<Resource<PortalRes>, Fail> {
    let (n, s, run, opts) = with(acc, |a| -> Result<_, Fail> {
        let st = a.get();
        let run = run.map(|(func, args)| st.parse_args(&func, &args).map(|v| (func, v))).transpose()?;
        let grants = options.grants.map(grants_from_wit).transpose().map_err(|m| st.err(ErrorKind::BadArgs, m))?;
        let opts = SpawnOptions { grants, backend: options.backend.map(backend_from_wit) };
        let n = st.table.get(&this)?.nursery.clone();
        Ok((n, scopes(a), run, opts))
    })?;
    let portal = s.guard(n.spawn(&name, component.as_deref(), run, opts)).await??;
    with(acc, |a| {
        let st = a.get();
        let cancel = st.cancel_token();
        Ok(st.table.push(PortalRes { portal, cancel })?)
    })
}

impl runtime::HostPortal for ActorState {}

impl<T: Send> runtime::HostPortalWithStore<T> for H {
    async fn info(mut a: Access<'_, T, Self>, this: Resource<PortalRes>) -> R<identity::ActorInfo> {
        let i = a.get().table.get(&this)?.portal.info().clone();
        Ok(identity::ActorInfo { name: i.name, uid: i.uid, pid: i.pid, depth: i.depth, component: i.component })
    }

    async fn is_child(mut a: Access<'_, T, Self>, this: Resource<PortalRes>) -> R<bool> {
        Ok(a.get().table.get(&this)?.portal.is_child())
    }

    async fn run(acc: &Accessor<T, Self>, this: Resource<PortalRes>, func: String, args: Vec<u8>) -> R<Wit<Vec<u8>>> {
        let started = with(acc, |a| -> Result<_, Fail> {
            let st = a.get();
            let args = st.parse_args(&func, &args)?;
            let pending = st.table.get(&this)?.portal.run(&func, args)?;
            Ok((pending, scopes(a)))
        });
        let (pending, s) = match started {
            Ok(v) => v,
            Err(e) => return wit(Err(e)),
        };
        // Cancelled (or dropped by the guest): the pending call is dropped,
        // which cancels it in the callee.
        wit(s.guard(pending.get()).await.and_then(|r| r).map(|v| cbor_bytes(&v)).map_err(Fail::from))
    }

    async fn result(acc: &Accessor<T, Self>, this: Resource<PortalRes>) -> R<Wit<Vec<u8>>> {
        let (portal, s) = with(acc, |a| a.get().table.get(&this).map(|r| r.portal.clone()).map(|p| (p, scopes(a))))?;
        wit(s.guard(portal.result()).await.and_then(|o| o).map(|v| cbor_bytes(&v)).map_err(Fail::from))
    }

    async fn cancel_actor(acc: &Accessor<T, Self>, this: Resource<PortalRes>) -> R<Wit<()>> {
        let (portal, actor) =
            with(acc, |a| a.get().table.get(&this).map(|r| r.portal.clone()).map(|p| (p, a.get().actor.clone())))?;
        // Not a checkpoint: cancelling must finish even while we are being
        // cancelled ourselves.
        let _teardown = actor.tearing_down();
        wit(portal.cancel_actor(&actor.me.name).await.map_err(Fail::from))
    }

    async fn open_context(
        acc: &Accessor<T, Self>,
        this: Resource<PortalRes>,
        func: String,
        args: Vec<u8>,
    ) -> R<Wit<(Resource<ContextRes>, Vec<u8>)>> {
        let prep = with(acc, |a| -> Result<_, Fail> {
            let st = a.get();
            let args = st.parse_args(&func, &args)?;
            let portal = st.table.get(&this)?.portal.clone();
            let me = (st.actor.me.name.clone(), st.actor.me.uid.clone());
            Ok((portal, args, me, scopes(a)))
        });
        let (portal, args, me, s) = match prep {
            Ok(v) => v,
            Err(e) => return wit(Err(e)),
        };
        let opened = s.guard(portal.open_context(&func, args, (&me.0, &me.1))).await.and_then(|r| r);
        let (ctx, first) = match opened {
            Ok(v) => v,
            Err(e) => return wit(Err(e.into())),
        };
        with(acc, |a| {
            let state = ctx.state();
            edit_task(a, |t| t.contexts.push(state));
            let st = a.get();
            let cancel = st.cancel_token();
            let res = st.table.push(ContextRes { role: Role::Caller(ctx), cancel })?;
            Ok(Ok((res, first)))
        })
    }

    async fn drop(acc: &Accessor<T, Self>, this: Resource<PortalRes>) -> R<()> {
        // The nursery still owns the child; dropping the handle does not end it.
        with(acc, |a| a.get().table.delete(this))?;
        Ok(())
    }
}

impl runtime::HostContext for ActorState {}

impl<T: Send> runtime::HostContextWithStore<T> for H {
    async fn started(mut a: Access<'_, T, Self>, this: Resource<ContextRes>, value: Vec<u8>) -> R<Wit<()>> {
        let st = a.get();
        let r = match &st.table.get(&this)?.role {
            Role::Callee(c) => c.started(value),
            Role::Caller(_) => {
                Err(st.err(ErrorKind::BadArgs, "`started` is for the callee of a context, not its caller"))
            }
        };
        wit(r.map_err(Fail::from))
    }

    async fn open_stream(mut a: Access<'_, T, Self>, this: Resource<ContextRes>) -> R<Wit<Resource<StreamRes>>> {
        let st = a.get();
        let rx = match &st.table.get(&this)?.role {
            Role::Callee(c) => c.open_stream(),
            Role::Caller(c) => c.open_stream(),
        };
        match rx {
            Ok(rx) => {
                let cancel = st.cancel_token();
                Ok(Ok(st.table.push(StreamRes::new(rx, cancel))?))
            }
            Err(e) => wit(Err(e.into())),
        }
    }

    async fn result(acc: &Accessor<T, Self>, this: Resource<ContextRes>) -> R<Wit<runtime::ContextOutcome>> {
        let prep = with(acc, |a| -> Result<_, Fail> {
            let st = a.get();
            match &st.table.get(&this)?.role {
                Role::Caller(c) => Ok((c.state(), scopes(a))),
                Role::Callee(_) => Err(st.err(ErrorKind::BadArgs, "`result` is for the caller of a context").into()),
            }
        });
        let (state, s) = match prep {
            Ok(v) => v,
            Err(e) => return wit(Err(e)),
        };
        let r = match s.guard(async move { state.outcome().await }).await {
            Ok(ContextOutcome::Returned(v)) => Ok(runtime::ContextOutcome::Returned(cbor_bytes(&v))),
            Ok(ContextOutcome::Cancelled { by }) => Ok(runtime::ContextOutcome::Cancelled(by)),
            Ok(ContextOutcome::Failed(e)) | Err(e) => Err(Fail::from(e)),
        };
        wit(r)
    }

    async fn cancel(mut a: Access<'_, T, Self>, this: Resource<ContextRes>, reason: Option<types::Error>) -> R<()> {
        let st = a.get();
        let reason = reason.map(|e| from_wit(e).attribute_if_blank(&st.actor.me.name, &st.actor.me.uid));
        match &st.table.get(&this)?.role {
            Role::Caller(c) => c.cancel(reason),
            Role::Callee(c) => c.cancel_by(&st.actor.me.name, reason),
        }
        Ok(())
    }

    async fn drop(acc: &Accessor<T, Self>, this: Resource<ContextRes>) -> R<()> {
        with(acc, |a| {
            if let Role::Caller(c) = a.get().table.delete(this)?.role {
                let state = c.state();
                edit_task(a, |t| t.contexts.retain(|o| !Arc::ptr_eq(o, &state)));
            }
            Ok(())
        })
    }
}

impl runtime::HostStream for ActorState {}

impl<T: Send> runtime::HostStreamWithStore<T> for H {
    async fn send(acc: &Accessor<T, Self>, this: Resource<StreamRes>, value: Vec<u8>) -> R<Wit<()>> {
        let (core, s) = with(acc, |a| a.get().table.get(&this).map(|r| r.core.clone()).map(|c| (c, scopes(a))))?;
        wit(s.guard(core.send(value)).await.and_then(|r| r).map_err(Fail::from))
    }

    async fn receive(acc: &Accessor<T, Self>, this: Resource<StreamRes>) -> R<Wit<Option<Vec<u8>>>> {
        let (rx, s) = with(acc, |a| a.get().table.get(&this).map(|r| r.rx.clone()).map(|rx| (rx, scopes(a))))?;
        wit(s.guard(async move { rx.lock().await.recv().await }).await.and_then(|r| r).map_err(Fail::from))
    }

    async fn close(mut a: Access<'_, T, Self>, this: Resource<StreamRes>) -> R<()> {
        a.get().table.get(&this)?.core.close();
        Ok(())
    }

    async fn subscribe(mut a: Access<'_, T, Self>, this: Resource<StreamRes>, capacity: u32) -> R<Resource<StreamRes>> {
        let st = a.get();
        let rx = st.table.get(&this)?.rx.clone();
        let sub = rx.lock().await.subscribe(capacity);
        let cancel = st.cancel_token();
        Ok(st.table.push(StreamRes::new(sub, cancel))?)
    }

    async fn drop(acc: &Accessor<T, Self>, this: Resource<StreamRes>) -> R<()> {
        with(acc, |a| a.get().table.delete(this))?;
        Ok(())
    }
}

impl runtime::HostCancelScope for ActorState {}

impl<T: Send> runtime::HostCancelScopeWithStore<T> for H {
    async fn new(mut a: Access<'_, T, Self>, timeout_nanos: Option<u64>) -> R<Resource<CancelScopeRes>> {
        let scope = Arc::new(GuestScope::default());
        if let Some(nanos) = timeout_nanos {
            scope.expire_after(std::time::Duration::from_nanos(nanos));
        }
        let res = a.get().table.push(CancelScopeRes { scope: scope.clone() })?;
        edit_task(&mut a, |t| t.guest.push(scope));
        Ok(res)
    }

    async fn cancel(mut a: Access<'_, T, Self>, this: Resource<CancelScopeRes>) -> R<()> {
        a.get().table.get(&this)?.scope.token.cancel();
        Ok(())
    }

    async fn cancelled(mut a: Access<'_, T, Self>, this: Resource<CancelScopeRes>) -> R<bool> {
        Ok(a.get().table.get(&this)?.scope.token.is_cancelled())
    }

    async fn drop(acc: &Accessor<T, Self>, this: Resource<CancelScopeRes>) -> R<()> {
        with(acc, |a| {
            let res = a.get().table.delete(this)?;
            // Closing the scope also ends its deadline timer.
            res.scope.token.cancel();
            edit_task(a, |t| t.guest.retain(|g| !Arc::ptr_eq(g, &res.scope)));
            Ok(())
        })
    }
}
