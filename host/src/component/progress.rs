//! What preparing components reports while it works (builds, rustup,
//! precompilation): the CLI draws its progress display from it.

use std::time::{Duration, Instant};

/// One step of preparing a component, for [`Progress`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step<'a> {
    /// Adding a missing Rust target with rustup.
    InstallTarget(&'a str),
    /// Running a component's build command.
    Build(&'a str),
    /// Compiling a component into the cache (no `.cwasm` for its content yet).
    Precompile,
}

/// What preparing a tree reports while it works: the CLI draws progress
/// from it. Every step starts with [`Progress::start`] and ends with
/// [`Progress::finish`].
pub trait Progress: Sync {
    /// `step` of `component` starts.
    fn start(&self, component: &str, step: Step<'_>);
    /// It ended after `elapsed`, well or not.
    fn finish(&self, component: &str, step: Step<'_>, elapsed: Duration, ok: bool);
}

/// Progress reported through `tracing` only (what [`Tree::prepare`] uses).
pub struct Logged;

impl Progress for Logged {
    fn start(&self, component: &str, step: Step<'_>) {
        tracing::info!(target: "tractor::build", component, "{step}");
    }

    fn finish(&self, component: &str, step: Step<'_>, elapsed: Duration, ok: bool) {
        tracing::info!(target: "tractor::build", component, ok, "{step} took {elapsed:.1?}");
    }
}

impl std::fmt::Display for Step<'_> {
    /// A step in words: `building: cargo build ...`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::InstallTarget(t) => write!(f, "installing the `{t}` Rust target (rustup target add {t})"),
            Step::Build(command) => write!(f, "building: {command}"),
            Step::Precompile => f.write_str("precompiling"),
        }
    }
}

/// Run `step` of `component` under `progress`.
pub(crate) fn timed<T, E>(
    progress: &dyn Progress,
    component: &str,
    step: Step<'_>,
    f: impl FnOnce() -> Result<T, E>,
) -> Result<T, E> {
    progress.start(component, step);
    let t = Instant::now();
    let r = f();
    progress.finish(component, step, t.elapsed(), r.is_ok());
    r
}
