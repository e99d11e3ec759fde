//! Finding actors of the tree by name (the `discovery` interface). A found
//! actor's [`Portal`] runs calls and contexts like a child's, but it is not
//! ours: `cancel_actor` is `denied` (see [`Portal::is_child`]).

use crate::{wit, Portal, Result};

pub use wit::discovery::Registered;

/// A portal to the most recently registered live actor named `name`
/// (never this one), or `None` (checkpoint). Needs a `discover` grant.
pub fn find_actor(name: &str) -> Result<Option<Portal>> {
    Ok(wit::discovery::find_actor(name)?.map(|inner| Portal { inner }))
}

/// The live actor with uid `uid`, or `None`.
pub fn find_actor_by_uid(uid: &str) -> Result<Option<Portal>> {
    Ok(wit::discovery::find_actor_by_uid(uid)?.map(|inner| Portal { inner }))
}

/// Wait until an actor named `name` is registered (checkpoint: bound it
/// with [`crate::with_timeout`]).
pub fn wait_for_actor(name: &str) -> Result<Portal> {
    Ok(Portal { inner: wit::discovery::wait_for_actor(name)? })
}

/// Every live actor named `name`, without connecting to any.
pub fn query_actor(name: &str) -> Result<Vec<Registered>> {
    wit::discovery::query_actor(name)
}

/// Every live actor this one may discover.
pub fn registry() -> Result<Vec<Registered>> {
    wit::discovery::registry()
}
