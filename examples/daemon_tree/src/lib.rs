//! `daemon_tree`: root → 2 branches → 2 leaves each (7 processes), every
//! actor asleep until cancelled. Each level reports up through a context's
//! `started` value, so the root knows when the whole tree is running.

tractor::bindings!(
    "../../wit",
    r#"
    package example:daemon-tree;
    world daemon-tree {
        include tractor:actor/imports@0.1.0;
        use tractor:actor/types@0.1.0.{error};
        use tractor:actor/runtime@0.1.0.{context};
        export main: func() -> result<_, error>;
        export grow: func(ctx: borrow<context>, levels: u32) -> result<_, error>;
    }
"#
);

const WIDTH: u32 = 2;

/// Start `WIDTH` children that each grow `levels` more levels; returns how
/// many actors are running below us, once they all are.
fn grow_children(n: &tractor::Nursery, levels: u32, contexts: &mut Vec<tractor::Context>) -> tractor::Result<u32> {
    let me = tractor::current().name;
    let mut total = 0;
    for i in 0..WIDTH {
        let name = if me == "root" { format!("branch_{i}") } else { format!("{me}.leaf_{i}") };
        let portal = n.start_actor(&name)?;
        let (ctx, below): (_, u32) = portal.open_context("grow", &(levels,))?;
        total += below;
        contexts.push(ctx);
    }
    Ok(total)
}

struct Actor;

impl Guest for Actor {
    fn main() -> tractor::Result<()> {
        tractor::open_nursery(|n| {
            let mut contexts = Vec::new();
            let total = 1 + grow_children(n, 1, &mut contexts)?;
            println!("tree up: {total} actors");
            tractor::sleep_forever()
        })
    }

    fn grow(ctx: &Context, levels: u32) -> tractor::Result<()> {
        let ctx = tractor::callee(ctx);
        tractor::open_nursery(|n| {
            let mut contexts = Vec::new();
            let below = if levels == 0 { 0 } else { grow_children(n, levels - 1, &mut contexts)? };
            ctx.started(&(1 + below))?;
            tractor::sleep_forever()
        })
    }
}

export!(Actor);
