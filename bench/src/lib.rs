//! The benchmark suite (`tractor-bench`, and `tractor-host bench`, which
//! runs it).
//!
//! Every figure is measured for each spawn backend where it applies, with
//! warm-up and repeated runs (medians), next to a baseline measured in the
//! same run, and compared with its floor (the goals of issue 6). Results
//! stream out as a table or, with `--json`, one JSON object per figure.

pub mod primes;

use anyhow::{anyhow, bail, Context as _, Result};
use serde::Serialize;
use std::future::Future;
use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tractor_host::census::{thread_actors, tree_processes};
use tractor_host::spawn::Backend;
use tractor_host::wire::ContextOutcome;
use tractor_host::{ActorScope, Nursery, Portal, Tree};

/// The hidden subcommand that makes a program running the suite the far
/// end of the raw-pipe baseline (an echo of 8-byte messages on
/// stdin/stdout).
pub const PIPE_ECHO_SUBCOMMAND: &str = "__pipe-echo";

/// Run the hidden subcommand this process was started as (the pipe
/// baseline's echo, or an actor: see `tractor_host::init`) and exit;
/// otherwise return at once. A program running the suite calls it first
/// thing in `main`: the suite re-executes it.
pub fn init() {
    if std::env::args_os().nth(1).is_some_and(|a| a == PIPE_ECHO_SUBCOMMAND) {
        std::process::exit(pipe_echo());
    }
    tractor_host::init();
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Fewer runs and smaller workloads: the whole suite in under a minute.
    pub quick: bool,
    /// Backends to measure (all of them by default).
    pub backends: Vec<Backend>,
    /// The testbed manifest (folder or file): the component every figure
    /// but the primes pool's baseline runs.
    pub testbed: PathBuf,
    /// The binary actors run: `tractor-host`, or any that calls
    /// `tractor_host::init` (this suite's own binaries do).
    pub host_exe: PathBuf,
    /// Only these sections (`spawn`, `calls`, `streams`, `rss`, `primes`,
    /// `many`); all when empty.
    pub only: Vec<String>,
}

/// The sections of the suite, in the order they run.
pub const SECTIONS: [&str; 6] = ["spawn", "calls", "streams", "rss", "primes", "many"];

/// One measured figure.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    /// What was measured.
    pub name: &'static str,
    /// The spawn backend, for figures that depend on one.
    pub backend: Option<Backend>,
    /// The median measurement.
    pub value: f64,
    /// Its unit.
    pub unit: &'static str,
    /// The same-run baseline, in the same unit.
    pub baseline: Option<f64>,
    /// `value / baseline`.
    pub ratio: Option<f64>,
    /// The goal, e.g. `<= 5 ms`.
    pub floor: Option<String>,
    /// Whether the goal was met.
    pub meets: Option<bool>,
}

/// A goal for a figure: at most or at least a value.
#[derive(Clone, Copy)]
enum Floor {
    AtMost(f64),
    AtLeast(f64),
}

impl Figure {
    fn new(name: &'static str, backend: Option<Backend>, value: f64, unit: &'static str) -> Figure {
        Figure { name, backend, value, unit, baseline: None, ratio: None, floor: None, meets: None }
    }

    fn against(mut self, baseline: f64) -> Figure {
        self.baseline = Some(baseline);
        self.ratio = Some(self.value / baseline);
        self
    }

    fn floor(mut self, floor: Option<Floor>) -> Figure {
        if let Some(f) = floor {
            let (text, ok) = match f {
                Floor::AtMost(x) => (format!("<= {} {}", round(x), self.unit), self.value <= x),
                Floor::AtLeast(x) => (format!(">= {} {}", round(x), self.unit), self.value >= x),
            };
            self.floor = Some(text);
            self.meets = Some(ok);
        }
        self
    }

    /// The figure as one row of the table (see [`table_header`]).
    pub fn row(&self) -> String {
        let num = |v: f64| if v >= 1000.0 { format!("{v:.0}") } else { format!("{v:.3}") };
        format!(
            "{:<46} {:<10} {:>12} {:<5} {:>12} {:>9} {:<16} {}",
            self.name,
            self.backend.map_or("-".to_string(), |b| b.to_string()),
            num(self.value),
            self.unit,
            self.baseline.map_or("-".into(), num),
            self.ratio.map_or("-".into(), |r| format!("{r:.2}x")),
            self.floor.as_deref().unwrap_or("-"),
            match self.meets {
                Some(true) => "ok",
                Some(false) => "BELOW",
                None => "",
            }
        )
    }
}

/// The header line for [`Figure::row`].
pub fn table_header() -> String {
    format!(
        "{:<46} {:<10} {:>12} {:<5} {:>12} {:>9} {:<16} {}",
        "figure", "backend", "value", "unit", "baseline", "ratio", "floor", "goal"
    )
}

/// Workload sizes and repetitions.
struct Plan {
    runs: usize,
    round_trips: u32,
    one_way: u32,
    calls: u32,
    many: usize,
    idle: usize,
    primes_span: u64,
}

impl Plan {
    fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                runs: 7,
                round_trips: 2_000,
                one_way: 100_000,
                calls: 2_000,
                many: 1_000,
                idle: 5,
                primes_span: 10_000,
            }
        } else {
            Plan {
                runs: 25,
                round_trips: 10_000,
                one_way: 1_000_000,
                calls: 10_000,
                many: 1_000,
                idle: 10,
                primes_span: 60_000,
            }
        }
    }
}

/// Where the primes pool's numbers start (large enough that trial division
/// does real work per number).
const PRIMES_FROM: u64 = 100_000_000_000;
/// Numbers per pool task.
const PRIMES_CHUNK: u64 = 250;

/// Run the suite, handing each figure to `report` as soon as it is known.
pub fn run(opts: &Options, mut report: impl FnMut(&Figure)) -> Result<Vec<Figure>> {
    // Every wasmtime error would capture a host backtrace otherwise.
    std::env::remove_var("RUST_BACKTRACE");
    let manifest = tractor_host::Manifest::load(&opts.testbed)
        .with_context(|| format!("the suite needs the testbed component ({})", opts.testbed.display()))?;
    if !manifest.components.contains_key("testbed") {
        bail!("{}: no component named `testbed`", manifest.file.display());
    }
    let tree = Tree::prepare(&manifest, opts.host_exe.clone())?;
    let plan = Plan::new(opts.quick);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .event_interval(tractor_host::wire::frame::EVENT_INTERVAL)
        .build()?;
    let mut all = Vec::new();
    let mut emit = |f: Figure| {
        report(&f);
        all.push(f);
    };

    let want = |section: &str| opts.only.is_empty() || opts.only.iter().any(|o| o == section);
    let fork_exec = if want("spawn") {
        let d = median_duration(plan.runs, || {
            let s = Command::new("/bin/true").status().expect("run /bin/true");
            assert!(s.success());
        });
        emit(Figure::new("baseline: fork+exec /bin/true", None, ms(d), "ms"));
        ms(d)
    } else {
        f64::NAN
    };
    let pipe = if want("streams") {
        let me = std::env::current_exe()?;
        let rate = median((0..3).map(|_| pipe_round_trips(&me, plan.round_trips)).collect::<Result<_>>()?);
        emit(Figure::new("baseline: raw pipe ping-pong, 2 processes", None, rate, "rt/s"));
        rate
    } else {
        f64::NAN
    };
    let idle_process = if want("rss") {
        let rss = idle_process_rss()?;
        emit(Figure::new("baseline: idle `sleep` process RSS", None, rss, "MB"));
        rss
    } else {
        f64::NAN
    };
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (native_primes, native_count) = if want("primes") {
        let (d, count) = native_pool(workers, plan.primes_span, plan.runs.min(3));
        emit(Figure::new("baseline: primes pool, native threads", None, ms(d), "ms"));
        (ms(d), count)
    } else {
        (f64::NAN, 0)
    };

    for &backend in &opts.backends {
        let mut tree = tree.clone();
        tree.force_backend(backend);
        tree.info.id = tractor_host::spawn::new_uid();
        let ctx = tree.driver();
        let b = Some(backend);
        rt.block_on(async {
            if want("spawn") {
                let one = time_async(plan.runs, || spawn_and_wait(&ctx, 1)).await?;
                let goal = match backend {
                    Backend::Exec => Some(Floor::AtMost(5.0)),
                    Backend::Forkserver => Some(Floor::AtMost(1.0)),
                    Backend::Thread => None,
                };
                emit(Figure::new("spawn -> first result, 1 actor", b, ms(one), "ms").against(fork_exec).floor(goal));
                let ten = time_async(plan.runs, || spawn_and_wait(&ctx, 10)).await?;
                emit(
                    Figure::new("spawn -> all results, 10 actors at once", b, ms(ten), "ms")
                        .against(fork_exec)
                        .floor(Some(Floor::AtMost(40.0))),
                );
            }
            if want("calls") {
                let calls = call_rate(&ctx, plan.calls, plan.runs.min(5)).await?;
                emit(Figure::new("sequential portal.run", b, calls, "/s").floor(Some(Floor::AtLeast(40_000.0))));
            }
            if want("streams") {
                let (ping, one_way) = stream_rates(&ctx, &plan).await?;
                emit(
                    Figure::new("context ping-pong round trips", b, ping, "rt/s")
                        .against(pipe)
                        .floor(Some(Floor::AtLeast(50_000.0))),
                );
                emit(Figure::new("one-way stream messages", b, one_way, "msg/s").against(pipe));
            }
            if want("rss") {
                let (rss, pss) = idle_rss(&ctx, plan.idle).await?;
                emit(
                    Figure::new("idle actor RSS", b, rss, "MB").against(idle_process).floor(Some(Floor::AtMost(10.0))),
                );
                emit(Figure::new("idle actor PSS (shared pages split)", b, pss, "MB"));
            }
            if want("primes") {
                let (pool, count) = actor_pool(&ctx, workers, plan.primes_span, plan.runs.min(3)).await?;
                if count != native_count {
                    bail!("the primes pool ({backend}) counted {count} primes, native threads {native_count}");
                }
                emit(
                    Figure::new("primes pool, 1 worker per core", b, ms(pool), "ms")
                        .against(native_primes)
                        .floor(Some(Floor::AtMost(1.3 * native_primes))),
                );
            }
            if want("many") {
                let (took, leaked_procs, leaked_fds) = many_actors(&ctx, plan.many).await?;
                emit(
                    Figure::new("1000 actors: spawn + teardown", b, took.as_secs_f64(), "s")
                        .floor(Some(Floor::AtMost(3.0))),
                );
                emit(
                    Figure::new("1000 actors: leftover processes + fds", b, (leaked_procs + leaked_fds) as f64, "")
                        .floor(Some(Floor::AtMost(0.0))),
                );
            }
            Ok(())
        })?;
        drop(ctx);
    }
    Ok(all)
}

/// A floor as people write it: 38.6, not 38.6003397.
fn round(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median<T: PartialOrd + Copy>(mut v: Vec<T>) -> T {
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    v[v.len() / 2]
}

fn median_duration(runs: usize, mut f: impl FnMut()) -> Duration {
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
async fn time_async<F: Future<Output = Result<Duration>>>(runs: usize, mut f: impl FnMut() -> F) -> Result<Duration> {
    for _ in 0..3 {
        f().await?;
    }
    let mut times = Vec::new();
    for _ in 0..runs {
        times.push(f().await?);
    }
    Ok(median(times))
}

fn remote(e: tractor_host::RemoteError) -> anyhow::Error {
    anyhow!("{e}")
}

fn args<T: Serialize>(v: &T) -> ciborium::Value {
    ciborium::Value::serialized(v).expect("serializable")
}

/// Start `count` run-in-actor children at once; the time until every
/// result is in (the children's exit is waited for, but not timed).
async fn spawn_and_wait(ctx: &Arc<ActorScope>, count: usize) -> Result<Duration> {
    let t = Instant::now();
    let n = Nursery::open(ctx);
    let mut portals = Vec::new();
    for i in 0..count {
        portals.push(n.run_in_actor(&format!("w{i}"), Some("testbed"), "add", args(&(i, 1))).await.map_err(remote)?);
    }
    for p in &portals {
        p.result().await.map_err(remote)?;
    }
    let took = t.elapsed();
    n.wait().await.map_err(remote)?;
    Ok(took)
}

async fn daemon(n: &Nursery, name: &str) -> Result<Portal> {
    let p = n.start_actor(name, Some("testbed")).await.map_err(remote)?;
    p.run("add", args(&(1, 1))).map_err(remote)?.get().await.map_err(remote)?;
    Ok(p)
}

/// Sequential `portal.run` calls per second into one daemon.
async fn call_rate(ctx: &Arc<ActorScope>, calls: u32, runs: usize) -> Result<f64> {
    let n = Nursery::open(ctx);
    let p = daemon(&n, "calls").await?;
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
    n.cancel().await;
    n.wait().await.map_err(remote)?;
    Ok(median(rates))
}

fn cbor_bytes<T: Serialize>(v: &T) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).expect("serializable");
    out
}

/// Context-stream ping-pong round trips per second and one-way messages
/// per second, with a testbed daemon.
async fn stream_rates(ctx: &Arc<ActorScope>, plan: &Plan) -> Result<(f64, f64)> {
    let me = ("bench", "bench");
    let n = Nursery::open(ctx);
    let p = daemon(&n, "peer").await?;
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
    let ping = median(rates);
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

/// A `key: N kB` line of `/proc/<pid>/<file>`, in MB.
fn proc_mb(pid: u32, file: &str, key: &str) -> Result<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/{file}"))?;
    let kb: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow!("no {key} in /proc/{pid}/{file}"))?;
    Ok(kb / 1024.0)
}

/// Resident memory of `pid` in MB.
fn rss_mb(pid: u32) -> Result<f64> {
    proc_mb(pid, "status", "VmRSS:")
}

/// Proportional set size of `pid` in MB: resident memory with each shared
/// page divided among the processes mapping it.
fn pss_mb(pid: u32) -> Result<f64> {
    proc_mb(pid, "smaps_rollup", "Pss:")
}

/// RSS of a `sleep` process once it has exec'd and gone to sleep.
fn idle_process_rss() -> Result<f64> {
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
async fn idle_rss(ctx: &Arc<ActorScope>, count: usize) -> Result<(f64, f64)> {
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
fn primes_chunks(span: u64) -> Vec<(u64, u64)> {
    (0..span.div_ceil(PRIMES_CHUNK))
        .map(|i| {
            let lo = PRIMES_FROM + i * PRIMES_CHUNK;
            (lo, (lo + PRIMES_CHUNK).min(PRIMES_FROM + span))
        })
        .collect()
}

/// The pool in plain native Rust: `workers` threads taking chunks in order.
fn native_pool(workers: usize, span: u64, runs: usize) -> (Duration, u64) {
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
async fn actor_pool(ctx: &Arc<ActorScope>, workers: usize, span: u64, runs: usize) -> Result<(Duration, u64)> {
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

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// Start `count` daemons at once (each answers one call), cancel them all;
/// returns the time and what was left behind (actors, fds).
async fn many_actors(ctx: &Arc<ActorScope>, count: usize) -> Result<(Duration, usize, usize)> {
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
fn pipe_round_trips(exe: &std::path::Path, count: u32) -> Result<f64> {
    let mut child = Command::new(exe).arg(PIPE_ECHO_SUBCOMMAND).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
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

/// The far end of the raw-pipe baseline: echo 8-byte messages.
fn pipe_echo() -> i32 {
    let (mut i, mut o) = (std::io::stdin().lock(), std::io::stdout().lock());
    let mut buf = [0u8; 8];
    while i.read_exact(&mut buf).is_ok() {
        if o.write_all(&buf).and_then(|_| o.flush()).is_err() {
            break;
        }
    }
    0
}
