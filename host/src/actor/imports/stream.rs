//! `runtime.stream`: one side of a context's stream, or a broadcast
//! consumer of it.

use super::tractor::actor::runtime;
use super::{or_cancelled, wit, ActorState, Fail, Wit, R};
use crate::context::Receiver;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use wasmtime::component::Resource;
use wasmtime_wasi::p2::{subscribe, DynPollable, Pollable};

/// Guest handle on a stream consumer.
pub struct StreamRes {
    pub(super) rx: Arc<tokio::sync::Mutex<Receiver>>,
    /// The sending side, apart from the receiver's lock: an async guest
    /// sends on a stream while another of its tasks waits to receive.
    pub(super) core: Arc<crate::context::StreamCore>,
    cancel: CancellationToken,
}

impl StreamRes {
    pub(super) fn new(rx: Receiver, cancel: CancellationToken) -> StreamRes {
        StreamRes { core: rx.core().clone(), rx: Arc::new(tokio::sync::Mutex::new(rx)), cancel }
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for StreamRes {
    async fn ready(&mut self) {
        let rx = self.rx.clone();
        or_cancelled(async move { rx.lock().await.ready().await }, &self.cancel).await;
    }
}

impl runtime::HostStream for ActorState {
    async fn send(&mut self, this: Resource<StreamRes>, value: Vec<u8>) -> R<Wit<()>> {
        let core = self.table.get(&this)?.core.clone();
        wit(self.scopes().guard(core.send(value)).await.and_then(|r| r).map_err(Fail::from))
    }

    async fn receive(&mut self, this: Resource<StreamRes>) -> R<Wit<Option<Vec<u8>>>> {
        let rx = self.table.get(&this)?.rx.clone();
        wit(self.scopes().guard(async move { rx.lock().await.recv().await }).await.and_then(|r| r).map_err(Fail::from))
    }

    async fn subscribe_ready(&mut self, this: Resource<StreamRes>) -> R<Resource<DynPollable>> {
        subscribe(&mut self.table, this)
    }

    async fn close(&mut self, this: Resource<StreamRes>) -> R<()> {
        self.table.get(&this)?.core.close();
        Ok(())
    }

    async fn subscribe(&mut self, this: Resource<StreamRes>, capacity: u32) -> R<Resource<StreamRes>> {
        let rx = self.table.get(&this)?.rx.clone();
        let sub = rx.lock().await.subscribe(capacity);
        Ok(self.table.push(StreamRes::new(sub, self.cancel_token()))?)
    }

    async fn drop(&mut self, this: Resource<StreamRes>) -> R<()> {
        self.table.delete(this)?;
        Ok(())
    }
}
