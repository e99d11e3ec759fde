//! What an actor may consume: resource limits and their enforcement.
//!
//! Limits are set per component in the manifest (`[component.x.limits]`)
//! and per tree (`[tree] max-depth`). Exceeding one ends the offending call
//! (a trap for memory and CPU, a refused spawn for children and depth) with
//! an error of kind `limit` that names the limit and its value.

use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Per-component limits; `None` means unlimited.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Total bytes of linear memory and tables across every instance of the
    /// actor (its main instance and one per open context).
    pub memory_bytes: Option<u64>,
    /// Wasm execution time one call may use, in milliseconds.
    pub cpu_ms_per_call: Option<u64>,
    /// Children the actor may have alive at once.
    pub max_children: Option<u32>,
}

/// A limit was reached; carried inside traps so the error names it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{limit} limit of {value} exceeded")]
pub struct LimitExceeded {
    /// Which limit (`memory`, `cpu-per-call`, `children`, `max-depth`).
    pub limit: &'static str,
    /// Its configured value, as written for people.
    pub value: String,
}

/// Bytes a table element is counted as (a function reference).
const TABLE_ELEMENT_BYTES: usize = 8;

/// Enforces [`Limits::memory_bytes`] for one store, against a total shared
/// by every store of the actor process.
#[derive(Debug)]
pub struct MemoryLimiter {
    limit: Option<usize>,
    /// Bytes this store holds (given back to `total` when it is dropped).
    mine: usize,
    total: Arc<AtomicUsize>,
}

impl MemoryLimiter {
    /// A limiter for a new store of an actor whose stores share `total`.
    pub fn new(limit: Option<u64>, total: Arc<AtomicUsize>) -> MemoryLimiter {
        MemoryLimiter { limit: limit.map(|l| l as usize), mine: 0, total }
    }

    fn grow(&mut self, by: usize) -> wasmtime::Result<bool> {
        if let Some(limit) = self.limit {
            let now = self.total.load(Ordering::SeqCst);
            if now.saturating_add(by) > limit {
                return Err(wasmtime::Error::new(LimitExceeded { limit: "memory", value: size_text(limit as u64) }));
            }
        }
        self.total.fetch_add(by, Ordering::SeqCst);
        self.mine += by;
        Ok(true)
    }
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        self.grow(desired.saturating_sub(current))
    }

    fn table_growing(&mut self, current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        self.grow(desired.saturating_sub(current).saturating_mul(TABLE_ELEMENT_BYTES))
    }
}

impl Drop for MemoryLimiter {
    fn drop(&mut self) {
        self.total.fetch_sub(self.mine, Ordering::SeqCst);
    }
}

/// `67108864` → `64MiB`.
pub fn size_text(bytes: u64) -> String {
    for (unit, size) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{}{unit}", bytes / size);
        }
    }
    format!("{bytes}B")
}

/// Parse `64MiB`, `512KiB`, `1GiB`, `10MB`, `4096` (bytes).
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (num, unit) = text.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mul = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return None,
    };
    n.checked_mul(mul)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::ResourceLimiter as _;

    #[test]
    fn sizes_parse_and_print() {
        assert_eq!(parse_size("64MiB"), Some(64 << 20));
        assert_eq!(parse_size("10 MB"), Some(10_000_000));
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("lots"), None);
        assert_eq!(parse_size("1TiB"), None);
        assert_eq!(size_text(64 << 20), "64MiB");
        assert_eq!(size_text(1000), "1000B");
    }

    fn rule(t: &str) -> AddrRule {
        AddrRule::parse(t).unwrap_or_else(|| panic!("{t}"))
    }

    #[test]
    fn address_rules_parse_match_and_nest() {
        let net = rule("10.0.0.0/8");
        assert!(net.allows("10.1.2.3:443".parse().unwrap()));
        assert!(!net.allows("11.0.0.1:443".parse().unwrap()));
        let one = rule("127.0.0.1:8080");
        assert!(one.allows("127.0.0.1:8080".parse().unwrap()));
        assert!(!one.allows("127.0.0.1:8081".parse().unwrap()));
        assert!(net.covers(&rule("10.2.0.0/16")) && !rule("10.2.0.0/16").covers(&net));
        assert!(rule("127.0.0.1").covers(&one) && !one.covers(&rule("127.0.0.1")));
        assert!(rule("[::1]:80").allows("[::1]:80".parse().unwrap()));
        assert!(!rule("0.0.0.0/0").covers(&rule("[::1]:80")));
        assert_eq!(AddrRule::parse("10.0.0.0/40"), None);
        assert_eq!(AddrRule::parse("example.com:80"), None);
        assert_eq!(rule("10.0.0.0/8").to_string(), "10.0.0.0/8");
        assert_eq!(rule("[::1]:80").to_string(), "[::1]:80");
    }

    #[test]
    fn grants_must_be_held_by_the_parent() {
        let dir = |h: &str, w| DirGrant { host: h.into(), guest: "/d".into(), writable: w };
        let parent = Grants {
            dirs: vec![dir("/srv/data", true), dir("/srv/ro", false)],
            env: [("A".to_string(), "1".to_string())].into(),
            connect: vec![rule("10.0.0.0/8")],
            ..Grants::default()
        };
        let ok =
            Grants { dirs: vec![dir("/srv/data/sub", false)], connect: vec![rule("10.1.1.1:80")], ..Grants::default() };
        assert_eq!(ok.within(&parent), Ok(()));
        let more = Grants { dirs: vec![dir("/srv/ro", true)], ..Grants::default() };
        assert_eq!(more.within(&parent), Err("dir /srv/ro (read-write)".into()));
        let outside = Grants { dirs: vec![dir("/etc", false)], ..Grants::default() };
        assert_eq!(outside.within(&parent), Err("dir /etc (read-only)".into()));
        let env = Grants { env: [("B".to_string(), "1".to_string())].into(), ..Grants::default() };
        assert_eq!(env.within(&parent), Err("env B".into()));
        let net = Grants { connect: vec![rule("11.0.0.1:80")], ..Grants::default() };
        assert_eq!(net.within(&parent), Err("connect 11.0.0.1:80".into()));
    }

    #[test]
    fn the_memory_limit_counts_every_store_of_the_actor() {
        let total = Arc::new(AtomicUsize::new(0));
        let mut a = MemoryLimiter::new(Some(100), total.clone());
        let mut b = MemoryLimiter::new(Some(100), total.clone());
        assert!(a.memory_growing(0, 60, None).unwrap());
        let e = b.memory_growing(0, 60, None).unwrap_err();
        assert_eq!(e.to_string(), "memory limit of 100B exceeded");
        assert!(b.table_growing(0, 5, None).unwrap()); // 40 bytes
        drop(a);
        assert_eq!(total.load(Ordering::SeqCst), 40);
        assert!(b.memory_growing(0, 60, None).unwrap());
    }
}

/// Capabilities granted to an actor: everything else is denied. Set per
/// component in the manifest (`[component.x.grants]`); a spawning guest may
/// narrow them for a child but never widen them beyond its own.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grants {
    /// Host folders visible to the guest.
    pub dirs: Vec<DirGrant>,
    /// Environment variables.
    pub env: std::collections::BTreeMap<String, String>,
    /// Command-line arguments.
    pub args: Vec<String>,
    /// Addresses the guest may open TCP connections to.
    pub connect: Vec<AddrRule>,
    /// Addresses the guest may bind TCP sockets to.
    pub bind: Vec<AddrRule>,
}

/// One preopened folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirGrant {
    /// Absolute host path.
    pub host: std::path::PathBuf,
    /// Path the guest sees.
    pub guest: String,
    /// Read-write (else read-only).
    pub writable: bool,
}

/// An address or network: `10.0.0.0/8` (any port), `127.0.0.1:8080`,
/// `[::1]:80`, `192.168.1.5` (any port).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddrRule {
    /// Network address.
    pub ip: std::net::IpAddr,
    /// Prefix length (32/128 for one address).
    pub prefix: u8,
    /// Port, or any.
    pub port: Option<u16>,
}

impl std::fmt::Display for AddrRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let full = if self.ip.is_ipv4() { 32 } else { 128 };
        match (self.ip, self.port) {
            (std::net::IpAddr::V6(ip), Some(p)) if self.prefix == full => write!(f, "[{ip}]:{p}"),
            (ip, port) => {
                write!(f, "{ip}")?;
                if self.prefix != full {
                    write!(f, "/{}", self.prefix)?;
                }
                match port {
                    Some(p) => write!(f, ":{p}"),
                    None => Ok(()),
                }
            }
        }
    }
}

impl AddrRule {
    /// Parse `ip`, `ip:port`, `[v6]:port`, `net/prefix`.
    pub fn parse(text: &str) -> Option<AddrRule> {
        let text = text.trim();
        if let Ok(sa) = text.parse::<std::net::SocketAddr>() {
            let prefix = if sa.is_ipv4() { 32 } else { 128 };
            return Some(AddrRule { ip: sa.ip(), prefix, port: Some(sa.port()) });
        }
        let (net, prefix) = match text.split_once('/') {
            Some((n, p)) => (n, Some(p.parse::<u8>().ok()?)),
            None => (text, None),
        };
        let ip: std::net::IpAddr = net.parse().ok()?;
        let full = if ip.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(full);
        (prefix <= full).then_some(AddrRule { ip, prefix, port: None })
    }

    fn bits(ip: std::net::IpAddr) -> (u128, u8) {
        match ip {
            std::net::IpAddr::V4(v) => (u32::from(v) as u128, 32),
            std::net::IpAddr::V6(v) => (u128::from(v), 128),
        }
    }

    fn net_contains(&self, ip: std::net::IpAddr, prefix: u8) -> bool {
        let ((a, width), (b, width_b)) = (Self::bits(self.ip), Self::bits(ip));
        if width != width_b || prefix < self.prefix {
            return false;
        }
        let shift = u32::from(width - self.prefix);
        shift >= 128 || (a >> shift) == (b >> shift)
    }

    /// Does this rule allow `addr`?
    pub fn allows(&self, addr: std::net::SocketAddr) -> bool {
        let full = if addr.is_ipv4() { 32 } else { 128 };
        self.net_contains(addr.ip(), full) && self.port.is_none_or(|p| p == addr.port())
    }

    /// Is everything `other` allows also allowed by this rule?
    pub fn covers(&self, other: &AddrRule) -> bool {
        self.net_contains(other.ip, other.prefix) && (self.port.is_none() || self.port == other.port)
    }
}

impl Grants {
    /// Configure a WASI context with exactly these grants.
    pub fn apply(&self, wasi: &mut wasmtime_wasi::WasiCtxBuilder) -> Result<(), String> {
        use wasmtime_wasi::sockets::SocketAddrUse;
        for d in &self.dirs {
            let perms = if d.writable { wasmtime_wasi::FsPerms::ReadWrite } else { wasmtime_wasi::FsPerms::ReadOnly };
            wasi.preopened_dir(&d.host, &d.guest, perms)
                .map_err(|e| format!("cannot preopen {} as {}: {e}", d.host.display(), d.guest))?;
        }
        for (k, v) in &self.env {
            wasi.env(k, v);
        }
        wasi.args(&self.args);
        wasi.allow_ip_name_lookup(false).allow_udp(false);
        wasi.allow_tcp(!self.connect.is_empty() || !self.bind.is_empty());
        let (connect, bind) = (self.connect.clone(), self.bind.clone());
        wasi.socket_addr_check(move |addr, usage| {
            let ok = match usage {
                SocketAddrUse::TcpConnect => connect.iter().any(|r| r.allows(addr)),
                // Implicit binds before a connect use the wildcard address.
                SocketAddrUse::TcpBind if addr.ip().is_unspecified() && addr.port() == 0 => true,
                SocketAddrUse::TcpBind => bind.iter().any(|r| r.allows(addr)),
                _ => false,
            };
            Box::pin(async move { ok })
        });
        Ok(())
    }

    /// Check that these grants are all held by `parent`; the error names the
    /// first capability that is not.
    pub fn within(&self, parent: &Grants) -> Result<(), String> {
        for d in &self.dirs {
            let held = parent.dirs.iter().any(|p| d.host.starts_with(&p.host) && (p.writable || !d.writable));
            if !held {
                let mode = if d.writable { "read-write" } else { "read-only" };
                return Err(format!("dir {} ({mode})", d.host.display()));
            }
        }
        for (k, v) in &self.env {
            if parent.env.get(k) != Some(v) {
                return Err(format!("env {k}"));
            }
        }
        for (kind, mine, theirs) in [("connect", &self.connect, &parent.connect), ("bind", &self.bind, &parent.bind)] {
            if let Some(r) = mine.iter().find(|r| !theirs.iter().any(|p| p.covers(r))) {
                return Err(format!("{kind} {r}"));
            }
        }
        Ok(())
    }
}
