//! `tractor-host ps` and the drivers' control sockets: the live tree of a
//! running `tractor-host run` (every backend), live counts of a tree this
//! process drives, and the sockets tried the way an attacker would (another
//! user, a fake listener, garbage requests).

use crate::common::{assert_no_leftovers, assert_tree_gone_within, cbor, daemon_tree, host_exe, testbed};
use ciborium::Value;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tractor_host::control;
use tractor_host::spawn::Backend;
use tractor_host::wire::{ActorStatus, RunState, TreeStatus};
use tractor_host::Nursery;

/// `tractor-host ps` with `args`: its stdout (it must succeed).
fn ps_cli(args: &[&str]) -> String {
    let out = Command::new(host_exe()).arg("ps").args(args).output().unwrap();
    assert!(out.status.success(), "ps {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// This process's tree `id`, as its control socket reports it.
async fn tree_status(id: &str) -> TreeStatus {
    let (trees, _) = control::ps().await;
    trees.into_iter().find(|t| t.tree_id == id).expect("the driver's control socket answers `ps`")
}

/// Ask until `check` holds of tree `id` (an actor's own state changes,
/// such as a grandchild becoming ready, have no event the test can wait
/// on); fails after a minute.
async fn until(id: &str, what: &str, check: impl Fn(&TreeStatus) -> bool) -> TreeStatus {
    let start = Instant::now();
    loop {
        let t = tree_status(id).await;
        if check(&t) {
            return t;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "never happened: {what}; last: {t:#?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The control socket of this process's tree `id`.
async fn socket_of(id: &str) -> String {
    let mine = format!(".{}.", std::process::id());
    for name in control::addresses().into_iter().filter(|n| n.contains(&mine)) {
        if control::query(&name).await.is_ok_and(|t| t.tree_id == id) {
            return name;
        }
    }
    panic!("no control socket of tree {id}");
}

fn by_name(t: &TreeStatus) -> HashMap<&str, &ActorStatus> {
    t.actors.iter().map(|a| (a.name.as_str(), a)).collect()
}

#[test]
fn ps_shows_daemon_tree_with_its_parent_links_on_every_backend() {
    let _serial = crate::common::serial();
    for backend in Backend::ALL {
        let (mut host, id) = daemon_tree(backend);
        let json = ps_cli(&["--json", "--tree", &id]);
        let trees: Vec<TreeStatus> = serde_json::from_str(&json).unwrap();
        assert_eq!(trees.len(), 1, "{backend}: {json}");
        let t = &trees[0];
        assert_eq!(t.driver_pid, host.id(), "{backend}");
        assert!(t.label.ends_with("examples/daemon_tree/tractor.toml"), "{backend}: {}", t.label);
        assert_eq!(t.actors.len(), 7, "{backend}: {json}");
        let a = by_name(t);
        let uid = |name: &str| a[name].uid.as_str();
        let parents: Vec<(&str, &str)> = t.actors.iter().map(|x| (x.name.as_str(), x.parent_uid.as_str())).collect();
        let want = vec![
            ("root", ""),
            ("branch_0", uid("root")),
            ("branch_0.leaf_0", uid("branch_0")),
            ("branch_0.leaf_1", uid("branch_0")),
            ("branch_1", uid("root")),
            ("branch_1.leaf_0", uid("branch_1")),
            ("branch_1.leaf_1", uid("branch_1")),
        ];
        assert_eq!(parents, want, "{backend}: each actor after its parent, with its parent's uid");
        let processes = crate::common::tree_processes(&id);
        for x in &t.actors {
            assert_eq!((x.backend.as_str(), x.state), (backend.name(), RunState::Running), "{backend}: {x:?}");
            assert_eq!(x.depth, x.name.matches('_').count() as u32, "{backend}: {x:?}");
            assert_eq!(x.component, "daemon_tree");
            if backend.is_process() {
                assert!(processes.contains(&x.pid), "{backend}: {x:?} is a process of the tree");
                assert!(x.rss_bytes.is_some_and(|r| r > 1 << 20), "{backend}: {x:?}");
            } else {
                assert_eq!((x.pid, x.rss_bytes), (host.id(), None), "{backend}: a thread actor shares its process");
            }
        }
        // The root runs its entry export; the branches and leaves each
        // serve the context their parent holds open.
        assert_eq!((a["root"].calls, a["root"].contexts), (1, 0), "{backend}");
        assert_eq!((a["branch_1.leaf_0"].calls, a["branch_1.leaf_0"].contexts), (0, 1), "{backend}");
        let pids: std::collections::HashSet<u32> = t.actors.iter().map(|x| x.pid).collect();
        assert_eq!(pids.len(), if backend.is_process() { 7 } else { 1 }, "{backend}");
        // The table draws the same tree.
        let table = ps_cli(&["--tree", &id]);
        for line in
            ["  root ", "  ├─ branch_0 ", "  │  └─ branch_0.leaf_1 ", "  └─ branch_1 ", "     └─ branch_1.leaf_1 "]
        {
            assert!(table.contains(line), "{backend}: no `{line}` in\n{table}");
        }
        assert!(table.contains("serving 1 call") && table.contains("serving 1 context"), "{table}");
        // SIGKILL of the driver: its tree goes, and so does its socket
        // (abstract: nothing is left to go stale).
        host.kill().unwrap();
        host.wait().unwrap();
        assert_tree_gone_within(&id, Duration::from_secs(30));
        let gone = format!(".{}.", host.id());
        assert!(!control::addresses().iter().any(|n| n.contains(&gone)), "{backend}: the control socket is gone");
        assert_eq!(ps_cli(&["--json", "--tree", &id]).trim(), "[]", "{backend}");
    }
}

each_backend! {
async fn ps_counts_calls_contexts_peers_and_children_as_they_change() {
    let mut tree = testbed();
    for c in &mut tree.info.components {
        c.grants.discover = vec!["*".into()];
    }
    let id = tree.info.id.clone();
    let driver = tree.driver();
    let n = Nursery::open(&driver);
    let a = n.start_actor("a", Some("testbed")).await.unwrap();
    assert!(a.child().wait_ready().await);
    for i in 0..3 {
        assert_eq!(a.run("add", cbor(&(i, 1))).unwrap().get().await.unwrap(), cbor(&(i + 1)));
    }
    let t = tree_status(&id).await;
    let me = by_name(&t)["a"];
    assert_eq!((me.state, me.calls, me.contexts, me.served, me.peers), (RunState::Running, 0, 0, 3, 0), "{me:?}");
    assert_eq!(me.describe(), "idle");
    assert_eq!(me.parent_uid, "", "a child of the driver is a root of the tree");
    // A call that stays, a context that stays open, a peer link (the
    // driver finds `a`), and a subtree of two under `b`.
    let held = a.run("sleep-forever", Value::Array(vec![])).unwrap();
    let (ctx, _) = a.open_context("wait-for-cancel", Value::Array(vec![]), ("test", "t")).await.unwrap();
    let found = driver.find_actor("a").await.unwrap().expect("a is registered");
    let b = n.start_actor("b", Some("testbed")).await.unwrap();
    let _subtree = b.run("sleepers", cbor(&(2, 1))).unwrap();
    // Registered once ready: wait on that, then ask.
    for kid in ["b.0", "b.1"] {
        driver.wait_for_actor(kid).await.unwrap();
    }
    let t = tree_status(&id).await;
    let all = by_name(&t);
    let me = all["a"];
    assert_eq!((me.calls, me.contexts, me.peers), (1, 1, 1), "{me:?}");
    assert_eq!(me.describe(), "serving 1 call, 1 context");
    for kid in ["b.0", "b.1"] {
        assert_eq!(all[kid].parent_uid, all["b"].uid, "{t:#?}");
        assert_eq!(all[kid].depth, 1);
    }
    assert_eq!(t.actors.len(), 4);
    // Dropping what it held: the call and the context end (both counted
    // as served), the peer link closes.
    drop((held, ctx, found));
    let t = until(&id, "a is idle again with no peer", |t| {
        by_name(t).get("a").is_some_and(|a| a.calls == 0 && a.contexts == 0 && a.peers == 0)
    })
    .await;
    assert_eq!(by_name(&t)["a"].served, 5, "{t:#?}");
    n.cancel().await;
    let _ = n.wait().await;
    assert!(tree_status(&id).await.actors.is_empty(), "a nursery that is done leaves nothing to list");
    assert_no_leftovers(&id);
}
}

#[test]
fn control_sockets_refuse_other_users_garbage_and_impostors() {
    crate::common::run(async {
        let tree = testbed();
        let id = tree.info.id.clone();
        let driver = tree.driver();
        let n = Nursery::open(&driver);
        n.start_actor("a", Some("testbed")).await.unwrap().child().wait_ready().await;
        let name = socket_of(&id).await;
        // Another user is dropped unheard (SO_PEERCRED), whatever it sends.
        let script = format!(
            "import socket\n\
             s = socket.socket(socket.AF_UNIX)\n\
             s.connect('\\0{name}')\n\
             s.settimeout(30)\n\
             try:\n    s.sendall(bytes.fromhex('000000026250'))\n    print(repr(s.recv(64)))\n\
             except (ConnectionResetError, BrokenPipeError):\n    print('reset')\n"
        );
        let out = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c", &script])
            .output()
            .expect("setpriv and /usr/bin/python3");
        // Closed unread: an EOF, or a reset if its request was still unread.
        let heard = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(heard == "b''" || heard == "reset", "{out:?}");
        // Our own user's garbage: an oversized length, then bytes that are
        // no request. Each connection is closed; the driver answers on.
        for bad in [vec![0xff, 0xff, 0xff, 0xff], vec![0, 0, 0, 3, 0xde, 0xad, 0xbe]] {
            let name = name.clone();
            let reply = tokio::task::spawn_blocking(move || {
                use std::os::linux::net::SocketAddrExt as _;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
                let mut s = std::os::unix::net::UnixStream::connect_addr(&addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                s.write_all(&bad).unwrap();
                let mut got = Vec::new();
                s.read_to_end(&mut got).map(|_| got)
            })
            .await
            .unwrap();
            assert_eq!(reply.unwrap(), Vec::<u8>::new(), "a bad request gets no answer");
        }
        assert_eq!(control::query(&name).await.unwrap().actors.len(), 1, "the driver still answers");
        // An impostor (another user) listening under a name of ours is not
        // believed: `ps` lists it as failed, never as a tree.
        let fake = format!("{}{}.999999.0", control::PREFIX, unsafe { libc::getuid() });
        let script = format!(
            "import socket, sys; s = socket.socket(socket.AF_UNIX); s.bind('\\0{fake}'); s.listen(); \
             print('up', flush=True); sys.stdin.read()"
        );
        let mut impostor = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(impostor.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "up");
        let (trees, failed) = control::ps().await;
        assert!(trees.iter().any(|t| t.tree_id == id));
        assert!(trees.iter().all(|t| t.driver_pid != 999999), "{trees:?}");
        let why = failed.iter().find(|(n, _)| *n == fake).map(|(_, why)| why.clone());
        assert_eq!(why.as_deref(), Some("bound by another user; ignored"), "{failed:?}");
        drop(impostor.stdin.take());
        impostor.wait().unwrap();
        n.cancel().await;
        let _ = n.wait().await;
        assert_no_leftovers(&id);
    });
}

#[test]
fn ps_watch_redraws_until_its_count_and_says_when_nothing_runs() {
    // Not a terminal: each refresh is printed after a blank line.
    let out = ps_cli(&["--watch", "--count", "3", "--interval", "10ms", "--tree", "no-such-tree"]);
    assert_eq!(out, "no running trees\n\nno running trees\n\nno running trees\n");
    let out = Command::new(host_exe()).args(["ps", "--interval", "soon"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("`soon` is not a duration"), "{err}");
}
