//! `tractor-host`: the command-line face of the `tractor_host` library.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use tractor_host::manifest::Manifest;
use tractor_host::tree::Tree;

/// Run trees of WebAssembly actors with structured concurrency.
#[derive(Parser)]
#[command(name = "tractor-host", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build (if needed) and run a tree: start its root actor and call its entry export.
    Run {
        /// A folder holding `tractor.toml`, or a manifest file.
        manifest: PathBuf,
        /// Start every actor with this backend, whatever the manifest and
        /// the guests ask for: exec, forkserver or thread.
        #[arg(long, value_name = "BACKEND")]
        spawn: Option<tractor_host::spawn::Backend>,
    },
    /// Validate a manifest and its components without running anything.
    Check {
        /// A folder holding `tractor.toml`, or a manifest file.
        manifest: PathBuf,
    },
    /// Build and precompile every component of a manifest without running it.
    Build {
        /// A folder holding `tractor.toml`, or a manifest file.
        manifest: PathBuf,
    },
    /// Run the benchmark suite (from the repository root): spawn latency,
    /// calls, streams, memory and a worker pool, per spawn backend, each
    /// against a baseline measured in the same run.
    Bench {
        /// Fewer runs and smaller workloads (under a minute).
        #[arg(long)]
        quick: bool,
        /// One JSON object per figure instead of a table.
        #[arg(long)]
        json: bool,
        /// Only this backend (repeatable; default: all three).
        #[arg(long = "spawn", value_name = "BACKEND")]
        backends: Vec<tractor_host::spawn::Backend>,
        /// The testbed manifest the suite runs.
        #[arg(long, default_value = "guests/testbed")]
        testbed: PathBuf,
        /// Only this section (repeatable): spawn, calls, streams, rss, primes, many.
        #[arg(long, value_name = "SECTION", value_parser = clap::builder::PossibleValuesParser::new(tractor_host::bench::SECTIONS))]
        only: Vec<String>,
    },
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TRACTOR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,tractor::guest=info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

fn main() -> ExitCode {
    init_tracing();
    // The hidden actor subcommand bypasses clap: it is not for people.
    let sub = std::env::args_os().nth(1);
    if sub.as_ref().is_some_and(|a| a == tractor_host::spawn::ACTOR_SUBCOMMAND) {
        return ExitCode::from(tractor_host::actor::main() as u8);
    }
    if sub.as_ref().is_some_and(|a| a == tractor_host::bench::PIPE_ECHO_SUBCOMMAND) {
        return ExitCode::from(tractor_host::bench::pipe_echo() as u8);
    }
    if sub.as_ref().is_some_and(|a| a == tractor_host::spawn::ZYGOTE_SUBCOMMAND) {
        return ExitCode::from(tractor_host::actor::zygote::main() as u8);
    }
    let cli = Cli::parse();
    match cli.command {
        Command::Check { manifest } => {
            let report = tractor_host::check::check(&manifest);
            for p in &report.problems {
                println!("{}: {p}", report.file.display());
            }
            if report.problems.is_empty() {
                println!("{}: ok", report.file.display());
                ExitCode::SUCCESS
            } else {
                println!("{} problem(s)", report.problems.len());
                ExitCode::from(1)
            }
        }
        Command::Build { manifest } => match prepare(&manifest) {
            Ok(tree) => {
                for c in &tree.info.components {
                    println!("{}: {}", c.name, c.cwasm.display());
                }
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Bench { quick, json, backends, testbed, only } => {
            let host_exe = match Tree::current_exe() {
                Ok(e) => e,
                Err(e) => {
                    eprintln!("tractor: error: {e:#}");
                    return ExitCode::from(2);
                }
            };
            let backends = if backends.is_empty() { tractor_host::spawn::Backend::ALL.to_vec() } else { backends };
            let opts = tractor_host::bench::Options { quick, backends, testbed, host_exe, only };
            if !json {
                println!("{}", tractor_host::bench::table_header());
            }
            let result = tractor_host::bench::run(&opts, |f| {
                if json {
                    println!("{}", serde_json::to_string(f).unwrap_or_default());
                } else {
                    println!("{}", f.row());
                }
            });
            match result {
                Ok(_) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("tractor: bench failed: {e:#}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Run { manifest, spawn } => {
            let mut tree = match prepare(&manifest) {
                Ok(t) => t,
                Err(code) => return code,
            };
            if let Some(b) = spawn {
                tree.force_backend(b);
            }
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .event_interval(tractor_host::wire::frame::EVENT_INTERVAL)
                .enable_all()
                .build()
                .expect("cannot start tokio");
            let code = rt.block_on(run(tree));
            rt.shutdown_timeout(std::time::Duration::from_millis(100));
            code
        }
    }
}

fn prepare(path: &std::path::Path) -> Result<Tree, ExitCode> {
    let manifest = Manifest::load(path).map_err(|e| {
        eprintln!("tractor: error: {e}");
        ExitCode::from(2)
    })?;
    let exe = Tree::current_exe().map_err(|e| {
        eprintln!("tractor: error: {e:#}");
        ExitCode::from(2)
    })?;
    Tree::prepare(&manifest, exe).map_err(|e| {
        eprintln!("tractor: error: {e:#}");
        ExitCode::from(2)
    })
}

async fn run(tree: Tree) -> ExitCode {
    use tokio::signal::unix::{signal, SignalKind};
    let ctx = tree.driver();
    let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
        eprintln!("tractor: error: cannot install signal handlers");
        return ExitCode::from(70);
    };
    let signals = ctx.clone();
    let interrupted = tokio::spawn(async move {
        let code = tokio::select! {
            _ = int.recv() => 130,
            _ = term.recv() => 143,
        };
        eprintln!("tractor: interrupted; tearing the tree down");
        signals.cancel_actor("tractor-host (signal)");
        code
    });
    let outcome = tree.run_root(&ctx).await;
    if interrupted.is_finished() {
        return ExitCode::from(interrupted.await.unwrap_or(130) as u8);
    }
    interrupted.abort();
    match outcome {
        Ok(ciborium::Value::Null) => ExitCode::SUCCESS,
        Ok(v) => {
            println!("{}", tractor_host::wire::diagnostic(&v));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprint!("tractor: the actor tree failed:\n{e}");
            ExitCode::from(1)
        }
    }
}
