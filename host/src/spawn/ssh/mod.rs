//! The `ssh` backend: an actor on another host, over OpenSSH.
//!
//! The child's link is an ssh session's stdin and stdout, multiplexed on a
//! ControlMaster the spawning process owns ([`Masters`]); both the master
//! and each session's client run through `__exec-child`, so they die with
//! their owner. On the far side `tractor-host __remote` ([`relay`]) takes
//! the session, receives the components it lacks (by SHA-256), starts the
//! actor with the exec backend and relays its frames, heartbeats both
//! ways, reports how the actor ended ([`Msg::Exited`](crate::wire::Msg)),
//! and tears the remote subtree down when the session ends or goes
//! silent. Nothing listens on a port of ours; the user's ssh configuration
//! authenticates everything.

mod client;
pub mod relay;

pub use client::{spawn_actor, Masters, SshSpawn};

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The hidden subcommand the far side runs.
pub const RELAY_SUBCOMMAND: &str = "__remote";

/// The version of the handshake and of the frames on a remote link; both
/// sides must speak the same.
pub const PROTO: u32 = 1;

/// One `[hosts.<name>]` of the manifest: how to reach it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostSpec {
    /// Its manifest name (what `spawn = "ssh:<name>"` says).
    pub name: String,
    /// The ssh destination (`user@host`, or a `Host` of the ssh config).
    pub ssh: String,
    /// Port, if not the ssh config's.
    #[serde(default)]
    pub port: Option<u16>,
    /// Identity file (`-i`).
    #[serde(default)]
    pub identity: Option<PathBuf>,
    /// An ssh config file (`-F`).
    #[serde(default)]
    pub ssh_config: Option<PathBuf>,
    /// More ssh options, as given.
    #[serde(default)]
    pub ssh_options: Vec<String>,
    /// The remote `tractor-host` command.
    pub exe: String,
    /// The remote component cache (default: the remote's own default).
    #[serde(default)]
    pub cache_dir: Option<String>,
    /// Sessions one master carries before another is opened (sshd's
    /// `MaxSessions`, 10 by default).
    pub sessions_per_connection: u32,
    /// Heartbeat interval on its links, in ms.
    pub heartbeat_ms: u64,
    /// A link silent this long (ms) is dead: a partition or a dead host.
    pub dead_after_ms: u64,
    /// How long connecting may take (ms).
    pub connect_timeout_ms: u64,
}

impl HostSpec {
    /// The options every ssh command for this host gets (before `-S` or
    /// the destination).
    pub fn command_options(&self) -> Vec<String> {
        let mut o = Vec::new();
        if let Some(f) = &self.ssh_config {
            o.extend(["-F".into(), f.display().to_string()]);
        }
        if let Some(p) = self.port {
            o.extend(["-p".into(), p.to_string()]);
        }
        if let Some(i) = &self.identity {
            o.extend(["-i".into(), i.display().to_string()]);
        }
        // Never prompt (no terminal is ours to use), never forward an agent;
        // host keys are checked as the user's configuration says.
        o.extend(["-o", "BatchMode=yes", "-o", "ForwardAgent=no", "-o", "ClearAllForwardings=yes"].map(String::from));
        o.push("-o".into());
        o.push(format!("ConnectTimeout={}", self.connect_timeout_ms.div_ceil(1000).max(1)));
        o.extend(self.ssh_options.iter().cloned());
        o
    }
}

/// One component on offer to the far side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Offered {
    /// Manifest name.
    pub name: String,
    /// SHA-256 of the `.wasm`, 64 hex digits.
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
}

/// The handshake on a remote link, before it carries `Msg` frames.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum RemoteMsg {
    /// Relay → parent, first: who answers.
    Hello {
        /// [`PROTO`] of the relay.
        proto: u32,
        /// Its `tractor-host` version.
        version: String,
        /// Its OS host name.
        hostname: String,
        /// Its pid.
        pid: u32,
    },
    /// Parent → relay: the tree and the link's timing.
    Init {
        /// The tree's id (`TRACTOR_TREE` of the remote processes).
        tree_id: String,
        /// The manifest's name for this host.
        host: String,
        /// The component cache to use there.
        cache_dir: Option<String>,
        /// Cancel grace, ms.
        grace_ms: u64,
        /// Heartbeat interval, ms.
        heartbeat_ms: u64,
        /// Silence that counts as a dead link, ms.
        dead_after_ms: u64,
    },
    /// Parent → relay: every component of the tree.
    Offer {
        /// Them.
        components: Vec<Offered>,
    },
    /// Relay → parent: the ones its cache lacks.
    Missing {
        /// Their SHA-256s.
        sha256: Vec<String>,
    },
    /// Parent → relay: a piece of a missing component.
    Blob {
        /// Which.
        sha256: String,
        /// The bytes.
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
    /// Parent → relay: that component is complete.
    BlobEnd {
        /// Which.
        sha256: String,
    },
    /// Relay → parent: received, verified and precompiled.
    Cached {
        /// Which.
        sha256: String,
    },
    /// Parent → relay: start the actor.
    Spawn,
    /// Relay → parent: the actor process runs.
    Spawned {
        /// Its pid on that host.
        pid: u32,
    },
    /// Relay → parent: it cannot go on.
    Refused {
        /// Why.
        reason: String,
    },
}

/// How big one [`RemoteMsg::Blob`] is.
pub const BLOB_CHUNK: usize = 1 << 20;
