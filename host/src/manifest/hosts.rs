//! The `[hosts.<name>]` tables: other machines actors can be placed on
//! (`spawn = "ssh:<name>"`), and how ssh reaches each.

use super::parse_duration;
use crate::spawn::ssh::HostSpec;
use crate::spawn::valid_name;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawHost {
    ssh: String,
    port: Option<u16>,
    identity: Option<String>,
    ssh_config: Option<String>,
    #[serde(default)]
    ssh_options: Vec<String>,
    exe: Option<String>,
    cache_dir: Option<String>,
    sessions_per_connection: Option<u32>,
    heartbeat: Option<String>,
    dead_after: Option<String>,
    connect_timeout: Option<String>,
}

/// Check and resolve every host; `abs` makes manifest-relative paths
/// absolute. `Err` is the message, naming the key.
pub(super) fn parse(
    raw: BTreeMap<String, RawHost>,
    abs: &dyn Fn(&Path) -> std::path::PathBuf,
) -> Result<Vec<HostSpec>, String> {
    let mut out = Vec::new();
    for (name, h) in raw {
        let key = format!("hosts.{name}");
        if !valid_name(&name) {
            return Err(format!("`{key}`: invalid host name (use letters, digits, '-', '_', '.')"));
        }
        // A destination ssh could read as an option is refused.
        if h.ssh.is_empty() || h.ssh.starts_with('-') || h.ssh.chars().any(char::is_whitespace) {
            return Err(format!(
                "`{key}.ssh`: `{}` is not an ssh destination (e.g. alice@gpu1, or a Host of your ssh config)",
                h.ssh
            ));
        }
        let ms = |v: Option<String>, what: &str, default: u64| -> Result<u64, String> {
            match v {
                None => Ok(default),
                Some(t) => parse_duration(&t)
                    .map(|d| d.as_millis() as u64)
                    .filter(|ms| *ms > 0)
                    .ok_or_else(|| format!("`{key}.{what}`: invalid duration `{t}` (use e.g. 500ms, 2s, 1m)")),
            }
        };
        let heartbeat_ms = ms(h.heartbeat, "heartbeat", 1000)?;
        let dead_after_ms = ms(h.dead_after, "dead-after", 5000)?;
        if dead_after_ms <= heartbeat_ms {
            return Err(format!("`{key}.dead-after`: must be longer than its heartbeat ({heartbeat_ms} ms)"));
        }
        let sessions = h.sessions_per_connection.unwrap_or(10);
        if sessions == 0 {
            return Err(format!("`{key}.sessions-per-connection`: must be at least 1"));
        }
        out.push(HostSpec {
            name,
            ssh: h.ssh,
            port: h.port,
            identity: h.identity.map(|p| abs(Path::new(&p))),
            ssh_config: h.ssh_config.map(|p| abs(Path::new(&p))),
            ssh_options: h.ssh_options,
            exe: h.exe.unwrap_or_else(|| "tractor-host".into()),
            cache_dir: h.cache_dir,
            sessions_per_connection: sessions,
            heartbeat_ms,
            dead_after_ms,
            connect_timeout_ms: ms(h.connect_timeout, "connect-timeout", 10_000)?,
        });
    }
    Ok(out)
}
