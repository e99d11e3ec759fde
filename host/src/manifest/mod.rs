//! The tree manifest, `tractor.toml`: which components exist, how to build
//! them, and what the root actor runs.
//!
//! ```toml
//! [root]
//! component = "single_func"   # which component the root actor runs
//! func = "main"               # export to call (default "main")
//!
//! [component.single_func]
//! source = "../../guests/target/wasm32-wasip2/release/single_func.wasm"
//!
//! [component.single_func.build]
//! command = "cargo build --release --target wasm32-wasip2 -p single-func"
//! workdir = "."               # default: the manifest's folder
//! watch = ["src", "Cargo.toml"]
//! ```
//!
//! Parsing is strict: unknown keys, wrong types and bad values are errors
//! that name the file, the key path and (where known) the line and column.

use crate::spawn::valid_name;

mod hosts;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// File name looked up when `tractor-host run` is given a folder.
pub const MANIFEST_FILE: &str = "tractor.toml";

/// How long a cancelled actor may take to exit before it is killed, unless
/// `[tree] cancel-grace` says otherwise.
pub const DEFAULT_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// A manifest that failed to load or validate.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct ManifestError {
    /// The manifest file.
    pub file: PathBuf,
    /// What is wrong, starting with the key path.
    pub message: String,
}

/// A parsed, validated manifest with paths made absolute.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// Absolute path of the manifest file.
    pub file: PathBuf,
    /// Folder holding the manifest; relative paths are resolved against it.
    pub dir: PathBuf,
    /// What the root actor runs.
    pub root: RootSpec,
    /// Components by manifest name.
    pub components: BTreeMap<String, ComponentSpec>,
    /// How long a cancelled actor may take to exit before it is killed
    /// (`[tree] cancel-grace`, default 2 s).
    pub cancel_grace: std::time::Duration,
    /// Deepest an actor may be, root = 0 (`[tree] max-depth`).
    pub max_depth: Option<u32>,
    /// How actors are started unless chosen otherwise (`[tree] spawn`).
    pub spawn: crate::spawn::Backend,
    /// Other machines actors can be placed on (`[hosts.<name>]`).
    pub hosts: Vec<crate::spawn::ssh::HostSpec>,
}

/// The `[root]` table.
#[derive(Debug, Clone)]
pub struct RootSpec {
    /// Actor name of the root (default `root`).
    pub name: String,
    /// Component the root runs.
    pub component: String,
    /// Export called on the root.
    pub func: String,
    /// Arguments for that export, as CBOR (array or map).
    pub args: ciborium::Value,
}

/// One `[component.<name>]` table.
#[derive(Debug, Clone)]
pub struct ComponentSpec {
    /// Manifest name.
    pub name: String,
    /// Absolute path of the `.wasm` component.
    pub source: PathBuf,
    /// How to (re)build it, if it is built from source.
    pub build: Option<BuildSpec>,
    /// What an actor running it may consume (`[component.x.limits]`).
    pub limits: crate::sandbox::Limits,
    /// What an actor running it may do (`[component.x.grants]`).
    pub grants: crate::sandbox::Grants,
    /// How actors running it are started (`[component.x] spawn`).
    pub spawn: Option<crate::spawn::Backend>,
    /// The host its actors go to (`spawn = "ssh:<host>"`).
    pub host: Option<String>,
    /// Whether its actors are registered, to be found by name
    /// (`[component.x] discoverable`, default true).
    pub discoverable: bool,
}

/// An actor name with `*` wildcards.
fn valid_pattern(p: &str) -> bool {
    !p.is_empty() && p.split('*').all(|part| part.is_empty() || valid_name(part))
}

/// One `[component.<name>.build]` table.
#[derive(Debug, Clone)]
pub struct BuildSpec {
    /// Shell command that produces `source`.
    pub command: String,
    /// Absolute folder the command runs in.
    pub workdir: PathBuf,
    /// Absolute files/folders whose change makes `source` stale; empty means
    /// always run the command (for tools like cargo that know staleness).
    pub watch: Vec<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    root: RawRoot,
    tree: Option<RawTree>,
    #[serde(default)]
    component: BTreeMap<String, RawComponent>,
    #[serde(default)]
    hosts: BTreeMap<String, hosts::RawHost>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawTree {
    cancel_grace: Option<String>,
    max_depth: Option<u32>,
    spawn: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawLimits {
    memory: Option<String>,
    cpu_per_call: Option<String>,
    children: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoot {
    name: Option<String>,
    component: String,
    func: Option<String>,
    args: Option<toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawComponent {
    source: PathBuf,
    build: Option<RawBuild>,
    limits: Option<RawLimits>,
    grants: Option<RawGrants>,
    spawn: Option<String>,
    discoverable: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGrants {
    #[serde(default)]
    dirs: Vec<RawDir>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    connect: Vec<String>,
    #[serde(default)]
    bind: Vec<String>,
    #[serde(default)]
    discover: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDir {
    host: PathBuf,
    guest: String,
    mode: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBuild {
    command: String,
    workdir: Option<PathBuf>,
    #[serde(default)]
    watch: Vec<PathBuf>,
}

/// 1-based line and column of byte offset `at` in `text`.
fn line_col(text: &str, at: usize) -> (usize, usize) {
    let before = &text[..at.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

impl Manifest {
    /// Load `path`: a manifest file, or a folder containing `tractor.toml`.
    pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
        let file = if path.is_dir() { path.join(MANIFEST_FILE) } else { path.to_path_buf() };
        let err = |message: String| ManifestError { file: file.clone(), message };
        let text = std::fs::read_to_string(&file).map_err(|e| err(format!("cannot read manifest: {e}")))?;
        let file = std::fs::canonicalize(&file).map_err(|e| err(e.to_string()))?;
        Self::parse(&text, &file)
    }

    /// Parse manifest `text` that lives at `file` (used to resolve paths).
    pub fn parse(text: &str, file: &Path) -> Result<Manifest, ManifestError> {
        let err = |message: String| ManifestError { file: file.to_path_buf(), message };
        let de = toml::Deserializer::parse(text).map_err(|e| {
            let at = e.span().map(|s| {
                let (l, c) = line_col(text, s.start);
                format!(" at line {l}, column {c}")
            });
            err(format!("syntax error{}: {}", at.unwrap_or_default(), e.message().trim()))
        })?;
        let raw: RawManifest = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let at = inner.span().map(|s| {
                let (l, c) = line_col(text, s.start);
                format!(" (line {l}, column {c})")
            });
            let key = if path == "." { "manifest".to_string() } else { format!("`{path}`") };
            err(format!("{key}: {}{}", inner.message().trim(), at.unwrap_or_default()))
        })?;
        let dir = file.parent().unwrap_or(Path::new(".")).to_path_buf();
        let abs = |p: &Path| {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                dir.join(p)
            }
        };

        let hosts = hosts::parse(raw.hosts, &abs).map_err(err)?;
        let mut components = BTreeMap::new();
        for (name, c) in raw.component {
            let key = format!("component.{name}");
            if !valid_name(&name) {
                return Err(err(format!("`{key}`: invalid component name (use letters, digits, '-', '_', '.')")));
            }
            let build = match c.build {
                None => None,
                Some(b) => {
                    if b.command.trim().is_empty() {
                        return Err(err(format!("`{key}.build.command`: must not be empty")));
                    }
                    let workdir = abs(b.workdir.as_deref().unwrap_or(Path::new(".")));
                    if !workdir.is_dir() {
                        return Err(err(format!("`{key}.build.workdir`: folder not found: {}", workdir.display())));
                    }
                    let watch = b.watch.iter().map(|w| workdir.join(w)).collect();
                    Some(BuildSpec { command: b.command, workdir, watch })
                }
            };
            let source = abs(&c.source);
            // A component built from source may legitimately be missing
            // until its first build; anything else must exist now.
            if build.is_none() && !source.is_file() {
                return Err(err(format!("`{key}.source`: file not found: {}", source.display())));
            }
            let limits = match c.limits {
                None => crate::sandbox::Limits::default(),
                Some(l) => crate::sandbox::Limits {
                    memory_bytes: match l.memory {
                        None => None,
                        Some(t) => Some(crate::sandbox::parse_size(&t).ok_or_else(|| {
                            err(format!("`{key}.limits.memory`: invalid size `{t}` (use e.g. 64MiB, 512KiB, 1GiB)"))
                        })?),
                    },
                    cpu_ms_per_call: match l.cpu_per_call {
                        None => None,
                        Some(t) => Some(parse_duration(&t).map(|d| d.as_millis() as u64).ok_or_else(|| {
                            err(format!("`{key}.limits.cpu-per-call`: invalid duration `{t}` (use e.g. 500ms, 2s)"))
                        })?),
                    },
                    max_children: l.children,
                },
            };
            let grants = match c.grants {
                None => crate::sandbox::Grants::default(),
                Some(g) => {
                    let mut dirs = Vec::new();
                    for (i, d) in g.dirs.into_iter().enumerate() {
                        let at = format!("`{key}.grants.dirs[{i}]");
                        let host = std::fs::canonicalize(abs(&d.host))
                            .map_err(|e| err(format!("{at}.host`: {}: {e}", abs(&d.host).display())))?;
                        if !host.is_dir() {
                            return Err(err(format!("{at}.host`: not a folder: {}", host.display())));
                        }
                        let writable = match d.mode.as_deref() {
                            None | Some("ro") => false,
                            Some("rw") => true,
                            Some(m) => return Err(err(format!("{at}.mode`: `{m}` is not `ro` or `rw`"))),
                        };
                        dirs.push(crate::sandbox::DirGrant::new(host, d.guest, writable));
                    }
                    let rules = |list: Vec<String>, what: &str| {
                        crate::sandbox::AddrRule::parse_list(&list).map_err(|(i, t)| {
                            err(format!(
                                "`{key}.grants.{what}[{i}]`: `{t}` is not an address or network (use e.g. 127.0.0.1:8080, 10.0.0.0/8, [::1]:80)"
                            ))
                        })
                    };
                    crate::sandbox::Grants {
                        dirs,
                        env: g.env,
                        args: g.args,
                        connect: rules(g.connect, "connect")?,
                        bind: rules(g.bind, "bind")?,
                        discover: match g.discover.iter().position(|d| !valid_pattern(d)) {
                            Some(i) => {
                                return Err(err(format!(
                                    "`{key}.grants.discover[{i}]`: `{}` is not an actor name pattern (letters, digits, '-', '_', '.', and '*' for any run of them)",
                                    g.discover[i]
                                )))
                            }
                            None => g.discover,
                        },
                    }
                }
            };
            let (spawn, host) = match c.spawn {
                None => (None, None),
                Some(h) if h.starts_with("ssh:") => {
                    let h = &h[4..];
                    if !hosts.iter().any(|s| s.name == h) {
                        let known: Vec<&str> = hosts.iter().map(|s| s.name.as_str()).collect();
                        return Err(err(format!(
                            "`{key}.spawn`: no host `{h}` in [hosts] (known: {})",
                            if known.is_empty() { "none".to_string() } else { known.join(", ") }
                        )));
                    }
                    (None, Some(h.to_string()))
                }
                Some(b) => (Some(b.parse().map_err(|e| err(format!("`{key}.spawn`: {e} or ssh:<host>")))?), None),
            };
            let discoverable = c.discoverable.unwrap_or(true);
            let spec = ComponentSpec { name: name.clone(), source, build, limits, grants, spawn, host, discoverable };
            components.insert(name, spec);
        }

        let root_name = raw.root.name.unwrap_or_else(|| "root".to_string());
        if !valid_name(&root_name) {
            return Err(err("`root.name`: invalid actor name".to_string()));
        }
        if !components.contains_key(&raw.root.component) {
            let known: Vec<_> = components.keys().map(String::as_str).collect();
            return Err(err(format!(
                "`root.component`: no component named `{}` (known: {})",
                raw.root.component,
                if known.is_empty() { "none".to_string() } else { known.join(", ") }
            )));
        }
        let func = raw.root.func.unwrap_or_else(|| "main".to_string());
        if func.is_empty() {
            return Err(err("`root.func`: must not be empty".to_string()));
        }
        let args = match raw.root.args {
            None => ciborium::Value::Array(vec![]),
            Some(v @ (toml::Value::Array(_) | toml::Value::Table(_))) => toml_to_cbor(&v),
            Some(_) => return Err(err("`root.args`: must be an array (positional) or a table (by name)".to_string())),
        };
        let max_depth = raw.tree.as_ref().and_then(|t| t.max_depth);
        let spawn = match raw.tree.as_ref().and_then(|t| t.spawn.as_deref()) {
            None => crate::spawn::Backend::default(),
            Some(b) => b.parse().map_err(|e| err(format!("`tree.spawn`: {e}")))?,
        };
        let cancel_grace = match raw.tree.and_then(|t| t.cancel_grace) {
            None => DEFAULT_GRACE,
            Some(text) => parse_duration(&text).ok_or_else(|| {
                err(format!("`tree.cancel-grace`: invalid duration `{text}` (use e.g. 500ms, 2s, 1m)"))
            })?,
        };
        Ok(Manifest {
            cancel_grace,
            max_depth,
            spawn,
            file: file.to_path_buf(),
            dir,
            root: RootSpec { name: root_name, component: raw.root.component, func, args },
            components,
            hosts,
        })
    }
}

/// Read a hosts file: `[hosts.<name>]` tables only, as in a manifest,
/// paths relative to the file (`tractor-host run --hosts FILE`).
pub fn load_hosts(path: &Path) -> Result<Vec<crate::spawn::ssh::HostSpec>, ManifestError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct RawHosts {
        hosts: BTreeMap<String, hosts::RawHost>,
    }
    let err = |message: String| ManifestError { file: path.to_path_buf(), message };
    let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read hosts file: {e}")))?;
    let raw: RawHosts = serde_path_to_error::deserialize(
        toml::Deserializer::parse(&text).map_err(|e| err(e.to_string()))?,
    )
    .map_err(|e| {
        let at = e.path().to_string();
        err(format!("`{at}`: {}", e.into_inner().message().trim()))
    })?;
    let dir = std::fs::canonicalize(path).ok().and_then(|p| p.parent().map(Path::to_path_buf)).unwrap_or_default();
    let abs = |p: &Path| if p.is_absolute() { p.to_path_buf() } else { dir.join(p) };
    hosts::parse(raw.hosts, &abs).map_err(err)
}

/// Parse `500ms`, `2s`, `1.5s` or `1m`.
pub fn parse_duration(text: &str) -> Option<std::time::Duration> {
    let text = text.trim();
    let (num, unit) = text.split_at(text.find(|c: char| c.is_ascii_alphabetic())?);
    let n: f64 = num.trim().parse().ok().filter(|n: &f64| n.is_finite() && *n >= 0.0)?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        _ => return None,
    };
    std::time::Duration::try_from_secs_f64(secs).ok()
}

/// Convert a TOML value to CBOR (datetimes become text).
pub fn toml_to_cbor(v: &toml::Value) -> ciborium::Value {
    use ciborium::Value as C;
    match v {
        toml::Value::String(s) => C::Text(s.clone()),
        toml::Value::Integer(i) => C::Integer((*i).into()),
        toml::Value::Float(f) => C::Float(*f),
        toml::Value::Boolean(b) => C::Bool(*b),
        toml::Value::Datetime(d) => C::Text(d.to_string()),
        toml::Value::Array(a) => C::Array(a.iter().map(toml_to_cbor).collect()),
        toml::Value::Table(t) => C::Map(t.iter().map(|(k, v)| (C::Text(k.clone()), toml_to_cbor(v))).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Manifest, ManifestError> {
        let dir = std::env::temp_dir();
        Manifest::parse(text, &dir.join("tractor.toml"))
    }

    const OK: &str = r#"
[root]
component = "a"
[component.a]
source = "a.wasm"
[component.a.build]
command = "true"
"#;

    #[test]
    fn minimal_manifest_with_defaults() {
        let m = parse(OK).unwrap();
        assert_eq!(m.root.name, "root");
        assert_eq!(m.root.func, "main");
        assert_eq!(m.root.args, ciborium::Value::Array(vec![]));
        let a = &m.components["a"];
        assert!(a.source.is_absolute());
        assert_eq!(a.build.as_ref().unwrap().workdir, std::env::temp_dir().join("."));
    }

    #[test]
    fn unknown_key_names_its_path_and_line() {
        let e = parse(&OK.replace("command = \"true\"", "command = \"true\"\ncomand = 1")).unwrap_err();
        let m = e.to_string();
        assert!(m.contains("component.a.build"), "{m}");
        assert!(m.contains("comand"), "{m}");
        assert!(m.contains("line 8"), "{m}");
    }

    #[test]
    fn syntax_error_has_line_and_column() {
        let e = parse("[root\ncomponent = 1").unwrap_err().to_string();
        assert!(e.contains("syntax error at line 1, column"), "{e}");
    }

    #[test]
    fn wrong_type_names_key() {
        let e = parse(&OK.replace("component = \"a\"", "component = 3")).unwrap_err().to_string();
        assert!(e.contains("`root.component`"), "{e}");
    }

    #[test]
    fn missing_source_without_build_is_an_error() {
        let text = "[root]\ncomponent = \"a\"\n[component.a]\nsource = \"nope.wasm\"\n";
        let e = parse(text).unwrap_err().to_string();
        assert!(e.contains("`component.a.source`: file not found"), "{e}");
    }

    #[test]
    fn unknown_root_component_lists_known_ones() {
        let e = parse(&OK.replace("component = \"a\"", "component = \"b\"")).unwrap_err().to_string();
        assert!(e.contains("no component named `b` (known: a)"), "{e}");
    }

    #[test]
    fn cancel_grace_is_a_duration() {
        assert_eq!(parse(OK).unwrap().cancel_grace, std::time::Duration::from_secs(2));
        let m = parse(&format!("[tree]\ncancel-grace = \"250ms\"\n{OK}")).unwrap();
        assert_eq!(m.cancel_grace, std::time::Duration::from_millis(250));
        let e = parse(&format!("[tree]\ncancel-grace = \"soon\"\n{OK}")).unwrap_err().to_string();
        assert!(e.contains("`tree.cancel-grace`: invalid duration `soon`"), "{e}");
        assert_eq!(parse_duration("1.5s"), Some(std::time::Duration::from_millis(1500)));
        assert_eq!(parse_duration("2h"), Some(std::time::Duration::from_secs(7200)));
        assert_eq!(parse_duration("30d"), Some(std::time::Duration::from_secs(30 * 86400)));
        assert_eq!(parse_duration("2w"), None);
        assert_eq!(parse_duration("-1s"), None);
    }

    #[test]
    fn limits_parse_and_bad_values_name_their_key() {
        let text = OK.replace(
            "command = \"true\"",
            "command = \"true\"\n[component.a.limits]\nmemory = \"64MiB\"\ncpu-per-call = \"2s\"\nchildren = 3",
        );
        let m = parse(&format!("[tree]\nmax-depth = 4\n{text}")).unwrap();
        let l = &m.components["a"].limits;
        assert_eq!((l.memory_bytes, l.cpu_ms_per_call, l.max_children), (Some(64 << 20), Some(2000), Some(3)));
        assert_eq!(m.max_depth, Some(4));
        let e = parse(&text.replace("64MiB", "lots")).unwrap_err().to_string();
        assert!(e.contains("`component.a.limits.memory`: invalid size `lots`"), "{e}");
        let e = parse(&text.replace("\"2s\"", "\"soon\"")).unwrap_err().to_string();
        assert!(e.contains("`component.a.limits.cpu-per-call`: invalid duration"), "{e}");
        let e = parse(&text.replace("children = 3", "children = -1")).unwrap_err().to_string();
        assert!(e.contains("component.a.limits.children"), "{e}");
    }

    #[test]
    fn spawn_backends_parse_and_bad_ones_name_their_key() {
        let m = parse(&format!("{OK}\n[tree]\nspawn = \"forkserver\"\n")).unwrap();
        assert_eq!(m.spawn, crate::spawn::Backend::Forkserver);
        let text = OK.replace("[component.a]", "[component.a]\nspawn = \"thread\"");
        assert_eq!(parse(&text).unwrap().components["a"].spawn, Some(crate::spawn::Backend::Thread));
        let e = parse(&OK.replace("[component.a]", "[component.a]\nspawn = \"vfork\"")).unwrap_err();
        assert!(e.to_string().contains("`component.a.spawn`: unknown spawn backend `vfork`"), "{e}");
    }

    #[test]
    fn args_become_cbor() {
        let m = parse(&OK.replace("component = \"a\"", "component = \"a\"\nargs = [1, \"x\"]")).unwrap();
        assert_eq!(m.root.args, ciborium::Value::Array(vec![1.into(), "x".into()]));
        let e = parse(&OK.replace("component = \"a\"", "component = \"a\"\nargs = 5")).unwrap_err();
        assert!(e.to_string().contains("`root.args`"), "{e}");
    }

    #[test]
    fn bad_names_and_empty_commands_are_rejected() {
        let e = parse(&OK.replace("command = \"true\"", "command = \" \"")).unwrap_err().to_string();
        assert!(e.contains("`component.a.build.command`: must not be empty"), "{e}");
        let bad = OK.replace("[component.a", "[component.\"a b\"").replace("component = \"a\"", "component = \"a b\"");
        let e = parse(&bad).unwrap_err().to_string();
        assert!(e.contains("invalid component name"), "{e}");
    }
}
