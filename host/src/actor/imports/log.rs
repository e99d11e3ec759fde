//! `tractor:actor/log`: guest log records through the host's `tracing`.

use super::tractor::actor::log;
use super::{ActorState, R};

impl log::Host for ActorState {
    async fn log(&mut self, level: log::Level, message: String) -> R<()> {
        let actor = &self.actor.me.name;
        match level {
            log::Level::Trace => tracing::trace!(target: "tractor::guest", actor, "{message}"),
            log::Level::Debug => tracing::debug!(target: "tractor::guest", actor, "{message}"),
            log::Level::Info => tracing::info!(target: "tractor::guest", actor, "{message}"),
            log::Level::Warn => tracing::warn!(target: "tractor::guest", actor, "{message}"),
            log::Level::Error => tracing::error!(target: "tractor::guest", actor, "{message}"),
        }
        Ok(())
    }
}
