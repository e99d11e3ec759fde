//! `feed_service`: one actor, one state. The `feed` daemon's counter is
//! shared by every call and context it serves, because an async component
//! runs as one instance whose calls and contexts are concurrent tasks.
//!
//! The subscribers and writers are actors of their own, started by the
//! root beside the feed: each finds it by name (`wait_for_actor`) and holds
//! a context into it or calls it.

use std::cell::Cell;
use tractor::aio::{self, Notify, Portal};

tractor::aio_bindings!(
    "../../wit/v0.2",
    r#"
    package example:feed-service;
    world feed-service {
        include tractor:actor/imports@0.2.0;
        use tractor:actor/types@0.2.0.{error};
        use tractor:actor/runtime@0.2.0.{context};

        export main: async func() -> result<_, error>;
        export subscriber: async func(until: u64) -> result<tuple<u64, u64, bool>, error>;
        export writer: async func() -> result<u64, error>;
        export incr: async func() -> u64;
        export watch: async func(ctx: borrow<context>, until: u64) -> result<u64, error>;
    }
"#
);

const WRITERS: u64 = 2;
const INCREMENTS: u64 = 1_000;
const SUBSCRIBERS: usize = 3;

thread_local! {
    static COUNTER: Cell<u64> = const { Cell::new(0) };
}
static CHANGED: Notify = Notify::new();

/// What one subscriber saw.
struct Seen {
    last: u64,
    updates: u64,
    monotonic: bool,
}

async fn subscribe(feed: &Portal, until: u64) -> Result<Seen, Error> {
    let (ctx, first): (_, u64) = feed.open_context("watch", &(until,)).await?;
    let stream = ctx.open_stream()?;
    let mut seen = Seen { last: first, updates: 0, monotonic: true };
    while let Some(v) = stream.receive::<u64>().await? {
        seen.monotonic &= v > seen.last;
        seen.last = v;
        seen.updates += 1;
    }
    ctx.result::<u64>().await?;
    Ok(seen)
}

async fn write(feed: &Portal) -> Result<u64, Error> {
    let mut last = 0;
    for _ in 0..INCREMENTS {
        last = feed.run::<u64, _>("incr", &()).await?;
    }
    Ok(last)
}

struct Actor;

impl Guest for Actor {
    async fn main() -> Result<(), Error> {
        let total = WRITERS * INCREMENTS;
        aio::open_nursery(async |n| {
            n.start_actor("feed").await?;
            let mut subscribers = Vec::new();
            for i in 0..SUBSCRIBERS {
                subscribers.push(n.run_in_actor(&format!("subscriber_{i}"), "subscriber", &(total,)).await?);
            }
            let mut writers = Vec::new();
            for i in 0..WRITERS {
                writers.push(n.run_in_actor(&format!("writer_{i}"), "writer", &()).await?);
            }
            for w in &writers {
                w.result::<u64>().await?;
            }
            for (i, s) in subscribers.iter().enumerate() {
                let (last, updates, monotonic): (u64, u64, bool) = s.result().await?;
                println!(
                    "subscriber {i}: final value {last} after {updates} updates, {}",
                    if monotonic { "always increasing" } else { "NOT MONOTONIC" }
                );
                if last != total || !monotonic {
                    return Err(Error::new(format!("subscriber {i} saw {last} (expected {total})")));
                }
            }
            println!("{WRITERS} writers x {INCREMENTS} increments = {total}; every subscriber saw it");
            n.cancel().await
        })
        .await
    }

    /// A subscriber actor: find the feed, watch it until `until`.
    async fn subscriber(until: u64) -> Result<(u64, u64, bool), Error> {
        let feed = aio::wait_for_actor("feed").await?;
        let seen = subscribe(&feed, until).await?;
        Ok((seen.last, seen.updates, seen.monotonic))
    }

    /// A writer actor: find the feed, increment it.
    async fn writer() -> Result<u64, Error> {
        write(&aio::wait_for_actor("feed").await?).await
    }

    async fn incr() -> u64 {
        let v = COUNTER.with(|c| {
            c.set(c.get() + 1);
            c.get()
        });
        CHANGED.notify();
        v
    }

    async fn watch(ctx: &Context, until: u64) -> Result<u64, Error> {
        let ctx = aio::callee(ctx);
        ctx.started(&COUNTER.with(|c| c.get()))?;
        let stream = ctx.open_stream()?;
        let (mut last, mut sent) = (COUNTER.with(|c| c.get()), 0);
        while last < until {
            let changed = CHANGED.changed();
            let now = COUNTER.with(|c| c.get());
            if now != last {
                stream.send(&now).await?;
                sent += 1;
                last = now;
            } else {
                changed.await;
            }
        }
        stream.close();
        Ok(sent)
    }
}

export!(Actor);
