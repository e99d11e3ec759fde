//! Spawn benchmark: how long from "start an actor" to "have its result",
//! against the baseline of fork+exec of a trivial process in the same run.
//!
//! Run with `cargo bench --bench spawn`. Prints medians over repeated runs
//! (after warm-up) and each figure's ratio to the baseline.

use std::time::{Duration, Instant};
mod common;

use common::median;
use tractor_host::nursery::Nursery;

const RUNS: usize = 30;

fn measure(mut f: impl FnMut()) -> Duration {
    for _ in 0..3 {
        f(); // warm-up: page cache, precompiled-artifact mmap
    }
    median(
        (0..RUNS)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed()
            })
            .collect(),
    )
}

fn main() {
    let tree = common::testbed();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let args = |v: &[i64]| ciborium::Value::serialized(v).unwrap();

    let baseline = measure(|| {
        let s = std::process::Command::new("/bin/true").status().unwrap();
        assert!(s.success());
    });

    let one = measure(|| {
        rt.block_on(async {
            let n = Nursery::open(&tree.driver());
            let p = n.run_in_actor("one", Some("testbed"), "add", args(&[1, 2])).await.unwrap();
            p.result().await.unwrap();
            n.wait().await.unwrap();
        })
    });

    let ten = measure(|| {
        rt.block_on(async {
            let n = Nursery::open(&tree.driver());
            let mut portals = Vec::new();
            for i in 0..10 {
                portals.push(n.run_in_actor(&format!("w{i}"), Some("testbed"), "add", args(&[i, i])).await.unwrap());
            }
            for p in &portals {
                p.result().await.unwrap();
            }
            n.wait().await.unwrap();
        })
    });

    let calls = rt.block_on(async {
        let n = Nursery::open(&tree.driver());
        let p = n.start_actor("d", Some("testbed")).await.unwrap();
        for _ in 0..100 {
            p.run("add", args(&[1, 2])).unwrap().get().await.unwrap();
        }
        let count = 5_000;
        let t = Instant::now();
        for _ in 0..count {
            p.run("add", args(&[1, 2])).unwrap().get().await.unwrap();
        }
        let rate = count as f64 / t.elapsed().as_secs_f64();
        n.wait().await.unwrap();
        rate
    });

    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("{:<44} {:>10} {:>8}", "figure", "median", "ratio");
    println!("{:<44} {:>8.2}ms {:>8}", "baseline: fork+exec /bin/true", ms(baseline), "1.0x");
    println!("{:<44} {:>8.2}ms {:>7.1}x", "spawn 1 actor -> result -> exit", ms(one), ms(one) / ms(baseline));
    println!(
        "{:<44} {:>8.2}ms {:>7.1}x",
        "spawn 10 actors concurrently -> all results",
        ms(ten),
        ms(ten) / ms(baseline)
    );
    println!("{:<44} {:>8.0}/s", "sequential portal.run (native caller)", calls);
}
