//! `tractor:actor/runtime`'s free functions: `sleep` and `checkpoint`.

use super::tractor::actor::runtime;
use super::{wit, ActorState, Fail, Wit, R};

impl runtime::Host for ActorState {
    async fn sleep(&mut self, nanos: u64) -> R<Wit<()>> {
        let d = std::time::Duration::from_nanos(nanos);
        wit(self.scopes().guard(tokio::time::sleep(d)).await.map_err(Fail::from))
    }

    async fn checkpoint(&mut self) -> R<Wit<()>> {
        wit(self.scopes().guard(std::future::ready(())).await.map_err(Fail::from))
    }
}
