//! The testbed's sandbox probes: folders through children, symlinks, and
//! TCP servers on granted addresses (through wasi:sockets directly, as
//! Rust std cannot listen on wasm32-wasip2 yet).

use crate::{Context, Error};
use wasip2::sockets::network::{ErrorCode, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress, Ipv6SocketAddress};
use wasip2::sockets::tcp::TcpSocket;

fn grant(host: String, writable: bool) -> tractor::Grants {
    tractor::Grants {
        dirs: vec![tractor::DirGrant { host, guest: "/d".into(), writable }],
        env: vec![],
        args: vec![],
        connect: vec![],
        bind: vec![],
    }
}

/// Start a child granted `host` as `/d` and have it read `/d/<path>`.
pub fn read_via_child(host: String, writable: bool, path: String) -> Result<String, Error> {
    tractor::open_nursery(|n| {
        let child =
            n.run_in_actor_with("reader", None, "read-file", &(format!("/d/{path}"),), &grant(host, writable))?;
        child.result()
    })
}

/// Start a child granted `host` read-write as `/d` and have it write `/d/<path>`.
pub fn write_via_child(host: String, path: String, text: String) -> Result<(), Error> {
    tractor::open_nursery(|n| {
        let child =
            n.run_in_actor_with("writer", None, "write-file", &(format!("/d/{path}"), text), &grant(host, true))?;
        child.result()
    })
}

/// Create the symlink `link` (a guest path in one of our folders) with
/// contents `target`.
pub fn make_symlink(target: &str, link: &str) -> Result<(), Error> {
    for (dir, at) in wasip2::filesystem::preopens::get_directories() {
        let prefix = format!("{}/", at.trim_end_matches('/'));
        if let Some(rest) = link.strip_prefix(&prefix) {
            return dir.symlink_at(target, rest).map_err(|e| Error::new(format!("symlink {link} -> {target}: {e:?}")));
        }
    }
    Err(Error::new(format!("{link} is in no preopened folder")))
}

fn parse(addr: &str) -> Result<IpSocketAddress, Error> {
    let sa: std::net::SocketAddr = addr.parse().map_err(|e| Error::new(format!("{addr}: {e}")))?;
    Ok(match sa {
        std::net::SocketAddr::V4(v4) => {
            let [a, b, c, d] = v4.ip().octets();
            IpSocketAddress::Ipv4(Ipv4SocketAddress { port: v4.port(), address: (a, b, c, d) })
        }
        std::net::SocketAddr::V6(v6) => {
            let s = v6.ip().segments();
            IpSocketAddress::Ipv6(Ipv6SocketAddress {
                port: v6.port(),
                flow_info: 0,
                address: (s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]),
                scope_id: 0,
            })
        }
    })
}

fn show(a: IpSocketAddress) -> String {
    match a {
        IpSocketAddress::Ipv4(v) => {
            let (a, b, c, d) = v.address;
            format!("{a}.{b}.{c}.{d}:{}", v.port)
        }
        IpSocketAddress::Ipv6(v) => {
            let (a, b, c, d, e, f, g, h) = v.address;
            format!("[{}]:{}", std::net::Ipv6Addr::new(a, b, c, d, e, f, g, h), v.port)
        }
    }
}

/// A listening socket on `addr` (bound first), or on whatever `listen`
/// picks for an unbound IPv4 socket; returns it and its local address.
pub fn listen_on(addr: Option<&str>) -> Result<(TcpSocket, String), Error> {
    let what = addr.unwrap_or("an unbound socket");
    let fail = |step: &str, e: ErrorCode| Error::new(format!("{step} {what}: {e:?}"));
    let family = match addr {
        Some(a) if a.starts_with('[') => IpAddressFamily::Ipv6,
        _ => IpAddressFamily::Ipv4,
    };
    let socket = wasip2::sockets::tcp_create_socket::create_tcp_socket(family).map_err(|e| fail("socket", e))?;
    let network = wasip2::sockets::instance_network::instance_network();
    if let Some(addr) = addr {
        socket.start_bind(&network, parse(addr)?).map_err(|e| fail("bind", e))?;
        socket.subscribe().block();
        socket.finish_bind().map_err(|e| fail("bind", e))?;
    }
    socket.start_listen().map_err(|e| fail("listen", e))?;
    socket.subscribe().block();
    socket.finish_listen().map_err(|e| fail("listen", e))?;
    let local = socket.local_address().map_err(|e| fail("local address of", e))?;
    Ok((socket, show(local)))
}

/// Listen on `addr`, report the address with `started`, then serve one
/// client: read one line, answer `echo: <line>`, return the line.
pub fn serve_once(ctx: &Context, addr: &str) -> Result<String, Error> {
    let (socket, local) = listen_on(Some(addr))?;
    tractor::callee(ctx).started(&local)?;
    let (client, input, output) = loop {
        match socket.accept() {
            Ok(c) => break c,
            Err(ErrorCode::WouldBlock) => socket.subscribe().block(),
            Err(e) => return Err(Error::new(format!("accept on {local}: {e:?}"))),
        }
    };
    let mut line = Vec::new();
    while !line.ends_with(b"\n") {
        match input.blocking_read(1024) {
            Ok(bytes) => line.extend(bytes),
            Err(e) => return Err(Error::new(format!("read: {e:?}"))),
        }
    }
    let line = String::from_utf8_lossy(&line).trim_end().to_string();
    output
        .blocking_write_and_flush(format!("echo: {line}\n").as_bytes())
        .map_err(|e| Error::new(format!("write: {e:?}")))?;
    // Streams are children of their socket: drop them first.
    drop((output, input));
    drop(client);
    Ok(line)
}
