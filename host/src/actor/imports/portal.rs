//! `runtime.portal`: a handle on a child actor.

use super::call::{CallRes, CallState};
use super::context::{ContextRes, Role};
use super::convert::cbor_bytes;
use super::identity::actor_info;
use super::tractor::actor::{identity, runtime};
use super::{or_cancelled, wit, ActorState, Fail, Wit, R};
use crate::nursery::Portal;
use tokio_util::sync::CancellationToken;
use wasmtime::component::Resource;
use wasmtime_wasi::p2::{subscribe, DynPollable, Pollable};

/// Guest handle on a child actor.
pub struct PortalRes {
    pub(super) portal: Portal,
    pub(super) cancel: CancellationToken,
}

#[wasmtime_wasi::async_trait]
impl Pollable for PortalRes {
    async fn ready(&mut self) {
        or_cancelled(self.portal.result(), &self.cancel).await;
    }
}

impl runtime::HostPortal for ActorState {
    async fn info(&mut self, this: Resource<PortalRes>) -> R<identity::ActorInfo> {
        Ok(actor_info(self.table.get(&this)?.portal.info()))
    }

    async fn run(&mut self, this: Resource<PortalRes>, func: String, args: Vec<u8>) -> R<Wit<Resource<CallRes>>> {
        wit(self.run_call(this, &func, &args))
    }

    async fn result(&mut self, this: Resource<PortalRes>) -> R<Wit<Vec<u8>>> {
        let portal = self.table.get(&this)?.portal.clone();
        let outcome = self.scopes().guard(portal.result()).await.and_then(|o| o);
        wit(outcome.map(|v| cbor_bytes(&v)).map_err(Fail::from))
    }

    async fn subscribe_result(&mut self, this: Resource<PortalRes>) -> R<Resource<DynPollable>> {
        subscribe(&mut self.table, this)
    }

    async fn is_child(&mut self, this: Resource<PortalRes>) -> R<bool> {
        Ok(self.table.get(&this)?.portal.is_child())
    }

    async fn cancel_actor(&mut self, this: Resource<PortalRes>) -> R<Wit<()>> {
        let portal = self.table.get(&this)?.portal.clone();
        // Not a checkpoint on purpose: cancelling must finish even while we
        // are being cancelled ourselves.
        let _teardown = self.actor.tearing_down();
        wit(portal.cancel_actor(&self.actor.me.name).await.map_err(Fail::from))
    }

    async fn open_context(
        &mut self,
        this: Resource<PortalRes>,
        func: String,
        args: Vec<u8>,
    ) -> R<Wit<(Resource<ContextRes>, Vec<u8>)>> {
        wit(self.open_context_on(this, &func, &args).await)
    }

    async fn drop(&mut self, this: Resource<PortalRes>) -> R<()> {
        // The nursery still owns the child; dropping the handle does not end it.
        self.table.delete(this)?;
        Ok(())
    }
}

impl ActorState {
    fn run_call(&mut self, this: Resource<PortalRes>, func: &str, args: &[u8]) -> Result<Resource<CallRes>, Fail> {
        let args = self.parse_args(func, args)?;
        let pending = self.table.get(&this)?.portal.run(func, args)?;
        Ok(self.table.push(CallRes { state: CallState::Pending(pending), cancel: self.cancel_token() })?)
    }

    async fn open_context_on(
        &mut self,
        this: Resource<PortalRes>,
        func: &str,
        args: &[u8],
    ) -> Result<(Resource<ContextRes>, Vec<u8>), Fail> {
        let args = self.parse_args(func, args)?;
        let portal = self.table.get(&this)?.portal.clone();
        let me = (self.actor.me.name.clone(), self.actor.me.uid.clone());
        let (ctx, first) = self.scopes().guard(portal.open_context(func, args, (&me.0, &me.1))).await??;
        self.main.contexts.push(ctx.state());
        let res = self.table.push(ContextRes { role: Role::Caller(ctx), cancel: self.cancel_token() })?;
        Ok((res, first))
    }
}
