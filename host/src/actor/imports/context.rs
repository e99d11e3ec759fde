//! `runtime.context`: a 2-way context, from either side.

use super::convert::{cbor_bytes, from_wit};
use super::stream::StreamRes;
use super::tractor::actor::runtime;
use super::{or_cancelled, types, wit, ActorState, Fail, Wit, R};
use crate::context::CalleeContext;
use crate::error::ErrorKind;
use crate::nursery;
use crate::wire::ContextOutcome;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use wasmtime::component::Resource;
use wasmtime_wasi::p2::{subscribe, DynPollable, Pollable};

/// Guest handle on a context, from either side.
pub struct ContextRes {
    pub(super) role: Role,
    pub(super) cancel: CancellationToken,
}

pub(super) enum Role {
    Caller(nursery::Context),
    Callee(Arc<CalleeContext>),
}

impl ContextRes {
    /// The callee's handle, passed to the context function.
    pub fn callee(ctx: Arc<CalleeContext>, cancel: CancellationToken) -> ContextRes {
        ContextRes { role: Role::Callee(ctx), cancel }
    }

    /// Is this the callee's handle on `ctx`?
    pub fn is_callee_of(&self, ctx: &Arc<CalleeContext>) -> bool {
        matches!(&self.role, Role::Callee(c) if Arc::ptr_eq(c, ctx))
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for ContextRes {
    async fn ready(&mut self) {
        if let Role::Caller(c) = &self.role {
            or_cancelled(c.result(), &self.cancel).await;
        }
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
        wit(r.map_err(Fail::from))
    }

    async fn open_stream(&mut self, this: Resource<ContextRes>) -> R<Wit<Resource<StreamRes>>> {
        wit(self.open_stream_of(this))
    }

    async fn result(&mut self, this: Resource<ContextRes>) -> R<Wit<runtime::ContextOutcome>> {
        wit(self.result_of(this).await)
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
            self.main.contexts.retain(|o| !Arc::ptr_eq(o, &state));
        }
        Ok(())
    }
}

impl ActorState {
    fn open_stream_of(&mut self, this: Resource<ContextRes>) -> Result<Resource<StreamRes>, Fail> {
        let rx = match &self.table.get(&this)?.role {
            Role::Callee(c) => c.open_stream(),
            Role::Caller(c) => c.open_stream(),
        }?;
        Ok(self.table.push(StreamRes::new(rx, self.cancel_token()))?)
    }

    async fn result_of(&mut self, this: Resource<ContextRes>) -> Result<runtime::ContextOutcome, Fail> {
        let state = match &self.table.get(&this)?.role {
            Role::Caller(c) => c.state(),
            Role::Callee(_) => {
                return Err(self.err(ErrorKind::BadArgs, "`result` is for the caller of a context").into())
            }
        };
        match self.scopes().guard(async move { state.outcome().await }).await? {
            ContextOutcome::Returned(v) => Ok(runtime::ContextOutcome::Returned(cbor_bytes(&v))),
            ContextOutcome::Cancelled { by } => Ok(runtime::ContextOutcome::Cancelled(by)),
            ContextOutcome::Failed(e) => Err(e.into()),
        }
    }
}
