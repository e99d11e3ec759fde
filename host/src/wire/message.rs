//! The one typed enum every frame carries.

use super::status::ActorStatus;
use super::tree::{TreeReq, TreeResp};
use crate::error::RemoteError;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Every message either side of a parent/child pipe can send.
///
/// Parent → child: [`Msg::Start`] (always first), [`Msg::Call`], [`Msg::CancelCall`], [`Msg::Cancel`],
/// [`Msg::OpenContext`], [`Msg::CancelContext`].
/// Child → parent: [`Msg::Ready`] (always first), [`Msg::Return`],
/// [`Msg::CallFailed`], [`Msg::Failed`], [`Msg::Started`], [`Msg::ContextDone`].
/// Both ways: [`Msg::Stream`], [`Msg::Credit`], [`Msg::StreamEnd`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Msg {
    /// Who the child is and what it runs; the first frame a child receives.
    Start(Box<StartActor>),
    /// Call an export of the child's component.
    Call(CallRequest),
    /// Cancel call `id` (queued or running); the child answers it with a
    /// `cancelled` error.
    CancelCall {
        /// Id of the [`CallRequest`] to cancel.
        id: u64,
        /// Name of the actor that cancelled it.
        by: String,
    },
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
        /// Id of the [`CallRequest`] this answers.
        id: u64,
        /// The export's result(s) as CBOR (`null` for none).
        value: ciborium::Value,
    },
    /// A call failed.
    CallFailed {
        /// Id of the [`CallRequest`] this answers.
        id: u64,
        /// What went wrong, in the callee or below it.
        error: RemoteError,
    },
    /// The actor as a whole failed (could not load, lost its own child...).
    Failed {
        /// What went wrong.
        error: RemoteError,
    },
    /// Open a 2-way context: call export `func`, whose first parameter is
    /// the context, with the remaining arguments.
    OpenContext(CallRequest),
    /// The callee passed this value to `context.started`.
    Started {
        /// Context id (the `id` of its [`Msg::OpenContext`]).
        cid: u64,
        /// CBOR-encoded value.
        #[serde(with = "serde_bytes")]
        value: Vec<u8>,
    },
    /// Cancel the callee's function.
    CancelContext {
        /// Context id.
        cid: u64,
        /// Actor that cancelled it.
        by: String,
        /// Set when the caller failed: the callee sees this error.
        error: Option<RemoteError>,
    },
    /// The callee's function ended.
    ContextDone {
        /// Context id.
        cid: u64,
        /// How it ended.
        outcome: ContextOutcome,
    },
    /// One stream message.
    Stream {
        /// Context id.
        cid: u64,
        /// CBOR-encoded payload, forwarded without decoding.
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
    /// The receiver consumed `n` messages: the sender may send `n` more.
    Credit {
        /// Context id.
        cid: u64,
        /// Messages granted.
        n: u32,
    },
    /// The sender closed its end of the stream.
    StreamEnd {
        /// Context id.
        cid: u64,
    },
    /// Child → parent: a request for the tree's registrar, forwarded hop
    /// by hop (each hop with an id of its own) up to the driver.
    TreeRequest {
        /// Id chosen by the sender, echoed in the [`Msg::TreeResponse`].
        id: u64,
        /// What is asked.
        req: TreeReq,
    },
    /// Parent → child: the registrar's answer to request `id`.
    TreeResponse {
        /// The request's id.
        id: u64,
        /// The answer.
        resp: TreeResp,
    },
    /// Child → parent: the asker no longer waits for request `id` (a
    /// cancelled `wait-for-actor`).
    TreeCancel {
        /// The request's id.
        id: u64,
    },
    /// Found → finder, on a peer link: the found actor is exiting; the
    /// last frame before the link closes.
    PeerClosing {
        /// Why (its cancellation, or its failure).
        reason: RemoteError,
    },
    /// Both ways, on remote (ssh) links only: the link is alive.
    Heartbeat,
    /// Parent → relay, remote links only: deliver `signal` to the remote
    /// actor's process group.
    Signal {
        /// The signal number.
        signal: i32,
    },
    /// Relay → parent, remote links only: how the remote actor process
    /// ended; its last frame.
    Exited {
        /// Its exit status, if it exited.
        code: Option<i32>,
        /// The signal that killed it, if one did.
        signal: Option<i32>,
    },
    /// Relay → parent, remote links only: whole lines the remote subtree
    /// wrote to its stdout.
    Output {
        /// The bytes.
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
    /// Parent → child: report your status and your subtree's (for
    /// `tractor-host ps`).
    Status {
        /// Id chosen by the parent, echoed in the [`Msg::StatusReport`].
        id: u64,
    },
    /// Child → parent: the answer to [`Msg::Status`]: the child first,
    /// then each of its descendants after its own parent.
    StatusReport {
        /// The request's id.
        id: u64,
        /// The statuses.
        actors: Vec<ActorStatus>,
    },
}

impl Msg {
    /// The variant's name, as on the wire (for errors about a message that
    /// should not have come).
    pub fn name(&self) -> &'static str {
        match self {
            Msg::Start(_) => "Start",
            Msg::Call(_) => "Call",
            Msg::CancelCall { .. } => "CancelCall",
            Msg::Cancel { .. } => "Cancel",
            Msg::Ready { .. } => "Ready",
            Msg::Return { .. } => "Return",
            Msg::CallFailed { .. } => "CallFailed",
            Msg::Failed { .. } => "Failed",
            Msg::OpenContext(_) => "OpenContext",
            Msg::Started { .. } => "Started",
            Msg::CancelContext { .. } => "CancelContext",
            Msg::ContextDone { .. } => "ContextDone",
            Msg::Stream { .. } => "Stream",
            Msg::Credit { .. } => "Credit",
            Msg::StreamEnd { .. } => "StreamEnd",
            Msg::TreeRequest { .. } => "TreeRequest",
            Msg::TreeResponse { .. } => "TreeResponse",
            Msg::TreeCancel { .. } => "TreeCancel",
            Msg::PeerClosing { .. } => "PeerClosing",
            Msg::Heartbeat => "Heartbeat",
            Msg::Signal { .. } => "Signal",
            Msg::Exited { .. } => "Exited",
            Msg::Output { .. } => "Output",
            Msg::Status { .. } => "Status",
            Msg::StatusReport { .. } => "StatusReport",
        }
    }
}

/// How a context's function ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum ContextOutcome {
    /// It returned this value.
    Returned(ciborium::Value),
    /// It was cancelled by the named actor.
    Cancelled {
        /// The canceller.
        by: String,
    },
    /// It failed.
    Failed(RemoteError),
}

/// A request to call one export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallRequest {
    /// Caller-chosen id, echoed in the answer; unique among the calls and
    /// contexts in flight on one connection.
    pub id: u64,
    /// Export name, e.g. `main` or `my:pkg/iface#func`.
    pub func: String,
    /// Arguments: a CBOR array (positional) or map (by parameter name);
    /// none if left out.
    #[serde(default = "no_args")]
    pub args: ciborium::Value,
}

/// Everything a new actor process needs to know about itself. Fields with
/// a default may be left out (`docs/protocol.md` lists them); unknown
/// fields are an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartActor {
    /// Name given by the spawner.
    pub name: String,
    /// Unique id in the tree.
    pub uid: String,
    /// Distance from the root.
    #[serde(default)]
    pub depth: u32,
    /// Manifest name of the component this actor runs.
    pub component: String,
    /// Every component of the tree, so the child can spawn by name without
    /// reading the manifest or compiling anything.
    pub components: Vec<ComponentEntry>,
    /// Grace period, in milliseconds, a cancelled actor of this tree gets
    /// before it is killed.
    #[serde(default = "default_grace_ms")]
    pub grace_ms: u64,
    /// Deepest an actor of this tree may be (root = 0), if limited.
    #[serde(default)]
    pub max_depth: Option<u32>,
    /// The capabilities this actor has.
    #[serde(default)]
    pub grants: crate::sandbox::Grants,
    /// Id of the tree (what `TRACTOR_TREE` says in every actor process it
    /// starts); a fresh one if left out.
    #[serde(default = "crate::spawn::new_uid")]
    pub tree_id: String,
    /// How this actor starts its own children (default: `exec`).
    #[serde(default)]
    pub spawn: crate::spawn::SpawnPolicy,
    /// For `run-in-actor` children: the one call to make, after which the
    /// child exits. `None` for daemons.
    #[serde(default)]
    pub run: Option<CallRequest>,
    /// Abstract unix socket to accept peer links on (tokens checked
    /// against `token`); empty: accept none.
    #[serde(default)]
    pub peer_addr: String,
    /// What a peer must present; the spawner registers it with the
    /// registrar, which hands it only to finders.
    #[serde(default)]
    pub token: String,
    /// Whether the parent speaks the tree bus ([`Msg::TreeRequest`]): it
    /// forwards requests to the tree's registrar and registers children.
    /// A parent that leaves it out gets none of those frames; lookups in
    /// such a tree fail with `denied`.
    #[serde(default)]
    pub registry: bool,
    /// The host it runs on, by its manifest name ("" for the driver's).
    #[serde(default)]
    pub host: String,
    /// The tree's `[hosts]`, for ssh spawns from it.
    #[serde(default)]
    pub hosts: Vec<crate::spawn::ssh::HostSpec>,
}

fn no_args() -> ciborium::Value {
    ciborium::Value::Null
}

fn default_grace_ms() -> u64 {
    2000
}

/// A component a tree may spawn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentEntry {
    /// Manifest name.
    pub name: String,
    /// Path of its precompiled `.cwasm` in the cache (what `tractor-host
    /// build` prints); empty when `wasm` is given instead.
    #[serde(default)]
    pub cwasm: PathBuf,
    /// Path of the component itself, for a parent without a `.cwasm`: the
    /// actor precompiles it into its own cache on first use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wasm: Option<PathBuf>,
    /// What an actor running it may consume.
    #[serde(default)]
    pub limits: crate::sandbox::Limits,
    /// Capabilities an actor running it gets unless its spawner narrows them.
    #[serde(default)]
    pub grants: crate::sandbox::Grants,
    /// How actors running it are started, if the manifest says.
    #[serde(default)]
    pub spawn: Option<crate::spawn::Backend>,
    /// How an actor runs it (`sync` or `async`, read from the component by
    /// whoever precompiled it); it names the engine `cwasm` was compiled for.
    #[serde(default)]
    pub model: crate::component::Model,
    /// Whether its actors are registered (found by name); default true.
    #[serde(default = "yes")]
    pub discoverable: bool,
    /// The host its actors are placed on (`spawn = "ssh:<host>"`).
    #[serde(default)]
    pub host: Option<String>,
    /// SHA-256 of its `.wasm` (64 hex digits), what remote caches are
    /// asked for; "" if unknown.
    #[serde(default)]
    pub sha256: String,
    /// Size of its `.wasm` in bytes.
    #[serde(default)]
    pub size: u64,
    /// Its `.wasm` on the spawner's host, shipped to hosts that lack it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<PathBuf>,
}

fn yes() -> bool {
    true
}
