//! Who an actor is and what its tree shares: plain data, passed down to
//! every actor of the tree.

use crate::error::RemoteError;
use crate::spawn::{Backend, SpawnPolicy};
use crate::wire::ComponentEntry;
use std::path::PathBuf;
use std::time::Duration;

/// What every actor of one tree shares: the host binary and the components.
#[derive(Debug, Clone)]
pub struct TreeInfo {
    /// The `tractor-host` binary that actor processes re-execute.
    pub host_exe: PathBuf,
    /// Precompiled components by manifest name.
    pub components: Vec<ComponentEntry>,
    /// Id of the tree, exported to every actor process as `TRACTOR_TREE`
    /// (so `ps e`, and the tests, can tell which tree a process belongs to).
    pub id: String,
    /// How long a cancelled actor may take to exit before it is killed.
    pub grace: Duration,
    /// Deepest an actor may be (root = 0), if limited.
    pub max_depth: Option<u32>,
    /// Which backend starts each actor.
    pub spawn: SpawnPolicy,
    /// What a `thread` actor runs (the actor module's entry point).
    pub thread_entry: crate::spawn::thread::Entry,
    /// The manifest's `[hosts]`.
    pub hosts: Vec<crate::spawn::ssh::HostSpec>,
    /// The host this actor runs on ("" for the driver's).
    pub here: String,
}

impl TreeInfo {
    /// True if some spawn in this tree may use the forkserver, so its
    /// driver must start a zygote.
    pub(super) fn may_fork(&self) -> bool {
        match self.spawn.forced {
            Some(b) => b == Backend::Forkserver,
            None => {
                self.spawn.default == Backend::Forkserver
                    || self.components.iter().any(|c| c.spawn == Some(Backend::Forkserver))
            }
        }
    }
}

/// Identity of one actor, as reported to guests and in errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActorInfo {
    /// Name given by the spawner.
    pub name: String,
    /// Unique id.
    pub uid: String,
    /// OS process id.
    pub pid: u32,
    /// Distance from the root.
    pub depth: u32,
    /// Manifest component name.
    pub component: String,
}

/// The outcome of a call or of a `run-in-actor` child.
pub type CallResult = Result<ciborium::Value, RemoteError>;
