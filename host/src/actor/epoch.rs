//! The epoch ticker: the one thread per process that advances wasmtime's
//! epoch while (and only while) some store runs wasm, so a spinning guest
//! can yield to the actor's other tasks and be interrupted.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;
use wasmtime::{CallHook, Engine, Store};

/// Advances the engine's epoch every [`TICK`] while any instance of this
/// process (of any actor in it) is running wasm, so it reaches its epoch callback (yield, or trap
/// if interrupted). Instances blocked in host calls, and idle actors, cost
/// no wakeups: the thread parks until some store enters wasm again.
#[derive(Clone)]
pub struct Ticker {
    shared: Arc<TickerShared>,
}

struct TickerShared {
    /// The engines of the process (one per model in use).
    engines: Mutex<Vec<Engine>>,
    /// One flag per store: is it executing wasm right now?
    stores: Mutex<Vec<std::sync::Weak<AtomicBool>>>,
    parked: AtomicBool,
    wake: (Mutex<()>, Condvar),
}

/// Epoch period: how long wasm runs before other tasks get a turn, and the
/// granularity of interrupting a spinning guest.
pub const TICK: Duration = Duration::from_millis(2);

impl Ticker {
    /// The process's ticker, started on first use (never in the zygote,
    /// which must stay single-threaded: it only preloads components).
    pub(super) fn get(engine: &Engine) -> Ticker {
        static TICKER: std::sync::OnceLock<Ticker> = std::sync::OnceLock::new();
        let t = TICKER.get_or_init(Ticker::start).clone();
        let mut engines = t.shared.engines.lock().unwrap();
        if !engines.iter().any(|e| Engine::same(e, engine)) {
            engines.push(engine.clone());
        }
        drop(engines);
        t
    }

    fn start() -> Ticker {
        let shared = Arc::new(TickerShared {
            engines: Mutex::new(Vec::new()),
            stores: Mutex::new(Vec::new()),
            parked: AtomicBool::new(false),
            wake: (Mutex::new(()), Condvar::new()),
        });
        let t = shared.clone();
        let spawned = std::thread::Builder::new().name("tractor-epoch".into()).spawn(move || loop {
            std::thread::sleep(TICK);
            let running = {
                let mut stores = t.stores.lock().unwrap();
                stores.retain(|w| w.strong_count() > 0);
                stores.iter().filter_map(|w| w.upgrade()).any(|f| f.load(Ordering::Relaxed))
            };
            if running {
                for engine in t.engines.lock().unwrap().iter() {
                    engine.increment_epoch();
                }
                continue;
            }
            let guard = t.wake.0.lock().unwrap();
            t.parked.store(true, Ordering::SeqCst);
            // Re-check under the lock: a store may have entered wasm between
            // the scan and parking (it then finds `parked` set and notifies).
            let again = t.stores.lock().unwrap().iter().filter_map(|w| w.upgrade()).any(|f| f.load(Ordering::SeqCst));
            if !again {
                drop(t.wake.1.wait(guard).unwrap());
            }
            t.parked.store(false, Ordering::SeqCst);
        });
        if let Err(e) = spawned {
            tracing::error!("cannot start the epoch thread ({e}): spinning guests cannot be interrupted");
        }
        Ticker { shared }
    }

    /// Track `store`'s entries into and exits from wasm (counting its
    /// calls into the host for `unwind`).
    pub(super) fn watch<T: 'static>(&self, store: &mut Store<T>, unwind: &Unwind) {
        let host_calls = unwind.host_calls.clone();
        let in_wasm = Arc::new(AtomicBool::new(false));
        self.shared.stores.lock().unwrap().push(Arc::downgrade(&in_wasm));
        let shared = self.shared.clone();
        store.call_hook(move |_, hook| {
            let entering = matches!(hook, CallHook::CallingWasm | CallHook::ReturningFromHost);
            if matches!(hook, CallHook::CallingHost) {
                host_calls.fetch_add(1, Ordering::Relaxed);
            }
            // SeqCst pairs with the ticker's `parked` handshake (Dekker-style).
            in_wasm.store(entering, Ordering::SeqCst);
            if entering && shared.parked.load(Ordering::SeqCst) {
                let _guard = shared.wake.0.lock().unwrap();
                shared.wake.1.notify_one();
            }
            Ok(())
        });
    }
}

/// Set when the guest must stop running wasm; the epoch callback then
/// traps it at its next loop back-edge or call.
pub type InterruptFlag = Arc<AtomicBool>;

/// How much CPU time a cancelled guest may spend in wasm without calling
/// into the host before it is interrupted. Unwinding from a `cancelled`
/// checkpoint (or returning the real failure a nursery reported) takes
/// microseconds of CPU; a guest that spins does not call the host at all.
/// CPU time, not wall time: a guest descheduled on a loaded machine while
/// it unwinds must not lose the failure it is about to report.
pub const UNWIND_CPU: Duration = Duration::from_millis(10);

/// Decides, at each epoch tick of a cancelled guest, whether it is still
/// unwinding or spinning: it is spinning once it has run [`UNWIND_CPU`] of
/// this thread's CPU time since it last called into the host.
#[derive(Clone, Default)]
pub struct Unwind {
    /// The store's calls into the host (imports and libcalls, the epoch
    /// callback's own included), counted by the call hook.
    host_calls: Arc<AtomicU64>,
    /// `host_calls` at the previous tick.
    seen: u64,
    /// Thread CPU time when the guest was first found running wasm after its
    /// last host call (while interrupted); `None` until then.
    since: Option<Duration>,
}

impl Unwind {
    /// At an epoch tick: true if the guest, `interrupted`, has spent its
    /// allowance of CPU time in wasm without calling the host.
    pub fn spinning(&mut self, interrupted: bool) -> bool {
        let calls = self.host_calls.load(Ordering::Relaxed);
        // This tick is itself one call into the host (a libcall).
        let called = calls.wrapping_sub(self.seen) > 1;
        self.seen = calls;
        if !interrupted {
            self.since = None;
            return false;
        }
        let now = thread_cpu_time();
        match self.since {
            Some(since) if !called => now.saturating_sub(since) >= UNWIND_CPU,
            _ => {
                self.since = Some(now);
                false
            }
        }
    }
}

/// CPU time the calling thread has used (the actor's thread: wasm runs on
/// fibers of it).
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid timespec to write to.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}
