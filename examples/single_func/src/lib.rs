//! `single_func`: run one function in a child actor and collect its result.

tractor::bindings!(
    "../../wit",
    r#"
    package example:single-func;
    world single-func {
        include tractor:actor/imports@0.1.0;
        use tractor:actor/types@0.1.0.{error};
        export main: func() -> result<_, error>;
        export burn-cpu: func() -> u32;
    }
"#
);

/// Spin for a while so the work is visible in `top`.
fn burn() -> u64 {
    let mut x: u64 = 0;
    for i in 0..30_000_000u64 {
        x = x.wrapping_mul(31).wrapping_add(i);
    }
    x
}

struct Actor;

impl Guest for Actor {
    fn main() -> tractor::Result<()> {
        tractor::open_nursery(|n| {
            let portal = n.run_in_actor("burner", "burn-cpu", &())?;
            // The root burns CPU too while the child works.
            std::hint::black_box(burn());
            let pid: u32 = portal.result()?;
            println!("Collected subproc {pid}");
            Ok(())
        })
    }

    fn burn_cpu() -> u32 {
        std::hint::black_box(burn());
        tractor::current().pid
    }
}

export!(Actor);
