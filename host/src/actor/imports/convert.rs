//! Conversions between the WIT types and the runtime's: error trees (from
//! the bindgen record, and from the CBOR an export's `err` arrives as),
//! error kinds (from the one table in `crate::error`), grants and backends.

use super::types;
use super::ActorState;
use crate::error::{ErrorKind, RemoteError};
use crate::sandbox::{AddrRule, DirGrant, Grants};
use crate::spawn::Backend;
use serde::Deserialize;

macro_rules! kind_maps {
    ($($v:ident $n:literal),*) => {
        fn kind_from_wit(k: types::ErrorKind) -> ErrorKind {
            match k {
                $(types::ErrorKind::$v => ErrorKind::$v),*
            }
        }

        fn kind_to_wit(k: ErrorKind) -> types::ErrorKind {
            match k {
                $(ErrorKind::$v => types::ErrorKind::$v),*
            }
        }
    };
}
crate::error::with_error_kinds!(kind_maps);

fn node(
    kind: ErrorKind,
    actor_name: String,
    actor_uid: String,
    message: String,
    backtrace: Option<String>,
) -> RemoteError {
    RemoteError { kind, actor_name, actor_uid, message, backtrace, causes: Vec::new() }
}

/// WIT `error` → RemoteError (the tree rebuilt from pre-order + depth).
pub fn from_wit(e: types::Error) -> RemoteError {
    let top = node(kind_from_wit(e.kind), e.actor_name, e.actor_uid, e.message, e.backtrace);
    let nodes = e
        .causes
        .into_iter()
        .map(|n| (n.depth, node(kind_from_wit(n.kind), n.actor_name, n.actor_uid, n.message, n.backtrace)));
    RemoteError::from_preorder(top, nodes)
}

/// RemoteError → WIT `error` (causes flattened in pre-order with depths).
pub fn to_wit(e: &RemoteError) -> types::Error {
    let causes = e
        .causes_preorder()
        .into_iter()
        .map(|(depth, c)| types::ErrorNode {
            kind: kind_to_wit(c.kind),
            actor_name: c.actor_name.clone(),
            actor_uid: c.actor_uid.clone(),
            message: c.message.clone(),
            backtrace: c.backtrace.clone(),
            depth,
        })
        .collect();
    types::Error {
        kind: kind_to_wit(e.kind),
        actor_name: e.actor_name.clone(),
        actor_uid: e.actor_uid.clone(),
        message: e.message.clone(),
        backtrace: e.backtrace.clone(),
        causes,
    }
}

/// The WIT `tractor:actor/types.error` record as an export's `err` arrives
/// in CBOR (from `actor::guest`, which sees values, not bindgen types).
#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct WitError {
    kind: ErrorKind,
    actor_name: String,
    actor_uid: String,
    message: String,
    backtrace: Option<String>,
    causes: Vec<WitErrorNode>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct WitErrorNode {
    kind: ErrorKind,
    actor_name: String,
    actor_uid: String,
    message: String,
    backtrace: Option<String>,
    depth: u32,
}

impl WitError {
    /// The error tree it stands for.
    pub fn into_remote(self) -> RemoteError {
        let top = node(self.kind, self.actor_name, self.actor_uid, self.message, self.backtrace);
        let nodes =
            self.causes.into_iter().map(|n| (n.depth, node(n.kind, n.actor_name, n.actor_uid, n.message, n.backtrace)));
        RemoteError::from_preorder(top, nodes)
    }
}

/// Grants a guest asked for, checked for form (whether it may give them is
/// checked at spawn).
pub fn grants_from_wit(g: types::Grants) -> Result<Grants, String> {
    let rules = |list: Vec<String>, what: &str| {
        AddrRule::parse_list(&list).map_err(|(_, t)| format!("grants.{what}: `{t}` is not an address or network"))
    };
    Ok(Grants {
        dirs: g.dirs.into_iter().map(|d| DirGrant::new(d.host, d.guest, d.writable)).collect(),
        env: g.env.into_iter().collect(),
        args: g.args,
        connect: rules(g.connect, "connect")?,
        bind: rules(g.bind, "bind")?,
        // Not in WIT's `grants` (0.1.0's types cannot change): the spawner
        // keeps the component's `discover` list.
        discover: Vec::new(),
    })
}

/// The grants an actor holds, as the guest sees them.
pub fn grants_to_wit(g: Grants) -> types::Grants {
    types::Grants {
        dirs: g
            .dirs
            .into_iter()
            .map(|d| types::DirGrant { host: d.host.display().to_string(), guest: d.guest, writable: d.writable })
            .collect(),
        env: g.env.into_iter().collect(),
        args: g.args,
        connect: g.connect.iter().map(ToString::to_string).collect(),
        bind: g.bind.iter().map(ToString::to_string).collect(),
    }
}

/// WIT `spawn-backend` → [`Backend`].
pub fn backend_from_wit(b: types::SpawnBackend) -> Backend {
    match b {
        types::SpawnBackend::Exec => Backend::Exec,
        types::SpawnBackend::Forkserver => Backend::Forkserver,
        types::SpawnBackend::Thread => Backend::Thread,
    }
}

/// A value as the CBOR bytes a guest receives.
pub fn cbor_bytes(v: &ciborium::Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).expect("writing CBOR to a Vec cannot fail");
    out
}

impl ActorState {
    /// Call arguments a guest passed as CBOR bytes (empty: none).
    pub(super) fn parse_args(&self, func: &str, args: &[u8]) -> Result<ciborium::Value, RemoteError> {
        if args.is_empty() {
            return Ok(ciborium::Value::Array(vec![]));
        }
        ciborium::from_reader(args)
            .map_err(|e| self.err(ErrorKind::BadArgs, format!("bad arguments to `{func}`: not valid CBOR: {e}")))
    }
}
