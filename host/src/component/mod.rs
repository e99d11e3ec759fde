//! Components: building them from source, compiling them once, and loading
//! them fast in actor processes.
//!
//! Every process of a tree uses the same [`engine`] configuration, which is
//! what makes a `.cwasm` compiled by the root loadable by any child.

pub mod build;
pub mod cache;
pub mod evict;
pub mod progress;

use anyhow::{anyhow, Result};
use wasmtime::{Config, Engine, WasmBacktraceDetails};

/// The engine configuration shared by every process of a tree.
pub fn engine() -> Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    // Spinning guests are stopped by epoch interruption; blocked ones at
    // their next host call.
    config.epoch_interruption(true);
    config.wasm_backtrace_details(WasmBacktraceDetails::Enable);
    // We use WASI p2 (no component-model async): turning its bookkeeping off
    // makes every export call ~4x cheaper.
    config.concurrency_support(false);
    Engine::new(&config).map_err(|e| anyhow!("cannot configure the wasmtime engine: {e:#}"))
}

/// This process's engine, created on first use. Every actor in a process
/// (one per process with `exec`, many with `thread`, and the forkserver's
/// zygote with its children) shares it, and so its loaded components.
pub fn shared_engine() -> Result<Engine> {
    static ENGINE: std::sync::OnceLock<Engine> = std::sync::OnceLock::new();
    if let Some(e) = ENGINE.get() {
        return Ok(e.clone());
    }
    let e = engine()?;
    Ok(ENGINE.get_or_init(|| e).clone())
}
