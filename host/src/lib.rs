//! # tractor-host
//!
//! Structured-concurrency actor trees of WebAssembly components: every actor
//! is one OS process running one component; parents supervise children
//! through nurseries; errors and cancellation flow up and down the tree.
//!
//! The `tractor-host` binary is a thin CLI over this library. A native Rust
//! program can drive a tree itself:
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use tractor_host::{manifest::Manifest, nursery::Nursery, tree::Tree};
//! let manifest = Manifest::load("examples/single_func".as_ref())?;
//! let tree = Tree::prepare(&manifest, Tree::current_exe()?)?; // builds + precompiles
//! let ctx = tree.driver();
//! let nursery = Nursery::open(&ctx);
//! let portal = nursery
//!     .run_in_actor("root", Some("single_func"), "main", ciborium::Value::Array(vec![]))
//!     .await?;
//! println!("{:?}", portal.result().await?);
//! nursery.wait().await?;
//! # Ok(()) }
//! ```
//!
//! Module map: [`wire`] (frames, messages, CBOR↔WIT values), [`manifest`],
//! [`component`] (build, precompile cache, engine), [`spawn`] (actor
//! processes), [`nursery`] (nurseries and portals), [`actor`] (the actor
//! process and its WIT host imports), [`tree`] (preparing and running a
//! whole tree), [`error`].

// `RemoteError` is ~128 bytes and travels in `Result`s on cold paths only
// (a failure, once per call at most); boxing it would cost clarity for no
// measurable gain.
#![allow(clippy::result_large_err)]

pub mod actor;
pub mod bench;
pub mod check;
pub mod component;
pub mod context;
pub mod error;
pub mod manifest;
pub mod nursery;
pub mod sandbox;
pub mod spawn;
pub mod tree;
pub mod wire;

pub use error::{ErrorKind, RemoteError};
