//! `broadcast`: one stream, ten local consumers, every consumer gets every
//! message in order (tractor's `MsgStream.subscribe()`).

use futures::future::join_all;

tractor::bindings!(
    "../../wit",
    r#"
    package example:broadcast;
    world broadcast {
        include tractor:actor/imports@0.1.0;
        use tractor:actor/types@0.1.0.{error};
        use tractor:actor/runtime@0.1.0.{context};
        export main: func() -> result<_, error>;
        export count-to: func(ctx: borrow<context>, n: u32) -> result<u32, error>;
    }
"#
);

const N: u32 = 1_000;
const CONSUMERS: usize = 10;

struct Actor;

impl Guest for Actor {
    fn main() -> tractor::Result<()> {
        tractor::open_nursery(|n| {
            let portal = n.start_actor("counter")?;
            let (ctx, ()) = portal.open_context("count-to", &(N,))?;
            let stream = ctx.open_stream()?;
            // Subscribe before asking for the numbers, so nobody misses one.
            let consumers: Vec<_> = (0..CONSUMERS).map(|_| stream.subscribe(N)).collect();
            stream.send("go")?;
            let results = tractor::rt::block_on(join_all(consumers.iter().enumerate().map(|(i, s)| async move {
                let mut expected = 0u32;
                while let Some(x) = s.next::<u32>().await? {
                    if x != expected {
                        return Err(tractor::Error::new(format!("consumer {i}: got {x}, expected {expected}")));
                    }
                    expected += 1;
                }
                Ok::<_, tractor::Error>(expected)
            })));
            for (i, r) in results.into_iter().enumerate() {
                println!("consumer {i} received {} numbers in order", r?);
            }
            ctx.result::<u32>()?;
            portal.cancel_actor()
        })
    }

    fn count_to(ctx: &Context, n: u32) -> tractor::Result<u32> {
        let ctx = tractor::callee(ctx);
        ctx.started(&())?;
        let stream = ctx.open_stream()?;
        let _go: Option<String> = stream.receive()?;
        for i in 0..n {
            stream.send(&i)?;
        }
        stream.close();
        Ok(n)
    }
}

export!(Actor);
