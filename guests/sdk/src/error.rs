//! The WIT `error` record as Rust's error: rendering, kind names, and how a
//! nursery block's failures combine.

use crate::{Error, ErrorKind, ErrorNode};

/// An error kind as the WIT and the host spell it (`bad-args`), so guest
/// and host renderings of one error agree.
pub fn kind_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Guest => "guest",
        ErrorKind::Trap => "trap",
        ErrorKind::Cancelled => "cancelled",
        ErrorKind::BadArgs => "bad-args",
        ErrorKind::NoSuchExport => "no-such-export",
        ErrorKind::NoSuchComponent => "no-such-component",
        ErrorKind::SpawnFailed => "spawn-failed",
        ErrorKind::ActorDied => "actor-died",
        ErrorKind::ActorGone => "actor-gone",
        ErrorKind::Protocol => "protocol",
        ErrorKind::Group => "group",
        ErrorKind::Closed => "closed",
        ErrorKind::Lagged => "lagged",
        ErrorKind::Limit => "limit",
        ErrorKind::Denied => "denied",
        ErrorKind::Internal => "internal",
    }
}

impl Error {
    /// A guest error with `message`; the host fills in the actor.
    pub fn new(message: impl Into<String>) -> Error {
        Error {
            kind: ErrorKind::Guest,
            actor_name: String::new(),
            actor_uid: String::new(),
            message: message.into(),
            backtrace: None,
            causes: Vec::new(),
        }
    }

    /// True for a cancellation (an outcome, not a failure).
    pub fn is_cancelled(&self) -> bool {
        self.kind == ErrorKind::Cancelled
    }

    /// The error tree as indented text, one actor per line.
    pub fn render(&self) -> String {
        let mut s = format!("actor '{}' [{}]: {}", self.actor_name, kind_name(self.kind), self.message);
        for c in &self.causes {
            let pad = "  ".repeat(c.depth as usize);
            s.push_str(&format!("\n{pad}actor '{}' [{}]: {}", c.actor_name, kind_name(c.kind), c.message));
        }
        s
    }

    /// Every actor named in this error tree, outermost first.
    pub fn actors(&self) -> Vec<&str> {
        std::iter::once(self.actor_name.as_str()).chain(self.causes.iter().map(|c| c.actor_name.as_str())).collect()
    }
}

impl From<String> for Error {
    fn from(message: String) -> Error {
        Error::new(message)
    }
}

impl From<&str> for Error {
    fn from(message: &str) -> Error {
        Error::new(message)
    }
}

/// The error a nursery block ends with when its body failed with `body` and
/// closing it failed with `closed`: no real failure is lost.
///
/// A cancelled body hides nothing (what cancelled it is the news); a body
/// that failed because it saw the nursery's own failure adds nothing to it;
/// otherwise both are reported, as one group.
pub fn merge_failures(body: Error, closed: Error) -> Error {
    if body.is_cancelled() {
        return closed;
    }
    if closed.is_cancelled() {
        return body;
    }
    let (mine, theirs) = (subtrees(&body), subtrees(&closed));
    let key = |t: &Vec<ErrorNode>| (t[0].actor_uid.clone(), t[0].kind, t[0].message.clone());
    let known: Vec<_> = theirs.iter().map(key).collect();
    if mine.iter().all(|t| known.contains(&key(t))) {
        return closed;
    }
    let seen: Vec<_> = mine.iter().map(key).collect();
    let all: Vec<Vec<ErrorNode>> =
        mine.into_iter().chain(theirs.into_iter().filter(|t| !seen.contains(&key(t)))).collect();
    Error {
        kind: ErrorKind::Group,
        actor_name: String::new(),
        actor_uid: String::new(),
        message: format!("{} failures", all.len()),
        backtrace: None,
        causes: all.into_iter().flatten().collect(),
    }
}

/// The failures an error stands for, each as its subtree of nodes (depth 1
/// at its top): a group's direct causes, or the error itself.
fn subtrees(e: &Error) -> Vec<Vec<ErrorNode>> {
    if e.kind == ErrorKind::Group {
        let mut out: Vec<Vec<ErrorNode>> = Vec::new();
        for c in &e.causes {
            match out.last_mut() {
                Some(t) if c.depth > 1 => t.push(c.clone()),
                _ => out.push(vec![c.clone()]),
            }
        }
        return out;
    }
    let top = ErrorNode {
        kind: e.kind,
        actor_name: e.actor_name.clone(),
        actor_uid: e.actor_uid.clone(),
        message: e.message.clone(),
        backtrace: e.backtrace.clone(),
        depth: 1,
    };
    let below = e.causes.iter().map(|c| ErrorNode { depth: c.depth + 1, ..c.clone() });
    vec![std::iter::once(top).chain(below).collect()]
}
