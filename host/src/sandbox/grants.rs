//! Capabilities granted to an actor (folders, env, args, TCP addresses) and
//! their attenuation: a child never holds more than its spawner.
//!
//! The wire form (`StartActor.grants`, `docs/protocol.md`) is the
//! manifest's: folders as `{host, guest, mode}` with `mode` `ro` or `rw`,
//! env as a map, addresses as text (`127.0.0.1:8080`, `10.0.0.0/8`).
//! Unknown fields are rejected.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

/// Capabilities granted to an actor: everything else is denied. Set per
/// component in the manifest (`[component.x.grants]`); a spawning guest may
/// narrow them for a child but never widen them beyond its own.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Grants {
    /// Host folders visible to the guest.
    pub dirs: Vec<DirGrant>,
    /// Environment variables.
    pub env: BTreeMap<String, String>,
    /// Command-line arguments.
    pub args: Vec<String>,
    /// Addresses the guest may open TCP connections to.
    pub connect: Vec<AddrRule>,
    /// Addresses the guest may bind TCP sockets to (and listen on).
    pub bind: Vec<AddrRule>,
    /// Names of actors the guest may find (`*` matches any run of
    /// characters); none by default.
    pub discover: Vec<String>,
}

/// One preopened folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "WireDir", into = "WireDir")]
pub struct DirGrant {
    /// Absolute host path.
    pub host: PathBuf,
    /// Path the guest sees.
    pub guest: String,
    /// Read-write (else read-only).
    pub writable: bool,
    /// The descriptor (in the receiving actor process) on which its spawner
    /// hands the folder over already open, so that nothing can swap it
    /// between the spawner's check and the child's use; `None`: the child
    /// opens `host` itself.
    pub fd: Option<i32>,
}

impl DirGrant {
    /// A grant of `host` as `guest`, not yet opened.
    pub fn new(host: impl Into<PathBuf>, guest: impl Into<String>, writable: bool) -> DirGrant {
        DirGrant { host: host.into(), guest: guest.into(), writable, fd: None }
    }

    /// `dir /srv/data (read-write)`: how errors name it.
    pub fn describe(&self) -> String {
        let mode = if self.writable { "read-write" } else { "read-only" };
        format!("dir {} ({mode})", self.host.display())
    }
}

/// The wire and manifest form of a [`DirGrant`].
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireDir {
    host: PathBuf,
    guest: String,
    #[serde(default)]
    mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fd: Option<i32>,
}

impl TryFrom<WireDir> for DirGrant {
    type Error = String;
    fn try_from(w: WireDir) -> Result<DirGrant, String> {
        let writable = match w.mode.as_deref() {
            None | Some("ro") => false,
            Some("rw") => true,
            Some(m) => return Err(format!("dir mode `{m}` is not `ro` or `rw`")),
        };
        Ok(DirGrant { host: w.host, guest: w.guest, writable, fd: w.fd })
    }
}

impl From<DirGrant> for WireDir {
    fn from(d: DirGrant) -> WireDir {
        let mode = if d.writable { "rw" } else { "ro" };
        WireDir { host: d.host, guest: d.guest, mode: Some(mode.into()), fd: d.fd }
    }
}

/// An address or network: `10.0.0.0/8` (any port), `127.0.0.1:8080`,
/// `[::1]:80`, `192.168.1.5` (any port). On the wire it is that text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AddrRule {
    /// Network address.
    pub ip: IpAddr,
    /// Prefix length (32/128 for one address).
    pub prefix: u8,
    /// Port, or any. Port 0 in a bind rule means "a port the system picks".
    pub port: Option<u16>,
}

impl TryFrom<String> for AddrRule {
    type Error = String;
    fn try_from(t: String) -> Result<AddrRule, String> {
        AddrRule::parse(&t).ok_or_else(|| format!("`{t}` is not an address or network"))
    }
}

impl From<AddrRule> for String {
    fn from(r: AddrRule) -> String {
        r.to_string()
    }
}

impl std::fmt::Display for AddrRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let full = if self.ip.is_ipv4() { 32 } else { 128 };
        match (self.ip, self.port) {
            (IpAddr::V6(ip), Some(p)) if self.prefix == full => write!(f, "[{ip}]:{p}"),
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
        if let Ok(sa) = text.parse::<SocketAddr>() {
            let prefix = if sa.is_ipv4() { 32 } else { 128 };
            return Some(AddrRule { ip: sa.ip(), prefix, port: Some(sa.port()) });
        }
        let (net, prefix) = match text.split_once('/') {
            Some((n, p)) => (n, Some(p.parse::<u8>().ok()?)),
            None => (text, None),
        };
        let ip: IpAddr = net.parse().ok()?;
        let full = if ip.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(full);
        (prefix <= full).then_some(AddrRule { ip, prefix, port: None })
    }

    /// Parse every rule of `list`; the error gives the first one that is
    /// not an address or network, with its index.
    pub fn parse_list(list: &[String]) -> Result<Vec<AddrRule>, (usize, String)> {
        list.iter().enumerate().map(|(i, t)| AddrRule::parse(t).ok_or_else(|| (i, t.clone()))).collect()
    }

    fn bits(ip: IpAddr) -> (u128, u8) {
        match ip {
            IpAddr::V4(v) => (u32::from(v) as u128, 32),
            IpAddr::V6(v) => (u128::from(v), 128),
        }
    }

    fn net_contains(&self, ip: IpAddr, prefix: u8) -> bool {
        let ((a, width), (b, width_b)) = (Self::bits(self.ip), Self::bits(ip));
        if width != width_b || prefix < self.prefix {
            return false;
        }
        let shift = u32::from(width - self.prefix);
        shift >= 128 || (a >> shift) == (b >> shift)
    }

    /// Does this rule allow `addr`?
    pub fn allows(&self, addr: SocketAddr) -> bool {
        let full = if addr.is_ipv4() { 32 } else { 128 };
        self.net_contains(addr.ip(), full) && self.port.is_none_or(|p| p == addr.port())
    }

    /// May a socket bound under this rule listen on `addr`, its actual local
    /// address? A rule with port 0 let the system pick the port.
    fn allows_listen(&self, addr: SocketAddr) -> bool {
        let full = if addr.is_ipv4() { 32 } else { 128 };
        self.net_contains(addr.ip(), full) && self.port.is_none_or(|p| p == 0 || p == addr.port())
    }

    /// Is everything `other` allows also allowed by this rule?
    pub fn covers(&self, other: &AddrRule) -> bool {
        self.net_contains(other.ip, other.prefix) && (self.port.is_none() || self.port == other.port)
    }
}

impl Grants {
    /// Configure a WASI context with these grants' env, args and network
    /// (folders are the [`Folders`](super::Folders)' business: they must be
    /// opened from handles, never from paths).
    pub fn apply_env_and_network(&self, wasi: &mut wasmtime_wasi::WasiCtxBuilder) {
        use wasmtime_wasi::sockets::SocketAddrUse;
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
                // wasmtime checks the wildcard address for the implicit bind
                // before a connect, and before a listen on an unbound
                // socket; the listen itself is checked below, so allowing
                // the wildcard here grants nothing by itself.
                SocketAddrUse::TcpBind if addr.ip().is_unspecified() && addr.port() == 0 => true,
                SocketAddrUse::TcpBind => bind.iter().any(|r| r.allows(addr)),
                // Listening: on exactly a granted bind address (an unbound
                // socket listens on the wildcard, which must be granted).
                SocketAddrUse::TcpListen => bind.iter().any(|r| r.allows_listen(addr)),
                // Only a granted listener accepts, and whoever reaches it
                // may connect.
                SocketAddrUse::TcpAccept => true,
                _ => false,
            };
            Box::pin(async move { ok })
        });
    }

    /// Check that the env and network grants here are all held by `parent`;
    /// the error names the first capability that is not. Folders are
    /// checked by opening them ([`Folders::open_for_child`](super::Folders::open_for_child)).
    pub fn env_and_network_within(&self, parent: &Grants) -> Result<(), String> {
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
        if let Some(d) = self.discover.iter().find(|d| !parent.discover.iter().any(|p| glob_matches(p, d))) {
            return Err(format!("discover {d}"));
        }
        Ok(())
    }

    /// The `discover` pattern that lets this actor find actors named
    /// `name`, if any.
    pub fn may_discover(&self, name: &str) -> Option<&str> {
        self.discover.iter().find(|p| glob_matches(p, name)).map(String::as_str)
    }
}

/// Does `text` match `pattern`, where `*` stands for any run of
/// characters? A pattern used as `text` is covered by `pattern` exactly
/// when it matches literally (its `*` then fall inside `pattern`'s).
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discover_patterns_match_and_nest() {
        for (p, t, m) in [
            ("db", "db", true),
            ("db", "db2", false),
            ("worker*", "worker", true),
            ("worker*", "worker-7", true),
            ("worker*", "db", false),
            ("*", "anything", true),
            ("a*b", "ab", true),
            ("a*b", "axxb", true),
            ("a*b", "axxc", false),
            ("*b", "*xb", true),
            ("a*", "*", false),
            ("worker*", "worker-*", true),
        ] {
            assert_eq!(glob_matches(p, t), m, "{p} ~ {t}");
        }
        let parent = Grants { discover: vec!["worker*".into()], ..Grants::default() };
        let ok = Grants { discover: vec!["worker-a*".into(), "worker".into()], ..Grants::default() };
        assert_eq!(ok.env_and_network_within(&parent), Ok(()));
        let wider = Grants { discover: vec!["*".into()], ..Grants::default() };
        assert_eq!(wider.env_and_network_within(&parent), Err("discover *".into()));
        assert_eq!(parent.may_discover("worker-3"), Some("worker*"));
        assert_eq!(parent.may_discover("db"), None);
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
        let picked = rule("127.0.0.1:0");
        assert!(picked.allows_listen("127.0.0.1:43210".parse().unwrap()));
        assert!(!picked.allows_listen("0.0.0.0:43210".parse().unwrap()));
        assert!(!one.allows_listen("127.0.0.1:8081".parse().unwrap()));
    }

    #[test]
    fn env_and_network_must_be_held_by_the_parent() {
        let parent = Grants {
            env: [("A".to_string(), "1".to_string())].into(),
            connect: vec![rule("10.0.0.0/8")],
            ..Grants::default()
        };
        let ok = Grants { connect: vec![rule("10.1.1.1:80")], ..Grants::default() };
        assert_eq!(ok.env_and_network_within(&parent), Ok(()));
        let env = Grants { env: [("B".to_string(), "1".to_string())].into(), ..Grants::default() };
        assert_eq!(env.env_and_network_within(&parent), Err("env B".into()));
        let net = Grants { connect: vec![rule("11.0.0.1:80")], ..Grants::default() };
        assert_eq!(net.env_and_network_within(&parent), Err("connect 11.0.0.1:80".into()));
        let bind = Grants { bind: vec![rule("0.0.0.0")], ..Grants::default() };
        assert_eq!(bind.env_and_network_within(&parent), Err("bind 0.0.0.0".into()));
    }

    #[test]
    fn the_wire_form_is_the_manifests() {
        let g = Grants {
            dirs: vec![DirGrant::new("/srv", "/data", true)],
            env: [("A".to_string(), "1".to_string())].into(),
            connect: vec![rule("10.0.0.0/8")],
            ..Grants::default()
        };
        let v = ciborium::Value::serialized(&g).unwrap();
        let text = crate::wire::diagnostic(&v);
        assert!(text.contains(r#""mode": "rw""#) && text.contains(r#""connect": ["10.0.0.0/8"]"#), "{text}");
        assert_eq!(v.deserialized::<Grants>().unwrap(), g);
        let bad = ciborium::Value::Map(vec![(ciborium::Value::Text("folders".into()), ciborium::Value::Array(vec![]))]);
        assert!(bad.deserialized::<Grants>().unwrap_err().to_string().contains("folders"));
    }
}
