//! Building guest components from source, as the manifest says.

use super::progress::{timed, Progress, Step};
use crate::manifest::{BuildSpec, ComponentSpec};
use anyhow::{bail, Context as _, Result};
use std::path::Path;
use std::process::Command;
use std::time::SystemTime;

/// Lines of a failed build's output quoted in its error.
const OUTPUT_TAIL: usize = 40;

/// Build `spec` if it has a build command and is missing or stale,
/// reporting to `progress`. Returns whether the command ran.
pub fn build_if_needed(spec: &ComponentSpec, progress: &dyn Progress) -> Result<bool> {
    let Some(build) = &spec.build else {
        return Ok(false);
    };
    if !is_stale(&spec.source, build) {
        return Ok(false);
    }
    if build.command.contains("wasm32-wasip2") {
        ensure_rust_target(&spec.name, "wasm32-wasip2", progress)?;
    }
    timed(progress, &spec.name, Step::Build(&build.command), || run(spec, build))?;
    Ok(true)
}

/// Run the build command, its output captured: a progress display stays
/// whole, and a failure quotes what the build said.
fn run(spec: &ComponentSpec, build: &BuildSpec) -> Result<()> {
    let out = Command::new("sh")
        .arg("-c")
        .arg(&build.command)
        .current_dir(&build.workdir)
        // `source` says where the artifact lands; a CARGO_TARGET_DIR meant
        // for the host build must not move a Rust guest's output elsewhere.
        .env_remove("CARGO_TARGET_DIR")
        .stdin(std::process::Stdio::null())
        .output()
        .with_context(|| format!("component `{}`: cannot run build command", spec.name))?;
    if !out.status.success() {
        let text = [String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)].concat();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(OUTPUT_TAIL)..].join("\n");
        bail!("component `{}`: build command `{}` failed ({}):\n{tail}", spec.name, build.command, out.status);
    }
    if !spec.source.is_file() {
        bail!(
            "component `{}`: build command succeeded but {} does not exist (check `source`)",
            spec.name,
            spec.source.display()
        );
    }
    Ok(())
}

/// A component is stale when it is missing, when it has no watch list (the
/// build tool decides), or when a watched file is newer than it.
fn is_stale(source: &Path, build: &BuildSpec) -> bool {
    let Ok(built) = source.metadata().and_then(|m| m.modified()) else {
        return true;
    };
    if build.watch.is_empty() {
        return true;
    }
    build.watch.iter().any(|w| newest_mtime(w).is_some_and(|t| t > built))
}

/// Newest modification time of a file, or of anything under a folder.
fn newest_mtime(path: &Path) -> Option<SystemTime> {
    let meta = path.metadata().ok()?;
    let mut newest = meta.modified().ok()?;
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).ok()?.flatten() {
            if let Some(t) = newest_mtime(&entry.path()) {
                newest = newest.max(t);
            }
        }
    }
    Some(newest)
}

/// Install a rustup target if it is missing, saying so (as cargo-component
/// does).
fn ensure_rust_target(component: &str, target: &str, progress: &dyn Progress) -> Result<()> {
    let Ok(out) = Command::new("rustup").args(["target", "list", "--installed"]).output() else {
        return Ok(()); // no rustup: let the build command report what it needs
    };
    if String::from_utf8_lossy(&out.stdout).lines().any(|l| l.trim() == target) {
        return Ok(());
    }
    timed(progress, component, Step::InstallTarget(target), || {
        let out = Command::new("rustup").args(["target", "add", target]).output().context("cannot run rustup")?;
        if !out.status.success() {
            bail!("`rustup target add {target}` failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    })
}
