//! # tractor-host
//!
//! Structured-concurrency actor trees of WebAssembly components: every actor
//! is one OS process (or a thread) running one component; parents supervise
//! children through nurseries; errors and cancellation flow up and down the
//! tree.
//!
//! The `tractor-host` binary is a thin CLI over this library. A native Rust
//! program can drive a tree itself; it calls [`init`] first thing in `main`,
//! so that its own executable can serve as the actors' (`host_exe`):
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use tractor_host::{Manifest, Nursery, Tree};
//! // In `main`, before anything else: tractor_host::init();
//! let manifest = Manifest::load("examples/single_func".as_ref())?;
//! let tree = Tree::prepare(&manifest, Tree::current_exe()?)?; // builds + precompiles
//! let driver = tree.driver();
//! let nursery = Nursery::open(&driver);
//! let portal = nursery
//!     .run_in_actor("root", Some("single_func"), "main", ciborium::Value::Array(vec![]))
//!     .await?;
//! println!("{:?}", portal.result().await?);
//! nursery.wait().await?;
//! # Ok(()) }
//! ```
//!
//! The public surface is re-exported here: trees and manifests ([`Tree`],
//! [`Manifest`], [`check()`]), the tree's structure ([`Nursery`], [`Portal`],
//! [`PendingCall`], [`Context`], [`Receiver`]), errors ([`RemoteError`],
//! [`ErrorKind`]), capabilities ([`Grants`], [`Limits`]); and three
//! lower-level modules for programs that speak the protocol themselves:
//! [`wire`] (frames and messages), [`value`] (CBOR ↔ WIT values) and
//! [`spawn`] (starting actor processes). [`census`] tells which actors of a
//! tree are alive.
//!
//! Inside, every import arrow points down: the leaves (`error`, `value`,
//! `wire`, `sandbox`, `spawn`), then `context` and `nursery` (the parent's
//! side), then `actor` (the actor process and its WIT imports), then
//! `tree`, `check` and the CLI.

// `RemoteError` is ~128 bytes and travels in `Result`s on cold paths only
// (a failure, once per call at most); boxing it would cost clarity for no
// measurable gain.
#![allow(clippy::result_large_err)]
#![deny(missing_docs)]

mod actor;
mod check;
mod component;
mod context;
mod discovery;
mod error;
mod framing;
mod manifest;
mod nursery;
mod sandbox;
pub mod spawn;
mod tree;
pub mod value;
pub mod wire;

pub use actor::run_thread;
pub use check::{check, Problem, Report};
pub use component::Model;
pub use context::{Receiver, WINDOW};
pub use discovery::{Registrar, DRIVER_UID};
pub use error::{ErrorKind, RemoteError};
pub use manifest::{load_hosts, parse_duration, BuildSpec, ComponentSpec, Manifest, ManifestError, RootSpec};
pub use nursery::{
    ActorInfo, ActorScope, CallResult, ChildActor, Context, Nursery, PendingCall, Portal, SpawnOptions, Teardown,
    TreeInfo,
};
pub use sandbox::{parse_size, AddrRule, DirGrant, Grants, Limits};
pub use tree::census;
pub use tree::control;
pub use tree::{PrepareError, Progress, Step, Tree};

/// The component cache: where precompiled components live
/// ([`cache::default_dir`]), what is in it, and keeping it in bounds.
pub mod cache {
    pub use crate::component::cache::default_dir;
    pub use crate::component::evict::{clear, entries, gc, Entry, Policy, Swept, DEFAULT_MAX_AGE, DEFAULT_MAX_SIZE};

    /// The cache entries the components of `manifest` have (or would
    /// have, once precompiled) in `dir`: what `gc` should keep for it.
    pub fn entries_of(manifest: &crate::Manifest, dir: &std::path::Path) -> Result<Vec<std::path::PathBuf>, String> {
        manifest
            .components
            .values()
            .filter(|c| c.source.is_file())
            .map(|c| crate::component::cache::entry_path(dir, &c.name, &c.source).map_err(|e| format!("{e:#}")))
            .collect()
    }
}

/// Run the hidden subcommand this process was started as, if it was one
/// (`__actor`: an actor process; `__zygote`: a tree's forkserver), and exit
/// with its status; otherwise return at once. Call it first thing in `main`
/// of any program that passes its own executable as a tree's `host_exe`,
/// as `procspawn::init` does.
pub fn init() {
    if let Some(code) = run_internal_subcommand() {
        std::process::exit(code);
    }
}

/// The exit status of the hidden subcommand this process was started as,
/// having run it; `None` if it was not started as one (see [`init`]).
pub fn run_internal_subcommand() -> Option<i32> {
    let sub = std::env::args_os().nth(1)?;
    if sub == spawn::ACTOR_SUBCOMMAND {
        return Some(actor::main());
    }
    if sub == spawn::ZYGOTE_SUBCOMMAND {
        return Some(actor::zygote::main());
    }
    if sub == spawn::exec::EXEC_CHILD_SUBCOMMAND {
        return Some(spawn::exec::exec_child());
    }
    if sub == spawn::ssh::RELAY_SUBCOMMAND {
        return Some(spawn::ssh::relay::main());
    }
    None
}
