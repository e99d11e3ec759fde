//! Stream benchmark: round trips and one-way throughput over a context
//! stream between this process and a guest actor, next to raw ping-pong over
//! a pipe between two plain processes measured in the same run.
//!
//! Run with `cargo bench --bench streams`.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Instant;
mod common;

use tractor_host::nursery::Nursery;
use tractor_host::wire::ContextOutcome;

const ROUND_TRIPS: u32 = 10_000;
const ONE_WAY: u32 = 1_000_000;
const RUNS: usize = 3;

fn enc<T: serde::Serialize>(v: &T) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).unwrap();
    out
}

/// The baseline's other process: echo 8-byte messages on stdin/stdout.
fn echo_child() {
    let (mut i, mut o) = (std::io::stdin().lock(), std::io::stdout().lock());
    let mut buf = [0u8; 8];
    while i.read_exact(&mut buf).is_ok() {
        if o.write_all(&buf).and_then(|_| o.flush()).is_err() {
            break;
        }
    }
}

fn pipe_round_trips() -> f64 {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .arg("--echo-child")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (mut w, mut r) = (child.stdin.take().unwrap(), child.stdout.take().unwrap());
    let mut buf = [0u8; 8];
    let t = Instant::now();
    for i in 0..ROUND_TRIPS as u64 {
        w.write_all(&i.to_le_bytes()).unwrap();
        w.flush().unwrap();
        r.read_exact(&mut buf).unwrap();
    }
    let rate = ROUND_TRIPS as f64 / t.elapsed().as_secs_f64();
    drop(w);
    child.wait().unwrap();
    rate
}

fn best(mut f: impl FnMut() -> f64) -> f64 {
    f(); // warm-up
    common::median_rate((0..RUNS).map(|_| f()).collect())
}

fn main() {
    if std::env::args().any(|a| a == "--echo-child") {
        return echo_child();
    }
    let tree = common::testbed();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let me = ("bench", "bench");

    // TRACTOR_BENCH_ONLY=ping runs just the context ping-pong (for profiling).
    let only_ping = std::env::var("TRACTOR_BENCH_ONLY").is_ok_and(|v| v == "ping");
    let baseline = if only_ping { f64::NAN } else { best(pipe_round_trips) };

    let (ping, one_way) = rt.block_on(async {
        let n = Nursery::open(&tree.driver());
        let p = n.start_actor("peer", Some("testbed")).await.unwrap();
        let ping = {
            let mut rates = Vec::new();
            for _ in 0..=RUNS {
                let (ctx, _) = p.open_context("echo-ctx", ciborium::Value::Array(vec![0.into()]), me).await.unwrap();
                let mut s = ctx.open_stream().unwrap();
                let msg = enc(&7u32);
                let t = Instant::now();
                for _ in 0..ROUND_TRIPS {
                    s.core().send(msg.clone()).await.unwrap();
                    s.recv().await.unwrap().unwrap();
                }
                rates.push(ROUND_TRIPS as f64 / t.elapsed().as_secs_f64());
                s.core().close();
                assert!(matches!(ctx.result().await, ContextOutcome::Returned(_)));
            }
            rates.remove(0);
            common::median_rate(rates)
        };
        let one_way = if only_ping {
            f64::NAN
        } else {
            let (ctx, _) = p.open_context("produce", ciborium::Value::Array(vec![ONE_WAY.into()]), me).await.unwrap();
            let mut s = ctx.open_stream().unwrap();
            s.core().send(enc(&"go")).await.unwrap();
            let t = Instant::now();
            let mut count = 0u32;
            while s.recv().await.unwrap().is_some() {
                count += 1;
            }
            let rate = count as f64 / t.elapsed().as_secs_f64();
            assert_eq!(count, ONE_WAY);
            rate
        };
        n.wait().await.unwrap();
        (ping, one_way)
    });

    println!("{:<58} {:>12} {:>8}", "figure", "rate", "ratio");
    println!("{:<58} {:>10.0}/s {:>8}", "baseline: raw pipe ping-pong, two plain processes", baseline, "1.00x");
    println!(
        "{:<58} {:>10.0}/s {:>7.2}x",
        "context stream ping-pong, host <-> guest actor (10k)",
        ping,
        ping / baseline
    );
    println!(
        "{:<58} {:>10.0}/s {:>7.2}x",
        "one-way stream, guest actor -> host (1M small ints)",
        one_way,
        one_way / baseline
    );
}
