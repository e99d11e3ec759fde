//! `tractor-host`: the command-line face of the `tractor_host` library.

mod cli;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use tractor_host::{Manifest, Tree};

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
        /// the guests ask for: exec, forkserver or thread; or `ssh:<host>`
        /// to run the whole tree on a host of the manifest's [hosts].
        #[arg(long, value_name = "BACKEND")]
        spawn: Option<String>,
        /// A file of `[hosts.<name>]` tables (as in a manifest) to add to
        /// the manifest's: keep an inventory of machines apart from trees.
        #[arg(long, value_name = "FILE")]
        hosts: Option<PathBuf>,
    },
    /// Write a new actor project (its own Cargo workspace or app, a
    /// tractor.toml, a WIT world, the tractor WIT and helpers) into DIR.
    New {
        /// The folder to create (it must not exist, or be empty).
        dir: PathBuf,
        /// The language the actors are written in.
        #[arg(long, value_enum, default_value_t = cli::new::Lang::Rust)]
        lang: cli::new::Lang,
        /// What the actors do.
        #[arg(long, value_enum, default_value_t = cli::new::Template::Hello)]
        template: cli::new::Template,
    },
    /// The component cache: list it, sweep it, clear it.
    Cache {
        #[command(subcommand)]
        command: cli::cache::CacheCommand,
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
    /// List every running tree of this user, each actor in its place:
    /// state, calls, uptime, memory, CPU.
    Ps(cli::ps::PsArgs),
    /// Run the benchmark suite (the `tractor-bench` binary, found beside
    /// this one or on PATH) with these arguments; see `tractor-bench --help`.
    #[command(disable_help_flag = true)]
    Bench {
        /// Arguments for tractor-bench (`--quick`, `--json`, `--spawn B`, `--only S`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TRACTOR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,tractor::guest=info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

fn main() -> ExitCode {
    init_tracing();
    // The hidden actor and zygote subcommands bypass clap: they are not for
    // people.
    if let Some(code) = tractor_host::run_internal_subcommand() {
        return ExitCode::from(code as u8);
    }
    let cli = Cli::parse();
    match cli.command {
        Command::Check { manifest } => {
            let report = tractor_host::check(&manifest);
            for (name, model) in &report.models {
                let how = match model {
                    tractor_host::Model::Sync => "one call at a time, one instance per context",
                    tractor_host::Model::Async => "one instance, every call and context a concurrent task",
                };
                println!("{}: component `{name}`: {model} ({how})", report.file.display());
            }
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
        Command::Bench { args } => bench(&args),
        Command::Cache { command } => cli::cache::run(command),
        Command::Ps(args) => cli::ps::run(args),
        Command::New { dir, lang, template } => match cli::new::create(&dir, lang, template) {
            Ok(files) => {
                println!(
                    "created {} ({} files): cd {} && tractor-host run .",
                    dir.display(),
                    files.len(),
                    dir.display()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("tractor: error: {e}");
                ExitCode::from(2)
            }
        },
        Command::Run { manifest, spawn, hosts } => {
            let mut tree = match prepare(&manifest) {
                Ok(t) => t,
                Err(code) => return code,
            };
            if let Some(file) = hosts {
                match tractor_host::load_hosts(&file) {
                    Ok(h) => tree.add_hosts(h),
                    Err(e) => {
                        eprintln!("tractor: error: {e}");
                        return ExitCode::from(2);
                    }
                }
            }
            match spawn.as_deref().map(|s| (s, s.strip_prefix("ssh:"))) {
                None => {}
                Some((_, Some(host))) => {
                    if let Err(e) = tree.force_host(host) {
                        eprintln!("tractor: error: --spawn: {e}");
                        return ExitCode::from(2);
                    }
                }
                Some((b, None)) => match b.parse() {
                    Ok(b) => tree.force_backend(b),
                    Err(e) => {
                        eprintln!("tractor: error: --spawn: {e} or ssh:<host>");
                        return ExitCode::from(2);
                    }
                },
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

/// `tractor-host bench`: run `tractor-bench` (beside this binary, else on
/// PATH), with this binary as the actors'.
fn bench(args: &[std::ffi::OsString]) -> ExitCode {
    let me = std::env::current_exe().ok();
    let beside = me.as_ref().map(|m| m.with_file_name("tractor-bench")).filter(|p| p.is_file());
    let exe = beside.unwrap_or_else(|| "tractor-bench".into());
    let mut cmd = std::process::Command::new(&exe);
    cmd.args(args);
    if let Some(me) = &me {
        cmd.arg("--host-exe").arg(me);
    }
    match cmd.status() {
        Ok(s) => ExitCode::from(s.code().unwrap_or(1) as u8),
        Err(e) => {
            eprintln!(
                "tractor: cannot run {} ({e}): the suite is the tractor-bench binary; build it beside tractor-host with \
                 `cargo build --release -p tractor-bench`, or install it with `cargo install --path bench`",
                exe.display()
            );
            ExitCode::from(2)
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
    Tree::prepare_with(&manifest, exe, &cli::progress::Shown::new()).map_err(|e| {
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
