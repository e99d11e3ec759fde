//! Limits: memory, CPU time per call, children and depth, each ending the
//! offending actor (or spawn) with a `limit` error naming it, while the rest
//! of the tree carries on.

use crate::common::{assert_no_leftovers, cbor, host_exe, testbed};
use ciborium::Value;
use tractor_host::wire::ContextOutcome;
use tractor_host::ErrorKind;
use tractor_host::Manifest;
use tractor_host::Nursery;
use tractor_host::Tree;

/// The testbed component under a manifest with extra TOML after its
/// `[component.testbed]` table (and optionally a `[tree]` table).
fn testbed_with(tree_table: &str, component_tables: &str) -> Tree {
    let source = testbed().manifest.components["testbed"].source.clone();
    let dir = std::env::temp_dir().join(format!("tractor-sandbox-{}", tractor_host::spawn::new_uid()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = format!(
        "[root]\ncomponent = \"testbed\"\n\n[tree]\n{tree_table}\n\n[component.testbed]\nsource = \"{}\"\n\n{component_tables}\n",
        source.display()
    );
    std::fs::write(dir.join("tractor.toml"), text).unwrap();
    let mut tree = Tree::prepare(&Manifest::load(&dir).unwrap(), host_exe()).unwrap();
    tree.info.id = tractor_host::spawn::new_uid();
    tree
}

/// The testbed with `[tree]` settings and `[component.testbed.limits]`.
fn limited(tree_table: &str, limits: &str) -> Tree {
    testbed_with(tree_table, &format!("[component.testbed.limits]\n{limits}"))
}

each_backend! {
async fn memory_beyond_the_limit_ends_that_actor_only() {
    let tree = limited("", "memory = \"48MiB\"");
    let ctx = tree.driver();
    // Another nursery's actor: the limit must not touch it.
    let others = Nursery::open(&ctx);
    let calm = others.start_actor("calm", Some("testbed")).await.unwrap();
    let n = Nursery::open(&ctx);
    let p = n.run_in_actor("hog", Some("testbed"), "hog", cbor(&[8])).await.unwrap();
    assert_eq!(p.result().await.unwrap(), cbor(&(8u64 << 20)));
    let p = n.run_in_actor("glutton", Some("testbed"), "hog", cbor(&[200])).await.unwrap();
    let e = p.result().await.unwrap_err();
    assert_eq!((e.kind, e.actor_name.as_str()), (ErrorKind::Limit, "glutton"), "{e}");
    assert!(e.message.contains("memory limit of 48MiB exceeded"), "{e}");
    let w = n.wait().await.unwrap_err();
    assert_eq!(w.kind, ErrorKind::Limit);
    assert_eq!(calm.run("add", cbor(&(1, 2))).unwrap().get().await.unwrap(), cbor(&3));
    others.wait().await.unwrap();
    assert_no_leftovers(&tree.info.id);
}
}

each_backend! {
async fn a_call_over_its_cpu_budget_is_stopped() {
    let tree = limited("", "cpu-per-call = \"200ms\"");
    let n = Nursery::open(&tree.driver());
    let p = n.run_in_actor("spinner", Some("testbed"), "spin", Value::Array(vec![])).await.unwrap();
    let e = p.result().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Limit, "{e}");
    assert!(e.message.contains("cpu-per-call limit of 200ms exceeded"), "{e}");
    let _ = n.wait().await;
    assert_no_leftovers(&tree.info.id);
}
}

each_backend! {
async fn unbounded_recursion_traps_on_the_stack_limit() {
    let tree = testbed();
    let n = Nursery::open(&tree.driver());
    let p = n.run_in_actor("deep", Some("testbed"), "recurse", cbor(&[0])).await.unwrap();
    let e = p.result().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Trap, "{e}");
    assert!(e.message.contains("call stack exhausted"), "{e}");
    let _ = n.wait().await;
    assert_no_leftovers(&tree.info.id);
}
}

each_backend! {
async fn children_and_depth_limits_refuse_the_spawn() {
    let tree = limited("max-depth = 2", "children = 2");
    let n = Nursery::open(&tree.driver());
    let p = n.run_in_actor("parent", Some("testbed"), "spawn-many", cbor(&[3])).await.unwrap();
    let e = p.result().await.unwrap_err();
    assert_eq!((e.kind, e.actor_name.as_str()), (ErrorKind::Limit, "parent"), "{e}");
    assert!(e.message.contains("children limit of 2 exceeded"), "{e}");
    let _ = n.wait().await;
    // A fresh nursery: the failure above cancelled the first one.
    let n = Nursery::open(&tree.driver());
    let p = n.run_in_actor("top", Some("testbed"), "nest", cbor(&(5, false))).await.unwrap();
    let e = p.result().await.unwrap_err();
    // Relayed up the chain with its kind; its origin says what happened.
    assert_eq!(e.kind, ErrorKind::Limit, "{e}");
    let limit = e.origin();
    assert_eq!((limit.kind, limit.actor_name.as_str()), (ErrorKind::Limit, "level_4"), "{e}");
    assert!(limit.message.contains("max-depth limit of 2 exceeded"), "{limit}");
    let _ = n.wait().await;
    assert_no_leftovers(&tree.info.id);
}
}

/// A fresh folder with `data/file.txt`, `data/sub/`, a symlink `data/link`
/// to `/etc/passwd`, and `secret.txt` beside `data/`.
fn playground() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tractor-fs-{}", tractor_host::spawn::new_uid()));
    std::fs::create_dir_all(dir.join("data/sub")).unwrap();
    std::fs::write(dir.join("data/file.txt"), "hello").unwrap();
    std::fs::write(dir.join("secret.txt"), "secret").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", dir.join("data/link")).unwrap();
    std::fs::canonicalize(dir).unwrap()
}

/// The testbed with `[component.testbed.grants]`.
fn granted(grants: &str) -> Tree {
    testbed_with("", &format!("[component.testbed.grants]\n{grants}"))
}

/// A playground whose `data/` is granted read-only as `/data`, with env
/// `GREETING=hi`: (playground, its data folder, the tree).
fn data_ro_with_greeting() -> (std::path::PathBuf, std::path::PathBuf, Tree) {
    let root = playground();
    let data = root.join("data");
    let tree = granted(&format!(
        "dirs = [{{ host = \"{}\", guest = \"/data\", mode = \"ro\" }}]\nenv = {{ GREETING = \"hi\" }}",
        data.display()
    ));
    (root, data, tree)
}

async fn call(p: &tractor_host::Portal, func: &str, args: Value) -> tractor_host::CallResult {
    p.run(func, args)?.get().await
}

each_backend! {
async fn a_guest_sees_only_its_granted_folder_and_env() {
    let (root, data, tree) = data_ro_with_greeting();
    let n = Nursery::open(&tree.driver());
    let p = n.start_actor("boxed", Some("testbed")).await.unwrap();
    assert_eq!(call(&p, "read-file", cbor(&["/data/file.txt"])).await.unwrap(), cbor(&"hello"));
    for (path, why) in [
        ("/etc/passwd", "outside every preopen"),
        ("/data/../secret.txt", "escaping with .."),
        ("/data/link", "escaping with a symlink"),
        (&format!("{}", root.join("secret.txt").display()), "a host path"),
    ] {
        let e = call(&p, "read-file", cbor(&[path])).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Guest, "{why}: {e}");
        eprintln!("denied ({why}): {}", e.message);
        assert!(e.message.contains("No such file") || e.message.contains("not permitted"), "{why}: {e}");
    }
    let e = call(&p, "write-file", cbor(&("/data/new.txt", "x"))).await.unwrap_err();
    eprintln!("denied (read-only folder): {}", e.message);
    assert!(e.message.contains("not permitted"), "{e}");
    assert!(!data.join("new.txt").exists());
    assert_eq!(call(&p, "get-env", cbor(&["GREETING"])).await.unwrap(), cbor(&"hi"));
    for name in ["HOME", "PATH", "TRACTOR_TREE"] {
        assert_eq!(call(&p, "get-env", cbor(&[name])).await.unwrap(), Value::Null, "{name}");
    }
    n.wait().await.unwrap();
    assert_no_leftovers(&tree.info.id);
}
}

each_backend! {
async fn network_access_is_off_unless_granted() {
    let allowed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (a, o) = (allowed.local_addr().unwrap(), other.local_addr().unwrap());

    let closed = testbed();
    let n = Nursery::open(&closed.driver());
    let p = n.start_actor("offline", Some("testbed")).await.unwrap();
    let e = call(&p, "connect", cbor(&[a.to_string()])).await.unwrap_err();
    eprintln!("denied (no network grant): {}", e.message);
    assert!(e.message.contains("access-denied"), "{e}");
    n.wait().await.unwrap();

    let tree = granted(&format!("connect = [\"{a}\"]"));
    let n = Nursery::open(&tree.driver());
    let p = n.start_actor("online", Some("testbed")).await.unwrap();
    assert_eq!(call(&p, "connect", cbor(&[a.to_string()])).await.unwrap(), cbor(&format!("connected to {a}")));
    let e = call(&p, "connect", cbor(&[o.to_string()])).await.unwrap_err();
    eprintln!("denied (address not in the allow-list): {}", e.message);
    assert!(e.message.contains("access-denied"), "{e}");
    n.wait().await.unwrap();
    assert_no_leftovers(&tree.info.id);
    assert_no_leftovers(&closed.info.id);
}
}

each_backend! {
async fn a_child_gets_no_more_than_its_parent_holds() {
    let (_, data, tree) = data_ro_with_greeting();
    let n = Nursery::open(&tree.driver());
    let p = n.start_actor("parent", Some("testbed")).await.unwrap();
    let ask = |args: Value, func: &'static str| {
        let p = &p;
        async move { format!("{:?}", call(p, func, args).await.unwrap()) }
    };
    let rw = ask(cbor(&(data.display().to_string(), true)), "spawn-with-dir").await;
    assert!(rw.contains("Denied") && rw.contains("(read-write)") && rw.contains("does not hold it"), "{rw}");
    let narrower = ask(cbor(&(data.join("sub").display().to_string(), false)), "spawn-with-dir").await;
    assert!(narrower.contains("spawned"), "{narrower}");
    let elsewhere = ask(cbor(&("/etc", false)), "spawn-with-dir").await;
    assert!(elsewhere.contains("Denied") && elsewhere.contains("dir /etc"), "{elsewhere}");
    assert!(ask(cbor(&("GREETING", "hi")), "spawn-with-env").await.contains("spawned"));
    let env = ask(cbor(&("HOME", "/root")), "spawn-with-env").await;
    assert!(env.contains("Denied") && env.contains("env HOME"), "{env}");
    n.wait().await.unwrap();
    assert_no_leftovers(&tree.info.id);
}
}

/// A folder tree for escape attempts: `data/` (granted) holds `file.txt`,
/// `sub/inner.txt` and symlinks that lead out (`out` -> `..`, `abs` -> the
/// playground, `sub/up2` -> `../..`); `secret.txt` and `outside/` lie
/// beside it.
fn escape_room() -> (std::path::PathBuf, std::path::PathBuf) {
    let root = playground();
    let data = root.join("data");
    std::fs::write(data.join("sub/inner.txt"), "inner").unwrap();
    std::os::unix::fs::symlink("..", data.join("out")).unwrap();
    std::os::unix::fs::symlink(&root, data.join("abs")).unwrap();
    std::os::unix::fs::symlink("../..", data.join("sub/up2")).unwrap();
    std::fs::create_dir(root.join("outside")).unwrap();
    std::fs::write(root.join("outside/marker.txt"), "outside").unwrap();
    std::fs::write(data.join("sub/marker.txt"), "inside").unwrap();
    (root, data)
}

fn granted_dir(data: &std::path::Path, mode: &str) -> Tree {
    granted(&format!("dirs = [{{ host = \"{}\", guest = \"/data\", mode = \"{mode}\" }}]", data.display()))
}

fn path(p: std::path::PathBuf) -> String {
    p.display().to_string()
}

/// `host` must be refused: a `denied` error from the parent naming it.
fn assert_denied(outcome: tractor_host::CallResult, host: &str) {
    let e = outcome.expect_err(host);
    assert_eq!((e.kind, e.actor_name.as_str()), (ErrorKind::Denied, "parent"), "{host}: {e}");
    assert!(e.message.contains(&format!("dir {host} (")) && e.message.contains("does not hold it"), "{host}: {e}");
    eprintln!("denied: {}", e.message);
}

each_backend! {
async fn no_folder_outside_the_parents_can_be_granted() {
    let (root, data) = escape_room();
    let tree = granted_dir(&data, "rw");
    let n = Nursery::open(&tree.driver());
    let p = n.start_actor("parent", Some("testbed")).await.unwrap();
    let read = |host: String, writable: bool, file: &'static str| {
        let p = &p;
        async move { call(p, "read-via-child", cbor(&(host, writable, file))).await }
    };
    // Inside, by every spelling: granted.
    assert_eq!(read(path(data.join("sub")), false, "inner.txt").await.unwrap(), cbor(&"inner"));
    assert_eq!(read(path(data.join("sub/../sub")), true, "inner.txt").await.unwrap(), cbor(&"inner"));
    assert_eq!(read(path(data.clone()), false, "file.txt").await.unwrap(), cbor(&"hello"));
    // Out, by every spelling: denied, read-only or read-write.
    let mut escapes: Vec<String> = ["..", "sub/../..", "../../..", "out", "abs", "sub/up2", "out/data/.."]
        .iter()
        .map(|e| format!("{}/{e}", data.display()))
        .collect();
    escapes.extend([path(root.clone()), "/".to_string(), "/etc".to_string()]);
    for host in &escapes {
        for writable in [false, true] {
            assert_denied(read(host.clone(), writable, "secret.txt").await, host);
        }
    }
    let e = call(&p, "write-via-child", cbor(&(format!("{}/..", data.display()), "pwned.txt", "x"))).await;
    assert_denied(e, &format!("{}/..", data.display()));
    assert!(!root.join("pwned.txt").exists());
    // Symlinks the parent makes in its own read-write folder lead nowhere.
    for (target, link) in [("..", "/data/mine"), ("../../..", "/data/sub/deep"), ("sub/../..", "/data/twisted")] {
        call(&p, "make-symlink", cbor(&(target, link))).await.unwrap();
        let host = format!("{}{}", data.display(), link.trim_start_matches("/data"));
        assert_denied(read(host.clone(), false, "secret.txt").await, &host);
    }
    // wasmtime refuses absolute symlink targets outright; if it ever did
    // not, the grant would still be denied.
    if call(&p, "make-symlink", cbor(&("/", "/data/slash"))).await.is_ok() {
        assert_denied(read(format!("{}/slash", data.display()), false, "etc/passwd").await, &format!("{}/slash", data.display()));
    }
    n.wait().await.unwrap();

    // A read-only parent: no read-write child, and no way out either.
    let tree = granted_dir(&data, "ro");
    let n = Nursery::open(&tree.driver());
    let p = n.start_actor("parent", Some("testbed")).await.unwrap();
    let e = call(&p, "read-via-child", cbor(&(path(data.join("sub")), true, "inner.txt"))).await;
    assert_denied(e, &path(data.join("sub")));
    for host in &escapes {
        assert_denied(call(&p, "read-via-child", cbor(&(host, false, "secret.txt"))).await, host);
    }
    assert_eq!(call(&p, "read-via-child", cbor(&(path(data.join("sub")), false, "inner.txt"))).await.unwrap(), cbor(&"inner"));
    n.wait().await.unwrap();
    assert_no_leftovers(&tree.info.id);
}
}

each_backend! {
async fn a_symlink_swapped_after_the_check_never_leads_out() {
    let (_root, data) = escape_room();
    let flip = data.join("flip");
    std::os::unix::fs::symlink("sub", &flip).unwrap();
    // Swap `flip` between `sub` (inside) and `../outside` as fast as we
    // can while the parent grants it to child after child.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swapper = {
        let (stop, flip, tmp) = (stop.clone(), flip.clone(), data.join("flip.tmp"));
        std::thread::spawn(move || {
            let mut swaps = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let target = if swaps.is_multiple_of(2) { "../outside" } else { "sub" };
                let _ = std::fs::remove_file(&tmp);
                std::os::unix::fs::symlink(target, &tmp).unwrap();
                std::fs::rename(&tmp, &flip).unwrap();
                swaps += 1;
            }
            swaps
        })
    };
    let tree = granted_dir(&data, "ro");
    let n = Nursery::open(&tree.driver());
    let p = n.start_actor("parent", Some("testbed")).await.unwrap();
    let outcomes = call(&p, "read-via-children", cbor(&(path(flip.clone()), "marker.txt", 40))).await.unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let swaps = swapper.join().unwrap();
    let outcomes: Vec<String> = outcomes.deserialized().unwrap();
    let inside = outcomes.iter().filter(|o| *o == "inside").count();
    let denied = outcomes.iter().filter(|o| o.starts_with("denied: ")).count();
    eprintln!("{swaps} swaps: {inside} children read inside, {denied} were denied");
    assert_eq!(inside + denied, outcomes.len(), "a child saw something else: {outcomes:?}");
    n.wait().await.unwrap();
    assert_no_leftovers(&tree.info.id);
}
}

each_backend! {
async fn a_granted_bind_address_serves_a_real_client() {
    use std::io::{BufRead as _, Write as _};
    // A fixed port, and a rule that lets the system pick one.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let tree = granted(&format!("bind = [\"127.0.0.1:{port}\", \"127.0.0.1:0\"]"));
    let n = Nursery::open(&tree.driver());
    let p = n.start_actor("server", Some("testbed")).await.unwrap();
    for addr in [format!("127.0.0.1:{port}"), "127.0.0.1:0".to_string()] {
        let (ctx, first) = p.open_context("serve-once", cbor(&[&addr]), ("test", "t")).await.unwrap();
        let local: String = ciborium::from_reader(first.as_slice()).unwrap();
        let client = tokio::task::spawn_blocking(move || {
            let mut s = std::net::TcpStream::connect(&local).unwrap();
            s.write_all(b"hello from outside\n").unwrap();
            let mut line = String::new();
            std::io::BufReader::new(s).read_line(&mut line).unwrap();
            line
        });
        assert_eq!(client.await.unwrap(), "echo: hello from outside\n");
        assert_eq!(ctx.result().await, ContextOutcome::Returned(cbor(&"hello from outside")), "{addr}");
    }
    // Nothing else: other addresses, the wildcard, IPv6, an unbound listen.
    let other = format!("127.0.0.1:{}", if port == 65535 { port - 1 } else { port + 1 });
    for addr in [Some(other.as_str()), Some("127.0.0.2:0"), Some("0.0.0.0:0"), Some("[::1]:0")] {
        let e = call(&p, "listen-on", cbor(&[addr])).await.unwrap_err();
        assert!(e.message.contains("access-denied"), "{addr:?}: {e}");
        eprintln!("denied: {}", e.message);
    }
    // WASI 0.2 wants a bind before a listen (which we would check as the
    // wildcard address, not granted here).
    let e = call(&p, "listen-on", cbor(&[None::<&str>])).await.unwrap_err();
    assert!(e.message.contains("access-denied") || e.message.contains("invalid-state"), "{e}");
    n.wait().await.unwrap();

    // Connecting is not serving: a connect grant allows no listener.
    let tree = granted("connect = [\"127.0.0.1:1\"]");
    let n = Nursery::open(&tree.driver());
    let p = n.start_actor("client", Some("testbed")).await.unwrap();
    for addr in ["0.0.0.0:0", "127.0.0.1:0"] {
        let e = call(&p, "listen-on", cbor(&[Some(addr)])).await.unwrap_err();
        assert!(e.message.contains("access-denied"), "{addr:?}: {e}");
    }
    n.wait().await.unwrap();
    assert_no_leftovers(&tree.info.id);
}
}
