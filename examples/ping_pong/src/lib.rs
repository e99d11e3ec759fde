//! `ping_pong`: the seed's `simple_rpc` example over a 2-way context.

tractor::bindings!(
    "../../wit",
    r#"
    package example:ping-pong;
    world ping-pong {
        include tractor:actor/imports@0.1.0;
        use tractor:actor/types@0.1.0.{error};
        use tractor:actor/runtime@0.1.0.{context};
        export main: func() -> result<_, error>;
        export simple-rpc: func(ctx: borrow<context>, data: s64) -> result<u32, error>;
    }
"#
);

struct Actor;

impl Guest for Actor {
    fn main() -> tractor::Result<()> {
        tractor::open_nursery(|n| {
            let portal = n.start_actor("rpc_server")?;
            let count = portal.with_context("simple-rpc", &(10,), |ctx, sent: i64| {
                println!("started with {sent}");
                assert_eq!(sent, 11);
                let stream = ctx.open_stream()?;
                for _ in 0..10 {
                    stream.send("ping")?;
                    let pong: String = stream.receive()?.ok_or("stream ended early")?;
                    assert_eq!(pong, "pong");
                }
                stream.close();
                ctx.result::<u32>()
            })?;
            match count {
                tractor::ContextOutcome::Returned(count) => println!("rpc_server answered {count} pings"),
                tractor::ContextOutcome::Cancelled { by } => println!("rpc_server was cancelled by {by}"),
            }
            portal.cancel_actor()
        })
    }

    fn simple_rpc(ctx: &Context, data: i64) -> tractor::Result<u32> {
        let ctx = tractor::callee(ctx);
        ctx.started(&(data + 1))?;
        let stream = ctx.open_stream()?;
        let mut count = 0;
        while let Some(msg) = stream.receive::<String>()? {
            assert_eq!(msg, "ping");
            stream.send("pong")?;
            count += 1;
        }
        assert_eq!(count, 10);
        Ok(count)
    }
}

export!(Actor);
