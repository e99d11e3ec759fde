//! The epoch ticker: the one thread per process that advances wasmtime's
//! epoch while (and only while) some store runs wasm, so a spinning guest
//! can yield to the actor's other tasks and be interrupted.

use std::sync::atomic::{AtomicBool, Ordering};
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

    /// Track `store`'s entries into and exits from wasm.
    pub(super) fn watch<T: 'static>(&self, store: &mut Store<T>) {
        let in_wasm = Arc::new(AtomicBool::new(false));
        self.shared.stores.lock().unwrap().push(Arc::downgrade(&in_wasm));
        let shared = self.shared.clone();
        store.call_hook(move |_, hook| {
            let entering = matches!(hook, CallHook::CallingWasm | CallHook::ReturningFromHost);
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
