//! The measurements: each drives real actors (or the baseline's plain
//! processes and threads) and returns medians.

use crate::{primes, Plan, PIPE_ECHO_SUBCOMMAND, PRIMES_CHUNK, PRIMES_FROM};
use anyhow::{anyhow, bail, Context as _, Result};
use serde::Serialize;
use std::future::Future;
use std::io::{Read as _, Write as _};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tractor_host::census::{thread_actors, tree_processes};
use tractor_host::spawn::Backend;
use tractor_host::wire::ContextOutcome;
use tractor_host::{ActorScope, Nursery, Portal};

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub(crate) fn median<T: PartialOrd + Copy>(mut v: Vec<T>) -> T {
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    v[v.len() / 2]
}

pub(crate) fn median_duration(runs: usize, mut f: impl FnMut()) -> Duration {
    for _ in 0..3 {
        f(); // warm-up: page cache, mappings
    }
    median(
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed()
            })
            .collect(),
    )
}

/// Median of the durations `f` reports over `runs` runs, after three
/// warm-up runs.
pub(crate) async fn time_async<F: Future<Output = Result<Duration>>>(
    runs: usize,
    mut f: impl FnMut() -> F,
) -> Result<Duration> {
    for _ in 0..3 {
        f().await?;
    }
    let mut times = Vec::new();
    for _ in 0..runs {
        times.push(f().await?);
    }
    Ok(median(times))
}

pub(crate) fn remote(e: tractor_host::RemoteError) -> anyhow::Error {
    anyhow!("{e}")
}

pub(crate) fn args<T: Serialize>(v: &T) -> ciborium::Value {
    ciborium::Value::serialized(v).expect("serializable")
}

/// Start `count` run-in-actor children at once; the time until every
/// result is in (the children's exit is waited for, but not timed).
pub(crate) async fn spawn_and_wait(ctx: &Arc<ActorScope>, count: usize) -> Result<Duration> {
    spawn_and_wait_of(ctx, "testbed", count).await
}

/// [`spawn_and_wait`] with children running `component`'s `add`.
pub(crate) async fn spawn_and_wait_of(ctx: &Arc<ActorScope>, component: &str, count: usize) -> Result<Duration> {
    let t = Instant::now();
    let n = Nursery::open(ctx);
    let mut portals = Vec::new();
    for i in 0..count {
        portals.push(n.run_in_actor(&format!("w{i}"), Some(component), "add", args(&(i, 1))).await.map_err(remote)?);
    }
    for p in &portals {
        p.result().await.map_err(remote)?;
    }
    let took = t.elapsed();
    n.wait().await.map_err(remote)?;
    Ok(took)
}

pub(crate) async fn daemon(n: &Nursery, name: &str) -> Result<Portal> {
    daemon_of(n, name, "testbed").await
}

/// A daemon running `component`, warmed up with one call of its `add`.
pub(crate) async fn daemon_of(n: &Nursery, name: &str, component: &str) -> Result<Portal> {
    let p = n.start_actor(name, Some(component)).await.map_err(remote)?;
    p.run("add", args(&(1, 1))).map_err(remote)?.get().await.map_err(remote)?;
    Ok(p)
}

/// Sequential `portal.run` calls per second into one daemon.
pub(crate) async fn call_rate(ctx: &Arc<ActorScope>, component: &str, calls: u32, runs: usize) -> Result<f64> {
    let n = Nursery::open(ctx);
    let p = daemon_of(&n, "calls", component).await?;
    let rate = calls_through(&p, calls, runs).await?;
    n.cancel().await;
    n.wait().await.map_err(remote)?;
    Ok(rate)
}

/// Sequential `add` calls per second into one daemon through `p`.
async fn calls_through(p: &Portal, calls: u32, runs: usize) -> Result<f64> {
    let a = args(&(1, 2));
    let mut rates = Vec::new();
    for run in 0..=runs {
        let t = Instant::now();
        for _ in 0..calls {
            p.run("add", a.clone()).map_err(remote)?.get().await.map_err(remote)?;
        }
        if run > 0 {
            rates.push(calls as f64 / t.elapsed().as_secs_f64());
        }
    }
    Ok(median(rates))
}

/// One daemon, called as a child (its parent link) and as a found actor
/// (a peer link from the driver), alternately: (child calls/s, peer
/// calls/s, median time of a lookup plus its first call once the link is
/// up).
pub(crate) async fn peer_call_rates(ctx: &Arc<ActorScope>, calls: u32, runs: usize) -> Result<Lookups> {
    let n = Nursery::open(ctx);
    let child = daemon(&n, "db").await?;
    let first = |p: tractor_host::Portal| async move {
        p.run("add", args(&(1, 2))).map_err(remote)?.get().await.map_err(remote)?;
        Ok::<_, anyhow::Error>(p)
    };
    let peer = first(ctx.find_actor("db").await.map_err(remote)?.context("db is not registered")?).await?;
    let (mut child_rates, mut peer_rates) = (Vec::new(), Vec::new());
    for _ in 0..runs.max(1) {
        child_rates.push(calls_through(&child, calls, 1).await?);
        peer_rates.push(calls_through(&peer, calls, 1).await?);
    }
    let mut lookups = Vec::new();
    for _ in 0..(runs.max(1) * 20) {
        let t = Instant::now();
        first(ctx.find_actor("db").await.map_err(remote)?.context("db is not registered")?).await?;
        lookups.push(t.elapsed());
    }
    lookups.sort();
    // The same from inside an actor: its lookup goes up its parent link
    // to the driver's registrar, then a link of its own to `db`.
    let finder = daemon(&n, "finder").await?;
    let mut inside = Vec::new();
    for _ in 0..(runs.max(1) * 20) {
        let t = Instant::now();
        finder.run("find-and-add", args(&("db", 1, 2))).map_err(remote)?.get().await.map_err(remote)?;
        inside.push(t.elapsed());
    }
    drop(peer);
    n.cancel().await;
    n.wait().await.map_err(remote)?;
    Ok(Lookups {
        child: median(child_rates),
        peer: median(peer_rates),
        driver_find: lookups[lookups.len() / 2],
        actor_find: median(inside),
    })
}

/// What the discovery section measures.
pub(crate) struct Lookups {
    /// Sequential calls/s to a child.
    pub child: f64,
    /// Sequential calls/s over a peer link to the same actor.
    pub peer: f64,
    /// find-actor → first call result, asked by the driver.
    pub driver_find: Duration,
    /// The same asked by an actor (a call into it that finds and calls).
    pub actor_find: Duration,
}

/// `ps` of a 100-actor tree (10 daemons, 9 children each): the driver's
/// control socket answering in this process, and the whole `tractor-host
/// ps --json` command.
pub(crate) async fn ps_latency(
    ctx: &Arc<ActorScope>,
    host_exe: &std::path::Path,
    runs: usize,
) -> Result<(Duration, Duration)> {
    let n = Nursery::open(ctx);
    let mut held = Vec::new();
    for i in 0..10 {
        let p = daemon(&n, &format!("svc{i}")).await?;
        // Nine children that sleep an hour (until cancelled), silently.
        held.push(p.run("leaves", args(&(format!("svc{i}."), 9, 3_600_000, false))).map_err(remote)?);
    }
    let id = ctx.tree.id.clone();
    let mine = format!(".{}.", std::process::id());
    let mut socket = None;
    for name in tractor_host::control::addresses().into_iter().filter(|a| a.contains(&mine)) {
        if tractor_host::control::query(&name).await.is_ok_and(|t| t.tree_id == id) {
            socket = Some(name);
        }
    }
    let socket = socket.context("the driver has no control socket")?;
    // Until all 100 are up (their own children start in the background).
    let up = Instant::now();
    loop {
        let t = tractor_host::control::query(&socket).await.map_err(|e| anyhow!(e))?;
        let running = t.actors.iter().filter(|a| a.state == tractor_host::wire::RunState::Running).count();
        if running == 100 {
            break;
        }
        if up.elapsed() > Duration::from_secs(60) {
            bail!("only {running} of 100 actors came up");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut answers = Vec::new();
    for _ in 0..runs.max(1) * 4 {
        let t = Instant::now();
        let tree = tractor_host::control::query(&socket).await.map_err(|e| anyhow!(e))?;
        answers.push(t.elapsed());
        if tree.actors.len() != 100 {
            bail!("ps listed {} actors, not 100", tree.actors.len());
        }
    }
    let mut commands = Vec::new();
    for _ in 0..runs.max(1) {
        // Not blocking the runtime: the driver answering it runs there.
        let mut cmd = tokio::process::Command::new(host_exe);
        cmd.args(["ps", "--json", "--tree", &id]);
        let t = Instant::now();
        let out = cmd.output().await?;
        commands.push(t.elapsed());
        if !out.status.success() || out.stdout.len() < 100 * 200 {
            bail!("tractor-host ps failed: {out:?}");
        }
    }
    drop(held);
    n.cancel().await;
    n.wait().await.map_err(remote)?;
    Ok((median(answers), median(commands)))
}

pub(crate) fn cbor_bytes<T: Serialize>(v: &T) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).expect("serializable");
    out
}

/// Context-stream ping-pong round trips per second and one-way messages
/// per second, with a testbed daemon.
pub(crate) async fn stream_rates(ctx: &Arc<ActorScope>, plan: &Plan) -> Result<(f64, f64)> {
    let me = ("bench", "bench");
    let n = Nursery::open(ctx);
    let p = daemon(&n, "peer").await?;
    let ping = ping_rate(&p, plan).await?;
    let mut rates = Vec::new();
    for _ in 0..3 {
        let (c, _) = p.open_context("produce", args(&[plan.one_way]), me).await.map_err(remote)?;
        let mut s = c.open_stream().map_err(remote)?;
        s.core().send(cbor_bytes(&"go")).await.map_err(remote)?;
        let t = Instant::now();
        let mut count = 0u32;
        while s.recv().await.map_err(remote)?.is_some() {
            count += 1;
        }
        rates.push(count as f64 / t.elapsed().as_secs_f64());
        if count != plan.one_way {
            bail!("produce sent {count} of {} messages", plan.one_way);
        }
        let _ = c.result().await;
    }
    n.cancel().await;
    n.wait().await.map_err(remote)?;
    Ok((ping, median(rates)))
}

/// Context-stream ping-pong round trips per second with daemon `p`
/// (whose `echo-ctx` echoes).
pub(crate) async fn ping_rate(p: &Portal, plan: &Plan) -> Result<f64> {
    let me = ("bench", "bench");
    let mut rates = Vec::new();
    for run in 0..=plan.runs.min(5) {
        let (c, _) = p.open_context("echo-ctx", args(&[0]), me).await.map_err(remote)?;
        let mut s = c.open_stream().map_err(remote)?;
        let msg = cbor_bytes(&7u32);
        let t = Instant::now();
        for _ in 0..plan.round_trips {
            s.core().send(msg.clone()).await.map_err(remote)?;
            s.recv().await.map_err(remote)?.ok_or_else(|| anyhow!("echo ended early"))?;
        }
        if run > 0 {
            rates.push(plan.round_trips as f64 / t.elapsed().as_secs_f64());
        }
        s.core().close();
        if !matches!(c.result().await, ContextOutcome::Returned(_)) {
            bail!("echo-ctx did not return");
        }
    }
    Ok(median(rates))
}

/// Calls per second into one daemon of `component` from `callers`
/// concurrent callers keeping `in_flight` calls each in flight.
pub(crate) async fn concurrent_call_rate(
    ctx: &Arc<ActorScope>,
    component: &str,
    (callers, in_flight): (usize, usize),
    calls: u32,
    runs: usize,
) -> Result<f64> {
    use futures::stream::{FuturesUnordered, StreamExt};
    let n = Nursery::open(ctx);
    let p = daemon_of(&n, "server", component).await?;
    let per_caller = calls as usize / callers;
    let mut rates = Vec::new();
    for run in 0..=runs {
        let t = Instant::now();
        let caller = |p: Portal| async move {
            let mut pending = FuturesUnordered::new();
            let mut sent = 0;
            while sent < per_caller || !pending.is_empty() {
                while sent < per_caller && pending.len() < in_flight {
                    pending.push(p.run("add", args(&(1, 2))).map_err(remote)?.get());
                    sent += 1;
                }
                if let Some(r) = pending.next().await {
                    r.map_err(remote)?;
                }
            }
            Ok::<_, anyhow::Error>(())
        };
        let all = futures::future::join_all((0..callers).map(|_| caller(p.clone()))).await;
        all.into_iter().collect::<Result<Vec<_>>>()?;
        if run > 0 {
            rates.push((per_caller * callers) as f64 / t.elapsed().as_secs_f64());
        }
    }
    n.cancel().await;
    n.wait().await.map_err(remote)?;
    Ok(median(rates))
}

/// A `key: N kB` line of `/proc/<pid>/<file>`, in MB.
pub(crate) fn proc_mb(pid: u32, file: &str, key: &str) -> Result<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/{file}"))?;
    let kb: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow!("no {key} in /proc/{pid}/{file}"))?;
    Ok(kb / 1024.0)
}

/// Resident memory of `pid` in MB.
pub(crate) fn rss_mb(pid: u32) -> Result<f64> {
    proc_mb(pid, "status", "VmRSS:")
}

/// Proportional set size of `pid` in MB: resident memory with each shared
/// page divided among the processes mapping it.
pub(crate) fn pss_mb(pid: u32) -> Result<f64> {
    proc_mb(pid, "smaps_rollup", "Pss:")
}

/// RSS of a `sleep` process once it has exec'd and gone to sleep.
pub(crate) fn idle_process_rss() -> Result<f64> {
    let mut child = Command::new("sleep").arg("30").stdin(Stdio::null()).spawn()?;
    let pid = child.id();
    let asleep = || -> bool {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // "pid (comm) S ...": exec'd (comm is sleep) and blocked in nanosleep.
        stat.contains("(sleep) S")
    };
    let mut rss = Err(anyhow!("`sleep` did not start"));
    for _ in 0..1000 {
        if asleep() {
            rss = rss_mb(pid);
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let _ = child.kill();
    let _ = child.wait();
    rss
}

/// Median RSS and PSS of an idle daemon: of each actor's process, or for
/// thread actors what each adds to ours.
pub(crate) async fn idle_rss(ctx: &Arc<ActorScope>, count: usize) -> Result<(f64, f64)> {
    let n = Nursery::open(ctx);
    let first = daemon(&n, "idle0").await?;
    let me = std::process::id();
    let before = (rss_mb(me)?, pss_mb(me)?);
    let mut portals = vec![first];
    for i in 1..count {
        portals.push(daemon(&n, &format!("idle{i}")).await?);
    }
    let sizes = if ctx.tree.spawn.forced == Some(Backend::Thread) {
        let per = (count - 1).max(1) as f64;
        ((rss_mb(me)? - before.0) / per, (pss_mb(me)? - before.1) / per)
    } else {
        let pids: Vec<u32> = portals.iter().map(|p| p.info().pid).collect();
        (
            median(pids.iter().map(|p| rss_mb(*p)).collect::<Result<Vec<_>>>()?),
            median(pids.iter().map(|p| pss_mb(*p)).collect::<Result<Vec<_>>>()?),
        )
    };
    n.cancel().await;
    n.wait().await.map_err(remote)?;
    Ok(sizes)
}

/// The primes chunks, in order.
pub(crate) fn primes_chunks(span: u64) -> Vec<(u64, u64)> {
    (0..span.div_ceil(PRIMES_CHUNK))
        .map(|i| {
            let lo = PRIMES_FROM + i * PRIMES_CHUNK;
            (lo, (lo + PRIMES_CHUNK).min(PRIMES_FROM + span))
        })
        .collect()
}

/// The pool in plain native Rust: `workers` threads taking chunks in order.
pub(crate) fn native_pool(workers: usize, span: u64, runs: usize) -> (Duration, u64) {
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    let chunks = primes_chunks(span);
    let mut times = Vec::new();
    let mut total = 0;
    for _ in 0..runs {
        let (next, count) = (AtomicUsize::new(0), AtomicU64::new(0));
        let t = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| {
                    while let Some(&(lo, hi)) = chunks.get(next.fetch_add(1, Ordering::Relaxed)) {
                        count.fetch_add(primes::count_primes(lo, hi), Ordering::Relaxed);
                    }
                });
            }
        });
        times.push(t.elapsed());
        total = count.into_inner();
    }
    (median(times), total)
}

/// The same pool with one daemon actor per core, each taking chunks as
/// `count-primes` calls; includes starting and tearing down the workers.
pub(crate) async fn actor_pool(
    ctx: &Arc<ActorScope>,
    workers: usize,
    span: u64,
    runs: usize,
) -> Result<(Duration, u64)> {
    let chunks = primes_chunks(span);
    let mut times = Vec::new();
    let mut total = 0;
    for _ in 0..runs {
        let next = std::cell::Cell::new(0usize);
        let t = Instant::now();
        let n = Nursery::open(ctx);
        let mut portals = Vec::new();
        for i in 0..workers {
            portals.push(n.start_actor(&format!("worker{i}"), Some("testbed")).await.map_err(remote)?);
        }
        let work = portals.iter().map(|p| async {
            let mut sum = 0u64;
            loop {
                let i = next.get();
                next.set(i + 1);
                let Some(&(lo, hi)) = chunks.get(i) else { return Ok::<u64, anyhow::Error>(sum) };
                let v = p.run("count-primes", args(&(lo, hi))).map_err(remote)?.get().await.map_err(remote)?;
                sum += v.deserialized::<u64>()?;
            }
        });
        let sums = futures::future::try_join_all(work).await?;
        n.cancel().await;
        n.wait().await.map_err(remote)?;
        times.push(t.elapsed());
        total = sums.iter().sum();
    }
    Ok((median(times), total))
}

pub(crate) fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// Start `count` daemons at once (each answers one call), cancel them all;
/// returns the time and what was left behind (actors, fds).
pub(crate) async fn many_actors(ctx: &Arc<ActorScope>, count: usize) -> Result<(Duration, usize, usize)> {
    let id = ctx.tree.id.clone();
    let zygote = tree_processes(&id).len(); // the zygote, if any, stays
    let fds = open_fds();
    let t = Instant::now();
    let n = Nursery::open(ctx);
    let spawns = (0..count).map(|i| {
        let n = &n;
        async move { daemon(n, &format!("many{i}")).await.map(drop) }
    });
    futures::future::try_join_all(spawns).await?;
    n.cancel().await;
    n.wait().await.map_err(remote)?;
    let took = t.elapsed();
    drop(n);
    let procs = tree_processes(&id).len().saturating_sub(zygote) + thread_actors(&id);
    Ok((took, procs, open_fds().saturating_sub(fds)))
}

/// Ping-pong of 8-byte messages with a child process over pipes.
pub(crate) fn pipe_round_trips(exe: &std::path::Path, count: u32) -> Result<f64> {
    echo_round_trips(Command::new(exe).arg(PIPE_ECHO_SUBCOMMAND), count)
}

/// Ping-pong of 8-byte messages with `echo`, a command that writes back
/// what it reads.
pub(crate) fn echo_round_trips(echo: &mut Command, count: u32) -> Result<f64> {
    let mut child = echo.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
    let (mut w, mut r) = (child.stdin.take().expect("piped"), child.stdout.take().expect("piped"));
    let mut buf = [0u8; 8];
    let t = Instant::now();
    for i in 0..count as u64 {
        w.write_all(&i.to_le_bytes())?;
        r.read_exact(&mut buf)?;
    }
    let rate = count as f64 / t.elapsed().as_secs_f64();
    drop(w);
    child.wait()?;
    Ok(rate)
}

/// A daemon of `component`'s warm start, medians of `runs`: spawn until it
/// reports ready (process, component load, instantiation), then its first
/// call (`add`).
pub(crate) async fn warm_start(ctx: &Arc<ActorScope>, component: &str, runs: usize) -> Result<(Duration, Duration)> {
    let (mut ready, mut first) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let n = Nursery::open(ctx);
        let t = Instant::now();
        let p = n.start_actor("warm", Some(component)).await.map_err(remote)?;
        if !p.child().wait_ready().await {
            bail!("actor `warm` ({component}) exited before it was ready");
        }
        let up = t.elapsed();
        p.run("add", args(&(1, 2))).map_err(remote)?.get().await.map_err(remote)?;
        first.push(t.elapsed() - up);
        ready.push(up);
        n.cancel().await;
        n.wait().await.map_err(remote)?;
    }
    Ok((median(ready), median(first)))
}
