//! `tractor:actor/discovery`: finding actors of the tree by name. Every
//! lookup is a checkpoint; a found actor comes back as an ordinary portal
//! resource whose target is a peer (see `crate::nursery::peer`).

use super::identity::actor_info;
use super::portal::PortalRes;
use super::tractor::actor::discovery;
use super::{wit, ActorState, Fail, Wit, R};
use crate::nursery::{ActorInfo, Portal};
use crate::wire::Entry;
use wasmtime::component::Resource;

impl discovery::Host for ActorState {
    async fn find_actor(&mut self, name: String) -> R<Wit<Option<Resource<PortalRes>>>> {
        let actor = self.actor.clone();
        let found = self.scopes().guard(actor.find_actor(&name)).await;
        let r = self.portal_for(found.and_then(|r| r));
        wit(r)
    }

    async fn find_actor_by_uid(&mut self, uid: String) -> R<Wit<Option<Resource<PortalRes>>>> {
        let actor = self.actor.clone();
        let found = self.scopes().guard(actor.find_actor_by_uid(&uid)).await;
        let r = self.portal_for(found.and_then(|r| r));
        wit(r)
    }

    async fn wait_for_actor(&mut self, name: String) -> R<Wit<Resource<PortalRes>>> {
        let actor = self.actor.clone();
        let found = self.scopes().guard(actor.wait_for_actor(&name)).await;
        let r = self.portal_for(found.and_then(|r| r).map(Some)).map(|p| p.expect("some"));
        wit(r)
    }

    async fn query_actor(&mut self, name: String) -> R<Wit<Vec<discovery::Registered>>> {
        let actor = self.actor.clone();
        let r = self.scopes().guard(actor.query_actor(&name)).await;
        wit(r.and_then(|r| r).map(|l| l.iter().map(registered).collect()).map_err(Fail::from))
    }

    async fn registry(&mut self) -> R<Wit<Vec<discovery::Registered>>> {
        let actor = self.actor.clone();
        let r = self.scopes().guard(actor.registry()).await;
        wit(r.and_then(|r| r).map(|l| l.iter().map(registered).collect()).map_err(Fail::from))
    }
}

impl ActorState {
    fn portal_for(
        &mut self,
        found: Result<Option<Portal>, crate::error::RemoteError>,
    ) -> Result<Option<Resource<PortalRes>>, Fail> {
        match found? {
            Some(portal) => Ok(Some(self.table.push(PortalRes { portal, cancel: self.cancel_token() })?)),
            None => Ok(None),
        }
    }
}

/// A registry entry as the guest sees it.
pub(super) fn info_of(e: &Entry) -> ActorInfo {
    ActorInfo { name: e.name.clone(), uid: e.uid.clone(), pid: e.pid, depth: e.depth, component: e.component.clone() }
}

fn registered(e: &Entry) -> discovery::Registered {
    discovery::Registered { info: actor_info(&info_of(e)), host: e.host.clone(), parent_uid: e.parent_uid.clone() }
}
