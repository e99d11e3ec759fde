//! What `tractor-host ps` sees: each actor's live status, gathered hop by
//! hop down the tree ([`super::Msg::Status`]), and the driver's control
//! socket protocol that hands it out.

use serde::{Deserialize, Serialize};

/// Where an actor is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    /// Spawned, its component not yet loaded (no `Ready` yet).
    Starting,
    /// Serving (idle or not: see the call and context counts).
    Running,
    /// Cancelled, winding down.
    Cancelling,
    /// Did not answer a status request in time (busy in a host call that
    /// blocks its thread, or stopped with SIGSTOP).
    Unresponsive,
}

/// One actor's status, as its parent and the actor itself report it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActorStatus {
    /// Name given by its spawner.
    pub name: String,
    /// Unique id in the tree.
    pub uid: String,
    /// Uid of its spawner ("" for the root).
    pub parent_uid: String,
    /// Distance from the root.
    pub depth: u32,
    /// OS process id (for a thread actor, of the process it lives in).
    pub pid: u32,
    /// Manifest name of its component.
    pub component: String,
    /// The backend that started it.
    pub backend: String,
    /// Host it runs on ("" for the driver's).
    #[serde(default)]
    pub host: String,
    /// Where it is in its life.
    pub state: RunState,
    /// Plain calls queued or running.
    pub calls: u32,
    /// Contexts open.
    pub contexts: u32,
    /// Peer links to it (actors that found it).
    pub peers: u32,
    /// Calls and contexts answered so far.
    pub served: u64,
    /// Since it was spawned.
    pub uptime_ms: u64,
    /// CPU time used (user + system; for a thread actor, of its thread).
    pub cpu_ms: u64,
    /// Resident memory of its process; `None` for a thread actor, which
    /// shares its process's.
    pub rss_bytes: Option<u64>,
    /// Linear memory held by its wasm instances.
    pub wasm_bytes: u64,
}

impl ActorStatus {
    /// A human summary of `state` with the counts: `idle`, `serving 2
    /// calls, 1 context`, `cancelling`...
    pub fn describe(&self) -> String {
        match self.state {
            RunState::Starting => "starting".into(),
            RunState::Cancelling => "cancelling".into(),
            RunState::Unresponsive => "unresponsive".into(),
            RunState::Running if self.calls == 0 && self.contexts == 0 => "idle".into(),
            RunState::Running => {
                let plural = |n: u32, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
                let mut parts = Vec::new();
                if self.calls > 0 {
                    parts.push(plural(self.calls, "call"));
                }
                if self.contexts > 0 {
                    parts.push(plural(self.contexts, "context"));
                }
                format!("serving {}", parts.join(", "))
            }
        }
    }
}

/// A request on a driver's control socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum ControlReq {
    /// The whole tree's status.
    Ps,
}

/// A driver's answer to [`ControlReq::Ps`]: its tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TreeStatus {
    /// The tree's id (`TRACTOR_TREE` in its processes' environment).
    pub tree_id: String,
    /// The driver's pid.
    pub driver_pid: u32,
    /// What the driver runs (`tractor-host run <manifest>`, or the
    /// native program's name).
    pub label: String,
    /// Since the driver opened the tree.
    pub uptime_ms: u64,
    /// Every actor, each after its parent (depth first).
    pub actors: Vec<ActorStatus>,
}
