//! The spawning side of an ssh link: the ControlMasters this process owns,
//! one session per actor, and the handshake that ships components.

use super::{HostSpec, Offered, RemoteMsg, BLOB_CHUNK, PROTO, RELAY_SUBCOMMAND};
use crate::spawn::exec::{start_program, Child};
use crate::spawn::{Inner, KillVia, Killer, LinkFds, Process, Spawned};
use crate::wire::ComponentEntry;
use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::AsyncBufReadExt as _;
use tokio::io::AsyncWriteExt as _;

/// What one ssh spawn needs beyond the exec backend's.
pub struct SshSpawn<'a> {
    /// Where.
    pub host: &'a HostSpec,
    /// This process's masters.
    pub masters: &'a Masters,
    /// Every component of the tree (the remote actor may spawn any).
    pub components: &'a [ComponentEntry],
    /// The tree's cancel grace.
    pub grace: Duration,
}

/// The ControlMasters this process owns, per host: each carries up to the
/// host's `sessions-per-connection` sessions; past that another is opened.
#[derive(Default)]
pub struct Masters {
    hosts: tokio::sync::Mutex<HashMap<String, Vec<Arc<Master>>>>,
}

impl std::fmt::Debug for Masters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Masters")
    }
}

struct Master {
    ctl: PathBuf,
    /// The master process (killed, through `Child`'s drop, with us).
    child: Mutex<Child>,
    sessions: AtomicUsize,
    _dir: Arc<RunDir>,
}

/// A private (0700) folder for control sockets, removed when dropped.
struct RunDir(PathBuf);

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run_dir() -> std::io::Result<Arc<RunDir>> {
    use std::os::unix::fs::DirBuilderExt as _;
    let base = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    // Short: a socket path is at most 108 bytes.
    let dir = base.join(format!("trt-{}-{}", std::process::id(), crate::spawn::new_uid()));
    std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
    Ok(Arc::new(RunDir(dir)))
}

/// A pipe for a child's stderr: our read end, its write end.
fn stderr_pipe() -> std::io::Result<(tokio::net::unix::pipe::Receiver, OwnedFd)> {
    let (r, w) = std::io::pipe()?;
    Ok((tokio::net::unix::pipe::Receiver::from_owned_fd(r.into())?, w.into()))
}

/// Copy a child's stderr lines to ours, keeping the last one (ssh's
/// reason for failing, when it fails).
fn relay_stderr(rx: tokio::net::unix::pipe::Receiver, echo: bool) -> Arc<Mutex<String>> {
    let last = Arc::new(Mutex::new(String::new()));
    let keep = last.clone();
    tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(rx).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if echo {
                let mut err = tokio::io::stderr();
                let _ = err.write_all(format!("{line}\n").as_bytes()).await;
            }
            if !line.trim().is_empty() {
                *keep.lock().unwrap() = line;
            }
        }
    });
    last
}

impl Masters {
    /// A master for `host` with room for one more session.
    async fn get(&self, exe: &Path, host: &HostSpec, tree_id: &str) -> std::io::Result<Arc<Master>> {
        let mut hosts = self.hosts.lock().await;
        let pool = hosts.entry(host.name.clone()).or_default();
        pool.retain(|m| m.child.lock().unwrap().try_exit().is_none());
        let room = host.sessions_per_connection.max(1) as usize;
        if let Some(m) = pool.iter().find(|m| m.sessions.load(Ordering::SeqCst) < room) {
            return Ok(m.clone());
        }
        let m = Arc::new(start_master(exe, host, tree_id, pool.len()).await?);
        pool.push(m.clone());
        Ok(m)
    }
}

async fn start_master(exe: &Path, host: &HostSpec, tree_id: &str, n: usize) -> std::io::Result<Master> {
    let dir = run_dir()?;
    let ctl = dir.0.join(format!("m{n}"));
    let mut args = vec!["ssh".to_string(), "-M".into(), "-N".into(), "-T".into()];
    args.extend(host.command_options());
    args.extend(
        [
            "-o",
            "ControlMaster=yes",
            "-o",
            "ControlPersist=no",
            "-o",
            "ServerAliveInterval=2",
            "-o",
            "ServerAliveCountMax=3",
        ]
        .map(String::from),
    );
    args.extend(["-S".into(), ctl.display().to_string(), host.ssh.clone()]);
    let (err_rx, err_w) = stderr_pipe()?;
    let mut child = start_program(exe, args, vec![(err_w, 2)], tree_id).await?;
    let last = relay_stderr(err_rx, false);
    // Up once the control socket answers `-O check`; failed if the master
    // exits first (bad key, unknown host key, no route).
    let deadline = Instant::now() + Duration::from_millis(host.connect_timeout_ms) + Duration::from_secs(1);
    loop {
        if let Some(exit) = child.try_exit() {
            let why = last.lock().unwrap().clone();
            return Err(std::io::Error::other(format!(
                "cannot connect to host '{}' ({}): ssh {exit}: {why}",
                host.name, host.ssh
            )));
        }
        if ctl.exists() {
            let mut check = tokio::process::Command::new("ssh");
            check.args(host.command_options()).args(["-S", &ctl.display().to_string(), "-O", "check", &host.ssh]);
            let ok = check.stdin(std::process::Stdio::null()).output().await.is_ok_and(|o| o.status.success());
            if ok {
                break;
            }
        }
        if Instant::now() > deadline {
            return Err(std::io::Error::other(format!(
                "cannot connect to host '{}' ({}): no connection after {} ms",
                host.name, host.ssh, host.connect_timeout_ms
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(Master { ctl, child: Mutex::new(child), sessions: AtomicUsize::new(0), _dir: dir })
}

/// Holds one session's place on its master until the actor has ended.
struct Session(Arc<Master>);

impl Drop for Session {
    fn drop(&mut self) {
        self.0.sessions.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Quote `s` for the remote shell.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Start an actor on `ssh.host`: a session on a master, the relay's
/// handshake (shipping what its cache lacks), then the actor process.
pub async fn spawn_actor(exe: &Path, tree_id: &str, ssh: SshSpawn<'_>) -> std::io::Result<Spawned> {
    let host = ssh.host;
    let master = ssh.masters.get(exe, host, tree_id).await?;
    master.sessions.fetch_add(1, Ordering::SeqCst);
    let session = Session(master.clone());
    let (ours, theirs) = LinkFds::pair()?;
    let mut args = vec!["ssh".to_string()];
    args.extend(host.command_options());
    args.extend(["-S".into(), master.ctl.display().to_string(), "-o".into(), "ControlMaster=no".into(), "-T".into()]);
    let remote = format!("exec env TRACTOR_TREE={} {} {RELAY_SUBCOMMAND}", quote(tree_id), quote(&host.exe));
    args.extend([host.ssh.clone(), "--".into(), remote]);
    let (err_rx, err_w) = stderr_pipe()?;
    let child = start_program(exe, args, vec![(theirs.rx, 0), (theirs.tx, 1), (err_w, 2)], tree_id).await?;
    let last = relay_stderr(err_rx, true);
    let mut link = ours.into_async()?;
    let failed = |why: String, last: &Mutex<String>| {
        let tail = last.lock().unwrap().clone();
        let tail = if tail.is_empty() { String::new() } else { format!(" (ssh: {tail})") };
        std::io::Error::other(format!("on host '{}': {why}{tail}", host.name))
    };
    let timeout = Duration::from_millis(host.connect_timeout_ms.max(1000));
    let pid = match tokio::time::timeout(timeout * 6, handshake(&mut link, tree_id, &ssh)).await {
        Ok(Ok(pid)) => pid,
        // `child` is dropped here: killed and reaped.
        Ok(Err(why)) => return Err(failed(why, &last)),
        Err(_) => return Err(failed("the remote side did not answer in time".into(), &last)),
    };
    let killer = Killer(KillVia::Remote(Arc::new(super::super::RemoteKill::new(child.pid))));
    let process =
        Process { inner: Inner::Ssh { child, host: host.name.clone(), last, _session: Box::new(session) }, killer };
    Ok(Spawned { process, link, pid, handed: Vec::new() })
}

async fn send(link: &mut crate::spawn::Link, msg: &RemoteMsg) -> Result<(), String> {
    let mut buf = Vec::new();
    crate::framing::encode_frame(msg, &mut buf).map_err(|e| e.to_string())?;
    link.tx.write_all(&buf).await.map_err(|e| format!("the link broke: {e}"))
}

async fn recv(link: &mut crate::spawn::Link) -> Result<RemoteMsg, String> {
    match crate::framing::read_frame::<RemoteMsg, _>(&mut link.rx).await {
        Ok(RemoteMsg::Refused { reason }) => Err(reason),
        Ok(m) => Ok(m),
        Err(crate::framing::FrameError::Closed) => Err("the remote side closed the link".into()),
        Err(e) => Err(format!("the remote side is not a tractor-host relay ({e})")),
    }
}

/// Hello, Init, Offer/Missing/Blobs, Spawn: the remote actor's pid.
async fn handshake(link: &mut crate::spawn::Link, tree_id: &str, ssh: &SshSpawn<'_>) -> Result<u32, String> {
    let host = ssh.host;
    let RemoteMsg::Hello { proto, version, .. } = recv(link).await? else {
        return Err("the relay did not say Hello first".into());
    };
    let mine = env!("CARGO_PKG_VERSION");
    if proto != PROTO || version != mine {
        return Err(format!(
            "tractor-host {version} there speaks remote protocol {proto}; this one is {mine} and speaks {PROTO}: \
             install the same version there or set hosts.{}.exe",
            host.name
        ));
    }
    send(
        link,
        &RemoteMsg::Init {
            tree_id: tree_id.to_string(),
            host: host.name.clone(),
            cache_dir: host.cache_dir.clone(),
            grace_ms: ssh.grace.as_millis() as u64,
            heartbeat_ms: host.heartbeat_ms,
            dead_after_ms: host.dead_after_ms,
        },
    )
    .await?;
    let offered: Vec<Offered> = ssh
        .components
        .iter()
        .filter(|c| !c.sha256.is_empty())
        .map(|c| Offered { name: c.name.clone(), sha256: c.sha256.clone(), size: c.size })
        .collect();
    send(link, &RemoteMsg::Offer { components: offered }).await?;
    let RemoteMsg::Missing { sha256: missing } = recv(link).await? else {
        return Err("expected Missing".into());
    };
    for sha in &missing {
        let c = ssh.components.iter().find(|c| &c.sha256 == sha).ok_or_else(|| format!("it asked for {sha}"))?;
        let source = c.source.as_ref().ok_or_else(|| format!("component `{}` has no source to ship", c.name))?;
        let bytes = std::fs::read(source).map_err(|e| format!("cannot read {}: {e}", source.display()))?;
        tracing::info!(target: "tractor::ssh", "shipping component `{}` ({} bytes) to host '{}'", c.name, bytes.len(), host.name);
        for chunk in bytes.chunks(BLOB_CHUNK) {
            send(link, &RemoteMsg::Blob { sha256: sha.clone(), data: chunk.to_vec() }).await?;
        }
        send(link, &RemoteMsg::BlobEnd { sha256: sha.clone() }).await?;
        match recv(link).await? {
            RemoteMsg::Cached { sha256 } if &sha256 == sha => {}
            other => return Err(format!("expected Cached for `{}`, got {other:?}", c.name)),
        }
    }
    send(link, &RemoteMsg::Spawn).await?;
    match recv(link).await? {
        RemoteMsg::Spawned { pid } => Ok(pid),
        other => Err(format!("expected Spawned, got {other:?}")),
    }
}
