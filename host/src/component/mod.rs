//! Components: building them from source, compiling them once, and loading
//! them fast in actor processes.
//!
//! Every process of a tree uses the same [`engine`] configuration for each
//! [`Model`], which is what makes a `.cwasm` compiled by the root loadable
//! by any child.

pub mod build;
pub mod cache;
pub mod evict;
mod model;
pub mod progress;

pub use model::{model_of, Model};

use anyhow::{anyhow, Result};
use wasmtime::{Config, Engine, WasmBacktraceDetails};

/// The engine configuration for components of `model`, shared by every
/// process of a tree.
pub fn engine(model: Model) -> Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    // Spinning guests are stopped by epoch interruption; blocked ones at
    // their next host call.
    config.epoch_interruption(true);
    config.wasm_backtrace_details(WasmBacktraceDetails::Enable);
    // Sync components need no component-model async: turning its
    // bookkeeping off makes every export call ~4x cheaper, so they get an
    // engine of their own.
    config.concurrency_support(model == Model::Async);
    Engine::new(&config).map_err(|e| anyhow!("cannot configure the wasmtime engine: {e:#}"))
}

/// This process's engine for `model`, created on first use. Every actor in
/// a process (one per process with `exec`, many with `thread`, and the
/// forkserver's zygote with its children) shares it, and so its loaded
/// components.
pub fn shared_engine(model: Model) -> Result<Engine> {
    static ENGINES: [std::sync::OnceLock<Engine>; 2] = [std::sync::OnceLock::new(), std::sync::OnceLock::new()];
    let slot = &ENGINES[model as usize];
    if let Some(e) = slot.get() {
        return Ok(e.clone());
    }
    let e = engine(model)?;
    Ok(slot.get_or_init(|| e).clone())
}
