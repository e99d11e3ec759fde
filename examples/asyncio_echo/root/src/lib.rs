//! The root of `asyncio_echo`: stream messages through the Python asyncio
//! actor's echo and report the round-trip rate, as the seed does.

use std::time::Instant;
use tractor::aio;

tractor::aio_bindings!(
    "../../../wit/v0.2",
    r#"
    package asyncio-echo:root;
    world root {
        include tractor:actor/imports@0.2.0;
        use tractor:actor/types@0.2.0.{error};
        export main: async func(rounds: u32) -> result<_, error>;
    }
"#
);

struct Root;

impl Guest for Root {
    async fn main(rounds: u32) -> Result<(), Error> {
        aio::open_nursery(async |n| {
            let echo = n.start_actor_of("aio_echo", Some("echo")).await?;
            let total: i64 = echo.run("gather", &(3u32,)).await?;
            println!("asyncio.gather over 3 children's calls: {total}");
            let (ctx, ()) = echo.open_context::<(), _>("echo", &()).await?;
            let stream = ctx.open_stream()?;
            let start = Instant::now();
            for i in 0..rounds {
                stream.send(&i).await?;
                let back: Option<u32> = stream.receive().await?;
                if back != Some(i) {
                    return Err(Error::new(format!("sent {i}, got {back:?} back")));
                }
            }
            let took = start.elapsed().as_secs_f64();
            stream.close();
            let echoed = match ctx.result::<u32>().await? {
                tractor::ContextOutcome::Returned(n) => n,
                tractor::ContextOutcome::Cancelled { by } => return Err(Error::new(format!("cancelled by {by}"))),
            };
            println!("{echoed} messages echoed through an asyncio queue and task");
            println!("mean round trip rate (Hz): {:.0}", f64::from(rounds) / took);
            Ok(())
        })
        .await
    }
}

export!(Root);
