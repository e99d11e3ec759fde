//! # tractor: the Rust guest SDK
//!
//! Write an actor as a plain wasm component whose exports are the functions
//! it serves, and use this crate to spawn and call other actors:
//!
//! ```ignore
//! tractor::bindings!("../../wit", r#"
//!     package example:hello;
//!     world hello {
//!         include tractor:actor/imports@0.1.0;
//!         use tractor:actor/types@0.1.0.{error};
//!         export main: func() -> result<_, error>;
//!         export double: func(x: u64) -> u64;
//!     }
//! "#);
//!
//! struct Actor;
//! impl Guest for Actor {
//!     fn main() -> tractor::Result<()> {
//!         tractor::open_nursery(|n| {
//!             let p = n.run_in_actor("doubler", "double", &(21u64,))?;
//!             let x: u64 = p.result()?;
//!             println!("got {x}");
//!             Ok(())
//!         })
//!     }
//!     fn double(x: u64) -> u64 { x * 2 }
//! }
//! export!(Actor);
//! ```
//!
//! Every blocking call here is a *checkpoint*: if the actor (or a nursery
//! whose child failed) is cancelled, it returns an [`Error`] of kind
//! `Cancelled` (or the failure itself) instead; propagate it with `?`.

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::marker::PhantomData;
use std::time::Duration;

/// Bindings generated from the `tractor:actor` WIT package.
pub mod wit {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "tractor:actor/imports",
        generate_all,
    });
    pub use self::tractor::actor::{identity, log, runtime, types};
    pub use self::wasi::io::poll;
}

pub use ciborium::Value;
pub use wit::identity::ActorInfo;
pub use wit::types::{DirGrant, Error, ErrorKind, ErrorNode, Grants, SpawnBackend, SpawnOptions};

/// Result with tractor's [`Error`] by default.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Generate a guest's bindings with the SDK's types shared.
///
/// `$path` is the `wit/` folder of this repository relative to the guest
/// crate; `$world` is inline WIT for the guest's own world, which should
/// `include tractor:actor/imports@0.1.0`. Then implement the generated
/// `Guest` trait and call `export!(YourType)`.
#[macro_export]
macro_rules! bindings {
    ($path:literal, $world:literal) => {
        wit_bindgen::generate!({
            path: $path,
            inline: $world,
            with: {
                "tractor:actor/types@0.1.0": ::tractor::wit::types,
                "tractor:actor/identity@0.1.0": ::tractor::wit::identity,
                "tractor:actor/runtime@0.1.0": ::tractor::wit::runtime,
                "tractor:actor/log@0.1.0": ::tractor::wit::log,
                "wasi:io/poll@0.2.12": ::tractor::wit::poll,
            },
        });
    };
}

/// An error kind as the WIT and the host spell it (`bad-args`), so guest
/// and host renderings of one error agree.
pub fn kind_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Guest => "guest",
        ErrorKind::Trap => "trap",
        ErrorKind::Cancelled => "cancelled",
        ErrorKind::BadArgs => "bad-args",
        ErrorKind::NoSuchExport => "no-such-export",
        ErrorKind::NoSuchComponent => "no-such-component",
        ErrorKind::SpawnFailed => "spawn-failed",
        ErrorKind::ActorDied => "actor-died",
        ErrorKind::ActorGone => "actor-gone",
        ErrorKind::Protocol => "protocol",
        ErrorKind::Group => "group",
        ErrorKind::Closed => "closed",
        ErrorKind::Lagged => "lagged",
        ErrorKind::Limit => "limit",
        ErrorKind::Denied => "denied",
        ErrorKind::Internal => "internal",
    }
}

impl Error {
    /// A guest error with `message`; the host fills in the actor.
    pub fn new(message: impl Into<String>) -> Error {
        Error {
            kind: ErrorKind::Guest,
            actor_name: String::new(),
            actor_uid: String::new(),
            message: message.into(),
            backtrace: None,
            causes: Vec::new(),
        }
    }

    /// True for a cancellation (an outcome, not a failure).
    pub fn is_cancelled(&self) -> bool {
        self.kind == ErrorKind::Cancelled
    }

    /// The error tree as indented text, one actor per line.
    pub fn render(&self) -> String {
        let mut s = format!("actor '{}' [{}]: {}", self.actor_name, kind_name(self.kind), self.message);
        for c in &self.causes {
            let pad = "  ".repeat(c.depth as usize);
            s.push_str(&format!("\n{pad}actor '{}' [{}]: {}", c.actor_name, kind_name(c.kind), c.message));
        }
        s
    }

    /// Every actor named in this error tree, outermost first.
    pub fn actors(&self) -> Vec<&str> {
        std::iter::once(self.actor_name.as_str()).chain(self.causes.iter().map(|c| c.actor_name.as_str())).collect()
    }
}

impl From<String> for Error {
    fn from(message: String) -> Error {
        Error::new(message)
    }
}

impl From<&str> for Error {
    fn from(message: &str) -> Error {
        Error::new(message)
    }
}

/// Encode call arguments: a tuple or sequence is positional, a struct or
/// map is by name, `()` is no arguments, any other value is one argument.
pub fn encode_args<A: Serialize + ?Sized>(args: &A) -> Result<Vec<u8>> {
    let v = ciborium::Value::serialized(args).map_err(|e| Error::new(format!("cannot encode arguments: {e}")))?;
    let v = match v {
        ciborium::Value::Null => ciborium::Value::Array(vec![]),
        a @ (ciborium::Value::Array(_) | ciborium::Value::Map(_)) => a,
        one => ciborium::Value::Array(vec![one]),
    };
    let mut out = Vec::new();
    ciborium::into_writer(&v, &mut out).map_err(|e| Error::new(format!("cannot encode arguments: {e}")))?;
    Ok(out)
}

/// Decode a CBOR result into `R`.
pub fn decode<R: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<R> {
    ciborium::from_reader(bytes)
        .map_err(|e| Error::new(format!("cannot decode {what} as {}: {e}", std::any::type_name::<R>())))
}

/// The current actor's identity.
pub fn current() -> ActorInfo {
    wit::identity::current()
}

/// The capabilities this actor holds (folders, env, network).
pub fn grants() -> Grants {
    wit::identity::current_grants()
}

/// CPU cores available, for sizing worker pools.
pub fn available_parallelism() -> u32 {
    wit::identity::available_parallelism()
}

/// Sleep (checkpoint).
pub fn sleep(d: Duration) -> Result<()> {
    wit::runtime::sleep(d.as_nanos().min(u64::MAX as u128) as u64)
}

/// Sleep until cancelled.
pub fn sleep_forever() -> Result<()> {
    loop {
        sleep(Duration::from_secs(3600))?;
    }
}

/// Run `body` in a cancel scope with a deadline: once `timeout` has passed,
/// its checkpoints fail with a `Cancelled` error, calls it is waiting on are
/// cancelled in the actors serving them, and a nursery it is closing cancels
/// its children. Like trio's `fail_after`.
pub fn with_timeout<T>(timeout: Duration, body: impl FnOnce() -> Result<T>) -> Result<T> {
    let nanos = timeout.as_nanos().min(u64::MAX as u128) as u64;
    let scope = wit::runtime::CancelScope::new(Some(nanos));
    let r = body();
    drop(scope);
    r
}

/// Run `body` in a cancel scope that it (or anything holding the handle)
/// can cancel; see [`with_timeout`].
pub fn with_cancel_scope<T>(body: impl FnOnce(&CancelScope) -> Result<T>) -> Result<T> {
    let scope = CancelScope { inner: wit::runtime::CancelScope::new(None) };
    body(&scope)
}

/// A cancel scope opened with [`with_cancel_scope`].
pub struct CancelScope {
    inner: wit::runtime::CancelScope,
}

impl CancelScope {
    /// Cancel everything inside the scope.
    pub fn cancel(&self) {
        self.inner.cancel()
    }

    /// True once cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled()
    }
}

/// Return an error if the current scope was cancelled.
pub fn checkpoint() -> Result<()> {
    wit::runtime::checkpoint()
}

/// Log through the host's logger.
pub fn log(level: wit::log::Level, message: &str) {
    wit::log::log(level, message)
}

/// Open a nursery, run `body` in it, then wait for every child: the
/// nursery never ends before its children. A child failure surfaces as the
/// error even if `body` never looked at that child.
pub fn open_nursery<T>(body: impl FnOnce(&Nursery) -> Result<T>) -> Result<T> {
    let n = Nursery { inner: wit::runtime::Nursery::new() };
    let r = body(&n);
    if r.is_err() {
        // An error in the body cancels the nursery, as in trio.
        let _ = n.inner.cancel();
    }
    let closed = n.inner.wait();
    match (r, closed) {
        (Ok(v), Ok(())) => Ok(v),
        (Err(e), Err(w)) => Err(merge_failures(e, w)),
        (Err(e), Ok(())) => Err(e),
        (Ok(_), Err(w)) => Err(w),
    }
}

/// The error a nursery block ends with when its body failed with `body` and
/// closing it failed with `closed`: no real failure is lost.
///
/// A cancelled body hides nothing (what cancelled it is the news); a body
/// that failed because it saw the nursery's own failure adds nothing to it;
/// otherwise both are reported, as one group.
pub fn merge_failures(body: Error, closed: Error) -> Error {
    if body.is_cancelled() {
        return closed;
    }
    if closed.is_cancelled() {
        return body;
    }
    let (mine, theirs) = (subtrees(&body), subtrees(&closed));
    let key = |t: &Vec<ErrorNode>| (t[0].actor_uid.clone(), t[0].kind, t[0].message.clone());
    let known: Vec<_> = theirs.iter().map(key).collect();
    if mine.iter().all(|t| known.contains(&key(t))) {
        return closed;
    }
    let seen: Vec<_> = mine.iter().map(key).collect();
    let all: Vec<Vec<ErrorNode>> = mine.into_iter().chain(theirs.into_iter().filter(|t| !seen.contains(&key(t)))).collect();
    Error {
        kind: ErrorKind::Group,
        actor_name: String::new(),
        actor_uid: String::new(),
        message: format!("{} failures", all.len()),
        backtrace: None,
        causes: all.into_iter().flatten().collect(),
    }
}

/// The failures an error stands for, each as its subtree of nodes (depth 1
/// at its top): a group's direct causes, or the error itself.
fn subtrees(e: &Error) -> Vec<Vec<ErrorNode>> {
    if e.kind == ErrorKind::Group {
        let mut out: Vec<Vec<ErrorNode>> = Vec::new();
        for c in &e.causes {
            match out.last_mut() {
                Some(t) if c.depth > 1 => t.push(c.clone()),
                _ => out.push(vec![c.clone()]),
            }
        }
        return out;
    }
    let top = ErrorNode {
        kind: e.kind,
        actor_name: e.actor_name.clone(),
        actor_uid: e.actor_uid.clone(),
        message: e.message.clone(),
        backtrace: e.backtrace.clone(),
        depth: 1,
    };
    let below = e.causes.iter().map(|c| ErrorNode { depth: c.depth + 1, ..c.clone() });
    vec![std::iter::once(top).chain(below).collect()]
}

/// A supervision scope for child actors; see [`open_nursery`].
pub struct Nursery {
    inner: wit::runtime::Nursery,
}

impl Nursery {
    /// Start a daemon child running this actor's own component.
    pub fn start_actor(&self, name: &str) -> Result<Portal> {
        Ok(Portal { inner: self.inner.start_actor(name, None)? })
    }

    /// Start a daemon child running manifest component `component`.
    pub fn start_actor_of(&self, name: &str, component: &str) -> Result<Portal> {
        Ok(Portal { inner: self.inner.start_actor(name, Some(component))? })
    }

    /// Start a child of this actor's own component that runs `func` once.
    pub fn run_in_actor<A: Serialize + ?Sized>(&self, name: &str, func: &str, args: &A) -> Result<Portal> {
        self.spawn_once(name, None, func, args)
    }

    /// Start a child of component `component` that runs `func` once.
    pub fn run_in_actor_of<A: Serialize + ?Sized>(
        &self,
        name: &str,
        component: &str,
        func: &str,
        args: &A,
    ) -> Result<Portal> {
        self.spawn_once(name, Some(component), func, args)
    }

    fn spawn_once<A: Serialize + ?Sized>(
        &self,
        name: &str,
        component: Option<&str>,
        func: &str,
        args: &A,
    ) -> Result<Portal> {
        Ok(Portal { inner: self.inner.run_in_actor(name, component, func, &encode_args(args)?)? })
    }

    /// Start a daemon child with its capabilities narrowed to `grants`
    /// (each must be one this actor holds; see [`grants`]).
    pub fn start_actor_with(&self, name: &str, component: Option<&str>, grants: &Grants) -> Result<Portal> {
        self.start_actor_opts(name, component, &SpawnOptions { grants: Some(grants.clone()), backend: None })
    }

    /// Start a run-once child with its capabilities narrowed to `grants`.
    pub fn run_in_actor_with<A: Serialize + ?Sized>(
        &self,
        name: &str,
        component: Option<&str>,
        func: &str,
        args: &A,
        grants: &Grants,
    ) -> Result<Portal> {
        let opts = SpawnOptions { grants: Some(grants.clone()), backend: None };
        self.run_in_actor_opts(name, component, func, args, &opts)
    }

    /// Start a daemon child with `opts` (narrowed grants, a spawn backend).
    pub fn start_actor_opts(&self, name: &str, component: Option<&str>, opts: &SpawnOptions) -> Result<Portal> {
        Ok(Portal { inner: self.inner.start_actor_with(name, component, opts)? })
    }

    /// Start a run-once child with `opts` (narrowed grants, a spawn backend).
    pub fn run_in_actor_opts<A: Serialize + ?Sized>(
        &self,
        name: &str,
        component: Option<&str>,
        func: &str,
        args: &A,
        opts: &SpawnOptions,
    ) -> Result<Portal> {
        Ok(Portal { inner: self.inner.run_in_actor_with(name, component, func, &encode_args(args)?, opts)? })
    }

    /// Cancel every child and wait until they have exited.
    pub fn cancel(&self) -> Result<()> {
        self.inner.cancel()
    }
}

/// A handle on a child actor.
pub struct Portal {
    inner: wit::runtime::Portal,
}

impl Portal {
    /// The child's identity.
    pub fn info(&self) -> ActorInfo {
        self.inner.info()
    }

    /// Call `func` on the child and wait for its result.
    pub fn run<R: DeserializeOwned, A: Serialize + ?Sized>(&self, func: &str, args: &A) -> Result<R> {
        self.start(func, args)?.get()
    }

    /// Start calling `func` without waiting; see [`as_completed`].
    pub fn start<R: DeserializeOwned, A: Serialize + ?Sized>(&self, func: &str, args: &A) -> Result<Call<R>> {
        let inner = self.inner.run(func, &encode_args(args)?)?;
        Ok(Call { inner, func: func.to_string(), _r: PhantomData })
    }

    /// The return value of a `run_in_actor` child.
    pub fn result<R: DeserializeOwned>(&self) -> Result<R> {
        decode(&self.inner.result()?, "the actor's result")
    }

    /// Cancel the child and wait for it to exit.
    pub fn cancel_actor(&self) -> Result<()> {
        self.inner.cancel_actor()
    }
}

/// A call in flight.
pub struct Call<R> {
    inner: wit::runtime::Call,
    func: String,
    _r: PhantomData<fn() -> R>,
}

impl<R: DeserializeOwned> Call<R> {
    /// Wait for the result (checkpoint).
    pub fn get(self) -> Result<R> {
        decode(&self.inner.get()?, &format!("the result of `{}`", self.func))
    }
}

/// Wait for many calls at once, yielding `(index, result)` in completion
/// order: the index is the call's position in `calls`.
pub fn as_completed<R: DeserializeOwned>(calls: Vec<Call<R>>) -> AsCompleted<R> {
    AsCompleted { pending: calls.into_iter().enumerate().map(|(i, c)| Some((i, c))).collect(), ready: Vec::new() }
}

/// Iterator returned by [`as_completed`].
pub struct AsCompleted<R> {
    pending: Vec<Option<(usize, Call<R>)>>,
    ready: Vec<(usize, Result<R>)>,
}

impl<R: DeserializeOwned> Iterator for AsCompleted<R> {
    type Item = (usize, Result<R>);

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(r) = self.ready.pop() {
            return Some(r);
        }
        let live: Vec<usize> = (0..self.pending.len()).filter(|&i| self.pending[i].is_some()).collect();
        if live.is_empty() {
            return None;
        }
        let ready_slots = {
            // Pollables are children of their calls: drop them before any
            // call is consumed.
            let pollables: Vec<_> =
                live.iter().map(|&i| self.pending[i].as_ref().expect("live").1.inner.subscribe()).collect();
            let refs: Vec<&wit::poll::Pollable> = pollables.iter().collect();
            wit::poll::poll(&refs)
        };
        for slot in ready_slots {
            let (i, call) = self.pending[live[slot as usize]].take().expect("live");
            self.ready.push((i, call.get()));
        }
        self.ready.reverse();
        self.ready.pop()
    }
}

pub mod rt;

/// How a context's function ended, seen from the caller (WIT
/// `context-outcome`).
#[derive(Debug, Clone, PartialEq)]
pub enum ContextOutcome<R> {
    /// It returned this value.
    Returned(R),
    /// It was cancelled by the named actor.
    Cancelled {
        /// The actor that cancelled it.
        by: String,
    },
}

/// The name [`ContextOutcome`] had before; kept so older guest code builds.
#[doc(hidden)]
pub type Outcome<R> = ContextOutcome<R>;

impl Portal {
    /// Open a 2-way context on `func` (an export whose first parameter is a
    /// `borrow<context>`) and wait for the value it passes to `started`.
    pub fn open_context<S: DeserializeOwned, A: Serialize + ?Sized>(
        &self,
        func: &str,
        args: &A,
    ) -> Result<(Context, S)> {
        let (inner, first) = self.inner.open_context(func, &encode_args(args)?)?;
        let first = decode(&first, &format!("the value `{func}` passed to started"))?;
        Ok((Context { inner }, first))
    }

    /// Run `body` with a context on `func`; if `body` fails, the callee is
    /// cancelled with that error (it sees it at its next checkpoint).
    pub fn with_context<S: DeserializeOwned, A: Serialize + ?Sized, T>(
        &self,
        func: &str,
        args: &A,
        body: impl FnOnce(&Context, S) -> Result<T>,
    ) -> Result<T> {
        let (ctx, first) = self.open_context(func, args)?;
        let r = body(&ctx, first);
        if let Err(e) = &r {
            ctx.inner.cancel(Some(e));
        }
        r
    }
}

/// The caller's side of a context.
pub struct Context {
    inner: wit::runtime::Context,
}

impl Context {
    /// Open the context's stream (once).
    pub fn open_stream(&self) -> Result<Stream> {
        Ok(Stream { inner: self.inner.open_stream()? })
    }

    /// Wait for the callee's function to end (checkpoint): its return value,
    /// or a cancellation naming the canceller. Its failure is an `Err`.
    pub fn result<R: DeserializeOwned>(&self) -> Result<ContextOutcome<R>> {
        match self.inner.result()? {
            wit::runtime::ContextOutcome::Returned(v) => Ok(ContextOutcome::Returned(decode(&v, "the context's result")?)),
            wit::runtime::ContextOutcome::Cancelled(by) => Ok(ContextOutcome::Cancelled { by }),
        }
    }

    /// Cancel the callee's function; see [`Context::result`] for how it ended.
    pub fn cancel(&self) {
        self.inner.cancel(None)
    }

    /// A pollable, ready once [`Context::result`] would not block.
    pub fn ready(&self) -> wit::poll::Pollable {
        self.inner.subscribe_result()
    }
}

/// The callee's view of its context (the export's first parameter).
pub struct Callee<'a> {
    inner: &'a wit::runtime::Context,
}

/// Wrap the context a context function receives.
pub fn callee(ctx: &wit::runtime::Context) -> Callee<'_> {
    Callee { inner: ctx }
}

impl Callee<'_> {
    /// Send the caller its first value (once).
    pub fn started<T: Serialize + ?Sized>(&self, value: &T) -> Result<()> {
        self.inner.started(&encode_value(value)?)
    }

    /// Open the context's stream (after `started`).
    pub fn open_stream(&self) -> Result<Stream> {
        Ok(Stream { inner: self.inner.open_stream()? })
    }

    /// Cancel this function yourself: the caller sees it cancelled by you.
    pub fn cancel(&self) {
        self.inner.cancel(None)
    }
}

/// One side of a context's stream (or a broadcast consumer of it).
pub struct Stream {
    inner: wit::runtime::Stream,
}

impl Stream {
    /// Send a value (checkpoint): blocks while the receiver's buffer is full.
    pub fn send<T: Serialize + ?Sized>(&self, value: &T) -> Result<()> {
        self.inner.send(&encode_value(value)?)
    }

    /// The next value, or `None` once the other side closed the stream.
    pub fn receive<T: DeserializeOwned>(&self) -> Result<Option<T>> {
        match self.inner.receive()? {
            Some(bytes) => Ok(Some(decode(&bytes, "a stream message")?)),
            None => Ok(None),
        }
    }

    /// The next value, waiting without blocking other tasks of
    /// [`rt::block_on`].
    pub async fn next<T: DeserializeOwned>(&self) -> Result<Option<T>> {
        rt::ready(self.inner.subscribe_ready()).await;
        self.receive()
    }

    /// Close this side: the other side's receive loop ends.
    pub fn close(&self) {
        self.inner.close()
    }

    /// Another local consumer seeing every message from now on, with room
    /// for `capacity` unread messages before it gets a `Lagged` error.
    pub fn subscribe(&self, capacity: u32) -> Stream {
        Stream { inner: self.inner.subscribe(capacity) }
    }

    /// A pollable, ready once [`Stream::receive`] would not block.
    pub fn ready(&self) -> wit::poll::Pollable {
        self.inner.subscribe_ready()
    }
}

impl<R: DeserializeOwned> Call<R> {
    /// Wait for the result without blocking other tasks of [`rt::block_on`].
    pub async fn wait(self) -> Result<R> {
        rt::ready(self.inner.subscribe()).await;
        self.get()
    }
}

/// Encode one value as CBOR.
pub fn encode_value<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    ciborium::into_writer(value, &mut out).map_err(|e| Error::new(format!("cannot encode value: {e}")))?;
    Ok(out)
}
