//! Waking the tasks of one actor from another (a state changed).

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// Tasks waiting for a change, woken all at once by [`Notify::notify`]; the
/// actor's tasks share one thread, so this is a plain cell.
#[derive(Default)]
pub struct Notify {
    waiting: RefCell<Vec<Waker>>,
    generation: std::cell::Cell<u64>,
}

impl Notify {
    /// A notifier with nobody waiting.
    ///
    /// It can be a `static`: a component's tasks run on its one thread.
    pub const fn new() -> Notify {
        Notify { waiting: RefCell::new(Vec::new()), generation: std::cell::Cell::new(0) }
    }

    /// Wake every task waiting in [`Notify::changed`].
    pub fn notify(&self) {
        self.generation.set(self.generation.get() + 1);
        for w in self.waiting.borrow_mut().drain(..) {
            w.wake();
        }
    }

    /// Wait for the next [`Notify::notify`].
    pub fn changed(&self) -> Changed<'_> {
        Changed { notify: self, seen: self.generation.get() }
    }
}

/// The future of [`Notify::changed`].
pub struct Changed<'a> {
    notify: &'a Notify,
    seen: u64,
}

impl Future for Changed<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.notify.generation.get() != self.seen {
            return Poll::Ready(());
        }
        self.notify.waiting.borrow_mut().push(cx.waker().clone());
        Poll::Pending
    }
}

// SAFETY: a wasm32 component has exactly one thread; its tasks interleave
// on it, never run in parallel.
#[cfg(target_family = "wasm")]
unsafe impl Sync for Notify {}
