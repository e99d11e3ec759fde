//! `tractor-host __remote`: the far side of an ssh link. It runs as the
//! ssh session's command, receives what its cache lacks, starts the actor
//! with the exec backend, and then relays frames both ways without
//! decoding them (but the first `Start`, whose paths it rewrites, and the
//! `Signal`s and `Heartbeat`s meant for itself).
//!
//! Lifetimes: its death signal fires when its sshd session ends (the
//! connection died); as a child subreaper it keeps the actor's
//! descendants; when the link ends or goes silent past `dead-after` it
//! closes the actor's link, waits the grace, then SIGTERMs and SIGKILLs
//! the actor's process group.

use super::{Offered, RemoteMsg, PROTO};
use crate::wire::{self, Msg};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// The relay's entry point (its exit code).
pub fn main() -> i32 {
    // SAFETY: plain prctl/signal/fcntl/dup2 calls, first thing in the
    // process, before any thread or descriptor of ours exists.
    let (up_rx, up_tx, out_rx) = unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1);
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
        // The link is our stdin/stdout: move it aside, so the actor's
        // stdout (inherited) is a pipe we read, never the link.
        let up_rx = libc::fcntl(0, libc::F_DUPFD_CLOEXEC, 10);
        let up_tx = libc::fcntl(1, libc::F_DUPFD_CLOEXEC, 10);
        let mut out = [0; 2];
        if up_rx < 0 || up_tx < 0 || libc::pipe2(out.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
            eprintln!("tractor relay: cannot set up its descriptors");
            return 71;
        }
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY);
        libc::dup2(null, 0);
        libc::close(null);
        libc::dup2(out[1], 1);
        libc::close(out[1]);
        (OwnedFd::from_raw_fd(up_rx), OwnedFd::from_raw_fd(up_tx), OwnedFd::from_raw_fd(out[0]))
    };
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tractor relay: cannot start tokio: {e}");
            return 70;
        }
    };
    let code = rt.block_on(relay(up_rx, up_tx, out_rx));
    rt.shutdown_timeout(Duration::from_millis(100));
    code
}

struct Up {
    // Buffered: a frame's head and body in one read, most of the time.
    rx: tokio::io::BufReader<tokio::net::unix::pipe::Receiver>,
    tx: tokio::net::unix::pipe::Sender,
}

async fn send(up: &mut Up, msg: &RemoteMsg) -> std::io::Result<()> {
    let mut buf = Vec::new();
    crate::framing::encode_frame(msg, &mut buf).map_err(std::io::Error::other)?;
    up.tx.write_all(&buf).await
}

async fn recv(up: &mut Up) -> Result<RemoteMsg, String> {
    crate::framing::read_frame::<RemoteMsg, _>(&mut up.rx).await.map_err(|e| e.to_string())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_default()
}

async fn relay(up_rx: OwnedFd, up_tx: OwnedFd, out_rx: OwnedFd) -> i32 {
    let link = crate::spawn::LinkFds { rx: up_rx, tx: up_tx }.into_async();
    let Ok(link) = link else { return 71 };
    let mut up = Up { rx: tokio::io::BufReader::with_capacity(64 * 1024, link.rx), tx: link.tx };
    let hello = RemoteMsg::Hello {
        proto: PROTO,
        version: env!("CARGO_PKG_VERSION").into(),
        hostname: hostname(),
        pid: std::process::id(),
    };
    if send(&mut up, &hello).await.is_err() {
        return 1;
    }
    match setup(&mut up).await {
        Ok((init, cwasms)) => serve(up, init, cwasms, out_rx).await,
        Err(reason) => {
            eprintln!("tractor relay on {}: {reason}", hostname());
            let _ = send(&mut up, &RemoteMsg::Refused { reason }).await;
            1
        }
    }
}

struct Init {
    tree_id: String,
    host: String,
    grace: Duration,
    heartbeat: Duration,
    dead_after: Duration,
}

/// The handshake up to `Spawn`: the tree, and each component's local
/// `.cwasm` by SHA-256.
async fn setup(up: &mut Up) -> Result<(Init, HashMap<String, PathBuf>), String> {
    let RemoteMsg::Init { tree_id, host, cache_dir, grace_ms, heartbeat_ms, dead_after_ms } = recv(up).await? else {
        return Err("expected Init".into());
    };
    let dir = match cache_dir {
        Some(d) if d.starts_with("~/") => std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default().join(&d[2..]),
        Some(d) => PathBuf::from(d),
        None => crate::component::cache::default_dir(),
    };
    let RemoteMsg::Offer { components } = recv(up).await? else {
        return Err("expected Offer".into());
    };
    let mut cwasms = HashMap::new();
    let mut missing = Vec::new();
    for c in &components {
        match crate::component::cache::find_by_hash(&dir, &c.name, &c.sha256) {
            Some(p) => drop(cwasms.insert(c.sha256.clone(), p)),
            None => missing.push(c.sha256.clone()),
        }
    }
    send(up, &RemoteMsg::Missing { sha256: missing.clone() }).await.map_err(|e| e.to_string())?;
    for sha in &missing {
        let c = components.iter().find(|c| &c.sha256 == sha).expect("offered");
        let cwasm = receive(up, &dir, c).await?;
        cwasms.insert(sha.clone(), cwasm);
        send(up, &RemoteMsg::Cached { sha256: sha.clone() }).await.map_err(|e| e.to_string())?;
    }
    let RemoteMsg::Spawn = recv(up).await? else {
        return Err("expected Spawn".into());
    };
    let init = Init {
        tree_id,
        host,
        grace: Duration::from_millis(grace_ms),
        heartbeat: Duration::from_millis(heartbeat_ms.max(10)),
        dead_after: Duration::from_millis(dead_after_ms.max(100)),
    };
    Ok((init, cwasms))
}

/// Receive one component's blobs, check its hash, precompile it.
async fn receive(up: &mut Up, dir: &std::path::Path, c: &Offered) -> Result<PathBuf, String> {
    const MAX: u64 = 1 << 30;
    if c.size > MAX {
        return Err(format!("component `{}` is {} bytes, more than 1 GiB", c.name, c.size));
    }
    let mut bytes = Vec::with_capacity(c.size as usize);
    loop {
        match recv(up).await? {
            RemoteMsg::Blob { sha256, data } if sha256 == c.sha256 => {
                bytes.extend_from_slice(&data);
                if bytes.len() as u64 > c.size {
                    return Err(format!("component `{}`: more bytes than offered", c.name));
                }
            }
            RemoteMsg::BlobEnd { sha256 } if sha256 == c.sha256 => break,
            other => return Err(format!("expected component `{}`'s blobs, got {other:?}", c.name)),
        }
    }
    let got: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
    if got != c.sha256 {
        return Err(format!("component `{}`: sha256 mismatch (offered {}, received {got})", c.name, c.sha256));
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let tmp = dir.join(format!(".{}-{}.{}.wasm", c.name, &c.sha256[..16], std::process::id()));
    std::fs::write(&tmp, &bytes).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    let compiled = crate::component::cache::precompile(dir, &c.name, &tmp);
    let _ = std::fs::remove_file(&tmp);
    compiled.map(|c| c.cwasm).map_err(|e| format!("{e:#}"))
}

/// A frame's body starts like this CBOR when it is `{"Signal": …}`.
const SIGNAL_PREFIX: &[u8] = b"\xa1\x66Signal";
/// …and is exactly this when it is `"Heartbeat"`.
const HEARTBEAT: &[u8] = b"\x69Heartbeat";

/// Start the actor and relay until either side ends.
async fn serve(mut up: Up, init: Init, cwasms: HashMap<String, PathBuf>, out_rx: OwnedFd) -> i32 {
    let exe = std::env::current_exe().unwrap_or_else(|_| "/proc/self/exe".into());
    let started =
        crate::spawn::exec::start(&exe, crate::spawn::ACTOR_SUBCOMMAND, true, &init.tree_id, Vec::new()).await;
    let (mut child, actor) = match started {
        Ok(s) => s,
        Err(e) => {
            let _ = send(&mut up, &RemoteMsg::Refused { reason: format!("cannot start the actor: {e}") }).await;
            return 1;
        }
    };
    let pgid = child.pid;
    if send(&mut up, &RemoteMsg::Spawned { pid: child.pid as u32 }).await.is_err() {
        kill_group(pgid);
        return 1;
    }
    // One writer upstream: the actor's frames, its stdout, heartbeats.
    let (to_up, from_all) = mpsc::unbounded_channel::<Vec<u8>>();
    let writer = tokio::spawn(write_frames(up.tx, from_all));
    let beats = {
        let to_up = to_up.clone();
        let every = init.heartbeat;
        tokio::spawn(async move {
            let beat = wire::frame::encode(&Msg::Heartbeat).expect("encodable");
            loop {
                tokio::time::sleep(every).await;
                if to_up.send(beat.clone()).is_err() {
                    break;
                }
            }
        })
    };
    let output = tokio::spawn(forward_output(out_rx, to_up.clone()));
    let from_actor = tokio::spawn(copy_frames(actor.rx, to_up.clone()));
    let mut to_actor = actor.tx;
    let downstream = async {
        let mut first = true;
        // Once the actor's end is closed (it is exiting), frames for it are
        // dropped: its exit, not this, decides how the relay ends, so that
        // `Exited` still goes up.
        let mut actor_closed = false;
        loop {
            let body = match tokio::time::timeout(init.dead_after, read_body(&mut up.rx)).await {
                Ok(Some(b)) => b,
                // EOF, a broken link, or silence past dead-after.
                _ => return,
            };
            if body.starts_with(SIGNAL_PREFIX) {
                if let Ok(Msg::Signal { signal }) = wire::frame::decode(&body) {
                    // SAFETY: plain kill(2) of the actor's process group.
                    unsafe { libc::kill(-pgid, signal) };
                }
                continue;
            }
            if body == HEARTBEAT {
                continue;
            }
            let body = if first { rewrite_start(&body, &init, &cwasms) } else { body };
            first = false;
            let mut frame = (body.len() as u32).to_be_bytes().to_vec();
            frame.extend_from_slice(&body);
            if !actor_closed && to_actor.write_all(&frame).await.is_err() {
                actor_closed = true;
            }
        }
    };
    let code = tokio::select! {
        exit = child.wait() => {
            // The actor is done: its last frames, then how it ended.
            let _ = from_actor.await;
            let (code, signal) = match exit {
                crate::spawn::Exit::Code(c) => (Some(c), None),
                crate::spawn::Exit::Signal(s) => (None, Some(s)),
                _ => (None, None),
            };
            let _ = to_up.send(wire::frame::encode(&Msg::Exited { code, signal }).expect("encodable"));
            0
        }
        _ = downstream => {
            // The parent is gone (or unreachable): the actor sees its link
            // end and tears its subtree down; the ladder bounds it.
            drop(to_actor);
            if tokio::time::timeout(init.grace, child.wait()).await.is_err() {
                // SAFETY: plain kill(2) of the actor's process group.
                unsafe { libc::kill(-pgid, libc::SIGTERM) };
                if tokio::time::timeout(Duration::from_millis(500), child.wait()).await.is_err() {
                    kill_group(pgid);
                    let _ = child.wait().await;
                }
            }
            1
        }
    };
    kill_group(pgid);
    reap_all();
    beats.abort();
    output.abort();
    drop(to_up);
    let _ = tokio::time::timeout(Duration::from_secs(1), writer).await;
    code
}

/// SIGKILL what is left of the actor's process group.
fn kill_group(pgid: libc::pid_t) {
    // SAFETY: plain kill(2).
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
}

/// Reap every child we adopted as subreaper.
fn reap_all() {
    // SAFETY: plain waitpid on any child, without blocking.
    while unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) } > 0 {}
}

/// The actor's `Start`, its paths made this host's: components from our
/// cache (by hash), no zygote, this host's name.
fn rewrite_start(body: &[u8], init: &Init, cwasms: &HashMap<String, PathBuf>) -> Vec<u8> {
    let Ok(Msg::Start(mut start)) = wire::frame::decode(body) else {
        return body.to_vec();
    };
    for c in &mut start.components {
        if let Some(p) = cwasms.get(&c.sha256) {
            c.cwasm = p.clone();
            c.wasm = None;
            c.source = None;
        }
    }
    start.spawn.zygote = None;
    start.host = init.host.clone();
    let mut out = Vec::new();
    match wire::frame::encode_into(&Msg::Start(start), &mut out) {
        Ok(()) => out[4..].to_vec(),
        Err(_) => body.to_vec(),
    }
}

/// One frame's body, or `None` at the end of the link.
async fn read_body<R: tokio::io::AsyncRead + Unpin>(r: &mut R) -> Option<Vec<u8>> {
    let mut head = [0u8; 4];
    r.read_exact(&mut head).await.ok()?;
    let len = u32::from_be_bytes(head) as usize;
    if len > wire::MAX_FRAME {
        return None;
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await.ok()?;
    Some(body)
}

/// Whole frames from `r`, as they are, to the upstream writer.
async fn copy_frames(r: tokio::net::unix::pipe::Receiver, to_up: mpsc::UnboundedSender<Vec<u8>>) {
    let mut r = tokio::io::BufReader::with_capacity(64 * 1024, r);
    while let Some(body) = read_body(&mut r).await {
        let mut frame = (body.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(&body);
        if to_up.send(frame).is_err() {
            break;
        }
    }
}

async fn write_frames(mut w: tokio::net::unix::pipe::Sender, mut rx: mpsc::UnboundedReceiver<Vec<u8>>) {
    while let Some(frame) = rx.recv().await {
        if w.write_all(&frame).await.is_err() {
            break;
        }
    }
}

/// The remote subtree's stdout, as `Output` frames of whole lines.
async fn forward_output(out: OwnedFd, to_up: mpsc::UnboundedSender<Vec<u8>>) {
    let Ok(mut r) = tokio::net::unix::pipe::Receiver::from_owned_fd(out) else { return };
    let mut pending = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        pending.extend_from_slice(&buf[..n]);
        if let Some(cut) = pending.iter().rposition(|b| *b == b'\n') {
            let data: Vec<u8> = pending.drain(..=cut).collect();
            let _ = to_up.send(wire::frame::encode(&Msg::Output { data }).expect("encodable"));
        }
    }
    if !pending.is_empty() {
        let _ = to_up.send(wire::frame::encode(&Msg::Output { data: pending }).expect("encodable"));
    }
}
