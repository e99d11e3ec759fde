//! Length-prefixed CBOR frames, for any message type: a 4-byte big-endian
//! length, then that many bytes holding one CBOR data item. The
//! parent/child protocol (`wire`) and the forkserver's both use them.
//!
//! The length is checked against [`MAX_FRAME`] *before* anything is
//! allocated, so a hostile or corrupt peer cannot make us reserve the size it
//! claims.

use tokio::io::{AsyncRead, AsyncReadExt};

/// Largest frame body accepted or sent (16 MiB).
pub const MAX_FRAME: usize = 16 * 1024 * 1024;

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer closed the pipe cleanly between two frames.
    #[error("peer closed the connection")]
    Closed,
    /// The pipe ended in the middle of a frame.
    #[error("connection ended inside a frame ({got} of {want} bytes)")]
    Truncated {
        /// Bytes received before EOF.
        got: usize,
        /// Bytes the frame header promised (or 4 for the header itself).
        want: usize,
    },
    /// The length prefix exceeds [`MAX_FRAME`].
    #[error("frame of {0} bytes exceeds the {MAX_FRAME}-byte limit")]
    TooLarge(usize),
    /// The body is not valid CBOR for the message type.
    #[error("invalid frame body: {0}")]
    Decode(String),
    /// The message could not be encoded.
    #[error("cannot encode message: {0}")]
    Encode(String),
    /// An I/O error on the pipe.
    #[error("pipe error: {0}")]
    Io(#[from] std::io::Error),
}

/// Append any serializable message as one frame to `buf`; on error `buf`
/// is left as it was.
pub fn encode_frame<T: serde::Serialize>(msg: &T, buf: &mut Vec<u8>) -> Result<(), FrameError> {
    let at = buf.len();
    buf.extend_from_slice(&[0; 4]);
    if let Err(e) = ciborium::into_writer(msg, &mut *buf) {
        buf.truncate(at);
        return Err(FrameError::Encode(e.to_string()));
    }
    let len = buf.len() - at - 4;
    if len > MAX_FRAME {
        buf.truncate(at);
        return Err(FrameError::TooLarge(len));
    }
    buf[at..at + 4].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(())
}

/// Decode one frame body as any message type.
pub fn decode_as<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    ciborium::from_reader(body).map_err(|e| FrameError::Decode(e.to_string()))
}

/// Read exactly `buf.len()` bytes, distinguishing EOF-at-start from
/// EOF-in-the-middle.
async fn read_full<R: AsyncRead + Unpin>(r: &mut R, buf: &mut [u8]) -> Result<usize, FrameError> {
    let mut got = 0;
    while got < buf.len() {
        let n = match r.read(&mut buf[got..]).await {
            Ok(n) => n,
            // A peer that died with our data unread resets the connection:
            // that is an end of stream, not a protocol violation.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => 0,
            Err(e) => return Err(e.into()),
        };
        if n == 0 {
            break;
        }
        got += n;
    }
    Ok(got)
}

/// Read one frame of any message type; `Err(FrameError::Closed)` on a clean EOF.
pub async fn read_frame<T: serde::de::DeserializeOwned, R: AsyncRead + Unpin>(r: &mut R) -> Result<T, FrameError> {
    let mut head = [0u8; 4];
    match read_full(r, &mut head).await? {
        0 => return Err(FrameError::Closed),
        4 => {}
        got => return Err(FrameError::Truncated { got, want: 4 }),
    }
    let len = u32::from_be_bytes(head) as usize;
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge(len));
    }
    let mut body = vec![0u8; len];
    let got = read_full(r, &mut body).await?;
    if got < len {
        return Err(FrameError::Truncated { got, want: len });
    }
    decode_as(&body)
}
