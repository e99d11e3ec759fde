//! A throwaway sshd for the ssh backend's tests, on loopback or in a
//! network namespace: fresh host and user keys, an ssh config naming it
//! (`h1`, `h2`), and its own remote cache.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use tractor_host::spawn::ssh::HostSpec;
use tractor_host::Tree;

/// Whether the ssh tests can run here; with `TRACTOR_SSH_TESTS=1` (CI) a
/// missing sshd is a failure, not a skip.
pub fn available() -> bool {
    let here = std::path::Path::new("/usr/sbin/sshd").is_file();
    if !here && std::env::var("TRACTOR_SSH_TESTS").is_ok_and(|v| v == "1") {
        panic!("TRACTOR_SSH_TESTS=1 but /usr/sbin/sshd is missing (apt-get install openssh-server)");
    }
    if !here {
        eprintln!("skipped: no /usr/sbin/sshd");
    }
    here
}

/// One sshd, reachable as `name` through `config`: on loopback, or alone
/// in a network namespace (its own hostname too) behind a veth pair.
pub struct SshHost {
    /// The fixture's folder (keys, configs, the remote cache).
    pub dir: PathBuf,
    /// The name ssh and manifests know it by (`h1`, `h2`).
    pub name: String,
    /// The port it listens on.
    pub port: u16,
    sshd: Child,
    /// What it logged, for failure messages.
    pub log: Arc<Mutex<Vec<String>>>,
    /// Its namespace, when it has one (deleted after sshd).
    pub net: Option<super::netns::Netns>,
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {out:?}");
}

impl SshHost {
    /// Start one on loopback as `h1` (`max_sessions`: its `MaxSessions`).
    pub fn start(max_sessions: u32) -> SshHost {
        Self::start_as("h1", max_sessions, None)
    }

    /// Start `name` in a network namespace of its own, joined to this one
    /// by a veth pair, so a partition is a link set down.
    pub fn in_netns(name: &str) -> SshHost {
        Self::start_as(name, 10, Some(super::netns::Netns::new(name)))
    }

    fn start_as(name: &str, max_sessions: u32, net: Option<super::netns::Netns>) -> SshHost {
        let dir = std::env::temp_dir().join(format!("tractor-ssh-{}", tractor_host::spawn::new_uid()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::create_dir_all("/run/sshd").unwrap();
        for key in ["host_key", "user_key"] {
            run(Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", ""]).arg("-f").arg(dir.join(key)));
        }
        std::fs::copy(dir.join("user_key.pub"), dir.join("authorized_keys")).unwrap();
        let addr = net.as_ref().map_or("127.0.0.1".to_string(), |n| n.remote_addr.clone());
        for _attempt in 0..5 {
            // In its own namespace nothing else listens; on loopback ask
            // the kernel for a free port.
            let port = match net {
                Some(_) => 2222,
                None => std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port(),
            };
            let config = format!(
                "Port {port}\nListenAddress {addr}\nHostKey {d}/host_key\nAuthorizedKeysFile {d}/authorized_keys\n\
                 PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 UsePAM no\nStrictModes no\nPidFile none\nMaxSessions {max_sessions}\nLogLevel VERBOSE\n",
                d = dir.display()
            );
            std::fs::write(dir.join("sshd_config"), config).unwrap();
            let mut cmd = match &net {
                // `ip netns exec` and `unshare` exec (no fork): the child is sshd.
                Some(n) => {
                    let mut c = Command::new("ip");
                    c.args(["netns", "exec", &n.name, "unshare", "--uts", "sh", "-c"])
                        .arg(format!("hostname {name} && exec /usr/sbin/sshd -D -e -f \"$0\""))
                        .arg(dir.join("sshd_config"));
                    c
                }
                None => {
                    let mut c = Command::new("/usr/sbin/sshd");
                    c.args(["-D", "-e", "-f"]).arg(dir.join("sshd_config"));
                    c
                }
            };
            let mut sshd = cmd.stdin(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
            let mut lines = BufReader::new(sshd.stderr.take().unwrap()).lines();
            let log = Arc::new(Mutex::new(Vec::new()));
            // Up once it says so; another process may have taken the port.
            let mut up = false;
            for line in lines.by_ref() {
                let Ok(line) = line else { break };
                log.lock().unwrap().push(line.clone());
                if line.contains(&format!("Server listening on {addr}")) {
                    up = true;
                    break;
                }
            }
            if !up {
                let _ = sshd.kill();
                let _ = sshd.wait();
                continue;
            }
            let keep = log.clone();
            std::thread::spawn(move || lines.map_while(Result::ok).for_each(|l| keep.lock().unwrap().push(l)));
            let host_key = std::fs::read_to_string(dir.join("host_key.pub")).unwrap();
            let host_key: Vec<&str> = host_key.split_whitespace().take(2).collect();
            std::fs::write(dir.join("known_hosts"), format!("[{addr}]:{port} {}\n", host_key.join(" "))).unwrap();
            let ssh_config = format!(
                "Host {name}\n  HostName {addr}\n  Port {port}\n  User root\n  IdentityFile {d}/user_key\n  \
                 IdentitiesOnly yes\n  BatchMode yes\n  StrictHostKeyChecking yes\n  UserKnownHostsFile {d}/known_hosts\n",
                d = dir.display()
            );
            std::fs::write(dir.join("ssh_config"), ssh_config).unwrap();
            return SshHost { dir, name: name.into(), port, sshd, log, net };
        }
        panic!("sshd did not start: {net:?}");
    }

    /// This host as a manifest's `[hosts.<name>]` would give it.
    pub fn spec(&self) -> HostSpec {
        HostSpec {
            name: self.name.clone(),
            ssh: self.name.clone(),
            port: None,
            identity: None,
            ssh_config: Some(self.dir.join("ssh_config")),
            ssh_options: Vec::new(),
            exe: super::host_exe().display().to_string(),
            cache_dir: Some(self.cache().display().to_string()),
            sessions_per_connection: 10,
            heartbeat_ms: 1000,
            dead_after_ms: 5000,
            connect_timeout_ms: 10_000,
        }
    }

    /// The remote side's component cache.
    pub fn cache(&self) -> PathBuf {
        self.dir.join(format!("{}-cache", self.name))
    }

    /// The `[hosts.<name>]` table for a manifest.
    pub fn table(&self) -> String {
        format!(
            "[hosts.{n}]\nssh = \"{n}\"\nssh-config = \"{}\"\nexe = \"{}\"\ncache-dir = \"{}\"\n",
            self.dir.join("ssh_config").display(),
            super::host_exe().display(),
            self.cache().display(),
            n = self.name
        )
    }

    /// An ssh config that reaches this host through a proxy listening on
    /// loopback `port` (its host key known there too).
    pub fn config_via(&self, port: u16) -> PathBuf {
        let config = std::fs::read_to_string(self.dir.join("ssh_config")).unwrap();
        let config = config
            .replace(&format!("Port {}", self.port), &format!("Port {port}"))
            .replace("/known_hosts", "/known_hosts_via");
        let known = std::fs::read_to_string(self.dir.join("known_hosts")).unwrap();
        let key = known.split_once(' ').unwrap().1;
        std::fs::write(self.dir.join("known_hosts_via"), format!("[127.0.0.1]:{port} {key}")).unwrap();
        let path = self.dir.join(format!("ssh_config_via_{port}"));
        std::fs::write(&path, config).unwrap();
        path
    }

    /// The listening sshd's pid.
    pub fn sshd_pid(&self) -> u32 {
        self.sshd.id()
    }

    /// Its per-connection `sshd: root@notty` session processes.
    pub fn sessions(&self) -> usize {
        self.session_pids().len()
    }

    /// Wait until it has no session left: a connection closed on our side
    /// reaches sshd a moment later.
    pub fn wait_no_sessions(&self) {
        let start = std::time::Instant::now();
        while !self.session_pids().is_empty() {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(10),
                "sshd sessions left after 10 s: {:?}",
                self.session_pids()
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// The pids of its per-connection session processes.
    pub fn session_pids(&self) -> Vec<u32> {
        let me = self.sshd.id();
        let mut out = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
            let ppid = stat.rsplit(')').next().and_then(|r| r.split_whitespace().nth(1)).and_then(|p| p.parse().ok());
            if ppid == Some(me) {
                out.extend(entry.file_name().to_str().and_then(|p| p.parse::<u32>().ok()));
            }
        }
        out
    }
}

impl Drop for SshHost {
    fn drop(&mut self) {
        // Its sessions are not its process group's: end them too, so a
        // failed test leaves no sshd behind.
        for pid in self.session_pids() {
            // SAFETY: plain kill(2).
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
        let _ = self.sshd.kill();
        let _ = self.sshd.wait();
        self.net.take();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The testbed tree with its component placed on `h1`.
pub fn on_h1(h: &SshHost) -> Tree {
    let mut tree = super::testbed();
    tree.info.hosts = vec![h.spec()];
    for c in &mut tree.info.components {
        c.host = Some("h1".into());
    }
    tree
}

/// [`on_h1`] with heartbeats every 200 ms and a link dead after 1 s of
/// silence, so a lost link shows within a test's patience.
pub fn on_h1_quick_to_notice(h: &SshHost) -> Tree {
    let mut tree = on_h1(h);
    tree.info.hosts[0].heartbeat_ms = 200;
    tree.info.hosts[0].dead_after_ms = 1000;
    tree
}

/// The command line of `pid`'s parent process.
pub fn parent_cmdline(pid: u32) -> String {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let ppid = stat.rsplit(')').next().and_then(|r| r.split_whitespace().nth(1)).unwrap_or("0").to_string();
    std::fs::read_to_string(format!("/proc/{ppid}/cmdline")).unwrap_or_default().replace('\0', " ")
}

/// Run `body` with a fresh sshd as `h1` (skipped without sshd, unless
/// `TRACTOR_SSH_TESTS=1`).
pub fn with_h1<F: std::future::Future<Output = ()>>(body: impl FnOnce(SshHost) -> F) {
    if !available() {
        return;
    }
    super::run(body(SshHost::start(10)));
}

/// Pids of tree `id`'s processes whose command line contains `what`.
pub fn tree_pids_running(id: &str, what: &str) -> Vec<u32> {
    super::tree_pids(id)
        .into_iter()
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/cmdline")).unwrap_or_default().replace('\0', " ").contains(what)
        })
        .collect()
}

/// Pids of tree `id`'s relays (`tractor-host __remote`, not the ssh
/// clients whose remote command names it).
pub fn relays(id: &str) -> Vec<u32> {
    super::tree_pids(id)
        .into_iter()
        .filter(|p| {
            let argv = std::fs::read_to_string(format!("/proc/{p}/cmdline")).unwrap_or_default();
            argv.split('\0').nth(1) == Some("__remote")
        })
        .collect()
}

/// Wait until none of `pids` is alive (up to `limit`, else panic naming
/// `what`); how long it took.
pub async fn wait_pids_gone(pids: &[u32], limit: std::time::Duration, what: &str) -> std::time::Duration {
    let start = std::time::Instant::now();
    while pids.iter().any(|p| std::path::Path::new(&format!("/proc/{p}/cmdline")).exists()) {
        assert!(start.elapsed() < limit, "{what}: {pids:?} still alive after {limit:?}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    start.elapsed()
}
