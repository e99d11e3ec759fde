//! The `tractor:actor` WIT imports, implemented on top of [`crate::nursery`]
//! and [`crate::context`]: one file per WIT interface or resource, as
//! wasmtime-wasi's `p2/host/` does.
//!
//! Every import that can block goes through [`Scopes::guard`]
//! (`scopes.rs`), which races it against the actor's cancellation and the
//! scopes of the guest's open nurseries, as trio's checkpoints do. Imports
//! are written as inner functions failing with [`Fail`] and wrapped once by
//! [`wit`]: a guest error becomes the WIT `error` result, a trap stays a
//! trap.

pub mod aio;
mod call;
mod cancel_scope;
mod context;
pub(crate) mod convert;
mod discovery;
mod identity;
mod log;
mod nursery;
mod portal;
mod runtime;
mod scopes;
mod stream;

pub use call::CallRes;
pub use cancel_scope::CancelScopeRes;
pub use context::ContextRes;
pub use nursery::NurseryRes;
pub use portal::PortalRes;
pub(crate) use scopes::Scopes;
pub use scopes::{CallScope, GuestScope};
pub use stream::StreamRes;

use crate::context::{CalleeContext, CallerContext};
use crate::error::{ErrorKind, RemoteError};
use crate::nursery::{ActorScope, Nursery};
use crate::sandbox::MemoryLimiter;
use std::future::Future;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use wasmtime::component::{ResourceTable, ResourceTableError};
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

pub use tractor::actor::types;

/// Store data of an actor process.
pub struct ActorState {
    /// WASI context (capabilities).
    pub wasi: WasiCtx,
    /// Resources handed to the guest.
    pub table: ResourceTable,
    /// Who we are and how we spawn.
    pub actor: Arc<ActorScope>,
    /// The scopes of the one task of a sync instance.
    main: TaskScopes,
    /// An async instance's tasks (its calls and contexts being served) and
    /// their scopes, by the guest task serving each.
    pub(crate) tasks: std::collections::HashMap<wasmtime::component::GuestTaskId, TaskScopes>,
    /// Enforces the actor's memory limit for this store.
    pub limiter: MemoryLimiter,
    /// Epoch ticks the current call has spent running wasm.
    pub cpu_ticks: u64,
}

/// What one guest task's checkpoints are subject to, besides the actor's
/// own cancellation.
#[derive(Default)]
pub struct TaskScopes {
    /// Nurseries the task has open, innermost last: their scopes are part
    /// of every checkpoint.
    open: Vec<Arc<Nursery>>,
    /// For a task serving a context: that context, whose cancellation is
    /// part of every checkpoint.
    callee: Option<Arc<CalleeContext>>,
    /// The plain call being served, whose caller may cancel it.
    call: Option<Arc<CallScope>>,
    /// Cancel scopes the task has open.
    guest: Vec<Arc<GuestScope>>,
    /// Contexts the task has open as a caller: a callee's failure is
    /// raised at the task's next checkpoint.
    contexts: Vec<Arc<CallerContext>>,
}

impl TaskScopes {
    /// The scopes of a task serving a plain call or a context.
    pub fn serving(call: Option<Arc<CallScope>>, callee: Option<Arc<CalleeContext>>) -> TaskScopes {
        TaskScopes { call, callee, ..TaskScopes::default() }
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
            main: TaskScopes::serving(None, callee),
            tasks: Default::default(),
            limiter,
            cpu_ticks: 0,
        }
    }

    /// Set the scope of the plain call about to be served.
    pub fn set_call(&mut self, call: Option<Arc<CallScope>>) {
        self.main.call = call;
    }

    fn err(&self, kind: ErrorKind, msg: impl Into<String>) -> RemoteError {
        RemoteError::new(kind, msg).with_actor(&self.actor.me.name, &self.actor.me.uid)
    }

    /// The actor's cancellation, for a resource's pollable to wake on.
    fn cancel_token(&self) -> CancellationToken {
        self.actor.cancel.clone()
    }
}

impl types::Host for ActorState {}

/// What a host import fails with: a trap (a bad resource handle, a host
/// failure), or a tractor error the guest gets as its `error` result.
enum Fail {
    Trap(wasmtime::Error),
    Guest(RemoteError),
}

impl From<RemoteError> for Fail {
    fn from(e: RemoteError) -> Fail {
        Fail::Guest(e)
    }
}

impl From<ResourceTableError> for Fail {
    fn from(e: ResourceTableError) -> Fail {
        Fail::Trap(e.into())
    }
}

type R<T> = wasmtime::Result<T>;
type Wit<T> = Result<T, types::Error>;

/// An import's result as bindgen wants it: guest errors as the WIT
/// `error`, traps as traps.
fn wit<T>(r: Result<T, Fail>) -> R<Wit<T>> {
    match r {
        Ok(v) => Ok(Ok(v)),
        Err(Fail::Guest(e)) => Ok(Err(convert::to_wit(&e))),
        Err(Fail::Trap(t)) => Err(t),
    }
}

/// Wait for `fut` or for `cancel`, whichever comes first: what every
/// resource's pollable does, so a guest blocked in `poll` wakes up on
/// cancellation and sees `cancelled` from its next call.
async fn or_cancelled<T>(fut: impl Future<Output = T>, cancel: &CancellationToken) -> Option<T> {
    tokio::select! {
        v = fut => Some(v),
        _ = cancel.cancelled() => None,
    }
}
