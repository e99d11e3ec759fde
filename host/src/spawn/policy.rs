//! Which backend starts an actor, and what names actors and components may
//! have: plain data, shared by the manifest, the wire and the spawners.

use serde::{Deserialize, Serialize};

/// True for names usable as component and actor names.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

/// How an actor is started (see the module docs for the trade-offs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Re-execute the host binary: one fresh process per actor.
    #[default]
    Exec,
    /// Fork from the tree's zygote: one process per actor, started warm.
    Forkserver,
    /// A thread in the spawning actor's process.
    Thread,
    /// On another host, over OpenSSH (chosen by placement, `spawn =
    /// "ssh:<host>"`, never by name alone; not in [`Backend::ALL`]).
    Ssh,
}

impl Backend {
    /// Every backend, in the order the docs list them.
    pub const ALL: [Backend; 3] = [Backend::Exec, Backend::Forkserver, Backend::Thread];

    /// Its manifest / command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Exec => "exec",
            Backend::Forkserver => "forkserver",
            Backend::Thread => "thread",
            Backend::Ssh => "ssh",
        }
    }

    /// True if each actor is an OS process of its own.
    pub fn is_process(self) -> bool {
        self != Backend::Thread
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A backend name that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown spawn backend `{0}` (expected exec, forkserver or thread)")]
pub struct UnknownBackend(pub String);

impl std::str::FromStr for Backend {
    type Err = UnknownBackend;
    fn from_str(s: &str) -> Result<Backend, UnknownBackend> {
        Backend::ALL.into_iter().find(|b| b.name() == s).ok_or_else(|| UnknownBackend(s.to_string()))
    }
}

/// Which backend each spawn in a tree uses; travels to every actor.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpawnPolicy {
    /// Set by `tractor-host run --spawn`: overrides everything else.
    pub forced: Option<Backend>,
    /// The tree's default (`[tree] spawn`), used when neither the spawning
    /// guest nor the component's manifest entry chooses.
    pub default: Backend,
    /// Address of the tree's zygote, once it runs.
    pub zygote: Option<String>,
    /// Set by `tractor-host run --spawn ssh:<host>`: every actor goes to
    /// that host (the root over ssh, the rest local to it there).
    pub forced_host: Option<String>,
}

impl SpawnPolicy {
    /// The backend for one spawn: forced, else asked for by the spawner,
    /// else the component's, else the tree's default.
    pub fn choose(&self, asked: Option<Backend>, component: Option<Backend>) -> Backend {
        self.forced.or(asked).or(component).unwrap_or(self.default)
    }

    /// The host one spawn goes to (`None`: wherever the spawner is):
    /// forced, else the component's placement.
    pub fn place<'a>(&'a self, component: Option<&'a str>) -> Option<&'a str> {
        self.forced_host.as_deref().or(component)
    }
}
