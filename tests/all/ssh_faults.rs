//! The ssh backend when a piece of the chain dies: the relay, one session's
//! ssh client, the connection's master, the remote sshd; a wedged remote
//! actor; a remote actor over its limit. Each failure reaches the parent
//! named, and nothing of the tree is left on either side.

use crate::common::ssh::{on_h1, relays, tree_pids_running, wait_pids_gone, with_h1, SshHost};
use crate::common::{assert_all_gone, cbor};
use ciborium::Value;
use std::time::{Duration, Instant};
use tractor_host::{ErrorKind, Nursery};

fn signal(pid: u32, sig: i32) {
    // SAFETY: plain kill(2).
    assert_eq!(unsafe { libc::kill(pid as i32, sig) }, 0, "kill {pid}");
}

/// Wait until tree `id` has `n` processes running `what`.
async fn wait_for_running(id: &str, what: &str, n: usize) -> Vec<u32> {
    let start = Instant::now();
    loop {
        let now = tree_pids_running(id, what);
        if now.len() >= n {
            return now;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "{} of {n} `{what}` after 60 s", now.len());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[test]
fn a_sigkilled_relay_takes_its_remote_subtree_down_and_is_reported_lost() {
    with_h1(|h| async move {
        let tree = on_h1(&h);
        let id = tree.info.id.clone();
        let driver = tree.driver();
        let n = Nursery::open(&driver);
        // w, and three children of its own on h1 (local to it, exec).
        let w = n.run_in_actor("w", Some("testbed"), "sleepers", cbor(&(3, 1))).await.unwrap();
        let actors = wait_for_running(&id, "__actor", 4).await;
        let relay = relays(&id);
        assert_eq!(relay.len(), 1, "one relay for w; its children are local to it");
        signal(relay[0], libc::SIGKILL);
        let e = w.result().await.unwrap_err();
        assert_eq!((e.kind, e.actor_name.as_str()), (ErrorKind::ActorDied, "w"), "{e}");
        assert!(
            e.message.contains("actor 'w' on host 'h1' died: lost: its link ended without word from its relay"),
            "{e}"
        );
        // PDEATHSIG and the relay's subreaper role take w's subtree down.
        wait_pids_gone(&actors, Duration::from_secs(5), "remote actors outlived their relay").await;
        let _ = n.wait().await;
        drop((w, n, driver));
        assert_all_gone(&id);
        h.wait_no_sessions();
    });
}

/// Two remote actors on h1, each holding a call that never returns.
async fn two_held(
    n: &Nursery,
) -> (tractor_host::Portal, tractor_host::Portal, tractor_host::PendingCall, tractor_host::PendingCall) {
    let a = n.start_actor("a", Some("testbed")).await.unwrap();
    let b = n.start_actor("b", Some("testbed")).await.unwrap();
    let ha = a.run("sleep-forever", Value::Array(vec![])).unwrap();
    let hb = b.run("sleep-forever", Value::Array(vec![])).unwrap();
    (a, b, ha, hb)
}

#[test]
fn a_sigkilled_session_client_loses_its_actor_and_the_nursery_cancels_the_other() {
    with_h1(|h| async move {
        let tree = on_h1(&h);
        let id = tree.info.id.clone();
        let driver = tree.driver();
        let n = Nursery::open(&driver);
        let (a, b, ha, hb) = two_held(&n).await;
        // a's session client is the older of the two (pids grow).
        let mut clients = tree_pids_running(&id, "ControlMaster=no");
        clients.sort();
        assert_eq!(clients.len(), 2, "{clients:?}");
        signal(clients[0], libc::SIGKILL);
        let (ea, eb) = (ha.get().await.unwrap_err(), hb.get().await.unwrap_err());
        assert_eq!((ea.kind, ea.actor_name.as_str()), (ErrorKind::ActorDied, "a"), "{ea}");
        assert!(ea.message.contains("actor 'a' on host 'h1' died: lost"), "{ea}");
        // b, a sibling, is cancelled by the nursery (not lost).
        assert!(eb.is_cancelled() || eb.kind == ErrorKind::ActorGone, "{eb}");
        let failed = n.wait().await.unwrap_err();
        assert!(failed.to_string().contains("actor 'a' on host 'h1' died: lost"), "{failed}");
        drop((a, b, n, driver));
        assert_all_gone(&id);
        h.wait_no_sessions();
    });
}

/// Two remote actors on one connection; SIGKILL the one process `pick`
/// finds under both (`what` it is): both are lost, nothing is left.
async fn kill_under_both(h: &SshHost, what: &str, pick: impl Fn(&str) -> Vec<u32>) {
    let tree = on_h1(h);
    let id = tree.info.id.clone();
    let driver = tree.driver();
    let n = Nursery::open(&driver);
    let (a, b, ha, hb) = two_held(&n).await;
    let victim = pick(&id);
    assert_eq!(victim.len(), 1, "one {what} for both");
    signal(victim[0], libc::SIGKILL);
    // Both links end at once; whichever the nursery hears first fails it
    // and the other is lost or cancelled: neither answers.
    for e in [ha.get().await.unwrap_err(), hb.get().await.unwrap_err()] {
        assert!(e.kind == ErrorKind::ActorDied || e.is_cancelled() || e.kind == ErrorKind::ActorGone, "{e}");
    }
    let failed = n.wait().await.unwrap_err();
    assert!(failed.to_string().contains("on host 'h1' died: lost"), "{failed}");
    drop((a, b, n, driver));
    // The connection closed, so sshd closed the channels and each relay
    // ended its actor.
    crate::common::assert_tree_gone_within(&id, Duration::from_secs(5));
    h.wait_no_sessions();
}

#[test]
fn a_sigkilled_master_loses_every_remote_actor_and_leaves_nothing() {
    with_h1(|h| async move {
        kill_under_both(&h, "master", |id| tree_pids_running(id, "ControlMaster=yes")).await;
    });
}

#[test]
fn a_sigkilled_sshd_session_loses_its_actors() {
    with_h1(|h| async move {
        kill_under_both(&h, "sshd session", |_| h.session_pids()).await;
    });
}

#[test]
fn a_wedged_remote_actor_is_killed_by_its_relay_after_the_grace_period() {
    with_h1(|h| async move {
        let mut tree = on_h1(&h);
        tree.info.grace = Duration::from_millis(300);
        let id = tree.info.id.clone();
        let driver = tree.driver();
        let n = Nursery::open(&driver);
        let p = n.start_actor("frozen", Some("testbed")).await.unwrap();
        assert_eq!(p.run("add", cbor(&(1, 1))).unwrap().get().await.unwrap(), cbor(&2));
        signal(p.info().pid, libc::SIGSTOP);
        p.cancel_actor("chaos").await.unwrap();
        let e = p.run("add", cbor(&(1, 1))).unwrap_err();
        assert_eq!(e.kind, ErrorKind::ActorGone, "{e}");
        // The ladder's signals went as frames; the relay delivered them.
        assert!(e.message.contains("killed with SIGKILL after the 300ms grace period"), "{e}");
        n.wait().await.unwrap();
        drop((p, n, driver));
        assert_all_gone(&id);
    });
}

#[test]
fn a_remote_memory_bomb_is_stopped_by_its_limit_there() {
    with_h1(|h| async move {
        let mut tree = on_h1(&h);
        for c in &mut tree.info.components {
            c.limits.memory_bytes = Some(48 << 20);
        }
        let id = tree.info.id.clone();
        let driver = tree.driver();
        let n = Nursery::open(&driver);
        let calm = n.start_actor("calm", Some("testbed")).await.unwrap();
        let inner = Nursery::open(&driver);
        let p = inner.run_in_actor("glutton", Some("testbed"), "hog", cbor(&[200])).await.unwrap();
        let e = p.result().await.unwrap_err();
        assert_eq!((e.kind, e.actor_name.as_str()), (ErrorKind::Limit, "glutton"), "{e}");
        assert!(e.message.contains("memory limit of 48MiB exceeded"), "{e}");
        let _ = inner.wait().await;
        // Its sibling on the same host carries on.
        assert_eq!(calm.run("add", cbor(&(1, 2))).unwrap().get().await.unwrap(), cbor(&3));
        n.cancel().await;
        let _ = n.wait().await;
        drop((calm, p, n, inner, driver));
        assert_all_gone(&id);
    });
}

#[test]
fn one_master_serves_many_sessions_and_a_second_opens_past_the_limit() {
    if !crate::common::ssh::available() {
        return;
    }
    crate::common::run(async {
        // sshd allows 2 sessions per connection; the host spec says so too.
        let h = SshHost::start(2);
        let mut tree = on_h1(&h);
        tree.info.hosts[0].sessions_per_connection = 2;
        let id = tree.info.id.clone();
        let driver = tree.driver();
        let n = Nursery::open(&driver);
        let mut ps = Vec::new();
        for i in 0..5 {
            ps.push(n.start_actor(&format!("w{i}"), Some("testbed")).await.unwrap());
        }
        for (i, p) in ps.iter().enumerate() {
            assert_eq!(p.run("add", cbor(&(i, 1))).unwrap().get().await.unwrap(), cbor(&(i + 1)));
        }
        assert_eq!(tree_pids_running(&id, "ControlMaster=yes").len(), 3, "5 sessions, 2 per connection");
        assert_eq!(h.sessions(), 3, "three connections to sshd");
        n.cancel().await;
        let _ = n.wait().await;
        drop((ps, n, driver));
        assert_all_gone(&id);
        // The default: 10 per connection, so 8 spawns share one master.
        let h = SshHost::start(10);
        let tree = on_h1(&h);
        let id = tree.info.id.clone();
        let driver = tree.driver();
        let n = Nursery::open(&driver);
        let mut ps = Vec::new();
        for i in 0..8 {
            ps.push(n.start_actor(&format!("w{i}"), Some("testbed")).await.unwrap());
        }
        assert_eq!(h.sessions(), 1, "one connection for 8 actors");
        n.cancel().await;
        let _ = n.wait().await;
        drop((ps, n, driver));
        assert_all_gone(&id);
    });
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn spawn_and_cancel_cycles_on_h1_leak_nothing() {
    if !crate::common::ssh::available() {
        return;
    }
    // Counts this process's descriptors: nothing else may run meanwhile.
    let _serial = crate::common::serial();
    crate::common::test_runtime().block_on(async {
        let h = SshHost::start(10);
        let tree = on_h1(&h);
        let id = tree.info.id.clone();
        let driver = tree.driver();
        // The master opens on the first spawn and stays; count after it.
        let warm = Nursery::open(&driver);
        let first = warm.start_actor("warm-up", Some("testbed")).await.unwrap();
        first.cancel_actor("test").await.unwrap();
        warm.wait().await.unwrap();
        let fds = open_fds();
        for i in 0..30 {
            let n = Nursery::open(&driver);
            let p = n.start_actor(&format!("c{i}"), Some("testbed")).await.unwrap();
            assert_eq!(p.run("add", cbor(&(i, 1))).unwrap().get().await.unwrap(), cbor(&(i + 1)));
            p.cancel_actor("test").await.unwrap();
            n.wait().await.unwrap();
        }
        // A session's stderr reader lets go of its pipe when the master
        // closes its copy, a moment after the link: wait for it (a leak
        // would never come back).
        let start = Instant::now();
        while open_fds() != fds {
            assert!(start.elapsed() < Duration::from_secs(5), "descriptors: {} after, {fds} before", open_fds());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(h.sessions(), 1, "still one connection");
        assert!(relays(&id).is_empty(), "no relay left");
        drop((first, warm, driver));
        assert_all_gone(&id);
    });
}
