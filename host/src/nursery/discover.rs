//! Looking actors up by name: the native API behind the WIT `discovery`
//! interface. Every lookup asks the tree's registrar (over the tree bus);
//! what it finds is reached over a peer link and held as a [`Portal`]
//! that does not own its target.

use super::portal::Portal;
use super::scope::ActorScope;
use crate::error::{ErrorKind, RemoteError};
use crate::wire::{Entry, TreeReq, TreeResp};
use std::sync::Arc;

impl ActorScope {
    /// A portal to the most recently registered live actor named `name`
    /// (never this one), or `None`.
    pub async fn find_actor(self: &Arc<Self>, name: &str) -> Result<Option<Portal>, RemoteError> {
        let req = TreeReq::Find { from: self.me.uid.clone(), name: name.to_string() };
        self.found(req).await
    }

    /// A portal to the live actor with uid `uid` (never this one), or `None`.
    pub async fn find_actor_by_uid(self: &Arc<Self>, uid: &str) -> Result<Option<Portal>, RemoteError> {
        let req = TreeReq::FindUid { from: self.me.uid.clone(), uid: uid.to_string() };
        self.found(req).await
    }

    /// Wait until an actor named `name` is registered, then a portal to it.
    /// Dropping the future withdraws the wait.
    pub async fn wait_for_actor(self: &Arc<Self>, name: &str) -> Result<Portal, RemoteError> {
        let req = TreeReq::WaitFor { from: self.me.uid.clone(), name: name.to_string() };
        match self.found(req).await? {
            Some(p) => Ok(p),
            None => {
                Err(self.error(ErrorKind::Internal, format!("the registrar answered a wait for `{name}` with none")))
            }
        }
    }

    /// Every live actor named `name` (without connecting to any).
    pub async fn query_actor(&self, name: &str) -> Result<Vec<Entry>, RemoteError> {
        self.entries(TreeReq::Query { from: self.me.uid.clone(), name: name.to_string() }).await
    }

    /// Every live actor of the tree this one may discover.
    pub async fn registry(&self) -> Result<Vec<Entry>, RemoteError> {
        self.entries(TreeReq::List { from: self.me.uid.clone() }).await
    }

    async fn entries(&self, req: TreeReq) -> Result<Vec<Entry>, RemoteError> {
        match self.bus.ask(req).await? {
            TreeResp::Entries(list) => Ok(list),
            TreeResp::Error(e) => Err(e),
            other => Err(self.error(ErrorKind::Protocol, format!("the registrar answered {other:?}"))),
        }
    }

    async fn found(self: &Arc<Self>, req: TreeReq) -> Result<Option<Portal>, RemoteError> {
        match self.bus.ask(req).await? {
            TreeResp::Found(None) => Ok(None),
            TreeResp::Found(Some(entry)) => {
                let child = self.peer(&entry).await?;
                Ok(Some(Portal { child, caller: self.me.name.clone() }))
            }
            TreeResp::Error(e) => Err(e),
            other => Err(self.error(ErrorKind::Protocol, format!("the registrar answered {other:?}"))),
        }
    }
}
