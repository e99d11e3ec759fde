//! The tree bus: requests an actor sends up its parent links to the tree's
//! registrar (in the driver), hop by hop, and the answers that come back
//! down; and the handshake on a peer link.

use crate::error::RemoteError;
use serde::{Deserialize, Serialize};

/// One live actor of the tree, as the registrar knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Name given by its spawner (names are not unique).
    pub name: String,
    /// Unique id in the tree.
    pub uid: String,
    /// OS process id (for a thread actor, of the process it lives in).
    pub pid: u32,
    /// Host it runs on ("" for the driver's).
    #[serde(default)]
    pub host: String,
    /// Distance from the root.
    pub depth: u32,
    /// Manifest name of its component.
    pub component: String,
    /// Uid of its spawner ("" for the root, which the driver spawned).
    pub parent_uid: String,
    /// Abstract unix socket its peer listener accepts on.
    pub peer_addr: String,
    /// What a peer must present to connect; only the registrar hands it
    /// out (and only in answers that lead to a connection).
    #[serde(default)]
    pub token: String,
    /// The `discover` patterns it holds (what its own lookups may see).
    #[serde(default)]
    pub discover: Vec<String>,
    /// The backend that started it (`exec`, `forkserver`, `thread`).
    #[serde(default)]
    pub backend: String,
    /// False for an actor of a component marked `discoverable = false`:
    /// registered (its lookups are checked) but never found.
    #[serde(default = "yes")]
    pub discoverable: bool,
}

fn yes() -> bool {
    true
}

/// What an actor asks the registrar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum TreeReq {
    /// A spawner registers a child that reported ready.
    Register(Box<Entry>),
    /// A spawner reaped this child: drop it and every descendant.
    Unregister {
        /// The child's uid.
        uid: String,
    },
    /// The most recently registered live actor named `name` (never the
    /// asker).
    Find {
        /// Uid of the actor asking.
        from: String,
        /// Name to look up.
        name: String,
    },
    /// The live actor with this uid.
    FindUid {
        /// Uid of the actor asking.
        from: String,
        /// Uid to look up.
        uid: String,
    },
    /// Every live actor named `name` (tokens left out).
    Query {
        /// Uid of the actor asking.
        from: String,
        /// Name to look up.
        name: String,
    },
    /// Every live actor the asker may discover (tokens left out).
    List {
        /// Uid of the actor asking.
        from: String,
    },
    /// Wait until an actor named `name` is registered (answered then).
    WaitFor {
        /// Uid of the actor asking.
        from: String,
        /// Name to wait for.
        name: String,
    },
}

/// The registrar's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum TreeResp {
    /// For `Find`, `FindUid`, `WaitFor`: the entry, with its token.
    Found(Option<Box<Entry>>),
    /// For `Query`, `List`.
    Entries(Vec<Entry>),
    /// The request failed (e.g. `denied`).
    Error(RemoteError),
}

/// The handshake on a peer link's socket, before both sides switch to the
/// pipes the finder attached to its `Hello`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum PeerMsg {
    /// Finder → found, with two descriptors attached (`SCM_RIGHTS`): the
    /// read end of the finder → found pipe, the write end of the other.
    Hello {
        /// The finder's name.
        from_name: String,
        /// The finder's uid.
        from_uid: String,
        /// The found actor's token, from the registrar.
        token: String,
    },
    /// Found → finder: the link is up.
    Ready {
        /// The found actor's pid.
        pid: u32,
    },
    /// Found → finder: no link (bad token, too many peers, exiting).
    Refused {
        /// Why.
        reason: String,
    },
}
