//! `tractor-host cache {ls,gc,clear}`: what the component cache holds, and
//! keeping it in bounds by hand (every `run` and `build` also sweeps it).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};
use tractor_host::cache::{self, Policy};
use tractor_host::Manifest;

/// What to do with the cache.
#[derive(clap::Subcommand)]
pub enum CacheCommand {
    /// List every precompiled component: name, size, when last used.
    Ls,
    /// Drop entries unused for longer than --max-age, then the least
    /// recently used over --max-size; never those of the MANIFESTs named.
    Gc {
        /// Maximum age of an unused entry (default: $TRACTOR_CACHE_MAX_AGE, else 30d).
        #[arg(long, value_name = "DURATION")]
        max_age: Option<String>,
        /// Size cap of the cache (default: $TRACTOR_CACHE_MAX_SIZE, else 4GiB).
        #[arg(long, value_name = "SIZE")]
        max_size: Option<String>,
        /// Manifests (or folders holding one) whose components are kept.
        manifests: Vec<PathBuf>,
    },
    /// Remove every entry.
    Clear,
}

/// Run `command` on the cache folder.
pub fn run(command: CacheCommand) -> ExitCode {
    let dir = cache::default_dir();
    let r = match command {
        CacheCommand::Ls => ls(&dir),
        CacheCommand::Gc { max_age, max_size, manifests } => gc(&dir, max_age, max_size, &manifests),
        CacheCommand::Clear => cache::clear(&dir).map_err(|e| e.to_string()).map(|s| {
            say!("removed {} entries ({}) from {}", s.removed.len(), mb(s.freed()), dir.display());
        }),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tractor: error: {e}");
            ExitCode::from(2)
        }
    }
}

fn ls(dir: &std::path::Path) -> Result<(), String> {
    let list = cache::entries(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let total: u64 = list.iter().map(|e| e.size).sum();
    say!("{}: {} entries, {}", dir.display(), list.len(), mb(total));
    if !list.is_empty() {
        say!("{:<32} {:>10}  last used", "component", "size");
    }
    for e in &list {
        say!("{:<32} {:>10}  {}", e.component, mb(e.size), ago(e.last_used));
    }
    Ok(())
}

fn gc(
    dir: &std::path::Path,
    max_age: Option<String>,
    max_size: Option<String>,
    manifests: &[PathBuf],
) -> Result<(), String> {
    let mut policy = Policy::from_env()?;
    if let Some(a) = max_age {
        policy.max_age = tractor_host::parse_duration(&a)
            .ok_or_else(|| format!("--max-age: `{a}` is not a duration (use e.g. 30d, 12h)"))?;
    }
    if let Some(s) = max_size {
        policy.max_size =
            tractor_host::parse_size(&s).ok_or_else(|| format!("--max-size: `{s}` is not a size (use e.g. 4GiB)"))?;
    }
    let mut keep = Vec::new();
    for m in manifests {
        let manifest = Manifest::load(m).map_err(|e| e.to_string())?;
        keep.extend(cache::entries_of(&manifest, dir)?);
    }
    let swept = cache::gc(dir, &policy, &keep, SystemTime::now()).map_err(|e| format!("{}: {e}", dir.display()))?;
    for e in &swept.removed {
        say!("removed {} ({}, last used {})", e.component, mb(e.size), ago(e.last_used));
    }
    say!(
        "removed {} entries ({}); kept {} ({}) in {}",
        swept.removed.len(),
        mb(swept.freed()),
        swept.kept,
        mb(swept.kept_bytes),
        dir.display()
    );
    Ok(())
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

fn ago(t: SystemTime) -> String {
    let d = SystemTime::now().duration_since(t).unwrap_or(Duration::ZERO).as_secs();
    match d {
        0..60 => format!("{d} s ago"),
        60..3600 => format!("{} min ago", d / 60),
        3600..86400 => format!("{} h ago", d / 3600),
        _ => format!("{} days ago", d / 86400),
    }
}
