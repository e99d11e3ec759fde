//! The benchmark suite (`tractor-bench`, and `tractor-host bench`, which
//! runs it).
//!
//! Every figure is measured for each spawn backend where it applies, with
//! warm-up and repeated runs (medians), next to a baseline measured in the
//! same run, and compared with its floor (the goals of issue 6). Results
//! stream out as a table or, with `--json`, one JSON object per figure.

mod figure;
mod measure;
pub mod primes;
mod ssh;

use figure::Floor;
pub use figure::{table_header, Figure};
use measure::*;

use anyhow::{bail, Context as _, Result};
use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::process::Command;
use tractor_host::spawn::Backend;
use tractor_host::Tree;

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
    /// The async testbed manifest (`tractor:actor@0.2.0`), for the `async`
    /// section.
    pub testbed_async: PathBuf,
    /// A manifest with a Python asyncio component `echo` (exporting `add`),
    /// for its warm start in the `async` section.
    pub python_async: PathBuf,
    /// The binary actors run: `tractor-host`, or any that calls
    /// `tractor_host::init` (this suite's own binaries do).
    pub host_exe: PathBuf,
    /// Only these sections (`spawn`, `calls`, `streams`, `rss`, `primes`,
    /// `many`, `async`, `discovery`, `ssh`); all when empty.
    pub only: Vec<String>,
    /// The `[hosts]` inventory the `ssh` section finds its host in.
    pub hosts: Option<PathBuf>,
    /// The host the `ssh` section measures (it is skipped without one).
    pub ssh_host: Option<String>,
}

/// The sections of the suite, in the order they run.
pub const SECTIONS: [&str; 9] = ["spawn", "calls", "streams", "rss", "primes", "many", "async", "discovery", "ssh"];

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
    let want = |section: &str| opts.only.is_empty() || opts.only.iter().any(|o| o == section);
    let async_tree = if want("async") {
        let m = tractor_host::Manifest::load(&opts.testbed_async)
            .with_context(|| format!("the async section needs the async testbed ({})", opts.testbed_async.display()))?;
        Some(Tree::prepare(&m, opts.host_exe.clone())?)
    } else {
        None
    };
    let python_tree = if want("async") {
        let m = tractor_host::Manifest::load(&opts.python_async).with_context(|| {
            format!("the async section needs a Python asyncio actor ({})", opts.python_async.display())
        })?;
        Some(Tree::prepare(&m, opts.host_exe.clone())?)
    } else {
        None
    };
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
        // The discovery section's finder looks `db` up from inside an actor.
        for c in &mut tree.info.components {
            c.grants.discover = vec!["db".into()];
        }
        // In the runtime, so that the driver listens for `ps`.
        let ctx = {
            let _in = rt.enter();
            tree.driver()
        };
        let b = Some(backend);
        rt.block_on(async {
            if want("spawn") {
                let one = time_async(plan.runs, || spawn_and_wait(&ctx, 1)).await?;
                let goal = match backend {
                    Backend::Exec => Some(Floor::AtMost(5.0)),
                    Backend::Forkserver => Some(Floor::AtMost(1.0)),
                    Backend::Thread | Backend::Ssh => None,
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
                let calls = call_rate(&ctx, "testbed", plan.calls, plan.runs.min(5)).await?;
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
            if want("discovery") {
                let l = peer_call_rates(&ctx, plan.calls, plan.runs.min(5)).await?;
                emit(
                    Figure::new("discovery: calls over a peer link", b, l.peer, "/s")
                        .against(l.child)
                        .floor(Some(Floor::AtLeast(l.child / 1.1))),
                );
                emit(
                    Figure::new("discovery: driver find -> first result", b, ms(l.driver_find), "ms")
                        .floor(Some(Floor::AtMost(1.0))),
                );
                emit(
                    Figure::new("discovery: actor find -> first result", b, ms(l.actor_find), "ms")
                        .floor(Some(Floor::AtMost(1.0))),
                );
                let (answer, command) = ps_latency(&ctx, &opts.host_exe, plan.runs.min(5)).await?;
                emit(Figure::new("ps: 100 actors, control socket", b, ms(answer), "ms"));
                emit(
                    Figure::new("ps: 100 actors, tractor-host ps --json", b, ms(command), "ms")
                        .floor(Some(Floor::AtMost(100.0))),
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
            if let Some(atree) = &async_tree {
                let mut atree = atree.clone();
                atree.force_backend(backend);
                atree.info.id = tractor_host::spawn::new_uid();
                let actx = atree.driver();
                // The sync figures these are held against, measured now.
                let sync_calls = call_rate(&ctx, "testbed", plan.calls, plan.runs.min(5)).await?;
                let calls = call_rate(&actx, "testbed-async", plan.calls, plan.runs.min(5)).await?;
                emit(
                    Figure::new("async: sequential portal.run", b, calls, "/s")
                        .against(sync_calls)
                        .floor(Some(Floor::AtLeast(100_000f64.min(0.9 * sync_calls)))),
                );
                let many =
                    concurrent_call_rate(&actx, "testbed-async", (4, 16), plan.calls * 5, plan.runs.min(5)).await?;
                emit(
                    Figure::new("async: concurrent calls, 64 in flight from 4 callers", b, many, "/s")
                        .against(calls)
                        .floor(Some(Floor::AtLeast(200_000.0))),
                );
                let n = tractor_host::Nursery::open(&ctx);
                let sync_ping = ping_rate(&daemon_of(&n, "peer", "testbed").await?, &plan).await?;
                n.cancel().await;
                let an = tractor_host::Nursery::open(&actx);
                let ping = ping_rate(&daemon_of(&an, "peer", "testbed-async").await?, &plan).await?;
                an.cancel().await;
                emit(
                    Figure::new("async: context ping-pong round trips", b, ping, "rt/s")
                        .against(sync_ping)
                        .floor(Some(Floor::AtLeast(100_000f64.min(0.9 * sync_ping)))),
                );
                let sync_spawn = time_async(plan.runs, || spawn_and_wait_of(&ctx, "testbed", 1)).await?;
                let spawn = time_async(plan.runs, || spawn_and_wait_of(&actx, "testbed-async", 1)).await?;
                emit(
                    Figure::new("async: spawn -> first result, 1 actor", b, ms(spawn), "ms")
                        .against(ms(sync_spawn))
                        .floor(Some(Floor::AtMost(1.2 * ms(sync_spawn)))),
                );
            }
            if let Some(ptree) = &python_tree {
                let mut ptree = ptree.clone();
                ptree.force_backend(backend);
                ptree.info.id = tractor_host::spawn::new_uid();
                let (ready, first) = warm_start(&ptree.driver(), "echo", plan.runs.min(5)).await?;
                emit(Figure::new("python asyncio actor: spawn -> ready (load + instantiate)", b, ms(ready), "ms"));
                emit(Figure::new("python asyncio actor: ready -> first call answered", b, ms(first), "ms"));
            }
            Ok(())
        })?;
        drop(ctx);
    }
    match &opts.ssh_host {
        Some(name) if want("ssh") => {
            let host = ssh::host_of(opts.hosts.as_deref(), name)?;
            ssh::section(&tree, &host, &plan, &rt, &mut emit)?;
        }
        None if opts.only.iter().any(|o| o == "ssh") => {
            bail!("the ssh section needs a host: --hosts FILE --ssh-host NAME (bench/loopback-sshd.sh makes one)")
        }
        _ => {}
    }
    Ok(all)
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
