//! # `tractor::aio`: the async SDK (`tractor:actor@0.2.0`)
//!
//! For actors whose exports are `async func`s: the host instantiates such a
//! component once and runs every call and every context as a concurrent
//! task on it, so they all share the actor's state. Every function here is
//! a checkpoint that lets the actor's other tasks run while it waits.
//!
//! ```ignore
//! tractor::aio_bindings!("../../wit/v0.2", r#"
//!     package example:feed;
//!     world feed {
//!         include tractor:actor/imports@0.2.0;
//!         use tractor:actor/types@0.2.0.{error};
//!         export incr: async func() -> u64;
//!     }
//! "#);
//! ```

use crate::{decode, encode_args, encode_value, ActorInfo, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::time::Duration;

mod notify;
pub use notify::Notify;

/// Bindings generated from `tractor:actor@0.2.0` (its `types` are 0.1.0's).
pub mod wit {
    wit_bindgen::generate!({
        path: "../../wit/v0.2",
        world: "tractor:actor/imports@0.2.0",
        with: { "tractor:actor/types@0.2.0": crate::wit::types },
        generate_all,
    });
    pub use self::tractor::actor::{discovery, identity, log, runtime};
}

/// Generate an async guest's bindings with the SDK's types shared: as
/// [`crate::bindings!`], for a world that includes
/// `tractor:actor/imports@0.2.0`.
#[macro_export]
macro_rules! aio_bindings {
    ($path:literal, $world:literal) => {
        wit_bindgen::generate!({
            path: $path,
            inline: $world,
            with: {
                "tractor:actor/types@0.2.0": ::tractor::wit::types,
                "tractor:actor/identity@0.2.0": ::tractor::aio::wit::identity,
                "tractor:actor/runtime@0.2.0": ::tractor::aio::wit::runtime,
                "tractor:actor/log@0.2.0": ::tractor::aio::wit::log,
                "tractor:actor/discovery@0.2.0": ::tractor::aio::wit::discovery,
            },
        });
    };
}

fn nanos(d: Duration) -> u64 {
    d.as_nanos().min(u64::MAX as u128) as u64
}

/// Sleep (checkpoint); the actor's other tasks run meanwhile.
pub async fn sleep(d: Duration) -> Result<()> {
    wit::runtime::sleep(nanos(d)).await
}

/// Return an error if this task's scope was cancelled, and let the actor's
/// other tasks run (checkpoint).
pub async fn checkpoint() -> Result<()> {
    wit::runtime::checkpoint().await
}

/// The current actor's identity.
pub fn current() -> ActorInfo {
    let i = wit::identity::current();
    ActorInfo { name: i.name, uid: i.uid, pid: i.pid, depth: i.depth, component: i.component }
}

/// Run `f` inside a cancel scope that cancels itself after `d`: a deadline
/// reached makes the awaits inside fail with `cancelled`.
pub async fn with_timeout<T>(d: Duration, f: impl AsyncFnOnce() -> Result<T>) -> Result<T> {
    let _scope = wit::runtime::CancelScope::new(Some(nanos(d)));
    f().await
}

/// Open a nursery, run `body` with it, then wait for every child (even if
/// `body` failed: then the children are cancelled first).
pub async fn open_nursery<T>(body: impl AsyncFnOnce(&Nursery) -> Result<T>) -> Result<T> {
    let n = Nursery { inner: wit::runtime::Nursery::new() };
    match body(&n).await {
        Ok(v) => n.inner.wait().await.map(|()| v),
        Err(e) => {
            let _ = n.inner.cancel().await;
            Err(match n.inner.wait().await {
                Err(closed) => crate::merge_failures(e, closed),
                Ok(()) => e,
            })
        }
    }
}

/// A nursery: children started in it end before it does.
pub struct Nursery {
    inner: wit::runtime::Nursery,
}

fn no_options() -> crate::SpawnOptions {
    crate::SpawnOptions { grants: None, backend: None }
}

impl Nursery {
    /// Start a daemon child running this actor's own component.
    pub async fn start_actor(&self, name: &str) -> Result<Portal> {
        self.start_actor_of(name, None).await
    }

    /// Start a daemon child running `component` (default: this actor's).
    pub async fn start_actor_of(&self, name: &str, component: Option<&str>) -> Result<Portal> {
        let inner = self.inner.start_actor(name.to_string(), component.map(str::to_string), no_options()).await?;
        Ok(Portal { inner })
    }

    /// Start a child that runs `func(args)` once; await its `result`.
    pub async fn run_in_actor<A: Serialize + ?Sized>(&self, name: &str, func: &str, args: &A) -> Result<Portal> {
        let args = encode_args(args)?;
        let inner = self.inner.run_in_actor(name.to_string(), None, func.to_string(), args, no_options()).await?;
        Ok(Portal { inner })
    }

    /// Cancel every child and wait until they have exited.
    pub async fn cancel(&self) -> Result<()> {
        self.inner.cancel().await
    }
}

/// A portal to the most recently registered live actor named `name`
/// (never this one), or `None` (checkpoint). Needs a `discover` grant.
pub async fn find_actor(name: &str) -> Result<Option<Portal>> {
    Ok(wit::discovery::find_actor(name.to_string()).await?.map(|inner| Portal { inner }))
}

/// The live actor with uid `uid`, or `None`.
pub async fn find_actor_by_uid(uid: &str) -> Result<Option<Portal>> {
    Ok(wit::discovery::find_actor_by_uid(uid.to_string()).await?.map(|inner| Portal { inner }))
}

/// Wait until an actor named `name` is registered (drop the future, or use
/// [`with_timeout`], to stop waiting).
pub async fn wait_for_actor(name: &str) -> Result<Portal> {
    Ok(Portal { inner: wit::discovery::wait_for_actor(name.to_string()).await? })
}

/// Every live actor named `name`, without connecting to any.
pub async fn query_actor(name: &str) -> Result<Vec<crate::Registered>> {
    Ok(wit::discovery::query_actor(name.to_string()).await?.into_iter().map(registered).collect())
}

/// Every live actor this one may discover.
pub async fn registry() -> Result<Vec<crate::Registered>> {
    Ok(wit::discovery::registry().await?.into_iter().map(registered).collect())
}

fn registered(r: wit::discovery::Registered) -> crate::Registered {
    let i = r.info;
    let info = ActorInfo { name: i.name, uid: i.uid, pid: i.pid, depth: i.depth, component: i.component };
    crate::Registered { info, host: r.host, parent_uid: r.parent_uid }
}

/// A handle on an actor.
pub struct Portal {
    inner: wit::runtime::Portal,
}

impl Portal {
    /// The actor's identity.
    pub fn info(&self) -> ActorInfo {
        let i = self.inner.info();
        ActorInfo { name: i.name, uid: i.uid, pid: i.pid, depth: i.depth, component: i.component }
    }

    /// Call `func` and await its result (checkpoint). Dropping the future
    /// cancels the call in the callee.
    pub async fn run<R: DeserializeOwned, A: Serialize + ?Sized>(&self, func: &str, args: &A) -> Result<R> {
        let v = self.inner.run(func.to_string(), encode_args(args)?).await?;
        decode(&v, &format!("the result of `{func}`"))
    }

    /// The return value of a `run_in_actor` child.
    pub async fn result<R: DeserializeOwned>(&self) -> Result<R> {
        decode(&self.inner.result().await?, "the actor's result")
    }

    /// Cancel the child and wait for it to exit (`denied` for an actor
    /// found through discovery).
    pub async fn cancel_actor(&self) -> Result<()> {
        self.inner.cancel_actor().await
    }

    /// True for a child of this actor's nurseries, false for a found actor.
    pub fn is_child(&self) -> bool {
        self.inner.is_child()
    }

    /// Open a context on `func`: the context and the callee's `started` value.
    pub async fn open_context<F: DeserializeOwned, A: Serialize + ?Sized>(
        &self,
        func: &str,
        args: &A,
    ) -> Result<(Context, F)> {
        let (inner, first) = self.inner.open_context(func.to_string(), encode_args(args)?).await?;
        Ok((Context { inner }, decode(&first, "the context's first value")?))
    }
}

/// A context, from either side: a callee gets it as its export's first
/// argument (see [`callee`]); a caller from [`Portal::open_context`].
pub struct Context {
    inner: wit::runtime::Context,
}

/// The callee's view of the context its export was given.
pub fn callee(ctx: &wit::runtime::Context) -> Callee<'_> {
    Callee { inner: ctx }
}

/// The callee's side of a context.
pub struct Callee<'a> {
    inner: &'a wit::runtime::Context,
}

impl Callee<'_> {
    /// Send the first value to the caller (once).
    pub fn started<T: Serialize + ?Sized>(&self, value: &T) -> Result<()> {
        self.inner.started(&encode_value(value)?)
    }

    /// Open the context's stream (after `started`).
    pub fn open_stream(&self) -> Result<Stream> {
        Ok(Stream { inner: self.inner.open_stream()? })
    }
}

impl Context {
    /// Open the context's stream (once).
    pub fn open_stream(&self) -> Result<Stream> {
        Ok(Stream { inner: self.inner.open_stream()? })
    }

    /// Await the callee's function's end: its value, or who cancelled it.
    pub async fn result<R: DeserializeOwned>(&self) -> Result<crate::ContextOutcome<R>> {
        match self.inner.result().await? {
            wit::runtime::ContextOutcome::Returned(v) => {
                Ok(crate::ContextOutcome::Returned(decode(&v, "the context's result")?))
            }
            wit::runtime::ContextOutcome::Cancelled(by) => Ok(crate::ContextOutcome::Cancelled { by }),
        }
    }

    /// Cancel the callee's function.
    pub fn cancel(&self) {
        self.inner.cancel(None)
    }
}

/// One side of a context's stream.
pub struct Stream {
    inner: wit::runtime::Stream,
}

impl Stream {
    /// Send a message (checkpoint; waits while the receiver's window is full).
    pub async fn send<T: Serialize + ?Sized>(&self, value: &T) -> Result<()> {
        self.inner.send(encode_value(value)?).await
    }

    /// The next message, or `None` once the other side closed (checkpoint).
    pub async fn receive<T: DeserializeOwned>(&self) -> Result<Option<T>> {
        match self.inner.receive().await? {
            Some(b) => decode(&b, "a stream message").map(Some),
            None => Ok(None),
        }
    }

    /// Close this side; the other side's receive loop ends.
    pub fn close(&self) {
        self.inner.close()
    }
}
