//! `tractor-host new`, then `tractor-host run`, in a folder outside the
//! checkout: a project of one's own builds and runs with nothing but what
//! `new` wrote, for each language (and, between them, each template).

use crate::common::{assert_all_gone, host_exe};
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn tractor_host(args: &[&str], dir: &Path, tree: &str) -> Output {
    Command::new(host_exe())
        .args(args)
        .current_dir(dir)
        .env("TRACTOR_TREE", tree)
        .stdin(Stdio::null())
        .output()
        .expect("run tractor-host")
}

/// `new --lang <lang> [--template <template>]` into a fresh temp folder,
/// then `run .` there; returns the run's stdout.
fn new_then_run(lang: &str, template: Option<&str>) -> String {
    let _shared = crate::common::shared();
    let parent = std::env::temp_dir().join(format!("tractor-new-{}", tractor_host::spawn::new_uid()));
    std::fs::create_dir_all(&parent).unwrap();
    let name = format!("my-{lang}-{}", template.unwrap_or("default"));
    let id = tractor_host::spawn::new_uid();
    let mut args = vec!["new", &name, "--lang", lang];
    if let Some(t) = template {
        args.extend(["--template", t]);
    }
    let made = tractor_host(&args, &parent, &id);
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let project = parent.join(&name);
    assert!(project.join("tractor.toml").is_file() && project.join("README.md").is_file());
    let ran = tractor_host(&["run", "."], &project, &id);
    let (out, err) = (String::from_utf8_lossy(&ran.stdout).into_owned(), String::from_utf8_lossy(&ran.stderr));
    assert!(ran.status.success(), "{lang}: exit {:?}\n{out}\n{err}", ran.status);
    assert_all_gone(&id);
    // Writing into a folder that has something in it is refused, naming it.
    let again = tractor_host(&args, &parent, &id);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists and is not empty"));
    let _ = std::fs::remove_dir_all(&parent);
    out
}

#[test]
fn a_new_rust_project_builds_and_runs_outside_the_checkout() {
    let out = new_then_run("rust", None); // the defaults: rust, hello
    assert!(out.contains("[root] hello from root (pid "), "{out}");
    assert!(out.contains("[root] hello, world, from greeter (pid "), "{out}");
}

#[test]
fn a_new_python_project_builds_and_runs_outside_the_checkout() {
    let out = new_then_run("python", Some("service"));
    assert!(out.contains("[root] counter: 1, then 42"), "{out}");
    assert!(out.contains("[root] ticks: [0, 1, 2] (3 sent)"), "{out}");
}

#[test]
fn a_new_javascript_project_builds_and_runs_outside_the_checkout() {
    let out = new_then_run("js", Some("pool"));
    assert!(out.contains("[root] 9592 primes below 100000, counted by "), "{out}");
}
