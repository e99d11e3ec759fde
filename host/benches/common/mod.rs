//! What every benchmark needs: the repository, the testbed tree, medians.

#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;
use tractor_host::{Manifest, Tree};

/// The repository root.
pub fn repo() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The `tractor-host` binary built for the benchmarks.
pub const HOST_EXE: &str = env!("CARGO_BIN_EXE_tractor-host");

/// The testbed component, built and precompiled; also turns off
/// `RUST_BACKTRACE`, which would make every wasmtime error capture a host
/// backtrace.
pub fn testbed() -> Tree {
    std::env::remove_var("RUST_BACKTRACE");
    let manifest = Manifest::load(&repo().join("guests/testbed")).expect("testbed manifest");
    Tree::prepare(&manifest, HOST_EXE.into()).expect("testbed builds")
}

/// Median of some durations.
pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}
