//! Which chain's native code a process has loaded, by the content of the
//! files it maps: the symbols they define and export, never their names.
//!
//! A chain node written in Python does its consensus work in compiled
//! extension modules: Chia's full node, farmer, harvester and wallet load
//! `chiapos` (proof of space: plot proving and verification), `chiavdf`
//! (the verifiable delay function of its proof of time) and `chia_rs` (its
//! consensus types, BLS signatures and CLVM). CPython finds a module's
//! entry point by the module's own name: an extension imported as
//! `chiapos` must export `PyInit_chiapos` (PEP 489; the C API's "Extension
//! modules" chapter), whatever file it was loaded from. So the export is
//! what the module *is*; the file's name, its directory and the name of
//! the program that loaded it are the process's to choose and are not
//! looked at. Forging it takes building an extension of that name, not a
//! `cp` or a rename.
//!
//! Every file-backed executable mapping of the process is a candidate
//! (bounded by [`MAX_FILES`]); each is read through
//! [`super::identity::visit_exports`] (headers and tables only, bounded)
//! and what it exports is cached by (device, inode, size, mtime): a file
//! mapped by many processes is parsed once. Blocking: workers only.

use std::{
    collections::{BTreeSet, HashMap, VecDeque},
    fs,
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
    sync::Mutex,
};

use procfs::process::MMapPath;

use super::{identity, libraries, open};

/// Distinct files of one process looked at, at most (a Python node maps
/// 100–200).
pub const MAX_FILES: usize = 512;
/// Files remembered, at most (the oldest are forgotten first).
const MAX_CACHED: usize = 4096;

/// A chain's native module, by what it exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Module {
    /// Chia's proof of space (plots): `PyInit_chiapos`.
    Chiapos,
    /// Chia's verifiable delay function (proof of time): `PyInit__chiavdf`
    /// (chiavdf 1.1 on, a package around it), `PyInit_chiavdf` before.
    Chiavdf,
    /// Chia's consensus types, BLS and CLVM in Rust: `PyInit_chia_rs`.
    ChiaRs,
    /// Chia's compact block filters (BIP 158): `PyInit_chiabip158`.
    Chiabip158,
    /// Chia's BLS signatures before chia_rs took them over: `PyInit_blspy`.
    Blspy,
}

impl Module {
    /// The export that makes a file this module.
    pub fn export(self) -> &'static str {
        match self {
            Self::Chiapos => "PyInit_chiapos",
            Self::Chiavdf => "PyInit__chiavdf",
            Self::ChiaRs => "PyInit_chia_rs",
            Self::Chiabip158 => "PyInit_chiabip158",
            Self::Blspy => "PyInit_blspy",
        }
    }

    fn of_export(name: &str) -> Option<Self> {
        if name == "PyInit_chiavdf" {
            return Some(Self::Chiavdf);
        }
        [
            Self::Chiapos,
            Self::Chiavdf,
            Self::ChiaRs,
            Self::Chiabip158,
            Self::Blspy,
        ]
        .into_iter()
        .find(|m| m.export() == name)
    }
}

/// One module a process maps: what it is, the file as the process names
/// it, and its GNU build-id (a fleet can compare it with the releases).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Found {
    pub module: Module,
    pub file: String,
    pub build_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct FileKey {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
}

#[derive(Debug, Default)]
struct Cache {
    known: HashMap<FileKey, (Vec<Module>, Option<String>)>,
    order: VecDeque<FileKey>,
}

/// What files export, cached; shared by the workers.
#[derive(Debug, Default)]
pub struct NativeModules {
    cache: Mutex<Cache>,
}

impl NativeModules {
    /// The chain modules process `pid` maps now (empty when it is gone).
    pub fn mapped_by(&self, pid: u32) -> Vec<Found> {
        let Ok(maps) = fs::read(format!("/proc/{pid}/maps")) else {
            return Vec::new();
        };
        let root = PathBuf::from(format!("/proc/{pid}/root"));
        let mut found = BTreeSet::new();
        for path in executable_files(&String::from_utf8_lossy(&maps)) {
            let (modules, build_id) = self.modules_of(&root, &path);
            for module in modules {
                found.insert(Found {
                    module,
                    file: path.display().to_string(),
                    build_id: build_id.clone(),
                });
            }
        }
        found.into_iter().collect()
    }

    /// The modules the file at `inside`, below `root`, exports.
    pub fn modules_of(&self, root: &Path, inside: &Path) -> (Vec<Module>, Option<String>) {
        let Ok((file, meta)) = open::open_below(root, inside, identity::MAX_LIBRARY_FILE) else {
            return (Vec::new(), None);
        };
        let key = FileKey {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
        };
        if let Some(known) = self.lock().known.get(&key) {
            return known.clone();
        }
        let mut modules = Vec::new();
        let build_id = identity::visit_exports(&file, &mut |name| {
            if let Some(module) = Module::of_export(name)
                && !modules.contains(&module)
            {
                modules.push(module);
            }
        })
        .flatten();
        let result = (modules, build_id);
        let mut cache = self.lock();
        if cache.known.len() >= MAX_CACHED
            && let Some(oldest) = cache.order.pop_front()
        {
            cache.known.remove(&oldest);
        }
        if cache.known.insert(key, result.clone()).is_none() {
            cache.order.push_back(key);
        }
        result
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The distinct files a `/proc/<pid>/maps` text maps executable, in order,
/// at most [`MAX_FILES`]: where loaded code is, whatever it is named.
pub fn executable_files(maps: &str) -> Vec<PathBuf> {
    let mut seen = BTreeSet::new();
    let mut files = Vec::new();
    for mapping in libraries::memory_maps(maps) {
        let MMapPath::Path(path) = mapping.pathname else {
            continue;
        };
        if !mapping
            .perms
            .contains(procfs::process::MMPermissions::EXECUTE)
            || !path.is_absolute()
            || path.to_string_lossy().ends_with(" (deleted)")
        {
            continue;
        }
        if seen.insert(path.clone()) {
            files.push(path);
            if files.len() >= MAX_FILES {
                break;
            }
        }
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("assay-native-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn build(dir: &Path, name: &str, source: &str) {
        let c = dir.join(format!("{name}.c"));
        fs::write(&c, source).unwrap();
        let status = std::process::Command::new("cc")
            .args(["-shared", "-fPIC", "-Wl,--build-id=sha1", "-o"])
            .arg(dir.join(name))
            .arg(&c)
            .status()
            .expect("cc");
        assert!(status.success());
    }

    #[test]
    fn a_module_is_what_it_exports_not_what_its_file_is_called() {
        let dir = scratch("exports");
        // The real module's entry point, in a file named like nothing.
        build(
            &dir,
            "libz-helper.so",
            "void *PyInit_chiapos(void) { return 0; }\n",
        );
        // A file named like the module that exports another module's entry.
        build(
            &dir,
            "chiapos.cpython-311-x86_64-linux-gnu.so",
            "void *PyInit_numpy_core(void) { return 0; }\n",
        );
        // Imports the entry point: calls it, is not it.
        build(
            &dir,
            "chia_rs.so",
            "void *PyInit_chia_rs(void);\nvoid *f(void) { return PyInit_chia_rs(); }\n",
        );
        let modules = NativeModules::default();
        let (found, build_id) = modules.modules_of(&dir, Path::new("/libz-helper.so"));
        assert_eq!(found, [Module::Chiapos]);
        assert_eq!(build_id.map(|b| b.len()), Some(40));
        for name in ["/chiapos.cpython-311-x86_64-linux-gnu.so", "/chia_rs.so"] {
            assert!(
                modules.modules_of(&dir, Path::new(name)).0.is_empty(),
                "{name}"
            );
        }
        // Not ELF, missing, truncated: nothing, no panic.
        fs::write(dir.join("junk.so"), b"\x7fELF\x02\x01").unwrap();
        assert!(modules.modules_of(&dir, Path::new("/junk.so")).0.is_empty());
        assert!(modules.modules_of(&dir, Path::new("/none.so")).0.is_empty());
    }

    #[test]
    fn only_executable_file_mappings_are_candidates_each_once() {
        let maps = "\
7f0000000000-7f0000001000 r--p 00000000 fd:01 12 /venv/lib/chiapos.so
7f0000001000-7f0000002000 r-xp 00001000 fd:01 12 /venv/lib/chiapos.so
7f0000002000-7f0000003000 r-xp 00002000 fd:01 12 /venv/lib/chiapos.so
7f0000003000-7f0000004000 rw-p 00000000 fd:01 13 /data/plot-k32.plot
7f0000004000-7f0000005000 r-xp 00000000 00:00 0 
7f0000005000-7f0000006000 r-xp 00000000 fd:01 14 /tmp/x.so (deleted)
7f0000006000-7f0000007000 r-xp 00000000 fd:01 15 /opt/renamed
not a mapping
";
        assert_eq!(
            executable_files(maps),
            [
                PathBuf::from("/venv/lib/chiapos.so"),
                PathBuf::from("/opt/renamed")
            ]
        );
        // This test process: its own executable is among them.
        let own = executable_files(&fs::read_to_string("/proc/self/maps").unwrap());
        assert!(own.contains(&std::env::current_exe().unwrap()));
        assert!(
            NativeModules::default()
                .mapped_by(std::process::id())
                .is_empty()
        );
    }
}
