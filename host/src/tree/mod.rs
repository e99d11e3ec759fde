//! Preparing a tree from its manifest and running its root actor; which of
//! its actors are alive ([`census`]).

pub mod census;
pub mod control;

pub use crate::component::progress::{Logged, Progress, Step};
use crate::component::{self, build, cache};
use crate::error::RemoteError;
use crate::manifest::Manifest;
use crate::nursery::{ActorScope, CallResult, Nursery, TreeInfo};
use crate::spawn::{new_uid, Backend, SpawnPolicy, TREE_ENV};
use crate::wire::ComponentEntry;
use std::path::PathBuf;
use std::sync::Arc;

/// A tree ready to run: every component built and precompiled.
#[derive(Debug, Clone)]
pub struct Tree {
    /// The manifest it came from.
    pub manifest: Manifest,
    /// What actor processes need to spawn by component name.
    pub info: TreeInfo,
}

/// Why a tree could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// The wasmtime engine could not be configured.
    #[error("{0}")]
    Engine(String),
    /// A component's build command could not run or failed.
    #[error("{message}")]
    Build {
        /// The component.
        component: String,
        /// What went wrong, with the build's last lines of output.
        message: String,
    },
    /// A component could not be read or precompiled (not a component, a
    /// cache that cannot be written).
    #[error("{message}")]
    Precompile {
        /// The component.
        component: String,
        /// What went wrong.
        message: String,
    },
    /// The running program's own path, for [`Tree::current_exe`].
    #[error("cannot find the running executable: {0}")]
    CurrentExe(std::io::Error),
}

impl Tree {
    /// The running executable, for programs that call [`crate::init`] (or
    /// are `tractor-host`): actors re-execute it.
    pub fn current_exe() -> Result<PathBuf, PrepareError> {
        std::env::current_exe().map_err(PrepareError::CurrentExe)
    }

    /// Build stale components, precompile all of them into the cache.
    /// `host_exe` is the binary actor processes run (one that calls
    /// [`crate::init`]).
    pub fn prepare(manifest: &Manifest, host_exe: PathBuf) -> Result<Tree, PrepareError> {
        Self::prepare_with(manifest, host_exe, &Logged)
    }

    /// [`Tree::prepare`], reporting each step to `progress`.
    pub fn prepare_with(manifest: &Manifest, host_exe: PathBuf, progress: &dyn Progress) -> Result<Tree, PrepareError> {
        let dir = cache::default_dir();
        let mut components = Vec::new();
        for spec in manifest.components.values() {
            build::build_if_needed(spec, progress)
                .map_err(|e| PrepareError::Build { component: spec.name.clone(), message: format!("{e:#}") })?;
            let compiled = cache::precompile_with(&dir, &spec.name, &spec.source, progress)
                .map_err(|e| PrepareError::Precompile { component: spec.name.clone(), message: format!("{e:#}") })?;
            components.push(ComponentEntry {
                name: spec.name.clone(),
                cwasm: compiled.cwasm,
                model: compiled.model,
                wasm: None,
                limits: spec.limits.clone(),
                grants: spec.grants.clone(),
                spawn: spec.spawn,
                discoverable: spec.discoverable,
                host: spec.host.clone(),
                sha256: compiled.sha256.clone(),
                size: compiled.size,
                source: Some(spec.source.clone()),
            });
        }
        // Keep the cache in bounds, never dropping what this tree uses.
        match component::evict::Policy::from_env() {
            Ok(policy) => {
                let used: Vec<PathBuf> = components.iter().map(|c| c.cwasm.clone()).collect();
                match component::evict::gc(&dir, &policy, &used, std::time::SystemTime::now()) {
                    Ok(s) if !s.removed.is_empty() => tracing::info!(
                        target: "tractor::cache",
                        "evicted {} unused precompiled components ({} bytes)",
                        s.removed.len(),
                        s.freed()
                    ),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(target: "tractor::cache", "cannot sweep {}: {e}", dir.display()),
                }
            }
            Err(e) => tracing::warn!(target: "tractor::cache", "cache not swept: {e}"),
        }
        // A tree id given in the environment is kept, so a supervisor (or a
        // test) can find every process of the tree it started.
        let id = std::env::var(TREE_ENV).ok().filter(|s| !s.is_empty()).unwrap_or_else(new_uid);
        Ok(Tree {
            manifest: manifest.clone(),
            info: TreeInfo {
                host_exe,
                components,
                id,
                grace: manifest.cancel_grace,
                max_depth: manifest.max_depth,
                spawn: SpawnPolicy { forced: None, default: manifest.spawn, zygote: None, forced_host: None },
                thread_entry: crate::actor::run_thread,
                hosts: manifest.hosts.clone(),
                here: String::new(),
            },
        })
    }

    /// Force every spawn of this tree onto `backend` (what `tractor-host run
    /// --spawn` does), whatever the manifest or the guests ask for.
    pub fn force_backend(&mut self, backend: Backend) {
        self.info.spawn.forced = Some(backend);
    }

    /// Add (or replace, by name) hosts actors can be placed on.
    pub fn add_hosts(&mut self, hosts: Vec<crate::spawn::ssh::HostSpec>) {
        for h in hosts {
            self.info.hosts.retain(|k| k.name != h.name);
            self.info.hosts.push(h);
        }
    }

    /// Put every actor of this tree on host `name` of the manifest's
    /// `[hosts]` (what `tractor-host run --spawn ssh:<name>` does): the
    /// root over ssh, the rest local to it there.
    pub fn force_host(&mut self, name: &str) -> Result<(), String> {
        if !self.info.hosts.iter().any(|h| h.name == name) {
            let known: Vec<&str> = self.info.hosts.iter().map(|h| h.name.as_str()).collect();
            return Err(format!(
                "no host `{name}` in the manifest's [hosts] (known: {})",
                if known.is_empty() { "none".to_string() } else { known.join(", ") }
            ));
        }
        self.info.spawn.forced_host = Some(name.to_string());
        Ok(())
    }

    /// A spawning context for a native program driving this tree, with
    /// the tree's registrar (so open every nursery of one run on the same
    /// driver: each call makes a new one, with a registry of its own).
    ///
    /// Inside a tokio runtime the driver also listens on a control socket
    /// (see [`control`]), so that `tractor-host ps` lists the tree while
    /// the returned scope lives.
    pub fn driver(&self) -> Arc<ActorScope> {
        let scope = ActorScope::native(self.info.clone());
        if tokio::runtime::Handle::try_current().is_ok() {
            match control::serve(&scope, self.manifest.file.display().to_string()) {
                Ok(task) => scope.keep_while_alive(task.abort_handle()),
                Err(e) => tracing::warn!("tractor: no control socket for `tractor-host ps`: {e}"),
            }
        }
        scope
    }

    /// Run the manifest's root actor to completion: spawn it, call its entry
    /// export, wait for the whole tree to end. `ctx` comes from
    /// [`Tree::driver`]; cancel `ctx.cancel` to tear the tree down.
    pub async fn run_root(&self, ctx: &Arc<ActorScope>) -> CallResult {
        let root = &self.manifest.root;
        let nursery = Nursery::open(ctx);
        let outcome = match nursery.run_in_actor(&root.name, Some(&root.component), &root.func, root.args.clone()).await
        {
            Ok(portal) => portal.result().await,
            Err(e) => Err(e),
        };
        let closed = nursery.wait().await;
        merge(outcome, closed)
    }
}

/// The root's own outcome wins unless it is a mere cancellation and the
/// nursery knows the failure behind it.
fn merge(outcome: CallResult, closed: Result<(), RemoteError>) -> CallResult {
    match (outcome, closed) {
        (Ok(v), Ok(())) => Ok(v),
        (Err(e), Err(n)) if e.is_cancelled() && !n.is_cancelled() => Err(n),
        (Err(e), _) => Err(e),
        (Ok(_), Err(n)) => Err(n),
    }
}
