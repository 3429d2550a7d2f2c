//! GPU workload emulators for machines without a GPU: programs that load
//! the stand-in CUDA libraries (tests/fake-cuda/README.md) at run time, as
//! real CUDA programs load the real ones, and call the driver API in the
//! patterns of a miner, a training job, an inference server, or (for the
//! benchmark) a bare launch loop. The libraries do no GPU work; what is
//! real is the calls, so the CUDA sensor's uprobes fire for real, and
//! `/proc/<pid>/maps` lists the libraries by their real file names.
//!
//! Output on stdout: `loaded <pid>` once the libraries are mapped (only
//! with `--wait-stdin`, which then waits for a line on stdin before the
//! first call), `ready <pid>` once the set-up calls are made, and
//! `done launches <n>` at the end. `launch-loop` prints only
//! `ops <launches> secs <elapsed>`, the shape `assay-load` prints for the
//! benchmark harness.

use std::{
    ffi::{CStr, CString, c_char, c_int, c_uint, c_void},
    io::BufRead as _,
    path::{Path, PathBuf},
    ptr, thread,
    time::{Duration, Instant},
};

use anyhow::{Result, bail, ensure};
use clap::{Parser, ValueEnum};

#[derive(Debug, Parser)]
#[command(about = "Calls the stand-in CUDA libraries like a miner, a trainer or a server")]
struct Cli {
    /// The directory holding libcuda.so.1, libnvrtc.so.12, libcublas.so.12,
    /// libcudnn.so.9 and libnccl.so.2 (the tests' `fake_cuda_dir()`).
    #[arg(long)]
    lib_dir: PathBuf,
    #[arg(long, value_enum)]
    pattern: Pattern,
    /// How long the launch phase runs.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Launch-loop: host time one launch costs in the real driver, spun
    /// after each call to the stand-in (which costs ~20 ns). 0: none, the
    /// stand-in's bare cost; the benchmark also runs 4 µs, about what
    /// `cuLaunchKernel` costs the host on current drivers.
    #[arg(long, default_value_t = 0.0)]
    launch_cost_us: f64,
    /// Miner: milliseconds between launches.
    #[arg(long, default_value_t = 2.0)]
    interval_ms: f64,
    /// Miner: read the 8-byte result back every this many launches.
    #[arg(long, default_value_t = 4)]
    copy_every: u64,
    /// Miner: the DAG allocated once, in MiB (ethash's is ~4 GiB in 2024).
    #[arg(long, default_value_t = 4608)]
    dag_mib: u64,
    /// Training: milliseconds a step takes (the GPU time the launches stand
    /// for, waited out after each step's launches).
    #[arg(long, default_value_t = 30.0)]
    step_ms: f64,
    /// Seed for the shapes, counts and gaps.
    #[arg(long, default_value_t = 0x5eed)]
    seed: u64,
    /// Print `loaded <pid>` once the libraries are mapped, and wait for a
    /// line on stdin before calling anything.
    #[arg(long)]
    wait_stdin: bool,
    /// Files to map read-only for the process's life, as a disguise: a
    /// miner mapping any file it named `libcublas.so.12` so that its maps
    /// list "cuBLAS" (issue #15). Repeatable.
    #[arg(long)]
    decoy: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Pattern {
    /// One kernel compiled at run time (NVRTC), a DAG allocation, then the
    /// same launch at a steady beat with tiny result reads.
    Miner,
    /// cuBLAS/cuDNN/NCCL mapped, ~200 PyTorch-named kernels, GiBs of
    /// allocations, then steps of 50–150 launches of varied shapes and a
    /// few MiB copied in per step.
    Training,
    /// DL libraries mapped, ~30 kernels, bursts of launches (requests)
    /// separated by idle gaps of 100–500 ms.
    Inference,
    /// One function launched as fast as possible (the benchmark's CUDA
    /// sensor cost).
    LaunchLoop,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let dir = &cli.lib_dir;
    let _decoys: Vec<Decoy> = cli
        .decoy
        .iter()
        .map(|path| Decoy::map(path))
        .collect::<Result<_>>()?;
    // The driver is opened first: the fake cuBLAS finds it by SONAME.
    let cuda_lib = Library::open(&dir.join("libcuda.so.1"))?;
    let libraries = match cli.pattern {
        Pattern::Miner => vec![Library::open(&dir.join("libnvrtc.so.12"))?],
        Pattern::Training | Pattern::Inference => vec![
            Library::open(&dir.join("libcublas.so.12"))?,
            Library::open(&dir.join("libcudnn.so.9"))?,
            Library::open(&dir.join("libnccl.so.2"))?,
        ],
        Pattern::LaunchLoop => Vec::new(),
    };
    if cli.wait_stdin {
        println!("loaded {}", std::process::id());
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
    }
    let deadline = |start: Instant| start + Duration::from_secs_f64(cli.seconds);
    let mut rng = Rng(cli.seed | 1);
    match cli.pattern {
        Pattern::Miner => {
            let cuda = Cuda::by_dlsym(&cuda_lib)?;
            miner(&cuda, &libraries[0], &cli, deadline)
        }
        Pattern::Training => {
            let cuda = Cuda::by_get_proc_address(&cuda_lib)?;
            training(&cuda, &libraries, &cli, &mut rng, deadline)
        }
        Pattern::Inference => {
            let cuda = Cuda::by_get_proc_address(&cuda_lib)?;
            inference(&cuda, &libraries, &mut rng, deadline)
        }
        Pattern::LaunchLoop => {
            let cuda = Cuda::by_dlsym(&cuda_lib)?;
            launch_loop(&cuda, &cli)
        }
    }
}

/// A shared object opened with `dlopen`, kept mapped until exit.
struct Library {
    handle: *mut c_void,
    path: PathBuf,
}

impl Library {
    fn open(path: &Path) -> Result<Self> {
        let c_path = CString::new(path.as_os_str().as_encoded_bytes())?;
        // SAFETY: a NUL-terminated path; the libraries' initialisers are
        // Rust's (the stand-ins).
        let handle = unsafe { libc::dlopen(c_path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if handle.is_null() {
            bail!("dlopen {}: {}", path.display(), dlerror());
        }
        Ok(Self {
            handle,
            path: path.to_owned(),
        })
    }

    /// The address of `name`.
    fn symbol(&self, name: &CStr) -> Result<*mut c_void> {
        // SAFETY: a live handle and a NUL-terminated name.
        let f = unsafe { libc::dlsym(self.handle, name.as_ptr()) };
        ensure!(
            !f.is_null(),
            "{} does not export {name:?}",
            self.path.display()
        );
        Ok(f)
    }
}

/// A file mapped, never loaded: `/proc/<pid>/maps` lists it by its name.
struct Decoy(*mut c_void, usize);

impl Decoy {
    fn map(path: &Path) -> Result<Self> {
        let file = std::fs::File::open(path)?;
        let len = file.metadata()?.len() as usize;
        ensure!(len > 0, "{}: empty", path.display());
        // SAFETY: a fresh private read-only mapping of an open file; the
        // fd may close after mmap.
        let address = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                std::os::fd::AsRawFd::as_raw_fd(&file),
                0,
            )
        };
        ensure!(address != libc::MAP_FAILED, "mmap {}", path.display());
        Ok(Self(address, len))
    }
}

impl Drop for Decoy {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `map`, unused after this.
        unsafe { libc::munmap(self.0, self.1) };
    }
}

fn dlerror() -> String {
    // SAFETY: dlerror returns null or a NUL-terminated message.
    let message = unsafe { libc::dlerror() };
    if message.is_null() {
        return "unknown error".into();
    }
    // SAFETY: non-null, NUL-terminated (above).
    unsafe { CStr::from_ptr(message) }
        .to_string_lossy()
        .into_owned()
}

/// Reinterprets a symbol's address as the function pointer type `F`.
///
/// # Safety
///
/// `address` is a function with `F`'s signature.
unsafe fn as_fn<F: Copy>(address: *mut c_void) -> F {
    const { assert!(size_of::<F>() == size_of::<*mut c_void>()) };
    // SAFETY: same size (checked); the signature per the caller.
    unsafe { std::mem::transmute_copy(&address) }
}

type CuResult = c_uint;
type Handle = *mut c_void;

/// `CUlaunchConfig` (cuda.h, CUDA 12).
#[repr(C)]
struct LaunchConfig {
    grid: [c_uint; 3],
    block: [c_uint; 3],
    shared_mem_bytes: c_uint,
    stream: Handle,
    attrs: *mut c_void,
    num_attrs: c_uint,
}

/// The driver API entry points the emulators call.
struct Cuda {
    init: unsafe extern "C" fn(c_uint) -> CuResult,
    device_get: unsafe extern "C" fn(*mut c_int, c_int) -> CuResult,
    device_get_name: unsafe extern "C" fn(*mut c_char, c_int, c_int) -> CuResult,
    ctx_create: unsafe extern "C" fn(*mut Handle, c_uint, c_int) -> CuResult,
    primary_ctx_retain: unsafe extern "C" fn(*mut Handle, c_int) -> CuResult,
    ctx_synchronize: unsafe extern "C" fn() -> CuResult,
    stream_synchronize: unsafe extern "C" fn(Handle) -> CuResult,
    module_load_data: unsafe extern "C" fn(*mut Handle, *const c_void) -> CuResult,
    module_load_data_ex: unsafe extern "C" fn(
        *mut Handle,
        *const c_void,
        c_uint,
        *mut c_uint,
        *mut *mut c_void,
    ) -> CuResult,
    module_get_function: unsafe extern "C" fn(*mut Handle, Handle, *const c_char) -> CuResult,
    library_load_data: unsafe extern "C" fn(
        *mut Handle,
        *const c_void,
        *mut c_uint,
        *mut *mut c_void,
        c_uint,
        *mut c_uint,
        *mut *mut c_void,
        c_uint,
    ) -> CuResult,
    library_get_kernel: unsafe extern "C" fn(*mut Handle, Handle, *const c_char) -> CuResult,
    mem_alloc: unsafe extern "C" fn(*mut u64, usize) -> CuResult,
    memcpy_htod: unsafe extern "C" fn(u64, *const c_void, usize) -> CuResult,
    memcpy_dtoh: unsafe extern "C" fn(*mut c_void, u64, usize) -> CuResult,
    launch_kernel: unsafe extern "C" fn(
        Handle,
        c_uint,
        c_uint,
        c_uint,
        c_uint,
        c_uint,
        c_uint,
        c_uint,
        Handle,
        *mut *mut c_void,
        *mut *mut c_void,
    ) -> CuResult,
    launch_kernel_ex: unsafe extern "C" fn(
        *const LaunchConfig,
        Handle,
        *mut *mut c_void,
        *mut *mut c_void,
    ) -> CuResult,
    get_error_name: unsafe extern "C" fn(CuResult, *mut *const c_char) -> CuResult,
}

/// Each entry point's exported symbol and the name the CUDA runtime asks
/// `cuGetProcAddress` for.
const ENTRY_POINTS: [(&CStr, &CStr); 18] = [
    (c"cuInit", c"cuInit"),
    (c"cuDeviceGet", c"cuDeviceGet"),
    (c"cuDeviceGetName", c"cuDeviceGetName"),
    (c"cuCtxCreate_v2", c"cuCtxCreate"),
    (c"cuCtxSynchronize", c"cuCtxSynchronize"),
    (c"cuStreamSynchronize", c"cuStreamSynchronize"),
    (c"cuModuleLoadData", c"cuModuleLoadData"),
    (c"cuModuleLoadDataEx", c"cuModuleLoadDataEx"),
    (c"cuModuleGetFunction", c"cuModuleGetFunction"),
    (c"cuLibraryLoadData", c"cuLibraryLoadData"),
    (c"cuLibraryGetKernel", c"cuLibraryGetKernel"),
    (c"cuMemAlloc_v2", c"cuMemAlloc"),
    (c"cuMemcpyHtoD_v2", c"cuMemcpyHtoD"),
    (c"cuMemcpyDtoH_v2", c"cuMemcpyDtoH"),
    (c"cuLaunchKernel", c"cuLaunchKernel"),
    (c"cuLaunchKernelEx", c"cuLaunchKernelEx"),
    (c"cuGetErrorName", c"cuGetErrorName"),
    (c"cuDevicePrimaryCtxRetain", c"cuDevicePrimaryCtxRetain"),
];

type GetProcAddress =
    unsafe extern "C" fn(*const c_char, *mut *mut c_void, c_int, u64, *mut c_int) -> CuResult;

impl Cuda {
    /// Every entry point by its exported symbol, as a program linked
    /// against libcuda (a miner) reaches them.
    fn by_dlsym(lib: &Library) -> Result<Self> {
        Self::resolve(|symbol, _| lib.symbol(symbol))
    }

    /// Only `cuGetProcAddress_v2` by symbol, the rest through it, as the
    /// CUDA runtime (so PyTorch) reaches them since CUDA 12.
    fn by_get_proc_address(lib: &Library) -> Result<Self> {
        // SAFETY: cuda.h's signature of cuGetProcAddress_v2.
        let get: GetProcAddress = unsafe { as_fn(lib.symbol(c"cuGetProcAddress_v2")?) };
        Self::resolve(|_, name| {
            let mut f = ptr::null_mut();
            let mut status = 0;
            // SAFETY: a NUL-terminated name and writable out-pointers.
            let result = unsafe { get(name.as_ptr(), &mut f, 12040, 0, &mut status) };
            ensure!(
                result == 0 && !f.is_null(),
                "cuGetProcAddress_v2({name:?}) failed: {result} (status {status})"
            );
            Ok(f)
        })
    }

    fn resolve(lookup: impl Fn(&CStr, &CStr) -> Result<*mut c_void>) -> Result<Self> {
        let mut found = Vec::with_capacity(ENTRY_POINTS.len());
        for (symbol, name) in ENTRY_POINTS {
            found.push(lookup(symbol, name)?);
        }
        let f = |n: usize| found[n];
        // SAFETY: each address is the entry point ENTRY_POINTS names at that
        // index, whose signature (cuda.h) is the field's.
        unsafe {
            Ok(Self {
                init: as_fn(f(0)),
                device_get: as_fn(f(1)),
                device_get_name: as_fn(f(2)),
                ctx_create: as_fn(f(3)),
                ctx_synchronize: as_fn(f(4)),
                stream_synchronize: as_fn(f(5)),
                module_load_data: as_fn(f(6)),
                module_load_data_ex: as_fn(f(7)),
                module_get_function: as_fn(f(8)),
                library_load_data: as_fn(f(9)),
                library_get_kernel: as_fn(f(10)),
                mem_alloc: as_fn(f(11)),
                memcpy_htod: as_fn(f(12)),
                memcpy_dtoh: as_fn(f(13)),
                launch_kernel: as_fn(f(14)),
                launch_kernel_ex: as_fn(f(15)),
                get_error_name: as_fn(f(16)),
                primary_ctx_retain: as_fn(f(17)),
            })
        }
    }

    /// `Ok` for CUDA_SUCCESS, otherwise an error naming the call and the
    /// driver's name for the code.
    fn check(&self, result: CuResult, call: &str) -> Result<()> {
        if result == 0 {
            return Ok(());
        }
        let mut name = ptr::null();
        // SAFETY: a writable out-pointer; the name, when set, is static.
        let known = unsafe { (self.get_error_name)(result, &mut name) } == 0 && !name.is_null();
        let name = if known {
            // SAFETY: non-null, NUL-terminated (the driver's static text).
            unsafe { CStr::from_ptr(name) }
                .to_string_lossy()
                .into_owned()
        } else {
            format!("CUresult {result}")
        };
        bail!("{call} failed: {name}")
    }

    /// cuInit, device 0, a context on it: a new one as driver API
    /// programs make, or the device's primary one as the CUDA runtime
    /// (so PyTorch) takes.
    fn open_context(&self, primary: bool) -> Result<Handle> {
        // SAFETY: here and below in this impl, the fake driver's entry
        // points, called with writable out-pointers and live buffers as
        // cuda.h requires.
        unsafe {
            self.check((self.init)(0), "cuInit")?;
            let mut device = -1;
            self.check((self.device_get)(&mut device, 0), "cuDeviceGet")?;
            let mut name = [0 as c_char; 64];
            self.check(
                (self.device_get_name)(name.as_mut_ptr(), name.len() as c_int, device),
                "cuDeviceGetName",
            )?;
            let mut context = ptr::null_mut();
            if primary {
                let result = (self.primary_ctx_retain)(&mut context, device);
                self.check(result, "cuDevicePrimaryCtxRetain")?;
            } else {
                self.check((self.ctx_create)(&mut context, 0, device), "cuCtxCreate")?;
            }
            Ok(context)
        }
    }

    fn load_module(&self, image: &[u8]) -> Result<Handle> {
        let mut module = ptr::null_mut();
        // SAFETY: as in open_context.
        let result = unsafe { (self.module_load_data)(&mut module, image.as_ptr().cast()) };
        self.check(result, "cuModuleLoadData")?;
        Ok(module)
    }

    fn load_library(&self, image: &[u8]) -> Result<Handle> {
        let mut library = ptr::null_mut();
        // SAFETY: as in open_context.
        let result = unsafe {
            (self.library_load_data)(
                &mut library,
                image.as_ptr().cast(),
                ptr::null_mut(),
                ptr::null_mut(),
                0,
                ptr::null_mut(),
                ptr::null_mut(),
                0,
            )
        };
        self.check(result, "cuLibraryLoadData")?;
        Ok(library)
    }

    fn function(&self, module: Handle, name: &str) -> Result<Handle> {
        let c_name = CString::new(name)?;
        let mut f = ptr::null_mut();
        // SAFETY: as in open_context.
        let result = unsafe { (self.module_get_function)(&mut f, module, c_name.as_ptr()) };
        self.check(result, &format!("cuModuleGetFunction({name})"))?;
        Ok(f)
    }

    fn kernel(&self, library: Handle, name: &str) -> Result<Handle> {
        let c_name = CString::new(name)?;
        let mut f = ptr::null_mut();
        // SAFETY: as in open_context.
        let result = unsafe { (self.library_get_kernel)(&mut f, library, c_name.as_ptr()) };
        self.check(result, &format!("cuLibraryGetKernel({name})"))?;
        Ok(f)
    }

    fn alloc(&self, bytes: u64) -> Result<u64> {
        let mut pointer = 0;
        // SAFETY: as in open_context.
        let result = unsafe { (self.mem_alloc)(&mut pointer, bytes as usize) };
        self.check(result, &format!("cuMemAlloc({bytes})"))?;
        Ok(pointer)
    }

    fn copy_in(&self, device: u64, host: &[u8]) -> Result<()> {
        // SAFETY: as in open_context.
        let result = unsafe { (self.memcpy_htod)(device, host.as_ptr().cast(), host.len()) };
        self.check(result, "cuMemcpyHtoD")
    }

    fn copy_out(&self, host: &mut [u8], device: u64) -> Result<()> {
        // SAFETY: as in open_context.
        let result = unsafe { (self.memcpy_dtoh)(host.as_mut_ptr().cast(), device, host.len()) };
        self.check(result, "cuMemcpyDtoH")
    }

    fn synchronize(&self) -> Result<()> {
        // SAFETY: as in open_context.
        let result = unsafe { (self.stream_synchronize)(ptr::null_mut()) };
        self.check(result, "cuStreamSynchronize")
    }

    /// One launch with a parameter array (pointers to each argument).
    fn launch(
        &self,
        f: Handle,
        grid: [u32; 3],
        block: [u32; 3],
        params: &mut [*mut c_void],
    ) -> Result<()> {
        // SAFETY: as in open_context; the parameters outlive the call.
        let result = unsafe {
            (self.launch_kernel)(
                f,
                grid[0],
                grid[1],
                grid[2],
                block[0],
                block[1],
                block[2],
                0,
                ptr::null_mut(),
                params.as_mut_ptr(),
                ptr::null_mut(),
            )
        };
        self.check(result, "cuLaunchKernel")
    }

    fn launch_ex(
        &self,
        f: Handle,
        grid: [u32; 3],
        block: [u32; 3],
        params: &mut [*mut c_void],
    ) -> Result<()> {
        let config = LaunchConfig {
            grid,
            block,
            shared_mem_bytes: 48 << 10,
            stream: ptr::null_mut(),
            attrs: ptr::null_mut(),
            num_attrs: 0,
        };
        // SAFETY: as in open_context; the config and parameters outlive
        // the call.
        let result =
            unsafe { (self.launch_kernel_ex)(&config, f, params.as_mut_ptr(), ptr::null_mut()) };
        self.check(result, "cuLaunchKernelEx")
    }
}

/// A pointer to one kernel argument, as `kernelParams` holds them.
fn param<T>(value: &T) -> *mut c_void {
    ptr::from_ref(value).cast_mut().cast()
}

/// xorshift64*: shapes, counts and gaps that vary, reproducibly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.next() as usize % items.len()]
    }
}

/// Sleeps until `at` (no-op when it has passed).
fn sleep_until(at: Instant) {
    if let Some(left) = at.checked_duration_since(Instant::now()) {
        thread::sleep(left);
    }
}

/// A KawPoW-style search kernel, as miners hand it to NVRTC with the
/// epoch's constants baked in.
const MINER_SOURCE: &str = r#"
#include <stdint.h>
#define PROGPOW_LANES 16
#define PROGPOW_REGS 32
#define PROGPOW_DAG_LOADS 4
#define PROGPOW_CNT_DAG 64
typedef struct { uint32_t uint32s[32 / sizeof(uint32_t)]; } hash32_t;
typedef struct { uint32_t count; uint32_t abort; uint32_t gid[4]; } search_results;
extern "C" __global__ void __launch_bounds__(256, 2) search(
    uint64_t start_nonce, const hash32_t header, const uint64_t target,
    const uint4 *__restrict__ g_dag, volatile search_results *g_output, bool hack_false)
{
    __shared__ uint32_t c_dag[PROGPOW_CACHE_WORDS];
    uint32_t const gid = blockIdx.x * blockDim.x + threadIdx.x;
    uint64_t const nonce = start_nonce + gid;
    /* keccak_f800 initial hash, the random program's loop, keccak_f800 final */
    if (hack_false) __threadfence_block();
    if (nonce < target) { uint32_t index = atomicInc((uint32_t *)&g_output->count, 0xffffffff); g_output->gid[index] = gid; }
}
"#;

type NvrtcCreate = unsafe extern "C" fn(
    *mut Handle,
    *const c_char,
    *const c_char,
    c_int,
    *const *const c_char,
    *const *const c_char,
) -> c_int;
type NvrtcCompile = unsafe extern "C" fn(Handle, c_int, *const *const c_char) -> c_int;
type NvrtcGetPtxSize = unsafe extern "C" fn(Handle, *mut usize) -> c_int;
type NvrtcGetPtx = unsafe extern "C" fn(Handle, *mut c_char) -> c_int;
type NvrtcDestroy = unsafe extern "C" fn(*mut Handle) -> c_int;

/// Compiles `source` with NVRTC and returns the PTX (NUL-terminated).
fn nvrtc_compile(nvrtc: &Library, source: &str, options: &[&str]) -> Result<Vec<u8>> {
    // SAFETY: nvrtc.h's signatures.
    let (create, compile, size, get, destroy) = unsafe {
        (
            as_fn::<NvrtcCreate>(nvrtc.symbol(c"nvrtcCreateProgram")?),
            as_fn::<NvrtcCompile>(nvrtc.symbol(c"nvrtcCompileProgram")?),
            as_fn::<NvrtcGetPtxSize>(nvrtc.symbol(c"nvrtcGetPTXSize")?),
            as_fn::<NvrtcGetPtx>(nvrtc.symbol(c"nvrtcGetPTX")?),
            as_fn::<NvrtcDestroy>(nvrtc.symbol(c"nvrtcDestroyProgram")?),
        )
    };
    let source = CString::new(source)?;
    let options: Vec<CString> = options
        .iter()
        .map(|o| CString::new(*o))
        .collect::<Result<_, _>>()?;
    let option_ptrs: Vec<*const c_char> = options.iter().map(|o| o.as_ptr()).collect();
    let mut program = ptr::null_mut();
    // SAFETY: NUL-terminated strings and arrays that outlive the calls,
    // writable out-pointers, a PTX buffer of the size NVRTC asked for.
    unsafe {
        let status = create(
            &mut program,
            source.as_ptr(),
            c"kawpow.cu".as_ptr(),
            0,
            ptr::null(),
            ptr::null(),
        );
        ensure!(status == 0, "nvrtcCreateProgram failed: {status}");
        let status = compile(program, option_ptrs.len() as c_int, option_ptrs.as_ptr());
        ensure!(status == 0, "nvrtcCompileProgram failed: {status}");
        let mut len = 0;
        let status = size(program, &mut len);
        ensure!(status == 0, "nvrtcGetPTXSize failed: {status}");
        let mut ptx = vec![0u8; len];
        let status = get(program, ptx.as_mut_ptr().cast());
        ensure!(status == 0, "nvrtcGetPTX failed: {status}");
        let status = destroy(&mut program);
        ensure!(status == 0, "nvrtcDestroyProgram failed: {status}");
        Ok(ptx)
    }
}

fn miner(
    cuda: &Cuda,
    nvrtc: &Library,
    cli: &Cli,
    deadline: impl Fn(Instant) -> Instant,
) -> Result<()> {
    let dag_bytes = cli.dag_mib << 20;
    let dag_elements = format!("-DPROGPOW_DAG_ELEMENTS={}", dag_bytes / 256);
    let ptx = nvrtc_compile(
        nvrtc,
        MINER_SOURCE,
        &[
            "--gpu-architecture=compute_80",
            "-lineinfo",
            "-DPROGPOW_CACHE_WORDS=4096",
            &dag_elements,
        ],
    )?;
    cuda.open_context(false)?;
    let mut module = ptr::null_mut();
    // SAFETY: a writable out-pointer and NUL-terminated PTX; no JIT options.
    let result = unsafe {
        (cuda.module_load_data_ex)(
            &mut module,
            ptx.as_ptr().cast(),
            0,
            ptr::null_mut(),
            ptr::null_mut(),
        )
    };
    cuda.check(result, "cuModuleLoadDataEx")?;
    let search = cuda.function(module, "search")?;
    let dag = cuda.alloc(dag_bytes)?;
    let header_buffer = cuda.alloc(32)?;
    let results = cuda.alloc(24)?;
    let mut header = [0x42u8; 32];
    cuda.copy_in(header_buffer, &header)?;
    println!("ready {}", std::process::id());

    let interval = Duration::from_secs_f64(cli.interval_ms / 1000.0);
    let grid = [8192, 1, 1];
    let block = [256, 1, 1];
    let threads = u64::from(grid[0] * block[0]);
    let target = 0x0000_0000_ffff_ffffu64;
    let hack_false = false;
    let mut nonce = 0x1234_0000_0000u64;
    let mut found = [0u8; 8];
    let start = Instant::now();
    let end = deadline(start);
    let mut next_job = start + Duration::from_secs(10);
    let mut next = start;
    let mut launches = 0u64;
    while Instant::now() < end {
        let mut params = [
            param(&nonce),
            param(&header_buffer),
            param(&target),
            param(&dag),
            param(&results),
            param(&hack_false),
        ];
        cuda.launch(search, grid, block, &mut params)?;
        launches += 1;
        nonce += threads;
        if launches.is_multiple_of(cli.copy_every.max(1)) {
            cuda.synchronize()?;
            cuda.copy_out(&mut found, results)?;
        }
        if Instant::now() >= next_job {
            // A new job from the pool: a new header.
            header[0] = header[0].wrapping_add(1);
            cuda.copy_in(header_buffer, &header)?;
            next_job += Duration::from_secs(10);
        }
        next += interval;
        sleep_until(next);
    }
    println!("done launches {launches}");
    Ok(())
}

/// A fatbin-like image: the fatbin magic (0xBA55ED50), version 1, header
/// size 16, payload size, then a payload of no consequence.
fn fatbin(payload: usize) -> Vec<u8> {
    let mut image = Vec::with_capacity(16 + payload);
    image.extend_from_slice(&0xBA55_ED50u32.to_le_bytes());
    image.extend_from_slice(&1u16.to_le_bytes());
    image.extend_from_slice(&16u16.to_le_bytes());
    image.extend_from_slice(&(payload as u64).to_le_bytes());
    image.resize(16 + payload, 0xA5);
    image
}

/// Kernel names as PyTorch, cuDNN, cuBLASLt, CUTLASS and NCCL name theirs
/// (demangled), about 200 of them.
fn training_kernel_names() -> Vec<String> {
    let mut names = Vec::new();
    let dtypes = ["float", "c10::Half", "c10::BFloat16"];
    let functors = [
        "CUDAFunctor_add<{T}>",
        "BinaryFunctor<{T}, {T}, {T}, at::native::binary_internal::MulFunctor<float> >",
        "BinaryFunctor<{T}, {T}, {T}, at::native::binary_internal::DivFunctor<float> >",
        "FillFunctor<{T}>",
        "AUnaryFunctor<{T}, {T}, {T}, at::native::binary_internal::MulFunctor<float> >",
        "GeluCUDAKernelImpl(at::TensorIteratorBase&, at::native::GeluType)::{lambda()#2}::operator()() const::{lambda()#2}::operator()() const::{lambda({T})#1}",
        "launch_clamp_scalar(at::TensorIteratorBase&, c10::Scalar, c10::Scalar, at::native::detail::ClampLimits)::{lambda()#1}::operator()() const::{lambda()#7}::operator()() const::{lambda({T})#1}",
        "sqrt_kernel_cuda(at::TensorIteratorBase&)::{lambda()#2}::operator()() const::{lambda()#2}::operator()() const::{lambda({T})#1}",
        "threshold_kernel_impl<{T}>(at::TensorIteratorBase&, {T}, {T})::{lambda({T}, {T})#1}",
        "neg_kernel_cuda(at::TensorIteratorBase&)::{lambda()#2}::operator()() const::{lambda()#8}::operator()() const::{lambda({T})#1}",
        "copy_kernel_impl<{T}>(at::TensorIteratorBase&)::{lambda({T})#1}",
        "CompareEqFunctor<{T}>",
    ];
    for t in dtypes {
        for f in functors {
            let f = f.replace("{T}", t);
            names.push(format!(
                "void at::native::vectorized_elementwise_kernel<4, at::native::{f}, at::detail::Array<char*, 3> >(int, at::native::{f}, at::detail::Array<char*, 3>)"
            ));
            names.push(format!(
                "void at::native::unrolled_elementwise_kernel<at::native::{f}, at::detail::Array<char*, 3>, TrivialOffsetCalculator<2, unsigned int>, TrivialOffsetCalculator<1, unsigned int>, at::native::memory::LoadWithoutCast, at::native::memory::StoreWithoutCast>(int, at::native::{f})"
            ));
        }
        for op in [
            "sum_functor<{T}, float, {T}>",
            "MeanOps<{T}, float, float, {T}>",
            "MaxOps<{T}>",
            "NormTwoOps<{T}, float, float>",
        ] {
            let op = op.replace("{T}", t);
            names.push(format!(
                "void at::native::reduce_kernel<512, 1, at::native::ReduceOp<{t}, at::native::{op}, unsigned int, {t}, 4> >(at::native::ReduceOp<{t}, at::native::{op}, unsigned int, {t}, 4>)"
            ));
        }
        for pass in ["forward", "backward"] {
            for log2 in [7, 8, 9, 10, 11] {
                names.push(format!(
                    "void (anonymous namespace)::softmax_warp_{pass}<{t}, {t}, float, {log2}, false, false>({t}*, {t} const*, int, int, int, bool const*, int, bool)"
                ));
            }
        }
        names.push(format!(
            "void at::native::(anonymous namespace)::vectorized_layer_norm_kernel<{t}, float>(int, float, {t} const*, {t} const*, {t} const*, float*, float*, {t}*)"
        ));
        names.push(format!(
            "void at::native::(anonymous namespace)::layer_norm_grad_input_kernel_vectorized<{t}, float>({t} const*, {t} const*, float const*, float const*, {t} const*, {t}*, int)"
        ));
        names.push(format!(
            "void at::native::(anonymous namespace)::indexSelectLargeIndex<{t}, long, unsigned int, 2, 2, -2, true>(at::cuda::detail::TensorInfo<{t}, unsigned int>, at::cuda::detail::TensorInfo<{t} const, unsigned int>, at::cuda::detail::TensorInfo<long const, unsigned int>, int, int, unsigned int, unsigned int, long)"
        ));
        names.push(format!(
            "void at::native::(anonymous namespace)::fused_dropout_kernel_vec<{t}, float, unsigned int, 1, 4, bool>(at::cuda::detail::TensorInfo<{t} const, unsigned int>, at::cuda::detail::TensorInfo<{t}, unsigned int>, at::cuda::detail::TensorInfo<bool, unsigned int>, unsigned int, float, at::PhiloxCudaState)"
        ));
    }
    for layout in ["nn", "nt", "tn"] {
        for tile in ["128x64", "128x128", "64x64", "256x128"] {
            names.push(format!("ampere_sgemm_{tile}_{layout}"));
            names.push(format!(
                "sm80_xmma_gemm_bf16bf16_bf16f32_f32_{layout}_n_tilesize{tile}x32_stage4_warpsize2x2x1_tensor16x8x16_execute_kernel__5x_cublas"
            ));
            names.push(format!(
                "cutlass_80_tensorop_s1688gemm_{tile}_16x4_{layout}_align4"
            ));
        }
    }
    for tile in ["128x128x16", "128x64x32", "64x64x32", "256x64x32"] {
        names.push(format!(
            "sm80_xmma_fprop_implicit_gemm_tf32f32_tf32f32_f32_nhwckrsc_nchw_tilesize{tile}_stage4_warpsize2x2x1_g1_tensor16x8x8_execute_kernel__5x_cudnn"
        ));
        names.push(format!(
            "sm80_xmma_dgrad_implicit_gemm_tf32f32_tf32f32_f32_nhwckrsc_nchw_tilesize{tile}_stage4_warpsize2x2x1_g1_tensor16x8x8_execute_kernel__5x_cudnn"
        ));
        names.push(format!(
            "sm80_xmma_wgrad_implicit_gemm_tf32f32_tf32f32_f32_nhwckrsc_nchw_tilesize{tile}_stage4_warpsize2x2x1_g1_tensor16x8x8_execute_kernel__5x_cudnn"
        ));
    }
    for kernel in [
        "cudnn::bn_fw_tr_1C11_kernel_NCHW<float, float, int, 512, true, 1>",
        "cudnn::bn_fw_tr_1C11_singleread<float, 512, true, 1, 2, 0>",
        "cudnn::bn_bw_1C11_kernel_new<float, float, float2, 512, true, 1>",
        "cudnn::bn_bw_1C11_singleread<float, 512, true, 1, 2, 0>",
        "cudnn::ops::nchwToNhwcKernel<float, float, float, false, true, (cudnnKernelDataType_t)2>",
        "cudnn::ops::nhwcToNchwKernel<float, float, float, true, false, (cudnnKernelDataType_t)0>",
        "cudnn::ops::scalePackedTensor_kernel<float, float>",
        "cudnn::winograd_nonfused::winogradForwardData4x4<float, float>",
        "cudnn::winograd_nonfused::winogradForwardFilter4x4<float, float>",
        "cudnn::winograd_nonfused::winogradForwardOutput4x4<float, float>",
        "void at::native::(anonymous namespace)::multi_tensor_apply_kernel<at::native::(anonymous namespace)::TensorListMetadata<4>, at::native::(anonymous namespace)::FusedAdamMathFunctor<float, 4, (at::native::ADAM_MODE)1, false>, double*, double, double, double, double, double, bool, float*, float*>",
        "void at::native::multi_tensor_apply_kernel<at::native::TensorListMetadata<1>, at::native::(anonymous namespace)::UnaryOpFunctor<float, 1, 1, 0, at::native::Sqrt<float> >, at::native::Sqrt<float> >",
        "void at::native::amp_update_scale_cuda_kernel(float*, int*, float const*, double, double, int)",
        "void at::native::(anonymous namespace)::nll_loss_forward_reduce_cuda_kernel_2d<float, float, long>(float*, float*, float const*, long const*, float const*, bool, long, long, long, long)",
        "void at::native::(anonymous namespace)::nll_loss_backward_reduce_cuda_kernel_2d<float, long>(float*, float const*, long const*, float const*, float const*, bool, int, int, long, long)",
        "void at::native::(anonymous namespace)::cunn_SoftMaxForward<4, float, float, float, at::native::(anonymous namespace)::LogSoftMaxForwardEpilogue>(float*, float const*, int)",
        "void at::native::(anonymous namespace)::cunn_SoftMaxBackward<4, float, float, float, at::native::(anonymous namespace)::LogSoftMaxBackwardEpilogue>(float*, float const*, float const*, long)",
        "void at::native::(anonymous namespace)::embedding_backward_feature_kernel<float, float, long>(long const*, float const*, float*, int, long, int, int)",
        "void flash_fwd_kernel<Flash_fwd_kernel_traits<128, 128, 64, 4, false, false, cutlass::bfloat16_t, Flash_kernel_traits<128, 128, 64, 4, cutlass::bfloat16_t> >, false, true, false, false, false, true, false, false>(flash::Flash_fwd_params)",
        "void flash_bwd_dq_dk_dv_loop_seqk_parallel_kernel<Flash_bwd_kernel_traits<128, 64, 128, 8, 2, 4, 2, false, false, cutlass::bfloat16_t, Flash_kernel_traits<128, 64, 128, 8, cutlass::bfloat16_t> >, true, false, false, false, false, false, false>(flash::Flash_bwd_params)",
        "ncclDevKernel_AllReduce_Sum_f32_RING_LL(ncclDevComm*, unsigned long, ncclWork*)",
        "ncclDevKernel_AllReduce_Sum_bf16_RING_LL(ncclDevComm*, unsigned long, ncclWork*)",
        "ncclDevKernel_Broadcast_RING_LL(ncclDevComm*, unsigned long, ncclWork*)",
        "ncclDevKernel_ReduceScatter_Sum_f32_RING_LL(ncclDevComm*, unsigned long, ncclWork*)",
        "ncclDevKernel_AllGather_RING_LL(ncclDevComm*, unsigned long, ncclWork*)",
    ] {
        names.push(kernel.to_owned());
    }
    names
}

/// A launch shape for a kernel: blocks of 128–512 threads, a grid that
/// covers one of a model's tensor sizes.
fn shape(rng: &mut Rng) -> ([u32; 3], [u32; 3]) {
    let threads = *rng.pick(&[128u32, 256, 512]);
    let elements = *rng.pick(&[
        768u64 * 2048,
        3072 * 2048,
        768 * 768,
        768 * 3072,
        50_257 * 768,
        32 * 1024,
        4 * 1024 * 1024,
    ]);
    let blocks = elements.div_ceil(u64::from(threads) * 4).clamp(1, 65_535) as u32;
    if rng.range(0, 3) == 0 {
        ([blocks.div_ceil(8).max(1), 8, 1], [threads / 4, 4, 1])
    } else {
        ([blocks, 1, 1], [threads, 1, 1])
    }
}

type CublasCreate = unsafe extern "C" fn(*mut Handle) -> c_uint;
#[allow(clippy::type_complexity)]
type CublasSgemm = unsafe extern "C" fn(
    Handle,
    c_int,
    c_int,
    c_int,
    c_int,
    c_int,
    *const f32,
    *const f32,
    c_int,
    *const f32,
    c_int,
    *const f32,
    *mut f32,
    c_int,
) -> c_uint;
type CudnnCreate = unsafe extern "C" fn(*mut Handle) -> c_uint;
type NcclGetVersion = unsafe extern "C" fn(*mut c_int) -> c_uint;

/// The deep-learning libraries' handles: cuBLAS's for GEMMs, and a call
/// into cuDNN and NCCL each, as a framework makes at start-up.
struct DlLibraries {
    cublas: Handle,
    sgemm: CublasSgemm,
}

impl DlLibraries {
    fn start(libraries: &[Library]) -> Result<Self> {
        let [cublas_lib, cudnn_lib, nccl_lib] = libraries else {
            bail!("expected cuBLAS, cuDNN and NCCL");
        };
        // SAFETY: the libraries' documented signatures; writable
        // out-pointers.
        unsafe {
            let create: CublasCreate = as_fn(cublas_lib.symbol(c"cublasCreate_v2")?);
            let sgemm: CublasSgemm = as_fn(cublas_lib.symbol(c"cublasSgemm_v2")?);
            let cudnn_create: CudnnCreate = as_fn(cudnn_lib.symbol(c"cudnnCreate")?);
            let nccl_version: NcclGetVersion = as_fn(nccl_lib.symbol(c"ncclGetVersion")?);
            let mut cublas = ptr::null_mut();
            let status = create(&mut cublas);
            ensure!(status == 0, "cublasCreate_v2 failed: {status}");
            let mut cudnn = ptr::null_mut();
            let status = cudnn_create(&mut cudnn);
            ensure!(status == 0, "cudnnCreate failed: {status}");
            let mut version = 0;
            let status = nccl_version(&mut version);
            ensure!(status == 0, "ncclGetVersion failed: {status}");
            Ok(Self { cublas, sgemm })
        }
    }

    /// C[m×n] = A[m×k]·B[k×n] on device buffers (column-major, no
    /// transposes), through cuBLAS.
    fn gemm(&self, m: i32, n: i32, k: i32, a: u64, b: u64, c: u64) -> Result<()> {
        let (alpha, beta) = (1.0f32, 0.0f32);
        // SAFETY: a live cuBLAS handle; host scalars; device pointers the
        // fake driver handed out (never dereferenced on the host).
        let status = unsafe {
            (self.sgemm)(
                self.cublas,
                0,
                0,
                m,
                n,
                k,
                &alpha,
                a as *const f32,
                m,
                b as *const f32,
                k,
                &beta,
                c as *mut f32,
                m,
            )
        };
        ensure!(status == 0, "cublasSgemm_v2 failed: {status}");
        Ok(())
    }
}

/// One scheduled launch of a training step.
struct Launch {
    function: Handle,
    grid: [u32; 3],
    block: [u32; 3],
    /// Through `cuLaunchKernelEx` (as PyTorch launches some kernels).
    ex: bool,
}

fn training(
    cuda: &Cuda,
    libraries: &[Library],
    cli: &Cli,
    rng: &mut Rng,
    deadline: impl Fn(Instant) -> Instant,
) -> Result<()> {
    cuda.open_context(true)?;
    let dl = DlLibraries::start(libraries)?;
    // PyTorch's own kernels arrive as fatbins: half as a module, half as
    // a CUDA 12 library (the runtime's lazy loading).
    let names = training_kernel_names();
    let module = cuda.load_module(&fatbin(4096))?;
    let library = cuda.load_library(&fatbin(8192))?;
    let mut functions = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        functions.push(if i % 2 == 0 {
            cuda.function(module, name)?
        } else {
            cuda.kernel(library, name)?
        });
    }
    // Weights, gradients, Adam's two moments (1.5 GiB each), and the
    // caching allocator's activation blocks.
    let mut buffers = Vec::new();
    for _ in 0..4 {
        buffers.push(cuda.alloc(1536 << 20)?);
    }
    for _ in 0..8 {
        buffers.push(cuda.alloc(256 << 20)?);
    }
    let batch_device = cuda.alloc(4 << 20)?;
    let loss_device = cuda.alloc(4)?;
    // The step: the same sequence every step, as a training loop's is.
    let step_len = rng.range(50, 150) as usize;
    let schedule: Vec<Launch> = (0..step_len)
        .map(|_| {
            let (grid, block) = shape(rng);
            Launch {
                function: *rng.pick(&functions),
                grid,
                block,
                ex: rng.range(0, 9) == 0,
            }
        })
        .collect();
    let batch = vec![7u8; 4 << 20];
    let mut loss = [0u8; 4];
    println!("ready {}", std::process::id());

    let step_time = Duration::from_secs_f64(cli.step_ms / 1000.0);
    let start = Instant::now();
    let end = deadline(start);
    let mut launches = 0u64;
    let tensor = |i: usize| buffers[i % buffers.len()];
    while Instant::now() < end {
        let step_start = Instant::now();
        cuda.copy_in(batch_device, &batch)?;
        let mut args = [param(&batch_device), param(&loss_device)];
        for (i, launch) in schedule.iter().enumerate() {
            if launch.ex {
                cuda.launch_ex(launch.function, launch.grid, launch.block, &mut args)?;
            } else {
                cuda.launch(launch.function, launch.grid, launch.block, &mut args)?;
            }
            launches += 1;
            // A linear layer every few kernels: forward and backward GEMMs.
            if i % 8 == 0 {
                dl.gemm(2048, 3072, 768, tensor(i), tensor(i + 1), tensor(i + 2))?;
                dl.gemm(768, 3072, 2048, tensor(i + 3), tensor(i), tensor(i + 1))?;
                launches += 2;
            }
        }
        cuda.synchronize()?;
        cuda.copy_out(&mut loss, loss_device)?;
        sleep_until(step_start + step_time);
    }
    println!("done launches {launches}");
    Ok(())
}

/// The ~30 kernels of a transformer's serving path.
const INFERENCE_KERNELS: [&str; 30] = [
    "void vllm::rms_norm_kernel<c10::BFloat16>(c10::BFloat16*, c10::BFloat16 const*, c10::BFloat16 const*, float, int, int)",
    "void vllm::fused_add_rms_norm_kernel<c10::BFloat16, 8>(c10::BFloat16*, c10::BFloat16*, c10::BFloat16 const*, float, int, int)",
    "void vllm::rotary_embedding_kernel<c10::BFloat16, true>(long const*, c10::BFloat16*, c10::BFloat16*, c10::BFloat16 const*, int, long, long, int, int, int)",
    "void vllm::reshape_and_cache_flash_kernel<__nv_bfloat16, __nv_bfloat16, (vllm::Fp8KVCacheDataType)0>(__nv_bfloat16 const*, __nv_bfloat16 const*, __nv_bfloat16*, __nv_bfloat16*, long const*, int, int, int, int, int, int, float const*, float const*)",
    "void vllm::act_and_mul_kernel<c10::BFloat16, &(c10::BFloat16 vllm::silu_kernel<c10::BFloat16>(c10::BFloat16 const&)), true>(c10::BFloat16*, c10::BFloat16 const*, int)",
    "void vllm::paged_attention_v2_kernel<__nv_bfloat16, __nv_bfloat16, 128, 16, 128, (vllm::Fp8KVCacheDataType)0, false, 512>(float*, float*, __nv_bfloat16*, __nv_bfloat16 const*, __nv_bfloat16 const*, __nv_bfloat16 const*, int, float, int const*, int const*, int, float const*, int, int, int, float const*, float const*, int, int, int)",
    "void vllm::paged_attention_v2_reduce_kernel<__nv_bfloat16, 128, 128, 512>(__nv_bfloat16*, float const*, float const*, __nv_bfloat16 const*, int const*, int)",
    "void flash_fwd_splitkv_kernel<Flash_fwd_kernel_traits<128, 64, 128, 4, false, false, cutlass::bfloat16_t, Flash_kernel_traits<128, 64, 128, 4, cutlass::bfloat16_t> >, false, false, false, false, true, false, false, false>(flash::Flash_fwd_params)",
    "void flash_fwd_splitkv_combine_kernel<Flash_fwd_kernel_traits<128, 64, 128, 4, false, false, cutlass::bfloat16_t, Flash_kernel_traits<128, 64, 128, 4, cutlass::bfloat16_t> >, 4, 1, true>(flash::Flash_fwd_params)",
    "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64_warpgroupsize1x1x1_execute_segment_k_off_kernel__5x_cublas",
    "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize64x128x64_warpgroupsize1x1x1_execute_segment_k_off_kernel__5x_cublas",
    "sm80_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize64x64x64_stage3_warpsize2x2x1_tensor16x8x16_kernel",
    "void cutlass::Kernel2<cutlass_80_wmma_tensorop_bf16_s161616gemm_bf16_16x16_128x2_tn_align8>(cutlass_80_wmma_tensorop_bf16_s161616gemm_bf16_16x16_128x2_tn_align8::Params)",
    "void at::native::(anonymous namespace)::cunn_SoftMaxForward<4, float, float, float, at::native::(anonymous namespace)::SoftMaxForwardEpilogue>(float*, float const*, int)",
    "void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<c10::BFloat16>, at::detail::Array<char*, 3> >(int, at::native::CUDAFunctor_add<c10::BFloat16>, at::detail::Array<char*, 3>)",
    "void at::native::vectorized_elementwise_kernel<4, at::native::BinaryFunctor<float, float, float, at::native::binary_internal::DivFunctor<float> >, at::detail::Array<char*, 3> >(int, at::native::BinaryFunctor<float, float, float, at::native::binary_internal::DivFunctor<float> >, at::detail::Array<char*, 3>)",
    "void at::native::unrolled_elementwise_kernel<at::native::direct_copy_kernel_cuda(at::TensorIteratorBase&)::{lambda()#3}::operator()() const::{lambda()#12}::operator()() const::{lambda(c10::BFloat16)#1}, at::detail::Array<char*, 2>, TrivialOffsetCalculator<1, unsigned int>, TrivialOffsetCalculator<1, unsigned int>, at::native::memory::LoadWithCast<1>, at::native::memory::StoreWithCast<1> >(int, at::native::direct_copy_kernel_cuda(at::TensorIteratorBase&)::{lambda()#3}::operator()() const::{lambda()#12}::operator()() const::{lambda(c10::BFloat16)#1}, at::detail::Array<char*, 2>, TrivialOffsetCalculator<1, unsigned int>, TrivialOffsetCalculator<1, unsigned int>, at::native::memory::LoadWithCast<1>, at::native::memory::StoreWithCast<1>)",
    "void at::native::index_elementwise_kernel<128, 4, at::native::gpu_index_kernel<at::native::index_kernel_impl<at::native::OpaqueType<2> >(at::TensorIteratorBase&, c10::ArrayRef<long>, c10::ArrayRef<long>)::{lambda(char*, char const*, long)#1}>(at::TensorIteratorBase&, c10::ArrayRef<long>, c10::ArrayRef<long>, at::native::index_kernel_impl<at::native::OpaqueType<2> >(at::TensorIteratorBase&, c10::ArrayRef<long>, c10::ArrayRef<long>)::{lambda(char*, char const*, long)#1} const&)::{lambda(int)#1}>(long, at::native::gpu_index_kernel<at::native::index_kernel_impl<at::native::OpaqueType<2> >(at::TensorIteratorBase&, c10::ArrayRef<long>, c10::ArrayRef<long>)::{lambda(char*, char const*, long)#1}>(at::TensorIteratorBase&, c10::ArrayRef<long>, c10::ArrayRef<long>, at::native::index_kernel_impl<at::native::OpaqueType<2> >(at::TensorIteratorBase&, c10::ArrayRef<long>, c10::ArrayRef<long>)::{lambda(char*, char const*, long)#1} const&)::{lambda(int)#1})",
    "void at::native::(anonymous namespace)::indexSelectSmallIndex<c10::BFloat16, long, unsigned int, 2, 2, -2>(at::cuda::detail::TensorInfo<c10::BFloat16, unsigned int>, at::cuda::detail::TensorInfo<c10::BFloat16 const, unsigned int>, at::cuda::detail::TensorInfo<long const, unsigned int>, int, int, unsigned int, long)",
    "void at::native::reduce_kernel<512, 1, at::native::ReduceOp<float, at::native::ArgMaxOps<float>, unsigned int, long, 4> >(at::native::ReduceOp<float, at::native::ArgMaxOps<float>, unsigned int, long, 4>)",
    "void at::native::sbtopk::gatherTopK<float, unsigned int, 2, false>(at::cuda::detail::TensorInfo<float const, unsigned int>, unsigned int, unsigned int, bool, unsigned int, unsigned int, at::cuda::detail::TensorInfo<float, unsigned int>, unsigned int, at::cuda::detail::TensorInfo<long, unsigned int>, unsigned int, unsigned int*)",
    "void at::native::(anonymous namespace)::distribution_elementwise_grid_stride_kernel<float, 4, at::native::templates::cuda::uniform_and_transform<float, float, at::CUDAGeneratorImpl*, at::native::templates::cuda::exponential_kernel<at::CUDAGeneratorImpl*>(at::TensorIteratorBase&, double, at::CUDAGeneratorImpl*)::{lambda()#1}::operator()() const::{lambda()#2}::operator()() const::{lambda(float)#1}>(at::TensorIteratorBase&, at::CUDAGeneratorImpl*, at::native::templates::cuda::exponential_kernel<at::CUDAGeneratorImpl*>(at::TensorIteratorBase&, double, at::CUDAGeneratorImpl*)::{lambda()#1}::operator()() const::{lambda()#2}::operator()() const::{lambda(float)#1})::{lambda(curandStatePhilox4_32_10*)#2}>(long, at::PhiloxCudaState, at::native::templates::cuda::uniform_and_transform<float, float, at::CUDAGeneratorImpl*, at::native::templates::cuda::exponential_kernel<at::CUDAGeneratorImpl*>(at::TensorIteratorBase&, double, at::CUDAGeneratorImpl*)::{lambda()#1}::operator()() const::{lambda()#2}::operator()() const::{lambda(float)#1}>(at::TensorIteratorBase&, at::CUDAGeneratorImpl*, at::native::templates::cuda::exponential_kernel<at::CUDAGeneratorImpl*>(at::TensorIteratorBase&, double, at::CUDAGeneratorImpl*)::{lambda()#1}::operator()() const::{lambda()#2}::operator()() const::{lambda(float)#1})::{lambda(curandStatePhilox4_32_10*)#1})",
    "void at_cuda_detail::cub::DeviceRadixSortOnesweepKernel<at_cuda_detail::cub::DeviceRadixSortPolicy<float, long, int>::Policy800, true, float, long, int, int>(int*, int*, int*, int const*, float*, float const*, long*, long const*, int, int, int)",
    "void at_cuda_detail::cub::DeviceScanKernel<at_cuda_detail::cub::DeviceScanPolicy<float, std::plus<float> >::Policy600, float const*, float*, at_cuda_detail::cub::ScanTileState<float, true>, std::plus<float>, at_cuda_detail::cub::detail::InputValue<float, float*>, int, float>(float const*, float*, at_cuda_detail::cub::ScanTileState<float, true>, int, std::plus<float>, at_cuda_detail::cub::detail::InputValue<float, float*>, int)",
    "void at::native::(anonymous namespace)::CatArrayBatchedCopy<at::native::(anonymous namespace)::OpaqueType<2u>, unsigned int, 2, 128, 1>(at::native::(anonymous namespace)::OpaqueType<2u>*, at::native::(anonymous namespace)::CatArrInputTensorMetadata<at::native::(anonymous namespace)::OpaqueType<2u>, unsigned int, 128, 1>, at::native::(anonymous namespace)::TensorSizeStride<unsigned int, 4u>, int, unsigned int)",
    "ncclDevKernel_AllReduce_Sum_bf16_RING_LL(ncclDevComm*, unsigned long, ncclWork*)",
    "ncclDevKernel_AllGather_RING_LL(ncclDevComm*, unsigned long, ncclWork*)",
    "void vllm::moe::topkGatingSoftmax<8, 128, 4, 16, int>(float const*, bool const*, float*, int, int*, int*, int, int, int)",
    "void vllm::moe::moe_align_block_size_kernel<int>(int*, int*, int*, int*, int, int, int, int, unsigned long)",
    "void vllm::copy_blocks_kernel<c10::BFloat16>(long*, long*, long const*, int)",
];

fn inference(
    cuda: &Cuda,
    libraries: &[Library],
    rng: &mut Rng,
    deadline: impl Fn(Instant) -> Instant,
) -> Result<()> {
    cuda.open_context(true)?;
    let dl = DlLibraries::start(libraries)?;
    let library = cuda.load_library(&fatbin(8192))?;
    let module = cuda.load_module(&fatbin(2048))?;
    let mut kernels = Vec::with_capacity(INFERENCE_KERNELS.len());
    for (i, name) in INFERENCE_KERNELS.iter().enumerate() {
        kernels.push(if i % 3 == 0 {
            cuda.function(module, name)?
        } else {
            cuda.kernel(library, name)?
        });
    }
    // Weights (four 1 GiB shards) and a KV cache grabbed up front, as
    // serving engines reserve most of the card.
    let mut weights = Vec::new();
    for _ in 0..4 {
        weights.push(cuda.alloc(1 << 30)?);
    }
    let kv_cache = cuda.alloc(16 << 30)?;
    let tokens_device = cuda.alloc(64 << 10)?;
    let sampled_device = cuda.alloc(4)?;
    println!("ready {}", std::process::id());

    const LAYERS: usize = 8;
    let start = Instant::now();
    let end = deadline(start);
    let mut launches = 0u64;
    let mut sampled = [0u8; 4];
    let mut args = [param(&tokens_device), param(&kv_cache)];
    while Instant::now() < end {
        // A request: its prompt in, a prefill pass, then decode steps of a
        // few milliseconds each, one token read back per step.
        let prompt_tokens = rng.range(16, 2048) as usize;
        cuda.copy_in(tokens_device, &vec![1u8; prompt_tokens * 4])?;
        let new_tokens = rng.range(8, 32);
        for step in 0..=new_tokens {
            let step_start = Instant::now();
            let rows = if step == 0 { prompt_tokens as u32 } else { 1 };
            for layer in 0..LAYERS {
                for (k, kernel) in kernels.iter().enumerate().skip(layer % 3).step_by(3) {
                    let grid = [rows.div_ceil(4).max(1) * (1 + k as u32 % 4), 32, 1];
                    cuda.launch(*kernel, grid, [128, 1, 1], &mut args)?;
                    launches += 1;
                }
                let w = weights[layer % weights.len()];
                dl.gemm(rows as i32, 4096, 4096, tokens_device, w, kv_cache)?;
                launches += 1;
            }
            cuda.synchronize()?;
            cuda.copy_out(&mut sampled, sampled_device)?;
            sleep_until(step_start + Duration::from_millis(if step == 0 { 12 } else { 3 }));
            if Instant::now() >= end {
                break;
            }
        }
        // Idle until the next request.
        let gap = Duration::from_millis(rng.range(100, 500));
        sleep_until((Instant::now() + gap).min(end));
    }
    println!("done launches {launches}");
    Ok(())
}

/// A one-kernel PTX module for the launch loop.
const NOOP_PTX: &[u8] =
    b"//\n// assay launch-loop kernel\n//\n.version 8.4\n.target sm_80\n.address_size 64\n\n.visible .entry bench_noop()\n{\n\tret;\n}\n\0";

fn launch_loop(cuda: &Cuda, cli: &Cli) -> Result<()> {
    cuda.open_context(false)?;
    let module = cuda.load_module(NOOP_PTX)?;
    let f = cuda.function(module, "bench_noop")?;
    let duration = Duration::from_secs_f64(cli.seconds);
    let cost = Duration::from_secs_f64(cli.launch_cost_us / 1e6);
    let batch = if cost.is_zero() { 1024 } else { 16 };
    let start = Instant::now();
    let mut launches = 0u64;
    while start.elapsed() < duration {
        for _ in 0..batch {
            // SAFETY: a function of the fake driver's; no parameters.
            let result = unsafe {
                (cuda.launch_kernel)(
                    f,
                    1024,
                    1,
                    1,
                    256,
                    1,
                    1,
                    0,
                    ptr::null_mut(),
                    ptr::null_mut(),
                    ptr::null_mut(),
                )
            };
            cuda.check(result, "cuLaunchKernel")?;
            if !cost.is_zero() {
                let spun = Instant::now();
                while spun.elapsed() < cost {
                    std::hint::spin_loop();
                }
            }
        }
        launches += batch;
    }
    cuda.synchronize()?;
    // SAFETY: the fake driver's entry point; no arguments.
    let result = unsafe { (cuda.ctx_synchronize)() };
    cuda.check(result, "cuCtxSynchronize")?;
    println!("ops {launches} secs {:.6}", start.elapsed().as_secs_f64());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn training_has_about_two_hundred_distinct_kernels() {
        let names = training_kernel_names();
        let distinct: std::collections::BTreeSet<_> = names.iter().collect();
        assert_eq!(distinct.len(), names.len());
        assert!((180..=240).contains(&names.len()), "{}", names.len());
    }

    #[test]
    fn a_fatbin_starts_with_its_magic() {
        assert_eq!(fatbin(8)[..4], 0xBA55_ED50u32.to_le_bytes());
    }
}
