//! `tractor-host ps`: every running tree of this user, each actor in its
//! place in the tree, from the drivers' control sockets.

use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::time::Duration;
use tractor_host::control;
use tractor_host::wire::{ActorStatus, TreeStatus};

/// What `ps` was asked for.
#[derive(clap::Args)]
pub struct PsArgs {
    /// Print JSON (an array of trees, each with a flat `actors` list
    /// linked by `parent_uid`) instead of a table.
    #[arg(long)]
    json: bool,
    /// Refresh until interrupted (in place on a terminal).
    #[arg(long)]
    watch: bool,
    /// Time between refreshes with --watch.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_interval)]
    interval: Duration,
    /// With --watch: stop after this many refreshes.
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// Only the tree with this id (its `TRACTOR_TREE`).
    #[arg(long, value_name = "ID")]
    tree: Option<String>,
}

fn parse_interval(s: &str) -> Result<Duration, String> {
    tractor_host::parse_duration(s).ok_or_else(|| format!("`{s}` is not a duration (e.g. 500ms, 2s)"))
}

/// Run `tractor-host ps`.
pub fn run(args: PsArgs) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tractor: error: cannot start tokio: {e}");
            return ExitCode::from(70);
        }
    };
    let redraw = args.watch && !args.json && std::io::stdout().is_terminal();
    let mut shown = 0u64;
    loop {
        let (mut trees, failed) = rt.block_on(control::ps());
        if let Some(id) = &args.tree {
            trees.retain(|t| &t.tree_id == id);
        }
        let text = if args.json { serde_json::to_string_pretty(&trees).unwrap_or_default() } else { render(&trees) };
        if redraw {
            // Home and clear, then the frame: no scrolling history.
            print!("\x1b[H\x1b[2J");
        } else if shown > 0 && !args.json {
            say!();
        }
        say!("{text}");
        if !args.json && args.tree.is_none() {
            for (name, why) in &failed {
                eprintln!("tractor: control socket @{name} did not answer: {why}");
            }
        }
        shown += 1;
        if !args.watch || args.count.is_some_and(|n| shown >= n) {
            return ExitCode::SUCCESS;
        }
        std::thread::sleep(args.interval);
    }
}

/// The table `ps` prints.
pub fn render(trees: &[TreeStatus]) -> String {
    if trees.is_empty() {
        return "no running trees".into();
    }
    let mut out = Vec::new();
    for t in trees {
        let n = t.actors.len();
        out.push(format!(
            "tree {}  {}  driver pid {}  up {}  {n} actor{}",
            t.tree_id,
            t.label,
            t.driver_pid,
            duration(t.uptime_ms),
            if n == 1 { "" } else { "s" }
        ));
        // A HOST column once some actor runs elsewhere (its pid is there).
        let remote = t.actors.iter().any(|a| !a.host.is_empty());
        let mut head =
            vec!["NAME", "UID", "PID", "COMPONENT", "BACKEND", "STATE", "UP", "RSS", "CPU", "SERVED", "PEERS"];
        if remote {
            head.insert(5, "HOST");
        }
        let mut rows = vec![head.into_iter().map(String::from).collect::<Vec<_>>()];
        for (prefix, a) in in_tree_order(&t.actors) {
            let mut row = vec![
                format!("{prefix}{}", a.name),
                a.uid.clone(),
                a.pid.to_string(),
                a.component.clone(),
                a.backend.clone(),
                a.describe(),
                duration(a.uptime_ms),
                a.rss_bytes.map_or("shared".into(), size),
                cpu(a.cpu_ms),
                a.served.to_string(),
                a.peers.to_string(),
            ];
            if remote {
                row.insert(5, if a.host.is_empty() { "-".into() } else { a.host.clone() });
            }
            rows.push(row);
        }
        let widths: Vec<usize> =
            (0..rows[0].len()).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
        for r in &rows {
            let cells: Vec<String> = r.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
            out.push(format!("  {}", cells.join("  ").trim_end()));
        }
    }
    out.join("\n")
}

/// Each actor with the tree-drawing prefix of its place, children after
/// their parent in the order listed.
fn in_tree_order(actors: &[ActorStatus]) -> Vec<(String, &ActorStatus)> {
    let known: std::collections::HashSet<&str> = actors.iter().map(|a| a.uid.as_str()).collect();
    let kids = |parent: &str| -> Vec<&ActorStatus> {
        actors
            .iter()
            .filter(|a| a.parent_uid == parent || (parent.is_empty() && !known.contains(a.parent_uid.as_str())))
            .collect()
    };
    fn walk<'a>(
        a: &'a ActorStatus,
        lead: &str,
        branch: &str,
        kids: &dyn Fn(&str) -> Vec<&'a ActorStatus>,
        out: &mut Vec<(String, &'a ActorStatus)>,
    ) {
        out.push((format!("{lead}{branch}"), a));
        let mine = kids(&a.uid);
        let inner = match branch {
            "" => lead.to_string(),
            "└─ " => format!("{lead}   "),
            _ => format!("{lead}│  "),
        };
        for (i, k) in mine.iter().enumerate() {
            walk(k, &inner, if i + 1 == mine.len() { "└─ " } else { "├─ " }, kids, out);
        }
    }
    let mut out = Vec::new();
    for root in kids("") {
        walk(root, "", "", &kids, &mut out);
    }
    out
}

fn duration(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{:.1}s", ms as f64 / 1000.0),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s / 60 % 60),
    }
}

fn cpu(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else {
        format!("{:.2}s", ms as f64 / 1000.0)
    }
}

fn size(b: u64) -> String {
    format!("{:.1}M", b as f64 / (1024.0 * 1024.0))
}
