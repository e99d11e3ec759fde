//! The on-disk cache of precompiled components (`.cwasm`).
//!
//! Entries are keyed by the SHA-256 of the component bytes and the engine's
//! compatibility hash, so a changed component or a different wasmtime build
//! never loads a stale artifact. Writes go to a temporary file that is then
//! renamed, so a concurrent reader never maps a half-written file.

use super::Model;
use anyhow::{anyhow, Context as _, Result};
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::Engine;

/// The cache folder: `$TRACTOR_CACHE_DIR`, else `$XDG_CACHE_HOME/tractor`,
/// else `~/.cache/tractor`.
pub fn default_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("TRACTOR_CACHE_DIR") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(d).join("tractor");
    }
    match std::env::var_os("HOME") {
        Some(h) => PathBuf::from(h).join(".cache").join("tractor"),
        None => std::env::temp_dir().join("tractor-cache"),
    }
}

/// Hex digest of the engine's compatibility hash (and the model, so the
/// two engines never share an entry even where their settings hash alike).
fn engine_key(engine: &Engine, model: Model) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    // Sync keys stay what they were before there were two models.
    if model == Model::Async {
        model.hash(&mut h);
    }
    format!("{:016x}", h.finish())
}

/// A component in the cache: its precompiled form and the model (and so
/// the engine) it was compiled for.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// The `.cwasm`.
    pub cwasm: PathBuf,
    /// Sync or async, read from the component.
    pub model: Model,
    /// SHA-256 of the `.wasm`, 64 hex digits.
    pub sha256: String,
    /// Size of the `.wasm`.
    pub size: u64,
}

/// The cache entry of component `name` whose `.wasm` has SHA-256 `sha256`
/// (64 hex digits), if the cache has one for either model.
pub fn find_by_hash(dir: &Path, name: &str, sha256: &str) -> Option<PathBuf> {
    let hex = sha256.get(..32)?;
    [Model::Sync, Model::Async].into_iter().find_map(|model| {
        let engine = super::shared_engine(model).ok()?;
        let path = dir.join(format!("{name}-{hex}-{}.cwasm", engine_key(&engine, model)));
        path.is_file().then(|| {
            touch(&path);
            path
        })
    })
}

/// Return the precompiled form of component `name` at `source`, compiling
/// it (once) with the engine of its model if the cache does not have it yet.
pub fn precompile(dir: &Path, name: &str, source: &Path) -> Result<Compiled> {
    precompile_with(dir, name, source, &super::progress::Logged)
}

/// [`precompile`], reporting a compilation to `progress`.
pub fn precompile_with(
    dir: &Path,
    name: &str,
    source: &Path,
    progress: &dyn super::progress::Progress,
) -> Result<Compiled> {
    let (bytes, path, model) = read_with_entry(dir, name, source)?;
    let engine = super::shared_engine(model)?;
    let sha256: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
    let size = bytes.len() as u64;
    if path.is_file() {
        // Marks the entry used, so eviction keeps it (see `evict`).
        touch(&path);
        return Ok(Compiled { cwasm: path, model, sha256, size });
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create cache folder {}", dir.display()))?;
    let compiled = super::progress::timed(progress, name, super::progress::Step::Precompile, || {
        engine
            .precompile_component(&bytes)
            .map_err(|e| anyhow!("component `{name}` ({}) is not a valid component: {e:#}", source.display()))
    })?;
    let tmp = dir.join(format!(".{}.{}.tmp", path.file_name().unwrap().to_string_lossy(), std::process::id()));
    std::fs::write(&tmp, &compiled).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(Compiled { cwasm: path, model, sha256, size })
}

/// The component at `source` and the path its cache entry has (or would
/// have), and its model: `<name>-<first 16 bytes of its SHA-256>-<engine
/// key>.cwasm`, the engine being its model's.
fn read_with_entry(dir: &Path, name: &str, source: &Path) -> Result<(Vec<u8>, PathBuf, Model)> {
    let bytes =
        std::fs::read(source).with_context(|| format!("component `{name}`: cannot read {}", source.display()))?;
    check_is_component(name, source, &bytes)?;
    let model = super::model_of(&bytes);
    let digest = Sha256::digest(&bytes);
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    let path = dir.join(format!("{name}-{hex}-{}.cwasm", engine_key(&super::shared_engine(model)?, model)));
    Ok((bytes, path, model))
}

/// The cache entry component `name` at `source` has or would have.
pub fn entry_path(dir: &Path, name: &str, source: &Path) -> Result<PathBuf> {
    read_with_entry(dir, name, source).map(|(_, p, _)| p)
}

/// Set `path`'s modification time to now: the cache's "last used".
fn touch(path: &Path) {
    if let Ok(f) = std::fs::File::open(path) {
        let _ = f.set_modified(std::time::SystemTime::now());
    }
}

/// Reject files that are not wasm components with a message naming them.
fn check_is_component(name: &str, source: &Path, bytes: &[u8]) -> Result<()> {
    let what = if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        "is not a WebAssembly file"
    } else if bytes[4..8] == [1, 0, 0, 0] {
        "is a core wasm module, not a component (build it for wasm32-wasip2 or wrap it with `wasm-tools component new`)"
    } else {
        return Ok(());
    };
    Err(anyhow!("component `{name}` ({}) {what}", source.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_wasm_and_core_modules_are_named_errors() {
        let p = Path::new("x.wasm");
        let e = check_is_component("x", p, b"hello world").unwrap_err().to_string();
        assert!(e.contains("component `x` (x.wasm) is not a WebAssembly file"), "{e}");
        let core = b"\0asm\x01\0\0\0";
        let e = check_is_component("x", p, core).unwrap_err().to_string();
        assert!(e.contains("core wasm module"), "{e}");
        assert!(check_is_component("x", p, b"\0asm\x0d\0\x01\0").is_ok());
    }
}
