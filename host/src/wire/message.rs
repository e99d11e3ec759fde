//! The one typed enum every frame carries.

use crate::error::RemoteError;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Every message either side of a parent/child pipe can send.
///
/// Parent → child: [`Msg::Start`] (always first), [`Msg::Call`], [`Msg::Cancel`].
/// Child → parent: [`Msg::Ready`] (always first), [`Msg::Return`],
/// [`Msg::CallFailed`], [`Msg::Failed`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Msg {
    /// Who the child is and what it runs; the first frame a child receives.
    Start(StartActor),
    /// Call an export of the child's component.
    Call(RunRequest),
    /// Cancel the child: stop its work, tear down its subtree, exit.
    Cancel {
        /// Name of the actor that asked for the cancellation.
        by: String,
    },
    /// The child loaded its component and is ready for calls.
    Ready {
        /// The child's OS process id.
        pid: u32,
    },
    /// A call finished with a value.
    Return {
        /// Id of the [`RunRequest`] this answers.
        id: u64,
        /// The export's result(s) as CBOR (`null` for none).
        value: ciborium::Value,
    },
    /// A call failed.
    CallFailed {
        /// Id of the [`RunRequest`] this answers.
        id: u64,
        /// What went wrong, in the callee or below it.
        error: RemoteError,
    },
    /// The actor as a whole failed (could not load, lost its own child...).
    Failed {
        /// What went wrong.
        error: RemoteError,
    },
}

/// A request to call one export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRequest {
    /// Caller-chosen id, echoed in the answer.
    pub id: u64,
    /// Export name, e.g. `main` or `my:pkg/iface#func`.
    pub func: String,
    /// Arguments: a CBOR array (positional) or map (by parameter name).
    pub args: ciborium::Value,
}

/// Everything a new actor process needs to know about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartActor {
    /// Name given by the spawner.
    pub name: String,
    /// Unique id in the tree.
    pub uid: String,
    /// Distance from the root.
    pub depth: u32,
    /// Manifest name of the component this actor runs.
    pub component: String,
    /// Every component of the tree, so the child can spawn by name without
    /// reading the manifest or compiling anything.
    pub components: Vec<ComponentEntry>,
    /// For `run-in-actor` children: the one call to make, after which the
    /// child exits. `None` for daemons.
    pub run: Option<RunRequest>,
}

/// A precompiled component a tree may spawn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentEntry {
    /// Manifest name.
    pub name: String,
    /// Path of the precompiled `.cwasm` in the cache.
    pub cwasm: PathBuf,
}
