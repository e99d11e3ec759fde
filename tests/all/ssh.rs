//! The `ssh` backend against a real sshd on loopback: remote actors that
//! run calls, contexts and errors like local ones, components shipped once
//! by hash, lifetimes that hold across the link, and failures named.

use crate::common::ssh::{
    available, on_h1, on_h1_quick_to_notice, parent_cmdline, tree_pids_running, wait_pids_gone, with_h1, SshHost,
};
use crate::common::{assert_all_gone, cbor};
use ciborium::Value;
use tractor_host::{ErrorKind, Nursery, Tree};

#[test]
fn a_remote_actor_serves_calls_contexts_and_errors() {
    with_h1(|h| async move {
        let tree = on_h1(&h);
        let id = tree.info.id.clone();
        let driver = tree.driver();
        let n = Nursery::open(&driver);
        let w = n.start_actor("w", Some("testbed")).await.unwrap();
        assert_eq!(w.run("add", cbor(&(2, 40))).unwrap().get().await.unwrap(), cbor(&42));
        let me: Value = w.run("whoami", Value::Array(vec![])).unwrap().get().await.unwrap();
        let pid: u32 =
            me.as_map().unwrap().iter().find(|(k, _)| k.as_text() == Some("pid")).unwrap().1.deserialized().unwrap();
        assert!(
            parent_cmdline(pid).contains("__remote"),
            "the remote actor's parent is its relay: {}",
            parent_cmdline(pid)
        );
        // A context streams over the link.
        let (ctx, first) = w.open_context("echo-ctx", cbor(&(41,)), ("test", "t")).await.unwrap();
        assert_eq!(ciborium::from_reader::<Value, _>(first.as_slice()).unwrap(), cbor(&42));
        drop(ctx);
        // A remote failure is a remote error naming the actor.
        let e = w.run("fail", cbor(&("boom",))).unwrap().get().await.unwrap_err();
        assert_eq!((e.kind, e.actor_name.as_str()), (ErrorKind::Guest, "w"), "{e}");
        assert!(e.message.contains("boom"), "{e}");
        // The component went once into h1's cache.
        let cached: Vec<_> = std::fs::read_dir(h.cache()).unwrap().flatten().map(|e| e.file_name()).collect();
        assert_eq!(cached.len(), 1, "{cached:?}");
        n.cancel().await;
        let _ = n.wait().await;
        drop((w, n, driver));
        assert_all_gone(&id);
    });
}

/// What starting `w` on h1 in `tree` fails with.
async fn spawn_error(tree: &Tree) -> tractor_host::RemoteError {
    let driver = tree.driver();
    let n = Nursery::open(&driver);
    let e = n.start_actor("w", Some("testbed")).await.unwrap_err();
    let _ = n.wait().await;
    e
}

#[test]
fn components_ship_once_by_hash_and_a_corrupted_one_is_refused() {
    if !available() {
        return;
    }
    crate::common::run(async {
        use std::os::unix::fs::MetadataExt as _;
        let h = SshHost::start(10);
        let entry =
            || std::fs::read_dir(h.cache()).unwrap().flatten().map(|e| e.metadata().unwrap().ino()).collect::<Vec<_>>();
        for round in 0..2 {
            let tree = on_h1(&h);
            let driver = tree.driver();
            let n = Nursery::open(&driver);
            let w = n.start_actor("w", Some("testbed")).await.unwrap();
            assert_eq!(w.run("add", cbor(&(1, round))).unwrap().get().await.unwrap(), cbor(&(1 + round)));
            n.cancel().await;
            let _ = n.wait().await;
            if round == 0 {
                assert_eq!(entry().len(), 1);
            }
        }
        let first = entry();
        // Same bytes again: found by hash, neither sent nor recompiled.
        let tree = on_h1(&h);
        {
            let driver = tree.driver();
            let n = Nursery::open(&driver);
            n.start_actor("w", Some("testbed")).await.unwrap().run("add", cbor(&(1, 1))).unwrap().get().await.unwrap();
            n.cancel().await;
            let _ = n.wait().await;
        }
        assert_eq!(entry(), first, "the cached entry was reused, not rewritten");
        // A component whose bytes no longer match its hash (one byte
        // flipped after it was hashed) is refused by the far side.
        let mut tree = on_h1(&h);
        std::fs::remove_dir_all(h.cache()).unwrap();
        let copy = h.dir.join("flipped.wasm");
        let c = tree.info.components.iter_mut().find(|c| c.name == "testbed").unwrap();
        let mut bytes = std::fs::read(c.source.as_ref().unwrap()).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&copy, bytes).unwrap();
        c.source = Some(copy);
        let e = spawn_error(&tree).await;
        assert_eq!(e.kind, ErrorKind::SpawnFailed, "{e}");
        assert!(e.message.contains("sha256 mismatch") && e.message.contains("host 'h1'"), "{e}");
        assert_all_gone(&tree.info.id);
    });
}

#[test]
fn a_wrong_key_a_wrong_version_and_an_unknown_host_key_fail_clearly() {
    with_h1(|h| async move {
        // Another key than the one sshd knows.
        let other = h.dir.join("other_key");
        let out = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", ""])
            .arg("-f")
            .arg(&other)
            .output()
            .unwrap();
        assert!(out.status.success());
        let config = std::fs::read_to_string(h.dir.join("ssh_config")).unwrap();
        std::fs::write(h.dir.join("bad_key_config"), config.replace("user_key", "other_key")).unwrap();
        let mut tree = on_h1(&h);
        tree.info.hosts[0].ssh_config = Some(h.dir.join("bad_key_config"));
        let e = spawn_error(&tree).await;
        assert_eq!(e.kind, ErrorKind::SpawnFailed, "{e}");
        assert!(e.message.contains("Permission denied (publickey)"), "{e}");
        assert_all_gone(&tree.info.id);
        // A host key we do not know: refused (never turned off).
        std::fs::write(h.dir.join("empty_known_hosts"), "").unwrap();
        std::fs::write(h.dir.join("unknown_config"), config.replace("/known_hosts", "/empty_known_hosts")).unwrap();
        let mut tree = on_h1(&h);
        tree.info.hosts[0].ssh_config = Some(h.dir.join("unknown_config"));
        let e = spawn_error(&tree).await;
        assert!(e.message.contains("Host key verification failed"), "{e}");
        assert_all_gone(&tree.info.id);
        // A relay of another version says so in its Hello.
        let mut hello = Vec::new();
        let msg = tractor_host::spawn::ssh::RemoteMsg::Hello {
            proto: 99,
            version: "0.0.9".into(),
            hostname: "old".into(),
            pid: 1,
        };
        tractor_host::wire::frame::encode_frame(&msg, &mut hello).unwrap();
        std::fs::write(h.dir.join("hello.bin"), hello).unwrap();
        let fake = h.dir.join("old-tractor-host");
        std::fs::write(&fake, format!("#!/bin/sh\ncat {}/hello.bin\nexec cat >/dev/null\n", h.dir.display())).unwrap();
        std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let mut tree = on_h1(&h);
        tree.info.hosts[0].exe = fake.display().to_string();
        let e = spawn_error(&tree).await;
        assert_eq!(e.kind, ErrorKind::SpawnFailed, "{e}");
        assert!(e.message.contains("tractor-host 0.0.9 there speaks remote protocol 99"), "{e}");
        assert!(e.message.contains(&format!("this one is {} and speaks 1", env!("CARGO_PKG_VERSION"))), "{e}");
        assert_all_gone(&tree.info.id);
    });
}

#[test]
fn a_sigkilled_remote_actor_is_reported_with_its_signal_and_host() {
    with_h1(|h| async move {
        let tree = on_h1(&h);
        let id = tree.info.id.clone();
        let driver = tree.driver();
        let n = Nursery::open(&driver);
        let w = n.start_actor("w", Some("testbed")).await.unwrap();
        let held = w.run("sleep-forever", Value::Array(vec![])).unwrap();
        // The pid a remote actor reports is its pid on its host (here, this one).
        let pid = w.info().pid;
        assert!(parent_cmdline(pid).contains("__remote"));
        // SAFETY: plain kill(2).
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        let e = held.get().await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::ActorDied, "{e}");
        assert!(e.message.contains("actor 'w' on host 'h1' died: killed by signal 9"), "{e}");
        let closed = n.wait().await.unwrap_err();
        assert!(closed.to_string().contains("killed by signal 9"), "{closed}");
        drop((w, n, driver));
        assert_all_gone(&id);
    });
}

#[test]
fn a_frozen_connection_is_detected_on_both_sides_while_it_stays_frozen() {
    with_h1(|h| async move {
        let tree = on_h1_quick_to_notice(&h);
        let id = tree.info.id.clone();
        let driver = tree.driver();
        let n = Nursery::open(&driver);
        let w = n.start_actor("w", Some("testbed")).await.unwrap();
        let (held, _) = w.open_context("wait-for-cancel", Value::Array(vec![]), ("test", "t")).await.unwrap();
        assert_eq!(w.run("add", cbor(&(1, 1))).unwrap().get().await.unwrap(), cbor(&2));
        // Heartbeats keep an idle link alive well past dead-after.
        tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
        assert_eq!(w.run("add", cbor(&(2, 2))).unwrap().get().await.unwrap(), cbor(&4), "an idle link is not lost");
        // Freeze the connection: its master (which does every session's
        // I/O; a session's client hands it its descriptors) stops, and
        // nothing closes, as in a partition.
        let master = tree_pids_running(&id, "ControlMaster=yes");
        assert_eq!(master.len(), 1, "one master");
        let remote: Vec<u32> = [tree_pids_running(&id, "__remote"), vec![w.info().pid]].concat();
        // SAFETY: plain kill(2).
        unsafe { libc::kill(master[0] as i32, libc::SIGSTOP) };
        let e = match held.result().await {
            tractor_host::wire::ContextOutcome::Failed(e) => e,
            other => panic!("the context should fail: {other:?}"),
        };
        assert_eq!(e.kind, ErrorKind::ActorDied, "{e}");
        assert!(e.message.contains("lost contact with actor 'w' on host 'h1' (no frame for 1s"), "{e}");
        // The far side, hearing nothing for dead-after either, tears its
        // subtree down by itself while the connection is still frozen.
        wait_pids_gone(&remote, std::time::Duration::from_secs(10), "the relay and its actor outlived dead-after")
            .await;
        let _ = n.wait().await;
        drop((w, n, driver));
        assert_all_gone(&id);
    });
}

#[test]
fn a_slow_link_is_not_taken_for_a_lost_one() {
    with_h1(|h| async move {
        // 100 ms each way: a round trip of 200 ms, a fifth of dead-after.
        let delay = std::time::Duration::from_millis(100);
        let proxy = crate::common::proxy::DelayProxy::start(h.port, delay);
        let mut tree = on_h1_quick_to_notice(&h);
        tree.info.hosts[0].ssh_config = Some(h.config_via(proxy.port));
        let id = tree.info.id.clone();
        let driver = tree.driver();
        let n = Nursery::open(&driver);
        let w = n.start_actor("w", Some("testbed")).await.unwrap();
        // A hundred calls in flight at once, each answered right.
        let calls: Vec<_> = (0..100).map(|i| w.run("add", cbor(&(i, 1))).unwrap()).collect();
        for (i, c) in calls.into_iter().enumerate() {
            assert_eq!(c.get().await.unwrap(), cbor(&(i + 1)));
        }
        let start = std::time::Instant::now();
        assert_eq!(w.run("add", cbor(&(1, 1))).unwrap().get().await.unwrap(), cbor(&2));
        let rtt = start.elapsed();
        assert!(rtt >= 2 * delay, "the proxy delays: a call took {rtt:?}");
        // Idle for three dead-afters: heartbeats keep the slow link alive.
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        assert_eq!(w.run("add", cbor(&(2, 2))).unwrap().get().await.unwrap(), cbor(&4), "not lost");
        n.cancel().await;
        n.wait().await.unwrap();
        drop((w, n, driver, proxy));
        assert_all_gone(&id);
    });
}

#[test]
fn a_remote_actor_holds_only_its_grants_there() {
    with_h1(|h| async move {
        let mut tree = on_h1(&h);
        for c in &mut tree.info.components {
            c.grants.env.insert("GREETING".into(), "hi".into());
        }
        let id = tree.info.id.clone();
        let driver = tree.driver();
        let n = Nursery::open(&driver);
        let w = n.start_actor("w", Some("testbed")).await.unwrap();
        let env = |name: &str| w.run("get-env", cbor(&(name,))).unwrap().get();
        assert_eq!(env("GREETING").await.unwrap(), cbor(&Some("hi")), "the granted variable");
        // Not the relay's environment (which has TRACTOR_TREE and HOME).
        for name in ["HOME", "TRACTOR_TREE", "PATH"] {
            assert_eq!(env(name).await.unwrap(), Value::Null, "{name} is not granted");
        }
        // No folder, no address: the remote host's files and its sshd are
        // as out of reach as locally.
        for path in ["/etc/hostname", "/proc/self/environ", "../../etc/passwd"] {
            let e = w.run("read-file", cbor(&(path,))).unwrap().get().await.unwrap_err();
            assert_eq!(e.kind, ErrorKind::Guest, "{path}: {e}");
            assert!(e.message.contains("No such file") || e.message.contains("not permitted"), "{path}: {e}");
        }
        let addr = format!("127.0.0.1:{}", h.port);
        let e = w.run("connect", cbor(&(addr.as_str(),))).unwrap().get().await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Guest, "connect {addr}: {e}");
        assert!(e.message.contains("access-denied"), "{e}");
        n.cancel().await;
        let _ = n.wait().await;
        drop((w, n, driver));
        assert_all_gone(&id);
    });
}
