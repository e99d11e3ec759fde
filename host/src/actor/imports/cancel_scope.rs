//! `runtime.cancel-scope`: trio's `CancelScope`, with an optional deadline.

use super::scopes::GuestScope;
use super::tractor::actor::runtime;
use super::{ActorState, R};
use std::sync::Arc;
use wasmtime::component::Resource;

/// Guest handle on a cancel scope.
pub struct CancelScopeRes {
    pub(super) scope: Arc<GuestScope>,
}

impl runtime::HostCancelScope for ActorState {
    async fn new(&mut self, timeout_nanos: Option<u64>) -> R<Resource<CancelScopeRes>> {
        let scope = Arc::new(GuestScope::default());
        if let Some(nanos) = timeout_nanos {
            scope.expire_after(std::time::Duration::from_nanos(nanos));
        }
        self.main.guest.push(scope.clone());
        Ok(self.table.push(CancelScopeRes { scope })?)
    }

    async fn cancel(&mut self, this: Resource<CancelScopeRes>) -> R<()> {
        self.table.get(&this)?.scope.token.cancel();
        Ok(())
    }

    async fn cancelled(&mut self, this: Resource<CancelScopeRes>) -> R<bool> {
        Ok(self.table.get(&this)?.scope.token.is_cancelled())
    }

    async fn drop(&mut self, this: Resource<CancelScopeRes>) -> R<()> {
        let res = self.table.delete(this)?;
        // Closing the scope also ends its deadline timer.
        res.scope.token.cancel();
        self.main.guest.retain(|g| !Arc::ptr_eq(g, &res.scope));
        Ok(())
    }
}
