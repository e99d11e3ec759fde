//! `tractor-bench` (also run as `tractor-host bench`): the benchmark suite,
//! as a table or as JSON lines.

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use tractor_host::spawn::Backend;

/// Run the tractor benchmark suite (from the repository root): spawn
/// latency, calls, streams, memory and a worker pool, per spawn backend,
/// each against a baseline measured in the same run.
#[derive(Parser)]
#[command(name = "tractor-bench", version, about)]
struct Cli {
    /// Fewer runs and smaller workloads (under a minute).
    #[arg(long)]
    quick: bool,
    /// One JSON object per figure instead of a table.
    #[arg(long)]
    json: bool,
    /// Only this backend (repeatable; default: all three).
    #[arg(long = "spawn", value_name = "BACKEND")]
    backends: Vec<Backend>,
    /// The testbed manifest the suite runs.
    #[arg(long, default_value = "guests/testbed")]
    testbed: PathBuf,
    /// The async testbed manifest (the `async` section).
    #[arg(long, default_value = "guests/testbed-async")]
    testbed_async: PathBuf,
    /// A manifest with a Python asyncio component `echo` (the `async` section).
    #[arg(long, default_value = "examples/asyncio_echo")]
    python_async: PathBuf,
    /// Only this section (repeatable): spawn, calls, streams, rss, primes, many, async, discovery, ssh.
    #[arg(long, value_name = "SECTION", value_parser = clap::builder::PossibleValuesParser::new(tractor_bench::SECTIONS))]
    only: Vec<String>,
    /// The `[hosts]` inventory for the ssh section.
    #[arg(long, value_name = "FILE")]
    hosts: Option<PathBuf>,
    /// Measure the ssh backend on this host of `--hosts` (the ssh section).
    #[arg(long, value_name = "NAME")]
    ssh_host: Option<String>,
    /// The binary actors run (default: the `tractor-host` beside this one,
    /// else this one).
    #[arg(long, value_name = "PATH")]
    host_exe: Option<PathBuf>,
}

fn main() -> ExitCode {
    tractor_bench::init();
    let cli = Cli::parse();
    let Ok(me) = std::env::current_exe() else {
        eprintln!("tractor-bench: cannot find its own executable");
        return ExitCode::from(2);
    };
    let beside = me.with_file_name("tractor-host");
    let host_exe = cli.host_exe.unwrap_or(if beside.is_file() { beside } else { me });
    let backends = if cli.backends.is_empty() { Backend::ALL.to_vec() } else { cli.backends };
    let opts = tractor_bench::Options {
        quick: cli.quick,
        backends,
        testbed: cli.testbed,
        testbed_async: cli.testbed_async,
        python_async: cli.python_async,
        host_exe,
        only: cli.only,
        hosts: cli.hosts,
        ssh_host: cli.ssh_host,
    };
    if !cli.json {
        println!("{}", tractor_bench::table_header());
    }
    let result = tractor_bench::run(&opts, |f| {
        if cli.json {
            println!("{}", serde_json::to_string(f).unwrap_or_default());
        } else {
            println!("{}", f.row());
        }
    });
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tractor-bench: the suite failed: {e:#}");
            ExitCode::from(1)
        }
    }
}
