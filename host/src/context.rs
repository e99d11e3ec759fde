//! 2-way contexts and their streams.
//!
//! A context is one call of an export whose first parameter is a `context`:
//! the callee reports a first value with `started`, both sides may then talk
//! over the context's bidirectional stream, and the callee's return value
//! ends it. One [`StreamCore`] per side holds the outgoing credit and the
//! incoming messages; the caller side lives in the parent (see
//! [`crate::nursery::Portal::open_context`]), the callee side in the child
//! actor process.
//!
//! **Flow control**: each direction starts with [`WINDOW`] credits; the
//! receiver returns credit as its primary consumer takes messages, so a fast
//! sender blocks when the receiver's buffer is full. Nothing is dropped or
//! reordered.
//!
//! **Broadcast**: [`Receiver::subscribe`] adds a local consumer that sees
//! every message from then on. Once a stream has subscribers, messages are
//! fanned out to every consumer as they arrive (credit is returned at once,
//! so no consumer can stall another); a consumer that falls more than its
//! buffer behind gets a `lagged` error saying by how many messages, and then
//! carries on from the oldest message still buffered.

use crate::error::{ErrorKind, RemoteError};
use crate::wire::{ContextOutcome, Msg};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{broadcast, mpsc, watch, Notify, Semaphore};
use tokio_util::sync::CancellationToken;

/// Messages a receiver may buffer before its sender blocks.
pub const WINDOW: u32 = 1024;

/// One entry of a receiver's inbox.
#[derive(Debug, Clone)]
enum Item {
    Data(Vec<u8>),
    End,
    Error(RemoteError),
}

#[derive(Default)]
struct Inbox {
    queue: VecDeque<Item>,
    /// Consumed by the primary receiver since the last credit we sent.
    unacked: u32,
    /// Set once the stream has subscribers: new messages go here.
    fanout: Option<broadcast::Sender<Item>>,
    /// The primary consumer's place in the fan-out, taken when it gets there.
    primary_rx: Option<broadcast::Receiver<Item>>,
    /// A terminal item (end or error) has arrived.
    finished: bool,
}

/// One side of a context's stream.
pub struct StreamCore {
    cid: u64,
    out: mpsc::UnboundedSender<Msg>,
    /// Who is on the other side (for error messages).
    peer: String,
    /// Our actor name and uid (for errors raised here).
    me: (String, String),
    credits: Semaphore,
    inbox: Mutex<Inbox>,
    notify: Notify,
    local_closed: AtomicBool,
    peer_closed: AtomicBool,
    opened: AtomicBool,
}

impl std::fmt::Debug for StreamCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamCore")
            .field("cid", &self.cid)
            .field("peer", &self.peer)
            .finish()
    }
}

impl StreamCore {
    /// A stream for context `cid` whose outgoing frames go to `out`.
    pub fn new(
        cid: u64,
        out: mpsc::UnboundedSender<Msg>,
        peer: &str,
        me: (&str, &str),
    ) -> Arc<StreamCore> {
        Arc::new(StreamCore {
            cid,
            out,
            peer: peer.to_string(),
            me: (me.0.to_string(), me.1.to_string()),
            credits: Semaphore::new(WINDOW as usize),
            inbox: Mutex::new(Inbox::default()),
            notify: Notify::new(),
            local_closed: AtomicBool::new(false),
            peer_closed: AtomicBool::new(false),
            opened: AtomicBool::new(false),
        })
    }

    fn err(&self, kind: ErrorKind, msg: impl Into<String>) -> RemoteError {
        RemoteError::new(kind, msg).with_actor(&self.me.0, &self.me.1)
    }

    /// Hand out the stream once per side: `open-stream` twice is an error.
    pub fn open(self: &Arc<Self>) -> Result<Receiver, RemoteError> {
        if self.opened.swap(true, Ordering::SeqCst) {
            return Err(self.err(ErrorKind::BadArgs, "the context's stream is already open"));
        }
        Ok(Receiver {
            core: self.clone(),
            sub: None,
        })
    }

    /// A frame for this stream arrived from the peer.
    pub fn on_frame(&self, msg: Msg) {
        match msg {
            Msg::Stream { data, .. } => self.deliver(Item::Data(data)),
            Msg::Credit { n, .. } => self.credits.add_permits(n as usize),
            Msg::StreamEnd { .. } => self.finish(Item::End),
            _ => {}
        }
    }

    /// The peer is gone or done: end the stream with `item` (end or error).
    fn finish(&self, item: Item) {
        self.peer_closed.store(true, Ordering::SeqCst);
        // Wake a sender blocked on credit: nobody will grant any more.
        self.credits.close();
        self.deliver(item);
    }

    /// End the stream because the context ended with `outcome`.
    pub fn finish_with(&self, outcome: &ContextOutcome) {
        match outcome {
            ContextOutcome::Failed(e) => self.finish(Item::Error(e.clone())),
            _ => self.finish(Item::End),
        }
    }

    /// End the stream with an error (e.g. the caller failed).
    pub fn fail(&self, e: RemoteError) {
        self.finish(Item::Error(e));
    }

    fn deliver(&self, item: Item) {
        let mut inbox = self.inbox.lock().unwrap();
        if inbox.finished {
            return;
        }
        inbox.finished = !matches!(item, Item::Data(_));
        if let Some(tx) = &inbox.fanout {
            let data = matches!(item, Item::Data(_));
            let _ = tx.send(item);
            if data {
                // Fanned-out messages are consumed on arrival.
                inbox.unacked += 1;
                self.maybe_credit(&mut inbox);
            }
        } else {
            inbox.queue.push_back(item);
        }
        drop(inbox);
        self.notify.notify_waiters();
    }

    fn maybe_credit(&self, inbox: &mut Inbox) {
        if inbox.unacked >= WINDOW / 2 {
            let _ = self.out.send(Msg::Credit {
                cid: self.cid,
                n: inbox.unacked,
            });
            inbox.unacked = 0;
        }
    }

    /// Send one CBOR-encoded message, waiting for credit (backpressure).
    pub async fn send(&self, data: Vec<u8>) -> Result<(), RemoteError> {
        if self.local_closed.load(Ordering::SeqCst) {
            return Err(self.err(
                ErrorKind::Closed,
                "send on a stream this side already closed",
            ));
        }
        if self.peer_closed.load(Ordering::SeqCst) {
            return Err(self.err(
                ErrorKind::Closed,
                format!("send on a stream closed by '{}'", self.peer),
            ));
        }
        match self.credits.acquire().await {
            Ok(permit) => permit.forget(),
            Err(_) => {
                return Err(self.err(
                    ErrorKind::Closed,
                    format!("send on a stream closed by '{}'", self.peer),
                ))
            }
        }
        self.out
            .send(Msg::Stream {
                cid: self.cid,
                data,
            })
            .map_err(|_| {
                self.err(
                    ErrorKind::Closed,
                    format!("the connection to '{}' is gone", self.peer),
                )
            })
    }

    /// Close our end: the peer's receive loop ends. Idempotent.
    pub fn close(&self) {
        if !self.local_closed.swap(true, Ordering::SeqCst) {
            let _ = self.out.send(Msg::StreamEnd { cid: self.cid });
        }
    }

    /// True once a message (or the end) is waiting for the primary consumer.
    fn primary_ready(&self) -> bool {
        let inbox = self.inbox.lock().unwrap();
        !inbox.queue.is_empty() || inbox.primary_rx.is_some()
    }
}

/// A consumer of a stream: the primary one, or a broadcast subscriber.
pub struct Receiver {
    core: Arc<StreamCore>,
    sub: Option<broadcast::Receiver<Item>>,
}

impl Receiver {
    /// The stream this consumer reads.
    pub fn core(&self) -> &Arc<StreamCore> {
        &self.core
    }

    /// The next message; `Ok(None)` once the peer has closed the stream.
    pub async fn recv(&mut self) -> Result<Option<Vec<u8>>, RemoteError> {
        loop {
            if let Some(rx) = &mut self.sub {
                return match rx.recv().await {
                    Ok(Item::Data(d)) => Ok(Some(d)),
                    Ok(Item::End) | Err(broadcast::error::RecvError::Closed) => Ok(None),
                    Ok(Item::Error(e)) => Err(e),
                    Err(broadcast::error::RecvError::Lagged(n)) => Err(self.core.err(
                        ErrorKind::Lagged,
                        format!("lagged by {n} messages: they were dropped for this consumer only"),
                    )),
                };
            }
            let notified = self.core.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut inbox = self.core.inbox.lock().unwrap();
                match inbox.queue.front().cloned() {
                    Some(Item::Data(d)) => {
                        inbox.queue.pop_front();
                        inbox.unacked += 1;
                        self.core.maybe_credit(&mut inbox);
                        return Ok(Some(d));
                    }
                    // Terminal items stay, so every later receive sees them.
                    Some(Item::End) => return Ok(None),
                    Some(Item::Error(e)) => return Err(e),
                    None => {
                        if let Some(rx) = inbox.primary_rx.take() {
                            self.sub = Some(rx);
                            continue;
                        }
                    }
                }
            }
            notified.await;
        }
    }

    /// Wait until [`Receiver::recv`] would not block.
    pub async fn ready(&mut self) {
        loop {
            if let Some(rx) = &self.sub {
                if !rx.is_empty() {
                    return;
                }
                // No message yet: wait for the next delivery.
                let notified = self.core.notify.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if !rx.is_empty() || self.core.inbox.lock().unwrap().finished {
                    return;
                }
                notified.await;
                continue;
            }
            let notified = self.core.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.core.primary_ready() {
                return;
            }
            notified.await;
        }
    }

    /// Another local consumer that sees every message from now on, with
    /// room for `capacity` unread messages before it lags.
    pub fn subscribe(&self, capacity: u32) -> Receiver {
        let mut inbox = self.core.inbox.lock().unwrap();
        let rx = match &inbox.fanout {
            Some(tx) => tx.subscribe(),
            None => {
                let (tx, primary) = broadcast::channel(capacity.clamp(1, 1 << 20) as usize);
                let rx = tx.subscribe();
                // The primary consumer first drains what it already had,
                // then joins the fan-out where it started.
                inbox.primary_rx = Some(primary);
                if inbox.finished
                    && inbox
                        .queue
                        .back()
                        .is_some_and(|i| !matches!(i, Item::Data(_)))
                {
                    let _ = tx.send(inbox.queue.back().cloned().expect("checked"));
                }
                inbox.fanout = Some(tx);
                rx
            }
        };
        Receiver {
            core: self.core.clone(),
            sub: Some(rx),
        }
    }
}

/// The caller's side of a context.
#[derive(Debug)]
pub struct CallerContext {
    /// The stream (either side may open it).
    pub stream: Arc<StreamCore>,
    started: watch::Sender<Option<Result<Vec<u8>, RemoteError>>>,
    done: watch::Sender<Option<ContextOutcome>>,
}

impl CallerContext {
    /// State for a context whose frames go to `out`.
    pub fn new(stream: Arc<StreamCore>) -> Arc<CallerContext> {
        Arc::new(CallerContext {
            stream,
            started: watch::channel(None).0,
            done: watch::channel(None).0,
        })
    }

    /// Route a frame from the callee.
    pub fn on_frame(&self, msg: Msg) {
        match msg {
            Msg::Started { value, .. } => {
                self.started.send_replace(Some(Ok(value)));
            }
            Msg::ContextDone { outcome, .. } => self.finish(outcome),
            other => self.stream.on_frame(other),
        }
    }

    /// The context ended (or its actor went away) with `outcome`.
    pub fn finish(&self, outcome: ContextOutcome) {
        self.started.send_if_modified(|s| {
            if s.is_some() {
                return false;
            }
            *s = Some(Err(match &outcome {
                ContextOutcome::Failed(e) => e.clone(),
                ContextOutcome::Cancelled { by } => {
                    RemoteError::cancelled(format!("context cancelled by '{by}' before it started"))
                }
                ContextOutcome::Returned(_) => RemoteError::new(
                    ErrorKind::Guest,
                    "the context function returned without calling `started`",
                ),
            }));
            true
        });
        self.stream.finish_with(&outcome);
        self.done.send_if_modified(|d| {
            if d.is_some() {
                return false;
            }
            *d = Some(outcome);
            true
        });
    }

    /// Wait for the callee's `started` value.
    pub async fn started(&self) -> Result<Vec<u8>, RemoteError> {
        let mut rx = self.started.subscribe();
        let v = rx
            .wait_for(|s| s.is_some())
            .await
            .map(|s| s.clone().expect("is_some"));
        v.unwrap_or_else(|_| {
            Err(RemoteError::new(
                ErrorKind::Internal,
                "context state dropped",
            ))
        })
    }

    /// Wait for the callee's function to end.
    pub async fn outcome(&self) -> ContextOutcome {
        let mut rx = self.done.subscribe();
        let v = rx
            .wait_for(|d| d.is_some())
            .await
            .map(|d| d.clone().expect("is_some"));
        v.unwrap_or_else(|_| {
            ContextOutcome::Failed(RemoteError::new(
                ErrorKind::Internal,
                "context state dropped",
            ))
        })
    }

    /// True once the callee's function has ended.
    pub fn is_done(&self) -> bool {
        self.done.borrow().is_some()
    }
}

/// The callee's side of a context.
#[derive(Debug)]
pub struct CalleeContext {
    /// Context id.
    pub cid: u64,
    /// The stream.
    pub stream: Arc<StreamCore>,
    /// Cancelled when the caller cancels the context, the callee cancels
    /// itself, or the caller failed.
    pub cancel: CancellationToken,
    why: Mutex<Option<(String, Option<RemoteError>)>>,
    started: AtomicBool,
    out: mpsc::UnboundedSender<Msg>,
}

impl CalleeContext {
    /// State for context `cid` whose frames go to `out`.
    pub fn new(
        cid: u64,
        stream: Arc<StreamCore>,
        out: mpsc::UnboundedSender<Msg>,
    ) -> Arc<CalleeContext> {
        Arc::new(CalleeContext {
            cid,
            stream,
            cancel: CancellationToken::new(),
            why: Mutex::new(None),
            started: AtomicBool::new(false),
            out,
        })
    }

    /// Route a frame from the caller.
    pub fn on_frame(&self, msg: Msg) {
        match msg {
            Msg::CancelContext { by, error, .. } => self.cancel_by(&by, error),
            other => self.stream.on_frame(other),
        }
    }

    /// Cancel the function (recording who did it, and why if it failed).
    pub fn cancel_by(&self, by: &str, error: Option<RemoteError>) {
        self.why
            .lock()
            .unwrap()
            .get_or_insert_with(|| (by.to_string(), error.clone()));
        if let Some(e) = error {
            self.stream.fail(e);
        }
        self.cancel.cancel();
    }

    /// Who cancelled the context, if anyone.
    pub fn cancelled_by(&self) -> Option<String> {
        self.why.lock().unwrap().as_ref().map(|(by, _)| by.clone())
    }

    /// The error a checkpoint raises once the context is cancelled: the
    /// caller's failure if it failed, else a cancellation naming the canceller.
    pub fn cancel_error(&self) -> Option<RemoteError> {
        let why = self.why.lock().unwrap();
        let (by, error) = why.as_ref()?;
        Some(error.clone().unwrap_or_else(|| {
            RemoteError::cancelled(format!("context cancelled by '{by}'"))
                .with_actor(&self.stream.me.0, &self.stream.me.1)
        }))
    }

    /// Report the first value to the caller; a second call is an error.
    pub fn started(&self, value: Vec<u8>) -> Result<(), RemoteError> {
        if self.started.swap(true, Ordering::SeqCst) {
            return Err(self.stream.err(
                ErrorKind::Guest,
                "`started` was called twice on one context",
            ));
        }
        let _ = self.out.send(Msg::Started {
            cid: self.cid,
            value,
        });
        Ok(())
    }

    /// Open the stream; only after `started`.
    pub fn open_stream(&self) -> Result<Receiver, RemoteError> {
        if !self.started.load(Ordering::SeqCst) {
            return Err(self.stream.err(
                ErrorKind::Guest,
                "`open-stream` was called before `started`",
            ));
        }
        self.stream.open()
    }

    /// Tell the caller how the function ended.
    pub fn done(&self, outcome: ContextOutcome) {
        let _ = self.out.send(Msg::ContextDone {
            cid: self.cid,
            outcome,
        });
    }
}
