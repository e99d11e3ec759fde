//! Broken and hostile input: bad components, `tractor-host check`, and
//! malformed frames in both directions of a parent/child pipe. Each ends in
//! a clear error naming what was wrong; nothing panics, hangs or leaks.

use crate::common::{assert_no_leftovers, host_exe, testbed};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use tractor_host::ErrorKind;
use tractor_host::{ActorScope, Nursery};

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tractor-hostile-{}", tractor_host::spawn::new_uid()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A component that imports an interface no tractor host provides (as a
/// component built for another world would).
fn foreign_component(dir: &Path) -> PathBuf {
    let bytes = wat::parse_str(
        r#"(component
            (import "example:elsewhere/thing@1.0.0" (instance (export "poke" (func))))
        )"#,
    )
    .unwrap();
    let path = dir.join("foreign.wasm");
    std::fs::write(&path, bytes).unwrap();
    path
}

fn manifest(dir: &Path, root: &str, components: &[(&str, &Path)]) {
    let mut text = format!("[root]\ncomponent = \"{root}\"\n");
    for (name, source) in components {
        text += &format!("\n[component.{name}]\nsource = \"{}\"\n", source.display());
    }
    std::fs::write(dir.join("tractor.toml"), text).unwrap();
}

#[test]
fn check_reports_every_problem_with_its_key() {
    let _shared = crate::common::shared();
    let dir = scratch();
    std::fs::write(dir.join("text.wasm"), "not wasm at all").unwrap();
    std::fs::write(dir.join("core.wasm"), wat::parse_str("(module)").unwrap()).unwrap();
    let foreign = foreign_component(&dir);
    let testbed_src = testbed().manifest.components["testbed"].source.clone();
    manifest(
        &dir,
        "testbed",
        &[
            ("text", &dir.join("text.wasm")),
            ("core", &dir.join("core.wasm")),
            ("foreign", &foreign),
            ("testbed", &testbed_src),
        ],
    );
    // The root calls an export that does not exist.
    let text = std::fs::read_to_string(dir.join("tractor.toml")).unwrap();
    std::fs::write(
        dir.join("tractor.toml"),
        text.replace("component = \"testbed\"\n", "component = \"testbed\"\nfunc = \"nope\"\n"),
    )
    .unwrap();
    let out = Command::new(host_exe()).args(["check", dir.to_str().unwrap()]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    for want in [
        "`component.text.source`: component `text`",
        "is not a WebAssembly file",
        "`component.core.source`: component `core`",
        "core wasm module, not a component",
        "`component.foreign`: component `foreign` cannot be linked",
        "example:elsewhere/thing",
        "`root.func`: component `testbed` has no export `nope`",
        "4 problem(s)",
    ] {
        assert!(text.contains(want), "want {want:?} in:\n{text}");
    }

    // Arguments that do not fit the entry export's signature.
    let text = std::fs::read_to_string(dir.join("tractor.toml")).unwrap();
    std::fs::write(dir.join("tractor.toml"), text.replace("func = \"nope\"", "func = \"add\"\nargs = [1, \"two\"]"))
        .unwrap();
    let out = Command::new(host_exe()).args(["check", dir.to_str().unwrap()]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("`root.args`: bad arguments to `add`: parameter `b`"), "{text}");
}

#[test]
fn a_component_for_another_world_fails_at_load_naming_it() {
    let _shared = crate::common::shared();
    let dir = scratch();
    let foreign = foreign_component(&dir);
    manifest(&dir, "foreign", &[("foreign", &foreign)]);
    let id = tractor_host::spawn::new_uid();
    let out = Command::new(host_exe()).args(["run", dir.to_str().unwrap()]).env("TRACTOR_TREE", &id).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("[spawn-failed]: component `foreign` cannot be linked"), "{err}");
    assert_no_leftovers(&id);
}

/// A fake actor process: a shell script that writes `bytes` to its parent
/// pipe (fd 3), then waits for the parent to react.
fn liar(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let data = dir.join(format!("{name}.bin"));
    std::fs::write(&data, bytes).unwrap();
    let script = dir.join(format!("{name}.sh"));
    let mut f = std::fs::File::create(&script).unwrap();
    writeln!(f, "#!/bin/sh\ncat '{}' >&4\nexec sleep 30", data.display()).unwrap();
    drop(f);
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    script
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut f = (body.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(body);
    f
}

fn cbor(v: &ciborium::Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).unwrap();
    out
}

#[test]
fn malformed_frames_from_a_child_are_protocol_errors_naming_it() {
    crate::common::run(async {
        let dir = scratch();
        let real = testbed();
        let start = ciborium::Value::Map(vec![("Start".into(), ciborium::Value::Map(vec![]))]);
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("oversized", u32::MAX.to_be_bytes().to_vec(), "exceeds the"),
            ("truncated", vec![0, 0, 0, 9, 1, 2], "ended inside a frame"),
            ("not-cbor", frame(&[0xff, 0xfe, 0xfd]), "invalid frame body"),
            ("unknown", frame(&cbor(&"Hello".into())), "invalid frame body"),
            ("out-of-order", frame(&cbor(&start)), "invalid frame body"),
        ];
        for (name, bytes, want) in cases {
            let mut tree = real.info.clone();
            tree.host_exe = liar(&dir, name, &bytes);
            tree.id = tractor_host::spawn::new_uid();
            let n = Nursery::open(&ActorScope::native(tree.clone()));
            let p = n.start_actor(name, Some("testbed")).await.unwrap();
            let e = n.wait().await.unwrap_err();
            assert_eq!((e.kind, e.actor_name.as_str()), (ErrorKind::Protocol, name), "{name}: {e}");
            assert!(e.message.contains(&format!("protocol error from actor '{name}'")), "{name}: {e}");
            assert!(e.message.contains(want), "{name}: want {want:?} in {e}");
            assert!(p.run("add", ciborium::Value::Array(vec![])).is_err());
            assert_no_leftovers(&tree.id);
        }
    })
}

#[test]
fn malformed_frames_from_a_parent_end_the_actor_cleanly() {
    crate::common::run(async {
        use tokio::io::AsyncWriteExt;
        use tractor_host::spawn::{Backend, Exit};
        let start = ciborium::Value::Map(vec![("Ready".into(), ciborium::Value::Map(vec![("pid".into(), 1.into())]))]);
        for (name, bytes) in [
            ("oversized", u32::MAX.to_be_bytes().to_vec()),
            ("not-cbor", frame(&[0xff, 0xfe])),
            ("out-of-order", frame(&cbor(&start))),
            ("truncated", vec![0, 0, 1, 0, 7]),
        ] {
            for backend in Backend::ALL {
                let Raw { mut spawned, _zygote: zygote, id } = Raw::spawn(backend, &[]).await;
                let mut tx = spawned.link.tx;
                tx.write_all(&bytes).await.unwrap();
                drop(tx);
                // It says so before it goes (nameless: the name comes with Start).
                match tractor_host::wire::read_msg(&mut spawned.link.rx).await {
                    Ok(tractor_host::wire::Msg::Failed { error }) => {
                        assert_eq!(error.kind, ErrorKind::Protocol, "{name} ({backend}): {error}");
                        assert!(error.message.contains("protocol error from parent"), "{error}");
                    }
                    other => panic!("{name} ({backend}): expected Failed, got {other:?}"),
                }
                let exit = spawned.process.wait().await;
                assert_eq!(exit, Exit::Code(65), "{name} ({backend}): the actor must refuse, not crash or hang");
                drop(zygote);
                assert_no_leftovers(&id);
            }
        }
    })
}

/// A raw actor of the testbed started with `backend`, given its `Start`
/// and up (it sent `Ready`): the test speaks the protocol itself.
struct Raw {
    spawned: tractor_host::spawn::Spawned,
    _zygote: Option<tractor_host::spawn::forkserver::Zygote>,
    id: String,
}

impl Raw {
    /// A raw actor process (or thread) of a fresh tree, not yet started.
    async fn spawn(backend: tractor_host::spawn::Backend, components: &[tractor_host::wire::ComponentEntry]) -> Raw {
        use tractor_host::spawn::{self, forkserver::Zygote, Backend};
        let id = spawn::new_uid();
        let zygote = match backend {
            Backend::Forkserver => Some(Zygote::start(&host_exe(), &id, &components).await.unwrap()),
            _ => None,
        };
        let addr = zygote.as_ref().map(|z| z.addr.as_str());
        let spawned = spawn::spawn(spawn::Request {
            backend,
            exe: &host_exe(),
            new_group: false,
            tree_id: &id,
            zygote: addr,
            handed: Vec::new(),
            thread_entry: tractor_host::run_thread,
            ssh: None,
        })
        .await
        .unwrap();
        Raw { spawned, _zygote: zygote, id }
    }

    /// A raw testbed actor, given its `Start` and up (it sent `Ready`).
    async fn start(backend: tractor_host::spawn::Backend, name: &str) -> Raw {
        Self::start_with(backend, name, None).await
    }

    /// [`Raw::start`], listening for peers on `peer` (address, token).
    async fn start_with(backend: tractor_host::spawn::Backend, name: &str, peer: Option<(String, String)>) -> Raw {
        use tractor_host::wire::{Msg, StartActor};
        let tree = testbed();
        let Raw { mut spawned, _zygote: zygote, id } = Raw::spawn(backend, &tree.info.components).await;
        let start = StartActor {
            name: name.into(),
            uid: "u-raw".into(),
            depth: 0,
            component: "testbed".into(),
            components: tree.info.components.clone(),
            grace_ms: 2000,
            max_depth: None,
            grants: Default::default(),
            tree_id: id.clone(),
            spawn: Default::default(),
            run: None,
            peer_addr: peer.as_ref().map(|p| p.0.clone()).unwrap_or_default(),
            token: peer.map(|p| p.1).unwrap_or_default(),
            registry: false,
            host: String::new(),
            hosts: Vec::new(),
        };
        tractor_host::wire::write_msg(&mut spawned.link.tx, &Msg::Start(Box::new(start))).await.unwrap();
        assert!(matches!(tractor_host::wire::read_msg(&mut spawned.link.rx).await, Ok(Msg::Ready { .. })));
        Raw { spawned, _zygote: zygote, id }
    }

    async fn send_raw(&mut self, bytes: &[u8]) {
        use tokio::io::AsyncWriteExt;
        self.spawned.link.tx.write_all(bytes).await.unwrap();
    }

    /// Read until `Failed`; returns its error.
    async fn failed(&mut self) -> tractor_host::RemoteError {
        loop {
            match tractor_host::wire::read_msg(&mut self.spawned.link.rx).await {
                Ok(tractor_host::wire::Msg::Failed { error }) => return error,
                Ok(_) => {}
                Err(e) => panic!("the actor ended without Failed: {e}"),
            }
        }
    }
}

#[test]
fn a_parent_breaking_the_protocol_gets_a_protocol_failure_naming_the_actor() {
    crate::common::run(async {
        use tractor_host::spawn::{Backend, Exit};
        use tractor_host::wire::{frame, CallRequest, Msg};
        let ready = frame::encode(&Msg::Ready { pid: 1 }).unwrap();
        let open = Msg::OpenContext(CallRequest {
            id: 7,
            func: "consume-after".into(),
            args: ciborium::Value::Array(vec![60_000.into()]),
        });
        let mut flood = frame::encode(&open).unwrap();
        for _ in 0..=tractor_host::WINDOW {
            flood.extend(frame::encode(&Msg::Stream { cid: 7, data: vec![0x01] }).unwrap());
        }
        let call = |id| Msg::Call(CallRequest { id, func: "sleep-forever".into(), args: ciborium::Value::Null });
        let mut twice = frame::encode(&call(3)).unwrap();
        twice.extend(frame::encode(&call(3)).unwrap());
        let echo = Msg::OpenContext(CallRequest {
            id: 7,
            func: "echo-ctx".into(),
            args: ciborium::Value::Array(vec![1.into()]),
        });
        let mut over_credit = frame::encode(&echo).unwrap();
        over_credit.extend(frame::encode(&Msg::Credit { cid: 7, n: u32::MAX }).unwrap());
        let cases: [(&str, Vec<u8>, &str); 5] = [
            ("garbled", frame(&[0xff, 0xfe]), "invalid frame body"),
            ("out-of-place", ready, "unexpected message Ready"),
            ("overrun", flood, "more than the 1024 stream messages its credit allows"),
            ("duplicate", twice, "call id 3 is already in flight"),
            ("over-credit", over_credit, "gave credit for 4294967295 stream messages on context 7 when 0 were sent"),
        ];
        for (name, bytes, want) in cases {
            for backend in Backend::ALL {
                let mut raw = Raw::start(backend, name).await;
                raw.send_raw(&bytes).await;
                let e = raw.failed().await;
                assert_eq!(
                    (e.kind, e.actor_name.as_str(), e.actor_uid.as_str()),
                    (ErrorKind::Protocol, name, "u-raw"),
                    "{e}"
                );
                assert!(e.message.contains(want), "{name} ({backend}): want {want:?} in {e}");
                assert_eq!(raw.spawned.process.wait().await, Exit::Code(65), "{name} ({backend})");
                assert_no_leftovers(&raw.id);
            }
        }
    })
}

/// Connect to a peer listener as a finder would (written from
/// `docs/protocol.md`): `Hello` with two pipe ends attached; our side of
/// the link if it answered `Ready`, else its refusal.
async fn peer_connect(addr: &str, token: &str) -> Result<tractor_host::spawn::Link, String> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags, UnixAddr};
    use std::os::fd::AsRawFd;
    use std::os::linux::net::SocketAddrExt as _;
    use tractor_host::wire::PeerMsg;
    let conn = std::os::unix::net::UnixStream::connect_addr(
        &std::os::unix::net::SocketAddr::from_abstract_name(addr.as_bytes()).unwrap(),
    )
    .map_err(|e| e.to_string())?;
    let (ours, theirs) = tractor_host::spawn::LinkFds::pair().unwrap();
    let hello = PeerMsg::Hello { from_name: "intruder".into(), from_uid: "u-x".into(), token: token.into() };
    let mut body = Vec::new();
    ciborium::into_writer(&hello, &mut body).unwrap();
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend(body);
    let fds = [theirs.rx.as_raw_fd(), theirs.tx.as_raw_fd()];
    sendmsg::<UnixAddr>(
        conn.as_raw_fd(),
        &[std::io::IoSlice::new(&frame)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .unwrap();
    drop(theirs);
    conn.set_nonblocking(true).unwrap();
    let mut conn = tokio::net::UnixStream::from_std(conn).unwrap();
    use tokio::io::AsyncReadExt;
    let mut len = [0u8; 4];
    conn.read_exact(&mut len).await.map_err(|e| format!("no answer: {e}"))?;
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    conn.read_exact(&mut body).await.unwrap();
    match ciborium::from_reader::<PeerMsg, _>(&body[..]).unwrap() {
        PeerMsg::Ready { .. } => Ok(ours.into_async().unwrap()),
        PeerMsg::Refused { reason } => Err(reason),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_peer_listener_refuses_wrong_tokens_other_users_and_misbehaving_links() {
    crate::common::run(async {
        use tractor_host::spawn::Backend;
        use tractor_host::wire::{read_msg, write_msg, CallRequest, Msg};
        for backend in [Backend::Exec, Backend::Forkserver, Backend::Thread] {
            let addr = format!("tractor-peer-test-{}", tractor_host::spawn::new_uid());
            let token = "5eb63bbbe01eeed093cb22bb8f5acdc3".to_string();
            let mut raw = Raw::start_with(backend, "target", Some((addr.clone(), token.clone()))).await;
            // A wrong token, and one of the right length but not the same.
            for wrong in ["", "5eb63bbbe01eeed093cb22bb8f5acdc4"] {
                let refused = peer_connect(&addr, wrong).await.err().expect("a wrong token is refused");
                assert!(refused.contains("wrong token"), "{backend}: {refused}");
            }
            // Another user is dropped unheard (SO_PEERCRED), before any Hello.
            let script = format!(
                "import socket; s = socket.socket(socket.AF_UNIX); s.connect('\\0{addr}'); s.settimeout(30); \
                 print(repr(s.recv(64)))"
            );
            let out = std::process::Command::new("setpriv")
                .args(["--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c", &script])
                .output()
                .expect("setpriv and /usr/bin/python3");
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "b''", "{backend}: {out:?}");
            // A link that sends what only a parent may is dropped, alone.
            let mut bad = peer_connect(&addr, &token).await.unwrap();
            write_msg(&mut bad.tx, &Msg::Cancel { by: "intruder".into() }).await.unwrap();
            assert!(read_msg(&mut bad.rx).await.is_err(), "{backend}: the link must be dropped");
            // The target serves its parent and a good peer as before.
            let mut good = peer_connect(&addr, &token).await.unwrap();
            let call = |id| Msg::Call(CallRequest { id, func: "add".into(), args: crate::common::cbor(&(2, 3)) });
            write_msg(&mut good.tx, &call(1)).await.unwrap();
            assert_eq!(
                read_msg(&mut good.rx).await.unwrap(),
                Msg::Return { id: 1, value: crate::common::cbor(&5) },
                "{backend}"
            );
            write_msg(&mut raw.spawned.link.tx, &call(1)).await.unwrap();
            assert_eq!(
                read_msg(&mut raw.spawned.link.rx).await.unwrap(),
                Msg::Return { id: 1, value: crate::common::cbor(&5) }
            );
            // Cancelled by its parent, it says goodbye to the peer, then exits.
            write_msg(&mut raw.spawned.link.tx, &Msg::Cancel { by: "test".into() }).await.unwrap();
            assert!(
                matches!(read_msg(&mut good.rx).await, Ok(Msg::PeerClosing { .. })),
                "{backend}: a peer hears PeerClosing"
            );
            assert!(raw.spawned.process.wait().await.success(), "{backend}");
            let table = std::fs::read_to_string("/proc/net/unix").unwrap();
            assert!(!table.contains(&addr), "{backend}: the listener is gone");
            assert_no_leftovers(&raw.id);
        }
    })
}
