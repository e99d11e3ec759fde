//! One component instance in one store: loading it and calling its exports
//! with CBOR arguments typed by the export's own signature.

use super::epoch::{InterruptFlag, Ticker, Unwind, TICK};
use super::imports::convert::WitError;
use super::imports::{ActorState, ContextRes};
use super::link::linked;
use crate::error::{ErrorKind, RemoteError};
use crate::nursery::CallResult;
use crate::sandbox::LimitExceeded;
use crate::value::{args_to_vals, results_to_cbor, val_to_cbor, Signature, WitType};
use crate::wire::ComponentEntry;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use wasmtime::component::{Func, Instance, InstancePre, Resource, ResourceType, Type, Val};
use wasmtime::{Engine, Store, Trap, UpdateDeadline, WasmBacktrace};

/// A component loaded and linked once per actor process; every instance
/// of the actor (the main one, one per open context) comes from it.
pub struct GuestTemplate {
    engine: Engine,
    /// Sync or async (one instance, every call a task).
    pub model: crate::component::Model,
    /// Epoch ticks of wasm one call may use (the CPU-time limit).
    cpu_budget: Option<(u64, u64)>,
    ticker: Ticker,
    pre: InstancePre<ActorState>,
    component_name: String,
    exports: Arc<Vec<String>>,
}

/// One instance of the actor's component in its own store.
pub struct Guest {
    pub(super) store: Store<ActorState>,
    instance: Instance,
    pub(super) exports: Arc<Vec<String>>,
    /// Exports resolved so far, with their signatures (derived once).
    resolved: HashMap<String, Arc<Export>>,
    pub(super) name: String,
    pub(super) uid: String,
    /// Set once the instance trapped: it must not be entered again.
    poisoned: bool,
}

/// A resolved export (shared, so a call does not copy the signature): the
/// function, its signature and whether its first
/// parameter is a `borrow<context>`.
pub(super) struct Export {
    pub(super) func: Func,
    pub(super) sig: Signature,
    pub(super) takes_context: bool,
}

impl GuestTemplate {
    /// Load the precompiled component at `cwasm` and link it.
    pub fn load(entry: &ComponentEntry, who: (&str, &str)) -> Result<GuestTemplate, RemoteError> {
        let linked = linked(entry).map_err(|(kind, msg)| RemoteError::new(kind, msg).with_actor(who.0, who.1))?;
        let engine = crate::component::shared_engine(entry.model)
            .map_err(|e| RemoteError::new(ErrorKind::Internal, format!("{e:#}")).with_actor(who.0, who.1))?;
        Ok(GuestTemplate {
            model: entry.model,
            ticker: Ticker::get(&engine),
            engine,
            cpu_budget: entry.limits.cpu_ms_per_call.map(|ms| (ms.div_ceil(TICK.as_millis() as u64).max(1), ms)),
            pre: linked.pre.clone(),
            component_name: entry.name.clone(),
            exports: Arc::new(linked.exports.iter().map(|(name, _)| name.clone()).collect()),
        })
    }

    /// A fresh instance in a fresh store; `interrupt` stops it running wasm
    /// (a cancelled one once it spins, see [`Unwind`]), `stuck` at once.
    pub async fn instantiate(
        &self,
        state: ActorState,
        interrupt: Vec<InterruptFlag>,
        stuck: Option<InterruptFlag>,
    ) -> Result<Guest, RemoteError> {
        let name = state.actor.me.name.clone();
        let uid = state.actor.me.uid.clone();
        let mut store = Store::new(&self.engine, state);
        let mut unwind = Unwind::default();
        self.ticker.watch(&mut store, &unwind);
        store.set_epoch_deadline(1);
        store.limiter(|s| &mut s.limiter);
        let budget = self.cpu_budget;
        store.epoch_deadline_callback(move |mut cx| {
            // Interrupted wasm may still unwind (say, from the `cancelled`
            // a checkpoint just returned); wasm that spins is trapped.
            let interrupted = interrupt.iter().any(|f| f.load(Ordering::Relaxed));
            if unwind.spinning(interrupted) || stuck.as_ref().is_some_and(|f| f.load(Ordering::Relaxed)) {
                return Err(Trap::Interrupt.into());
            }
            // Each tick that finds this store in wasm is TICK of CPU time.
            if let Some((ticks, ms)) = budget {
                let data = cx.data_mut();
                data.cpu_ticks += 1;
                if data.cpu_ticks > ticks {
                    let value = format!("{ms}ms");
                    return Err(wasmtime::Error::new(LimitExceeded { limit: "cpu-per-call", value }));
                }
            }
            // A guest computing for a while lets the actor's other tasks
            // (frames from the parent, other contexts) run: the actor
            // process has one thread.
            Ok(UpdateDeadline::YieldCustom(1, Box::pin(tokio::task::yield_now())))
        });
        let instance = self.pre.instantiate_async(&mut store).await.map_err(|e| {
            let mut err = trap_error(&e, &name, &uid);
            err.message = format!("component `{}` failed to start: {}", self.component_name, err.message);
            err
        })?;
        Ok(Guest {
            store,
            instance,
            exports: self.exports.clone(),
            resolved: HashMap::new(),
            name,
            uid,
            poisoned: false,
        })
    }
}

impl Guest {
    /// True once a trap made the instance unusable.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// Mark the instance unusable (a call into it was abandoned mid-way).
    pub fn poison(&mut self) {
        self.poisoned = true;
    }

    /// The store's host state.
    pub fn state_mut(&mut self) -> &mut ActorState {
        self.store.data_mut()
    }

    fn err(&self, kind: ErrorKind, msg: impl Into<String>) -> RemoteError {
        RemoteError::new(kind, msg).with_actor(&self.name, &self.uid)
    }

    pub(super) fn lookup(&mut self, name: &str) -> Result<Arc<Export>, RemoteError> {
        if let Some(hit) = self.resolved.get(name) {
            return Ok(hit.clone());
        }
        let func = match name.split_once('#') {
            Some((iface, f)) => self
                .instance
                .get_export_index(&mut self.store, None, iface)
                .and_then(|i| self.instance.get_export_index(&mut self.store, Some(&i), f))
                .and_then(|fi| self.instance.get_func(&mut self.store, fi)),
            None => self.instance.get_func(&mut self.store, name),
        };
        let Some(func) = func else {
            return Err(self.err(
                ErrorKind::NoSuchExport,
                format!("component has no export `{name}` (exports: {})", self.exports.join(", ")),
            ));
        };
        let ty = func.ty(&self.store);
        let takes_context = ty.params().next().is_some_and(|(_, t)| match t {
            // An async export may take the context as its own (the
            // guest drops it): componentize-py cannot yet release a
            // borrow an async export was given.
            Type::Borrow(r) | Type::Own(r) => r == ResourceType::host::<ContextRes>(),
            _ => false,
        });
        let mut sig = Signature::from_func_type(name, &ty);
        if takes_context {
            sig.params.remove(0);
        }
        let export = Export { func, sig, takes_context };
        let export = Arc::new(export);
        self.resolved.insert(name.to_string(), export.clone());
        Ok(export)
    }

    /// Call export `func` with CBOR `args`.
    ///
    /// An export whose result is `result<T, E>` returns `T` on `ok`, and on
    /// `err` fails with a `guest` error built from `E`.
    pub async fn call(&mut self, func: &str, args: &ciborium::Value) -> CallResult {
        let export = self.lookup(func)?;
        if export.takes_context {
            return Err(self.err(
                ErrorKind::BadArgs,
                format!("export `{func}` takes a context: open it with open-context, not run"),
            ));
        }
        self.invoke(func, &export, None, args).await
    }

    /// Run context function `func` with `ctx` as its first argument.
    pub async fn call_context(&mut self, func: &str, args: &ciborium::Value, ctx: ContextRes) -> CallResult {
        let export = self.lookup(func)?;
        if !export.takes_context {
            return Err(self.err(
                ErrorKind::BadArgs,
                format!("export `{func}` does not take a context as its first parameter: call it with run"),
            ));
        }
        let res = self
            .store
            .data_mut()
            .table
            .push(ctx)
            .map_err(|e| self.err(ErrorKind::Internal, format!("resource table: {e}")))?;
        // A host-owned handle, lent to the guest as the `borrow<context>`
        // for the duration of the call (borrows cannot be made outside one).
        let lent = Resource::<ContextRes>::new_own(res.rep())
            .try_into_resource_any(&mut self.store)
            .map_err(|e| self.err(ErrorKind::Internal, format!("cannot pass the context: {e:#}")))?;
        let outcome = self.invoke(func, &export, Some(Val::Resource(lent)), args).await;
        if !self.poisoned {
            let _ = lent.resource_drop_async(&mut self.store).await;
        }
        let _ = self.store.data_mut().table.delete(res);
        outcome
    }

    async fn invoke(&mut self, func: &str, export: &Export, first: Option<Val>, args: &ciborium::Value) -> CallResult {
        if self.poisoned {
            return Err(self.err(ErrorKind::ActorGone, "the actor's instance trapped earlier; it takes no more calls"));
        }
        let sig = &export.sig;
        let mut vals = args_to_vals(sig, args).map_err(|e| self.err(ErrorKind::BadArgs, e.to_string()))?;
        if let Some(first) = first {
            vals.insert(0, first);
        }
        let mut results = vec![Val::Bool(false); usize::from(sig.results.is_some())];
        self.store.data_mut().cpu_ticks = 0;
        if let Err(e) = export.func.call_async(&mut self.store, &vals, &mut results).await {
            self.poisoned = true;
            return Err(trap_error(&e, &self.name, &self.uid));
        }
        Who(&self.name, &self.uid).finish(func, sig, &results)
    }
}

/// The actor an instance's errors are attributed to (name, uid).
pub(super) struct Who<'a>(pub &'a str, pub &'a str);

impl Who<'_> {
    fn err(&self, kind: ErrorKind, msg: impl Into<String>) -> RemoteError {
        RemoteError::new(kind, msg).with_actor(self.0, self.1)
    }

    /// An export's `results` as its outcome: `ok(v)` of a `result` is `v`,
    /// `err(e)` a `guest` error; anything else is the value.
    pub(super) fn finish(&self, func: &str, sig: &Signature, results: &[Val]) -> CallResult {
        match (&sig.results, results.first()) {
            (Some(WitType::Result { err, .. }), Some(Val::Result(r))) => match r {
                Ok(v) => v.as_deref().map_or(Ok(ciborium::Value::Null), |v| self.to_cbor(v)),
                Err(e) => Err(self.guest_error(err.as_deref(), e.as_deref())),
            },
            _ => results_to_cbor(results)
                .map_err(|e| self.err(ErrorKind::Internal, format!("cannot encode result of `{func}`: {e}"))),
        }
    }

    fn to_cbor(&self, v: &Val) -> CallResult {
        val_to_cbor(v).map_err(|e| self.err(ErrorKind::Internal, format!("cannot encode result: {e}")))
    }

    /// Turn an export's `err(e)` into a remote error: a `tractor:actor/types.error`
    /// keeps its kind and causes; anything else becomes the message.
    fn guest_error(&self, ty: Option<&WitType>, v: Option<&Val>) -> RemoteError {
        let Some(v) = v else {
            return self.err(ErrorKind::Guest, "the guest returned an error");
        };
        let cbor = match val_to_cbor(v) {
            Ok(c) => c,
            Err(e) => return self.err(ErrorKind::Guest, format!("the guest returned an unencodable error: {e}")),
        };
        if let (Some(WitType::Record(_)), Ok(rec)) = (ty, cbor.deserialized::<WitError>()) {
            return rec.into_remote().attribute_if_blank(self.0, self.1).relayed_by(self.0, self.1);
        }
        let message = match cbor {
            ciborium::Value::Text(s) => s,
            other => crate::wire::diagnostic(&other),
        };
        self.err(ErrorKind::Guest, message)
    }
}

/// A trap or host error from wasmtime, as a remote error with the wasm
/// backtrace.
pub fn trap_error(e: &wasmtime::Error, name: &str, uid: &str) -> RemoteError {
    let backtrace = e.downcast_ref::<WasmBacktrace>().map(|bt| bt.to_string());
    if let Some(limit) = e.downcast_ref::<LimitExceeded>() {
        return RemoteError::new(ErrorKind::Limit, limit.to_string()).with_actor(name, uid).with_backtrace(backtrace);
    }
    let (kind, message) = match e.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => {
            (ErrorKind::Cancelled, "interrupted: the guest was cancelled while running".to_string())
        }
        // Trap's own text already starts with "wasm trap: ".
        Some(t) => (ErrorKind::Trap, t.to_string()),
        None => (ErrorKind::Trap, format!("{:#}", e)),
    };
    RemoteError::new(kind, message).with_actor(name, uid).with_backtrace(backtrace)
}
