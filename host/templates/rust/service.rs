//! {{name}}: a service. The root starts a daemon that keeps a counter
//! between calls and streams ticks over a 2-way context.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

tractor::bindings!("wit", r#"{{world}}"#);

/// The daemon's state: its instance lives as long as the actor.
static TOTAL: AtomicU32 = AtomicU32::new(0);

struct Actor;

impl Guest for Actor {
    fn main() -> tractor::Result<()> {
        tractor::open_nursery(|n| {
            let service = n.start_actor("counter")?;
            let a: u32 = service.run("add", &(1,))?;
            let b: u32 = service.run("add", &(41,))?;
            println!("counter: {a}, then {b}");
            let (ticks, sent) = service.with_context("ticks", &(3,), |ctx, _count: u32| {
                let stream = ctx.open_stream()?;
                let mut ticks = Vec::new();
                while let Some(t) = stream.receive::<u32>()? {
                    ticks.push(t);
                }
                match ctx.result::<u32>()? {
                    tractor::ContextOutcome::Returned(sent) => Ok((ticks, sent)),
                    tractor::ContextOutcome::Cancelled { by } => Err(format!("ticks cancelled by {by}").into()),
                }
            })?;
            println!("ticks: {ticks:?} ({sent} sent)");
            Ok(()) // closing the nursery cancels the daemon
        })
    }

    fn add(n: u32) -> u32 {
        TOTAL.fetch_add(n, Ordering::SeqCst) + n
    }

    fn ticks(ctx: &Context, count: u32) -> tractor::Result<u32> {
        let ctx = tractor::callee(ctx);
        ctx.started(&count)?;
        let stream = ctx.open_stream()?;
        for i in 0..count {
            stream.send(&i)?;
            tractor::sleep(Duration::from_millis(10))?;
        }
        stream.close();
        Ok(count)
    }
}

export!(Actor);
