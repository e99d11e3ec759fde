//! The wire protocol between a parent actor and each of its children.
//!
//! One link (a pipe each way) per parent/child edge carries [`frame`]s; each frame holds
//! one [`Msg`]. Values inside messages are CBOR ([`ciborium::Value`]); the
//! callee converts them to its export's WIT types with [`crate::value`].
//! `docs/protocol.md` specifies the exchange message by message.

pub mod frame;
mod message;
mod status;
mod tree;

pub use frame::{pump, pump_diverting, read_frame, read_msg, write_msg, FrameError, MAX_FRAME};
pub use message::{CallRequest, ComponentEntry, ContextOutcome, Msg, StartActor};
pub use status::{ActorStatus, ControlReq, RunState, TreeStatus};
pub use tree::{Entry, PeerMsg, TreeReq, TreeResp};

/// Render a CBOR value in a compact JSON-like notation for humans.
pub fn diagnostic(v: &ciborium::Value) -> String {
    use ciborium::Value as C;
    match v {
        C::Null => "null".into(),
        C::Bool(b) => b.to_string(),
        C::Integer(i) => i128::from(*i).to_string(),
        C::Float(f) => f.to_string(),
        C::Text(s) => format!("{s:?}"),
        C::Bytes(b) => format!("h'{}'", b.iter().map(|x| format!("{x:02x}")).collect::<String>()),
        C::Array(a) => format!("[{}]", a.iter().map(diagnostic).collect::<Vec<_>>().join(", ")),
        C::Map(m) => format!(
            "{{{}}}",
            m.iter().map(|(k, v)| format!("{}: {}", diagnostic(k), diagnostic(v))).collect::<Vec<_>>().join(", ")
        ),
        C::Tag(t, inner) => format!("{t}({})", diagnostic(inner)),
        _ => format!("{v:?}"),
    }
}
