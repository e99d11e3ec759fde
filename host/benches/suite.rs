//! The benchmark suite, as `cargo bench --bench suite` (add `-- --quick`
//! for the short version): the same figures `tractor-host bench` prints,
//! each with its same-run baseline, ratio and floor.

mod common;

fn main() {
    let opts = tractor_host::bench::Options {
        quick: std::env::args().any(|a| a == "--quick"),
        backends: tractor_host::spawn::Backend::ALL.to_vec(),
        testbed: common::repo().join("guests/testbed"),
        host_exe: common::HOST_EXE.into(),
        only: Vec::new(),
    };
    println!("{}", tractor_host::bench::table_header());
    tractor_host::bench::run(&opts, |f| println!("{}", f.row())).expect("the suite runs");
}
