//! Frames of [`Msg`](super::Msg)es on a link (the framing itself is
//! `crate::framing`), and how a link is read and written fast: batched
//! writes, a reader that spins briefly before it parks.

use super::Msg;
pub use crate::framing::{decode_as, encode_frame, read_frame, FrameError, MAX_FRAME};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

/// Encode `msg` as one frame (length prefix included).
pub fn encode(msg: &Msg) -> Result<Vec<u8>, FrameError> {
    let mut buf = Vec::new();
    encode_into(msg, &mut buf)?;
    Ok(buf)
}

/// Append `msg` as one frame to `buf`; on error `buf` is left as it was.
pub fn encode_into(msg: &Msg, buf: &mut Vec<u8>) -> Result<(), FrameError> {
    encode_frame(msg, buf)
}

/// How long a link's reader keeps polling after a frame arrived before it
/// lets its thread sleep.
pub const SPIN: std::time::Duration = std::time::Duration::from_micros(50);

/// Scheduler ticks between I/O polls for runtimes that serve links: a
/// spinning [`Spinning`] reader only sees new data when the runtime polls
/// for I/O, so poll often (tokio's default is 61).
pub const EVENT_INTERVAL: u32 = 4;

/// A reader that, for [`SPIN`] after data last arrived, stays runnable
/// instead of parking when the pipe is empty.
///
/// Why: on a VM, waking a sleeping thread on another core costs ~15-20 µs
/// (an inter-processor interrupt and a VM exit), more than a whole
/// host -> wasm -> host call. Request/response traffic answers within a few
/// microseconds, so keeping the reader's thread awake that long saves the
/// wakeup on both sides of a round trip; an idle link spins at most once,
/// for 50 µs, after its last frame. While spinning, the task yields to the
/// runtime's other tasks and lets it poll for I/O, so nothing waits on it.
pub struct Spinning<R> {
    inner: R,
    last: std::time::Instant,
}

impl<R> Spinning<R> {
    /// Wrap `inner`.
    pub fn new(inner: R) -> Spinning<R> {
        Spinning { inner, last: std::time::Instant::now() }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Spinning<R> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        match std::pin::Pin::new(&mut self.inner).poll_read(cx, buf) {
            std::task::Poll::Pending => {
                if self.last.elapsed() < SPIN {
                    cx.waker().wake_by_ref();
                }
                std::task::Poll::Pending
            }
            ready => {
                if buf.filled().len() > before {
                    self.last = std::time::Instant::now();
                }
                ready
            }
        }
    }
}

/// Bytes of frames gathered into one write when messages queue up.
const BATCH: usize = 64 * 1024;

/// Write every message from `rx` to `w` until either side closes. Messages
/// that queued up while a write was in flight go out together in one
/// write, which is what makes small stream messages cheap.
pub async fn pump<W: AsyncWrite + Unpin>(w: W, rx: tokio::sync::mpsc::UnboundedReceiver<Msg>) {
    pump_diverting(w, rx, Some).await
}

/// [`pump`], handing each message to `divert` first: what it returns is
/// written, what it keeps (`None`) is not (an actor's frames for its peer
/// links leave here, with no extra hop for its parent's).
pub async fn pump_diverting<W: AsyncWrite + Unpin>(
    mut w: W,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Msg>,
    mut divert: impl FnMut(Msg) -> Option<Msg>,
) {
    let mut buf = Vec::with_capacity(BATCH);
    while let Some(msg) = rx.recv().await {
        buf.clear();
        let mut next = Some(msg);
        while let Some(msg) = next.take() {
            if let Some(msg) = divert(msg) {
                if let Err(e) = encode_into(&msg, &mut buf) {
                    tracing::error!("dropping a message that cannot be sent: {e}");
                }
            }
            if buf.len() < BATCH {
                next = rx.try_recv().ok();
            }
        }
        if buf.is_empty() {
            continue;
        }
        if w.write_all(&buf).await.is_err() || w.flush().await.is_err() {
            break;
        }
    }
}

/// Decode one frame body (without its length prefix).
pub fn decode(body: &[u8]) -> Result<Msg, FrameError> {
    decode_as(body)
}

/// Read one message; `Err(FrameError::Closed)` on a clean EOF.
pub async fn read_msg<R: AsyncRead + Unpin>(r: &mut R) -> Result<Msg, FrameError> {
    read_frame(r).await
}

/// Write one message and flush it.
pub async fn write_msg<W: AsyncWrite + Unpin>(w: &mut W, msg: &Msg) -> Result<(), FrameError> {
    let buf = encode(msg)?;
    w.write_all(&buf).await?;
    w.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{CallRequest, Msg};

    fn sample() -> Msg {
        Msg::Call(CallRequest { id: 7, func: "add".into(), args: ciborium::Value::Array(vec![1.into(), 2.into()]) })
    }

    #[tokio::test]
    async fn round_trip_through_a_pipe() {
        let (mut a, mut b) = tokio::io::duplex(64);
        let msg = sample();
        let send = msg.clone();
        let w = tokio::spawn(async move {
            write_msg(&mut a, &send).await.unwrap();
            write_msg(&mut a, &Msg::Ready { pid: 1 }).await.unwrap();
        });
        assert_eq!(read_msg(&mut b).await.unwrap(), msg);
        assert_eq!(read_msg(&mut b).await.unwrap(), Msg::Ready { pid: 1 });
        w.await.unwrap();
        assert!(matches!(read_msg(&mut b).await, Err(FrameError::Closed)));
    }

    #[tokio::test]
    async fn unknown_fields_are_rejected_in_every_message() {
        let map = |pairs: Vec<(&str, ciborium::Value)>| {
            ciborium::Value::Map(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
        };
        let cancel = map(vec![("Cancel", map(vec![("by", "p".into()), ("extra", 1.into())]))]);
        let mut body = Vec::new();
        ciborium::into_writer(&cancel, &mut body).unwrap();
        let mut frame = (body.len() as u32).to_be_bytes().to_vec();
        frame.extend(body);
        let err = read_msg(&mut &frame[..]).await.unwrap_err().to_string();
        assert!(err.contains("extra"), "{err}");
    }

    #[tokio::test]
    async fn oversized_prefix_is_rejected_without_allocating() {
        let bytes = (u32::MAX).to_be_bytes().to_vec();
        let err = read_msg(&mut &bytes[..]).await.unwrap_err();
        assert!(matches!(err, FrameError::TooLarge(n) if n == u32::MAX as usize), "{err}");
    }

    #[tokio::test]
    async fn truncated_header_and_body_are_reported() {
        let err = read_msg(&mut &[0u8, 0][..]).await.unwrap_err();
        assert!(matches!(err, FrameError::Truncated { got: 2, want: 4 }), "{err}");
        let mut frame = encode(&sample()).unwrap();
        frame.truncate(frame.len() - 1);
        let err = read_msg(&mut &frame[..]).await.unwrap_err();
        assert!(matches!(err, FrameError::Truncated { .. }), "{err}");
    }

    #[tokio::test]
    async fn invalid_cbor_and_unknown_messages_are_decode_errors() {
        let mut frame = 3u32.to_be_bytes().to_vec();
        frame.extend([0xff, 0xff, 0xff]);
        let err = read_msg(&mut &frame[..]).await.unwrap_err();
        assert!(matches!(err, FrameError::Decode(_)), "{err}");

        let mut body = Vec::new();
        ciborium::into_writer(&ciborium::Value::Text("no-such-message".into()), &mut body).unwrap();
        let mut frame = (body.len() as u32).to_be_bytes().to_vec();
        frame.extend(body);
        let err = read_msg(&mut &frame[..]).await.unwrap_err();
        assert!(matches!(err, FrameError::Decode(_)), "{err}");
    }

    #[test]
    fn every_message_round_trips() {
        use crate::error::{ErrorKind, RemoteError};
        let err = RemoteError::new(ErrorKind::Trap, "boom").with_actor("a", "u1");
        for msg in [
            sample(),
            Msg::Cancel { by: "root".into() },
            Msg::Ready { pid: 42 },
            Msg::Return { id: 1, value: ciborium::Value::Null },
            Msg::CallFailed { id: 2, error: err.clone() },
            Msg::Failed { error: err },
        ] {
            let bytes = encode(&msg).unwrap();
            assert_eq!(decode(&bytes[4..]).unwrap(), msg);
        }
    }
}
