//! Discovery: actors find each other by name through the tree's
//! [`Registrar`], which lives in the driver; requests travel up the tree
//! links over each actor's [`TreeBus`]. Finding an actor gives a portal
//! over a peer link (`nursery::peer`), never ownership.

mod bus;
mod registrar;

pub use bus::TreeBus;
pub use registrar::{Registrar, DRIVER_UID};

/// A fresh random token (128 bits, hex) for an actor's peer listener.
pub fn new_token() -> String {
    use std::io::Read;
    let mut b = [0u8; 16];
    if std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b)).is_err() {
        // No urandom: a token nobody else can read from our memory still
        // beats none; peers are also checked by uid.
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
        b.copy_from_slice(&t.to_le_bytes());
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Compare two tokens in time independent of where they differ.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The abstract socket name of actor `uid`'s peer listener in tree `tree`.
pub fn peer_addr(tree: &str, uid: &str) -> String {
    format!("tractor-peer-{tree}-{uid}")
}

/// Whether the process at the other end of `sock` runs as our OS user
/// (`SO_PEERCRED`): peer links and control sockets admit no one else.
pub fn same_user(sock: &tokio::net::UnixStream) -> bool {
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    nix::sys::socket::getsockopt(sock, nix::sys::socket::sockopt::PeerCredentials).is_ok_and(|c| c.uid() == uid)
}
