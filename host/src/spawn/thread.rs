//! The `thread` backend: an actor on a thread of its spawner's process.
//!
//! The actor runs exactly the code an actor process runs (the [`Entry`]
//! its spawner hands this backend) on a thread of its own with a
//! single-threaded runtime, and talks to its parent over a link as usual. It gets its
//! own stores, memory and CPU limits and grants; what it does not get is an
//! address space of its own (a wasmtime bug is not contained by the OS) or a
//! core of its own beyond what the process's threads share.
//!
//! Signals cannot target a thread, so "killing" a thread actor stops its
//! runtime at the next point the actor yields (at the latest the next epoch
//! tick in wasm); dropping its stores and children takes its subtree down
//! with it, as a process death would.

use super::{Exit, Handed, Inner, KillVia, Killer, LinkFds, Process, Spawned};
use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Mutex, OnceLock};
use tokio::sync::{mpsc, oneshot};

/// Thread actors of this process that have not ended, by tree id.
fn registry() -> &'static Mutex<HashMap<String, usize>> {
    static LIVE: OnceLock<Mutex<HashMap<String, usize>>> = OnceLock::new();
    LIVE.get_or_init(Default::default)
}

/// How many thread actors of tree `tree_id` are running in this process
/// (what the process table shows for the other backends).
pub fn live(tree_id: &str) -> usize {
    registry().lock().unwrap().get(tree_id).copied().unwrap_or(0)
}

/// Counts one thread actor as live until dropped (when its thread ends).
struct Registered(String);

impl Registered {
    fn new(tree_id: &str) -> Registered {
        *registry().lock().unwrap().entry(tree_id.to_string()).or_default() += 1;
        Registered(tree_id.to_string())
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        let mut live = registry().lock().unwrap();
        if let Some(n) = live.get_mut(&self.0) {
            *n -= 1;
            if *n == 0 {
                live.remove(&self.0);
            }
        }
    }
}

/// What a thread actor runs: the actor itself, on the calling thread, given
/// its side of the link and its handed descriptors, until it ends (its exit
/// code) or `stop` fires (`None`). The actor module provides it: this
/// backend only starts threads.
pub type Entry = fn(LinkFds, Handed, Stop) -> Option<i32>;

/// Fires when a thread actor must stop at once: the in-process equivalent
/// of a kill (any signal, or every handle on the actor dropped).
pub struct Stop(mpsc::UnboundedReceiver<i32>);

impl Stop {
    /// Wait until the actor must stop.
    pub async fn requested(&mut self) {
        let _ = self.0.recv().await;
    }
}

/// Start an actor of tree `tree_id` running `entry` on a new thread of this
/// process, giving it the `handed` descriptors.
pub fn spawn_actor(tree_id: &str, handed: Vec<OwnedFd>, entry: Entry) -> std::io::Result<Spawned> {
    let numbers = handed.iter().map(|f| f.as_raw_fd()).collect();
    let (ours, theirs) = LinkFds::pair()?;
    let (kill_tx, kill_rx) = mpsc::unbounded_channel::<i32>();
    let (exit_tx, exit_rx) = oneshot::channel();
    let registered = Registered::new(tree_id);
    std::thread::Builder::new().name("tractor-actor".into()).spawn(move || {
        let exit = match entry(theirs, Handed::Owned(handed), Stop(kill_rx)) {
            Some(code) => Exit::Code(code),
            None => Exit::Aborted,
        };
        // No longer live before anyone hears it has ended.
        drop(registered);
        let _ = exit_tx.send(exit);
    })?;
    let process = Process { inner: Inner::Reported(exit_rx), killer: Killer(KillVia::Channel(kill_tx)) };
    Ok(Spawned { process, link: ours.into_async()?, pid: std::process::id(), handed: numbers })
}
