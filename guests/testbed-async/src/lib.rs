//! The integration tests' async actor: its exports are `async func`s, so
//! the host runs one instance and every call and context as a task on it;
//! they share `COUNTER`.

use std::cell::Cell;
use std::time::Duration;
use tractor::aio::{self, Notify};

tractor::aio_bindings!(
    "../../wit/v0.2",
    r#"
    package tractor:testbed-async;
    world testbed-async {
        include tractor:actor/imports@0.2.0;
        use tractor:actor/types@0.2.0.{error};
        use tractor:actor/runtime@0.2.0.{context};

        export incr: async func() -> u64;
        export get: async func() -> u64;
        export slow: async func(ms: u32) -> result<u64, error>;
        export spin: async func(ctx: borrow<context>) -> result<_, error>;
        export fail: async func(msg: string) -> result<_, error>;
        export fan-out: async func(n: u32) -> result<u64, error>;
        export watch: async func(ctx: borrow<context>, until: u64) -> result<u64, error>;
        export echo-ctx: async func(ctx: borrow<context>, first: s64) -> result<u32, error>;
        export add: async func(a: s64, b: s64) -> s64;
        export trap: async func();
        export add-via: async func(component: string, a: s64, b: s64) -> result<s64, error>;
        export find-and-add: async func(name: string, a: s64, b: s64) -> result<tuple<s64, bool>, error>;
    }
"#
);

thread_local! {
    static COUNTER: Cell<u64> = const { Cell::new(0) };
}
static CHANGED: Notify = Notify::new();

struct Actor;

impl Guest for Actor {
    async fn incr() -> u64 {
        let v = COUNTER.with(|c| {
            c.set(c.get() + 1);
            c.get()
        });
        CHANGED.notify();
        v
    }

    async fn get() -> u64 {
        COUNTER.with(|c| c.get())
    }

    async fn slow(ms: u32) -> Result<u64, Error> {
        aio::sleep(Duration::from_millis(ms.into())).await?;
        Ok(COUNTER.with(|c| c.get()))
    }

    /// Tell the caller it runs, then compute forever without a checkpoint.
    async fn spin(ctx: &Context) -> Result<(), Error> {
        aio::callee(ctx).started(&())?;
        #[allow(clippy::empty_loop)]
        loop {}
    }

    async fn fail(msg: String) -> Result<(), Error> {
        aio::checkpoint().await?;
        Err(Error::new(msg))
    }

    async fn fan_out(n: u32) -> Result<u64, Error> {
        aio::open_nursery(async |nursery| {
            let mut portals = Vec::new();
            for i in 0..n {
                portals.push(nursery.start_actor(&format!("counter_{i}")).await?);
            }
            // Every child's calls at once: `join_all` over tractor awaits.
            let calls = portals.iter().flat_map(|p| (0..10).map(move |_| p.run::<u64, _>("incr", &())));
            let results = futures::future::join_all(calls).await;
            let mut total = 0;
            for r in results {
                total += r?;
            }
            Ok(total)
        })
        .await
    }

    async fn echo_ctx(ctx: &Context, first: i64) -> Result<u32, Error> {
        let ctx = aio::callee(ctx);
        ctx.started(&(first + 1))?;
        let stream = ctx.open_stream()?;
        let mut count = 0;
        while let Some(v) = stream.receive::<tractor::Value>().await? {
            stream.send(&v).await?;
            count += 1;
        }
        Ok(count)
    }

    async fn add(a: i64, b: i64) -> i64 {
        a + b
    }

    /// Find `name` (awaiting the lookup) and call its `add`; also whether
    /// the portal is a child's.
    async fn find_and_add(name: String, a: i64, b: i64) -> Result<(i64, bool), Error> {
        let p = aio::find_actor(&name).await?.ok_or_else(|| Error::new(format!("no actor named `{name}`")))?;
        Ok((p.run("add", &(a, b)).await?, p.is_child()))
    }

    async fn trap() {
        panic!("the async testbed traps on purpose");
    }

    /// Spawn a child running `component` (sync or async) and call its `add`.
    async fn add_via(component: String, a: i64, b: i64) -> Result<i64, Error> {
        aio::open_nursery(async |n| {
            let child = n.start_actor_of("other", Some(&component)).await?;
            child.run::<i64, _>("add", &(a, b)).await
        })
        .await
    }

    async fn watch(ctx: &Context, until: u64) -> Result<u64, Error> {
        let ctx = aio::callee(ctx);
        ctx.started(&COUNTER.with(|c| c.get()))?;
        let stream = ctx.open_stream()?;
        let mut last = 0;
        let mut sent = 0;
        loop {
            let changed = CHANGED.changed();
            let now = COUNTER.with(|c| c.get());
            if now != last {
                stream.send(&now).await?;
                sent += 1;
                last = now;
            }
            if now >= until {
                break;
            }
            changed.await;
        }
        stream.close();
        Ok(sent)
    }
}

export!(Actor);
