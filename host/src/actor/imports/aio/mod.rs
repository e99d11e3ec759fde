//! `tractor:actor@0.2.0`: the imports of async guests, on the same
//! [`crate::nursery`] machinery as 0.1.0's.
//!
//! An async actor's instance runs many guest tasks at once (a call or a
//! context each), so the scopes a checkpoint is subject to are per task:
//! every import finds its task through the component model's async call
//! stack (the export task at its root) and that task's [`TaskScopes`] in
//! [`ActorState::tasks`], registered by the serving loop when it started
//! the call.

mod discovery;
mod runtime;

use super::{ActorState, Fail, Scopes};
use wasmtime::component::{HasSelf, Linker};

wasmtime::component::bindgen!({
    path: "../wit/v0.2",
    world: "tractor:actor/actor-host@0.2.0",
    imports: {
        "tractor:actor/runtime": async | store | trappable,
        "tractor:actor/discovery": async | store | trappable,
        default: trappable,
    },
    with: {
        "tractor:actor/types": super::tractor::actor::types,
        "tractor:actor/runtime.nursery": super::NurseryRes,
        "tractor:actor/runtime.portal": super::PortalRes,
        "tractor:actor/runtime.context": super::ContextRes,
        "tractor:actor/runtime.stream": super::StreamRes,
        "tractor:actor/runtime.cancel-scope": super::CancelScopeRes,
    },
});

use tractor::actor::{identity, log};

/// Add the 0.2.0 imports to an async engine's linker.
pub fn add_to_linker(linker: &mut Linker<ActorState>) -> wasmtime::Result<()> {
    // `types` has no functions, but a component importing it needs the
    // instance to exist.
    linker.instance("tractor:actor/types@0.2.0")?;
    identity::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    log::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    tractor::actor::runtime::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    tractor::actor::discovery::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    Ok(())
}

impl identity::Host for ActorState {
    fn current(&mut self) -> wasmtime::Result<identity::ActorInfo> {
        let i = &self.actor.me;
        Ok(identity::ActorInfo {
            name: i.name.clone(),
            uid: i.uid.clone(),
            pid: i.pid,
            depth: i.depth,
            component: i.component.clone(),
        })
    }

    fn available_parallelism(&mut self) -> wasmtime::Result<u32> {
        Ok(std::thread::available_parallelism().map_or(1, |n| n.get() as u32))
    }

    fn current_grants(&mut self) -> wasmtime::Result<super::types::Grants> {
        Ok(super::convert::grants_to_wit(self.actor.grants.clone().unwrap_or_default()))
    }
}

impl log::Host for ActorState {
    fn log(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        super::log::emit(&self.actor.me.name, level as u8, &message);
        Ok(())
    }
}
