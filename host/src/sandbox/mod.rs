//! The sandbox: what an actor may do ([`grants`], with folders held as open
//! handles in [`folders`]) and what it may consume ([`limits`]).
//!
//! Everything not granted is denied, and a child never holds more than its
//! spawner: env and addresses are compared with the spawner's, folders are
//! opened beneath the spawner's own open folders.

mod folders;
mod grants;
mod limits;

pub use folders::Folders;
pub use grants::{glob_matches, AddrRule, DirGrant, Grants};
pub use limits::{parse_size, LimitExceeded, Limits, MemoryLimiter};
