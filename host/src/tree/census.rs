//! Which actors of a tree are alive: its processes (found by the
//! `TRACTOR_TREE` in their environment) and its thread actors. What tests,
//! benchmarks and `tractor-host ps`-like tools check leftovers with.

/// Live processes of tree `id` (by the `TRACTOR_TREE` in their environment),
/// not counting zombies.
pub fn tree_processes(id: &str) -> Vec<u32> {
    let needle = format!("{}={id}\0", crate::spawn::TREE_ENV);
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(env) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        if !String::from_utf8_lossy(&env).contains(&needle) {
            continue;
        }
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // Field 3 (after "pid (comm)") is the state; Z means already dead.
        let state = stat.rsplit(')').next().and_then(|r| r.split_whitespace().next());
        if state != Some("Z") && !stat.is_empty() {
            out.push(pid);
        }
    }
    out
}

/// Live thread actors of tree `id` in this process.
pub fn thread_actors(id: &str) -> usize {
    crate::spawn::thread::live(id)
}

/// Every live actor of tree `id`: its processes (the zygote included) and
/// its thread actors in this process.
pub fn live_actors(id: &str) -> usize {
    tree_processes(id).len() + thread_actors(id)
}
