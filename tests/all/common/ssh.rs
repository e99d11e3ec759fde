//! A throwaway sshd on loopback for the ssh backend's tests: fresh host
//! and user keys, an ssh config naming it `h1`, and its own remote cache.

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

/// One sshd, listening on 127.0.0.1, reachable as `h1` through `config`.
pub struct SshHost {
    /// The fixture's folder (keys, configs, the remote cache).
    pub dir: PathBuf,
    /// The port it listens on.
    pub port: u16,
    sshd: Child,
    /// What it logged, for failure messages.
    pub log: Arc<Mutex<Vec<String>>>,
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {out:?}");
}

impl SshHost {
    /// Start one (`max_sessions`: its `MaxSessions`).
    pub fn start(max_sessions: u32) -> SshHost {
        let dir = std::env::temp_dir().join(format!("tractor-ssh-{}", tractor_host::spawn::new_uid()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::create_dir_all("/run/sshd").unwrap();
        for key in ["host_key", "user_key"] {
            run(Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", ""]).arg("-f").arg(dir.join(key)));
        }
        std::fs::copy(dir.join("user_key.pub"), dir.join("authorized_keys")).unwrap();
        for _attempt in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let config = format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nAuthorizedKeysFile {d}/authorized_keys\n\
                 PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 UsePAM no\nStrictModes no\nPidFile none\nMaxSessions {max_sessions}\nLogLevel VERBOSE\n",
                d = dir.display()
            );
            std::fs::write(dir.join("sshd_config"), config).unwrap();
            let mut sshd = Command::new("/usr/sbin/sshd")
                .args(["-D", "-e", "-f"])
                .arg(dir.join("sshd_config"))
                .stdin(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let mut lines = BufReader::new(sshd.stderr.take().unwrap()).lines();
            let log = Arc::new(Mutex::new(Vec::new()));
            // Up once it says so; another process may have taken the port.
            let mut up = false;
            for line in lines.by_ref() {
                let Ok(line) = line else { break };
                log.lock().unwrap().push(line.clone());
                if line.contains("Server listening on 127.0.0.1") {
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
            std::fs::write(dir.join("known_hosts"), format!("[127.0.0.1]:{port} {}\n", host_key.join(" "))).unwrap();
            let ssh_config = format!(
                "Host h1\n  HostName 127.0.0.1\n  Port {port}\n  User root\n  IdentityFile {d}/user_key\n  \
                 IdentitiesOnly yes\n  BatchMode yes\n  StrictHostKeyChecking yes\n  UserKnownHostsFile {d}/known_hosts\n",
                d = dir.display()
            );
            std::fs::write(dir.join("ssh_config"), ssh_config).unwrap();
            return SshHost { dir, port, sshd, log };
        }
        panic!("sshd did not start");
    }

    /// Host `h1` as a manifest's `[hosts.h1]` would give it.
    pub fn spec(&self) -> HostSpec {
        HostSpec {
            name: "h1".into(),
            ssh: "h1".into(),
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
        self.dir.join("h1-cache")
    }

    /// The `[hosts.h1]` table for a manifest.
    pub fn table(&self) -> String {
        format!(
            "[hosts.h1]\nssh = \"h1\"\nssh-config = \"{}\"\nexe = \"{}\"\ncache-dir = \"{}\"\n",
            self.dir.join("ssh_config").display(),
            super::host_exe().display(),
            self.cache().display()
        )
    }

    /// Its per-connection `sshd: root@notty` session processes.
    pub fn sessions(&self) -> usize {
        self.session_pids().len()
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
