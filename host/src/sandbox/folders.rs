//! Granted folders as open directory handles.
//!
//! A folder an actor holds is an open descriptor, resolved once and never
//! again from its path: a child's folder is opened *beneath* one of its
//! spawner's handles with `openat2(RESOLVE_BENEATH)`, which refuses `..`,
//! absolute symlinks and relative symlinks that climb out; the resulting
//! descriptor is what the child gets (inherited by the process, or handed
//! to the thread), and what its WASI preopens are made from
//! (`/proc/self/fd/N`, which reopens the very directory the descriptor
//! names). A guest that swaps a symlink after the check therefore changes
//! nothing: nothing is looked up by path after the check.
//!
//! Only the tree's driver opens folders by path, from its manifest; so does
//! an actor whose parent (another runtime speaking the protocol) hands it
//! none.

use super::grants::DirGrant;
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};

/// Most folders one actor may be granted (each is a descriptor handed to
/// it at spawn).
pub const MAX_DIRS: usize = crate::spawn::MAX_HANDED;

/// The folders an actor holds, each with its open handle.
#[derive(Debug, Default)]
pub struct Folders {
    held: Vec<(DirGrant, OwnedFd)>,
}

impl Folders {
    /// Open `dirs` by their paths (the tree's driver, whose grants come from
    /// its manifest, and an actor handed paths rather than descriptors).
    pub fn open_paths(dirs: &[DirGrant]) -> Result<Folders, String> {
        Self::claim(dirs, |_| Err(std::io::Error::other("no descriptors were handed over")))
    }

    /// The folders of a starting actor: each one handed over as descriptor
    /// `fd` (taken with `take`), or else opened at its `host` path.
    pub fn claim(dirs: &[DirGrant], mut take: impl FnMut(i32) -> std::io::Result<OwnedFd>) -> Result<Folders, String> {
        if dirs.len() > MAX_DIRS {
            return Err(format!("{} folders granted; at most {MAX_DIRS} are supported", dirs.len()));
        }
        let mut held = Vec::new();
        for d in dirs {
            let fd = match d.fd {
                Some(n) => take(n).map_err(|e| format!("{}: descriptor {n}: {e}", d.describe()))?,
                None => open_path(&d.host).map_err(|e| format!("{}: cannot open it: {e}", d.describe()))?,
            };
            if !is_dir(&fd) {
                return Err(format!("{}: not a folder", d.describe()));
            }
            held.push((DirGrant { fd: None, ..d.clone() }, fd));
        }
        Ok(Folders { held })
    }

    /// Open the folders `asked` for a child, each beneath a folder held here
    /// that allows its mode. The error names the first folder that cannot
    /// be granted and why.
    pub fn open_for_child(&self, asked: &[DirGrant]) -> Result<Folders, (DirGrant, String)> {
        if asked.len() > MAX_DIRS {
            let first = asked[MAX_DIRS].clone();
            return Err((first, format!("at most {MAX_DIRS} folders can be granted")));
        }
        let mut held = Vec::new();
        for d in asked {
            if !d.host.is_absolute() {
                return Err((d.clone(), "the host path must be absolute".into()));
            }
            let inside: Vec<_> = self.held.iter().filter(|(m, _)| d.host.starts_with(&m.host)).collect();
            if inside.is_empty() {
                return Err((d.clone(), "it is not inside any folder it holds".into()));
            }
            let mut why = "it holds it read-only".to_string();
            let mut opened = None;
            for (mine, fd) in inside.into_iter().filter(|(m, _)| m.writable || !d.writable) {
                let rest = d.host.strip_prefix(&mine.host).expect("filtered on starts_with");
                match open_beneath(fd, rest) {
                    Ok(fd) => {
                        opened = Some(fd);
                        break;
                    }
                    Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
                        why = format!("it leads outside `{}`", mine.host.display());
                    }
                    Err(e) => why = e.to_string(),
                }
            }
            let Some(fd) = opened else { return Err((d.clone(), why)) };
            // Name the folder by where it really is, for the child's own
            // grants (`current-grants`) and its children's checks.
            let host = real_path(&fd).unwrap_or_else(|| d.host.clone());
            held.push((DirGrant { host, fd: None, ..d.clone() }, fd));
        }
        Ok(Folders { held })
    }

    /// The grants these folders stand for (real host paths, no descriptors).
    pub fn grants(&self) -> Vec<DirGrant> {
        self.held.iter().map(|(g, _)| g.clone()).collect()
    }

    /// Preopen every folder in `wasi` from its handle.
    pub fn preopen(&self, wasi: &mut wasmtime_wasi::WasiCtxBuilder) -> Result<(), String> {
        for (d, fd) in &self.held {
            let perms = if d.writable { wasmtime_wasi::FsPerms::ReadWrite } else { wasmtime_wasi::FsPerms::ReadOnly };
            wasi.preopened_dir(proc_path(fd), &d.guest, perms)
                .map_err(|e| format!("cannot preopen {} as {}: {e}", d.host.display(), d.guest))?;
        }
        Ok(())
    }

    /// The grants and their handles, to hand over to a child.
    pub fn into_parts(self) -> Vec<(DirGrant, OwnedFd)> {
        self.held
    }
}

/// `/proc/self/fd/N`: opening it opens the directory `fd` refers to, not
/// whatever its old path names now.
fn proc_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

fn real_path(fd: &OwnedFd) -> Option<PathBuf> {
    std::fs::read_link(proc_path(fd)).ok()
}

fn is_dir(fd: &OwnedFd) -> bool {
    // SAFETY: fstat fills the zeroed struct for a descriptor we own.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        libc::fstat(fd.as_raw_fd(), &mut st) == 0 && (st.st_mode & libc::S_IFMT) == libc::S_IFDIR
    }
}

/// Open a directory by path, following symlinks (trusted paths only).
fn open_path(path: &Path) -> std::io::Result<OwnedFd> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| std::io::Error::other("NUL in path"))?;
    // SAFETY: plain open(2) of a NUL-terminated path.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: open just returned this descriptor to us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Open directory `rest` beneath `dir`: `..`, absolute symlinks and
/// symlinks that lead out fail with `EXDEV`, proc magic links with `ELOOP`.
fn open_beneath(dir: &OwnedFd, rest: &Path) -> std::io::Result<OwnedFd> {
    let rest = if rest.as_os_str().is_empty() { Path::new(".") } else { rest };
    let c = CString::new(rest.as_os_str().as_bytes()).map_err(|_| std::io::Error::other("NUL in path"))?;
    // SAFETY: open_how is plain data, zeroed then filled.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS;
    loop {
        // SAFETY: openat2 reads `how` (of the size given) and the path.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir.as_raw_fd(),
                c.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        if fd >= 0 {
            // SAFETY: openat2 just returned this descriptor to us.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) });
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            // A rename raced with the lookup: the kernel asks us to retry.
            Some(libc::EAGAIN) | Some(libc::EINTR) => continue,
            Some(libc::ENOSYS) => {
                return Err(std::io::Error::other(
                    "this kernel has no openat2 (Linux 5.6+): folders cannot be narrowed",
                ))
            }
            _ => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn playground() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tractor-folders-{}", crate::spawn::new_uid()));
        std::fs::create_dir_all(dir.join("data/sub")).unwrap();
        std::os::unix::fs::symlink("..", dir.join("data/up")).unwrap();
        std::os::unix::fs::symlink(&dir, dir.join("data/abs")).unwrap();
        std::os::unix::fs::symlink("sub", dir.join("data/inside")).unwrap();
        std::fs::canonicalize(dir).unwrap()
    }

    #[test]
    fn a_child_folder_must_resolve_beneath_a_held_one() {
        let root = playground();
        let data = root.join("data");
        let held = Folders::open_paths(&[DirGrant::new(&data, "/d", false)]).unwrap();
        let ask = |p: PathBuf, w: bool| held.open_for_child(&[DirGrant::new(p, "/c", w)]);
        let ok = ask(data.join("sub"), false).unwrap();
        assert_eq!(ok.grants()[0].host, data.join("sub"));
        assert_eq!(ask(data.join("inside"), false).unwrap().grants()[0].host, data.join("sub"));
        assert_eq!(ask(data.join("sub/.."), false).unwrap().grants()[0].host, data);
        for escape in ["..", "sub/../..", "../../..", "up", "abs", "up/data"] {
            let (d, why) = ask(data.join(escape), false).unwrap_err();
            assert!(why.contains("leads outside"), "{escape}: {why}");
            assert_eq!(d.host, data.join(escape));
        }
        let (_, why) = ask(root.clone(), false).unwrap_err();
        assert!(why.contains("not inside"), "{why}");
        let (_, why) = ask(data.join("sub"), true).unwrap_err();
        assert!(why.contains("read-only"), "{why}");
        let (_, why) = ask("relative/path".into(), false).unwrap_err();
        assert!(why.contains("absolute"), "{why}");
    }
}
