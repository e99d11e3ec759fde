//! `polyglot-root`: a Rust root driving a Python and a JavaScript actor.
//!
//! Both daemons serve the same exports (see python/world.wit and
//! js/world.wit): plain calls with integers and records, a 2-way context
//! (the ping-pong of examples/ping_pong), and `fail`, whose error carries the
//! guest's own traceback or stack. The Python actor also spawns a Rust
//! grandchild. The failures are expected: they are printed, not propagated.

use serde::{Deserialize, Serialize};

tractor::bindings!(
    "../../../wit",
    r#"
    package polyglot:root;
    world root {
        include tractor:actor/imports@0.1.0;
        use tractor:actor/types@0.1.0.{error};
        export main: func() -> result<_, error>;
    }
"#
);

/// The `person` record of the guests' worlds, sent as a CBOR map.
#[derive(Serialize)]
struct Person<'a> {
    name: &'a str,
    age: u32,
}

/// The `actor-facts` record `whoami` returns.
#[derive(Deserialize)]
struct Facts {
    language: String,
    version: String,
    pid: u32,
}

struct Root;

impl Guest for Root {
    fn main() -> tractor::Result<()> {
        println!("rust root pid={}", tractor::current().pid);
        tractor::open_nursery(|n| {
            let py = n.start_actor_of("py", "python")?;
            let js = n.start_actor_of("js", "javascript")?;
            for (tag, p) in [("py", &py), ("js", &js)] {
                let facts: Facts = p.run("whoami", &())?;
                let pid = p.info().pid;
                if facts.pid != pid {
                    return Err(format!("{tag}: whoami says pid {} but its portal says {pid}", facts.pid).into());
                }
                println!("{tag}: {} {} actor, pid={}", facts.language, facts.version, facts.pid);

                let sum: i64 = p.run("add", &(40, 2))?;
                println!("{tag}: add(40, 2) = {sum}");

                let greeting: String = p.run("greet", &(Person { name: "Ada", age: 36 },))?;
                println!("{tag}: greet -> {greeting}");

                let (first, count) = p.with_context("simple-rpc", &(10,), |ctx, first: i64| {
                    let stream = ctx.open_stream()?;
                    for i in 0..10 {
                        stream.send("ping")?;
                        let pong: String = stream.receive()?.ok_or("stream ended early")?;
                        if pong != "pong" {
                            return Err(format!("ping {i}: expected pong, got {pong:?}").into());
                        }
                    }
                    stream.close();
                    Ok((first, ctx.result::<u32>()?))
                })?;
                match count {
                    tractor::ContextOutcome::Returned(c) => {
                        println!("{tag}: simple-rpc started={first}, {c} pings answered")
                    }
                    tractor::ContextOutcome::Cancelled { by } => {
                        return Err(format!("{tag}: simple-rpc cancelled by {by}").into())
                    }
                }
            }

            let v: i64 = py.run("spawn-rust", &())?;
            println!("py: spawn-rust -> {v}");

            // The Python and JavaScript actors find a Rust actor they did not start, by name.
            let leaf = n.start_actor_of("rust-leaf", "leaf")?;
            leaf.run::<i64, _>("add", &(0, 0))?;
            for (tag, p) in [("py", &py), ("js", &js)] {
                let v: i64 = p.run("find-add", &("rust-leaf", 30, 12))?;
                println!("{tag}: find-add(rust-leaf) -> {v}");
            }
            leaf.cancel_actor()?;

            for (tag, p) in [("py", &py), ("js", &js)] {
                match p.run::<tractor::Value, _>("fail", &(format!("boom from root to {tag}"),)) {
                    Err(e) => println!("{tag}: fail raised, as expected:\n{}", e.render()),
                    Ok(v) => return Err(format!("{tag}: fail returned {v:?}").into()),
                }
            }

            py.cancel_actor()?;
            js.cancel_actor()?;
            println!("done");
            Ok(())
        })
    }
}

export!(Root);
