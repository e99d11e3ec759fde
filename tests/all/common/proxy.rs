//! A TCP proxy that delays every byte by a fixed time each way: latency
//! for the ssh tests, since this kernel has no `tc netem`.

use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// A running proxy to `upstream`; stops when dropped.
pub struct DelayProxy {
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DelayProxy {
    /// Listen on a free loopback port, forwarding to `127.0.0.1:upstream`
    /// with `delay` added in each direction.
    pub fn start(upstream: u16, delay: Duration) -> DelayProxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        // Its own runtime, so a test's runtime blocking cannot stall it.
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let serve = async {
                    loop {
                        let Ok((down, _)) = listener.accept().await else { continue };
                        tokio::spawn(async move {
                            let Ok(up) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await else {
                                return;
                            };
                            let (dr, dw) = down.into_split();
                            let (ur, uw) = up.into_split();
                            tokio::join!(pipe(dr, uw, delay), pipe(ur, dw, delay));
                        });
                    }
                };
                tokio::select! {
                    _ = serve => {}
                    _ = stopped => {}
                }
            });
        });
        DelayProxy { port, stop: Some(stop), thread: Some(thread) }
    }
}

/// Copy `from` to `to`, each chunk `delay` after it was read (chunks keep
/// their order; reading goes on meanwhile, so the delay does not cap the
/// throughput).
async fn pipe(mut from: tokio::net::tcp::OwnedReadHalf, mut to: tokio::net::tcp::OwnedWriteHalf, delay: Duration) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
    let write = async move {
        while let Some((due, bytes)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&bytes).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    let read = async move {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n @ 1..) = from.read(&mut buf).await {
            if tx.send((tokio::time::Instant::now() + delay, buf[..n].to_vec())).is_err() {
                return;
            }
        }
    };
    tokio::join!(read, write);
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.stop.take().map(|s| s.send(()));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
