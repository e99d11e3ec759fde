//! The actor's answer to [`Msg::Status`]: its own figures, then its
//! subtree's (gathered by its nursery side, `ActorScope::children_status`).

use super::Actor;
use crate::wire::{ActorStatus, Msg, RunState};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

thread_local! {
    /// Set on a thread-backend actor's thread: its process is not its own.
    static THREAD_ACTOR: Cell<bool> = const { Cell::new(false) };
}

/// Mark the current thread as a thread actor's (its whole runtime runs on it).
pub(super) fn mark_thread_actor() {
    THREAD_ACTOR.with(|t| t.set(true));
}

/// The counters `ps` shows that the call and context books do not keep.
pub(super) struct Gauges {
    started: Instant,
    /// Its run-in-actor function is running.
    pub(super) running_once: AtomicBool,
    /// Contexts that have ended (plus the run-in-actor call, once done).
    pub(super) finished: AtomicU64,
}

impl Default for Gauges {
    fn default() -> Self {
        Gauges { started: Instant::now(), running_once: AtomicBool::new(false), finished: AtomicU64::new(0) }
    }
}

/// Answer status request `id` from the parent (asking our children
/// first, concurrently with everything else the actor does).
pub(super) fn answer(actor: &Arc<Actor>, id: u64) {
    let actor = actor.clone();
    tokio::spawn(async move {
        let me = own(&actor);
        let mut actors = vec![me];
        actors.extend(actor.scope.children_status().await);
        let _ = actor.out.send(Msg::StatusReport { id, actors });
    });
}

/// This actor's own figures (its parent fills in who it is).
fn own(actor: &Actor) -> ActorStatus {
    let scope = &actor.scope;
    let (mut calls, served) = actor.calls.counts();
    let running_once = actor.gauges.running_once.load(Ordering::Relaxed);
    calls += running_once as u32;
    let thread = THREAD_ACTOR.with(Cell::get);
    ActorStatus {
        name: scope.me.name.clone(),
        uid: scope.me.uid.clone(),
        parent_uid: String::new(),
        depth: scope.me.depth,
        pid: std::process::id(),
        component: scope.me.component.clone(),
        backend: String::new(),
        host: scope.tree.here.clone(),
        state: if scope.cancel.is_cancelled() { RunState::Cancelling } else { RunState::Running },
        calls,
        contexts: actor.contexts.lock().unwrap().len() as u32,
        peers: actor.peers.count() as u32,
        served: served + actor.gauges.finished.load(Ordering::Relaxed),
        uptime_ms: actor.gauges.started.elapsed().as_millis() as u64,
        cpu_ms: cpu_ms(thread),
        rss_bytes: if thread { None } else { rss_bytes() },
        wasm_bytes: actor.memory.load(Ordering::Relaxed) as u64,
    }
}

/// CPU time of this process, or of this thread for a thread actor.
fn cpu_ms(thread: bool) -> u64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let who = if thread { libc::RUSAGE_THREAD } else { libc::RUSAGE_SELF };
    // SAFETY: as above; `ru` is valid for writes.
    if unsafe { libc::getrusage(who, &mut ru) } != 0 {
        return 0;
    }
    let ms = |t: libc::timeval| t.tv_sec as u64 * 1000 + t.tv_usec as u64 / 1000;
    ms(ru.ru_utime) + ms(ru.ru_stime)
}

/// Resident memory of this process (`/proc/self/statm`, in pages).
fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * page.max(0) as u64)
}
