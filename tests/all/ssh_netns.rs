//! The ssh backend against sshds in network namespaces: "hosts" with their
//! own network, hostname and cache, so a partition is real (the link goes
//! down; nothing is closed, nothing is told) and a tree can span hosts.

use crate::common::ssh::{available, on_h1, on_h1_quick_to_notice, relays, wait_pids_gone, SshHost};
use crate::common::{assert_all_gone, cbor};
use ciborium::Value;
use std::time::{Duration, Instant};
use tractor_host::wire::ContextOutcome;
use tractor_host::{ErrorKind, Nursery};

/// The network namespace `pid` lives in.
fn net_of(pid: u32) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/net")).map(|p| p.display().to_string()).unwrap_or_default()
}

#[test]
fn a_partition_is_detected_on_both_sides_while_the_link_stays_down() {
    if !available() {
        return;
    }
    crate::common::run(async {
        let h = SshHost::in_netns("h1");
        let net = h.net.as_ref().unwrap();
        let tree = on_h1_quick_to_notice(&h);
        let id = tree.info.id.clone();
        let driver = tree.driver();
        let n = Nursery::open(&driver);
        let w = n.start_actor("w", Some("testbed")).await.unwrap();
        assert_eq!(w.run("add", cbor(&(1, 1))).unwrap().get().await.unwrap(), cbor(&2));
        let (held, _) = w.open_context("wait-for-cancel", Value::Array(vec![]), ("test", "t")).await.unwrap();
        // It really runs on the other side of the veth.
        let pid = w.info().pid;
        assert_ne!(net_of(pid), net_of(std::process::id()), "w runs in h1's network namespace");
        let remote = [relays(&id), vec![pid]].concat();
        assert_eq!(remote.len(), 2, "{remote:?}");
        net.partition();
        let cut = Instant::now();
        let e = match held.result().await {
            ContextOutcome::Failed(e) => e,
            other => panic!("the context should fail: {other:?}"),
        };
        let seen = cut.elapsed();
        assert_eq!((e.kind, e.actor_name.as_str()), (ErrorKind::ActorDied, "w"), "{e}");
        assert!(e.message.contains("lost contact with actor 'w' on host 'h1'"), "{e}");
        // The far side tears its subtree down by itself, the link still down.
        let far =
            wait_pids_gone(&remote, Duration::from_secs(20), "h1's relay and actor during the partition").await + seen;
        eprintln!("partition: parent heard {seen:?} after the cut, h1's side gone {far:?} after it (dead-after 1s)");
        let failed = n.wait().await.unwrap_err();
        assert_eq!(failed.kind, ErrorKind::ActorDied, "{failed}");
        net.heal();
        // Once healed, h1 takes new actors again.
        let again = Nursery::open(&driver);
        let w2 = again.start_actor("w2", Some("testbed")).await.unwrap();
        assert_eq!(w2.run("add", cbor(&(2, 3))).unwrap().get().await.unwrap(), cbor(&5));
        again.cancel().await;
        let _ = again.wait().await;
        drop((w, w2, n, again, driver));
        assert_all_gone(&id);
        // With the link up, the closed connections reach sshd.
        let start = Instant::now();
        while h.sessions() > 0 {
            assert!(start.elapsed() < Duration::from_secs(30), "sshd sessions left: {:?}", h.session_pids());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
}

#[test]
fn a_tree_spans_two_hosts_each_with_its_own_cache_and_subtree() {
    if !available() {
        return;
    }
    crate::common::run(async {
        let (h1, h2) = (SshHost::in_netns("h1"), SshHost::in_netns("h2"));
        let mut tree = on_h1(&h1);
        tree.info.hosts.push(h2.spec());
        // The same component, placed on h2 under another name.
        let mut on_h2 = tree.info.components.iter().find(|c| c.name == "testbed").unwrap().clone();
        on_h2.name = "testbed-h2".into();
        on_h2.host = Some("h2".into());
        tree.info.components.push(on_h2);
        let id = tree.info.id.clone();
        let driver = tree.driver();
        let n = Nursery::open(&driver);
        // Three levels below the local root on each host: a remote actor,
        // its child and grandchild, local to it (exec on that host).
        let a = n.run_in_actor("a", Some("testbed"), "nest", cbor(&(2, false))).await.unwrap();
        let b = n.run_in_actor("b", Some("testbed-h2"), "nest", cbor(&(2, false))).await.unwrap();
        assert_eq!(a.result().await.unwrap(), cbor(&3));
        assert_eq!(b.result().await.unwrap(), cbor(&3));
        // While such subtrees run, every process of each is in its host's
        // network namespace.
        let s1 = n.run_in_actor("s1", Some("testbed"), "sleepers", cbor(&(1, 2))).await.unwrap();
        let s2 = n.run_in_actor("s2", Some("testbed-h2"), "sleepers", cbor(&(1, 2))).await.unwrap();
        let start = Instant::now();
        let actors = loop {
            let now = crate::common::ssh::tree_pids_running(&id, "__actor");
            if now.len() >= 6 {
                break now;
            }
            assert!(start.elapsed() < Duration::from_secs(60), "{} of 6 actors", now.len());
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let nets = [net_of(h1.sshd_pid()), net_of(h2.sshd_pid())];
        for p in &actors {
            let on = nets.iter().position(|n| *n == net_of(*p));
            assert!(on.is_some(), "actor {p} runs on neither host");
        }
        let on_h1 = actors.iter().filter(|p| net_of(**p) == nets[0]).count();
        assert_eq!(on_h1, 3, "s1, s1.0 and s1.0.0 on h1; the other three on h2");
        for s in [&s1, &s2] {
            s.cancel_actor("test").await.unwrap();
        }
        // A further ssh hop from h1 is refused, clearly (not built yet).
        let hop = n.start_actor("hop", Some("testbed")).await.unwrap();
        let said = hop.run("spawn-of", cbor(&("testbed-h2",))).unwrap().get().await.unwrap();
        let said: String = said.deserialized().unwrap();
        assert!(said.starts_with("spawn-failed: cannot start actor `probe` on another host from host 'h1'"), "{said}");
        hop.cancel_actor("test").await.unwrap();
        // A failure deep on h2 comes back naming the actor where it began.
        let c = n.run_in_actor("c", Some("testbed-h2"), "nest", cbor(&(2, true))).await.unwrap();
        let e = c.result().await.unwrap_err();
        assert!(e.to_string().contains("leaf failed on purpose"), "{e}");
        let _ = n.wait().await;
        // Each host compiled the component into its own cache.
        for h in [&h1, &h2] {
            let cached = std::fs::read_dir(h.cache()).map(|d| d.count()).unwrap_or(0);
            assert_eq!(cached, 1, "{}'s cache", h.name);
        }
        drop((a, b, c, s1, s2, hop, n, driver));
        assert_all_gone(&id);
    });
}
