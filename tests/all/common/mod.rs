//! Shared helpers for the integration tests: the testbed tree, and the
//! process table checks that prove no actor outlives its test.

#![allow(dead_code)]

pub mod netns;
pub mod proxy;
pub mod ssh;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tractor_host::spawn::Backend;
use tractor_host::Manifest;
use tractor_host::Tree;

tokio::task_local! {
    /// The spawn backend the running test exercises (see [`each_backend`]).
    pub static BACKEND: Backend;
}

/// The backend the current test runs against (exec outside [`each_backend`]).
pub fn backend() -> Backend {
    BACKEND.try_with(|b| *b).unwrap_or_default()
}

/// Define an async test once and run it against every spawn backend:
/// `name::exec`, `name::forkserver` and `name::thread`. Inside it,
/// [`testbed`] trees force that backend and [`backend`] names it. With
/// `serial`, the test runs alone (see [`serial`]).
#[allow(unused_macros)]
macro_rules! each_backend {
    ($(#[$m:meta])* serial async fn $name:ident() $body:block) => {
        each_backend!(@cases $(#[$m])* $name, $body, crate::common::serial());
    };
    ($(#[$m:meta])* async fn $name:ident() $body:block) => {
        each_backend!(@cases $(#[$m])* $name, $body, crate::common::shared());
    };
    (@cases $(#[$m:meta])* $name:ident, $body:block, $guard:expr) => {
        $(#[$m])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn body() $body

            fn run(backend: tractor_host::spawn::Backend) {
                let _guard = $guard;
                crate::common::test_runtime().block_on(crate::common::BACKEND.scope(backend, body()))
            }

            #[test]
            fn exec() {
                run(tractor_host::spawn::Backend::Exec)
            }

            #[test]
            fn forkserver() {
                run(tractor_host::spawn::Backend::Forkserver)
            }

            #[test]
            fn thread() {
                run(tractor_host::spawn::Backend::Thread)
            }
        }
    };
}

/// Every test holds this lock while it runs, and takes it before its tokio
/// runtime exists: shared by most, exclusively by the cases that count the
/// process's file descriptors, which another test's runtime (four
/// descriptors), pipes or thread actors would throw off. All areas run in
/// one process (one test binary), so this is what isolates those cases.
static ISOLATION: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// Run alongside other tests (a test that failed while holding the lock
/// does not poison it for the rest).
pub fn shared() -> std::sync::RwLockReadGuard<'static, ()> {
    ISOLATION.read().unwrap_or_else(|p| p.into_inner())
}

/// Run alone.
pub fn serial() -> std::sync::RwLockWriteGuard<'static, ()> {
    ISOLATION.write().unwrap_or_else(|p| p.into_inner())
}

/// The runtime a test runs on: what `#[tokio::test(flavor =
/// "multi_thread", worker_threads = 2)]` builds, but made after the test
/// holds [`shared`] or [`serial`].
pub fn test_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// Run an async test body alongside the others.
pub fn run<F: std::future::Future>(body: F) -> F::Output {
    let _shared = shared();
    test_runtime().block_on(body)
}

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
/// own processes, forced onto the current test's [`backend`].
pub fn testbed() -> Tree {
    static TREE: OnceLock<Tree> = OnceLock::new();
    fresh(&TREE, "guests/testbed")
}

/// The async testbed component (`tractor:actor@0.2.0`), as [`testbed`].
pub fn testbed_async() -> Tree {
    static TREE: OnceLock<Tree> = OnceLock::new();
    fresh(&TREE, "guests/testbed-async")
}

/// The tree of the manifest in `dir`, prepared once into `slot`, as a copy
/// with a fresh id on the current backend.
fn fresh(slot: &OnceLock<Tree>, dir: &str) -> Tree {
    let t = slot.get_or_init(|| {
        let m = Manifest::load(&repo().join(dir)).expect("manifest");
        Tree::prepare(&m, host_exe()).expect("it builds")
    });
    let mut t = t.clone();
    t.info.id = tractor_host::spawn::new_uid();
    t.force_backend(backend());
    t
}

/// Live actors of tree `id`: its processes plus its thread actors.
pub fn tree_actors(id: &str) -> usize {
    tree_processes(id).len() + tractor_host::census::thread_actors(id)
}

/// Live (non-zombie) actor processes whose environment says they belong to
/// tree `id`. The tree's zygote (forkserver) is not an actor: it lives as
/// long as the tree's driver; see [`zygotes`].
pub fn tree_processes(id: &str) -> Vec<u32> {
    tree_pids(id).into_iter().filter(|p| !is_zygote(*p)).collect()
}

/// The zygote processes of tree `id`.
pub fn zygotes(id: &str) -> Vec<u32> {
    tree_pids(id).into_iter().filter(|p| is_zygote(*p)).collect()
}

/// The zygote names itself `tractor-zygote`; the actors it forks share its
/// command line but not that name.
fn is_zygote(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "tractor-zygote")
}

/// Every live process of tree `id`, zygote included.
pub fn tree_pids(id: &str) -> Vec<u32> {
    tractor_host::census::tree_processes(id)
}

/// Wait (up to `limit`) until tree `id` has no live process, zygote
/// included, and no thread actor; returns the time it took, or panics
/// listing the survivors. For trees whose driver has ended.
pub fn assert_tree_gone_within(id: &str, limit: Duration) -> Duration {
    wait_gone(id, limit, true)
}

/// Wait until tree `id` has at least `n` live actors (processes or
/// threads): an actor that exists has been spawned, whatever it does next.
pub async fn wait_for_actors(id: &str, n: usize) {
    let start = Instant::now();
    while tree_actors(id) < n {
        assert!(start.elapsed() < Duration::from_secs(60), "tree {id}: {} of {n} actors after 60 s", tree_actors(id));
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Assert tree `id` has no live actor (process or thread). Its zygote, if
/// any, belongs to the still-running driver and may remain.
pub fn assert_no_leftovers(id: &str) {
    // Reaping is synchronous with `wait`, but a grandchild killed by its
    // parent's death signal may take a moment to be reaped by init.
    wait_gone(id, Duration::from_secs(1), false);
}

/// Assert nothing of tree `id` is left, zygote included (its driver, a
/// `tractor-host` process, has exited).
pub fn assert_all_gone(id: &str) {
    wait_gone(id, Duration::from_secs(1), true);
}

fn wait_gone(id: &str, limit: Duration, with_zygote: bool) -> Duration {
    let start = Instant::now();
    loop {
        let left = if with_zygote { tree_pids(id) } else { tree_processes(id) };
        let threads = tractor_host::census::thread_actors(id);
        if left.is_empty() && threads == 0 {
            return start.elapsed();
        }
        if start.elapsed() > limit {
            panic!("tree {id}: still alive after {limit:?}: processes {left:?}, {threads} thread actor(s)");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// CBOR helpers.
pub fn cbor<T: serde::Serialize>(v: &T) -> ciborium::Value {
    ciborium::Value::serialized(v).unwrap()
}

/// A `tractor-host` process that a failing test kills on its way out.
pub struct Host(pub Child);

impl std::ops::Deref for Host {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Host {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `daemon_tree` under `tractor-host run --spawn <backend>`, once it says
/// all 7 actors are up.
pub fn daemon_tree(backend: Backend) -> (Host, String) {
    let id = tractor_host::spawn::new_uid();
    let mut child = Command::new(host_exe())
        .args(["run", "--spawn", backend.name(), "examples/daemon_tree"])
        .env("TRACTOR_TREE", &id)
        .current_dir(repo())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map(Host)
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let up = lines.find_map(|l| l.ok().filter(|l| l.contains("tree up:")));
    assert_eq!(up.as_deref(), Some("[root] tree up: 7 actors"));
    // Keep draining stdout so the tree never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    let processes = if backend.is_process() { 8 } else { 1 };
    assert_eq!(tree_processes(&id).len(), processes, "tractor-host + 7 actors ({backend})");
    assert_eq!(zygotes(&id).len(), (backend == Backend::Forkserver) as usize);
    (child, id)
}
