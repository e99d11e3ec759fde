//! `discovery@0.2.0`: 0.1.0's lookups as async checkpoints of the task
//! making them.

use super::super::{wit, PortalRes, Wit, R};
use super::runtime::{scopes, with, H};
use super::tractor::actor::{discovery, identity};
use super::Fail;
use crate::error::RemoteError;
use crate::nursery::Portal;
use crate::wire::Entry;
use wasmtime::component::{Accessor, Resource};

impl<T: Send> discovery::HostWithStore<T> for H {
    async fn find_actor(acc: &Accessor<T, Self>, name: String) -> R<Wit<Option<Resource<PortalRes>>>> {
        let (actor, s) = with(acc, |a| (a.get().actor.clone(), scopes(a)));
        let found = s.guard(actor.find_actor(&name)).await.and_then(|r| r);
        wit(push(acc, found))
    }

    async fn find_actor_by_uid(acc: &Accessor<T, Self>, uid: String) -> R<Wit<Option<Resource<PortalRes>>>> {
        let (actor, s) = with(acc, |a| (a.get().actor.clone(), scopes(a)));
        let found = s.guard(actor.find_actor_by_uid(&uid)).await.and_then(|r| r);
        wit(push(acc, found))
    }

    async fn wait_for_actor(acc: &Accessor<T, Self>, name: String) -> R<Wit<Resource<PortalRes>>> {
        let (actor, s) = with(acc, |a| (a.get().actor.clone(), scopes(a)));
        let found = s.guard(actor.wait_for_actor(&name)).await.and_then(|r| r);
        wit(push(acc, found.map(Some)).map(|p| p.expect("some")))
    }

    async fn query_actor(acc: &Accessor<T, Self>, name: String) -> R<Wit<Vec<discovery::Registered>>> {
        let (actor, s) = with(acc, |a| (a.get().actor.clone(), scopes(a)));
        let r = s.guard(actor.query_actor(&name)).await.and_then(|r| r);
        wit(r.map(|l| l.iter().map(registered).collect()).map_err(Fail::from))
    }

    async fn registry(acc: &Accessor<T, Self>) -> R<Wit<Vec<discovery::Registered>>> {
        let (actor, s) = with(acc, |a| (a.get().actor.clone(), scopes(a)));
        let r = s.guard(actor.registry()).await.and_then(|r| r);
        wit(r.map(|l| l.iter().map(registered).collect()).map_err(Fail::from))
    }
}

impl discovery::Host for super::ActorState {}

fn push<T: Send>(
    acc: &Accessor<T, H>,
    found: Result<Option<Portal>, RemoteError>,
) -> Result<Option<Resource<PortalRes>>, Fail> {
    match found? {
        None => Ok(None),
        Some(portal) => with(acc, |a| {
            let st = a.get();
            let cancel = st.actor.cancel.clone();
            Ok(Some(st.table.push(PortalRes { portal, cancel })?))
        }),
    }
}

fn registered(e: &Entry) -> discovery::Registered {
    let info = identity::ActorInfo {
        name: e.name.clone(),
        uid: e.uid.clone(),
        pid: e.pid,
        depth: e.depth,
        component: e.component.clone(),
    };
    discovery::Registered { info, host: e.host.clone(), parent_uid: e.parent_uid.clone() }
}
