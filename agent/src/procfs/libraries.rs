//! Where the GPU libraries are: the linker cache, and what processes map.
//!
//! The CUDA sensor attaches uprobes to library *files* (the kernel keys a
//! uprobe by inode), so one attach covers every process that maps that
//! file, now or later. What it needs is the set of distinct files: the
//! host's (from the linker cache, before anyone loads them), and those
//! inside containers' root filesystems, which only show up in the maps of
//! processes that loaded them (reached through `/proc/<pid>/root`).
//!
//! The same maps also say which AI libraries a process has loaded (cuBLAS,
//! cuDNN, NCCL, TensorRT, PyTorch…): evidence for the GPU classifier.
//!
//! A file's name only says which files to look at: what a file *is* comes
//! from its content ([`super::identity`]), so that a file a miner named
//! `libcublas.so.12` does not pass for cuBLAS. [`identify`] turns what the
//! names claim into what the files are.

use std::{
    collections::BTreeSet,
    fs,
    os::unix::ffi::OsStrExt as _,
    path::{Path, PathBuf},
    process::Command,
};

use procfs::{
    FromBufRead as _,
    process::{MMapPath, MemoryMap, MemoryMaps},
};

use super::identity::Identities;

/// A GPU-related library, by what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GpuLibrary {
    /// `libcuda.so.1`: the driver API; every CUDA program maps it.
    Cuda,
    /// `libnvrtc`: compiles kernels at run time (miners' favourite).
    Nvrtc,
    Cublas,
    Cudnn,
    Nccl,
    /// `libnvinfer` (TensorRT).
    TensorRt,
    /// `libtorch_cuda`, `libc10_cuda`.
    Torch,
    Cupy,
    OnnxRuntime,
    /// `libxla`/jaxlib's CUDA plugin.
    Xla,
}

impl GpuLibrary {
    /// Recognises a library by its file name (not its directory: the same
    /// library lives in wheels, conda envs and container images).
    pub fn of_file_name(name: &str) -> Option<Self> {
        let stem = name.split(".so").next()?;
        Some(match stem {
            "libcuda" => Self::Cuda,
            s if s.starts_with("libnvrtc") && !s.contains("builtins") => Self::Nvrtc,
            s if s.starts_with("libcublas") => Self::Cublas,
            s if s.starts_with("libcudnn") => Self::Cudnn,
            "libnccl" => Self::Nccl,
            s if s.starts_with("libnvinfer") => Self::TensorRt,
            "libtorch_cuda" | "libc10_cuda" | "libtorch_cuda_cpp" | "libtorch_cuda_cu" => {
                Self::Torch
            }
            s if s.starts_with("cupy") || s.starts_with("libcupy") => Self::Cupy,
            s if s.starts_with("libonnxruntime") => Self::OnnxRuntime,
            s if s.starts_with("libxla") || s.starts_with("xla_extension") => Self::Xla,
            _ => return None,
        })
    }

    /// The deep-learning stacks: mapped by training and inference, never by
    /// a miner.
    pub fn is_deep_learning(self) -> bool {
        !matches!(self, Self::Cuda | Self::Nvrtc)
    }
}

/// One GPU library file: what it is (what its name claims until
/// [`identify`] has read it), and where it is.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Mapped {
    pub library: GpuLibrary,
    /// The path to reach the file from the agent's mount namespace (what
    /// uprobes are attached to).
    pub path: PathBuf,
    /// The root the file is read below (a process's `/proc/<pid>/root`,
    /// or `/`) and its path there, as the process sees it: content is read
    /// resolved inside that root only ([`super::open`]).
    pub root: PathBuf,
    pub inside: PathBuf,
}

impl Mapped {
    fn new(library: GpuLibrary, root: &Path, inside: &Path) -> Self {
        Self {
            library,
            path: root.join(inside.strip_prefix("/").unwrap_or(inside)),
            root: root.to_path_buf(),
            inside: inside.to_path_buf(),
        }
    }

    /// The file's name, for evidence.
    pub fn file_name(&self) -> String {
        self.inside
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// What [`identify`] made of a set of files named like GPU libraries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identified {
    /// Files whose content shows a GPU library, as that library.
    pub libraries: BTreeSet<Mapped>,
    /// Names of the files named like a GPU library whose content does not
    /// show one: evidence of nothing (a decoy, or a stripped build).
    pub unidentified: BTreeSet<String>,
}

/// Reads each file's content (blocking: on a worker) and keeps what it
/// shows, not what its name claims.
pub fn identify(named: impl IntoIterator<Item = Mapped>, identities: &Identities) -> Identified {
    let mut found = Identified::default();
    for mapped in named {
        match identities.identify(&mapped.root, &mapped.inside).library {
            Some(library) => {
                found.libraries.insert(Mapped { library, ..mapped });
            }
            None => {
                found.unidentified.insert(mapped.file_name());
            }
        }
    }
    found
}

/// The files in the text of a `/proc/<pid>/maps` named like GPU libraries,
/// each once, as their names claim. Paths are as the process sees them;
/// `root` (the process's `/proc/<pid>/root`) is where they are reached
/// from the agent's mount namespace.
pub fn parse_maps(maps: &str, root: &Path) -> BTreeSet<Mapped> {
    let mut found = BTreeSet::new();
    for mapping in memory_maps(maps) {
        let MMapPath::Path(path) = mapping.pathname else {
            continue;
        };
        if !path.is_absolute() || path.as_os_str().as_bytes().ends_with(b" (deleted)") {
            continue;
        }
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if let Some(library) = GpuLibrary::of_file_name(name) {
            found.insert(Mapped::new(library, root, &path));
        }
    }
    found
}

/// The mappings in the text of a `/proc/<pid>/maps` or `/proc/<pid>/smaps`,
/// parsed by procfs one mapping (its line and, in smaps, the field lines
/// after it) at a time, from the text itself: what it cannot read costs
/// that mapping, not the file.
///
/// The text is hostile: a process names its files. procfs takes a path
/// that begins `/SYSV` for a System V segment, reads its next eight bytes
/// as the key and panics when there are fewer; a file named so (any
/// process can make one in a mount namespace of its own) would hide the
/// libraries under it, or stop the read. Such a path is given to procfs as
/// `/` and put back after.
pub fn memory_maps(text: &str) -> impl Iterator<Item = MemoryMap> + '_ {
    mapping_records(text)
        .filter_map(|record| {
            let header = &record[..line_end(record)];
            let Some((at, path)) = sysv_look_alike(header) else {
                return MemoryMaps::from_buf_read(record.as_bytes()).ok();
            };
            let neutral = format!("{}/\n{}", &header[..at], &record[header.len()..]);
            let mut maps = MemoryMaps::from_buf_read(neutral.as_bytes()).ok()?;
            for map in &mut maps.0 {
                map.pathname = MMapPath::Path(PathBuf::from(path));
            }
            Some(maps)
        })
        .flatten()
}

fn line_end(text: &str) -> usize {
    text.find('\n').map_or(text.len(), |i| i + 1)
}

/// The text of each mapping: a line, then the lines that begin with a
/// capital letter (smaps' fields; procfs's own rule).
fn mapping_records(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut end = line_end(rest);
        while rest[end..].starts_with(|c: char| c.is_ascii_uppercase()) {
            end += line_end(&rest[end..]);
        }
        let (record, tail) = rest.split_at(end);
        rest = tail;
        Some(record)
    })
}

/// Where the path of a mapping line starts, and the path, when it begins
/// `/SYSV` but is not a System V segment's (`/SYSV` and eight hex digits,
/// perhaps ` (deleted)`).
fn sysv_look_alike(header: &str) -> Option<(usize, &str)> {
    // address perms offset dev inode pathname
    let at = header.match_indices(' ').nth(4)?.0 + 1;
    let path = header[at..].trim();
    let key = path.strip_prefix("/SYSV")?;
    let segment = key.split_at_checked(8).is_some_and(|(hex, rest)| {
        hex.bytes().all(|b| b.is_ascii_hexdigit()) && matches!(rest, "" | " (deleted)")
    });
    (!segment).then_some((at, path))
}

/// The files process `pid` maps now that are named like GPU libraries
/// (empty when it is gone), as their names claim: [`identify`] says what
/// they are.
pub fn mapped_by(pid: u32) -> BTreeSet<Mapped> {
    // Lossy: one path that is not UTF-8 must not hide the others.
    let Ok(maps) = fs::read(format!("/proc/{pid}/maps")) else {
        return BTreeSet::new();
    };
    parse_maps(
        &String::from_utf8_lossy(&maps),
        &PathBuf::from(format!("/proc/{pid}/root")),
    )
}

/// The driver libraries the host's linker cache knows (`ldconfig -p`),
/// as their names claim: found before any process loads them, so that the
/// first calls of a new CUDA program are seen.
pub fn from_linker_cache() -> Vec<Mapped> {
    let Ok(output) = Command::new("ldconfig").arg("-p").output() else {
        return Vec::new();
    };
    let mut found: Vec<Mapped> = parse_ldconfig(&String::from_utf8_lossy(&output.stdout))
        .into_iter()
        .map(|m| host_file(m.library, &m.path))
        .collect();
    found.sort();
    found.dedup();
    found
}

/// A library file the host names (its linker cache, the operator): the
/// cache names links (libcuda.so.1 → libcuda.so.535…), resolved here, on
/// the host's own files, so that the content is read from the file itself
/// (a final link is never followed there).
pub fn host_file(library: GpuLibrary, path: &Path) -> Mapped {
    let path = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    Mapped::new(library, Path::new("/"), &path)
}

/// `\tlibcuda.so.1 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libcuda.so.1`
pub fn parse_ldconfig(text: &str) -> Vec<Mapped> {
    let mut found: Vec<Mapped> = text
        .lines()
        .filter_map(|line| {
            let (name, path) = line.trim().split_once(" => ")?;
            let name = name.split_whitespace().next()?;
            let library = GpuLibrary::of_file_name(name)?;
            let path = PathBuf::from(path.trim());
            matches!(library, GpuLibrary::Cuda | GpuLibrary::Nvrtc)
                .then(|| Mapped::new(library, Path::new("/"), &path))
        })
        .collect();
    found.sort();
    found.dedup();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAPS: &str = "\
7f1c2a000000-7f1c2a200000 r--p 00000000 fd:01 1234 /usr/lib/x86_64-linux-gnu/libcuda.so.535.104.05
7f1c2a200000-7f1c2a400000 r-xp 00200000 fd:01 1234 /usr/lib/x86_64-linux-gnu/libcuda.so.535.104.05
7f1c2b000000-7f1c2b100000 r-xp 00000000 fd:01 99 /opt/conda/lib/python3.11/site-packages/torch/lib/libtorch_cuda.so
7f1c2c000000-7f1c2c100000 r-xp 00000000 fd:01 98 /opt/conda/lib/python3.11/site-packages/nvidia/cublas/lib/libcublasLt.so.12
7f1c2d000000-7f1c2d100000 r-xp 00000000 fd:01 97 /usr/lib/x86_64-linux-gnu/libnvrtc-builtins.so.12.2
7f1c2e000000-7f1c2e100000 r-xp 00000000 fd:01 96 /tmp/my lib/libnvrtc.so.12
7f1c2f000000-7f1c2f100000 r-xp 00000000 fd:01 95 /usr/lib/libc.so.6
7f1c30000000-7f1c30100000 rw-p 00000000 00:00 0 [heap]
7f1c31000000-7f1c31100000 r-xp 00000000 fd:01 94 /old/libcudnn.so.9 (deleted)
garbage line
7f1c32000000-7f1c32100000 r-xp 00000000 00:05 93 /SYSV1
7f1c33000000-7f1c33100000 r-xp 00000000 00:05 92 /SYSV0000002a/libnccl.so.2
7f1c34000000-7f1c34100000 rw-s 00000000 00:01 32769 /SYSV0000002a (deleted)
";

    #[test]
    fn maps_name_the_gpu_libraries_once_each_across_mount_namespaces() {
        let found = parse_maps(MAPS, Path::new("/proc/42/root"));
        let libraries: Vec<GpuLibrary> = found.iter().map(|m| m.library).collect();
        assert_eq!(
            libraries,
            [
                GpuLibrary::Cuda,
                GpuLibrary::Nvrtc,
                GpuLibrary::Cublas,
                GpuLibrary::Nccl,
                GpuLibrary::Torch
            ]
        );
        let cuda = found
            .iter()
            .find(|m| m.library == GpuLibrary::Cuda)
            .unwrap();
        assert_eq!(
            cuda.path,
            Path::new("/proc/42/root/usr/lib/x86_64-linux-gnu/libcuda.so.535.104.05")
        );
        // A path with a space survives.
        assert!(
            found
                .iter()
                .any(|m| m.path == Path::new("/proc/42/root/tmp/my lib/libnvrtc.so.12"))
        );
        // Under a directory named like a System V segment: still a path.
        assert!(
            found
                .iter()
                .any(|m| m.path == Path::new("/proc/42/root/SYSV0000002a/libnccl.so.2"))
        );
    }

    #[test]
    fn maps_and_smaps_are_read_mapping_by_mapping() {
        let smaps = "\
7f0000000000-7f0000001000 r-xp 00000000 fd:01 12 /usr/lib/libc.so.6
Size:                  4 kB
KernelPageSize:        4 kB
VmFlags: rd ex mr mw me
7f0000001000-7f0000002000 rw-p 00000000 00:05 13 /SYSV12
Size:                  4 kB
7f0000002000-7f0000003000 rw-p 00000000 00:00 0 
Size:                  x kB
7f0000003000-7f0000004000 rw-p 00000000 00:00 0 
Size:                  8 kB
KernelPageSize:        4 kB
";
        let maps: Vec<MemoryMap> = memory_maps(smaps).collect();
        // The unreadable size costs its own mapping only.
        assert_eq!(maps.len(), 3);
        assert_eq!(
            maps[0].pathname,
            MMapPath::Path(PathBuf::from("/usr/lib/libc.so.6"))
        );
        assert_eq!(maps[0].extension.map.get("KernelPageSize"), Some(&4096));
        assert_eq!(maps[1].pathname, MMapPath::Path(PathBuf::from("/SYSV12")));
        assert_eq!(maps[1].extension.map.get("Size"), Some(&4096));
        assert_eq!(maps[2].pathname, MMapPath::Anonymous);
        assert_eq!(maps[2].extension.map.get("Size"), Some(&8192));
        // A real System V segment is still one.
        let shm = "7f00-7f01 rw-s 00000000 00:01 32769 /SYSV0000002a (deleted)\n";
        assert_eq!(
            memory_maps(shm).map(|m| m.pathname).collect::<Vec<_>>(),
            [MMapPath::Vsys(42)]
        );
        assert_eq!(memory_maps("").count(), 0);
        assert_eq!(memory_maps("Size: 4 kB\n").count(), 0);
    }

    #[test]
    fn every_mapping_of_this_process_is_read() {
        let smaps = fs::read_to_string("/proc/self/smaps").unwrap();
        let lines = smaps
            .lines()
            .filter(|l| !l.starts_with(|c: char| c.is_ascii_uppercase()))
            .count();
        let maps: Vec<MemoryMap> = memory_maps(&smaps).collect();
        assert_eq!(maps.len(), lines);
        assert!(maps.iter().all(|m| m.extension.map.contains_key("Size")));
        let exe = std::env::current_exe().unwrap();
        assert!(
            maps.iter()
                .any(|m| m.pathname == MMapPath::Path(exe.clone()))
        );
    }

    #[test]
    fn look_alike_names_are_not_gpu_libraries() {
        for name in [
            "libcudart_static.a",
            "libc.so.6",
            "libcuda_fake.so",
            "cuda.py",
            "",
        ] {
            assert_eq!(GpuLibrary::of_file_name(name), None, "{name}");
        }
        assert!(GpuLibrary::Cudnn.is_deep_learning());
        assert!(!GpuLibrary::Nvrtc.is_deep_learning());
    }

    #[test]
    fn the_linker_cache_lists_the_driver_libraries() {
        let text = "3 libs found in cache `/etc/ld.so.cache'\n\
            \tlibcuda.so.1 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libcuda.so.1\n\
            \tlibcuda.so (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libcuda.so\n\
            \tlibnvrtc.so.12 (libc6,x86-64) => /usr/local/cuda/lib64/libnvrtc.so.12\n\
            \tlibz.so.1 (libc6,x86-64) => /lib/x86_64-linux-gnu/libz.so.1\n";
        let found = parse_ldconfig(text);
        assert_eq!(found.len(), 3);
        assert!(
            found
                .iter()
                .all(|m| matches!(m.library, GpuLibrary::Cuda | GpuLibrary::Nvrtc))
        );
    }
}
