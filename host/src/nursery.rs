//! Nurseries and portals: the parent's side of the actor tree.
//!
//! A [`Nursery`] starts child actor processes and does not finish
//! ([`Nursery::wait`]) until every one of them has ended. A child failure is
//! recorded at once, cancels the nursery's scope (so the parent's next
//! checkpoint sees it) and cancels the siblings, whether or not anyone is
//! awaiting that child's [`Portal`].
//!
//! The same types back the guest-facing WIT resources (`actor::host_api`) and
//! the native Rust API, so a Rust program drives actors exactly as a guest
//! does.

use crate::context::{CallerContext, Receiver, StreamCore};
use crate::error::{ErrorKind, RemoteError};
use crate::sandbox::{Folders, Grants, LimitExceeded};
use crate::spawn::forkserver::Zygote;
use crate::spawn::{new_uid, valid_name, Backend, Killer, Process, SpawnPolicy};
use crate::wire::{self, ComponentEntry, ContextOutcome, Msg, RunRequest, StartActor};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

/// The outcome of a call or of a `run-in-actor` child.
pub type Outcome = Result<ciborium::Value, RemoteError>;

/// How long a child sent SIGTERM gets before SIGKILL.
const TERM_GRACE: Duration = Duration::from_millis(500);

/// What every actor of one tree shares: the host binary and the components.
#[derive(Debug, Clone)]
pub struct TreeInfo {
    /// The `tractor-host` binary that actor processes re-execute.
    pub host_exe: PathBuf,
    /// Precompiled components by manifest name.
    pub components: Vec<ComponentEntry>,
    /// Id of the tree, exported to every actor process as `TRACTOR_TREE`
    /// (so `ps e`, and the tests, can tell which tree a process belongs to).
    pub id: String,
    /// How long a cancelled actor may take to exit before it is killed.
    pub grace: Duration,
    /// Deepest an actor may be (root = 0), if limited.
    pub max_depth: Option<u32>,
    /// Which backend starts each actor.
    pub spawn: SpawnPolicy,
    /// What a `thread` actor runs (the actor module's entry point).
    pub thread_entry: crate::spawn::thread::Entry,
}

impl TreeInfo {
    /// True if some spawn in this tree may use the forkserver, so its
    /// driver must start a zygote.
    fn may_fork(&self) -> bool {
        match self.spawn.forced {
            Some(b) => b == Backend::Forkserver,
            None => {
                self.spawn.default == Backend::Forkserver
                    || self.components.iter().any(|c| c.spawn == Some(Backend::Forkserver))
            }
        }
    }
}

/// How to start one child, beyond its name and component.
#[derive(Debug, Clone, Default)]
pub struct SpawnOptions {
    /// Narrow its capabilities (default: its component's); asking for one
    /// the spawner does not hold is a `denied` error.
    pub grants: Option<Grants>,
    /// Start it with this backend (unless the run forces one).
    pub backend: Option<Backend>,
}

/// Identity of one actor, as reported to guests and in errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActorInfo {
    /// Name given by the spawner.
    pub name: String,
    /// Unique id.
    pub uid: String,
    /// OS process id.
    pub pid: u32,
    /// Distance from the root.
    pub depth: u32,
    /// Manifest component name.
    pub component: String,
}

/// The spawning side: the current actor (or the native program that drives
/// a tree) with its cancel scope and its live children.
#[derive(Debug)]
pub struct ActorCtx {
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
    children: Mutex<Vec<Weak<ChildActor>>>,
    /// How many of this actor's calls are inside a structured teardown
    /// right now (waiting for or cancelling children): one cannot be
    /// abandoned for not returning, it is busy collecting outcomes, and the
    /// children's own grace periods bound it.
    teardowns: watch::Sender<usize>,
    /// The tree's zygote, started on first need; only the tree's driver
    /// has one (actors get its address in their `StartActor`).
    zygote: Option<tokio::sync::OnceCell<Result<Zygote, String>>>,
}

impl ActorCtx {
    /// Context for a native program that drives a tree from outside it.
    pub fn native(tree: TreeInfo) -> Arc<ActorCtx> {
        Self::build(
            ActorInfo {
                name: "tractor-host".into(),
                uid: "host".into(),
                pid: std::process::id(),
                depth: 0,
                component: String::new(),
            },
            0,
            tree,
            true,
            None,
            Folders::default(),
            Some(Default::default()),
        )
    }

    /// The spawn policy children of this actor get, with the zygote's
    /// address once (for a driver) the zygote runs.
    async fn spawn_policy(&self) -> Result<SpawnPolicy, RemoteError> {
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

    /// Context for an actor process.
    pub fn new(
        me: ActorInfo,
        child_depth: u32,
        tree: TreeInfo,
        new_process_group: bool,
        grants: Option<Grants>,
        folders: Folders,
    ) -> Arc<ActorCtx> {
        Self::build(me, child_depth, tree, new_process_group, grants, folders, None)
    }

    fn build(
        me: ActorInfo,
        child_depth: u32,
        tree: TreeInfo,
        new_process_group: bool,
        grants: Option<Grants>,
        folders: Folders,
        zygote: Option<tokio::sync::OnceCell<Result<Zygote, String>>>,
    ) -> Arc<ActorCtx> {
        Arc::new(ActorCtx {
            me,
            child_depth,
            tree,
            cancel: CancellationToken::new(),
            new_process_group,
            cancelled_by: Mutex::new(None),
            grants,
            folders,
            children: Mutex::new(Vec::new()),
            teardowns: watch::channel(0).0,
            zygote,
        })
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

    fn error(&self, kind: ErrorKind, msg: impl Into<String>) -> RemoteError {
        RemoteError::new(kind, msg).with_actor(&self.me.name, &self.me.uid)
    }

    /// The grants child `name` gets when it asks for `asked`, with its
    /// folders opened (beneath ours) as the descriptors to hand it: never
    /// more than we hold.
    fn grant_for_child(&self, asked: &Grants, name: &str) -> Result<(Grants, Vec<std::os::fd::OwnedFd>), RemoteError> {
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

/// A structured teardown in progress (see [`ActorCtx::tearing_down`]).
#[must_use = "the teardown ends when this is dropped"]
pub struct Teardown(Arc<ActorCtx>);

impl Drop for Teardown {
    fn drop(&mut self) {
        self.0.teardowns.send_modify(|n| *n -= 1);
    }
}

#[derive(Default)]
struct ChildState {
    pending: HashMap<u64, oneshot::Sender<Outcome>>,
    /// Open contexts into this child, by context id.
    contexts: HashMap<u64, Arc<CallerContext>>,
    next_id: u64,
    cancelled_by: Option<String>,
    gone: Option<RemoteError>,
    /// The signal we had to send after the grace period, if any.
    forced: Option<&'static str>,
}

/// One child actor process, as seen by its parent.
pub struct ChildActor {
    info: ActorInfo,
    run_once: bool,
    tx: mpsc::UnboundedSender<Msg>,
    state: Mutex<ChildState>,
    result: watch::Sender<Option<Outcome>>,
    exited: watch::Sender<bool>,
    grace: Duration,
    killer: Killer,
    backend: Backend,
}

impl std::fmt::Debug for ChildActor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildActor").field("info", &self.info).finish()
    }
}

/// Called once when a child has ended, with its final outcome.
type OnEnd = Box<dyn FnOnce(&Arc<ChildActor>, &Outcome) + Send>;

/// Id of the single call a `run-in-actor` child makes.
const RUN_ONCE_ID: u64 = 0;

impl ChildActor {
    /// Its identity.
    pub fn info(&self) -> &ActorInfo {
        &self.info
    }

    /// The backend that started it.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// True once its process has exited and been reaped.
    pub fn has_exited(&self) -> bool {
        *self.exited.borrow()
    }

    fn err(&self, kind: ErrorKind, msg: impl Into<String>) -> RemoteError {
        RemoteError::new(kind, msg).with_actor(&self.info.name, &self.info.uid)
    }

    /// Calls and contexts fail at once into an actor that has exited (saying
    /// how it ended) or that is being cancelled.
    fn usable(&self, st: &ChildState) -> Result<(), RemoteError> {
        if let Some(gone) = &st.gone {
            return Err(gone.clone());
        }
        if let Some(by) = &st.cancelled_by {
            return Err(self.err(
                ErrorKind::ActorGone,
                format!("actor '{}' was cancelled by '{by}'; it takes no more calls", self.info.name),
            ));
        }
        Ok(())
    }

    /// Send a call; the receiver yields its outcome.
    fn call(&self, func: &str, args: ciborium::Value) -> Result<(u64, oneshot::Receiver<Outcome>), RemoteError> {
        let mut st = self.state.lock().unwrap();
        self.usable(&st)?;
        st.next_id += 1;
        let id = st.next_id;
        let (tx, rx) = oneshot::channel();
        st.pending.insert(id, tx);
        drop(st);
        let req = RunRequest { id, func: func.to_string(), args };
        if self.tx.send(Msg::Call(req)).is_err() {
            self.state.lock().unwrap().pending.remove(&id);
            return Err(self.err(ErrorKind::ActorGone, format!("actor '{}' has exited", self.info.name)));
        }
        Ok((id, rx))
    }

    /// Cancel call `id` in the child (it may be queued or running) and fail
    /// its waiter at once.
    fn cancel_call(&self, id: u64, by: &str) {
        let waiter = self.state.lock().unwrap().pending.remove(&id);
        if let Some(tx) = waiter {
            let _ = tx
                .send(Err(RemoteError::cancelled(format!("call cancelled by '{by}'"))
                    .with_actor(&self.info.name, &self.info.uid)));
            if !self.has_exited() {
                let _ = self.tx.send(Msg::CancelCall { id, by: by.to_string() });
            }
        }
    }

    /// Route a context frame from the child (`Err`: a protocol error).
    fn route_context(&self, msg: Msg) -> Result<(), String> {
        let cid = match &msg {
            Msg::Started { cid, .. }
            | Msg::ContextDone { cid, .. }
            | Msg::Stream { cid, .. }
            | Msg::Credit { cid, .. }
            | Msg::StreamEnd { cid } => *cid,
            _ => return Ok(()),
        };
        let mut st = self.state.lock().unwrap();
        let Some(c) = st.contexts.get(&cid).cloned() else {
            return Ok(()); // a late frame for a context we already gave up on
        };
        if matches!(msg, Msg::ContextDone { .. }) {
            st.contexts.remove(&cid);
        }
        drop(st);
        c.on_frame(msg)
    }

    /// Send an `OpenContext` and register its state.
    fn open_context(
        &self,
        func: &str,
        args: ciborium::Value,
        me: (&str, &str),
    ) -> Result<(u64, Arc<CallerContext>), RemoteError> {
        let mut st = self.state.lock().unwrap();
        self.usable(&st)?;
        st.next_id += 1;
        let cid = st.next_id;
        let ctx = CallerContext::new(StreamCore::new(cid, self.tx.clone(), &self.info.name, me));
        st.contexts.insert(cid, ctx.clone());
        drop(st);
        let req = RunRequest { id: cid, func: func.to_string(), args };
        if self.tx.send(Msg::OpenContext(req)).is_err() {
            self.state.lock().unwrap().contexts.remove(&cid);
            return Err(self.err(ErrorKind::ActorGone, format!("actor '{}' has exited", self.info.name)));
        }
        Ok((cid, ctx))
    }

    /// Cancel the child and wait until its process has exited, killing it
    /// after the grace period. Idempotent.
    pub async fn cancel(&self, by: &str) {
        let first = {
            let mut st = self.state.lock().unwrap();
            let first = st.cancelled_by.is_none();
            if first {
                st.cancelled_by = Some(by.to_string());
            }
            first
        };
        if first && !self.has_exited() {
            let _ = self.tx.send(Msg::Cancel { by: by.to_string() });
        }
        let mut exited = self.exited.subscribe();
        // The ladder: a grace period to tear down, then SIGTERM, then SIGKILL.
        for (wait, signal, name) in [(self.grace, libc::SIGTERM, "SIGTERM"), (TERM_GRACE, libc::SIGKILL, "SIGKILL")] {
            if tokio::time::timeout(wait, exited.wait_for(|e| *e)).await.is_ok() {
                return;
            }
            self.force(signal, name);
        }
        let _ = exited.wait_for(|e| *e).await;
    }

    /// Send `signal` to a child that ignored its cancellation, and say so.
    fn force(&self, signal: libc::c_int, name: &'static str) {
        if self.has_exited() {
            return;
        }
        tracing::warn!(
            "actor '{}' (pid {}, {}) did not exit within {:?} of being cancelled: sending {name}",
            self.info.name,
            self.info.pid,
            self.backend,
            self.grace
        );
        self.state.lock().unwrap().forced = Some(name);
        self.killer.signal(signal);
    }

    /// Wait for the outcome of a `run-in-actor` child.
    async fn outcome(&self) -> Outcome {
        let mut rx = self.result.subscribe();
        let v = rx.wait_for(|r| r.is_some()).await;
        match v {
            Ok(r) => r.clone().expect("checked is_some"),
            Err(_) => Err(self.err(ErrorKind::Internal, "result channel closed")),
        }
    }

    /// Wait until the process has exited.
    pub async fn wait_exited(&self) {
        let mut rx = self.exited.subscribe();
        let _ = rx.wait_for(|e| *e).await;
    }
}

/// Refuse a spawn that would exceed the tree's depth or the spawner's
/// children limit.
fn check_spawn_limits(ctx: &ActorCtx, name: &str) -> Result<(), RemoteError> {
    let limit = |l: LimitExceeded| ctx.error(ErrorKind::Limit, format!("cannot start actor `{name}`: {l}"));
    if let Some(max) = ctx.tree.max_depth {
        if ctx.child_depth > max {
            return Err(limit(LimitExceeded { limit: "max-depth", value: max.to_string() }));
        }
    }
    let own = ctx.tree.components.iter().find(|c| c.name == ctx.me.component);
    if let Some(max) = own.and_then(|c| c.limits.max_children) {
        if ctx.live_children().len() >= max as usize {
            return Err(limit(LimitExceeded { limit: "children", value: max.to_string() }));
        }
    }
    Ok(())
}

/// Start a child actor process running `component` and send it its start
/// message. Does not wait for it to load: calls queue behind the start.
async fn spawn_child(
    ctx: &Arc<ActorCtx>,
    name: &str,
    component: Option<&str>,
    run: Option<(String, ciborium::Value)>,
    opts: SpawnOptions,
    on_end: OnEnd,
) -> Result<Arc<ChildActor>, RemoteError> {
    if !valid_name(name) {
        return Err(ctx.error(
            ErrorKind::SpawnFailed,
            format!("invalid actor name `{name}` (use letters, digits, '-', '_', '.')"),
        ));
    }
    let component = component.unwrap_or(&ctx.me.component);
    if !ctx.tree.components.iter().any(|c| c.name == component) {
        let known: Vec<_> = ctx.tree.components.iter().map(|c| c.name.as_str()).collect();
        return Err(ctx.error(
            ErrorKind::NoSuchComponent,
            format!("no component named `{component}` in the manifest (known: {})", known.join(", ")),
        ));
    }
    if ctx.cancel.is_cancelled() {
        return Err(ctx.error(ErrorKind::Cancelled, "cannot spawn: the actor is being cancelled"));
    }
    check_spawn_limits(ctx, name)?;
    let entry = ctx.tree.components.iter().find(|c| c.name == component).expect("checked above");
    // Never more than the spawner holds: the child gets the grants asked for
    // (by default, its component's), if the spawner has every one of them.
    let asked = opts.grants.as_ref().unwrap_or(&entry.grants);
    let (mut grants, handed) = ctx.grant_for_child(asked, name)?;
    let policy = ctx.spawn_policy().await?;
    let backend = policy.choose(opts.backend, entry.spawn);
    let zygote = policy.zygote.as_deref();
    let request = crate::spawn::Request {
        backend,
        exe: &ctx.tree.host_exe,
        new_group: ctx.new_process_group,
        tree_id: &ctx.tree.id,
        zygote,
        handed,
        thread_entry: ctx.tree.thread_entry,
    };
    let spawned = crate::spawn::spawn(request)
        .await
        .map_err(|e| ctx.error(ErrorKind::SpawnFailed, format!("cannot start actor `{name}` ({backend}): {e}")))?;
    for (d, fd) in grants.dirs.iter_mut().zip(&spawned.handed) {
        d.fd = Some(*fd);
    }
    let info = ActorInfo {
        name: name.to_string(),
        uid: new_uid(),
        pid: spawned.pid,
        depth: ctx.child_depth,
        component: component.to_string(),
    };
    let run_once = run.is_some();
    let start = StartActor {
        name: info.name.clone(),
        uid: info.uid.clone(),
        depth: info.depth,
        component: info.component.clone(),
        components: ctx.tree.components.clone(),
        grace_ms: ctx.tree.grace.as_millis() as u64,
        max_depth: ctx.tree.max_depth,
        grants,
        tree_id: ctx.tree.id.clone(),
        spawn: policy,
        run: run.map(|(func, args)| RunRequest { id: RUN_ONCE_ID, func, args }),
    };
    let (tx, rx) = mpsc::unbounded_channel();
    tx.send(Msg::Start(Box::new(start))).expect("receiver alive");
    let child = Arc::new(ChildActor {
        info,
        run_once,
        tx,
        state: Mutex::new(ChildState::default()),
        result: watch::channel(None).0,
        exited: watch::channel(false).0,
        grace: ctx.tree.grace,
        killer: spawned.process.killer(),
        backend,
    });
    {
        let mut list = ctx.children.lock().unwrap();
        list.retain(|w| w.strong_count() > 0);
        list.push(Arc::downgrade(&child));
    }
    let crate::spawn::Link { rx: read, tx: write } = spawned.link;
    let writer = tokio::spawn(wire::pump(write, rx));
    tokio::spawn(supervise(child.clone(), read, writer, spawned.process, on_end));
    Ok(child)
}

/// Route the child's messages until its pipe closes, then reap it and
/// settle everything still waiting on it.
async fn supervise(
    child: Arc<ChildActor>,
    read: tokio::net::unix::pipe::Receiver,
    writer: tokio::task::JoinHandle<()>,
    mut proc: Process,
    on_end: OnEnd,
) {
    let mut failure: Option<RemoteError> = None;
    let mut read = tokio::io::BufReader::with_capacity(64 * 1024, wire::frame::Spinning::new(read));
    loop {
        match wire::read_msg(&mut read).await {
            Ok(Msg::Ready { .. }) => {}
            Ok(Msg::Return { id, value }) => settle(&child, id, Ok(value)),
            Ok(Msg::CallFailed { id, error }) => settle(&child, id, Err(error)),
            Ok(Msg::Failed { error }) => {
                failure.get_or_insert(error);
            }
            Ok(
                msg @ (Msg::Started { .. }
                | Msg::ContextDone { .. }
                | Msg::Stream { .. }
                | Msg::Credit { .. }
                | Msg::StreamEnd { .. }),
            ) => {
                if let Err(why) = child.route_context(msg) {
                    failure.get_or_insert(
                        child.err(
                            ErrorKind::Protocol,
                            format!("protocol error from actor '{}': {why}", child.info.name),
                        ),
                    );
                    proc.killer().signal(libc::SIGKILL);
                    break;
                }
            }
            Ok(other) => {
                failure.get_or_insert(child.err(
                    ErrorKind::Protocol,
                    format!("protocol error from actor '{}': unexpected message {}", child.info.name, other.name()),
                ));
                proc.killer().signal(libc::SIGKILL);
                break;
            }
            Err(wire::FrameError::Closed) => break,
            Err(e) => {
                failure.get_or_insert(
                    child.err(ErrorKind::Protocol, format!("protocol error from actor '{}': {e}", child.info.name)),
                );
                proc.killer().signal(libc::SIGKILL);
                break;
            }
        }
    }
    let status = proc.wait().await;
    // Close the child's pidfd and both ends of its link before anyone hears
    // the child is gone, so a nursery that has finished waiting holds no
    // descriptor for it.
    drop(proc);
    drop(read);
    writer.abort();
    let _ = writer.await;
    let (cancelled_by, forced) = {
        let st = child.state.lock().unwrap();
        (st.cancelled_by.clone(), st.forced)
    };
    let death = match (&cancelled_by, &status) {
        (Some(by), _) => {
            let how = forced.map_or(String::new(), |sig| {
                format!(" and killed with {sig} after the {:?} grace period", child.grace)
            });
            RemoteError::cancelled(format!("actor '{}' was cancelled by '{by}'{how}", child.info.name))
                .with_actor(&child.info.name, &child.info.uid)
        }
        (None, s) if s.success() => {
            child.err(ErrorKind::ActorDied, format!("actor '{}' exited without reporting a result", child.info.name))
        }
        (None, s) => child.err(ErrorKind::ActorDied, format!("actor '{}' died: {s}", child.info.name)),
    };
    let clean_exit = failure.is_none() && status.success();
    // An actor-level failure report beats the generic death message, even
    // from a child we were cancelling: it failed before it could comply.
    let death = failure.unwrap_or(death);
    let pending: Vec<_> = {
        let mut st = child.state.lock().unwrap();
        st.gone = Some(if death.is_cancelled() {
            child.err(ErrorKind::ActorGone, format!("actor '{}' has exited: {}", child.info.name, death.message))
        } else {
            death.clone()
        });
        st.pending.drain().collect()
    };
    for (_, tx) in pending {
        let _ = tx.send(Err(death.clone()));
    }
    let contexts: Vec<_> = child.state.lock().unwrap().contexts.drain().map(|(_, c)| c).collect();
    for c in contexts {
        c.finish(match &cancelled_by {
            Some(by) if death.is_cancelled() => ContextOutcome::Cancelled { by: by.clone() },
            _ => ContextOutcome::Failed(death.clone()),
        });
    }
    let outcome = if child.run_once {
        child.result.send_if_modified(|r| {
            if r.is_none() {
                *r = Some(Err(death.clone()));
                true
            } else {
                false
            }
        });
        child.result.borrow().clone().expect("set above")
    } else if clean_exit {
        // A daemon that ended cleanly did its job.
        Ok(ciborium::Value::Null)
    } else {
        Err(death)
    };
    // Record the outcome with the nursery before anyone waiting for the
    // exit can look at the nursery's verdict.
    on_end(&child, &outcome);
    child.exited.send_replace(true);
}

fn settle(child: &ChildActor, id: u64, outcome: Outcome) {
    if child.run_once && id == RUN_ONCE_ID {
        child.result.send_replace(Some(outcome));
    } else if let Some(tx) = child.state.lock().unwrap().pending.remove(&id) {
        let _ = tx.send(outcome);
    }
}

/// A handle on a child actor.
#[derive(Debug, Clone)]
pub struct Portal {
    child: Arc<ChildActor>,
    /// Name of the actor holding the portal (the canceller of its calls).
    caller: String,
}

/// A call in flight; await [`PendingCall::get`] for its outcome.
#[derive(Debug)]
pub struct PendingCall {
    rx: oneshot::Receiver<Outcome>,
    actor: String,
    /// Set until the outcome is known: dropping the call then cancels the
    /// remote work (a timeout around a call must not leave it running).
    cancel_on_drop: Option<(Arc<ChildActor>, u64, String)>,
}

impl Drop for PendingCall {
    fn drop(&mut self) {
        if let Some((child, id, by)) = self.cancel_on_drop.take() {
            child.cancel_call(id, &by);
        }
    }
}

impl PendingCall {
    /// Wait for the outcome.
    pub async fn get(mut self) -> Outcome {
        self.ready().await
    }

    /// The outcome if it has arrived; never blocks.
    pub fn try_get(&mut self) -> Option<Outcome> {
        let outcome = match self.rx.try_recv() {
            Ok(o) => o,
            Err(oneshot::error::TryRecvError::Empty) => return None,
            Err(oneshot::error::TryRecvError::Closed) => Err(self.dropped()),
        };
        self.cancel_on_drop = None;
        Some(outcome)
    }

    /// Wait for the outcome without consuming the call (for pollables).
    pub async fn ready(&mut self) -> Outcome {
        let outcome = (&mut self.rx).await.unwrap_or_else(|_| Err(self.dropped()));
        self.cancel_on_drop = None;
        outcome
    }

    fn dropped(&self) -> RemoteError {
        RemoteError::new(ErrorKind::Internal, format!("call into '{}' was dropped", self.actor))
    }
}

impl Portal {
    /// The child's identity.
    pub fn info(&self) -> &ActorInfo {
        &self.child.info
    }

    /// The child itself.
    pub fn child(&self) -> &Arc<ChildActor> {
        &self.child
    }

    /// Start a call to export `func`; never blocks. Fails at once if the
    /// actor was cancelled or has exited.
    pub fn run(&self, func: &str, args: ciborium::Value) -> Result<PendingCall, RemoteError> {
        let (id, rx) = self.child.call(func, args)?;
        Ok(PendingCall {
            rx,
            actor: self.child.info.name.clone(),
            cancel_on_drop: Some((self.child.clone(), id, self.caller.clone())),
        })
    }

    /// The return value of a `run-in-actor` child.
    pub async fn result(&self) -> Outcome {
        if !self.child.run_once {
            return Err(self.child.err(
                ErrorKind::BadArgs,
                format!("actor '{}' was started with start-actor; it has no result (use run)", self.child.info.name),
            ));
        }
        self.child.outcome().await
    }

    /// Cancel the child and wait for its process to exit.
    pub async fn cancel_actor(&self, by: &str) {
        self.child.cancel(by).await
    }

    /// Open a 2-way context on export `func` of the child (whose first
    /// parameter is the context) and wait for the value it passes to
    /// `started`. `me` names the caller (name, uid) for the callee's errors.
    pub async fn open_context(
        &self,
        func: &str,
        args: ciborium::Value,
        me: (&str, &str),
    ) -> Result<(Context, Vec<u8>), RemoteError> {
        let (cid, state) = self.child.open_context(func, args, me)?;
        let ctx = Context { cid, child: self.child.clone(), state, caller: me.0.to_string() };
        let first = ctx.state.started().await?;
        Ok((ctx, first))
    }
}

/// The caller's handle on an open context.
#[derive(Debug)]
pub struct Context {
    cid: u64,
    child: Arc<ChildActor>,
    state: Arc<CallerContext>,
    caller: String,
}

impl Context {
    /// The callee's identity.
    pub fn callee(&self) -> &ActorInfo {
        &self.child.info
    }

    /// The shared state, for waiting on it without borrowing the handle.
    pub fn state(&self) -> Arc<CallerContext> {
        self.state.clone()
    }

    /// Open the context's stream (once).
    pub fn open_stream(&self) -> Result<Receiver, RemoteError> {
        self.state.stream.open()
    }

    /// Wait for the callee's function to end: its return value, a
    /// cancellation naming the canceller, or its failure.
    pub async fn result(&self) -> ContextOutcome {
        self.state.outcome().await
    }

    /// Cancel the callee's function (with the caller's failure, if it is
    /// failing). Returns at once; see [`Context::result`] for the outcome.
    pub fn cancel(&self, error: Option<RemoteError>) {
        if !self.state.is_done() {
            let _ = self.child.tx.send(Msg::CancelContext { cid: self.cid, by: self.caller.clone(), error });
        }
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        // Structured: a context nobody holds any more must not keep the
        // callee's function running.
        self.cancel(None);
    }
}

#[derive(Default)]
struct NurseryState {
    children: Vec<Arc<ChildActor>>,
    /// Spawns started and not yet registered (or failed).
    spawning: usize,
    errors: Vec<RemoteError>,
    closed: bool,
}

struct NurseryInner {
    ctx: Arc<ActorCtx>,
    scope: CancellationToken,
    /// Cancelled once the nursery is closed or dropped, to end its watcher.
    closed: CancellationToken,
    state: Mutex<NurseryState>,
    changed: watch::Sender<u64>,
}

impl NurseryInner {
    /// A child ended: record a failure and, on the first one, cancel the
    /// scope and every sibling at once.
    fn child_ended(self: &Arc<Self>, outcome: &Outcome) {
        if let Err(e) = outcome {
            // A real failure counts even from a child we were cancelling:
            // only the cancellation itself is not an error.
            if !e.is_cancelled() {
                let first = {
                    let mut st = self.state.lock().unwrap();
                    st.errors.push(e.clone());
                    st.errors.len() == 1
                };
                if first {
                    self.scope.cancel();
                }
            }
        }
        self.changed.send_modify(|g| *g += 1);
    }

    async fn cancel_children(&self) {
        let kids = self.state.lock().unwrap().children.clone();
        futures::future::join_all(kids.iter().map(|c| c.cancel(&self.ctx.me.name))).await;
    }
}

/// A supervision scope for child actors (see module docs).
pub struct Nursery {
    inner: Arc<NurseryInner>,
}

impl Nursery {
    /// Open a nursery for the actor `ctx`.
    pub fn open(ctx: &Arc<ActorCtx>) -> Nursery {
        let scope = ctx.cancel.child_token();
        let inner = Arc::new(NurseryInner {
            ctx: ctx.clone(),
            scope: scope.clone(),
            closed: CancellationToken::new(),
            state: Mutex::new(NurseryState::default()),
            changed: watch::channel(0).0,
        });
        // When the scope is cancelled (parent cancelled, or a child failed),
        // every child is cancelled too.
        let weak = Arc::downgrade(&inner);
        let closed = inner.closed.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = scope.cancelled() => {}
                _ = closed.cancelled() => return,
            }
            if let Some(inner) = weak.upgrade() {
                inner.cancel_children().await;
            }
        });
        Nursery { inner }
    }

    /// The nursery's cancel scope.
    pub fn scope(&self) -> &CancellationToken {
        &self.inner.scope
    }

    /// Why the scope was cancelled: the children's failure(s), or a plain
    /// cancellation of the enclosing actor. `None` while not cancelled.
    pub fn cancel_reason(&self) -> Option<RemoteError> {
        if !self.inner.scope.is_cancelled() {
            return None;
        }
        let ctx = &self.inner.ctx;
        let errors = self.inner.state.lock().unwrap().errors.clone();
        Some(RemoteError::group(errors, &ctx.me.name, &ctx.me.uid).unwrap_or_else(|| ctx.cancelled_error()))
    }

    fn check_open(&self) -> Result<(), RemoteError> {
        if self.inner.state.lock().unwrap().closed {
            return Err(self.inner.ctx.error(ErrorKind::BadArgs, "the nursery is closed"));
        }
        if let Some(reason) = self.cancel_reason() {
            return Err(reason);
        }
        Ok(())
    }

    /// Start a child; see [`Nursery::start_actor`] and [`Nursery::run_in_actor`].
    pub async fn spawn(
        &self,
        name: &str,
        component: Option<&str>,
        run: Option<(String, ciborium::Value)>,
        opts: SpawnOptions,
    ) -> Result<Portal, RemoteError> {
        self.check_open()?;
        let weak = Arc::downgrade(&self.inner);
        let on_end = Box::new(move |_: &Arc<ChildActor>, o: &Outcome| {
            if let Some(inner) = weak.upgrade() {
                inner.child_ended(o);
            }
        });
        // A task of its own, so that a caller who stops waiting (a
        // cancelled checkpoint, a timeout) cannot drop a spawn half-way:
        // the child is started and registered here, or not at all, and
        // `wait` waits for spawns in flight.
        self.inner.state.lock().unwrap().spawning += 1;
        let inner = self.inner.clone();
        let (name, component) = (name.to_string(), component.map(str::to_string));
        let task = tokio::spawn(async move {
            let child = spawn_child(&inner.ctx, &name, component.as_deref(), run, opts, on_end).await;
            {
                let mut st = inner.state.lock().unwrap();
                st.spawning -= 1;
                if let Ok(child) = &child {
                    st.children.push(child.clone());
                }
            }
            inner.changed.send_modify(|g| *g += 1);
            let child = child?;
            // A cancel that raced with the spawn must still reach the new child.
            if inner.scope.is_cancelled() {
                child.cancel(&inner.ctx.me.name).await;
            }
            Ok(Portal { child, caller: inner.ctx.me.name.clone() })
        });
        task.await.unwrap_or_else(|e| Err(self.inner.ctx.error(ErrorKind::Internal, format!("spawn task failed: {e}"))))
    }

    /// Start a long-lived child that serves `portal.run` calls until
    /// cancelled. `component` defaults to the caller's own.
    pub async fn start_actor(&self, name: &str, component: Option<&str>) -> Result<Portal, RemoteError> {
        self.spawn(name, component, None, SpawnOptions::default()).await
    }

    /// Start a child that runs export `func` with `args` once, then exits.
    pub async fn run_in_actor(
        &self,
        name: &str,
        component: Option<&str>,
        func: &str,
        args: ciborium::Value,
    ) -> Result<Portal, RemoteError> {
        self.spawn(name, component, Some((func.to_string(), args)), SpawnOptions::default()).await
    }

    /// True once a child failed, or every `run-in-actor` child has its
    /// result (so [`Nursery::wait`] would only have daemons left to cancel).
    pub fn is_settled(&self) -> bool {
        let st = self.inner.state.lock().unwrap();
        !st.errors.is_empty()
            || st.children.iter().filter(|c| c.run_once).all(|c| c.result.borrow().is_some() || c.has_exited())
    }

    /// Wait until the nursery is settled (see [`Nursery::is_settled`]).
    pub async fn settled(&self) {
        let mut rx = self.inner.changed.subscribe();
        loop {
            if self.is_settled() || self.inner.scope.is_cancelled() {
                return;
            }
            tokio::select! {
                r = rx.changed() => if r.is_err() { return },
                _ = self.inner.scope.cancelled() => {}
            }
        }
    }

    /// Wait for every `run-in-actor` child, then cancel the daemons, and
    /// return once every child process has exited. Returns the children's
    /// failures (several as one group), or `cancelled` if the enclosing actor
    /// was cancelled.
    pub async fn wait(&self) -> Result<(), RemoteError> {
        self.settled().await;
        self.spawned().await;
        self.inner.cancel_children().await;
        let kids = self.inner.state.lock().unwrap().children.clone();
        futures::future::join_all(kids.iter().map(|c| c.wait_exited())).await;
        self.inner.state.lock().unwrap().closed = true;
        self.inner.closed.cancel();
        match self.cancel_reason() {
            Some(reason) => Err(reason),
            None => Ok(()),
        }
    }

    /// Cancel every child and wait until each has exited. The nursery stays
    /// usable and cancelled children are not failures. Idempotent.
    pub async fn cancel(&self) {
        self.spawned().await;
        self.inner.cancel_children().await;
    }

    /// Wait until no spawn is in flight: a child still being started is a
    /// child too.
    async fn spawned(&self) {
        let mut changes = self.inner.changed.subscribe();
        while self.inner.state.lock().unwrap().spawning > 0 {
            if changes.changed().await.is_err() {
                return;
            }
        }
    }
}

impl Drop for Nursery {
    fn drop(&mut self) {
        self.inner.closed.cancel();
        let open = !self.inner.state.lock().unwrap().closed;
        if open {
            // Structured concurrency still holds for a nursery dropped
            // without `wait`: its children are cancelled, never leaked.
            let inner = self.inner.clone();
            if let Ok(h) = tokio::runtime::Handle::try_current() {
                h.spawn(async move { inner.cancel_children().await });
            }
        }
    }
}
