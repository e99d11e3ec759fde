//! Build progress for people: on a terminal a spinner per step (component,
//! what it does, time so far) that ends in one line saying how long it
//! took; otherwise plain lines, one when a step starts and one when it ends.

use std::io::IsTerminal as _;
use std::sync::Mutex;
use std::time::Duration;
use tractor_host::{Progress, Step};

/// How `tractor-host run` and `build` show what they prepare.
pub struct Shown {
    terminal: bool,
    bar: Mutex<Option<indicatif::ProgressBar>>,
}

impl Shown {
    /// Spinners if stderr is a terminal, plain lines if not.
    pub fn new() -> Shown {
        Shown { terminal: std::io::stderr().is_terminal(), bar: Mutex::new(None) }
    }
}

impl Progress for Shown {
    fn start(&self, component: &str, step: Step<'_>) {
        if !self.terminal {
            eprintln!("tractor: `{component}`: {step}");
            return;
        }
        let bar = indicatif::ProgressBar::new_spinner();
        if let Ok(style) = indicatif::ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
            bar.set_style(style);
        }
        bar.set_message(format!("{component}: {step}"));
        bar.enable_steady_tick(Duration::from_millis(120));
        *self.bar.lock().unwrap() = Some(bar);
    }

    fn finish(&self, component: &str, step: Step<'_>, elapsed: Duration, ok: bool) {
        let verb = match (step, ok) {
            (_, false) => "failed",
            (Step::InstallTarget(_), true) => "installed",
            (Step::Build(_), true) => "built",
            (Step::Precompile, true) => "precompiled",
        };
        let line = format!("{component}: {verb} in {:.1}s", elapsed.as_secs_f64());
        match self.bar.lock().unwrap().take() {
            Some(bar) => {
                if let Ok(style) = indicatif::ProgressStyle::with_template("{msg}") {
                    bar.set_style(style);
                }
                bar.finish_with_message(format!("{} {line}", if ok { "✓" } else { "✗" }));
            }
            None => eprintln!("tractor: `{component}`: {verb} in {:.1}s", elapsed.as_secs_f64()),
        }
    }
}
