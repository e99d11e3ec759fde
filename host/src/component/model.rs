//! The two execution models, decided from the component itself.
//!
//! A **sync** component (WASI p2, `tractor:actor@0.1.0`) serves one plain
//! call at a time on its main instance and each context in an instance of
//! its own. An **async** component (any export lifted `async`, or importing
//! `tractor:actor@0.2.0`) is instantiated once per actor: every call and
//! every context is a concurrent task on that one instance, sharing its
//! memory. Each model has an engine of its own, because the component-model
//! async bookkeeping makes every sync export call several times dearer.

use serde::{Deserialize, Serialize};

/// How an actor runs its component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Model {
    /// One call at a time on the main instance, one instance per context.
    #[default]
    Sync,
    /// One instance; every call and context a concurrent task on it.
    Async,
}

impl Model {
    /// Lower-case name, as `tractor-host check` prints it.
    pub fn name(self) -> &'static str {
        match self {
            Model::Sync => "sync",
            Model::Async => "async",
        }
    }
}

impl std::fmt::Display for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The model of the component `bytes`: async if any function is lifted
/// with the `async` option or it imports `tractor:actor@0.2.x`. Reads the
/// sections only (no compilation); bytes that do not parse are `Sync`, and
/// compiling them reports what is wrong.
pub fn model_of(bytes: &[u8]) -> Model {
    use wasmparser::{CanonicalFunction, CanonicalOption, Payload};
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        let Ok(payload) = payload else { return Model::Sync };
        match payload {
            Payload::ComponentCanonicalSection(section) => {
                for f in section.into_iter().flatten() {
                    if let CanonicalFunction::Lift { options, .. } = f {
                        if options.iter().any(|o| matches!(o, CanonicalOption::Async)) {
                            return Model::Async;
                        }
                    }
                }
            }
            Payload::ComponentImportSection(section) => {
                for import in section.into_iter().flatten() {
                    if is_async_api(import.name.name) {
                        return Model::Async;
                    }
                }
            }
            _ => {}
        }
    }
    Model::Sync
}

/// `tractor:actor/<iface>@0.2.x`: the async API.
fn is_async_api(name: &str) -> bool {
    name.strip_prefix("tractor:actor/").and_then(|r| r.split_once('@')).is_some_and(|(_, v)| v.starts_with("0.2."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_async_api_is_recognised_by_version() {
        assert!(is_async_api("tractor:actor/runtime@0.2.0"));
        assert!(!is_async_api("tractor:actor/runtime@0.1.0"));
        assert!(!is_async_api("wasi:io/poll@0.2.12"));
    }

    #[test]
    fn async_lifts_make_a_component_async() {
        let sync = wat::parse_str(
            r#"(component
                (core module $m (func (export "f") (result i32) i32.const 1))
                (core instance $i (instantiate $m))
                (func (export "f") (result u32) (canon lift (core func $i "f"))))"#,
        )
        .unwrap();
        assert_eq!(model_of(&sync), Model::Sync);
        let asynch = wat::parse_str(
            r#"(component
                (core module $m
                    (func (export "f") (result i32) i32.const 0)
                    (func (export "cb") (param i32 i32 i32) (result i32) i32.const 0))
                (core instance $i (instantiate $m))
                (func (export "f") (result u32)
                    (canon lift (core func $i "f") async (callback (core func $i "cb")))))"#,
        )
        .unwrap();
        assert_eq!(model_of(&asynch), Model::Async);
        assert_eq!(model_of(b"not wasm"), Model::Sync);
    }
}
