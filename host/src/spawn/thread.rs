//! The `thread` backend: an actor on a thread of its spawner's process.
//!
//! The actor runs exactly the code an actor process runs
//! ([`crate::actor::run_on`]) on a thread of its own with a single-threaded
//! runtime, and talks to its parent over a link as usual. It gets its
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
use std::time::Duration;
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

/// Start an actor of tree `tree_id` on a new thread of this process, giving
/// it the `handed` descriptors.
pub fn spawn_actor(tree_id: &str, handed: Vec<OwnedFd>) -> std::io::Result<Spawned> {
    let numbers = handed.iter().map(|f| f.as_raw_fd()).collect();
    let (ours, theirs) = LinkFds::pair()?;
    let (kill_tx, kill_rx) = mpsc::unbounded_channel::<i32>();
    let (exit_tx, exit_rx) = oneshot::channel();
    let registered = Registered::new(tree_id);
    std::thread::Builder::new().name("tractor-actor".into()).spawn(move || {
        let exit = run(theirs, Handed::Owned(handed), kill_rx);
        // No longer live before anyone hears it has ended.
        drop(registered);
        let _ = exit_tx.send(exit);
    })?;
    let process = Process { inner: Inner::Reported(exit_rx), killer: Killer(KillVia::Channel(kill_tx)) };
    Ok(Spawned { process, link: ours.into_async()?, pid: std::process::id(), handed: numbers })
}

/// The thread's body: serve until the actor ends or is stopped (any signal,
/// or every handle on it dropped).
fn run(link: LinkFds, handed: Handed, mut kill: mpsc::UnboundedReceiver<i32>) -> Exit {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .event_interval(crate::wire::frame::EVENT_INTERVAL)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return Exit::Lost(format!("cannot start tokio: {e}")),
    };
    let exit = rt.block_on(async {
        tokio::select! {
            biased;
            _ = kill.recv() => Exit::Aborted,
            code = crate::actor::run_on(link, handed) => Exit::Code(code),
        }
    });
    rt.shutdown_timeout(Duration::from_millis(100));
    exit
}
