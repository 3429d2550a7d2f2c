//! Opening a file that an untrusted process names (a miner's `-c
//! config.json`), as hostile input.
//!
//! The path is the process's to choose: it may be a FIFO (an `open()` for
//! reading blocks until a writer comes, forever if none does), a device, a
//! huge file, or a symlink that points out of a container into the host's
//! files. So the file is opened:
//! - with `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` below the
//!   process's own root (`/proc/<pid>/root`): `..` and absolute symlinks
//!   stay inside the container, and `/proc/self/...`-style magic links are
//!   refused;
//! - `O_NOFOLLOW` (a final symlink is refused), `O_NONBLOCK` (a FIFO opens
//!   at once instead of waiting for a writer), `O_NOCTTY`;
//! - and read only when `fstat` says it is a regular file no larger than
//!   the caller's bound.
//!
//! Kernels without openat2 (before 5.6) get no such reads at all: there is
//! no equally safe fallback.

use std::{
    ffi::CString,
    fs::{File, Metadata},
    io::{self, Read as _},
    os::{
        fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
        unix::{ffi::OsStrExt as _, fs::FileTypeExt as _},
    },
    path::{Component, Path, PathBuf},
};

/// Why a named file was not read.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("not found")]
    NotFound,
    #[error("not a regular file ({0})")]
    NotRegular(&'static str),
    #[error("{0} bytes, more than the {1} read at most")]
    TooLarge(u64, u64),
    #[error("a symlink or a path that leaves the process's root")]
    Escapes,
    #[error("this kernel has no openat2 (Linux 5.6+)")]
    Unsupported,
    #[error("{0}")]
    Io(io::Error),
}

/// Reads a file that the process `pid` names, resolved as that process
/// would resolve it but never outside its root: an absolute `path` from its
/// root, a relative one from its working directory (and, then, never above
/// it). At most `max_len` bytes, else [`Refused::TooLarge`].
pub fn read_named_file(pid: u32, path: &Path, max_len: u64) -> Result<Vec<u8>, Refused> {
    let (base, inside) = if path.is_absolute() {
        (PathBuf::from(format!("/proc/{pid}/root")), path)
    } else {
        (PathBuf::from(format!("/proc/{pid}/cwd")), path)
    };
    read_below(&base, inside, max_len)
}

/// Reads `path` resolved below the directory `base` as if `base` were the
/// root (see the module doc).
pub fn read_below(base: &Path, path: &Path, max_len: u64) -> Result<Vec<u8>, Refused> {
    let (file, meta) = open_below(base, path, max_len)?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // The file may grow between fstat and read: never past the bound.
    file.take(max_len)
        .read_to_end(&mut bytes)
        .map_err(Refused::Io)?;
    Ok(bytes)
}

/// Opens `path` resolved below the directory `base` as [`read_below`]
/// does, for a caller that reads only parts of it (an ELF file's symbol
/// table): a regular file no larger than `max_len`, with what `fstat` said
/// of it. The caller bounds what it reads.
pub fn open_below(base: &Path, path: &Path, max_len: u64) -> Result<(File, Metadata), Refused> {
    let root = open_dir(base)?;
    let relative: PathBuf = path
        .components()
        .filter(|c| !matches!(c, Component::RootDir | Component::Prefix(_)))
        .collect();
    if relative.as_os_str().is_empty() {
        return Err(Refused::NotRegular("directory"));
    }
    let file = openat2_in_root(&root, &relative)?;
    let meta = file.metadata().map_err(Refused::Io)?;
    let kind = meta.file_type();
    if !kind.is_file() {
        return Err(Refused::NotRegular(if kind.is_fifo() {
            "FIFO"
        } else if kind.is_socket() {
            "socket"
        } else if kind.is_char_device() || kind.is_block_device() {
            "device"
        } else if kind.is_dir() {
            "directory"
        } else {
            "special file"
        }));
    }
    if meta.len() > max_len {
        return Err(Refused::TooLarge(meta.len(), max_len));
    }
    Ok((file, meta))
}

fn open_dir(path: &Path) -> Result<OwnedFd, Refused> {
    let c_path = CString::new(path.as_os_str().as_bytes()).map_err(|_| Refused::NotFound)?;
    // SAFETY: a valid NUL-terminated path; the returned fd is checked.
    let fd = unsafe {
        libc::open(
            c_path.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(errno_refusal(io::Error::last_os_error()));
    }
    // SAFETY: `fd` is a new descriptor this function owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn openat2_in_root(root: &OwnedFd, relative: &Path) -> Result<File, Refused> {
    let c_path = CString::new(relative.as_os_str().as_bytes()).map_err(|_| Refused::NotFound)?;
    // SAFETY: open_how is a plain struct; zeroed is a valid value.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags =
        (libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOFOLLOW | libc::O_NOCTTY | libc::O_CLOEXEC)
            as u64;
    how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: valid dirfd, NUL-terminated path, and an open_how of the
    // size passed; the result is checked.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root.as_raw_fd(),
            c_path.as_ptr(),
            std::ptr::from_mut(&mut how),
            size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return Err(errno_refusal(io::Error::last_os_error()));
    }
    // SAFETY: `fd` is a new descriptor this function owns.
    Ok(unsafe { File::from_raw_fd(fd as i32) })
}

fn errno_refusal(err: io::Error) -> Refused {
    match err.raw_os_error() {
        Some(libc::ENOENT | libc::ENOTDIR | libc::ESRCH) => Refused::NotFound,
        Some(libc::ELOOP | libc::EXDEV) => Refused::Escapes,
        Some(libc::ENOSYS) => Refused::Unsupported,
        _ => Refused::Io(err),
    }
}

#[cfg(test)]
mod tests {
    use std::{
        fs,
        os::unix::fs::symlink,
        time::{Duration, Instant},
    };

    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("assay-open-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("etc")).unwrap();
        dir
    }

    #[test]
    fn a_regular_file_inside_the_root_is_read() {
        let root = scratch("regular");
        fs::write(root.join("etc/config.json"), b"{\"pools\":[]}").unwrap();
        let bytes = read_below(&root, Path::new("/etc/config.json"), 1024).unwrap();
        assert_eq!(bytes, b"{\"pools\":[]}");
    }

    #[test]
    fn a_fifo_is_refused_at_once_instead_of_waiting_for_a_writer() {
        let root = scratch("fifo");
        let fifo = root.join("etc/config.json");
        let c = CString::new(fifo.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let started = Instant::now();
        let refused = read_below(&root, Path::new("etc/config.json"), 1024).unwrap_err();
        assert!(matches!(refused, Refused::NotRegular("FIFO")), "{refused}");
        // No writer ever comes: a blocking open would never have returned.
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn an_absolute_symlink_resolves_inside_the_root_not_the_host() {
        let root = scratch("symlink");
        // In the "container", /etc/passwd is its own file.
        fs::write(root.join("etc/passwd"), b"container").unwrap();
        fs::create_dir_all(root.join("opt")).unwrap();
        symlink("/etc/passwd", root.join("opt/link-dir-target")).unwrap();
        symlink("/etc", root.join("opt/etc-link")).unwrap();
        // A final symlink is refused outright.
        assert!(matches!(
            read_below(&root, Path::new("/opt/link-dir-target"), 1024),
            Err(Refused::Escapes)
        ));
        // A symlinked directory on the way resolves in the root: the
        // container's /etc/passwd, never the host's.
        let bytes = read_below(&root, Path::new("/opt/etc-link/passwd"), 1024).unwrap();
        assert_eq!(bytes, b"container");
        // `..` cannot climb out either.
        let bytes = read_below(&root, Path::new("../../../../etc/passwd"), 1024).unwrap();
        assert_eq!(bytes, b"container");
    }

    #[test]
    fn a_file_over_the_bound_and_a_directory_are_refused() {
        let root = scratch("large");
        fs::write(root.join("etc/big"), vec![b'x'; 4096]).unwrap();
        assert!(matches!(
            read_below(&root, Path::new("/etc/big"), 1024),
            Err(Refused::TooLarge(4096, 1024))
        ));
        assert!(matches!(
            read_below(&root, Path::new("/etc"), 1024),
            Err(Refused::NotRegular("directory"))
        ));
        assert!(matches!(
            read_below(&root, Path::new("/etc/missing"), 1024),
            Err(Refused::NotFound)
        ));
    }

    #[test]
    fn a_device_is_refused() {
        let root = Path::new("/");
        assert!(matches!(
            read_below(root, Path::new("/dev/zero"), 1024),
            Err(Refused::NotRegular("device"))
        ));
    }
}
