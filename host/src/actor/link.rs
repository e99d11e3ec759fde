//! Loading a component: its precompiled artifact (compiled on first use
//! from a `.wasm`), linked against every import the host provides, once
//! per process and shared by every actor of the process that runs it.

use super::imports::tractor::actor::{discovery, identity, log, runtime, types};
use super::imports::ActorState;
use crate::component::Model;
use crate::error::{ErrorKind, RemoteError};
use crate::value::Signature;
use crate::wire::ComponentEntry;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, HasSelf, InstancePre, Linker};

/// A precompiled component linked against the host's imports.
pub struct Linked {
    pub(super) pre: InstancePre<ActorState>,
    /// Every exported function (`name` or `iface#name`) with its signature.
    pub exports: Vec<(String, Signature)>,
}

/// Load the precompiled component at `cwasm` and link it against every
/// import the host provides; the error names the component.
pub fn link(model: Model, component_name: &str, cwasm: &Path) -> Result<Linked, (ErrorKind, String)> {
    let engine = &crate::component::shared_engine(model).map_err(|e| (ErrorKind::Internal, format!("{e:#}")))?;
    // SAFETY: the file is one of our cache entries, written once
    // (atomically renamed into place) and never modified afterwards.
    let component = unsafe { Component::deserialize_file(engine, cwasm) }.map_err(|e| {
        (ErrorKind::SpawnFailed, format!("component `{component_name}`: cannot load {}: {e:#}", cwasm.display()))
    })?;
    let mut linker: Linker<ActorState> = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)
        .and_then(|_| types::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s))
        .and_then(|_| identity::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s))
        .and_then(|_| runtime::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s))
        .and_then(|_| log::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s))
        .and_then(|_| discovery::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s))
        .and_then(|_| if model == Model::Async { super::imports::aio::add_to_linker(&mut linker) } else { Ok(()) })
        .map_err(|e| (ErrorKind::Internal, format!("cannot set up host imports: {e:#}")))?;
    let mut exports = Vec::new();
    for (export, item) in component.component_type().exports(engine) {
        match item.ty {
            ComponentItem::ComponentInstance(i) => {
                for (f, item) in i.exports(engine) {
                    if let ComponentItem::ComponentFunc(ty) = item.ty {
                        let name = format!("{export}#{f}");
                        exports.push((name.clone(), Signature::from_func_type(&name, &ty)));
                    }
                }
            }
            ComponentItem::ComponentFunc(ty) => {
                exports.push((export.to_string(), Signature::from_func_type(export, &ty)))
            }
            _ => {}
        }
    }
    let pre = linker
        .instantiate_pre(&component)
        .map_err(|e| (ErrorKind::SpawnFailed, format!("component `{component_name}` cannot be linked: {e:#}")))?;
    Ok(Linked { pre, exports })
}

/// Components loaded and linked in this process, by `.cwasm` path: every
/// actor of a process that runs the same component shares one.
fn linked_cache() -> &'static Mutex<HashMap<std::path::PathBuf, Arc<Linked>>> {
    static CACHE: std::sync::OnceLock<Mutex<HashMap<std::path::PathBuf, Arc<Linked>>>> = std::sync::OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// `entry` loaded and linked, from this process's cache if it is there.
pub(super) fn linked(entry: &ComponentEntry) -> Result<Arc<Linked>, (ErrorKind, String)> {
    let cwasm = artifact(entry)?;
    if let Some(hit) = linked_cache().lock().unwrap().get(&cwasm) {
        return Ok(hit.clone());
    }
    let l = Arc::new(link(entry.model, &entry.name, &cwasm)?);
    linked_cache().lock().unwrap().insert(cwasm, l.clone());
    Ok(l)
}

/// The precompiled artifact of `entry`: its `cwasm`, or its `wasm`
/// compiled into the cache (a parent that speaks the protocol without
/// precompiling).
fn artifact(entry: &ComponentEntry) -> Result<std::path::PathBuf, (ErrorKind, String)> {
    if !entry.cwasm.as_os_str().is_empty() {
        return Ok(entry.cwasm.clone());
    }
    let Some(wasm) = &entry.wasm else {
        return Err((ErrorKind::SpawnFailed, format!("component `{}` has neither a `cwasm` nor a `wasm`", entry.name)));
    };
    let compiled = crate::component::cache::precompile(&crate::component::cache::default_dir(), &entry.name, wasm)
        .map_err(|e| (ErrorKind::SpawnFailed, format!("{e:#}")))?;
    if compiled.model != entry.model {
        return Err((
            ErrorKind::SpawnFailed,
            format!("component `{}` is {}, but its entry says {}", entry.name, compiled.model, entry.model),
        ));
    }
    Ok(compiled.cwasm)
}

/// Load and link `entry` into this process's cache ahead of time (the
/// forkserver's zygote does this for every component of its tree).
pub fn preload(entry: &ComponentEntry) -> Result<(), RemoteError> {
    linked(entry).map(|_| ()).map_err(|(kind, msg)| RemoteError::new(kind, msg))
}
