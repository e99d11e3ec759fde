//! `tractor-host check`: validate a manifest and its components without
//! running anything, reporting every problem with its key path.

use crate::component::cache;
use crate::manifest::Manifest;
use crate::value::args_to_vals;
use std::path::{Path, PathBuf};

/// One thing wrong with a manifest or a component it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Key path in the manifest, e.g. `component.worker.source`.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "`{}`: {}", self.key, self.message)
        }
    }
}

/// The result of checking one manifest.
#[derive(Debug)]
pub struct Report {
    /// The manifest file.
    pub file: PathBuf,
    /// Everything wrong (empty: the tree can run).
    pub problems: Vec<Problem>,
    /// Each component that loaded, with the model its actors run in.
    pub models: Vec<(String, crate::component::Model)>,
}

/// Check the manifest at `path` (a file, or a folder holding `tractor.toml`):
/// it parses and validates; every component exists, is a component, and
/// links against the host's imports; the root's entry export exists and
/// accepts the manifest's arguments. Components are compiled into the cache
/// (so a later run starts at once) but nothing is built or run.
pub fn check(path: &Path) -> Report {
    let manifest = match Manifest::load(path) {
        Ok(m) => m,
        Err(e) => {
            return Report {
                file: e.file,
                problems: vec![Problem { key: String::new(), message: e.message }],
                models: Vec::new(),
            }
        }
    };
    let mut problems = Vec::new();
    let mut models = Vec::new();
    let mut root_exports = None;
    for spec in manifest.components.values() {
        let key = format!("component.{}", spec.name);
        if !spec.source.is_file() {
            let hint = if spec.build.is_some() { " (build it with `tractor-host build`)" } else { "" };
            problems.push(Problem {
                key: format!("{key}.source"),
                message: format!("file not found: {}{hint}", spec.source.display()),
            });
            continue;
        }
        let compiled = match cache::precompile(&cache::default_dir(), &spec.name, &spec.source) {
            Ok(c) => c,
            Err(e) => {
                problems.push(Problem { key: format!("{key}.source"), message: format!("{e:#}") });
                continue;
            }
        };
        match crate::actor::link(compiled.model, &spec.name, &compiled.cwasm) {
            Ok(linked) => {
                models.push((spec.name.clone(), compiled.model));
                if spec.name == manifest.root.component {
                    root_exports = Some(linked.exports);
                }
            }
            Err((_, message)) => problems.push(Problem { key, message }),
        }
    }
    if let Some(exports) = root_exports {
        let root = &manifest.root;
        match exports.iter().find(|(name, _)| *name == root.func) {
            None => problems.push(Problem {
                key: "root.func".into(),
                message: format!(
                    "component `{}` has no export `{}` (exports: {})",
                    root.component,
                    root.func,
                    exports.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ")
                ),
            }),
            Some((_, sig)) => {
                if let Err(e) = args_to_vals(sig, &root.args) {
                    problems.push(Problem { key: "root.args".into(), message: e.to_string() });
                }
            }
        }
    }
    Report { file: manifest.file, problems, models }
}
