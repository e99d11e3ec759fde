//! The `tractor-host` binary end to end: the examples, signals to the root,
//! a killed inner actor, and bad manifests. Every test checks the process
//! table for its tree afterwards.

use crate::common;
use crate::common::{assert_all_gone, assert_tree_gone_within, host_exe, repo, testbed};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use tractor_host::spawn::Backend;

/// A `tractor-host run` invocation tagged with a fresh tree id.
fn host(args: &[&str]) -> (Command, String) {
    let id = tractor_host::spawn::new_uid();
    let mut cmd = Command::new(host_exe());
    cmd.args(args).env("TRACTOR_TREE", &id).current_dir(repo()).stdin(Stdio::null());
    (cmd, id)
}

/// Run example `name` with every actor started by `backend`.
fn run_example(name: &str, backend: Backend) -> (Output, String) {
    let (mut cmd, id) = host(&["run", "--spawn", backend.name(), &format!("examples/{name}")]);
    let out = cmd.output().expect("run tractor-host");
    assert_all_gone(&id);
    (out, id)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[test]
fn single_func_collects_the_childs_pid() {
    let _shared = crate::common::shared();
    for backend in Backend::ALL {
        let (out, _) = run_example("single_func", backend);
        let text = stdout(&out);
        assert!(out.status.success(), "{}\n{}", text, stderr(&out));
        let line = text.lines().find(|l| l.contains("Collected subproc")).expect("result line");
        let pid: u32 = line.rsplit(' ').next().unwrap().parse().expect("a pid");
        assert!(pid > 0);
    }
}

#[test]
fn we_are_processes_self_destructs_and_leaves_nothing() {
    let _shared = crate::common::shared();
    for backend in Backend::ALL {
        let (out, _) = run_example("we_are_processes", backend);
        let (text, err) = (stdout(&out), stderr(&out));
        assert_eq!(out.status.code(), Some(1), "{text}\n{err}");
        assert!(text.contains("This process tree will self-destruct in 1 sec..."), "{text}");
        assert_eq!(text.matches("is running in process").count(), cores(), "{text}");
        assert!(err.contains("Self Destructed"), "{err}");
    }
}

#[test]
fn primes_pool_checks_every_number() {
    let _shared = crate::common::shared();
    for backend in Backend::ALL {
        let (out, _) = run_example("primes_pool", backend);
        let text = stdout(&out);
        assert!(out.status.success(), "{text}\n{}", stderr(&out));
        assert_eq!(text.matches("is prime:").count(), 6, "{text}");
        assert!(text.contains("1099726899285419 is prime: false"), "{text}");
        assert!(text.contains("total: 5 of 6 numbers are prime"), "{text}");
    }
}

#[test]
fn cluster_starts_one_actor_per_core_and_cancels_them() {
    let _shared = crate::common::shared();
    for backend in Backend::ALL {
        let (out, _) = run_example("cluster", backend);
        let text = stdout(&out);
        assert!(out.status.success(), "{text}\n{}", stderr(&out));
        assert_eq!(text.matches("Yo i am actor").count(), cores(), "{text}");
        assert!(text.contains(&format!("cancelled {} actors", cores())), "{text}");
    }
}

/// A manifest in a fresh folder whose root runs testbed's `func(args)`.
fn testbed_manifest(func: &str, args: &str) -> std::path::PathBuf {
    let tree = testbed();
    let source = tree.manifest.components["testbed"].source.clone();
    let dir = std::env::temp_dir().join(format!("tractor-cli-{}", tractor_host::spawn::new_uid()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = format!(
        "[root]\ncomponent = \"testbed\"\nfunc = \"{func}\"\nargs = {args}\n\n[component.testbed]\nsource = \"{}\"\n",
        source.display()
    );
    std::fs::write(dir.join("tractor.toml"), text).unwrap();
    dir
}

/// Start a sleeping tree (`width` wide, `levels` deep) and wait until every
/// actor has said it is up; returns the host process, the tree id and the
/// `(name, pid)` of each actor.
fn sleeping_tree(width: u32, levels: u32) -> (Child, String, Vec<(String, u32)>) {
    let dir = testbed_manifest("sleepers", &format!("[{width}, {levels}]"));
    let (mut cmd, id) = host(&["run", dir.to_str().unwrap()]);
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let expected: u32 = (0..=levels).map(|l| width.pow(l)).sum();
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut up = Vec::new();
    while up.len() < expected as usize {
        let line = rx.recv_timeout(Duration::from_secs(30)).expect("tree did not come up");
        let words: Vec<_> = line.split_whitespace().collect();
        if let [_, "up", name, pid] = words[..] {
            up.push((name.to_string(), pid.parse().unwrap()));
        }
    }
    assert_eq!(common::tree_processes(&id).len(), expected as usize + 1, "host + every actor");
    (child, id, up)
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: plain kill(2) on a pid we own.
    assert_eq!(unsafe { libc::kill(pid as i32, sig) }, 0);
}

#[test]
fn sigkill_of_the_root_leaves_no_process_within_a_second() {
    let _shared = crate::common::shared();
    let (mut host, id, _) = sleeping_tree(2, 2);
    signal(host.id(), libc::SIGKILL);
    host.wait().unwrap();
    let took = assert_tree_gone_within(&id, Duration::from_secs(1));
    eprintln!("7-actor tree gone {took:?} after SIGKILL of the root");
}

#[test]
fn sigkill_of_a_running_we_are_processes_leaves_nothing() {
    let _shared = crate::common::shared();
    let (mut cmd, id) = host(&["run", "examples/we_are_processes"]);
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines().map_while(Result::ok);
    let mut workers = 0;
    for line in lines {
        workers += usize::from(line.contains("is running in process"));
        if workers == cores() {
            break;
        }
    }
    assert_eq!(workers, cores());
    signal(child.id(), libc::SIGKILL);
    child.wait().unwrap();
    assert_tree_gone_within(&id, Duration::from_secs(1));
}

#[test]
fn sigint_tears_the_tree_down_and_exits_130() {
    let _shared = crate::common::shared();
    let (mut host, id, _) = sleeping_tree(2, 2);
    signal(host.id(), libc::SIGINT);
    let status = host.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert_all_gone(&id);
}

#[test]
fn a_killed_inner_actor_takes_its_subtree_and_is_a_remote_error_naming_it() {
    let _shared = crate::common::shared();
    let (mut host, id, up) = sleeping_tree(2, 2);
    let pid_of = |name: &str| up.iter().find(|(n, _)| n == name).map(|(_, p)| *p).unwrap();
    let (victim, grandchildren) = (pid_of("root.0"), [pid_of("root.0.0"), pid_of("root.0.1")]);
    signal(victim, libc::SIGKILL);
    // Its own children must be gone within a second, whatever the rest of
    // the tree is doing.
    let start = std::time::Instant::now();
    while grandchildren.iter().any(|p| common::tree_processes(&id).contains(p)) {
        assert!(start.elapsed() < Duration::from_secs(1), "children of a killed actor survived it");
        std::thread::sleep(Duration::from_millis(5));
    }
    let status = host.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(host.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("actor 'root.0' died: killed by signal 9"), "{err}");
    assert_all_gone(&id);
}

#[test]
fn a_missing_root_export_is_a_clear_error() {
    let _shared = crate::common::shared();
    let dir = testbed_manifest("no-such-func", "[]");
    let (mut cmd, id) = host(&["run", dir.to_str().unwrap()]);
    let out = cmd.output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("[no-such-export]") && err.contains("no-such-func"), "{err}");
    assert_all_gone(&id);
}

#[test]
fn bad_manifests_name_the_file_and_key() {
    let _shared = crate::common::shared();
    let dir = std::env::temp_dir().join(format!("tractor-bad-{}", tractor_host::spawn::new_uid()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases = [
        ("[root]\ncomponent = \"a\"\ncolor = 1\n[component.a]\nsource = \"a.wasm\"\n", "root.color"),
        ("[root\n", "syntax error at line 1"),
        (
            "[root]\ncomponent = \"a\"\n[component.a]\nsource = \"missing.wasm\"\n",
            "`component.a.source`: file not found",
        ),
        ("[root]\ncomponent = \"a\"\n[component.a]\nsource = \"not-wasm.txt\"\n", "component `a`"),
        (
            "[root]\ncomponent = \"a\"\n[component.a]\nsource = \"a.wasm\"\n[component.a.grants]\ndiscover = [\"db\", \"../x\"]\n",
            "`component.a.grants.discover[1]`: `../x` is not an actor name pattern",
        ),
    ];
    std::fs::write(dir.join("a.wasm"), b"").unwrap();
    std::fs::write(dir.join("not-wasm.txt"), b"hello").unwrap();
    for (text, want) in cases {
        std::fs::write(dir.join("tractor.toml"), text).unwrap();
        let (mut cmd, _) = host(&["run", dir.to_str().unwrap()]);
        let out = cmd.output().unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(want), "want {want:?} in {err}");
        if !want.starts_with("component `") {
            assert!(err.contains("tractor.toml"), "{err}");
        }
    }
}

/// The parent-death signal fires when the *thread* that forked a child
/// exits; a tree that idles longer than tokio's blocking-pool keep-alive
/// (10 s) would lose healthy actors if forks ran on such a thread. Letting
/// time pass is the point of this test, not a synchronisation.
#[test]
fn an_idle_tree_survives_longer_than_thread_keepalive() {
    let _shared = crate::common::shared();
    let (mut host, id, up) = sleeping_tree(2, 2);
    std::thread::sleep(Duration::from_secs(16));
    let alive = common::tree_processes(&id);
    for (name, pid) in &up {
        assert!(alive.contains(pid), "actor {name} ({pid}) died while idle");
    }
    signal(host.id(), libc::SIGINT);
    assert_eq!(host.wait().unwrap().code(), Some(130));
    assert_all_gone(&id);
}

#[test]
fn ping_pong_exchanges_ten_pings_over_a_context() {
    let _shared = crate::common::shared();
    for backend in Backend::ALL {
        let (out, _) = run_example("ping_pong", backend);
        let text = stdout(&out);
        assert!(out.status.success(), "{text}\n{}", stderr(&out));
        assert!(text.contains("started with 11"), "{text}");
        assert!(text.contains("rpc_server answered 10 pings"), "{text}");
    }
}

#[test]
fn broadcast_gives_every_consumer_every_number_in_order() {
    let _shared = crate::common::shared();
    for backend in Backend::ALL {
        let (out, _) = run_example("broadcast", backend);
        let text = stdout(&out);
        assert!(out.status.success(), "{text}\n{}", stderr(&out));
        assert_eq!(text.matches("received 1000 numbers in order").count(), 10, "{text}");
    }
}

/// Issue 7: Rust, Python and JavaScript actors in one tree, under every
/// backend; then Python and JavaScript roots whose export raises, so the
/// whole tree fails with the guest's own traceback or stack.
#[test]
fn polyglot_tree_and_cross_language_errors() {
    let _shared = crate::common::shared();
    for backend in Backend::ALL {
        let (out, _) = run_example("polyglot", backend);
        let (text, err) = (stdout(&out), stderr(&out));
        assert!(out.status.success(), "{backend}: {text}\n{err}");
        for want in [
            "[py] python actor pid=",
            "[js] javascript actor pid=",
            "[leaf] rust leaf pid=",
            "[root] py: add(40, 2) = 42",
            "[root] js: add(40, 2) = 42",
            "[root] py: greet -> hello Ada, 36 years young, from python",
            "[root] js: greet -> hello Ada, 36 years young, from javascript",
            "[root] py: simple-rpc started=11, 10 pings answered",
            "[root] js: simple-rpc started=11, 10 pings answered",
            "[root] py: spawn-rust -> 42",
            "[root] py: find-add(rust-leaf) -> 42",
            "[root] js: find-add(rust-leaf) -> 42",
            "child: False), add(30, 12) = 42",
            "child: false, 1 listed), add(30, 12) = 42",
            "actor 'py' [guest]: ValueError: boom from root to py",
            "Traceback (most recent call last):",
            "in explode",
            "actor 'js' [guest]: TypeError: boom from root to js",
            "explode@bundle.js:",
            "export_fail@componentize-js/initializer.js:",
            "[root] done",
        ] {
            assert!(text.contains(want), "{backend}: want {want:?} in\n{text}\n{err}");
        }
    }
    let built = repo().join("examples/polyglot/build");
    for (component, wasm, want) in [
        ("python", "python.wasm", "Traceback (most recent call last):"),
        ("javascript", "javascript.wasm", "explode@bundle.js:"),
    ] {
        let dir = std::env::temp_dir().join(format!("tractor-cli-{}", tractor_host::spawn::new_uid()));
        std::fs::create_dir_all(&dir).unwrap();
        let text = format!(
            "[root]\ncomponent = \"{component}\"\nfunc = \"fail\"\nargs = [\"boom\"]\n\n[component.{component}]\nsource = \"{}\"\n",
            built.join(wasm).display()
        );
        std::fs::write(dir.join("tractor.toml"), text).unwrap();
        let (mut cmd, id) = host(&["run", dir.to_str().unwrap()]);
        let out = cmd.output().unwrap();
        assert_all_gone(&id);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{component}: {err}");
        assert!(err.contains("the actor tree failed") && err.contains("boom"), "{component}: {err}");
        assert!(err.contains(want), "{component}: want {want:?} in {err}");
        // No build's temporary folder in a stack: stable names only.
        assert!(
            !err.contains("/sources/initializer.js") && !err.contains(&*std::env::temp_dir().to_string_lossy()),
            "{err}"
        );
    }
}

/// `docs/protocol.md` is enough to write a parent from: the independent
/// one in `tests/protocol/parent.py` (standard-library Python, written from
/// the document alone) starts real actors, a zygote among them, and checks
/// the documented behaviour message by message.
#[test]
fn an_independent_parent_written_from_the_spec_drives_real_actors() {
    let _shared = crate::common::shared();
    let wasm = testbed().manifest.components["testbed"].source.clone();
    let out = Command::new("python3")
        .arg(repo().join("tests/protocol/parent.py"))
        .arg("--host-exe")
        .arg(host_exe())
        .arg("--wasm")
        .arg(&wasm)
        .stdin(Stdio::null())
        .output()
        .expect("run python3");
    let (so, se) = (stdout(&out), stderr(&out));
    assert!(out.status.success() && !so.contains("FAIL"), "{so}\n{se}");
    assert!(so.contains("ok forkserver") && so.contains("ok no-leftover-processes"), "{so}");
}

/// A fake cache entry for component `name`, last used `days` ago.
fn fake_entry(dir: &std::path::Path, name: &str, days: u64) -> std::path::PathBuf {
    let path = dir.join(format!("{name}-{:032x}-{:016x}.cwasm", days, 1));
    std::fs::write(&path, vec![0u8; 1000]).unwrap();
    let then = std::time::SystemTime::now() - Duration::from_secs(days * 86400);
    std::fs::File::open(&path).unwrap().set_modified(then).unwrap();
    path
}

#[test]
fn the_cache_is_listed_swept_and_cleared_keeping_what_a_manifest_uses() {
    let _shared = crate::common::shared();
    let dir = std::env::temp_dir().join(format!("tractor-cache-{}", tractor_host::spawn::new_uid()));
    let cache = |args: &[&str]| {
        let (mut cmd, _) = host(args);
        let out = cmd.env("TRACTOR_CACHE_DIR", &dir).env_remove("TRACTOR_CACHE_MAX_AGE").output().unwrap();
        (out.status.code(), stdout(&out), stderr(&out))
    };
    assert_eq!(cache(&["build", "guests/testbed"]).0, Some(0));
    let old = fake_entry(&dir, "old-thing", 40);
    let (code, ls, _) = cache(&["cache", "ls"]);
    assert_eq!(code, Some(0));
    assert!(
        ls.contains("2 entries") && ls.contains("testbed") && ls.contains("old-thing") && ls.contains("40 days ago"),
        "{ls}"
    );

    // Age: the 40-day-old entry goes, the testbed's (just used) stays.
    let (code, out, _) = cache(&["cache", "gc", "--max-age", "30d"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("removed old-thing") && out.contains("kept 1"), "{out}");
    assert!(!old.exists());
    // Size: over a cap of nothing, everything goes but what the manifest uses.
    let recent = fake_entry(&dir, "recent", 1);
    let (code, out, _) = cache(&["cache", "gc", "--max-size", "0", "guests/testbed"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("removed recent") && out.contains("kept 1"), "{out}");
    assert!(!recent.exists());
    // Every build sweeps too (here with the default 30-day age).
    let stale = fake_entry(&dir, "stale", 31);
    assert_eq!(cache(&["build", "guests/testbed"]).0, Some(0));
    assert!(!stale.exists());
    assert!(cache(&["cache", "ls"]).1.contains("1 entries"));

    let (code, _, err) = cache(&["cache", "gc", "--max-age", "forever"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--max-age: `forever` is not a duration"), "{err}");
    let (code, out, _) = cache(&["cache", "clear"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("removed 1 entries"), "{out}");
    assert!(cache(&["cache", "ls"]).1.contains("0 entries"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn feed_service_subscribers_see_the_state_the_writers_change() {
    let _shared = crate::common::shared();
    for backend in Backend::ALL {
        let (out, _) = run_example("feed_service", backend);
        let text = stdout(&out);
        assert!(out.status.success(), "{backend:?}: {text}\n{}", stderr(&out));
        let seen: Vec<_> = text.lines().filter(|l| l.contains("] subscriber ")).collect();
        assert_eq!(seen.len(), 3, "{text}");
        for l in seen {
            assert!(l.contains("final value 2000") && l.contains("always increasing"), "{l}");
        }
    }
}

#[test]
fn asyncio_echo_runs_a_python_asyncio_actor() {
    let _shared = crate::common::shared();
    for backend in Backend::ALL {
        let (out, _) = run_example("asyncio_echo", backend);
        let text = stdout(&out);
        assert!(out.status.success(), "{backend:?}: {text}\n{}", stderr(&out));
        assert!(text.contains("1000 messages echoed through an asyncio queue and task"), "{text}");
        assert!(text.contains("asyncio.gather over 3 children's calls: 6"), "{text}");
        let rate = text.lines().find_map(|l| l.split("mean round trip rate (Hz): ").nth(1)).expect("a rate");
        assert!(rate.trim().parse::<f64>().expect("a number") > 0.0, "{text}");
    }
}

#[test]
fn registry_workers_find_db_by_name_and_a_waiter_finds_late() {
    let _shared = crate::common::shared();
    for backend in Backend::ALL {
        let (out, id) = run_example("registry", backend);
        let text = stdout(&out);
        assert!(out.status.success(), "{backend:?}: {text}\n{}", stderr(&out));
        let db_uid = text.lines().find_map(|l| l.split("  db        uid ").nth(1)).expect("db is listed");
        let db_uid = db_uid.split_whitespace().next().unwrap();
        for i in 0..3 {
            let line = format!(
                "worker_{i}: 10 incr calls, squares 0..99 sum to 328350, from `db` (not a child, uid {db_uid})"
            );
            assert!(text.contains(&line), "{backend:?}: no `{line}` in\n{text}");
        }
        assert!(text.contains("waiter: found `late` once it started: 2 + 3 = 5"), "{text}");
        assert!(text.contains("db counted 30 increments from the workers"), "{text}");
        assert!(text.contains("late      uid ") && text.contains("spawned by root"), "{text}");
        crate::common::assert_all_gone(&id);
        crate::discovery::assert_no_peer_sockets(&id);
    }
}

#[test]
fn mutual_actors_call_each_other_without_deadlock() {
    let _shared = crate::common::shared();
    for backend in Backend::ALL {
        let (out, id) = run_example("mutual", backend);
        let text = stdout(&out);
        assert!(out.status.success(), "{backend:?}: {text}\n{}", stderr(&out));
        assert!(text.contains("a asked b 6: b asked a back, a said 36"), "{backend:?}: {text}");
        assert!(text.contains("a asked b 7: b asked a back, a said 49"), "{backend:?}: {text}");
        assert!(text.contains("a answered 2 questions from b; no deadlock"), "{backend:?}: {text}");
        crate::discovery::assert_no_peer_sockets(&id);
    }
}
