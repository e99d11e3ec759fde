//! The `ssh` section: actors on a remote host over a warm ControlMaster,
//! against plain `ssh` over a master of the same kind in the same run
//! (`ssh host true` for spawning, an `ssh host cat` echo for messages).

use crate::figure::{Figure, Floor};
use crate::measure::*;
use crate::Plan;
use anyhow::{anyhow, bail, Result};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tractor_host::spawn::ssh::HostSpec;
use tractor_host::spawn::Backend;
use tractor_host::Tree;

/// A ControlMaster of our own for the baselines; closed on drop.
struct Master {
    child: Child,
    ctl: std::path::PathBuf,
    host: HostSpec,
}

impl Master {
    fn open(host: &HostSpec) -> Result<Master> {
        let dir = std::env::temp_dir().join(format!("trb-{}", tractor_host::spawn::new_uid()));
        std::fs::create_dir_all(&dir)?;
        let ctl = dir.join("ctl");
        let child = Command::new("ssh")
            .args(["-M", "-N", "-T", "-o", "ControlMaster=yes", "-o", "ControlPersist=no"])
            .args(host.command_options())
            .arg("-S")
            .arg(&ctl)
            .arg(&host.ssh)
            .stdin(Stdio::null())
            .spawn()?;
        let mut m = Master { child, ctl, host: host.clone() };
        let start = Instant::now();
        while !m.command(&["-O", "check"]).stderr(Stdio::null()).status()?.success() {
            if m.child.try_wait()?.is_some() || start.elapsed() > Duration::from_secs(10) {
                bail!("cannot open an ssh master to host '{}' ({})", host.name, host.ssh);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(m)
    }

    /// `ssh -S ctl <options> <args> <destination>`.
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ssh");
        c.args(self.host.command_options()).arg("-S").arg(&self.ctl).args(args).arg(&self.host.ssh);
        c
    }

    /// A session on this master running `remote`.
    fn session(&self, remote: &str) -> Command {
        let mut c = self.command(&["-o", "ControlMaster=no", "-T"]);
        c.args(["--", remote]);
        c
    }
}

impl Drop for Master {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(dir) = self.ctl.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Measure `tree`'s testbed on `host`, handing each figure to `emit`.
pub(crate) fn section(
    tree: &Tree,
    host: &HostSpec,
    plan: &Plan,
    rt: &tokio::runtime::Runtime,
    emit: &mut dyn FnMut(Figure),
) -> Result<()> {
    let b = Some(Backend::Ssh);
    let master = Master::open(host)?;
    let ssh_true = median_duration(plan.runs, || {
        let ok = master.session("true").status().is_ok_and(|s| s.success());
        assert!(ok, "ssh {} true failed", host.ssh);
    });
    emit(Figure::new("baseline: ssh host true, warm master", b, ms(ssh_true), "ms"));
    let cat =
        median((0..3).map(|_| echo_round_trips(&mut master.session("cat"), plan.round_trips)).collect::<Result<_>>()?);
    emit(Figure::new("baseline: ssh host cat echo, 8-byte ping-pong", b, cat, "rt/s"));
    drop(master);

    let mut tree = tree.clone();
    tree.add_hosts(vec![host.clone()]);
    for c in &mut tree.info.components {
        c.host = Some(host.name.clone());
    }
    tree.info.id = tractor_host::spawn::new_uid();
    let ctx = {
        let _in = rt.enter();
        tree.driver()
    };
    rt.block_on(async {
        // The first spawn opens the master and ships the component (once);
        // time_async's warm-up runs take that.
        let one = time_async(plan.runs, || spawn_and_wait(&ctx, 1)).await?;
        emit(
            Figure::new("ssh: spawn -> first result, warm master", b, ms(one), "ms")
                .against(ms(ssh_true))
                .floor(Some(Floor::AtMost(30.0 + ms(ssh_true)))),
        );
        let (ping, one_way) = stream_rates(&ctx, plan).await?;
        emit(
            Figure::new("ssh: context ping-pong round trips", b, ping, "rt/s")
                .against(cat)
                .floor(Some(Floor::AtLeast(20_000.0))),
        );
        emit(Figure::new("ssh: one-way stream messages", b, one_way, "msg/s").floor(Some(Floor::AtLeast(300_000.0))));
        Ok::<_, anyhow::Error>(())
    })?;
    drop(ctx);
    Ok(())
}

/// Host `name` of the inventory at `hosts`.
pub(crate) fn host_of(hosts: Option<&std::path::Path>, name: &str) -> Result<HostSpec> {
    let path = hosts.ok_or_else(|| anyhow!("--ssh-host {name} needs --hosts FILE (a [hosts] table)"))?;
    let all = tractor_host::load_hosts(path).map_err(|e| anyhow!("{e}"))?;
    all.into_iter().find(|h| h.name == name).ok_or_else(|| anyhow!("{}: no [hosts.{name}]", path.display()))
}
