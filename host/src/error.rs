//! Errors that cross actor boundaries.
//!
//! A [`RemoteError`] names the actor it happened in and carries the errors
//! that caused it (children's failures), so the root can print the whole
//! tree of what went wrong.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Coarse classification of a failure; mirrors WIT `types.error-kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// The guest returned an error value.
    Guest,
    /// The guest trapped.
    Trap,
    /// The work was cancelled.
    Cancelled,
    /// Arguments did not match the export's signature.
    BadArgs,
    /// The export does not exist.
    NoSuchExport,
    /// The manifest has no such component.
    NoSuchComponent,
    /// The actor process could not be started.
    SpawnFailed,
    /// The actor process ended without reporting an outcome.
    ActorDied,
    /// The actor was used after it was cancelled or had exited.
    ActorGone,
    /// A peer broke the wire protocol.
    Protocol,
    /// Several failures; see `causes`.
    Group,
    /// A stream was used after it was closed.
    Closed,
    /// A broadcast consumer fell more than its buffer behind.
    Lagged,
    /// A resource limit (memory, CPU time, children, depth) was reached.
    Limit,
    /// A capability was asked for that the asker does not hold.
    Denied,
    /// A runtime bug or resource failure.
    Internal,
}

/// Calls `$m! { Variant "name", ... }` with every error kind: the one table
/// the kinds' names and their WIT conversions are generated from (a kind
/// missing from it, or one too many, does not compile).
macro_rules! with_error_kinds {
    ($m:ident) => {
        $m! {
            Guest "guest", Trap "trap", Cancelled "cancelled", BadArgs "bad-args",
            NoSuchExport "no-such-export", NoSuchComponent "no-such-component",
            SpawnFailed "spawn-failed", ActorDied "actor-died", ActorGone "actor-gone",
            Protocol "protocol", Group "group", Closed "closed", Lagged "lagged",
            Limit "limit", Denied "denied", Internal "internal"
        }
    };
}
pub(crate) use with_error_kinds;

macro_rules! kind_names {
    ($($v:ident $n:literal),*) => {
        impl ErrorKind {
            /// Kebab-case name, as in WIT and on the wire.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorKind::$v => $n),*
                }
            }

            /// Every kind.
            pub const ALL: &'static [ErrorKind] = &[$(ErrorKind::$v),*];
        }
    };
}
with_error_kinds!(kind_names);

/// An error raised in some actor of the tree, with its causes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[serde(deny_unknown_fields)]
pub struct RemoteError {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// Name of the actor where it happened (empty: not attributed yet).
    #[serde(default)]
    pub actor_name: String,
    /// Uid of that actor.
    #[serde(default)]
    pub actor_uid: String,
    /// Human-readable description.
    pub message: String,
    /// Wasm backtrace of the failing guest, symbolised where debug info exists.
    #[serde(default)]
    pub backtrace: Option<String>,
    /// Errors that caused this one (e.g. each failed child of a group).
    #[serde(default)]
    pub causes: Vec<RemoteError>,
}

impl RemoteError {
    /// A new error not yet attributed to an actor.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        RemoteError {
            kind,
            actor_name: String::new(),
            actor_uid: String::new(),
            message: message.into(),
            backtrace: None,
            causes: Vec::new(),
        }
    }

    /// Attribute the error to an actor.
    pub fn with_actor(mut self, name: &str, uid: &str) -> Self {
        self.actor_name = name.to_string();
        self.actor_uid = uid.to_string();
        self
    }

    /// Attach a backtrace.
    pub fn with_backtrace(mut self, bt: Option<String>) -> Self {
        self.backtrace = bt;
        self
    }

    /// Fill in the actor if nobody has yet (guest-made errors arrive blank).
    pub fn attribute_if_blank(mut self, name: &str, uid: &str) -> Self {
        if self.actor_name.is_empty() && self.actor_uid.is_empty() {
            self.actor_name = name.to_string();
            self.actor_uid = uid.to_string();
        }
        self
    }

    /// The error for a cancelled operation.
    pub fn cancelled(reason: impl Into<String>) -> Self {
        RemoteError::new(ErrorKind::Cancelled, reason)
    }

    /// True for a cancellation, which is an outcome rather than a failure.
    pub fn is_cancelled(&self) -> bool {
        self.kind == ErrorKind::Cancelled
    }

    /// Combine failures: one stays itself, several become a `group`.
    pub fn group(mut errors: Vec<RemoteError>, name: &str, uid: &str) -> Option<RemoteError> {
        match errors.len() {
            0 => None,
            1 => errors.pop(),
            n => Some(RemoteError {
                kind: ErrorKind::Group,
                actor_name: name.to_string(),
                actor_uid: uid.to_string(),
                message: format!("{n} child actors failed"),
                backtrace: None,
                causes: errors,
            }),
        }
    }

    /// This error as it leaves actor `name` (uid `uid`) that let it
    /// propagate: an error raised elsewhere (a child's, a callee's) gets a
    /// node for this actor on top, so the tree records the path it
    /// travelled (root ← branch ← leaf), not only where it began. Its kind
    /// stays the original's, so callers can still branch on it.
    pub fn relayed_by(self, name: &str, uid: &str) -> RemoteError {
        if self.actor_uid == uid || self.actor_uid.is_empty() {
            return self;
        }
        RemoteError {
            kind: self.kind,
            actor_name: name.to_string(),
            actor_uid: uid.to_string(),
            message: format!("relayed from actor '{}'", self.actor_name),
            backtrace: None,
            causes: vec![self],
        }
    }

    /// The error a chain of [`RemoteError::relayed_by`] nodes carries.
    pub fn origin(&self) -> &RemoteError {
        match self.causes.as_slice() {
            [inner] if self.message == format!("relayed from actor '{}'", inner.actor_name) => inner.origin(),
            _ => self,
        }
    }

    /// The causes below this error flattened in pre-order, each with its
    /// depth (1 = a direct cause): how WIT, which has no recursive types,
    /// carries the tree.
    pub fn causes_preorder(&self) -> Vec<(u32, &RemoteError)> {
        fn walk<'a>(e: &'a RemoteError, depth: u32, out: &mut Vec<(u32, &'a RemoteError)>) {
            for c in &e.causes {
                out.push((depth, c));
                walk(c, depth + 1, out);
            }
        }
        let mut out = Vec::new();
        walk(self, 1, &mut out);
        out
    }

    /// Rebuild a tree from `top` and its causes in pre-order with depths
    /// (see [`RemoteError::causes_preorder`]; the nodes' own causes are
    /// ignored, a depth that skips a level attaches to the deepest node).
    pub fn from_preorder(mut top: RemoteError, nodes: impl IntoIterator<Item = (u32, RemoteError)>) -> RemoteError {
        fn attach(parent: &mut RemoteError, node: RemoteError, depth: u32) {
            match parent.causes.last_mut() {
                Some(last) if depth > 1 => attach(last, node, depth - 1),
                _ => parent.causes.push(node),
            }
        }
        top.causes.clear();
        for (depth, mut node) in nodes {
            node.causes.clear();
            attach(&mut top, node, depth);
        }
        top
    }

    /// Depth-first walk over this error and all its causes.
    pub fn walk(&self) -> Vec<&RemoteError> {
        let mut out = vec![self];
        for c in &self.causes {
            out.extend(c.walk());
        }
        out
    }

    fn render(&self, f: &mut fmt::Formatter<'_>, indent: usize) -> fmt::Result {
        let pad = "  ".repeat(indent);
        let who = if self.actor_name.is_empty() {
            "runtime".to_string()
        } else {
            format!("actor '{}' ({})", self.actor_name, self.actor_uid)
        };
        writeln!(f, "{pad}{who} [{}]: {}", self.kind.as_str(), self.message)?;
        if let Some(bt) = &self.backtrace {
            for line in bt.lines() {
                writeln!(f, "{pad}    | {line}")?;
            }
        }
        for c in &self.causes {
            c.render(f, indent + 1)?;
        }
        Ok(())
    }
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.render(f, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_tree_with_actor_names() {
        let leaf = RemoteError::new(ErrorKind::Trap, "unreachable")
            .with_actor("worker-1", "u2")
            .with_backtrace(Some("0: burn\n1: main".into()));
        let other = RemoteError::new(ErrorKind::Guest, "bad").with_actor("worker-2", "u3");
        let g = RemoteError::group(vec![leaf, other], "root", "u1").unwrap();
        let text = g.to_string();
        assert!(text.starts_with("actor 'root' (u1) [group]: 2 child actors failed"), "{text}");
        assert!(text.contains("  actor 'worker-1' (u2) [trap]: unreachable"), "{text}");
        assert!(text.contains("| 1: main"), "{text}");
        assert_eq!(g.walk().len(), 3);
    }

    #[test]
    fn a_relayed_error_records_its_path_and_keeps_its_kind() {
        let leaf = RemoteError::new(ErrorKind::Limit, "memory").with_actor("leaf", "u3");
        let e = leaf.clone().relayed_by("branch", "u2").relayed_by("root", "u1");
        assert_eq!((e.kind, e.actor_name.as_str()), (ErrorKind::Limit, "root"));
        let text = e.to_string();
        assert!(text.starts_with("actor 'root' (u1) [limit]: relayed from actor 'branch'"), "{text}");
        assert!(
            text.contains("\n  actor 'branch' (u2) [limit]: relayed from actor 'leaf'\n    actor 'leaf'"),
            "{text}"
        );
        assert_eq!(e.origin(), &leaf);
        // Raised here: nothing to relay.
        assert_eq!(leaf.clone().relayed_by("leaf", "u3"), leaf);
    }

    #[test]
    fn a_peer_may_leave_out_what_it_does_not_know() {
        let v = ciborium::Value::Map(vec![("kind".into(), "guest".into()), ("message".into(), "boom".into())]);
        let e: RemoteError = v.deserialized().unwrap();
        assert_eq!(e, RemoteError::new(ErrorKind::Guest, "boom"));
    }

    #[test]
    fn kind_names_are_the_wire_names() {
        for k in ErrorKind::ALL {
            assert_eq!(ciborium::Value::serialized(k).unwrap(), ciborium::Value::Text(k.as_str().into()));
        }
    }

    #[test]
    fn a_tree_survives_pre_order_and_back() {
        let leaf = |n: &str| RemoteError::new(ErrorKind::Guest, n).with_actor(n, n);
        let mut mid = leaf("mid");
        mid.causes = vec![leaf("a"), leaf("b")];
        let top = RemoteError::group(vec![mid, leaf("c")], "top", "t").unwrap();
        let flat: Vec<(u32, RemoteError)> = top.causes_preorder().into_iter().map(|(d, e)| (d, e.clone())).collect();
        assert_eq!(
            flat.iter().map(|(d, e)| (*d, e.actor_name.as_str())).collect::<Vec<_>>(),
            [(1, "mid"), (2, "a"), (2, "b"), (1, "c")]
        );
        assert_eq!(RemoteError::from_preorder(top.clone(), flat), top);
    }

    #[test]
    fn group_of_one_is_itself() {
        let e = RemoteError::new(ErrorKind::Guest, "x");
        assert_eq!(RemoteError::group(vec![e.clone()], "r", "u"), Some(e));
        assert_eq!(RemoteError::group(vec![], "r", "u"), None);
    }
}
