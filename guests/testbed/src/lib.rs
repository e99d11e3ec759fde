//! The integration tests' actor: one export per behaviour under test.

use std::time::Duration;

// The same source the host's native baseline runs (`tractor-host bench`).
#[path = "../../../bench/src/primes.rs"]
mod primes;
use tractor::open_nursery;

tractor::bindings!(
    "../../wit",
    r#"
    package test:testbed;
    world testbed {
        include tractor:actor/imports@0.1.0;
        use tractor:actor/types@0.1.0.{error, spawn-backend};
        use tractor:actor/identity@0.1.0.{actor-info};

        record person { name: string, age: u8, nick: option<string> }
        variant shape { circle(f64), square(f64), dot }
        flags perms { read, write, exec }

        export add: func(a: s64, b: s64) -> s64;
        export greet: func(p: person) -> string;
        export area: func(s: shape) -> f64;
        export echo-list: func(xs: list<u32>) -> list<u32>;
        export echo-perms: func(p: perms) -> perms;
        export whoami: func() -> actor-info;
        export fail: func(msg: string) -> result<_, error>;
        export trap: func();
        export spin: func();
        export sleep-forever: func() -> result<_, error>;
        export nest: func(depth: u32, fail-at-leaf: bool) -> result<u32, error>;
        export fail-unawaited: func() -> result<string, error>;
        export two-failures: func() -> result<_, error>;
        export fail-late: func(msg: string, ms: u32) -> result<_, error>;
        export sleepers: func(width: u32, levels: u32) -> result<_, error>;
        export call-after-cancel: func() -> result<string, error>;
        export spawn-unknown: func() -> result<string, error>;
        export call-missing-export: func() -> result<string, error>;
        export fan-out: func(n: u32) -> result<u64, error>;

        export call-with-timeout: func(ms: u32) -> result<string, error>;
        export stubborn: func();
        export read-file: func(path: string) -> result<string, error>;
        export write-file: func(path: string, text: string) -> result<_, error>;
        export get-env: func(name: string) -> option<string>;
        export connect: func(addr: string) -> result<string, error>;
        export spawn-with-dir: func(host: string, writable: bool) -> result<string, error>;
        export spawn-with-env: func(name: string, value: string) -> result<string, error>;
        export hog: func(mib: u32) -> u64;
        export recurse: func(n: u64) -> u64;
        export spawn-many: func(n: u32) -> result<u32, error>;
        export spawn-on: func(backend: spawn-backend) -> result<u32, error>;
        export count-primes: func(lo: u64, hi: u64) -> u64;
        export spin-ctx: func(ctx: borrow<context>);
        export trap-mid-stream: func(ctx: borrow<context>, after: u32);
        export nursery-with-timeout: func(ms: u32) -> result<string, error>;

        use tractor:actor/runtime@0.1.0.{context};
        export echo-ctx: func(ctx: borrow<context>, first: s64) -> result<u32, error>;
        export started-twice: func(ctx: borrow<context>) -> result<_, error>;
        export stream-before-started: func(ctx: borrow<context>) -> result<_, error>;
        export fail-mid-stream: func(ctx: borrow<context>, after: u32) -> result<_, error>;
        export wait-for-cancel: func(ctx: borrow<context>) -> result<_, error>;
        export cancel-self: func(ctx: borrow<context>) -> result<_, error>;
        export produce: func(ctx: borrow<context>, n: u32) -> result<u32, error>;
        export consume-after: func(ctx: borrow<context>, ms: u32) -> result<u64, error>;

        export read-via-child: func(host: string, writable: bool, path: string) -> result<string, error>;
        export write-via-child: func(host: string, path: string, text: string) -> result<_, error>;
        export read-via-children: func(host: string, path: string, n: u32) -> list<string>;
        export make-symlink: func(target: string, link: string) -> result<_, error>;
        export serve-once: func(ctx: borrow<context>, addr: string) -> result<string, error>;
        export listen-on: func(addr: option<string>) -> result<string, error>;
        export fail-on-cancel: func(msg: string, ms: u32) -> result<_, error>;
        export work-then-fail: func(msg: string, ms: u32) -> result<_, error>;

        export find-and-add: func(name: string, a: s64, b: s64) -> result<s64, error>;
        export find-info: func(name: string) -> result<option<tuple<string, bool>>, error>;
        export wait-and-add: func(name: string, a: s64, b: s64, ms: u32) -> result<s64, error>;
        export find-and-cancel: func(name: string) -> result<string, error>;
        export registry-names: func() -> result<list<string>, error>;
        export find-and-sum: func(name: string, n: u32) -> result<u64, error>;
        export hold-a-call: func(ctx: borrow<context>, name: string) -> result<string, error>;
        export spawn-of: func(component: string) -> result<string, error>;
        export leaves: func(prefix: string, n: u32, ms: u32, on-cancel: bool) -> result<_, error>;
        export why-cancelled: func(ctx: borrow<context>) -> result<string, error>;
    }
"#
);

struct Actor;

impl Guest for Actor {
    fn add(a: i64, b: i64) -> i64 {
        a + b
    }

    fn greet(p: Person) -> String {
        match p.nick {
            Some(n) => format!("hi {} ({n}), {}", p.name, p.age),
            None => format!("hi {}, {}", p.name, p.age),
        }
    }

    fn area(s: Shape) -> f64 {
        match s {
            Shape::Circle(r) => 3.0 * r * r,
            Shape::Square(a) => a * a,
            Shape::Dot => 0.0,
        }
    }

    fn echo_list(xs: Vec<u32>) -> Vec<u32> {
        xs
    }

    fn echo_perms(p: Perms) -> Perms {
        p
    }

    fn whoami() -> tractor::ActorInfo {
        tractor::current()
    }

    fn fail(msg: String) -> Result<(), Error> {
        Err(Error::new(msg))
    }

    fn trap() {
        panic!("testbed trap requested");
    }

    fn spin() {
        let mut x = 0u64;
        loop {
            x = std::hint::black_box(x.wrapping_add(1));
        }
    }

    fn sleep_forever() -> Result<(), Error> {
        tractor::sleep_forever()
    }

    /// A chain of `depth` actors below this one; the leaf fails if asked.
    fn nest(depth: u32, fail_at_leaf: bool) -> Result<u32, Error> {
        if depth == 0 {
            return if fail_at_leaf { Err(Error::new("leaf failed on purpose")) } else { Ok(1) };
        }
        open_nursery(|n| {
            let p = n.run_in_actor(&format!("level_{depth}"), "nest", &(depth - 1, fail_at_leaf))?;
            Ok(1 + p.result::<u32>()?)
        })
    }

    /// A child fails while the parent is blocked elsewhere: the parent's
    /// checkpoint must raise it at once and the sleeping sibling be cancelled.
    fn fail_unawaited() -> Result<String, Error> {
        open_nursery(|n| {
            n.run_in_actor("sleeper", "sleep-forever", &())?;
            n.run_in_actor("failer", "fail", &("boom from failer",))?;
            tractor::sleep(Duration::from_secs(60))?;
            Ok("slept a whole minute: the failure did not interrupt us".to_string())
        })
    }

    fn two_failures() -> Result<(), Error> {
        open_nursery(|n| {
            n.run_in_actor("trapper", "trap", &())?;
            n.run_in_actor("failer", "fail-late", &("second failure", 500))?;
            Ok(())
        })
    }

    /// Sleep, ignoring cancellation, then fail: a real failure that happens
    /// while the actor is being cancelled must still be reported.
    fn fail_late(msg: String, ms: u32) -> Result<(), Error> {
        let _ = tractor::sleep(Duration::from_millis(ms as u64));
        Err(Error::new(msg))
    }

    /// A tree of sleeping actors `width` wide and `levels` deep; each prints
    /// `up <name> <pid>` once started.
    fn sleepers(width: u32, levels: u32) -> Result<(), Error> {
        let me = tractor::current();
        println!("up {} {}", me.name, me.pid);
        open_nursery(|n| {
            if levels > 0 {
                for i in 0..width {
                    n.run_in_actor(&format!("{}.{i}", me.name), "sleepers", &(width, levels - 1))?;
                }
            }
            tractor::sleep_forever()
        })
    }

    fn call_after_cancel() -> Result<String, Error> {
        open_nursery(|n| {
            let p = n.start_actor("daemon")?;
            let sum: i64 = p.run("add", &(1, 2))?;
            assert_eq!(sum, 3);
            p.cancel_actor()?;
            match p.run::<i64, _>("add", &(1, 2)) {
                Ok(v) => Err(Error::new(format!("call into a cancelled actor returned {v}"))),
                Err(e) => Ok(format!("{:?}: {}", e.kind, e.message)),
            }
        })
    }

    fn spawn_unknown() -> Result<String, Error> {
        open_nursery(|n| match n.run_in_actor_of("x", "no-such-component", "add", &(1, 2)) {
            Ok(_) => Err(Error::new("spawning an unknown component succeeded")),
            Err(e) => Ok(format!("{:?}: {}", e.kind, e.message)),
        })
    }

    fn call_missing_export() -> Result<String, Error> {
        open_nursery(|n| {
            let p = n.start_actor("daemon")?;
            let r = match p.run::<i64, _>("no-such-export", &()) {
                Ok(_) => Err(Error::new("calling a missing export succeeded")),
                Err(e) => Ok(format!("{:?}: {}", e.kind, e.message)),
            };
            p.cancel_actor()?;
            r
        })
    }

    /// Report `started`, then spin without ever reaching a checkpoint.
    fn spin_ctx(ctx: &Context) {
        tractor::callee(ctx).started(&()).expect("started");
        Self::spin();
    }

    fn read_file(path: String) -> Result<String, Error> {
        std::fs::read_to_string(&path).map_err(|e| Error::new(format!("{path}: {e}")))
    }

    fn write_file(path: String, text: String) -> Result<(), Error> {
        std::fs::write(&path, text).map_err(|e| Error::new(format!("{path}: {e}")))
    }

    fn get_env(name: String) -> Option<String> {
        std::env::var(name).ok()
    }

    /// Open a TCP connection to an IPv4 `ip:port` through wasi:sockets.
    fn connect(addr: String) -> Result<String, Error> {
        use wasip2::sockets::network::{IpAddressFamily, IpSocketAddress, Ipv4SocketAddress};
        let sa: std::net::SocketAddrV4 = addr.parse().map_err(|e| Error::new(format!("{addr}: {e}")))?;
        let fail = |e: wasip2::sockets::network::ErrorCode| Error::new(format!("{addr}: {e:?}"));
        let socket = wasip2::sockets::tcp_create_socket::create_tcp_socket(IpAddressFamily::Ipv4).map_err(fail)?;
        let [a, b, c, d] = sa.ip().octets();
        let remote = IpSocketAddress::Ipv4(Ipv4SocketAddress { port: sa.port(), address: (a, b, c, d) });
        let network = wasip2::sockets::instance_network::instance_network();
        socket.start_connect(&network, remote).map_err(fail)?;
        loop {
            match socket.finish_connect() {
                Ok(_) => return Ok(format!("connected to {addr}")),
                Err(wasip2::sockets::network::ErrorCode::WouldBlock) => socket.subscribe().block(),
                Err(e) => return Err(fail(e)),
            }
        }
    }

    /// Try to give a child one folder; report what happened.
    fn spawn_with_dir(host: String, writable: bool) -> Result<String, Error> {
        let grants = tractor::Grants {
            dirs: vec![tractor::DirGrant { host, guest: "/d".into(), writable }],
            env: vec![],
            args: vec![],
            connect: vec![],
            bind: vec![],
        };
        Self::try_spawn(&grants)
    }

    fn spawn_with_env(name: String, value: String) -> Result<String, Error> {
        let grants =
            tractor::Grants { dirs: vec![], env: vec![(name, value)], args: vec![], connect: vec![], bind: vec![] };
        Self::try_spawn(&grants)
    }

    /// Allocate and touch `mib` MiB.
    fn hog(mib: u32) -> u64 {
        let mut held: Vec<Vec<u8>> = Vec::new();
        for _ in 0..mib {
            held.push(vec![1u8; 1 << 20]);
        }
        std::hint::black_box(&held);
        held.iter().map(|v| v.len() as u64).sum()
    }

    /// Recurse without bound (the wasm stack limit stops it).
    fn recurse(n: u64) -> u64 {
        if n == u64::MAX {
            return 0; // never: the stack runs out long before
        }
        std::hint::black_box(Self::recurse(std::hint::black_box(n + 1))) + 1
    }

    /// Start `n` daemons in one nursery; returns how many started.
    fn spawn_many(n: u32) -> Result<u32, Error> {
        open_nursery(|nursery| {
            for i in 0..n {
                nursery.start_actor(&format!("many_{i}"))?;
            }
            Ok(n)
        })
    }

    /// The primes pool benchmark's unit of work.
    fn count_primes(lo: u64, hi: u64) -> u64 {
        primes::count_primes(lo, hi)
    }

    /// Start a child with `backend`, ask it its pid, return that.
    fn spawn_on(backend: tractor::SpawnBackend) -> Result<u32, Error> {
        open_nursery(|nursery| {
            let opts = tractor::SpawnOptions { grants: None, backend: Some(backend) };
            let child = nursery.start_actor_opts("placed", None, &opts)?;
            let info: std::collections::BTreeMap<String, tractor::Value> = child.run("whoami", &())?;
            let pid = info.get("pid").and_then(|v| v.as_integer()).ok_or("no pid")?;
            child.cancel_actor()?;
            Ok(u32::try_from(pid).map_err(|_| "bad pid")?)
        })
    }

    /// Block in a plain WASI sleep, which no tractor checkpoint can wake.
    fn stubborn() {
        std::thread::sleep(Duration::from_secs(60));
    }

    fn trap_mid_stream(ctx: &Context, after: u32) {
        let stream = Self::started_stream(ctx).expect("stream");
        for i in 0..after {
            stream.send(&i).expect("send");
        }
        panic!("trapped mid-stream on purpose");
    }

    /// A timeout around a call into a busy daemon cancels the remote call:
    /// the daemon is free again right after.
    fn call_with_timeout(ms: u32) -> Result<String, Error> {
        open_nursery(|n| {
            let p = n.start_actor("busy")?;
            let timeout = Duration::from_millis(ms as u64);
            let e = match tractor::with_timeout(timeout, || p.run::<(), _>("sleep-forever", &())) {
                Ok(()) => return Err(Error::new("sleep-forever returned")),
                Err(e) => e,
            };
            let sum: i64 = p.run("add", &(1, 2))?;
            p.cancel_actor()?;
            Ok(format!("{:?}: {}; then add = {sum}", e.kind, e.message))
        })
    }

    /// A timeout around a nursery cancels its children.
    fn nursery_with_timeout(ms: u32) -> Result<String, Error> {
        let timeout = Duration::from_millis(ms as u64);
        let r = tractor::with_timeout(timeout, || {
            open_nursery(|n| {
                n.run_in_actor("sleeper", "sleep-forever", &())?;
                n.run_in_actor("sleeper2", "sleep-forever", &())?;
                tractor::sleep_forever()
            })
        });
        match r {
            Ok(()) => Err(Error::new("the nursery outlived its deadline")),
            Err(e) => Ok(format!("{:?}: {}", e.kind, e.message)),
        }
    }

    /// Echo every message back until the caller closes the stream.
    fn echo_ctx(ctx: &Context, first: i64) -> Result<u32, Error> {
        let ctx = tractor::callee(ctx);
        ctx.started(&(first + 1))?;
        let stream = ctx.open_stream()?;
        let mut count = 0;
        while let Some(v) = stream.receive::<tractor::Value>()? {
            stream.send(&v)?;
            count += 1;
        }
        Ok(count)
    }

    fn started_twice(ctx: &Context) -> Result<(), Error> {
        let ctx = tractor::callee(ctx);
        ctx.started(&1)?;
        ctx.started(&2)
    }

    fn stream_before_started(ctx: &Context) -> Result<(), Error> {
        tractor::callee(ctx).open_stream().map(|_| ())
    }

    fn fail_mid_stream(ctx: &Context, after: u32) -> Result<(), Error> {
        let stream = Self::started_stream(ctx)?;
        for i in 0..after {
            stream.send(&i)?;
        }
        Err(Error::new("failed mid-stream"))
    }

    fn wait_for_cancel(ctx: &Context) -> Result<(), Error> {
        let stream = Self::started_stream(ctx)?;
        // Blocks until the caller sends, closes or cancels.
        stream.receive::<u32>()?;
        tractor::sleep_forever()
    }

    fn cancel_self(ctx: &Context) -> Result<(), Error> {
        let c = tractor::callee(ctx);
        c.started(&())?;
        c.cancel();
        tractor::sleep_forever()
    }

    /// Wait for a first message, then send `0..n` and close.
    fn produce(ctx: &Context, n: u32) -> Result<u32, Error> {
        let stream = Self::started_stream(ctx)?;
        stream.receive::<tractor::Value>()?;
        for i in 0..n {
            stream.send(&i)?;
        }
        stream.close();
        Ok(n)
    }

    /// Sleep, then sum every number received until the stream ends.
    fn consume_after(ctx: &Context, ms: u32) -> Result<u64, Error> {
        let stream = Self::started_stream(ctx)?;
        tractor::sleep(Duration::from_millis(ms as u64))?;
        let mut sum = 0u64;
        while let Some(v) = stream.receive::<u64>()? {
            sum += v;
        }
        Ok(sum)
    }

    fn read_via_child(host: String, writable: bool, path: String) -> Result<String, Error> {
        extra::read_via_child(host, writable, path)
    }

    fn write_via_child(host: String, path: String, text: String) -> Result<(), Error> {
        extra::write_via_child(host, path, text)
    }

    fn read_via_children(host: String, path: String, n: u32) -> Vec<String> {
        (0..n)
            .map(|_| match extra::read_via_child(host.clone(), false, path.clone()) {
                Ok(text) => text,
                Err(e) => format!("{}: {}", tractor::kind_name(e.kind), e.message),
            })
            .collect()
    }

    fn make_symlink(target: String, link: String) -> Result<(), Error> {
        extra::make_symlink(&target, &link)
    }

    fn serve_once(ctx: &Context, addr: String) -> Result<String, Error> {
        extra::serve_once(ctx, &addr)
    }

    fn listen_on(addr: Option<String>) -> Result<String, Error> {
        extra::listen_on(addr.as_deref()).map(|(_, local)| local)
    }

    /// Sleep until cancelled, then (ignoring that) `ms` more, then fail:
    /// a real failure that happens because of a cancellation.
    fn fail_on_cancel(msg: String, ms: u32) -> Result<(), Error> {
        let _ = tractor::sleep_forever();
        let _ = tractor::sleep(Duration::from_millis(ms as u64));
        Err(Error::new(msg))
    }

    fn find_and_add(name: String, a: i64, b: i64) -> Result<i64, Error> {
        discover::find_and_add(name, a, b)
    }
    fn find_info(name: String) -> Result<Option<(String, bool)>, Error> {
        discover::find_info(name)
    }
    fn wait_and_add(name: String, a: i64, b: i64, ms: u32) -> Result<i64, Error> {
        discover::wait_and_add(name, a, b, ms)
    }
    fn find_and_cancel(name: String) -> Result<String, Error> {
        discover::find_and_cancel(name)
    }
    fn registry_names() -> Result<Vec<String>, Error> {
        discover::registry_names()
    }
    fn find_and_sum(name: String, n: u32) -> Result<u64, Error> {
        discover::find_and_sum(name, n)
    }
    fn hold_a_call(ctx: &Context, name: String) -> Result<String, Error> {
        discover::hold_a_call(ctx, name)
    }
    fn spawn_of(component: String) -> Result<String, Error> {
        discover::spawn_of(component)
    }

    /// Once cancelled, compute for `ms` (reading the clock as it goes),
    /// then fail with `msg`: unwinding that takes a while of wasm.
    fn work_then_fail(msg: String, ms: u32) -> Result<(), Error> {
        let _ = tractor::sleep_forever();
        let until = std::time::Instant::now() + Duration::from_millis(ms as u64);
        let mut x = 0u64;
        while std::time::Instant::now() < until {
            for _ in 0..1000 {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        Err(Error::new(msg))
    }

    /// Report (rather than propagate) what the first receive raised.
    fn why_cancelled(ctx: &Context) -> Result<String, Error> {
        let stream = Self::started_stream(ctx)?;
        match stream.receive::<tractor::Value>() {
            Ok(v) => Err(Error::new(format!("received {v:?} instead of an error"))),
            Err(e) => Ok(format!("{}: {}", tractor::kind_name(e.kind), e.message)),
        }
    }

    /// `n` children `<prefix>1`..`<prefix>n` that each fail: `ms` after they
    /// start (`fail-late`), or `ms` after they are cancelled.
    fn leaves(prefix: String, n: u32, ms: u32, on_cancel: bool) -> Result<(), Error> {
        open_nursery(|nursery| {
            for i in 1..=n {
                let name = format!("{prefix}{i}");
                let func = if on_cancel { "fail-on-cancel" } else { "fail-late" };
                nursery.run_in_actor(&name, func, &(format!("{name} failed"), ms))?;
            }
            Ok(())
        })
    }

    /// Run `add(i, i)` in `n` children at once; gather as they complete.
    fn fan_out(n: u32) -> Result<u64, Error> {
        open_nursery(|nursery| {
            let portals = (0..n).map(|i| nursery.start_actor(&format!("adder_{i}"))).collect::<Result<Vec<_>, _>>()?;
            let calls = portals
                .iter()
                .enumerate()
                .map(|(i, p)| p.start::<i64, _>("add", &(i as i64, i as i64)))
                .collect::<Result<Vec<_>, _>>()?;
            let mut total = 0u64;
            for (_, r) in tractor::as_completed(calls) {
                total += r? as u64;
            }
            Ok(total)
        })
    }
}

mod discover;
mod extra;

impl Actor {
    fn try_spawn(grants: &tractor::Grants) -> Result<String, Error> {
        open_nursery(|n| match n.start_actor_with("narrowed", None, grants) {
            Ok(p) => {
                p.cancel_actor()?;
                Ok("spawned".to_string())
            }
            Err(e) => Ok(format!("{:?}: {}", e.kind, e.message)),
        })
    }

    fn started_stream(ctx: &Context) -> Result<tractor::Stream, Error> {
        let ctx = tractor::callee(ctx);
        ctx.started(&())?;
        ctx.open_stream()
    }
}

export!(Actor);
