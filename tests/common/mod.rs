//! Shared helpers for the integration tests: the testbed tree, and the
//! process table checks that prove no actor outlives its test.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tractor_host::manifest::Manifest;
use tractor_host::tree::Tree;

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The `tractor-host` binary cargo built for these tests.
pub fn host_exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tractor-host"))
}

/// The testbed component, built and precompiled once per test binary.
/// Each call returns a copy with a fresh tree id, so each test can find its
/// own processes.
pub fn testbed() -> Tree {
    static TREE: OnceLock<Tree> = OnceLock::new();
    let t = TREE.get_or_init(|| {
        let m = Manifest::load(&repo().join("guests/testbed")).expect("testbed manifest");
        Tree::prepare(&m, host_exe()).expect("testbed builds")
    });
    let mut t = t.clone();
    t.info.id = tractor_host::spawn::new_uid();
    t
}

/// Live (non-zombie) processes whose environment says they belong to tree `id`.
pub fn tree_processes(id: &str) -> Vec<u32> {
    let needle = format!("TRACTOR_TREE={id}\0");
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(env) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        if !String::from_utf8_lossy(&env).contains(&needle) {
            continue;
        }
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // Field 3 (after "pid (comm)") is the state; Z means already dead.
        let state = stat.rsplit(')').next().and_then(|r| r.split_whitespace().next());
        if state != Some("Z") && !stat.is_empty() {
            out.push(pid);
        }
    }
    out
}

/// Wait (up to `limit`) until tree `id` has no live process; returns the
/// time it took, or panics listing the survivors.
pub fn assert_tree_gone_within(id: &str, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let left = tree_processes(id);
        if left.is_empty() {
            return start.elapsed();
        }
        if start.elapsed() > limit {
            panic!("tree {id}: processes still alive after {limit:?}: {left:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Assert tree `id` has no live process right now.
pub fn assert_no_leftovers(id: &str) {
    // Reaping is synchronous with `wait`, but a grandchild killed by its
    // parent's death signal may take a moment to be reaped by init.
    assert_tree_gone_within(id, Duration::from_secs(1));
}

/// CBOR helpers.
pub fn cbor<T: serde::Serialize>(v: &T) -> ciborium::Value {
    ciborium::Value::serialized(v).unwrap()
}
