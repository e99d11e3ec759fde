//! `tractor:actor/log`: guest log records through the host's `tracing`.

use super::tractor::actor::log;
use super::{ActorState, R};

impl log::Host for ActorState {
    async fn log(&mut self, level: log::Level, message: String) -> R<()> {
        emit(&self.actor.me.name, level as u8, &message);
        Ok(())
    }
}

/// One guest log record; `level` is the WIT `level`'s index (trace = 0 ..
/// error = 4), the same in every version of the package.
pub(super) fn emit(actor: &str, level: u8, message: &str) {
    match level {
        0 => tracing::trace!(target: "tractor::guest", actor, "{message}"),
        1 => tracing::debug!(target: "tractor::guest", actor, "{message}"),
        2 => tracing::info!(target: "tractor::guest", actor, "{message}"),
        3 => tracing::warn!(target: "tractor::guest", actor, "{message}"),
        _ => tracing::error!(target: "tractor::guest", actor, "{message}"),
    }
}
