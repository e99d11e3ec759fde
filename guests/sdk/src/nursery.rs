//! Nurseries: starting children, and not ending before they have.

use crate::{encode_args, merge_failures, wit, Grants, Portal, Result, SpawnOptions};
use serde::Serialize;

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
