//! Keeping the component cache in bounds.
//!
//! Every use of an entry marks it used (its modification time: see
//! `cache::precompile`), so an entry a manifest still uses is always among
//! the most recent. Eviction drops entries unused for longer than a maximum
//! age, then the least recently used ones while the cache is over its size
//! cap, never the ones it is told to keep (those of the tree being
//! prepared, or of manifests named to `tractor-host cache gc`), and removes
//! temporary files that crashed writers left behind.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How the cache is kept in bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Entries unused for longer than this are dropped.
    pub max_age: Duration,
    /// Then the least recently used while the cache holds more than this.
    pub max_size: u64,
}

/// Entries unused for 30 days are dropped.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(30 * 86400);
/// The cache is kept under 4 GiB (a Python component is ~35 MB precompiled).
pub const DEFAULT_MAX_SIZE: u64 = 4 << 30;
/// A temporary file this old was left by a writer that died.
const STALE_TMP: Duration = Duration::from_secs(3600);

impl Default for Policy {
    fn default() -> Policy {
        Policy { max_age: DEFAULT_MAX_AGE, max_size: DEFAULT_MAX_SIZE }
    }
}

impl Policy {
    /// The defaults, overridden by `TRACTOR_CACHE_MAX_AGE` (e.g. `30d`,
    /// `12h`) and `TRACTOR_CACHE_MAX_SIZE` (e.g. `4GiB`); the error names
    /// the variable.
    pub fn from_env() -> Result<Policy, String> {
        let mut p = Policy::default();
        if let Ok(v) = std::env::var("TRACTOR_CACHE_MAX_AGE") {
            p.max_age = crate::manifest::parse_duration(&v)
                .ok_or_else(|| format!("TRACTOR_CACHE_MAX_AGE: `{v}` is not a duration (use e.g. 30d, 12h)"))?;
        }
        if let Ok(v) = std::env::var("TRACTOR_CACHE_MAX_SIZE") {
            p.max_size = crate::sandbox::parse_size(&v)
                .ok_or_else(|| format!("TRACTOR_CACHE_MAX_SIZE: `{v}` is not a size (use e.g. 4GiB, 500MiB)"))?;
        }
        Ok(p)
    }
}

/// One precompiled component in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its file.
    pub path: PathBuf,
    /// The component's name.
    pub component: String,
    /// Bytes on disk.
    pub size: u64,
    /// When it was last used.
    pub last_used: SystemTime,
}

/// The entries of the cache at `dir`, most recently used first.
pub fn entries(dir: &Path) -> std::io::Result<Vec<Entry>> {
    let mut out = Vec::new();
    let list = match std::fs::read_dir(dir) {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for e in list.flatten() {
        let file = e.file_name().to_string_lossy().into_owned();
        let Some(component) = component_of(&file) else { continue };
        let Ok(meta) = e.metadata() else { continue };
        out.push(Entry {
            path: e.path(),
            component,
            size: meta.len(),
            last_used: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        });
    }
    out.sort_by_key(|e| std::cmp::Reverse(e.last_used));
    Ok(out)
}

/// `name-<32 hex>-<16 hex>.cwasm` → `name`.
fn component_of(file: &str) -> Option<String> {
    let stem = file.strip_suffix(".cwasm")?;
    let (rest, engine) = stem.rsplit_once('-')?;
    let (name, hash) = rest.rsplit_once('-')?;
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex(engine, 16) && hex(hash, 32) && !name.is_empty()).then(|| name.to_string())
}

/// What a sweep removed.
#[derive(Debug, Default)]
pub struct Swept {
    /// The entries removed.
    pub removed: Vec<Entry>,
    /// Entries left.
    pub kept: usize,
    /// Bytes left.
    pub kept_bytes: u64,
}

impl Swept {
    /// Bytes freed.
    pub fn freed(&self) -> u64 {
        self.removed.iter().map(|e| e.size).sum()
    }
}

/// Evict from the cache at `dir` by `policy`, as of `now`, keeping `keep`.
pub fn gc(dir: &Path, policy: &Policy, keep: &[PathBuf], now: SystemTime) -> std::io::Result<Swept> {
    remove_stale_tmp(dir, now);
    let mut swept = Swept::default();
    let mut left = Vec::new();
    for e in entries(dir)? {
        let age = now.duration_since(e.last_used).unwrap_or_default();
        if age > policy.max_age && !keep.contains(&e.path) {
            remove(e, &mut swept);
        } else {
            left.push(e);
        }
    }
    let mut size: u64 = left.iter().map(|e| e.size).sum();
    // Least recently used first.
    while size > policy.max_size {
        let Some(i) = left.iter().rposition(|e| !keep.contains(&e.path)) else { break };
        let e = left.remove(i);
        size -= e.size;
        remove(e, &mut swept);
    }
    swept.kept = left.len();
    swept.kept_bytes = size;
    Ok(swept)
}

/// Remove every entry (and temporary file) of the cache at `dir`.
pub fn clear(dir: &Path) -> std::io::Result<Swept> {
    remove_stale_tmp(dir, SystemTime::now() + STALE_TMP + STALE_TMP);
    let mut swept = Swept::default();
    for e in entries(dir)? {
        remove(e, &mut swept);
    }
    Ok(swept)
}

fn remove(e: Entry, swept: &mut Swept) {
    // An actor that has the entry mapped keeps its pages; one about to map
    // it would fail, which is why entries in use are kept.
    if std::fs::remove_file(&e.path).is_ok() {
        swept.removed.push(e);
    }
}

fn remove_stale_tmp(dir: &Path, now: SystemTime) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| now.duration_since(t).unwrap_or_default() > STALE_TMP);
        if name.starts_with('.') && name.ends_with(".tmp") && old {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86400);

    /// A cache folder with entries of `sizes`, the i-th last used i days ago.
    fn cache(sizes: &[usize]) -> (PathBuf, Vec<PathBuf>, SystemTime) {
        let dir = std::env::temp_dir().join(format!("tractor-evict-{}", crate::spawn::new_uid()));
        std::fs::create_dir_all(&dir).unwrap();
        let now = SystemTime::now();
        let paths = sizes
            .iter()
            .enumerate()
            .map(|(i, size)| {
                let p = dir.join(format!("comp-{i}-{:032x}-{:016x}.cwasm", i, 7));
                std::fs::write(&p, vec![0u8; *size]).unwrap();
                std::fs::File::open(&p).unwrap().set_modified(now - DAY * i as u32).unwrap();
                p
            })
            .collect();
        (dir, paths, now)
    }

    #[test]
    fn entries_parse_their_component_and_sort_by_use() {
        let (dir, paths, _) = cache(&[10, 20, 30]);
        std::fs::write(dir.join("notes.txt"), "not an entry").unwrap();
        let list = entries(&dir).unwrap();
        assert_eq!(list.iter().map(|e| e.path.clone()).collect::<Vec<_>>(), paths);
        assert_eq!(list.iter().map(|e| e.component.as_str()).collect::<Vec<_>>(), ["comp-0", "comp-1", "comp-2"]);
        assert_eq!(
            component_of("my-actor-00112233445566778899aabbccddeeff-0011223344556677.cwasm").as_deref(),
            Some("my-actor")
        );
        assert_eq!(component_of("x-short-0011223344556677.cwasm"), None);
    }

    #[test]
    fn old_entries_go_then_the_least_recently_used_over_the_cap() {
        let (dir, paths, now) = cache(&[100, 100, 100, 100, 100]);
        // 4 and 3 days old are past a 2.5-day age; then 300 bytes are over a
        // 200-byte cap, and the oldest left (2 days) goes, unless kept.
        let policy = Policy { max_age: DAY * 5 / 2, max_size: 200 };
        let swept = gc(&dir, &policy, &[paths[2].clone()], now).unwrap();
        let gone: Vec<_> = swept.removed.iter().map(|e| e.path.clone()).collect();
        assert_eq!(gone, [paths[3].clone(), paths[4].clone(), paths[1].clone()]);
        assert_eq!((swept.kept, swept.kept_bytes, swept.freed()), (2, 200, 300));
        assert!(paths[0].exists() && paths[2].exists() && !paths[1].exists());
        // Kept entries stay even when they alone are over the cap.
        let swept = gc(&dir, &Policy { max_age: DAY * 10, max_size: 0 }, &paths[..3], now).unwrap();
        assert!(swept.removed.is_empty());
    }

    #[test]
    fn clear_empties_it_and_stale_temporary_files_go() {
        let (dir, _, now) = cache(&[1, 2]);
        let tmp = dir.join(".comp.cwasm.123.tmp");
        std::fs::write(&tmp, "half").unwrap();
        std::fs::File::open(&tmp).unwrap().set_modified(now - STALE_TMP * 2).unwrap();
        gc(&dir, &Policy::default(), &[], now).unwrap();
        assert!(!tmp.exists());
        let swept = clear(&dir).unwrap();
        assert_eq!((swept.removed.len(), swept.freed()), (2, 3));
        assert!(entries(&dir).unwrap().is_empty());
    }
}
