//! Portals to children: calls, their results, opening contexts.

use crate::{decode, encode_args, rt, wit, ActorInfo, Context, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::marker::PhantomData;

/// A handle on a child actor.
pub struct Portal {
    pub(crate) inner: wit::runtime::Portal,
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

    /// Cancel the child and wait for it to exit (`denied` for an actor
    /// found through discovery).
    pub fn cancel_actor(&self) -> Result<()> {
        self.inner.cancel_actor()
    }

    /// True for a child of this actor's nurseries, false for a found actor.
    pub fn is_child(&self) -> bool {
        self.inner.is_child()
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

impl<R: DeserializeOwned> Call<R> {
    /// Wait for the result without blocking other tasks of [`rt::block_on`].
    pub async fn wait(self) -> Result<R> {
        rt::ready(self.inner.subscribe()).await;
        self.get()
    }
}
