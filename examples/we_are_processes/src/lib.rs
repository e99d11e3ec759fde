//! `we_are_processes`: every actor is a real OS process, and an error in the
//! root takes the whole tree down with it.

use std::time::Duration;

tractor::bindings!(
    "../../wit",
    r#"
    package example:we-are-processes;
    world we-are-processes {
        include tractor:actor/imports@0.1.0;
        use tractor:actor/types@0.1.0.{error};
        export main: func() -> result<_, error>;
        export worker: func() -> result<_, error>;
    }
"#
);

struct Actor;

impl Guest for Actor {
    fn main() -> tractor::Result<()> {
        tractor::open_nursery(|n| {
            for i in 0..tractor::available_parallelism() {
                n.run_in_actor(&format!("worker_{i}"), "worker", &())?;
            }
            println!("This process tree will self-destruct in 1 sec...");
            tractor::sleep(Duration::from_secs(1))?;
            Err(tractor::Error::new("Self Destructed"))
        })
    }

    fn worker() -> tractor::Result<()> {
        let me = tractor::current();
        println!("{} is running in process {}", me.name, me.pid);
        tractor::sleep_forever()
    }
}

export!(Actor);
