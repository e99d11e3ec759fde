//! Cancellation latency: from `cancel_actor` to the actor process having
//! exited, for a guest spinning in wasm and for one blocked in a host call;
//! and from SIGINT to `tractor-host` exiting for the 7-actor `daemon_tree`.
//! Baseline: SIGKILL of a plain child process to its reaping, in the same run.
//!
//! Run with `cargo bench --bench cancel`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
mod common;

use common::median;
use tractor_host::Nursery;

const RUNS: usize = 15;

fn main() {
    let tree = common::testbed();
    let (repo, exe) = (common::repo(), common::HOST_EXE);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();

    let baseline = median(
        (0..RUNS)
            .map(|_| {
                let mut c = Command::new("sleep").arg("60").spawn().unwrap();
                let t = Instant::now();
                c.kill().unwrap();
                c.wait().unwrap();
                t.elapsed()
            })
            .collect(),
    );

    let cancel = |func: &'static str| {
        median(
            (0..RUNS)
                .map(|_| {
                    rt.block_on(async {
                        let n = Nursery::open(&tree.driver());
                        let p = n.start_actor("victim", Some("testbed")).await.unwrap();
                        // `started` arrives once the guest is in the state we want.
                        let (_ctx, _) =
                            p.open_context(func, ciborium::Value::Array(vec![]), ("bench", "b")).await.unwrap();
                        let t = Instant::now();
                        p.cancel_actor("bench").await.expect("a child");
                        let took = t.elapsed();
                        n.wait().await.unwrap();
                        took
                    })
                })
                .collect(),
        )
    };
    let spinning = cancel("spin-ctx");
    let blocked = cancel("wait-for-cancel");

    let tree_down = median(
        (0..5)
            .map(|_| {
                let mut child = Command::new(exe)
                    .args(["run", "examples/daemon_tree"])
                    .current_dir(&repo)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap();
                let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
                assert!(lines.any(|l| l.is_ok_and(|l| l.contains("tree up: 7 actors"))));
                let t = Instant::now();
                // SAFETY: plain kill(2) on our child.
                unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
                assert_eq!(child.wait().unwrap().code(), Some(130));
                t.elapsed()
            })
            .collect(),
    );

    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("{:<52} {:>9} {:>8}", "figure", "median", "ratio");
    println!("{:<52} {:>7.2}ms {:>8}", "baseline: SIGKILL + reap of a plain process", ms(baseline), "1.0x");
    for (name, d) in [
        ("cancel -> exit, guest spinning in wasm", spinning),
        ("cancel -> exit, guest blocked in a host call", blocked),
        ("SIGINT -> exit, daemon_tree (7 actors)", tree_down),
    ] {
        println!("{:<52} {:>7.2}ms {:>7.1}x", name, ms(d), ms(d) / ms(baseline));
    }
}
