//! The plain calls a daemon serves (one at a time on a sync instance, all
//! at once as tasks of an async one): the queue, the calls running, and
//! cancelling either.
//!
//! Every call is answered exactly once: by the serving loop when it ran,
//! at once when its caller cancelled it while it was queued, and when the
//! actor stops serving (cancelled, or its instance trapped) with the reason
//! it will never run.

use super::imports::CallScope;
use crate::error::{ErrorKind, RemoteError};
use crate::wire::{CallRequest, Msg};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// The book of plain calls, shared by the reader (arrivals, cancellations)
/// and the serving loop.
pub struct Calls {
    book: Mutex<Book>,
    queue: mpsc::UnboundedSender<CallRequest>,
    out: mpsc::UnboundedSender<Msg>,
    who: (String, String),
    /// Calls that ran and were answered.
    served: std::sync::atomic::AtomicU64,
}

#[derive(Default)]
struct Book {
    running: HashMap<u64, Arc<CallScope>>,
    /// Received and neither started nor answered.
    queued: HashSet<u64>,
    /// Set once no more calls will run: what every later one is told.
    closed: Option<RemoteError>,
}

/// The serving loop's end of the queue.
pub type Queue = mpsc::UnboundedReceiver<CallRequest>;

impl Calls {
    /// A book for actor `who` (name, uid) answering over `out`.
    pub fn new(out: mpsc::UnboundedSender<Msg>, who: (&str, &str)) -> (Calls, Queue) {
        let (queue, rx) = mpsc::unbounded_channel();
        let who = (who.0.to_string(), who.1.to_string());
        let calls = Calls { book: Mutex::default(), queue, out, who, served: Default::default() };
        (calls, rx)
    }

    fn fail(&self, id: u64, error: RemoteError) {
        let _ = self.out.send(Msg::CallFailed { id, error });
    }

    /// Is `id` a call in flight (queued or running)?
    pub fn in_flight(&self, id: u64) -> bool {
        let book = self.book.lock().unwrap();
        book.queued.contains(&id) || book.running.contains_key(&id)
    }

    /// A call arrived: queue it (or answer it at once if the actor no
    /// longer serves). `Err` is a protocol error: its id is in flight.
    pub fn arrive(&self, req: CallRequest) -> Result<(), String> {
        let mut book = self.book.lock().unwrap();
        if book.queued.contains(&req.id) || book.running.contains_key(&req.id) {
            return Err(format!("call id {} is already in flight", req.id));
        }
        if let Some(error) = book.closed.clone() {
            drop(book);
            self.fail(req.id, error);
            return Ok(());
        }
        book.queued.insert(req.id);
        // Under the lock: `close` drains exactly what was queued before it.
        let _ = self.queue.send(req);
        Ok(())
    }

    /// The caller cancelled call `id`: a running call is cancelled at its
    /// checkpoints; a queued one is answered now and will not run.
    pub fn cancel(&self, id: u64, by: &str) {
        let mut book = self.book.lock().unwrap();
        match book.running.get(&id) {
            Some(scope) => scope.cancel(by),
            None => {
                if book.queued.remove(&id) {
                    drop(book);
                    let e = RemoteError::cancelled(format!("call cancelled by '{by}' before it started"))
                        .with_actor(&self.who.0, &self.who.1);
                    self.fail(id, e);
                }
            }
        }
    }

    /// Cancel every call (queued or running) whose id `mine` picks: the
    /// peer link they came over is gone.
    pub fn cancel_where(&self, mine: impl Fn(u64) -> bool, by: &str) {
        let ids: Vec<u64> = {
            let book = self.book.lock().unwrap();
            book.queued.iter().chain(book.running.keys()).copied().filter(|id| mine(*id)).collect()
        };
        for id in ids {
            self.cancel(id, by);
        }
    }

    /// Start serving call `id`: its scope, or `None` if it was cancelled
    /// (and answered) while queued.
    pub fn begin(&self, id: u64) -> Option<Arc<CallScope>> {
        let mut book = self.book.lock().unwrap();
        if !book.queued.remove(&id) {
            return None;
        }
        let scope = Arc::new(CallScope::default());
        book.running.insert(id, scope.clone());
        Some(scope)
    }

    /// Running call `id` was answered.
    pub fn end(&self, id: u64) {
        self.book.lock().unwrap().running.remove(&id);
        self.served.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Calls in flight (queued or running), and calls answered so far.
    pub fn counts(&self) -> (u32, u64) {
        let book = self.book.lock().unwrap();
        ((book.queued.len() + book.running.len()) as u32, self.served.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// No more calls will run: answer every queued one, and every later
    /// one, with `error`.
    pub fn close(&self, queue: &mut Queue, error: RemoteError) {
        let mut book = self.book.lock().unwrap();
        book.closed = Some(error.clone());
        while let Ok(req) = queue.try_recv() {
            if book.queued.remove(&req.id) {
                self.fail(req.id, error.clone());
            }
        }
    }

    /// Why a daemon cancelled by `by` runs no queued call.
    pub fn gone(&self, by: &str) -> RemoteError {
        RemoteError::new(
            ErrorKind::ActorGone,
            format!("actor '{}' was cancelled by '{by}' before the call started; it takes no more calls", self.who.0),
        )
        .with_actor(&self.who.0, &self.who.1)
    }
}
