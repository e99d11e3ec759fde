//! `tractor:actor/identity`: who the calling actor is.

use super::tractor::actor::identity;
use super::{convert, types, ActorState, R};

impl identity::Host for ActorState {
    async fn current(&mut self) -> R<identity::ActorInfo> {
        Ok(actor_info(&self.actor.me))
    }

    async fn available_parallelism(&mut self) -> R<u32> {
        Ok(std::thread::available_parallelism().map_or(1, |n| n.get() as u32))
    }

    async fn current_grants(&mut self) -> R<types::Grants> {
        Ok(convert::grants_to_wit(self.actor.grants.clone().unwrap_or_default()))
    }
}

/// An actor's identity as WIT `actor-info`.
pub(super) fn actor_info(i: &crate::nursery::ActorInfo) -> identity::ActorInfo {
    identity::ActorInfo {
        name: i.name.clone(),
        uid: i.uid.clone(),
        pid: i.pid,
        depth: i.depth,
        component: i.component.clone(),
    }
}
