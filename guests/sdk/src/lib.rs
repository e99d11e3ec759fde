//! # tractor: the Rust guest SDK
//!
//! Write an actor as a plain wasm component whose exports are the functions
//! it serves, and use this crate to spawn and call other actors:
//!
//! ```ignore
//! tractor::bindings!("../../wit", r#"
//!     package example:hello;
//!     world hello {
//!         include tractor:actor/imports@0.1.0;
//!         use tractor:actor/types@0.1.0.{error};
//!         export main: func() -> result<_, error>;
//!         export double: func(x: u64) -> u64;
//!     }
//! "#);
//!
//! struct Actor;
//! impl Guest for Actor {
//!     fn main() -> tractor::Result<()> {
//!         tractor::open_nursery(|n| {
//!             let p = n.run_in_actor("doubler", "double", &(21u64,))?;
//!             let x: u64 = p.result()?;
//!             println!("got {x}");
//!             Ok(())
//!         })
//!     }
//!     fn double(x: u64) -> u64 { x * 2 }
//! }
//! export!(Actor);
//! ```
//!
//! Every blocking call here is a *checkpoint*: if the actor (or a nursery
//! whose child failed) is cancelled, it returns an [`Error`] of kind
//! `Cancelled` (or the failure itself) instead; propagate it with `?`.

use std::time::Duration;

pub mod aio;
mod codec;
mod context;
mod discovery;
mod error;
mod nursery;
mod portal;
pub mod rt;
mod scope;

pub use codec::{decode, encode_args, encode_value};
pub use context::{callee, Callee, Context, ContextOutcome, Outcome, Stream};
pub use discovery::{find_actor, find_actor_by_uid, query_actor, registry, wait_for_actor, Registered};
pub use error::{kind_name, merge_failures};
pub use nursery::{open_nursery, Nursery};
pub use portal::{as_completed, AsCompleted, Call, Portal};
pub use scope::{with_cancel_scope, with_timeout, CancelScope};

/// Bindings generated from the `tractor:actor` WIT package.
pub mod wit {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "tractor:actor/imports",
        generate_all,
    });
    pub use self::tractor::actor::{discovery, identity, log, runtime, types};
    pub use self::wasi::io::poll;
}

pub use ciborium::Value;
pub use wit::identity::ActorInfo;
pub use wit::types::{DirGrant, Error, ErrorKind, ErrorNode, Grants, SpawnBackend, SpawnOptions};

/// Result with tractor's [`Error`] by default.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Generate a guest's bindings with the SDK's types shared.
///
/// `$path` is the `wit/` folder of this repository relative to the guest
/// crate; `$world` is inline WIT for the guest's own world, which should
/// `include tractor:actor/imports@0.1.0`. Then implement the generated
/// `Guest` trait and call `export!(YourType)`.
#[macro_export]
macro_rules! bindings {
    ($path:literal, $world:literal) => {
        wit_bindgen::generate!({
            path: $path,
            inline: $world,
            with: {
                "tractor:actor/types@0.1.0": ::tractor::wit::types,
                "tractor:actor/identity@0.1.0": ::tractor::wit::identity,
                "tractor:actor/runtime@0.1.0": ::tractor::wit::runtime,
                "tractor:actor/log@0.1.0": ::tractor::wit::log,
                "tractor:actor/discovery@0.1.0": ::tractor::wit::discovery,
                "wasi:io/poll@0.2.12": ::tractor::wit::poll,
            },
        });
    };
}

/// The current actor's identity.
pub fn current() -> ActorInfo {
    wit::identity::current()
}

/// The capabilities this actor holds (folders, env, network).
pub fn grants() -> Grants {
    wit::identity::current_grants()
}

/// CPU cores available, for sizing worker pools.
pub fn available_parallelism() -> u32 {
    wit::identity::available_parallelism()
}

/// Sleep (checkpoint).
pub fn sleep(d: Duration) -> Result<()> {
    wit::runtime::sleep(d.as_nanos().min(u64::MAX as u128) as u64)
}

/// Sleep until cancelled.
pub fn sleep_forever() -> Result<()> {
    loop {
        sleep(Duration::from_secs(3600))?;
    }
}

/// Return an error if the current scope was cancelled.
pub fn checkpoint() -> Result<()> {
    wit::runtime::checkpoint()
}

/// Log through the host's logger.
pub fn log(level: wit::log::Level, message: &str) {
    wit::log::log(level, message)
}
