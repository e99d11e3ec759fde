//! Cancel scopes (trio's `CancelScope`, `fail_after`).

use crate::{wit, Result};
use std::time::Duration;

/// Run `body` in a cancel scope with a deadline: once `timeout` has passed,
/// its checkpoints fail with a `Cancelled` error, calls it is waiting on are
/// cancelled in the actors serving them, and a nursery it is closing cancels
/// its children. Like trio's `fail_after`.
pub fn with_timeout<T>(timeout: Duration, body: impl FnOnce() -> Result<T>) -> Result<T> {
    let nanos = timeout.as_nanos().min(u64::MAX as u128) as u64;
    let scope = wit::runtime::CancelScope::new(Some(nanos));
    let r = body();
    drop(scope);
    r
}

/// Run `body` in a cancel scope that it (or anything holding the handle)
/// can cancel; see [`with_timeout`].
pub fn with_cancel_scope<T>(body: impl FnOnce(&CancelScope) -> Result<T>) -> Result<T> {
    let scope = CancelScope { inner: wit::runtime::CancelScope::new(None) };
    body(&scope)
}

/// A cancel scope opened with [`with_cancel_scope`].
pub struct CancelScope {
    inner: wit::runtime::CancelScope,
}

impl CancelScope {
    /// Cancel everything inside the scope.
    pub fn cancel(&self) {
        self.inner.cancel()
    }

    /// True once cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled()
    }
}
