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

use std::{
    collections::BTreeSet,
    fs,
    path::{Path, PathBuf},
    process::Command,
};

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

/// One GPU library mapped by a process: what it is, and the path to reach
/// its file from the agent's mount namespace.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Mapped {
    pub library: GpuLibrary,
    pub path: PathBuf,
}

/// The GPU libraries in the text of a `/proc/<pid>/maps`, each once. Paths
/// are as the process sees them; `root` (the process's `/proc/<pid>/root`)
/// is prefixed so that the agent can open them across mount namespaces.
pub fn parse_maps(maps: &str, root: &Path) -> BTreeSet<Mapped> {
    let mut found = BTreeSet::new();
    for line in maps.lines() {
        // address perms offset dev inode pathname (the path may hold spaces)
        let mut fields = line.splitn(6, ' ');
        let Some(path) = fields.nth(5).map(str::trim_start) else {
            continue;
        };
        if !path.starts_with('/') || path.ends_with(" (deleted)") {
            continue;
        }
        let Some(name) = Path::new(path).file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if let Some(library) = GpuLibrary::of_file_name(name) {
            found.insert(Mapped {
                library,
                path: root.join(path.trim_start_matches('/')),
            });
        }
    }
    found
}

/// The GPU libraries process `pid` maps now (empty when it is gone).
pub fn mapped_by(pid: u32) -> BTreeSet<Mapped> {
    let Ok(maps) = fs::read_to_string(format!("/proc/{pid}/maps")) else {
        return BTreeSet::new();
    };
    parse_maps(&maps, &PathBuf::from(format!("/proc/{pid}/root")))
}

/// The driver libraries the host's linker cache knows (`ldconfig -p`):
/// found before any process loads them, so that the first calls of a new
/// CUDA program are seen.
pub fn from_linker_cache() -> Vec<Mapped> {
    let Ok(output) = Command::new("ldconfig").arg("-p").output() else {
        return Vec::new();
    };
    parse_ldconfig(&String::from_utf8_lossy(&output.stdout))
}

/// `\tlibcuda.so.1 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libcuda.so.1`
pub fn parse_ldconfig(text: &str) -> Vec<Mapped> {
    let mut found: Vec<Mapped> = text
        .lines()
        .filter_map(|line| {
            let (name, path) = line.trim().split_once(" => ")?;
            let name = name.split_whitespace().next()?;
            let library = GpuLibrary::of_file_name(name)?;
            matches!(library, GpuLibrary::Cuda | GpuLibrary::Nvrtc).then(|| Mapped {
                library,
                path: PathBuf::from(path.trim()),
            })
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
