//! What a GPU library file is, by its content: the symbols its ELF dynamic
//! symbol table defines and exports, never its file name.
//!
//! Which libraries a process maps is evidence for the GPU classifier:
//! cuBLAS, cuDNN, NCCL, TensorRT or PyTorch mean deep learning, and pull a
//! verdict away from GPU mining. A file's name is the process's to choose:
//! a miner that maps any file it named `libcublas.so.12` would pass for a
//! training job. So a file whose name says "cuBLAS" is opened and counts as
//! cuBLAS only if it *defines and exports* cuBLAS's API (`cublasCreate_v2`,
//! `cublas…`); a library that merely imports those symbols (PyTorch calls
//! cuBLAS) is not cuBLAS. A file named like a GPU library whose content
//! does not say so is *unidentified*: counted, named in the evidence, and
//! no evidence of anything. Its GNU build-id, when it has one, is reported
//! with what it was identified as (a fleet can compare it with the
//! vendor's builds).
//!
//! Forging the exports takes a purpose-built ELF rather than a `cp`; what
//! this closes is the free disguise. The rules per library are in
//! [`SIGNATURES`].
//!
//! The file is hostile input: it is opened through [`super::open`]
//! (resolved inside the process's root, regular files only, no FIFO waits)
//! and only its ELF header, section headers, dynamic symbol and string
//! tables and notes are read, each under a bound ([`MAX_TABLE`]): a
//! malformed or huge file costs a bounded read and reads as unidentified.
//! Real libraries are large (cuBLASLt is ~500 MB) and mapped by many
//! processes, so what a file is is cached by (device, inode, size, mtime):
//! parsed once however many processes map it, and again when it changes.
//! Everything here blocks on file reads: the agent runs it on its bounded
//! workers only.

use std::{
    collections::{HashMap, VecDeque},
    fs::File,
    os::unix::fs::MetadataExt as _,
    path::Path,
    sync::Mutex,
};

use object::{
    Endianness,
    elf::{self, FileHeader32, FileHeader64},
    read::{
        ReadCache,
        elf::{FileHeader, SectionHeader as _, Sym as _},
    },
};

use super::{
    libraries::GpuLibrary,
    open::{self, Refused},
};

/// Library files larger than this are not opened (the largest real ones,
/// libtorch_cuda and cuDNN's engines, are about 1 GB).
pub const MAX_LIBRARY_FILE: u64 = 4 << 30;
/// Bytes read of one table (section headers, dynamic symbols, their
/// strings), at most: a file whose tables are larger is unidentified.
pub const MAX_TABLE: u64 = 64 << 20;
/// Notes sections larger than this are not looked at for a build-id.
const MAX_NOTES: u64 = 64 << 10;
/// Files remembered, at most (the oldest are forgotten first).
pub const MAX_CACHED: usize = 4096;

/// How a library shows in its exports: a defined, exported symbol with one
/// of these exact names or beginning with one of these prefixes.
struct Signature {
    library: GpuLibrary,
    exact: &'static [&'static str],
    prefixes: &'static [&'static str],
}

/// Each library's public API, as its own headers name it. Prefixes where
/// the library's whole API shares one (every cuBLAS and cuBLASLt entry
/// point begins `cublas`, every cuDNN 9 sub-library's `cudnn`); exact
/// entry points where it does not.
const SIGNATURES: [Signature; 10] = [
    Signature {
        library: GpuLibrary::Cuda,
        exact: &["cuInit", "cuGetProcAddress", "cuGetProcAddress_v2"],
        prefixes: &[],
    },
    Signature {
        library: GpuLibrary::Nvrtc,
        exact: &[],
        prefixes: &["nvrtc"],
    },
    Signature {
        library: GpuLibrary::Cublas,
        exact: &[],
        prefixes: &["cublas"],
    },
    Signature {
        library: GpuLibrary::Cudnn,
        exact: &[],
        prefixes: &["cudnn"],
    },
    Signature {
        library: GpuLibrary::Nccl,
        exact: &[],
        prefixes: &["nccl"],
    },
    Signature {
        library: GpuLibrary::TensorRt,
        exact: &[
            "getInferLibVersion",
            "createInferBuilder_INTERNAL",
            "createInferRuntime_INTERNAL",
            "initLibNvInferPlugins",
        ],
        prefixes: &[],
    },
    Signature {
        library: GpuLibrary::Torch,
        exact: &[],
        // c10::cuda::, at::cuda::, torch::cuda:: (Itanium mangling).
        prefixes: &["_ZN3c104cuda", "_ZN2at4cuda", "_ZN5torch4cuda"],
    },
    Signature {
        library: GpuLibrary::Cupy,
        // CuPy's compiled modules are Python extensions: each defines its
        // module's init function (weak: any extension module does).
        exact: &[],
        prefixes: &["PyInit_"],
    },
    Signature {
        library: GpuLibrary::OnnxRuntime,
        exact: &[
            "OrtGetApiBase",
            "OrtSessionOptionsAppendExecutionProvider_CUDA",
        ],
        prefixes: &[],
    },
    Signature {
        library: GpuLibrary::Xla,
        exact: &["GetPjrtApi", "PyInit_xla_extension"],
        prefixes: &["_ZN3xla"],
    },
];

/// What a library file's content says it is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Identity {
    /// The library its exports show; `None`: unidentified.
    pub library: Option<GpuLibrary>,
    /// Its GNU build-id, in hex.
    pub build_id: Option<String>,
}

/// What identifying files cost and found, for the exit summary and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IdentityStats {
    /// Files parsed (a cache miss).
    pub parsed: u64,
    /// Files parsed that did not show the library their name claims.
    pub unidentified: u64,
    /// Files that could not be opened or read as ELF at all.
    pub unreadable: u64,
    /// Lookups answered from the cache.
    pub cached: u64,
}

/// A file, as the kernel tells versions of it apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct FileKey {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
}

#[derive(Debug, Default)]
struct Cache {
    known: HashMap<FileKey, Identity>,
    order: VecDeque<FileKey>,
    stats: IdentityStats,
}

/// Library identities, cached; shared by the workers (a lock held only to
/// look up and to insert, never while a file is read).
#[derive(Debug, Default)]
pub struct Identities {
    cache: Mutex<Cache>,
}

impl Identities {
    /// What the file at `inside`, resolved below `root` (a process's
    /// `/proc/<pid>/root`, or `/`), is; a file whose content shows no GPU
    /// library is counted unidentified. Blocks: run it on a worker.
    pub fn identify(&self, root: &Path, inside: &Path) -> Identity {
        let (file, meta) = match open::open_below(root, inside, MAX_LIBRARY_FILE) {
            Ok(opened) => opened,
            Err(Refused::NotFound) => return Identity::default(),
            Err(_) => {
                self.lock().stats.unreadable += 1;
                return Identity::default();
            }
        };
        let key = FileKey {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
        };
        {
            let mut cache = self.lock();
            if let Some(identity) = cache.known.get(&key).cloned() {
                cache.stats.cached += 1;
                return identity;
            }
        }
        let parsed = read_exports(&file);
        let mut cache = self.lock();
        cache.stats.parsed += 1;
        let identity = match parsed {
            Some(exports) => {
                let identity = Identity {
                    library: exports.library(),
                    build_id: exports.build_id,
                };
                if identity.library.is_none() {
                    cache.stats.unidentified += 1;
                }
                identity
            }
            None => {
                cache.stats.unreadable += 1;
                Identity::default()
            }
        };
        if cache.known.len() >= MAX_CACHED
            && let Some(oldest) = cache.order.pop_front()
        {
            cache.known.remove(&oldest);
        }
        if cache.known.insert(key, identity.clone()).is_none() {
            cache.order.push_back(key);
        }
        identity
    }

    pub fn stats(&self) -> IdentityStats {
        self.lock().stats
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        // A worker that panicked while holding the lock left a consistent
        // map (every update is one insert or remove): go on with it.
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// What an ELF file exports, as far as identification needs.
#[derive(Debug, Default)]
struct Exports {
    /// Which signatures its defined, exported symbols matched, in
    /// [`SIGNATURES`] order.
    matched: Vec<GpuLibrary>,
    build_id: Option<String>,
}

impl Exports {
    /// The library the exports show: a file that shows several (none
    /// real does) is the first in [`SIGNATURES`] order.
    fn library(&self) -> Option<GpuLibrary> {
        self.matched.first().copied()
    }
}

/// The exports of an ELF file, reading only its headers and tables; `None`
/// when it is not an ELF file or a table is malformed or over the bound.
fn read_exports(file: &File) -> Option<Exports> {
    let mut matched = [false; SIGNATURES.len()];
    let build_id = visit_exports(file, &mut |name| {
        for (i, signature) in SIGNATURES.iter().enumerate() {
            matched[i] |= signature.exact.contains(&name)
                || signature.prefixes.iter().any(|p| name.starts_with(p));
        }
    })?;
    Some(Exports {
        matched: SIGNATURES
            .iter()
            .zip(matched)
            .filter_map(|(s, m)| m.then_some(s.library))
            .collect(),
        build_id,
    })
}

/// Calls `visit` with the name of every symbol an ELF file defines and
/// exports (global or weak, default or protected visibility, defined),
/// reading only its headers and tables under [`MAX_TABLE`]; returns its
/// GNU build-id (`Some(None)`: it has none), or `None` when it is not an
/// ELF file or a table is malformed or over the bound. Shared by the GPU
/// library signatures here and the native modules of
/// [`super::native_modules`].
pub(super) fn visit_exports(file: &File, visit: &mut dyn FnMut(&str)) -> Option<Option<String>> {
    use object::ReadRef as _;
    let data = ReadCache::new(file);
    let ident = (&data).read_bytes_at(0, 16).ok()?;
    if ident[..4] != elf::ELFMAG {
        return None;
    }
    match ident[4] {
        elf::ELFCLASS64 => exports_of::<FileHeader64<Endianness>>(&data, visit),
        elf::ELFCLASS32 => exports_of::<FileHeader32<Endianness>>(&data, visit),
        _ => None,
    }
}

fn exports_of<'a, Elf: FileHeader<Endian = Endianness>>(
    data: &'a ReadCache<&'a File>,
    visit: &mut dyn FnMut(&str),
) -> Option<Option<String>> {
    let header = Elf::parse(data).ok()?;
    let endian = header.endian().ok()?;
    let count: u64 = header.shnum(endian, data).ok()? as u64;
    if count.saturating_mul(size_of::<Elf::SectionHeader>() as u64) > MAX_TABLE {
        return None;
    }
    let sections = header.section_headers(endian, data).ok()?;
    let mut build_id = None;
    for section in sections {
        if section.sh_type(endian) == elf::SHT_NOTE
            && section.sh_size(endian).into() <= MAX_NOTES
            && build_id.is_none()
        {
            build_id = self::build_id::<Elf>(section, endian, data);
        }
    }
    let Some(dynsym) = sections
        .iter()
        .find(|s| s.sh_type(endian) == elf::SHT_DYNSYM)
    else {
        // No dynamic symbols: a shared library that exports nothing.
        return Some(build_id);
    };
    let strings = sections.get(dynsym.sh_link(endian) as usize)?;
    if dynsym.sh_size(endian).into() > MAX_TABLE || strings.sh_size(endian).into() > MAX_TABLE {
        return None;
    }
    let symbols: &[Elf::Sym] = dynsym.data_as_array(endian, data).ok()?;
    let names = strings.data(endian, data).ok()?;
    for symbol in symbols {
        let exported = matches!(symbol.st_bind(), elf::STB_GLOBAL | elf::STB_WEAK)
            && matches!(
                symbol.st_visibility(),
                elf::STV_DEFAULT | elf::STV_PROTECTED
            )
            && symbol.st_shndx(endian) != elf::SHN_UNDEF;
        if !exported {
            continue;
        }
        if let Some(name) = name_at(names, symbol.st_name(endian)) {
            visit(name);
        }
    }
    Some(build_id)
}

/// The NUL-terminated name at `offset` in a string table.
fn name_at(table: &[u8], offset: u32) -> Option<&str> {
    let rest = table.get(offset as usize..)?;
    let end = rest.iter().position(|&b| b == 0)?;
    std::str::from_utf8(&rest[..end]).ok()
}

fn build_id<'a, Elf: FileHeader<Endian = Endianness>>(
    section: &Elf::SectionHeader,
    endian: Endianness,
    data: &'a ReadCache<&'a File>,
) -> Option<String> {
    let mut notes = section.notes(endian, data).ok()??;
    while let Ok(Some(note)) = notes.next() {
        if note.name() == elf::ELF_NOTE_GNU && note.n_type(endian) == elf::NT_GNU_BUILD_ID {
            return Some(note.desc().iter().map(|b| format!("{b:02x}")).collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use std::{fs, path::PathBuf};

    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("assay-identity-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A shared library of this machine that is no GPU library (libc: on
    /// every Linux host the tests run on).
    fn some_shared_library() -> PathBuf {
        let maps = fs::read_to_string("/proc/self/maps").unwrap();
        let path = maps
            .lines()
            .filter_map(|l| l.split_whitespace().nth(5))
            .find(|p| p.contains("/libc.so") || p.contains("/libc-"))
            .expect("this test process maps libc");
        PathBuf::from(path)
    }

    #[test]
    fn a_copy_of_another_library_named_like_cublas_is_unidentified_and_counted() {
        let dir = scratch("renamed");
        fs::copy(some_shared_library(), dir.join("libcublas.so.12")).unwrap();
        let identities = Identities::default();
        let identity = identities.identify(&dir, Path::new("/libcublas.so.12"));
        assert_eq!(identity.library, None);
        let stats = identities.stats();
        assert_eq!((stats.parsed, stats.unidentified), (1, 1));
    }

    #[test]
    fn a_library_is_parsed_once_and_again_when_it_changes() {
        let dir = scratch("cache");
        fs::copy(some_shared_library(), dir.join("libcudnn.so.9")).unwrap();
        let identities = Identities::default();
        for _ in 0..3 {
            identities.identify(&dir, Path::new("libcudnn.so.9"));
        }
        assert_eq!(identities.stats().parsed, 1);
        assert_eq!(identities.stats().cached, 2);
        // A new file under the same name (as an upgrade writes it).
        fs::remove_file(dir.join("libcudnn.so.9")).unwrap();
        fs::write(dir.join("libcudnn.so.9"), b"not an ELF file").unwrap();
        assert_eq!(
            identities.identify(&dir, Path::new("libcudnn.so.9")),
            Identity::default()
        );
        let stats = identities.stats();
        assert_eq!((stats.parsed, stats.unreadable), (2, 1));
    }

    #[test]
    fn hostile_files_are_unreadable_not_a_panic() {
        let dir = scratch("hostile");
        let real = fs::read(some_shared_library()).unwrap();
        let identities = Identities::default();
        // Truncated anywhere in its headers, and with every byte of the
        // ELF header in turn corrupted.
        for (i, len) in [0usize, 4, 16, 63, 64, 65, 4096].into_iter().enumerate() {
            let name = format!("libnccl-{i}.so.2");
            fs::write(dir.join(&name), &real[..len.min(real.len())]).unwrap();
            assert_eq!(identities.identify(&dir, Path::new(&name)).library, None);
        }
        for at in 0..64 {
            let mut bytes = real.clone();
            bytes[at] ^= 0xff;
            let name = format!("libnccl-x{at}.so.2");
            fs::write(dir.join(&name), &bytes).unwrap();
            assert_eq!(identities.identify(&dir, Path::new(&name)).library, None);
        }
        // A missing file is nothing, and not counted.
        assert_eq!(
            identities.identify(Path::new("/"), Path::new("/nonexistent/libcublas.so")),
            Identity::default()
        );
    }

    #[test]
    fn the_cache_is_bounded() {
        let dir = scratch("bounded");
        fs::copy(some_shared_library(), dir.join("lib.so")).unwrap();
        let identities = Identities::default();
        {
            let mut cache = identities.lock();
            for ino in 0..MAX_CACHED as u64 {
                let key = FileKey {
                    dev: 0,
                    ino,
                    size: 0,
                    mtime: (0, 0),
                };
                cache.known.insert(key, Identity::default());
                cache.order.push_back(key);
            }
        }
        identities.identify(&dir, Path::new("lib.so"));
        let cache = identities.lock();
        assert_eq!(cache.known.len(), MAX_CACHED);
        assert_eq!(cache.order.len(), MAX_CACHED);
    }

    /// A shared library built from C `source` by the system's C compiler
    /// (the one cargo links with).
    fn build(dir: &Path, name: &str, source: &str, link: &[&str]) {
        let c = dir.join(format!("{name}.c"));
        fs::write(&c, source).unwrap();
        let status = std::process::Command::new("cc")
            .args(["-shared", "-fPIC", "-o"])
            .arg(dir.join(name))
            .arg(&c)
            .args(link)
            .status()
            .expect("cc");
        assert!(status.success());
    }

    #[test]
    fn a_library_that_defines_the_api_is_identified_one_that_calls_it_is_not() {
        let dir = scratch("built");
        build(
            &dir,
            "libcublas.so.12",
            "int cublasCreate_v2(void **h) { *h = 0; return 0; }\n\
             int cublasSgemm_v2(void) { return 0; }\n",
            &["-Wl,--build-id=sha1"],
        );
        // A framework that calls cuBLAS: it imports cublasCreate_v2.
        build(
            &dir,
            "libtorch_cuda.so",
            "int cublasCreate_v2(void **h);\n\
             int train(void) { void *h; return cublasCreate_v2(&h); }\n",
            &[],
        );
        // Hidden definitions are not exports.
        build(
            &dir,
            "libcudnn.so.9",
            "__attribute__((visibility(\"hidden\"))) int cudnnCreate(void) { return 0; }\n\
             int other(void) { return cudnnCreate(); }\n",
            &[],
        );
        let identities = Identities::default();
        let cublas = identities.identify(&dir, Path::new("/libcublas.so.12"));
        assert_eq!(cublas.library, Some(GpuLibrary::Cublas));
        assert_eq!(cublas.build_id.as_ref().map(String::len), Some(40));
        assert_eq!(
            identities
                .identify(&dir, Path::new("/libtorch_cuda.so"))
                .library,
            None
        );
        assert_eq!(
            identities
                .identify(&dir, Path::new("/libcudnn.so.9"))
                .library,
            None
        );
        assert_eq!(identities.stats().unidentified, 2);
    }

    #[test]
    fn exports_are_matched_by_definition_not_by_import() {
        // libc defines no GPU API; it is readable and shows nothing.
        let file = File::open(some_shared_library()).unwrap();
        let exports = read_exports(&file).unwrap();
        assert!(exports.matched.is_empty(), "{:?}", exports.matched);
        // The names rule.
        assert_eq!(name_at(b"\0cublasCreate_v2\0", 1), Some("cublasCreate_v2"));
        assert_eq!(name_at(b"abc", 1), None);
        assert_eq!(name_at(b"abc\0", 9), None);
    }
}
