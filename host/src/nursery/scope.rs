//! The spawning side of an actor (or of the native program driving a
//! tree): its identity, cancel scope, capabilities and live children, and
//! how it starts one child.

use super::child::{supervise, ChildActor, ChildState, OnEnd, Registration, RUN_ONCE_ID};
use super::info::{ActorInfo, TreeInfo};
use crate::discovery::{Registrar, TreeBus};
use crate::error::{ErrorKind, RemoteError};
use crate::sandbox::{Folders, Grants, LimitExceeded};
use crate::spawn::forkserver::Zygote;
use crate::spawn::{new_uid, valid_name, Backend, SpawnPolicy};
use crate::wire::{self, CallRequest, Msg, StartActor};
use std::sync::{Arc, Mutex, Weak};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// How to start one child, beyond its name and component.
#[derive(Debug, Clone, Default)]
pub struct SpawnOptions {
    /// Narrow its capabilities (default: its component's); asking for one
    /// the spawner does not hold is a `denied` error.
    pub grants: Option<Grants>,
    /// Start it with this backend (unless the run forces one).
    pub backend: Option<Backend>,
}

/// The spawning side: the current actor (or the native program that drives
/// a tree) with its cancel scope and its live children.
#[derive(Debug)]
pub struct ActorScope {
    /// Who we are (for a native driver: name `tractor-host`).
    pub me: ActorInfo,
    /// Depth given to our children.
    pub child_depth: u32,
    /// The tree we belong to.
    pub tree: TreeInfo,
    /// Cancelled when this actor is cancelled; every nursery scope is a child.
    pub cancel: CancellationToken,
    /// Whether children start in a new process group (only the tree's root).
    pub new_process_group: bool,
    /// Who cancelled this actor, once someone has.
    pub cancelled_by: Mutex<Option<String>>,
    /// The capabilities this actor holds (`None`: a native driver, which
    /// may grant whatever the manifest says).
    pub grants: Option<Grants>,
    /// The folders of `grants`, open: children's folders are opened
    /// beneath them.
    pub folders: Folders,
    pub(super) children: Mutex<Vec<Weak<ChildActor>>>,
    /// How many of this actor's calls are inside a structured teardown
    /// right now (waiting for or cancelling children): one cannot be
    /// abandoned for not returning, it is busy collecting outcomes, and the
    /// children's own grace periods bound it.
    pub(super) teardowns: watch::Sender<usize>,
    /// The tree's zygote, started on first need; only the tree's driver
    /// has one (actors get its address in their `StartActor`).
    pub(super) zygote: Option<tokio::sync::OnceCell<Result<Zygote, String>>>,
    /// Where registrations and lookups go: the registrar (in the driver)
    /// or up the parent link.
    pub bus: Arc<TreeBus>,
    /// Peer links this actor holds, by target uid (one per target, shared
    /// by every portal to it).
    pub(super) peers: Mutex<std::collections::HashMap<String, Weak<ChildActor>>>,
    /// Tasks that serve this scope and end with it (the driver's control
    /// socket).
    companions: Mutex<Vec<tokio::task::AbortHandle>>,
    /// The ssh ControlMasters this actor's ssh spawns use.
    pub(super) masters: crate::spawn::ssh::Masters,
}

impl Drop for ActorScope {
    fn drop(&mut self) {
        for t in self.companions.get_mut().unwrap().drain(..) {
            t.abort();
        }
    }
}

/// What an [`ActorScope`] is made of (the rest starts empty).
pub struct ScopeParts {
    /// Who the actor is.
    pub me: ActorInfo,
    /// Depth given to its children.
    pub child_depth: u32,
    /// Its tree.
    pub tree: TreeInfo,
    /// Whether its children start in a new process group (only the root).
    pub new_process_group: bool,
    /// The capabilities it holds (`None`: a native driver).
    pub grants: Option<Grants>,
    /// The folders of `grants`, open.
    pub folders: Folders,
    /// Its end of the tree bus (see [`TreeBus::actor`]).
    pub bus: TreeBus,
}

impl ActorScope {
    /// The scope of a native program that drives a tree from outside it
    /// (with the tree's zygote, started when first needed).
    pub fn native(tree: TreeInfo) -> Arc<ActorScope> {
        let me = ActorInfo {
            name: "tractor-host".into(),
            uid: "host".into(),
            pid: std::process::id(),
            depth: 0,
            component: String::new(),
        };
        let bus = TreeBus::driver(Arc::new(Registrar::default()));
        let parts = ScopeParts {
            me,
            child_depth: 0,
            tree,
            new_process_group: true,
            grants: None,
            folders: Folders::default(),
            bus,
        };
        Self::build(parts, Some(Default::default()))
    }

    /// The scope of an actor process.
    pub fn new(parts: ScopeParts) -> Arc<ActorScope> {
        Self::build(parts, None)
    }

    fn build(p: ScopeParts, zygote: Option<tokio::sync::OnceCell<Result<Zygote, String>>>) -> Arc<ActorScope> {
        Arc::new(ActorScope {
            me: p.me,
            child_depth: p.child_depth,
            tree: p.tree,
            cancel: CancellationToken::new(),
            new_process_group: p.new_process_group,
            cancelled_by: Mutex::new(None),
            grants: p.grants,
            folders: p.folders,
            children: Mutex::new(Vec::new()),
            teardowns: watch::channel(0).0,
            zygote,
            bus: Arc::new(p.bus),
            peers: Default::default(),
            companions: Default::default(),
            masters: Default::default(),
        })
    }

    /// Abort `task` when this scope is dropped.
    pub fn keep_while_alive(&self, task: tokio::task::AbortHandle) {
        self.companions.lock().unwrap().push(task);
    }

    /// The tree's registrar, if this is its driver.
    pub fn registrar(&self) -> Option<&Arc<Registrar>> {
        self.bus.registrar()
    }

    /// The spawn policy children of this actor get, with the zygote's
    /// address once (for a driver) the zygote runs.
    pub(super) async fn spawn_policy(&self) -> Result<SpawnPolicy, RemoteError> {
        let mut policy = self.tree.spawn.clone();
        if let (Some(cell), None) = (&self.zygote, &policy.zygote) {
            if self.tree.may_fork() {
                let z = cell
                    .get_or_init(|| async {
                        Zygote::start(&self.tree.host_exe, &self.tree.id, &self.tree.components)
                            .await
                            .map_err(|e| e.to_string())
                    })
                    .await;
                match z {
                    Ok(z) => policy.zygote = Some(z.addr.clone()),
                    Err(e) => {
                        return Err(self.error(ErrorKind::SpawnFailed, format!("cannot start the forkserver: {e}")))
                    }
                }
            }
        }
        Ok(policy)
    }

    /// Children whose processes are still running.
    pub fn live_children(&self) -> Vec<Arc<ChildActor>> {
        let mut list = self.children.lock().unwrap();
        list.retain(|w| w.upgrade().is_some_and(|c| !c.has_exited()));
        list.iter().filter_map(Weak::upgrade).collect()
    }

    /// Cancel every live child and wait (up to the grace period, then kill)
    /// until each has exited. Used when the actor itself goes away.
    pub async fn cancel_all_children(&self) {
        let kids = self.live_children();
        futures::future::join_all(kids.iter().map(|c| c.cancel(&self.me.name))).await;
    }

    /// Mark a structured teardown in progress until the guard is dropped.
    pub fn tearing_down(self: &Arc<Self>) -> Teardown {
        self.teardowns.send_modify(|n| *n += 1);
        Teardown(self.clone())
    }

    /// Wait until no teardown is in progress.
    pub async fn teardowns_done(&self) {
        let _ = self.teardowns.subscribe().wait_for(|n| *n == 0).await;
    }

    /// Cancel this actor (its scope and so every nursery in it).
    pub fn cancel_actor(&self, by: &str) {
        self.cancelled_by.lock().unwrap().get_or_insert_with(|| by.to_string());
        self.cancel.cancel();
    }

    /// The error a checkpoint returns once this actor is cancelled.
    pub fn cancelled_error(&self) -> RemoteError {
        let by = self.cancelled_by.lock().unwrap().clone().unwrap_or_else(|| "its parent".into());
        RemoteError::cancelled(format!("actor '{}' was cancelled by '{by}'", self.me.name))
            .with_actor(&self.me.name, &self.me.uid)
    }

    pub(super) fn error(&self, kind: ErrorKind, msg: impl Into<String>) -> RemoteError {
        RemoteError::new(kind, msg).with_actor(&self.me.name, &self.me.uid)
    }

    /// The grants child `name` gets when it asks for `asked`, with its
    /// folders opened (beneath ours) as the descriptors to hand it: never
    /// more than we hold.
    pub(super) fn grant_for_child(
        &self,
        asked: &Grants,
        name: &str,
    ) -> Result<(Grants, Vec<std::os::fd::OwnedFd>), RemoteError> {
        let deny = |cap: String, why: String| {
            let me = &self.me.name;
            self.error(
                ErrorKind::Denied,
                format!("cannot grant `{cap}` to actor `{name}`: actor '{me}' does not hold it{why}"),
            )
        };
        let folders = match &self.grants {
            Some(mine) => {
                asked.env_and_network_within(mine).map_err(|cap| deny(cap, String::new()))?;
                self.folders.open_for_child(&asked.dirs).map_err(|(d, why)| deny(d.describe(), format!(" ({why})")))?
            }
            // The driver grants what the manifest (or its own caller) says.
            None => Folders::open_paths(&asked.dirs)
                .map_err(|e| self.error(ErrorKind::SpawnFailed, format!("cannot start actor `{name}`: {e}")))?,
        };
        let (dirs, fds) = folders.into_parts().into_iter().unzip();
        Ok((Grants { dirs, ..asked.clone() }, fds))
    }
}

/// A structured teardown in progress (see [`ActorScope::tearing_down`]).
#[must_use = "the teardown ends when this is dropped"]
pub struct Teardown(Arc<ActorScope>);

impl Drop for Teardown {
    fn drop(&mut self) {
        self.0.teardowns.send_modify(|n| *n -= 1);
    }
}

/// Refuse a spawn that would exceed the tree's depth or the spawner's
/// children limit.
pub(super) fn check_spawn_limits(actor: &ActorScope, name: &str) -> Result<(), RemoteError> {
    let limit = |l: LimitExceeded| actor.error(ErrorKind::Limit, format!("cannot start actor `{name}`: {l}"));
    if let Some(max) = actor.tree.max_depth {
        if actor.child_depth > max {
            return Err(limit(LimitExceeded { limit: "max-depth", value: max.to_string() }));
        }
    }
    let own = actor.tree.components.iter().find(|c| c.name == actor.me.component);
    if let Some(max) = own.and_then(|c| c.limits.max_children) {
        if actor.live_children().len() >= max as usize {
            return Err(limit(LimitExceeded { limit: "children", value: max.to_string() }));
        }
    }
    Ok(())
}

/// Start a child actor process running `component` and send it its start
/// message. Does not wait for it to load: calls queue behind the start.
pub(super) async fn spawn_child(
    actor: &Arc<ActorScope>,
    name: &str,
    component: Option<&str>,
    run: Option<(String, ciborium::Value)>,
    opts: SpawnOptions,
    on_end: OnEnd,
) -> Result<Arc<ChildActor>, RemoteError> {
    if !valid_name(name) {
        return Err(actor.error(
            ErrorKind::SpawnFailed,
            format!("invalid actor name `{name}` (use letters, digits, '-', '_', '.')"),
        ));
    }
    let component = component.unwrap_or(&actor.me.component);
    if !actor.tree.components.iter().any(|c| c.name == component) {
        let known: Vec<_> = actor.tree.components.iter().map(|c| c.name.as_str()).collect();
        return Err(actor.error(
            ErrorKind::NoSuchComponent,
            format!("no component named `{component}` in the manifest (known: {})", known.join(", ")),
        ));
    }
    if actor.cancel.is_cancelled() {
        return Err(actor.error(ErrorKind::Cancelled, "cannot spawn: the actor is being cancelled"));
    }
    check_spawn_limits(actor, name)?;
    let entry = actor.tree.components.iter().find(|c| c.name == component).expect("checked above");
    // Never more than the spawner holds: the child gets the grants asked for
    // (by default, its component's), if the spawner has every one of them.
    // WIT's `grants` has no `discover`: a narrowed child keeps its
    // component's (still never more than ours).
    let narrowed = opts.grants.map(|g| crate::sandbox::Grants { discover: entry.grants.discover.clone(), ..g });
    let asked = narrowed.as_ref().unwrap_or(&entry.grants);
    let (mut grants, handed) = actor.grant_for_child(asked, name)?;
    let policy = actor.spawn_policy().await?;
    // Placed on another host than ours: over ssh, from the driver's host only.
    let remote = match policy.place(entry.host.as_deref()).filter(|h| *h != actor.tree.here) {
        None => None,
        Some(_) if !actor.tree.here.is_empty() => {
            return Err(actor.error(
                ErrorKind::SpawnFailed,
                format!(
                    "cannot start actor `{name}` on another host from host '{}': ssh spawns start from the root's host",
                    actor.tree.here
                ),
            ))
        }
        Some(h) => match actor.tree.hosts.iter().find(|s| s.name == h) {
            Some(spec) => Some(spec),
            None => return Err(actor.error(ErrorKind::SpawnFailed, format!("no host `{h}` in the manifest's [hosts]"))),
        },
    };
    let backend = if remote.is_some() { Backend::Ssh } else { policy.choose(opts.backend, entry.spawn) };
    let zygote = policy.zygote.as_deref();
    let request = crate::spawn::Request {
        backend,
        exe: &actor.tree.host_exe,
        new_group: actor.new_process_group,
        tree_id: &actor.tree.id,
        zygote,
        handed,
        thread_entry: actor.tree.thread_entry,
        ssh: remote.map(|host| crate::spawn::ssh::SshSpawn {
            host,
            masters: &actor.masters,
            components: &actor.tree.components,
            grace: actor.tree.grace,
        }),
    };
    let spawned = crate::spawn::spawn(request)
        .await
        .map_err(|e| actor.error(ErrorKind::SpawnFailed, format!("cannot start actor `{name}` ({backend}): {e}")))?;
    for (d, fd) in grants.dirs.iter_mut().zip(&spawned.handed) {
        d.fd = Some(*fd);
    }
    let info = ActorInfo {
        name: name.to_string(),
        uid: new_uid(),
        pid: spawned.pid,
        depth: actor.child_depth,
        component: component.to_string(),
    };
    let run_once = run.is_some();
    let token = crate::discovery::new_token();
    let peer_addr = crate::discovery::peer_addr(&actor.tree.id, &info.uid);
    let entry_of = crate::wire::Entry {
        name: info.name.clone(),
        uid: info.uid.clone(),
        pid: info.pid,
        host: remote.map_or_else(|| actor.tree.here.clone(), |h| h.name.clone()),
        depth: info.depth,
        component: info.component.clone(),
        parent_uid: if actor.grants.is_none() { String::new() } else { actor.me.uid.clone() },
        peer_addr: peer_addr.clone(),
        token: token.clone(),
        discover: grants.discover.clone(),
        backend: backend.to_string(),
        discoverable: entry.discoverable,
    };
    let start = StartActor {
        name: info.name.clone(),
        uid: info.uid.clone(),
        depth: info.depth,
        component: info.component.clone(),
        components: actor.tree.components.clone(),
        grace_ms: actor.tree.grace.as_millis() as u64,
        max_depth: actor.tree.max_depth,
        grants,
        tree_id: actor.tree.id.clone(),
        spawn: policy,
        run: run.map(|(func, args)| CallRequest { id: RUN_ONCE_ID, func, args }),
        peer_addr,
        token,
        registry: true,
        host: remote.map_or_else(|| actor.tree.here.clone(), |h| h.name.clone()),
        hosts: actor.tree.hosts.clone(),
    };
    let (tx, rx) = mpsc::unbounded_channel();
    tx.send(Msg::Start(Box::new(start))).expect("receiver alive");
    let child = Arc::new(ChildActor {
        info,
        run_once,
        peer: false,
        tx,
        state: Mutex::new(ChildState::default()),
        result: watch::channel(None).0,
        exited: watch::channel(false).0,
        ready: watch::channel(false).0,
        grace: actor.tree.grace,
        killer: spawned.process.killer(),
        backend,
        since: std::time::Instant::now(),
    });
    {
        let mut list = actor.children.lock().unwrap();
        list.retain(|w| w.strong_count() > 0);
        list.push(Arc::downgrade(&child));
    }
    let crate::spawn::Link { rx: read, tx: write } = spawned.link;
    let writer = tokio::spawn(wire::pump(write, rx));
    child.killer.attach(&child.tx);
    if let Some(h) = remote {
        heartbeats(&child, std::time::Duration::from_millis(h.heartbeat_ms.max(10)));
    }
    let remote = remote.map(|h| (h.name.clone(), std::time::Duration::from_millis(h.dead_after_ms.max(100))));
    let registration = Registration { bus: actor.bus.clone(), entry: entry_of, remote };
    tokio::spawn(supervise(child.clone(), read, writer, spawned.process, on_end, registration));
    Ok(child)
}

/// Send a remote child a `Heartbeat` every `every` until it has exited.
fn heartbeats(child: &Arc<ChildActor>, every: std::time::Duration) {
    let (tx, mut exited) = (child.tx.clone(), child.exited.subscribe());
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = exited.wait_for(|e| *e) => break,
                _ = tokio::time::sleep(every) => {
                    if tx.send(Msg::Heartbeat).is_err() {
                        break;
                    }
                }
            }
        }
    });
}
