//! What an actor may consume: resource limits and their enforcement.
//!
//! Limits are set per component in the manifest (`[component.x.limits]`)
//! and per tree (`[tree] max-depth`). Exceeding one fails the offending
//! call (a trap for memory and CPU, a refused spawn for children and depth)
//! with an error of kind `limit` that names the limit and its value.

use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Per-component limits; `None` means unlimited. On the wire (see
/// `docs/protocol.md`) the fields keep these names and units; unknown
/// fields are rejected.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Total bytes of linear memory and tables across every instance of the
    /// actor (its main instance and one per open context).
    pub memory_bytes: Option<u64>,
    /// Wasm execution time one call may use, in milliseconds.
    pub cpu_ms_per_call: Option<u64>,
    /// Children the actor may have alive at once.
    pub max_children: Option<u32>,
}

/// A limit was reached; carried inside traps so the error names it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{limit} limit of {value} exceeded")]
pub struct LimitExceeded {
    /// Which limit (`memory`, `cpu-per-call`, `children`, `max-depth`).
    pub limit: &'static str,
    /// Its configured value, as written for people.
    pub value: String,
}

/// Bytes a table element is counted as (a function reference).
const TABLE_ELEMENT_BYTES: usize = 8;

/// Enforces [`Limits::memory_bytes`] for one store, against a total shared
/// by every store of the actor process.
#[derive(Debug)]
pub struct MemoryLimiter {
    limit: Option<usize>,
    /// Bytes this store holds (given back to `total` when it is dropped).
    mine: usize,
    total: Arc<AtomicUsize>,
}

impl MemoryLimiter {
    /// A limiter for a new store of an actor whose stores share `total`.
    pub fn new(limit: Option<u64>, total: Arc<AtomicUsize>) -> MemoryLimiter {
        MemoryLimiter { limit: limit.map(|l| l as usize), mine: 0, total }
    }

    fn grow(&mut self, by: usize) -> wasmtime::Result<bool> {
        if let Some(limit) = self.limit {
            let now = self.total.load(Ordering::SeqCst);
            if now.saturating_add(by) > limit {
                return Err(wasmtime::Error::new(LimitExceeded { limit: "memory", value: size_text(limit as u64) }));
            }
        }
        self.total.fetch_add(by, Ordering::SeqCst);
        self.mine += by;
        Ok(true)
    }
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        self.grow(desired.saturating_sub(current))
    }

    fn table_growing(&mut self, current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        self.grow(desired.saturating_sub(current).saturating_mul(TABLE_ELEMENT_BYTES))
    }
}

impl Drop for MemoryLimiter {
    fn drop(&mut self) {
        self.total.fetch_sub(self.mine, Ordering::SeqCst);
    }
}

/// `67108864` → `64MiB`.
pub fn size_text(bytes: u64) -> String {
    for (unit, size) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{}{unit}", bytes / size);
        }
    }
    format!("{bytes}B")
}

/// Parse `64MiB`, `512KiB`, `1GiB`, `10MB`, `4096` (bytes).
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (num, unit) = text.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mul = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return None,
    };
    n.checked_mul(mul)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::ResourceLimiter as _;

    #[test]
    fn sizes_parse_and_print() {
        assert_eq!(parse_size("64MiB"), Some(64 << 20));
        assert_eq!(parse_size("10 MB"), Some(10_000_000));
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("lots"), None);
        assert_eq!(parse_size("1TiB"), None);
        assert_eq!(size_text(64 << 20), "64MiB");
        assert_eq!(size_text(1000), "1000B");
    }

    #[test]
    fn the_memory_limit_counts_every_store_of_the_actor() {
        let total = Arc::new(AtomicUsize::new(0));
        let mut a = MemoryLimiter::new(Some(100), total.clone());
        let mut b = MemoryLimiter::new(Some(100), total.clone());
        assert!(a.memory_growing(0, 60, None).unwrap());
        let e = b.memory_growing(0, 60, None).unwrap_err();
        assert_eq!(e.to_string(), "memory limit of 100B exceeded");
        assert!(b.table_growing(0, 5, None).unwrap()); // 40 bytes
        drop(a);
        assert_eq!(total.load(Ordering::SeqCst), 40);
        assert!(b.memory_growing(0, 60, None).unwrap());
    }

    #[test]
    fn unknown_limit_keys_are_rejected_on_the_wire() {
        let v =
            ciborium::Value::Map(vec![(ciborium::Value::Text("memory".into()), ciborium::Value::Integer(1.into()))]);
        let e = v.deserialized::<Limits>().unwrap_err().to_string();
        assert!(e.contains("memory"), "{e}");
    }
}
