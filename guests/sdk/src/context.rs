//! Contexts and their streams, from both sides.

use crate::{decode, encode_value, rt, wit, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// How a context's function ended, seen from the caller (WIT
/// `context-outcome`).
#[derive(Debug, Clone, PartialEq)]
pub enum ContextOutcome<R> {
    /// It returned this value.
    Returned(R),
    /// It was cancelled by the named actor.
    Cancelled {
        /// The actor that cancelled it.
        by: String,
    },
}

/// The name [`ContextOutcome`] had before; kept so older guest code builds.
#[doc(hidden)]
pub type Outcome<R> = ContextOutcome<R>;

/// The caller's side of a context.
pub struct Context {
    pub(crate) inner: wit::runtime::Context,
}

impl Context {
    /// Open the context's stream (once).
    pub fn open_stream(&self) -> Result<Stream> {
        Ok(Stream { inner: self.inner.open_stream()? })
    }

    /// Wait for the callee's function to end (checkpoint): its return value,
    /// or a cancellation naming the canceller. Its failure is an `Err`.
    pub fn result<R: DeserializeOwned>(&self) -> Result<ContextOutcome<R>> {
        match self.inner.result()? {
            wit::runtime::ContextOutcome::Returned(v) => {
                Ok(ContextOutcome::Returned(decode(&v, "the context's result")?))
            }
            wit::runtime::ContextOutcome::Cancelled(by) => Ok(ContextOutcome::Cancelled { by }),
        }
    }

    /// Cancel the callee's function; see [`Context::result`] for how it ended.
    pub fn cancel(&self) {
        self.inner.cancel(None)
    }

    /// A pollable, ready once [`Context::result`] would not block.
    pub fn ready(&self) -> wit::poll::Pollable {
        self.inner.subscribe_result()
    }
}

/// The callee's view of its context (the export's first parameter).
pub struct Callee<'a> {
    inner: &'a wit::runtime::Context,
}

/// Wrap the context a context function receives.
pub fn callee(ctx: &wit::runtime::Context) -> Callee<'_> {
    Callee { inner: ctx }
}

impl Callee<'_> {
    /// Send the caller its first value (once).
    pub fn started<T: Serialize + ?Sized>(&self, value: &T) -> Result<()> {
        self.inner.started(&encode_value(value)?)
    }

    /// Open the context's stream (after `started`).
    pub fn open_stream(&self) -> Result<Stream> {
        Ok(Stream { inner: self.inner.open_stream()? })
    }

    /// Cancel this function yourself: the caller sees it cancelled by you.
    pub fn cancel(&self) {
        self.inner.cancel(None)
    }
}

/// One side of a context's stream (or a broadcast consumer of it).
pub struct Stream {
    inner: wit::runtime::Stream,
}

impl Stream {
    /// Send a value (checkpoint): blocks while the receiver's buffer is full.
    pub fn send<T: Serialize + ?Sized>(&self, value: &T) -> Result<()> {
        self.inner.send(&encode_value(value)?)
    }

    /// The next value, or `None` once the other side closed the stream.
    pub fn receive<T: DeserializeOwned>(&self) -> Result<Option<T>> {
        match self.inner.receive()? {
            Some(bytes) => Ok(Some(decode(&bytes, "a stream message")?)),
            None => Ok(None),
        }
    }

    /// The next value, waiting without blocking other tasks of
    /// [`rt::block_on`].
    pub async fn next<T: DeserializeOwned>(&self) -> Result<Option<T>> {
        rt::ready(self.inner.subscribe_ready()).await;
        self.receive()
    }

    /// Close this side: the other side's receive loop ends.
    pub fn close(&self) {
        self.inner.close()
    }

    /// Another local consumer seeing every message from now on, with room
    /// for `capacity` unread messages before it gets a `Lagged` error.
    pub fn subscribe(&self, capacity: u32) -> Stream {
        Stream { inner: self.inner.subscribe(capacity) }
    }

    /// A pollable, ready once [`Stream::receive`] would not block.
    pub fn ready(&self) -> wit::poll::Pollable {
        self.inner.subscribe_ready()
    }
}
