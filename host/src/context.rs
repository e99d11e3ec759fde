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
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, watch, Notify, Semaphore};
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
    /// Messages received that we have not yet given credit back for: the
    /// sender may have at most [`WINDOW`] of them outstanding.
    uncredited: u32,
    /// Consumed by the primary receiver since the last credit we sent.
    unacked: u32,
    /// Set once the stream has subscribers: new messages go here.
    fanout: Option<Fanout>,
    /// The primary consumer's place in the fan-out, taken when it gets there.
    primary_sub: Option<Sub>,
    /// A terminal item (end or error) has arrived.
    finished: bool,
}

/// The messages of a stream with subscribers: a ring every consumer reads
/// at its own pace, as long as the largest consumer buffer.
struct Fanout {
    ring: VecDeque<Item>,
    /// Sequence number of `ring[0]`.
    base: u64,
    /// Longest buffer any consumer asked for.
    max_capacity: u64,
}

impl Fanout {
    /// Sequence number the next message will get.
    fn end(&self) -> u64 {
        self.base + self.ring.len() as u64
    }

    /// Sequence number after the last *message* (the end is not one).
    fn data_end(&self) -> u64 {
        match self.ring.back() {
            Some(Item::End | Item::Error(_)) => self.end() - 1,
            _ => self.end(),
        }
    }

    fn push(&mut self, item: Item) {
        self.ring.push_back(item);
        // One extra slot: the terminal item is not a message.
        while self.ring.len() as u64 > self.max_capacity + 1 {
            self.ring.pop_front();
            self.base += 1;
        }
    }
}

/// A consumer's place in a [`Fanout`].
#[derive(Debug, Clone, Copy)]
struct Sub {
    next: u64,
    capacity: u64,
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
    /// Messages sent, and credit the peer gave back for them.
    sent: AtomicU64,
    granted: AtomicU64,
}

impl std::fmt::Debug for StreamCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamCore").field("cid", &self.cid).field("peer", &self.peer).finish()
    }
}

impl StreamCore {
    /// A stream for context `cid` whose outgoing frames go to `out`.
    pub fn new(cid: u64, out: mpsc::UnboundedSender<Msg>, peer: &str, me: (&str, &str)) -> Arc<StreamCore> {
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
            sent: AtomicU64::new(0),
            granted: AtomicU64::new(0),
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
        Ok(Receiver { core: self.clone(), sub: None })
    }

    /// A frame for this stream arrived from the peer. `Err` is a protocol
    /// error: the peer sent beyond the credit it had.
    pub fn on_frame(&self, msg: Msg) -> Result<(), String> {
        match msg {
            Msg::Stream { data, .. } => self.deliver(Item::Data(data)),
            Msg::Credit { n, .. } => {
                // Credit is for messages consumed: never more than were sent
                // (which also keeps a hostile peer from overflowing it).
                let granted = self.granted.fetch_add(u64::from(n), Ordering::SeqCst) + u64::from(n);
                let sent = self.sent.load(Ordering::SeqCst);
                if granted > sent {
                    return Err(format!(
                        "'{}' gave credit for {granted} stream messages on context {} when {sent} were sent",
                        self.peer, self.cid
                    ));
                }
                self.credits.add_permits(n as usize);
                Ok(())
            }
            // A half-close: the peer sends no more, but may still receive.
            Msg::StreamEnd { .. } => self.deliver(Item::End),
            _ => Ok(()),
        }
    }

    /// The context is over (ended, failed, or its peer is gone): end the
    /// stream both ways with `item` (end or error).
    fn finish(&self, item: Item) {
        self.peer_closed.store(true, Ordering::SeqCst);
        // Wake a sender blocked on credit: nobody will grant any more.
        self.credits.close();
        // Never a data item, so never beyond credit.
        let _ = self.deliver(item);
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

    /// Take in `item`; `Err` if it is a message beyond the sender's credit.
    fn deliver(&self, item: Item) -> Result<(), String> {
        let mut inbox = self.inbox.lock().unwrap();
        if matches!(item, Item::Data(_)) {
            inbox.uncredited += 1;
            if inbox.uncredited > WINDOW {
                return Err(format!(
                    "'{}' sent more than the {WINDOW} stream messages its credit allows on context {}",
                    self.peer, self.cid
                ));
            }
        }
        if inbox.finished {
            return Ok(());
        }
        inbox.finished = !matches!(item, Item::Data(_));
        let data = matches!(item, Item::Data(_));
        if let Some(f) = &mut inbox.fanout {
            f.push(item);
            if data {
                // Fanned-out messages are consumed on arrival: a slow
                // consumer lags instead of stalling the sender.
                inbox.unacked += 1;
                self.maybe_credit(&mut inbox);
            }
        } else {
            inbox.queue.push_back(item);
        }
        drop(inbox);
        self.notify.notify_waiters();
        Ok(())
    }

    fn maybe_credit(&self, inbox: &mut Inbox) {
        if inbox.unacked >= WINDOW / 2 {
            let _ = self.out.send(Msg::Credit { cid: self.cid, n: inbox.unacked });
            inbox.uncredited = inbox.uncredited.saturating_sub(inbox.unacked);
            inbox.unacked = 0;
        }
    }

    /// Send one CBOR-encoded message, waiting for credit (backpressure).
    pub async fn send(&self, data: Vec<u8>) -> Result<(), RemoteError> {
        if self.local_closed.load(Ordering::SeqCst) {
            return Err(self.err(ErrorKind::Closed, "send on a stream this side already closed"));
        }
        if self.peer_closed.load(Ordering::SeqCst) {
            return Err(
                self.err(ErrorKind::Closed, format!("send on a stream whose context with '{}' has ended", self.peer))
            );
        }
        match self.credits.acquire().await {
            Ok(permit) => {
                permit.forget();
                self.sent.fetch_add(1, Ordering::SeqCst);
            }
            Err(_) => {
                return Err(self
                    .err(ErrorKind::Closed, format!("send on a stream whose context with '{}' has ended", self.peer)))
            }
        }
        self.out
            .send(Msg::Stream { cid: self.cid, data })
            .map_err(|_| self.err(ErrorKind::Closed, format!("the connection to '{}' is gone", self.peer)))
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
        !inbox.queue.is_empty() || inbox.primary_sub.is_some()
    }

    /// True once `sub` would not block: a message, the end, or a lag.
    fn sub_ready(&self, sub: &Sub) -> bool {
        let inbox = self.inbox.lock().unwrap();
        inbox.fanout.as_ref().is_some_and(|f| sub.next < f.end() || sub.next < f.base)
    }
}

/// A consumer of a stream: the primary one, or a broadcast subscriber.
pub struct Receiver {
    core: Arc<StreamCore>,
    sub: Option<Sub>,
}

impl Receiver {
    /// The stream this consumer reads.
    pub fn core(&self) -> &Arc<StreamCore> {
        &self.core
    }

    /// The next message; `Ok(None)` once the peer has closed the stream.
    pub async fn recv(&mut self) -> Result<Option<Vec<u8>>, RemoteError> {
        loop {
            let notified = self.core.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut inbox = self.core.inbox.lock().unwrap();
                if let Some(sub) = &mut self.sub {
                    let f = inbox.fanout.as_ref().expect("subscribers exist only with a fan-out");
                    let oldest = f.data_end().saturating_sub(sub.capacity).max(f.base);
                    if sub.next < oldest {
                        let missed = oldest - sub.next;
                        sub.next = oldest;
                        return Err(self.core.err(
                            ErrorKind::Lagged,
                            format!("lagged by {missed} messages: they were dropped for this consumer only"),
                        ));
                    }
                    if sub.next < f.end() {
                        match &f.ring[(sub.next - f.base) as usize] {
                            Item::Data(d) => {
                                sub.next += 1;
                                return Ok(Some(d.clone()));
                            }
                            // Terminal items stay, so every later receive sees them.
                            Item::End => return Ok(None),
                            Item::Error(e) => return Err(e.clone()),
                        }
                    }
                } else {
                    match inbox.queue.front().cloned() {
                        Some(Item::Data(d)) => {
                            inbox.queue.pop_front();
                            inbox.unacked += 1;
                            self.core.maybe_credit(&mut inbox);
                            return Ok(Some(d));
                        }
                        Some(Item::End) => return Ok(None),
                        Some(Item::Error(e)) => return Err(e),
                        None => {
                            if let Some(sub) = inbox.primary_sub.take() {
                                self.sub = Some(sub);
                                continue;
                            }
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
            let notified = self.core.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let ready = match &self.sub {
                Some(sub) => self.core.sub_ready(sub),
                None => self.core.primary_ready(),
            };
            if ready {
                return;
            }
            notified.await;
        }
    }

    /// Another local consumer that sees every message from now on, with
    /// room for `capacity` unread messages before it lags.
    pub fn subscribe(&self, capacity: u32) -> Receiver {
        let capacity = u64::from(capacity.max(1));
        let mut inbox = self.core.inbox.lock().unwrap();
        if inbox.fanout.is_none() {
            // The primary consumer first drains what it already had, then
            // joins the fan-out where it starts.
            let mut f = Fanout { ring: VecDeque::new(), base: 0, max_capacity: u64::from(WINDOW) };
            if inbox.finished {
                if let Some(last) = inbox.queue.back().filter(|i| !matches!(i, Item::Data(_))) {
                    f.push(last.clone());
                }
            }
            inbox.primary_sub = Some(Sub { next: f.end(), capacity: u64::from(WINDOW) });
            inbox.fanout = Some(f);
        }
        let finished = inbox.finished;
        let f = inbox.fanout.as_mut().expect("set above");
        f.max_capacity = f.max_capacity.max(capacity);
        // A late subscriber to a finished stream still sees the end.
        let next = if finished { f.end().saturating_sub(1).max(f.base) } else { f.end() };
        Receiver { core: self.core.clone(), sub: Some(Sub { next, capacity }) }
    }
}

/// The caller's side of a context.
#[derive(Debug)]
pub struct CallerContext {
    /// The stream (either side may open it).
    pub stream: Arc<StreamCore>,
    /// Cancelled when the callee fails: the caller's checkpoints then raise
    /// that failure, as an error in an `open_context` block would.
    pub failed: CancellationToken,
    started: watch::Sender<Option<Result<Vec<u8>, RemoteError>>>,
    done: watch::Sender<Option<ContextOutcome>>,
}

impl CallerContext {
    /// State for a context whose frames go to `out`.
    pub fn new(stream: Arc<StreamCore>) -> Arc<CallerContext> {
        Arc::new(CallerContext {
            stream,
            failed: CancellationToken::new(),
            started: watch::channel(None).0,
            done: watch::channel(None).0,
        })
    }

    /// Route a frame from the callee (`Err`: a protocol error).
    pub fn on_frame(&self, msg: Msg) -> Result<(), String> {
        match msg {
            Msg::Started { value, .. } => {
                self.started.send_replace(Some(Ok(value)));
                Ok(())
            }
            Msg::ContextDone { outcome, .. } => {
                self.finish(outcome);
                Ok(())
            }
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
                ContextOutcome::Returned(_) => {
                    RemoteError::new(ErrorKind::Guest, "the context function returned without calling `started`")
                }
            }));
            true
        });
        self.stream.finish_with(&outcome);
        let failed = matches!(outcome, ContextOutcome::Failed(_));
        self.done.send_if_modified(|d| {
            if d.is_some() {
                return false;
            }
            *d = Some(outcome);
            true
        });
        if failed {
            self.failed.cancel();
        }
    }

    /// The callee's failure, once it has failed.
    pub fn failure(&self) -> Option<RemoteError> {
        match &*self.done.borrow() {
            Some(ContextOutcome::Failed(e)) => Some(e.clone()),
            _ => None,
        }
    }

    /// Wait for the callee's `started` value.
    pub async fn started(&self) -> Result<Vec<u8>, RemoteError> {
        let mut rx = self.started.subscribe();
        let v = rx.wait_for(|s| s.is_some()).await.map(|s| s.clone().expect("is_some"));
        v.unwrap_or_else(|_| Err(RemoteError::new(ErrorKind::Internal, "context state dropped")))
    }

    /// Wait for the callee's function to end.
    pub async fn outcome(&self) -> ContextOutcome {
        let mut rx = self.done.subscribe();
        let v = rx.wait_for(|d| d.is_some()).await.map(|d| d.clone().expect("is_some"));
        v.unwrap_or_else(|_| ContextOutcome::Failed(RemoteError::new(ErrorKind::Internal, "context state dropped")))
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
    pub fn new(cid: u64, stream: Arc<StreamCore>, out: mpsc::UnboundedSender<Msg>) -> Arc<CalleeContext> {
        Arc::new(CalleeContext {
            cid,
            stream,
            cancel: CancellationToken::new(),
            why: Mutex::new(None),
            started: AtomicBool::new(false),
            out,
        })
    }

    /// Route a frame from the caller (`Err`: a protocol error).
    pub fn on_frame(&self, msg: Msg) -> Result<(), String> {
        match msg {
            Msg::CancelContext { by, error, .. } => {
                self.cancel_by(&by, error);
                Ok(())
            }
            other => self.stream.on_frame(other),
        }
    }

    /// Cancel the function (recording who did it, and why if it failed).
    pub fn cancel_by(&self, by: &str, error: Option<RemoteError>) {
        self.why.lock().unwrap().get_or_insert_with(|| (by.to_string(), error.clone()));
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
            return Err(self.stream.err(ErrorKind::Guest, "`started` was called twice on one context"));
        }
        let _ = self.out.send(Msg::Started { cid: self.cid, value });
        Ok(())
    }

    /// Open the stream; only after `started`.
    pub fn open_stream(&self) -> Result<Receiver, RemoteError> {
        if !self.started.load(Ordering::SeqCst) {
            return Err(self.stream.err(ErrorKind::Guest, "`open-stream` was called before `started`"));
        }
        self.stream.open()
    }

    /// Tell the caller how the function ended.
    pub fn done(&self, outcome: ContextOutcome) {
        let _ = self.out.send(Msg::ContextDone { cid: self.cid, outcome });
    }
}
