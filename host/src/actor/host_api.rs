//! The `tractor:actor` WIT imports, implemented on top of [`crate::nursery`].
//!
//! Every import that can block goes through [`Scopes::guard`], which
//! races it against the actor's cancellation and the scopes of the guest's
//! open nurseries, as trio's checkpoints do.

use crate::context::{CalleeContext, CallerContext, Receiver};
use crate::error::{ErrorKind, RemoteError};
use crate::nursery::{self, ActorScope, CallResult, Nursery, PendingCall, Portal, SpawnOptions};
use crate::sandbox::{AddrRule, DirGrant, Grants, MemoryLimiter};
use crate::spawn::Backend;
use crate::wire::ContextOutcome;
use std::future::Future;
use std::sync::{Arc, Mutex};
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
        "tractor:actor/runtime.context": ContextRes,
        "tractor:actor/runtime.stream": StreamRes,
        "tractor:actor/runtime.cancel-scope": CancelScopeRes,
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
    pub actor: Arc<ActorScope>,
    /// Nurseries the guest has open, innermost last: their scopes are part
    /// of every checkpoint.
    open: Vec<Arc<Nursery>>,
    /// For an instance serving a context: that context, whose cancellation
    /// is part of every checkpoint.
    callee: Option<Arc<CalleeContext>>,
    /// The plain call being served, whose caller may cancel it.
    call: Option<Arc<CallScope>>,
    /// Cancel scopes the guest has open.
    guest_scopes: Vec<Arc<GuestScope>>,
    /// Contexts the guest has open as a caller: a callee's failure is
    /// raised at the guest's next checkpoint.
    contexts: Vec<Arc<CallerContext>>,
    /// Enforces the actor's memory limit for this store.
    pub limiter: MemoryLimiter,
    /// Epoch ticks the current call has spent running wasm.
    pub cpu_ticks: u64,
}

/// A cancel scope opened by the guest.
#[derive(Debug, Default)]
pub struct GuestScope {
    token: CancellationToken,
    /// Set when the deadline (rather than `cancel`) cancelled it.
    deadline: Mutex<Option<std::time::Duration>>,
}

/// Guest handle on a cancel scope.
pub struct CancelScopeRes {
    scope: Arc<GuestScope>,
}

/// The cancel scope of one plain call served by the main instance.
#[derive(Debug, Default)]
pub struct CallScope {
    /// Cancelled when the caller cancels the call.
    pub token: CancellationToken,
    by: Mutex<Option<String>>,
}

impl CallScope {
    /// Cancel the call on behalf of `by`.
    pub fn cancel(&self, by: &str) {
        self.by.lock().unwrap().get_or_insert_with(|| by.to_string());
        self.token.cancel();
    }

    /// The error a checkpoint raises once the call is cancelled.
    pub fn error(&self, actor: &ActorScope) -> Option<RemoteError> {
        if !self.token.is_cancelled() {
            return None;
        }
        let by = self.by.lock().unwrap().clone().unwrap_or_default();
        Some(RemoteError::cancelled(format!("call cancelled by '{by}'")).with_actor(&actor.me.name, &actor.me.uid))
    }
}

impl WasiView for ActorState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl ActorState {
    /// State for a new store.
    pub fn new(
        wasi: WasiCtx,
        actor: Arc<ActorScope>,
        callee: Option<Arc<CalleeContext>>,
        limiter: MemoryLimiter,
    ) -> ActorState {
        ActorState {
            wasi,
            table: ResourceTable::new(),
            actor,
            open: Vec::new(),
            callee,
            call: None,
            guest_scopes: Vec::new(),
            contexts: Vec::new(),
            limiter,
            cpu_ticks: 0,
        }
    }

    /// Set the scope of the plain call about to be served.
    pub fn set_call(&mut self, call: Option<Arc<CallScope>>) {
        self.call = call;
    }

    /// A `Send` snapshot of the current scopes, for checkpoints.
    fn scopes(&self) -> Scopes {
        Scopes {
            actor: self.actor.clone(),
            open: self.open.clone(),
            callee: self.callee.clone(),
            call: self.call.clone(),
            guest: self.guest_scopes.clone(),
            contexts: self.contexts.clone(),
        }
    }

    fn err(&self, kind: ErrorKind, msg: impl Into<String>) -> RemoteError {
        RemoteError::new(kind, msg).with_actor(&self.actor.me.name, &self.actor.me.uid)
    }
}

/// The cancel scopes a checkpoint is subject to: the actor's own and those
/// of the guest's open nurseries.
struct Scopes {
    actor: Arc<ActorScope>,
    open: Vec<Arc<Nursery>>,
    callee: Option<Arc<CalleeContext>>,
    call: Option<Arc<CallScope>>,
    guest: Vec<Arc<GuestScope>>,
    contexts: Vec<Arc<CallerContext>>,
}

impl Scopes {
    /// The error to raise if the current scope is cancelled.
    fn cancel_error(&self) -> Option<RemoteError> {
        if self.actor.cancel.is_cancelled() {
            return Some(self.actor.cancelled_error());
        }
        if let Some(e) = self.callee.as_ref().and_then(|c| c.cancel_error()) {
            return Some(e);
        }
        if let Some(e) = self.call.as_ref().and_then(|c| c.error(&self.actor)) {
            return Some(e);
        }
        if let Some(e) = self.contexts.iter().find_map(|c| c.failure()) {
            return Some(e);
        }
        if let Some(g) = self.guest.iter().find(|g| g.token.is_cancelled()) {
            let why = match *g.deadline.lock().unwrap() {
                Some(d) => format!("cancelled: the scope's deadline of {d:?} passed"),
                None => "cancelled: the scope was cancelled".to_string(),
            };
            return Some(RemoteError::cancelled(why).with_actor(&self.actor.me.name, &self.actor.me.uid));
        }
        self.open.iter().rev().find_map(|n| n.cancel_reason())
    }

    /// Run `fut` unless or until the current scope is cancelled.
    async fn guard<T>(&self, fut: impl Future<Output = T>) -> Result<T, RemoteError> {
        if let Some(e) = self.cancel_error() {
            return Err(e);
        }
        let mut tokens = vec![self.actor.cancel.clone()];
        tokens.extend(self.open.iter().map(|n| n.scope().clone()));
        tokens.extend(self.callee.iter().map(|c| c.cancel.clone()));
        tokens.extend(self.call.iter().map(|c| c.token.clone()));
        tokens.extend(self.guest.iter().map(|g| g.token.clone()));
        tokens.extend(self.contexts.iter().map(|c| c.failed.clone()));
        let any = futures::future::select_all(tokens.iter().map(|t| Box::pin(t.cancelled())));
        tokio::select! {
            v = fut => Ok(v),
            _ = any => Err(self.cancel_error().unwrap_or_else(|| self.actor.cancelled_error())),
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

/// Guest handle on a context, from either side.
pub struct ContextRes {
    role: Role,
    cancel: CancellationToken,
}

enum Role {
    Caller(nursery::Context),
    Callee(Arc<CalleeContext>),
}

impl ContextRes {
    /// The callee's handle, passed to the context function.
    pub fn callee(ctx: Arc<CalleeContext>, cancel: CancellationToken) -> ContextRes {
        ContextRes { role: Role::Callee(ctx), cancel }
    }
}

/// Guest handle on a stream consumer.
pub struct StreamRes {
    rx: Arc<tokio::sync::Mutex<Receiver>>,
    cancel: CancellationToken,
}

enum CallState {
    Pending(PendingCall),
    Done(CallResult),
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

#[wasmtime_wasi::async_trait]
impl Pollable for ContextRes {
    async fn ready(&mut self) {
        if let Role::Caller(c) = &self.role {
            tokio::select! {
                _ = c.result() => {},
                _ = self.cancel.cancelled() => {}
            }
        }
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for StreamRes {
    async fn ready(&mut self) {
        let rx = self.rx.clone();
        tokio::select! {
            _ = async move { rx.lock().await.ready().await } => {},
            _ = self.cancel.cancelled() => {}
        }
    }
}

/// WIT `error` → RemoteError (the tree rebuilt from pre-order + depth).
pub fn from_wit(e: types::Error) -> RemoteError {
    fn node(
        kind: types::ErrorKind,
        actor_name: String,
        actor_uid: String,
        message: String,
        backtrace: Option<String>,
    ) -> RemoteError {
        RemoteError { kind: kind_from_wit(kind), actor_name, actor_uid, message, backtrace, causes: Vec::new() }
    }
    fn attach(parent: &mut RemoteError, child: RemoteError, depth: u32) {
        match parent.causes.last_mut() {
            Some(last) if depth > 1 => attach(last, child, depth - 1),
            _ => parent.causes.push(child),
        }
    }
    let mut root = node(e.kind, e.actor_name, e.actor_uid, e.message, e.backtrace);
    for n in e.causes {
        let depth = n.depth;
        attach(&mut root, node(n.kind, n.actor_name, n.actor_uid, n.message, n.backtrace), depth);
    }
    root
}

fn kind_from_wit(k: types::ErrorKind) -> ErrorKind {
    use types::ErrorKind as W;
    match k {
        W::Guest => ErrorKind::Guest,
        W::Trap => ErrorKind::Trap,
        W::Cancelled => ErrorKind::Cancelled,
        W::BadArgs => ErrorKind::BadArgs,
        W::NoSuchExport => ErrorKind::NoSuchExport,
        W::NoSuchComponent => ErrorKind::NoSuchComponent,
        W::SpawnFailed => ErrorKind::SpawnFailed,
        W::ActorDied => ErrorKind::ActorDied,
        W::ActorGone => ErrorKind::ActorGone,
        W::Protocol => ErrorKind::Protocol,
        W::Group => ErrorKind::Group,
        W::Closed => ErrorKind::Closed,
        W::Lagged => ErrorKind::Lagged,
        W::Limit => ErrorKind::Limit,
        W::Denied => ErrorKind::Denied,
        W::Internal => ErrorKind::Internal,
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
        ErrorKind::Closed => W::Closed,
        ErrorKind::Lagged => W::Lagged,
        ErrorKind::Limit => W::Limit,
        ErrorKind::Denied => W::Denied,
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
        ciborium::from_reader(args)
            .map_err(|e| self.err(ErrorKind::BadArgs, format!("bad arguments to `{func}`: not valid CBOR: {e}")))
    }
}

impl types::Host for ActorState {}

impl identity::Host for ActorState {
    async fn current(&mut self) -> R<identity::ActorInfo> {
        let me = &self.actor.me;
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

    async fn current_grants(&mut self) -> R<types::Grants> {
        let g = self.actor.grants.clone().unwrap_or_default();
        Ok(types::Grants {
            dirs: g
                .dirs
                .into_iter()
                .map(|d| types::DirGrant { host: d.host.display().to_string(), guest: d.guest, writable: d.writable })
                .collect(),
            env: g.env.into_iter().collect(),
            args: g.args,
            connect: g.connect.iter().map(ToString::to_string).collect(),
            bind: g.bind.iter().map(ToString::to_string).collect(),
        })
    }
}

/// Grants a guest asked for, checked for form (whether it may give them is
/// checked at spawn).
fn grants_from_wit(g: types::Grants, err: impl Fn(String) -> RemoteError) -> Result<Grants, RemoteError> {
    let rules = |list: Vec<String>, what: &str| {
        list.into_iter()
            .map(|t| {
                AddrRule::parse(&t).ok_or_else(|| err(format!("grants.{what}: `{t}` is not an address or network")))
            })
            .collect::<Result<Vec<_>, _>>()
    };
    Ok(Grants {
        dirs: g.dirs.into_iter().map(|d| DirGrant::new(d.host, d.guest, d.writable)).collect(),
        env: g.env.into_iter().collect(),
        args: g.args,
        connect: rules(g.connect, "connect")?,
        bind: rules(g.bind, "bind")?,
    })
}

impl log::Host for ActorState {
    async fn log(&mut self, level: log::Level, message: String) -> R<()> {
        let actor = &self.actor.me.name;
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
            CallState::Taken => Err(self.err(ErrorKind::BadArgs, "the outcome of this call was already taken")),
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
        Ok(identity::ActorInfo { name: i.name, uid: i.uid, pid: i.pid, depth: i.depth, component: i.component })
    }

    async fn run(&mut self, this: Resource<PortalRes>, func: String, args: Vec<u8>) -> R<Wit<Resource<CallRes>>> {
        let args = match self.parse_args(&func, &args) {
            Ok(a) => a,
            Err(e) => return wit(Err(e)),
        };
        let pending = match self.table.get(&this)?.portal.run(&func, args) {
            Ok(p) => p,
            Err(e) => return wit(Err(e)),
        };
        let res = self.table.push(CallRes { state: CallState::Pending(pending), cancel: self.actor.cancel.clone() })?;
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
        let _teardown = self.actor.tearing_down();
        portal.cancel_actor(&self.actor.me.name).await;
        Ok(Ok(()))
    }

    async fn open_context(
        &mut self,
        this: Resource<PortalRes>,
        func: String,
        args: Vec<u8>,
    ) -> R<Wit<(Resource<ContextRes>, Vec<u8>)>> {
        let args = match self.parse_args(&func, &args) {
            Ok(a) => a,
            Err(e) => return wit(Err(e)),
        };
        let portal = self.table.get(&this)?.portal.clone();
        let me = (self.actor.me.name.clone(), self.actor.me.uid.clone());
        let opened = self.scopes().guard(portal.open_context(&func, args, (&me.0, &me.1))).await.and_then(|r| r);
        match opened {
            Ok((ctx, first)) => {
                self.contexts.push(ctx.state());
                let res = self.table.push(ContextRes { role: Role::Caller(ctx), cancel: self.actor.cancel.clone() })?;
                Ok(Ok((res, first)))
            }
            Err(e) => wit(Err(e)),
        }
    }

    async fn drop(&mut self, this: Resource<PortalRes>) -> R<()> {
        // The nursery still owns the child; dropping the handle does not end it.
        self.table.delete(this)?;
        Ok(())
    }
}

impl runtime::HostNursery for ActorState {
    async fn new(&mut self) -> R<Resource<NurseryRes>> {
        let nursery = Arc::new(Nursery::open(&self.actor));
        self.open.push(nursery.clone());
        Ok(self.table.push(NurseryRes { nursery, cancel: self.actor.cancel.clone() })?)
    }

    async fn start_actor(
        &mut self,
        this: Resource<NurseryRes>,
        name: String,
        component: Option<String>,
    ) -> R<Wit<Resource<PortalRes>>> {
        self.spawn(this, name, component, None, None).await
    }

    async fn start_actor_with(
        &mut self,
        this: Resource<NurseryRes>,
        name: String,
        component: Option<String>,
        options: types::SpawnOptions,
    ) -> R<Wit<Resource<PortalRes>>> {
        self.spawn(this, name, component, None, Some(options)).await
    }

    async fn run_in_actor(
        &mut self,
        this: Resource<NurseryRes>,
        name: String,
        component: Option<String>,
        func: String,
        args: Vec<u8>,
    ) -> R<Wit<Resource<PortalRes>>> {
        self.spawn(this, name, component, Some((func, args)), None).await
    }

    async fn run_in_actor_with(
        &mut self,
        this: Resource<NurseryRes>,
        name: String,
        component: Option<String>,
        func: String,
        args: Vec<u8>,
        options: types::SpawnOptions,
    ) -> R<Wit<Resource<PortalRes>>> {
        self.spawn(this, name, component, Some((func, args)), Some(options)).await
    }

    async fn wait(&mut self, this: Resource<NurseryRes>) -> R<Wit<()>> {
        let n = self.table.get(&this)?.nursery.clone();
        let _teardown = self.actor.tearing_down();
        // `wait` itself handles the actor's cancellation and failing
        // children; an enclosing cancel scope or cancelled call makes it
        // cancel the children, still waiting for them as a nursery must.
        let outer = Scopes { open: Vec::new(), ..self.scopes() };
        let r = match outer.guard(n.wait()).await {
            Ok(r) => r,
            Err(why) => {
                n.cancel().await;
                // trio's rule: a cancelled nursery absorbs the cancellation,
                // never its children's real failures.
                match n.wait().await {
                    Err(failed) if !failed.is_cancelled() => Err(if why.is_cancelled() {
                        failed
                    } else {
                        RemoteError::group(vec![why, failed], &self.actor.me.name, &self.actor.me.uid)
                            .expect("two errors")
                    }),
                    _ => Err(why),
                }
            }
        };
        self.close(&n);
        wit(r)
    }

    async fn cancel(&mut self, this: Resource<NurseryRes>) -> R<Wit<()>> {
        let n = self.table.get(&this)?.nursery.clone();
        let _teardown = self.actor.tearing_down();
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
        let _teardown = self.actor.tearing_down();
        let _ = res.nursery.wait().await;
        self.close(&res.nursery);
        Ok(())
    }
}

impl ActorState {
    /// The four nursery spawn imports: check the arguments and grants, spawn
    /// (a checkpoint), hand the guest a portal.
    async fn spawn(
        &mut self,
        this: Resource<NurseryRes>,
        name: String,
        component: Option<String>,
        run: Option<(String, Vec<u8>)>,
        options: Option<types::SpawnOptions>,
    ) -> R<Wit<Resource<PortalRes>>> {
        let (grants, backend) = options.map_or((None, None), |o| (o.grants, o.backend));
        let run = match run.map(|(func, args)| self.parse_args(&func, &args).map(|a| (func, a))).transpose() {
            Ok(r) => r,
            Err(e) => return wit(Err(e)),
        };
        let grants = match grants.map(|g| grants_from_wit(g, |m| self.err(ErrorKind::BadArgs, m))).transpose() {
            Ok(g) => g,
            Err(e) => return wit(Err(e)),
        };
        let backend = backend.map(|b| match b {
            types::SpawnBackend::Exec => Backend::Exec,
            types::SpawnBackend::Forkserver => Backend::Forkserver,
            types::SpawnBackend::Thread => Backend::Thread,
        });
        let n = self.table.get(&this)?.nursery.clone();
        let opts = SpawnOptions { grants, backend };
        let r = self.scopes().guard(n.spawn(&name, component.as_deref(), run, opts)).await.and_then(|r| r);
        self.push_portal(r)
    }

    fn push_portal(&mut self, r: Result<Portal, RemoteError>) -> R<Wit<Resource<PortalRes>>> {
        match r {
            Ok(portal) => Ok(Ok(self.table.push(PortalRes { portal, cancel: self.actor.cancel.clone() })?)),
            Err(e) => wit(Err(e)),
        }
    }

    fn close(&mut self, n: &Arc<Nursery>) {
        self.open.retain(|o| !Arc::ptr_eq(o, n));
    }
}

impl runtime::HostContext for ActorState {
    async fn started(&mut self, this: Resource<ContextRes>, value: Vec<u8>) -> R<Wit<()>> {
        let r = match &self.table.get(&this)?.role {
            Role::Callee(c) => c.started(value),
            Role::Caller(_) => {
                Err(self.err(ErrorKind::BadArgs, "`started` is for the callee of a context, not its caller"))
            }
        };
        wit(r)
    }

    async fn open_stream(&mut self, this: Resource<ContextRes>) -> R<Wit<Resource<StreamRes>>> {
        let rx = match &self.table.get(&this)?.role {
            Role::Callee(c) => c.open_stream(),
            Role::Caller(c) => c.open_stream(),
        };
        match rx {
            Ok(rx) => {
                let res = StreamRes { rx: Arc::new(tokio::sync::Mutex::new(rx)), cancel: self.actor.cancel.clone() };
                Ok(Ok(self.table.push(res)?))
            }
            Err(e) => wit(Err(e)),
        }
    }

    async fn result(&mut self, this: Resource<ContextRes>) -> R<Wit<runtime::ContextOutcome>> {
        let outcome = match &self.table.get(&this)?.role {
            Role::Caller(c) => {
                let c = c.state();
                self.scopes().guard(async move { c.outcome().await }).await
            }
            Role::Callee(_) => Err(self.err(ErrorKind::BadArgs, "`result` is for the caller of a context")),
        };
        wit(outcome.and_then(|o| match o {
            ContextOutcome::Returned(v) => Ok(runtime::ContextOutcome::Returned(cbor_bytes(&v))),
            ContextOutcome::Cancelled { by } => Ok(runtime::ContextOutcome::Cancelled(by)),
            ContextOutcome::Failed(e) => Err(e),
        }))
    }

    async fn subscribe_result(&mut self, this: Resource<ContextRes>) -> R<Resource<DynPollable>> {
        subscribe(&mut self.table, this)
    }

    async fn cancel(&mut self, this: Resource<ContextRes>, reason: Option<types::Error>) -> R<()> {
        let reason = reason.map(|e| from_wit(e).attribute_if_blank(&self.actor.me.name, &self.actor.me.uid));
        match &self.table.get(&this)?.role {
            Role::Caller(c) => c.cancel(reason),
            Role::Callee(c) => c.cancel_by(&self.actor.me.name, reason),
        }
        Ok(())
    }

    async fn drop(&mut self, this: Resource<ContextRes>) -> R<()> {
        if let Role::Caller(c) = self.table.delete(this)?.role {
            let state = c.state();
            self.contexts.retain(|o| !Arc::ptr_eq(o, &state));
        }
        Ok(())
    }
}

impl runtime::HostStream for ActorState {
    async fn send(&mut self, this: Resource<StreamRes>, value: Vec<u8>) -> R<Wit<()>> {
        let rx = self.table.get(&this)?.rx.clone();
        let core = rx.lock().await.core().clone();
        wit(self.scopes().guard(core.send(value)).await.and_then(|r| r))
    }

    async fn receive(&mut self, this: Resource<StreamRes>) -> R<Wit<Option<Vec<u8>>>> {
        let rx = self.table.get(&this)?.rx.clone();
        wit(self.scopes().guard(async move { rx.lock().await.recv().await }).await.and_then(|r| r))
    }

    async fn subscribe_ready(&mut self, this: Resource<StreamRes>) -> R<Resource<DynPollable>> {
        subscribe(&mut self.table, this)
    }

    async fn close(&mut self, this: Resource<StreamRes>) -> R<()> {
        let rx = self.table.get(&this)?.rx.clone();
        rx.lock().await.core().close();
        Ok(())
    }

    async fn subscribe(&mut self, this: Resource<StreamRes>, capacity: u32) -> R<Resource<StreamRes>> {
        let rx = self.table.get(&this)?.rx.clone();
        let sub = rx.lock().await.subscribe(capacity);
        let res = StreamRes { rx: Arc::new(tokio::sync::Mutex::new(sub)), cancel: self.actor.cancel.clone() };
        Ok(self.table.push(res)?)
    }

    async fn drop(&mut self, this: Resource<StreamRes>) -> R<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

impl runtime::HostCancelScope for ActorState {
    async fn new(&mut self, timeout_nanos: Option<u64>) -> R<Resource<CancelScopeRes>> {
        let scope = Arc::new(GuestScope::default());
        if let Some(nanos) = timeout_nanos {
            let d = std::time::Duration::from_nanos(nanos);
            let s = scope.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = tokio::time::sleep(d) => {
                        *s.deadline.lock().unwrap() = Some(d);
                        s.token.cancel();
                    }
                    _ = s.token.cancelled() => {}
                }
            });
        }
        self.guest_scopes.push(scope.clone());
        Ok(self.table.push(CancelScopeRes { scope })?)
    }

    async fn cancel(&mut self, this: Resource<CancelScopeRes>) -> R<()> {
        self.table.get(&this)?.scope.token.cancel();
        Ok(())
    }

    async fn cancelled(&mut self, this: Resource<CancelScopeRes>) -> R<bool> {
        Ok(self.table.get(&this)?.scope.token.is_cancelled())
    }

    async fn drop(&mut self, this: Resource<CancelScopeRes>) -> R<()> {
        let res = self.table.delete(this)?;
        // Closing the scope also ends its deadline timer.
        res.scope.token.cancel();
        self.guest_scopes.retain(|g| !Arc::ptr_eq(g, &res.scope));
        Ok(())
    }
}
