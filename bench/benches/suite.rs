//! The benchmark suite, as `cargo bench --bench suite` (add `-- --quick`
//! for the short version): the same figures `tractor-bench` (and
//! `tractor-host bench`) prints, each with its same-run baseline, ratio and
//! floor. Actors run the `tractor-bench` binary (it calls
//! `tractor_bench::init`, so it serves as an actor process too).

fn main() {
    tractor_bench::init();
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let opts = tractor_bench::Options {
        quick: std::env::args().any(|a| a == "--quick"),
        backends: tractor_host::spawn::Backend::ALL.to_vec(),
        testbed: repo.join("guests/testbed"),
        testbed_async: repo.join("guests/testbed-async"),
        python_async: repo.join("examples/asyncio_echo"),
        host_exe: env!("CARGO_BIN_EXE_tractor-bench").into(),
        only: Vec::new(),
        hosts: None,
        ssh_host: None,
    };
    println!("{}", tractor_bench::table_header());
    tractor_bench::run(&opts, |f| println!("{}", f.row())).expect("the suite runs");
}
