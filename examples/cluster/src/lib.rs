//! `cluster`: the seed's `open_actor_cluster`: one actor per core, started
//! concurrently, then cancelled together.

tractor::bindings!(
    "../../wit",
    r#"
    package example:cluster;
    world cluster {
        include tractor:actor/imports@0.1.0;
        use tractor:actor/types@0.1.0.{error};
        export main: func() -> result<_, error>;
        export hello: func() -> string;
    }
"#
);

struct Actor;

impl Guest for Actor {
    fn main() -> tractor::Result<()> {
        tractor::open_nursery(|n| {
            let count = tractor::available_parallelism().max(1);
            let portals: Vec<_> =
                (0..count).map(|i| n.start_actor(&format!("cluster_{i}"))).collect::<Result<_, _>>()?;
            let calls = portals.iter().map(|p| p.start::<String, _>("hello", &())).collect::<Result<Vec<_>, _>>()?;
            for (_, uid) in tractor::as_completed(calls) {
                uid?;
            }
            n.cancel()?;
            println!("cancelled {count} actors");
            Ok(())
        })
    }

    fn hello() -> String {
        let me = tractor::current();
        println!("Yo i am actor {}", me.uid);
        me.uid
    }
}

export!(Actor);
