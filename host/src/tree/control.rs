//! The driver's control socket: how `tractor-host ps` finds every running
//! tree of its user and asks each for its status.
//!
//! Each driver listens on an abstract unix socket named
//! `tractor-ctl.<uid>.<pid>.<n>`: abstract, so a SIGKILLed driver leaves
//! no file behind; owner-only by `SO_PEERCRED` on both ends (the driver
//! drops a client of another user unheard, and a client ignores a socket
//! bound by another user under a name that looks like ours). `ps` finds the
//! sockets in `/proc/net/unix`.

use crate::discovery::same_user;
use crate::nursery::{ActorScope, STATUS_TIMEOUT};
use crate::wire::{ControlReq, TreeStatus};
use std::os::linux::net::SocketAddrExt as _;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What every control socket's name starts with.
pub const PREFIX: &str = "tractor-ctl.";

/// The largest request a driver reads.
const MAX_REQUEST: usize = 4096;

/// How long a client may take to ask, and `ps` waits for an answer.
const ASK_TIMEOUT: Duration = Duration::from_secs(5);

fn my_uid() -> u32 {
    // SAFETY: getuid cannot fail.
    unsafe { libc::getuid() }
}

/// The prefix of this user's control sockets.
fn user_prefix() -> String {
    format!("{PREFIX}{}.", my_uid())
}

/// Listen on a new control socket for the tree `scope` drives, until the
/// returned task is aborted (or the scope is gone). Must run in a tokio
/// runtime.
pub(crate) fn serve(scope: &Arc<ActorScope>, label: String) -> std::io::Result<tokio::task::JoinHandle<()>> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!("{}{}.{}", user_prefix(), std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
    let listener = std::os::unix::net::UnixListener::bind_addr(&addr)?;
    listener.set_nonblocking(true)?;
    let listener = tokio::net::UnixListener::from_std(listener)?;
    let scope = Arc::downgrade(scope);
    let opened = Instant::now();
    let label = Arc::new(label);
    Ok(tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            if !same_user(&sock) {
                tracing::warn!("tractor: refused a control connection from another user");
                continue;
            }
            let (scope, label) = (scope.clone(), label.clone());
            tokio::spawn(async move {
                if let Err(e) = answer(sock, scope, &label, opened).await {
                    tracing::debug!("tractor: control connection: {e}");
                }
            });
        }
    }))
}

/// Answer requests on one connection until the client closes it.
async fn answer(
    mut sock: tokio::net::UnixStream,
    scope: Weak<ActorScope>,
    label: &str,
    opened: Instant,
) -> Result<(), String> {
    loop {
        let req = match tokio::time::timeout(ASK_TIMEOUT, read_request(&mut sock)).await {
            Ok(Ok(Some(req))) => req,
            Ok(Ok(None)) => return Ok(()),
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err("no request in time".into()),
        };
        let Some(scope) = scope.upgrade() else { return Ok(()) };
        let status = match req {
            ControlReq::Ps => TreeStatus {
                tree_id: scope.tree.id.clone(),
                driver_pid: std::process::id(),
                label: label.to_string(),
                uptime_ms: opened.elapsed().as_millis() as u64,
                actors: scope.children_status().await,
            },
        };
        drop(scope);
        let mut buf = Vec::new();
        crate::framing::encode_frame(&status, &mut buf).map_err(|e| e.to_string())?;
        sock.write_all(&buf).await.map_err(|e| e.to_string())?;
    }
}

/// One request; `None` at a clean end of the connection.
async fn read_request(sock: &mut tokio::net::UnixStream) -> Result<Option<ControlReq>, String> {
    let mut head = [0u8; 4];
    match sock.read_exact(&mut head).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.to_string()),
    }
    let len = u32::from_be_bytes(head) as usize;
    if len > MAX_REQUEST {
        return Err(format!("a request of {len} bytes (at most {MAX_REQUEST})"));
    }
    let mut body = vec![0u8; len];
    sock.read_exact(&mut body).await.map_err(|e| e.to_string())?;
    crate::framing::decode_as(&body).map(Some).map_err(|e| format!("a bad request: {e}"))
}

/// The control sockets of this user's running trees (listening sockets in
/// `/proc/net/unix` whose abstract name has our prefix).
pub fn addresses() -> Vec<String> {
    let prefix = format!("@{}", user_prefix());
    let table = std::fs::read_to_string("/proc/net/unix").unwrap_or_default();
    let mut found: Vec<String> = table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            // Num RefCount Protocol Flags Type St Inode Path; listening
            // sockets have __SO_ACCEPTCON (0x10000) in Flags.
            let listening = cols.get(3).and_then(|f| u32::from_str_radix(f, 16).ok()).is_some_and(|f| f & 0x10000 != 0);
            let path = cols.get(7)?;
            (listening && path.starts_with(&prefix)).then(|| path[1..].to_string())
        })
        .collect();
    found.sort();
    found.dedup();
    found
}

/// Ask the driver listening on control socket `name` for its tree.
pub async fn query(name: &str) -> Result<TreeStatus, String> {
    let ask = async {
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).map_err(|e| e.to_string())?;
        let std = std::os::unix::net::UnixStream::connect_addr(&addr).map_err(|e| e.to_string())?;
        std.set_nonblocking(true).map_err(|e| e.to_string())?;
        let mut sock = tokio::net::UnixStream::from_std(std).map_err(|e| e.to_string())?;
        if !same_user(&sock) {
            return Err("bound by another user; ignored".to_string());
        }
        let mut buf = Vec::new();
        crate::framing::encode_frame(&ControlReq::Ps, &mut buf).map_err(|e| e.to_string())?;
        sock.write_all(&buf).await.map_err(|e| e.to_string())?;
        crate::framing::read_frame::<TreeStatus, _>(&mut sock).await.map_err(|e| e.to_string())
    };
    // Each hop waits at most STATUS_TIMEOUT for its children; past a few
    // hops' worth the driver itself is stuck.
    match tokio::time::timeout(ASK_TIMEOUT + STATUS_TIMEOUT, ask).await {
        Ok(r) => r,
        Err(_) => Err("no answer in time".into()),
    }
}

/// Every running tree of this user, and the sockets that did not answer
/// (with why).
pub async fn ps() -> (Vec<TreeStatus>, Vec<(String, String)>) {
    let names = addresses();
    let answers = futures::future::join_all(names.iter().map(|n| query(n))).await;
    let (mut trees, mut failed) = (Vec::new(), Vec::new());
    for (name, a) in names.into_iter().zip(answers) {
        match a {
            Ok(t) => trees.push(t),
            Err(e) => failed.push((name, e)),
        }
    }
    trees.sort_by_key(|t| t.driver_pid);
    (trees, failed)
}
