//! `runtime.call`: a call in flight into another actor.

use super::convert::cbor_bytes;
use super::tractor::actor::runtime;
use super::{convert, or_cancelled, wit, ActorState, Fail, Wit, R};
use crate::error::ErrorKind;
use crate::nursery::{CallResult, PendingCall};
use tokio_util::sync::CancellationToken;
use wasmtime::component::Resource;
use wasmtime_wasi::p2::{subscribe, DynPollable, Pollable};

/// Guest handle on a call in flight.
pub struct CallRes {
    pub(super) state: CallState,
    pub(super) cancel: CancellationToken,
}

pub(super) enum CallState {
    Pending(PendingCall),
    Done(CallResult),
    Taken,
}

#[wasmtime_wasi::async_trait]
impl Pollable for CallRes {
    async fn ready(&mut self) {
        if let CallState::Pending(p) = &mut self.state {
            if let Some(o) = or_cancelled(p.ready(), &self.cancel).await {
                self.state = CallState::Done(o);
            }
        }
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
            CallState::Done(o) => Some(o.map(|v| cbor_bytes(&v)).map_err(|e| convert::to_wit(&e))),
            other => {
                call.state = other;
                None
            }
        })
    }

    async fn get(&mut self, this: Resource<CallRes>) -> R<Wit<Vec<u8>>> {
        wit(self.get_call(this).await)
    }

    async fn drop(&mut self, this: Resource<CallRes>) -> R<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

impl ActorState {
    async fn get_call(&mut self, this: Resource<CallRes>) -> Result<Vec<u8>, Fail> {
        let call = self.table.get_mut(&this)?;
        let outcome = match std::mem::replace(&mut call.state, CallState::Taken) {
            CallState::Done(o) => o,
            CallState::Taken => Err(self.err(ErrorKind::BadArgs, "the outcome of this call was already taken")),
            CallState::Pending(p) => self.scopes().guard(p.get()).await?,
        };
        Ok(cbor_bytes(&outcome?))
    }
}
