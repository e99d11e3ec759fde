//! `runtime.nursery`: a supervision scope for child actors.

use super::convert::{backend_from_wit, grants_from_wit};
use super::portal::PortalRes;
use super::tractor::actor::runtime;
use super::{or_cancelled, types, wit, ActorState, Fail, Wit, R};
use crate::error::{ErrorKind, RemoteError};
use crate::nursery::{Nursery, SpawnOptions};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use wasmtime::component::Resource;
use wasmtime_wasi::p2::{subscribe, DynPollable, Pollable};

/// Guest handle on a nursery.
pub struct NurseryRes {
    pub(super) nursery: Arc<Nursery>,
    pub(super) cancel: CancellationToken,
}

#[wasmtime_wasi::async_trait]
impl Pollable for NurseryRes {
    async fn ready(&mut self) {
        or_cancelled(self.nursery.settled(), &self.cancel).await;
    }
}

impl runtime::HostNursery for ActorState {
    async fn new(&mut self) -> R<Resource<NurseryRes>> {
        let nursery = Arc::new(Nursery::open(&self.actor));
        self.main.open.push(nursery.clone());
        Ok(self.table.push(NurseryRes { nursery, cancel: self.cancel_token() })?)
    }

    async fn start_actor(
        &mut self,
        this: Resource<NurseryRes>,
        name: String,
        component: Option<String>,
    ) -> R<Wit<Resource<PortalRes>>> {
        wit(self.spawn(this, name, component, None, None).await)
    }

    async fn start_actor_with(
        &mut self,
        this: Resource<NurseryRes>,
        name: String,
        component: Option<String>,
        options: types::SpawnOptions,
    ) -> R<Wit<Resource<PortalRes>>> {
        wit(self.spawn(this, name, component, None, Some(options)).await)
    }

    async fn run_in_actor(
        &mut self,
        this: Resource<NurseryRes>,
        name: String,
        component: Option<String>,
        func: String,
        args: Vec<u8>,
    ) -> R<Wit<Resource<PortalRes>>> {
        wit(self.spawn(this, name, component, Some((func, args)), None).await)
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
        wit(self.spawn(this, name, component, Some((func, args)), Some(options)).await)
    }

    async fn wait(&mut self, this: Resource<NurseryRes>) -> R<Wit<()>> {
        let n = self.table.get(&this)?.nursery.clone();
        let _teardown = self.actor.tearing_down();
        // `wait` itself handles the actor's cancellation and failing
        // children; an enclosing cancel scope or cancelled call makes it
        // cancel the children, still waiting for them as a nursery must.
        let outer = self.scopes().without_nurseries();
        let r = wait_within(&n, &outer, &self.actor).await;
        self.close(&n);
        wit(r.map_err(Fail::from))
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

/// Wait for nursery `n` under the `outer` scopes: cancelled from outside,
/// it cancels its children and still waits for them, as a nursery must.
pub(super) async fn wait_within(
    n: &Nursery,
    outer: &super::Scopes,
    actor: &crate::nursery::ActorScope,
) -> Result<(), RemoteError> {
    match outer.guard(n.wait()).await {
        Ok(r) => r,
        Err(why) => {
            n.cancel().await;
            // trio's rule: a cancelled nursery absorbs the cancellation,
            // never its children's real failures.
            match n.wait().await {
                Err(failed) if !failed.is_cancelled() => Err(if why.is_cancelled() {
                    failed
                } else {
                    RemoteError::group(vec![why, failed], &actor.me.name, &actor.me.uid).expect("two errors")
                }),
                _ => Err(why),
            }
        }
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
    ) -> Result<Resource<PortalRes>, Fail> {
        let (grants, backend) = options.map_or((None, None), |o| (o.grants, o.backend));
        let run = run.map(|(func, args)| self.parse_args(&func, &args).map(|a| (func, a))).transpose()?;
        let grants = grants.map(grants_from_wit).transpose().map_err(|m| self.err(ErrorKind::BadArgs, m))?;
        let opts = SpawnOptions { grants, backend: backend.map(backend_from_wit) };
        let n = self.table.get(&this)?.nursery.clone();
        let portal = self.scopes().guard(n.spawn(&name, component.as_deref(), run, opts)).await??;
        Ok(self.table.push(PortalRes { portal, cancel: self.cancel_token() })?)
    }

    fn close(&mut self, n: &Arc<Nursery>) {
        self.main.open.retain(|o| !Arc::ptr_eq(o, n));
    }
}
