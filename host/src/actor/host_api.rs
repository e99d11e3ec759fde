//! The `tractor:actor` WIT imports, implemented on top of [`crate::nursery`].
//!
//! Every import that can block goes through [`Scopes::guard`], which
//! races it against the actor's cancellation and the scopes of the guest's
//! open nurseries, as trio's checkpoints do.

use crate::error::{ErrorKind, RemoteError};
use crate::nursery::{ActorCtx, Nursery, Outcome, PendingCall, Portal};
use std::future::Future;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use wasmtime::component::{Resource, ResourceTable};
use wasmtime_wasi::p2::{subscribe, DynPollable, Pollable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

wasmtime::component::bindgen!({
    path: "../wit",
    world: "tractor:actor/actor-host",
    imports: { default: async | trappable },
    with: {
        "wasi:io": wasmtime_wasi::p2::bindings::io,
        "tractor:actor/runtime.nursery": NurseryRes,
        "tractor:actor/runtime.portal": PortalRes,
        "tractor:actor/runtime.call": CallRes,
    },
});

use tractor::actor::{identity, log, runtime, types};

/// Store data of an actor process.
pub struct ActorState {
    /// WASI context (capabilities).
    pub wasi: WasiCtx,
    /// Resources handed to the guest.
    pub table: ResourceTable,
    /// Who we are and how we spawn.
    pub ctx: Arc<ActorCtx>,
    /// Nurseries the guest has open, innermost last: their scopes are part
    /// of every checkpoint.
    open: Vec<Arc<Nursery>>,
}

impl WasiView for ActorState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl ActorState {
    /// State for a new store.
    pub fn new(wasi: WasiCtx, ctx: Arc<ActorCtx>) -> ActorState {
        ActorState {
            wasi,
            table: ResourceTable::new(),
            ctx,
            open: Vec::new(),
        }
    }

    /// A `Send` snapshot of the current scopes, for checkpoints.
    fn scopes(&self) -> Scopes {
        Scopes {
            ctx: self.ctx.clone(),
            open: self.open.clone(),
        }
    }

    fn err(&self, kind: ErrorKind, msg: impl Into<String>) -> RemoteError {
        RemoteError::new(kind, msg).with_actor(&self.ctx.me.name, &self.ctx.me.uid)
    }
}

/// The cancel scopes a checkpoint is subject to: the actor's own and those
/// of the guest's open nurseries.
struct Scopes {
    ctx: Arc<ActorCtx>,
    open: Vec<Arc<Nursery>>,
}

impl Scopes {
    /// The error to raise if the current scope is cancelled.
    fn cancel_error(&self) -> Option<RemoteError> {
        if self.ctx.cancel.is_cancelled() {
            return Some(self.ctx.cancelled_error());
        }
        self.open.iter().rev().find_map(|n| n.cancel_reason())
    }

    /// Run `fut` unless or until the current scope is cancelled.
    async fn guard<T>(&self, fut: impl Future<Output = T>) -> Result<T, RemoteError> {
        if let Some(e) = self.cancel_error() {
            return Err(e);
        }
        let mut tokens = vec![self.ctx.cancel.clone()];
        tokens.extend(self.open.iter().map(|n| n.scope().clone()));
        let any = futures::future::select_all(tokens.iter().map(|t| Box::pin(t.cancelled())));
        tokio::select! {
            v = fut => Ok(v),
            _ = any => Err(self.cancel_error().unwrap_or_else(|| self.ctx.cancelled_error())),
        }
    }
}

/// Guest handle on a nursery.
pub struct NurseryRes {
    nursery: Arc<Nursery>,
    cancel: CancellationToken,
}

/// Guest handle on a child actor.
pub struct PortalRes {
    portal: Portal,
    cancel: CancellationToken,
}

/// Guest handle on a call in flight.
pub struct CallRes {
    state: CallState,
    cancel: CancellationToken,
}

enum CallState {
    Pending(PendingCall),
    Done(Outcome),
    Taken,
}

#[wasmtime_wasi::async_trait]
impl Pollable for CallRes {
    async fn ready(&mut self) {
        if let CallState::Pending(p) = &mut self.state {
            // Also ready on cancellation, so a guest blocked in poll wakes up
            // and sees `cancelled` from `get`.
            tokio::select! {
                o = p.ready() => self.state = CallState::Done(o),
                _ = self.cancel.cancelled() => {}
            }
        }
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for PortalRes {
    async fn ready(&mut self) {
        tokio::select! {
            _ = self.portal.result() => {},
            _ = self.cancel.cancelled() => {}
        }
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for NurseryRes {
    async fn ready(&mut self) {
        tokio::select! {
            _ = self.nursery.settled() => {},
            _ = self.cancel.cancelled() => {}
        }
    }
}

/// RemoteError → WIT `error` (causes flattened in pre-order with depths).
pub fn to_wit(e: &RemoteError) -> types::Error {
    fn flatten(e: &RemoteError, depth: u32, out: &mut Vec<types::ErrorNode>) {
        out.push(types::ErrorNode {
            kind: kind_to_wit(e.kind),
            actor_name: e.actor_name.clone(),
            actor_uid: e.actor_uid.clone(),
            message: e.message.clone(),
            backtrace: e.backtrace.clone(),
            depth,
        });
        for c in &e.causes {
            flatten(c, depth + 1, out);
        }
    }
    let mut causes = Vec::new();
    for c in &e.causes {
        flatten(c, 1, &mut causes);
    }
    types::Error {
        kind: kind_to_wit(e.kind),
        actor_name: e.actor_name.clone(),
        actor_uid: e.actor_uid.clone(),
        message: e.message.clone(),
        backtrace: e.backtrace.clone(),
        causes,
    }
}

fn kind_to_wit(k: ErrorKind) -> types::ErrorKind {
    use types::ErrorKind as W;
    match k {
        ErrorKind::Guest => W::Guest,
        ErrorKind::Trap => W::Trap,
        ErrorKind::Cancelled => W::Cancelled,
        ErrorKind::BadArgs => W::BadArgs,
        ErrorKind::NoSuchExport => W::NoSuchExport,
        ErrorKind::NoSuchComponent => W::NoSuchComponent,
        ErrorKind::SpawnFailed => W::SpawnFailed,
        ErrorKind::ActorDied => W::ActorDied,
        ErrorKind::ActorGone => W::ActorGone,
        ErrorKind::Protocol => W::Protocol,
        ErrorKind::Group => W::Group,
        ErrorKind::Internal => W::Internal,
    }
}

type R<T> = wasmtime::Result<T>;
type Wit<T> = Result<T, types::Error>;

fn wit<T>(r: Result<T, RemoteError>) -> R<Wit<T>> {
    Ok(r.map_err(|e| to_wit(&e)))
}

fn cbor_bytes(v: &ciborium::Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).expect("writing CBOR to a Vec cannot fail");
    out
}

impl ActorState {
    fn parse_args(&self, func: &str, args: &[u8]) -> Result<ciborium::Value, RemoteError> {
        if args.is_empty() {
            return Ok(ciborium::Value::Array(vec![]));
        }
        ciborium::from_reader(args).map_err(|e| {
            self.err(
                ErrorKind::BadArgs,
                format!("bad arguments to `{func}`: not valid CBOR: {e}"),
            )
        })
    }
}

impl types::Host for ActorState {}

impl identity::Host for ActorState {
    async fn current(&mut self) -> R<identity::ActorInfo> {
        let me = &self.ctx.me;
        Ok(identity::ActorInfo {
            name: me.name.clone(),
            uid: me.uid.clone(),
            pid: me.pid,
            depth: me.depth,
            component: me.component.clone(),
        })
    }

    async fn available_parallelism(&mut self) -> R<u32> {
        Ok(std::thread::available_parallelism().map_or(1, |n| n.get() as u32))
    }
}

impl log::Host for ActorState {
    async fn log(&mut self, level: log::Level, message: String) -> R<()> {
        let actor = &self.ctx.me.name;
        match level {
            log::Level::Trace => tracing::trace!(target: "tractor::guest", actor, "{message}"),
            log::Level::Debug => tracing::debug!(target: "tractor::guest", actor, "{message}"),
            log::Level::Info => tracing::info!(target: "tractor::guest", actor, "{message}"),
            log::Level::Warn => tracing::warn!(target: "tractor::guest", actor, "{message}"),
            log::Level::Error => tracing::error!(target: "tractor::guest", actor, "{message}"),
        }
        Ok(())
    }
}

impl runtime::Host for ActorState {
    async fn sleep(&mut self, nanos: u64) -> R<Wit<()>> {
        let d = std::time::Duration::from_nanos(nanos);
        wit(self.scopes().guard(tokio::time::sleep(d)).await)
    }

    async fn checkpoint(&mut self) -> R<Wit<()>> {
        wit(self.scopes().guard(std::future::ready(())).await)
    }
}

impl runtime::HostCall for ActorState {
    async fn subscribe(&mut self, this: Resource<CallRes>) -> R<Resource<DynPollable>> {
        subscribe(&mut self.table, this)
    }

    async fn try_get(&mut self, this: Resource<CallRes>) -> R<Option<Wit<Vec<u8>>>> {
        let call = self.table.get_mut(&this)?;
        if let CallState::Pending(p) = &mut call.state {
            if let Some(o) = p.try_get() {
                call.state = CallState::Done(o);
            }
        }
        Ok(match std::mem::replace(&mut call.state, CallState::Taken) {
            CallState::Done(o) => Some(o.map(|v| cbor_bytes(&v)).map_err(|e| to_wit(&e))),
            other => {
                call.state = other;
                None
            }
        })
    }

    async fn get(&mut self, this: Resource<CallRes>) -> R<Wit<Vec<u8>>> {
        let call = self.table.get_mut(&this)?;
        let outcome = match std::mem::replace(&mut call.state, CallState::Taken) {
            CallState::Done(o) => o,
            CallState::Taken => Err(self.err(
                ErrorKind::BadArgs,
                "the outcome of this call was already taken",
            )),
            CallState::Pending(p) => match self.scopes().guard(p.get()).await {
                Ok(o) => o,
                Err(e) => Err(e),
            },
        };
        wit(outcome.map(|v| cbor_bytes(&v)))
    }

    async fn drop(&mut self, this: Resource<CallRes>) -> R<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

impl runtime::HostPortal for ActorState {
    async fn info(&mut self, this: Resource<PortalRes>) -> R<identity::ActorInfo> {
        let i = self.table.get(&this)?.portal.info().clone();
        Ok(identity::ActorInfo {
            name: i.name,
            uid: i.uid,
            pid: i.pid,
            depth: i.depth,
            component: i.component,
        })
    }

    async fn run(
        &mut self,
        this: Resource<PortalRes>,
        func: String,
        args: Vec<u8>,
    ) -> R<Wit<Resource<CallRes>>> {
        let args = match self.parse_args(&func, &args) {
            Ok(a) => a,
            Err(e) => return wit(Err(e)),
        };
        let pending = match self.table.get(&this)?.portal.run(&func, args) {
            Ok(p) => p,
            Err(e) => return wit(Err(e)),
        };
        let res = self.table.push(CallRes {
            state: CallState::Pending(pending),
            cancel: self.ctx.cancel.clone(),
        })?;
        Ok(Ok(res))
    }

    async fn result(&mut self, this: Resource<PortalRes>) -> R<Wit<Vec<u8>>> {
        let portal = self.table.get(&this)?.portal.clone();
        let outcome = self.scopes().guard(portal.result()).await.and_then(|o| o);
        wit(outcome.map(|v| cbor_bytes(&v)))
    }

    async fn subscribe_result(&mut self, this: Resource<PortalRes>) -> R<Resource<DynPollable>> {
        subscribe(&mut self.table, this)
    }

    async fn cancel_actor(&mut self, this: Resource<PortalRes>) -> R<Wit<()>> {
        let portal = self.table.get(&this)?.portal.clone();
        // Not a checkpoint on purpose: cancelling must finish even while we
        // are being cancelled ourselves.
        portal.cancel_actor(&self.ctx.me.name).await;
        Ok(Ok(()))
    }

    async fn drop(&mut self, this: Resource<PortalRes>) -> R<()> {
        // The nursery still owns the child; dropping the handle does not end it.
        self.table.delete(this)?;
        Ok(())
    }
}

impl runtime::HostNursery for ActorState {
    async fn new(&mut self) -> R<Resource<NurseryRes>> {
        let nursery = Arc::new(Nursery::open(&self.ctx));
        self.open.push(nursery.clone());
        Ok(self.table.push(NurseryRes {
            nursery,
            cancel: self.ctx.cancel.clone(),
        })?)
    }

    async fn start_actor(
        &mut self,
        this: Resource<NurseryRes>,
        name: String,
        component: Option<String>,
    ) -> R<Wit<Resource<PortalRes>>> {
        let n = self.table.get(&this)?.nursery.clone();
        let r = self
            .scopes()
            .guard(n.start_actor(&name, component.as_deref()))
            .await
            .and_then(|r| r);
        self.push_portal(r)
    }

    async fn run_in_actor(
        &mut self,
        this: Resource<NurseryRes>,
        name: String,
        component: Option<String>,
        func: String,
        args: Vec<u8>,
    ) -> R<Wit<Resource<PortalRes>>> {
        let args = match self.parse_args(&func, &args) {
            Ok(a) => a,
            Err(e) => return wit(Err(e)),
        };
        let n = self.table.get(&this)?.nursery.clone();
        let r = self
            .scopes()
            .guard(n.run_in_actor(&name, component.as_deref(), &func, args))
            .await
            .and_then(|r| r);
        self.push_portal(r)
    }

    async fn wait(&mut self, this: Resource<NurseryRes>) -> R<Wit<()>> {
        let n = self.table.get(&this)?.nursery.clone();
        // `wait` itself handles cancellation: it cancels the children and
        // still waits for them, as a nursery must.
        let r = n.wait().await;
        self.close(&n);
        wit(r)
    }

    async fn cancel(&mut self, this: Resource<NurseryRes>) -> R<Wit<()>> {
        let n = self.table.get(&this)?.nursery.clone();
        n.cancel().await;
        Ok(Ok(()))
    }

    async fn subscribe(&mut self, this: Resource<NurseryRes>) -> R<Resource<DynPollable>> {
        subscribe(&mut self.table, this)
    }

    async fn drop(&mut self, this: Resource<NurseryRes>) -> R<()> {
        let res = self.table.delete(this)?;
        // A nursery dropped without `wait` still ends all its children
        // before the guest continues.
        let _ = res.nursery.wait().await;
        self.close(&res.nursery);
        Ok(())
    }
}

impl ActorState {
    fn push_portal(&mut self, r: Result<Portal, RemoteError>) -> R<Wit<Resource<PortalRes>>> {
        match r {
            Ok(portal) => Ok(Ok(self.table.push(PortalRes {
                portal,
                cancel: self.ctx.cancel.clone(),
            })?)),
            Err(e) => wit(Err(e)),
        }
    }

    fn close(&mut self, n: &Arc<Nursery>) {
        self.open.retain(|o| !Arc::ptr_eq(o, n));
    }
}
