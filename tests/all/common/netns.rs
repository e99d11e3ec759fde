//! A network namespace joined to ours by a veth pair: a "host" the tests
//! can cut off for real (`ip link set down`: no FIN, no RST, packets just
//! stop), as a network partition does. Needs root, which CI has. Only the
//! network (and, for the sshd in it, UTS) namespace differs, so its
//! processes are still visible in our `/proc`.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// One namespace and the veth pair into it; deleted on drop.
#[derive(Debug)]
pub struct Netns {
    /// The namespace's name (`ip netns exec <name>`).
    pub name: String,
    /// Our end of the veth pair.
    pub local_if: String,
    /// Our end's address.
    pub local_addr: String,
    /// The namespace's address.
    pub remote_addr: String,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip (iproute2) runs");
    assert!(out.status.success(), "ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
}

impl Netns {
    /// A fresh namespace for host `host` (names unique per process and
    /// test run; a /30 of its own in 10.100.0.0/10, routed nowhere).
    pub fn new(host: &str) -> Netns {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let name = format!("trt-{pid}-{n}-{host}");
        // Interface names are at most 15 bytes.
        let tag = format!("{}{n}", pid % 100_000);
        let (local_if, remote_if) = (format!("tv{tag}a"), format!("tv{tag}b"));
        let net = format!("10.{}.{}", 100 + pid % 100, (n * 4) % 256);
        let (local_addr, remote_addr) = (format!("{net}.1"), format!("{net}.2"));
        ip(&["netns", "add", &name]);
        let ns = Netns { name, local_if, local_addr, remote_addr };
        ip(&["link", "add", &ns.local_if, "type", "veth", "peer", "name", &remote_if]);
        ip(&["link", "set", &remote_if, "netns", &ns.name]);
        ip(&["addr", "add", &format!("{}/30", ns.local_addr), "dev", &ns.local_if]);
        ip(&["link", "set", &ns.local_if, "up"]);
        ip(&["-n", &ns.name, "addr", "add", &format!("{}/30", ns.remote_addr), "dev", &remote_if]);
        ip(&["-n", &ns.name, "link", "set", &remote_if, "up"]);
        ip(&["-n", &ns.name, "link", "set", "lo", "up"]);
        ns
    }

    /// Cut the link: from now on nothing crosses it either way, and
    /// neither side is told.
    pub fn partition(&self) {
        ip(&["link", "set", &self.local_if, "down"]);
    }

    /// Restore the link.
    pub fn heal(&self) {
        ip(&["link", "set", &self.local_if, "up"]);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting the namespace deletes its veth end, and so ours.
        let _ = Command::new("ip").args(["netns", "del", &self.name]).output();
        let _ = Command::new("ip").args(["link", "del", &self.local_if]).output();
    }
}
