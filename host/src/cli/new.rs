//! `tractor-host new`: an actor project of one's own, anywhere on disk.
//!
//! The project is self-contained: the `tractor:actor` WIT package and the
//! language's helpers (the Rust SDK, the Python or JavaScript helper and
//! build scripts) are written into it from copies compiled into this
//! binary, so it builds without this repository, without git and at the
//! very version of the runtime that runs it. The layout mirrors the
//! repository's (`wit/` beside `tractor/<lang>/`), so the helpers find the
//! WIT where they expect it.

use std::path::{Path, PathBuf};

/// The language of a new project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    /// A Rust crate, built with cargo.
    Rust,
    /// A Python app, built with componentize-py.
    Python,
    /// A JavaScript app, built with ComponentizeJS.
    Js,
}

/// What the new project's actors do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Template {
    /// The root starts a child and prints what it says.
    Hello,
    /// A worker pool, one worker per core, work shared out and gathered.
    Pool,
    /// A daemon keeping state between calls and streaming over a context.
    Service,
}

/// The tractor WIT package (and the `wasi:io` it uses).
const WIT: &[(&str, &str)] = &[
    ("wit/tractor.wit", include_str!("../../../wit/tractor.wit")),
    ("wit/deps/io/io.wit", include_str!("../../../wit/deps/io/io.wit")),
    ("wit/v0.2/tractor.wit", include_str!("../../../wit/v0.2/tractor.wit")),
];

const RUST_SDK: &[(&str, &str)] = &[
    ("tractor/sdk/Cargo.toml", include_str!("../../templates/rust/sdk.toml")),
    ("tractor/sdk/src/lib.rs", include_str!("../../../guests/sdk/src/lib.rs")),
    ("tractor/sdk/src/aio/mod.rs", include_str!("../../../guests/sdk/src/aio/mod.rs")),
    ("tractor/sdk/src/aio/notify.rs", include_str!("../../../guests/sdk/src/aio/notify.rs")),
    ("tractor/sdk/src/codec.rs", include_str!("../../../guests/sdk/src/codec.rs")),
    ("tractor/sdk/src/context.rs", include_str!("../../../guests/sdk/src/context.rs")),
    ("tractor/sdk/src/discovery.rs", include_str!("../../../guests/sdk/src/discovery.rs")),
    ("tractor/sdk/src/error.rs", include_str!("../../../guests/sdk/src/error.rs")),
    ("tractor/sdk/src/nursery.rs", include_str!("../../../guests/sdk/src/nursery.rs")),
    ("tractor/sdk/src/portal.rs", include_str!("../../../guests/sdk/src/portal.rs")),
    ("tractor/sdk/src/rt.rs", include_str!("../../../guests/sdk/src/rt.rs")),
    ("tractor/sdk/src/scope.rs", include_str!("../../../guests/sdk/src/scope.rs")),
    // The versions the SDK is built and tested with; cargo keeps them.
    ("Cargo.lock", include_str!("../../../guests/Cargo.lock")),
];

const PYTHON_HELPERS: &[(&str, &str)] = &[
    ("tractor/python/tractor.py", include_str!("../../../guests/python/tractor.py")),
    ("tractor/python/tractor_aio.py", include_str!("../../../guests/python/tractor_aio.py")),
    ("tractor/python/build.sh", include_str!("../../../guests/python/build.sh")),
    ("tractor/python/install.sh", include_str!("../../../guests/python/install.sh")),
];

const JS_HELPERS: &[(&str, &str)] = &[
    ("tractor/js/tractor.js", include_str!("../../../guests/js/tractor.js")),
    ("tractor/js/build.mjs", include_str!("../../../guests/js/build.mjs")),
    ("tractor/js/install.sh", include_str!("../../../guests/js/install.sh")),
    ("tractor/js/package.json", include_str!("../../../guests/js/package.json")),
    ("tractor/js/package-lock.json", include_str!("../../../guests/js/package-lock.json")),
];

fn world(t: Template) -> &'static str {
    match t {
        Template::Hello => include_str!("../../templates/worlds/hello.wit"),
        Template::Pool => include_str!("../../templates/worlds/pool.wit"),
        Template::Service => include_str!("../../templates/worlds/service.wit"),
    }
}

fn source(lang: Lang, t: Template) -> &'static str {
    match (lang, t) {
        (Lang::Rust, Template::Hello) => include_str!("../../templates/rust/hello.rs"),
        (Lang::Rust, Template::Pool) => include_str!("../../templates/rust/pool.rs"),
        (Lang::Rust, Template::Service) => include_str!("../../templates/rust/service.rs"),
        (Lang::Python, Template::Hello) => include_str!("../../templates/python/hello.py"),
        (Lang::Python, Template::Pool) => include_str!("../../templates/python/pool.py"),
        (Lang::Python, Template::Service) => include_str!("../../templates/python/service.py"),
        (Lang::Js, Template::Hello) => include_str!("../../templates/js/hello.js"),
        (Lang::Js, Template::Pool) => include_str!("../../templates/js/pool.js"),
        (Lang::Js, Template::Service) => include_str!("../../templates/js/service.js"),
    }
}

/// The project's name from its folder: kebab-case, starting with a letter
/// (it names the package, the component and the WIT package).
pub fn project_name(dir: &Path) -> String {
    let base = dir.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
    let mut name = String::new();
    for c in base.chars() {
        if c.is_ascii_alphanumeric() {
            name.push(c);
        } else if !name.ends_with('-') {
            name.push('-');
        }
    }
    let name = name.trim_matches('-').to_string();
    match name.chars().next() {
        Some(c) if c.is_ascii_alphabetic() => name,
        _ => format!("actor-{name}").trim_end_matches('-').to_string(),
    }
}

/// Write a new project into `dir` (which must not exist or be empty);
/// returns what it wrote, relative to `dir`.
pub fn create(dir: &Path, lang: Lang, template: Template) -> Result<Vec<PathBuf>, String> {
    if dir.exists() && std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?.next().is_some() {
        return Err(format!("{} already exists and is not empty", dir.display()));
    }
    let name = project_name(dir);
    let fill = |text: &str| text.replace("{{name}}", &name).replace("{{pkg}}", &name);
    let world = fill(world(template));
    let mut files: Vec<(String, String)> = WIT.iter().map(|(p, t)| (p.to_string(), t.to_string())).collect();
    let (helpers, lang_name, src) = match lang {
        Lang::Rust => (RUST_SDK, "Rust", "src/lib.rs"),
        Lang::Python => (PYTHON_HELPERS, "Python", "app/app.py"),
        Lang::Js => (JS_HELPERS, "JavaScript", "app/app.js"),
    };
    files.extend(helpers.iter().map(|(p, t)| (p.to_string(), t.to_string())));
    let code = fill(source(lang, template));
    let world_file = match lang {
        Lang::Rust => {
            files.push(("Cargo.toml".into(), fill(include_str!("../../templates/rust/Cargo.toml"))));
            files.push((src.into(), code.replace("{{world}}", world.trim())));
            "the `bindings!` in src/lib.rs"
        }
        Lang::Python | Lang::Js => {
            files.push((src.into(), code));
            files.push(("app/world.wit".into(), world));
            "app/world.wit"
        }
    };
    let template_name = format!("{template:?}").to_lowercase();
    files.push(("tractor.toml".into(), manifest(&name, lang)));
    files.push((
        "README.md".into(),
        format!(
            "# {name}\nA tractor actor tree in {lang_name} (the `{template_name}` template): `tractor-host run .` builds and runs it.\nThe actor is {src}, the functions it serves are in {world_file}, the tree is tractor.toml.\n"
        ),
    ));
    files.push((
        ".gitignore".into(),
        "/target\n/build\n/tractor/python/pylib\n/tractor/js/node_modules\n__pycache__/\n".into(),
    ));
    let mut written = Vec::new();
    for (rel, text) in files {
        let path = dir.join(&rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        written.push(PathBuf::from(rel));
    }
    Ok(written)
}

/// The project's `tractor.toml`: one component, built from source.
fn manifest(name: &str, lang: Lang) -> String {
    let (source, command, watch) = match lang {
        Lang::Rust => (
            format!("target/wasm32-wasip2/release/{}.wasm", name.replace('-', "_")),
            "cargo build --quiet --release --target wasm32-wasip2".to_string(),
            // cargo decides what is stale.
            None,
        ),
        Lang::Python => (
            format!("build/{name}.wasm"),
            format!(
                "sh tractor/python/install.sh && sh tractor/python/build.sh app {name}:actor/actor build/{name}.wasm"
            ),
            Some(r#"["app", "wit", "tractor/python/tractor.py"]"#),
        ),
        Lang::Js => (
            format!("build/{name}.wasm"),
            format!("sh tractor/js/install.sh && node tractor/js/build.mjs app actor build/{name}.wasm"),
            Some(r#"["app", "wit", "tractor/js/tractor.js"]"#),
        ),
    };
    let watch = watch.map_or(String::new(), |w| format!("watch = {w}\n"));
    format!(
        "# {name}: run it with `tractor-host run .` (it builds first).\n\
         [root]\ncomponent = \"{name}\"\nfunc = \"main\"\n\n\
         [component.{name}]\nsource = \"{source}\"\n\n\
         [component.{name}.build]\ncommand = \"{command}\"\n{watch}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_folder() {
        assert_eq!(project_name(Path::new("/tmp/My App")), "my-app");
        assert_eq!(project_name(Path::new("hello_world")), "hello-world");
        assert_eq!(project_name(Path::new("42things")), "actor-42things");
        assert_eq!(project_name(Path::new("--")), "actor");
    }
}
