//! `registry`: actors that find each other by name (see `tractor.toml`).

tractor::bindings!(
    "../../wit",
    r#"
    package example:registry;
    world registry {
        include tractor:actor/imports@0.1.0;
        use tractor:actor/types@0.1.0.{error};
        use tractor:actor/runtime@0.1.0.{context};
        export main: func() -> result<_, error>;
        export incr: func(n: u64) -> u64;
        export squares: func(ctx: borrow<context>, n: u64) -> result<_, error>;
        export add: func(a: s64, b: s64) -> s64;
        export work: func(rounds: u32) -> result<string, error>;
        export wait-for-late: func() -> result<string, error>;
    }
"#
);

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// db's state: a sync actor serves its calls (its parent's and its
/// peers') one at a time on one instance, so globals persist.
static COUNT: AtomicU64 = AtomicU64::new(0);

struct Actor;

impl Guest for Actor {
    fn main() -> tractor::Result<()> {
        tractor::open_nursery(|n| {
            let db = n.start_actor("db")?;
            // Answered only once db is up, and so registered.
            db.run::<u64, _>("incr", &(0u64,))?;
            let workers: Vec<_> =
                (0..3).map(|i| n.run_in_actor(&format!("worker_{i}"), "work", &(10u32,))).collect::<Result<_, _>>()?;
            let waiter = n.run_in_actor("waiter", "wait-for-late", &())?;
            tractor::sleep(Duration::from_millis(300))?;
            let late = n.start_actor("late")?;
            late.run::<i64, _>("add", &(0, 0))?;
            println!("registry ({} live actors):", tractor::registry()?.len());
            for r in tractor::registry()? {
                println!("  {:<9} uid {}  spawned by {}", r.info.name, r.info.uid, parent_name(&r.parent_uid)?);
            }
            for w in &workers {
                println!("{}: {}", w.info().name, w.result::<String>()?);
            }
            println!("waiter: {}", waiter.result::<String>()?);
            println!("db counted {} increments from the workers", db.run::<u64, _>("incr", &(0u64,))?);
            db.cancel_actor()?;
            late.cancel_actor()
        })
    }

    fn incr(n: u64) -> u64 {
        COUNT.fetch_add(n, Ordering::SeqCst) + n
    }

    fn squares(ctx: &tractor::wit::runtime::Context, n: u64) -> tractor::Result<()> {
        let ctx = tractor::callee(ctx);
        ctx.started(&())?;
        let stream = ctx.open_stream()?;
        for i in 0..n {
            stream.send(&(i * i))?;
        }
        stream.close();
        Ok(())
    }

    fn add(a: i64, b: i64) -> i64 {
        a + b
    }

    fn work(rounds: u32) -> tractor::Result<String> {
        let db = tractor::find_actor("db")?.ok_or_else(|| tractor::Error::new("no `db` registered"))?;
        // Calls in flight at once, then a stream, all over one peer link.
        let calls = (0..rounds).map(|_| db.start::<u64, _>("incr", &(1u64,))).collect::<Result<Vec<_>, _>>()?;
        for (_, r) in tractor::as_completed(calls) {
            r?;
        }
        let (ctx, ()) = db.open_context("squares", &(100u64,))?;
        let stream = ctx.open_stream()?;
        let mut sum = 0u64;
        while let Some(x) = stream.receive::<u64>()? {
            sum += x;
        }
        let child = if db.is_child() { "a child" } else { "not a child" };
        Ok(format!("{rounds} incr calls, squares 0..99 sum to {sum}, from `db` ({child}, uid {})", db.info().uid))
    }

    fn wait_for_late() -> tractor::Result<String> {
        let late = tractor::with_timeout(Duration::from_secs(60), || tractor::wait_for_actor("late"))?;
        Ok(format!("found `late` once it started: 2 + 3 = {}", late.run::<i64, _>("add", &(2, 3))?))
    }
}

/// The name of the actor with uid `uid` ("the driver" for the root's).
fn parent_name(uid: &str) -> tractor::Result<String> {
    if uid.is_empty() {
        return Ok("the driver".into());
    }
    let found = tractor::registry()?.into_iter().find(|r| r.info.uid == uid);
    Ok(found.map_or(uid.to_string(), |r| r.info.name))
}

export!(Actor);
