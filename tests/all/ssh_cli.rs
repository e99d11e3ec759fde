//! `tractor-host run --spawn ssh:h1`: whole examples with their root on a
//! loopback sshd, output forwarded; Ctrl-C and SIGKILL of the driver.

use crate::common::assert_all_gone;
use crate::common::ssh::{available, SshHost};

/// `tractor-host run --hosts <h1's table> --spawn ssh:h1 <example>`.
fn run_on_h1(h: &SshHost, example: &str) -> (std::process::Command, String) {
    let hosts = h.dir.join("hosts.toml");
    std::fs::write(&hosts, h.table()).unwrap();
    let id = tractor_host::spawn::new_uid();
    let mut cmd = std::process::Command::new(crate::common::host_exe());
    cmd.arg("run").arg("--hosts").arg(&hosts).args(["--spawn", "ssh:h1"]).arg(format!("examples/{example}"));
    cmd.env("TRACTOR_TREE", &id).current_dir(crate::common::repo());
    (cmd, id)
}

#[test]
fn every_example_runs_with_its_root_on_h1() {
    if !available() {
        return;
    }
    let _shared = crate::common::shared();
    let h = SshHost::start(10);
    // (example, exit code, what its stdout must say, what its stderr must say)
    let examples: &[(&str, i32, &[&str], &str)] = &[
        ("single_func", 0, &["[root@h1] ", "Collected subproc"], ""),
        ("we_are_processes", 1, &["This process tree will self-destruct in 1 sec..."], "Self Destructed"),
        ("primes_pool", 0, &["1099726899285419 is prime: false", "total: 5 of 6 numbers are prime"], ""),
        ("cluster", 0, &["Yo i am actor", "cancelled "], ""),
        ("ping_pong", 0, &["started with 11", "rpc_server answered 10 pings"], ""),
        ("broadcast", 0, &["received 1000 numbers in order"], ""),
        ("feed_service", 0, &["final value 2000"], ""),
        ("asyncio_echo", 0, &["1000 messages echoed through an asyncio queue and task"], ""),
        ("registry", 0, &["db counted 30 increments from the workers"], ""),
        ("mutual", 0, &["a answered 2 questions from b; no deadlock"], ""),
        (
            "polyglot",
            0,
            &["[py@h1] python actor pid=", "[root@h1] js: find-add(rust-leaf) -> 42", "[root@h1] py: spawn-rust -> 42"],
            "",
        ),
    ];
    for (example, code, out_has, err_has) in examples {
        let (mut cmd, id) = run_on_h1(&h, example);
        let start = std::time::Instant::now();
        let out = cmd.output().unwrap();
        eprintln!("{example} on h1: {:?}", start.elapsed());
        let (text, err) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.status.code(), Some(*code), "{example}: {text}\n{err}");
        for want in *out_has {
            assert!(text.contains(want), "{example}: no {want:?} in\n{text}\n{err}");
        }
        assert!(err.contains(err_has), "{example}: no {err_has:?} in\n{err}");
        assert_all_gone(&id);
    }
    // Each run is its own driver, with its own master, gone with it.
    h.wait_no_sessions();
}

#[test]
fn ctrl_c_cancels_a_remote_tree_through_its_frames_and_exits_130() {
    if !available() {
        return;
    }
    use std::io::BufRead as _;
    use std::os::unix::process::CommandExt as _;
    let _shared = crate::common::shared();
    let h = SshHost::start(10);
    let (mut cmd, id) = run_on_h1(&h, "daemon_tree");
    // Its own process group, as a shell gives a job: Ctrl-C reaches the
    // driver and every ssh process it started alike.
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .stdin(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let up = lines.find_map(|l| l.ok().filter(|l| l.contains("tree up:")));
    assert_eq!(up.as_deref(), Some("[root@h1] tree up: 7 actors"));
    let rest = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>().join("\n"));
    // SAFETY: plain kill(2) to the job's group.
    assert_eq!(unsafe { libc::kill(-(child.id() as i32), libc::SIGINT) }, 0);
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    let text = rest.join().unwrap();
    assert_eq!(status.code(), Some(130), "{text}\n{err}");
    // ssh ignored the signal: the tree was cancelled over its link, not
    // cut off by a dying ssh.
    assert!(!err.contains("lost") && !err.contains("died"), "{err}");
    assert_all_gone(&id);
    h.wait_no_sessions();
}

#[test]
fn sigkill_of_the_driver_takes_the_remote_tree_down() {
    if !available() {
        return;
    }
    use std::io::BufRead as _;
    let _shared = crate::common::shared();
    let h = SshHost::start(10);
    let (mut cmd, id) = run_on_h1(&h, "daemon_tree");
    let mut child = cmd.stdout(std::process::Stdio::piped()).stdin(std::process::Stdio::null()).spawn().unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let up = lines.find_map(|l| l.ok().filter(|l| l.contains("tree up:")));
    assert_eq!(up.as_deref(), Some("[root@h1] tree up: 7 actors"));
    std::thread::spawn(move || lines.for_each(drop));
    // The remote actors, their relay and the ssh processes are all the
    // tree's: 7 actors + a relay + the mux client + the master + the driver.
    assert!(crate::common::tree_pids(&id).len() >= 10, "{:?}", crate::common::tree_pids(&id));
    // `ps` on the driver's host sees the remote tree, each actor on h1.
    let ps = std::process::Command::new(crate::common::host_exe()).args(["ps", "--json", "--tree", &id]).output();
    let trees: Vec<tractor_host::wire::TreeStatus> = serde_json::from_slice(&ps.unwrap().stdout).unwrap();
    let hosts: Vec<&str> = trees[0].actors.iter().map(|a| a.host.as_str()).collect();
    assert_eq!(hosts, vec!["h1"; 7], "{:?}", trees[0].actors);
    let table = std::process::Command::new(crate::common::host_exe()).args(["ps", "--tree", &id]).output().unwrap();
    let table = String::from_utf8_lossy(&table.stdout).into_owned();
    assert!(table.contains("HOST") && table.contains(" h1 "), "{table}");
    child.kill().unwrap();
    child.wait().unwrap();
    // Its ssh processes die with it (death signal), the channel closes,
    // the relay tears the remote subtree down.
    let took = crate::common::assert_tree_gone_within(&id, std::time::Duration::from_secs(10));
    eprintln!("remote daemon_tree gone {took:?} after SIGKILL of the driver");
    h.wait_no_sessions();
}
