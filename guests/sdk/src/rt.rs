//! A small single-threaded async runtime over `wasi:io/poll`, so one guest
//! can wait on several streams and calls at once.
//!
//! Leaf futures are pollables ([`ready`]); [`block_on`] runs a future,
//! and whenever it is stuck, blocks in one `poll` over every pollable some
//! future waits on, then wakes exactly those that became ready. Combine
//! futures with the `futures` crate (`join!`, `select!`, `FuturesUnordered`).

use crate::wit::poll::{poll, Pollable};
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

#[derive(Default)]
struct Reactor {
    next_id: u64,
    waiting: Vec<(u64, Rc<Pollable>, Waker)>,
}

thread_local! {
    static REACTOR: RefCell<Reactor> = RefCell::new(Reactor::default());
}

/// A future that completes when `pollable` is ready.
pub fn ready(pollable: Pollable) -> Ready {
    Ready { pollable: Rc::new(pollable), id: None }
}

/// See [`ready`].
pub struct Ready {
    pollable: Rc<Pollable>,
    id: Option<u64>,
}

impl Ready {
    fn unregister(&mut self) {
        if let Some(id) = self.id.take() {
            REACTOR.with(|r| r.borrow_mut().waiting.retain(|(i, _, _)| *i != id));
        }
    }
}

impl Future for Ready {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.pollable.ready() {
            self.unregister();
            return Poll::Ready(());
        }
        let pollable = self.pollable.clone();
        let id = REACTOR.with(|r| {
            let mut r = r.borrow_mut();
            match self.id {
                Some(id) => {
                    if let Some(entry) = r.waiting.iter_mut().find(|(i, _, _)| *i == id) {
                        entry.2 = cx.waker().clone();
                    }
                    id
                }
                None => {
                    r.next_id += 1;
                    let id = r.next_id;
                    r.waiting.push((id, pollable, cx.waker().clone()));
                    id
                }
            }
        });
        self.id = Some(id);
        Poll::Pending
    }
}

impl Drop for Ready {
    fn drop(&mut self) {
        // The pollable is a child of some resource: it must not outlive
        // this future in the reactor.
        self.unregister();
    }
}

/// Run `fut` to completion, waiting on pollables while it is stuck.
///
/// # Panics
/// If the future is pending without waiting on any pollable (it could
/// never wake up).
pub fn block_on<F: Future>(fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let waker = Waker::noop();
    let mut cx = Context::from_waker(waker);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        let waiting: Vec<(Rc<Pollable>, Waker)> =
            REACTOR.with(|r| r.borrow().waiting.iter().map(|(_, p, w)| (p.clone(), w.clone())).collect());
        assert!(!waiting.is_empty(), "tractor::rt::block_on: the future is pending but waits on nothing");
        let refs: Vec<&Pollable> = waiting.iter().map(|(p, _)| &**p).collect();
        for i in poll(&refs) {
            waiting[i as usize].1.wake_by_ref();
        }
    }
}
