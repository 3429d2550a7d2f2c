//! A stand-in `libcuda.so.1` for tests on machines without a GPU.
//!
//! It exports the CUDA driver API entry points that assay's CUDA sensor puts
//! uprobes on, with the signatures and return codes of `cuda.h`, so that the
//! probes fire for real when the test programs call them. No GPU work is
//! done: modules and functions are handles to small leaked records, device
//! memory is a range of fake addresses (nothing is allocated), copies move
//! no data (device-to-host zero-fills small buffers), launches only count.
//!
//! Every export is `#[inline(never)]` and counts its own calls in its own
//! counter: bodies that differ cannot be merged by the compiler into one
//! address (a uprobe on one would then fire for the other).

#![allow(
    clippy::missing_safety_doc,
    reason = "the safety contracts are the CUDA driver API's, documented in cuda.h"
)]
#![allow(
    non_snake_case,
    non_camel_case_types,
    reason = "names as cuda.h spells them"
)]

use std::{
    collections::{BTreeMap, HashMap},
    ffi::{CStr, CString, c_char, c_int, c_uint, c_void},
    hint::black_box,
    ptr,
    sync::{
        LazyLock, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

pub type CUresult = c_uint;
pub type CUdevice = c_int;
pub type CUdeviceptr = u64;
pub type CUcontext = *mut c_void;
pub type CUmodule = *mut c_void;
pub type CUlibrary = *mut c_void;
pub type CUfunction = *mut c_void;
pub type CUkernel = *mut c_void;
pub type CUstream = *mut c_void;
pub type CUjit_option = c_uint;
pub type CUlibraryOption = c_uint;

pub const CUDA_SUCCESS: CUresult = 0;
pub const CUDA_ERROR_INVALID_VALUE: CUresult = 1;
pub const CUDA_ERROR_OUT_OF_MEMORY: CUresult = 2;
pub const CUDA_ERROR_NOT_INITIALIZED: CUresult = 3;
pub const CUDA_ERROR_INVALID_DEVICE: CUresult = 101;
pub const CUDA_ERROR_INVALID_IMAGE: CUresult = 200;
pub const CUDA_ERROR_INVALID_CONTEXT: CUresult = 201;
pub const CUDA_ERROR_INVALID_HANDLE: CUresult = 400;
pub const CUDA_ERROR_NOT_FOUND: CUresult = 500;

/// The driver version this stand-in claims (12.4).
pub const DRIVER_VERSION: c_int = 12040;
/// The fake device's memory; allocations beyond it fail as on a real card.
pub const DEVICE_MEMORY: u64 = 80 << 30;
const DEVICE_NAME: &[u8] = b"assay fake CUDA device (no GPU)";

/// `CUlaunchConfig` (cuda.h, CUDA 12): what `cuLaunchKernelEx` launches with.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct CUlaunchConfig {
    pub gridDimX: c_uint,
    pub gridDimY: c_uint,
    pub gridDimZ: c_uint,
    pub blockDimX: c_uint,
    pub blockDimY: c_uint,
    pub blockDimZ: c_uint,
    pub sharedMemBytes: c_uint,
    pub hStream: CUstream,
    pub attrs: *mut c_void,
    pub numAttrs: c_uint,
}
const _: () = assert!(size_of::<CUlaunchConfig>() == 56);

/// `CUexecAffinityParam` and `CUctxCreateParams` are opaque here: the
/// context calls only pass them on.
pub type CUexecAffinityParam = c_void;
pub type CUctxCreateParams = c_void;

/// Which export a call counter belongs to.
#[derive(Clone, Copy)]
enum Call {
    Init,
    DriverGetVersion,
    DeviceGet,
    DeviceGetCount,
    DeviceGetName,
    CtxCreate,
    CtxCreateV3,
    CtxCreateV4,
    PrimaryCtxRetain,
    CtxDestroy,
    CtxSynchronize,
    StreamSynchronize,
    ModuleLoadData,
    ModuleLoadDataEx,
    ModuleLoadFatBinary,
    ModuleGetFunction,
    LibraryLoadData,
    LibraryGetKernel,
    MemAlloc,
    MemAllocManaged,
    MemAllocAsync,
    MemFree,
    MemGetInfo,
    MemcpyHtoD,
    MemcpyDtoH,
    LaunchKernel,
    LaunchKernelEx,
    LaunchKernelPtsz,
    LaunchKernelExPtsz,
    GetProcAddress,
    GetProcAddressV2,
    GetErrorName,
}
const CALLS_LEN: usize = Call::GetErrorName as usize + 1;

static CALLS: [AtomicU64; CALLS_LEN] = [const { AtomicU64::new(0) }; CALLS_LEN];
static INITIALIZED: AtomicBool = AtomicBool::new(false);

#[inline(always)]
fn count(call: Call) {
    black_box(CALLS[call as usize].fetch_add(1, Ordering::Relaxed));
}

fn initialized() -> bool {
    INITIALIZED.load(Ordering::Acquire)
}

const CONTEXT_MAGIC: u64 = 0xC0_17E7;
const MODULE_MAGIC: u64 = 0x30_D01E;
const FUNCTION_MAGIC: u64 = 0xF0_4C7;

#[repr(C)]
struct Context {
    magic: u64,
    device: CUdevice,
}

/// A module or a library (CUDA 12's context-independent module).
#[repr(C)]
struct Module {
    magic: u64,
    id: u64,
}

/// A function or a kernel: CUDA 12 lets a `CUkernel` be launched as a
/// `CUfunction`, so both are this record.
#[repr(C)]
struct Function {
    magic: u64,
    launches: AtomicU64,
    name: CString,
}

static NEXT_MODULE: AtomicU64 = AtomicU64::new(1);

/// One handle per (module, name), as the real driver returns the same
/// function each time it is asked.
static FUNCTIONS: LazyLock<Mutex<HashMap<(u64, CString), usize>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

struct Memory {
    next: u64,
    used: u64,
    /// Live allocations: base address to size.
    live: BTreeMap<u64, u64>,
}

static MEMORY: Mutex<Memory> = Mutex::new(Memory {
    // Where device pointers of a real card under unified addressing start.
    next: 0x7f00_0000_0000,
    used: 0,
    live: BTreeMap::new(),
});

impl Memory {
    /// Whether `[ptr, ptr + len)` lies inside one live allocation.
    fn contains(&self, ptr: u64, len: u64) -> bool {
        self.live
            .range(..=ptr)
            .next_back()
            .is_some_and(|(&base, &size)| ptr.saturating_add(len) <= base + size)
    }
}

/// Whether `image` starts like something the driver loads: an ELF cubin,
/// a fatbin, or NUL-terminated PTX text.
///
/// # Safety
///
/// `image` points to a readable module image.
unsafe fn valid_image(image: *const c_void) -> bool {
    if image.is_null() {
        return false;
    }
    // SAFETY: every image kind is at least 4 bytes long (per the caller).
    let magic = unsafe { ptr::read_unaligned(image.cast::<[u8; 4]>()) };
    if magic == *b"\x7fELF"
        || u32::from_le_bytes(magic) == 0xBA55_ED50
        || u32::from_le_bytes(magic) == 0x4662_43B1
    {
        return true;
    }
    // SAFETY: anything else is PTX, a NUL-terminated string (per the caller).
    let text = unsafe { CStr::from_ptr(image.cast::<c_char>()) }.to_bytes();
    text.windows(8).any(|w| w == b".version") || text.windows(6).any(|w| w == b".entry")
}

/// # Safety
///
/// `out` is null or writable; `image` as for [`valid_image`].
unsafe fn load_module(out: *mut *mut c_void, image: *const c_void) -> CUresult {
    if !initialized() {
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    if out.is_null() {
        return CUDA_ERROR_INVALID_VALUE;
    }
    // SAFETY: per this function's contract.
    if !unsafe { valid_image(image) } {
        return CUDA_ERROR_INVALID_IMAGE;
    }
    let module = Box::leak(Box::new(Module {
        magic: MODULE_MAGIC,
        id: NEXT_MODULE.fetch_add(1, Ordering::Relaxed),
    }));
    // SAFETY: checked non-null; writable per the contract.
    unsafe { out.write((module as *mut Module).cast()) };
    CUDA_SUCCESS
}

/// # Safety
///
/// `out` is null or writable; `module` is null or a handle from
/// [`load_module`]; `name` is null or a NUL-terminated string.
unsafe fn get_function(
    out: *mut *mut c_void,
    module: *mut c_void,
    name: *const c_char,
) -> CUresult {
    if !initialized() {
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    if out.is_null() || name.is_null() {
        return CUDA_ERROR_INVALID_VALUE;
    }
    let module = module.cast::<Module>();
    // SAFETY: a non-null module is one of our leaked records (per the contract).
    if module.is_null() || unsafe { (*module).magic } != MODULE_MAGIC {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    // SAFETY: as above.
    let id = unsafe { (*module).id };
    // SAFETY: NUL-terminated per the contract.
    let name = unsafe { CStr::from_ptr(name) }.to_owned();
    let mut functions = FUNCTIONS.lock().unwrap_or_else(|e| e.into_inner());
    let handle = *functions.entry((id, name.clone())).or_insert_with(|| {
        let function = Box::leak(Box::new(Function {
            magic: FUNCTION_MAGIC,
            launches: AtomicU64::new(0),
            name,
        }));
        function as *mut Function as usize
    });
    // SAFETY: checked non-null; writable per the contract.
    unsafe { out.write(handle as *mut c_void) };
    CUDA_SUCCESS
}

/// # Safety
///
/// `f` is null or a handle from [`get_function`].
unsafe fn launch(f: CUfunction, grid: [c_uint; 3], block: [c_uint; 3]) -> CUresult {
    if !initialized() {
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    let function = f.cast::<Function>();
    // SAFETY: a non-null handle is one of our leaked records (per the contract).
    if function.is_null() || unsafe { (*function).magic } != FUNCTION_MAGIC {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    let threads = u64::from(block[0]) * u64::from(block[1]) * u64::from(block[2]);
    if grid.contains(&0) || threads == 0 || threads > 1024 {
        return CUDA_ERROR_INVALID_VALUE;
    }
    // SAFETY: as above.
    black_box(unsafe { &(*function).launches }.fetch_add(1, Ordering::Relaxed));
    CUDA_SUCCESS
}

#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn cuInit(flags: c_uint) -> CUresult {
    count(Call::Init);
    if flags != 0 {
        return CUDA_ERROR_INVALID_VALUE;
    }
    INITIALIZED.store(true, Ordering::Release);
    CUDA_SUCCESS
}

#[unsafe(no_mangle)]
#[inline(never)]
pub unsafe extern "C" fn cuDriverGetVersion(version: *mut c_int) -> CUresult {
    count(Call::DriverGetVersion);
    if version.is_null() {
        return CUDA_ERROR_INVALID_VALUE;
    }
    // SAFETY: checked non-null; writable per the API.
    unsafe { version.write(DRIVER_VERSION) };
    CUDA_SUCCESS
}

#[unsafe(no_mangle)]
#[inline(never)]
pub unsafe extern "C" fn cuDeviceGet(device: *mut CUdevice, ordinal: c_int) -> CUresult {
    count(Call::DeviceGet);
    if !initialized() {
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    if device.is_null() {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if ordinal != 0 {
        return CUDA_ERROR_INVALID_DEVICE;
    }
    // SAFETY: checked non-null; writable per the API.
    unsafe { device.write(0) };
    CUDA_SUCCESS
}

#[unsafe(no_mangle)]
#[inline(never)]
pub unsafe extern "C" fn cuDeviceGetCount(count_out: *mut c_int) -> CUresult {
    count(Call::DeviceGetCount);
    if !initialized() {
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    if count_out.is_null() {
        return CUDA_ERROR_INVALID_VALUE;
    }
    // SAFETY: checked non-null; writable per the API.
    unsafe { count_out.write(1) };
    CUDA_SUCCESS
}

#[unsafe(no_mangle)]
#[inline(never)]
pub unsafe extern "C" fn cuDeviceGetName(name: *mut c_char, len: c_int, dev: CUdevice) -> CUresult {
    count(Call::DeviceGetName);
    if !initialized() {
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    if dev != 0 {
        return CUDA_ERROR_INVALID_DEVICE;
    }
    let Ok(len) = usize::try_from(len) else {
        return CUDA_ERROR_INVALID_VALUE;
    };
    if name.is_null() || len == 0 {
        return CUDA_ERROR_INVALID_VALUE;
    }
    let n = DEVICE_NAME.len().min(len - 1);
    // SAFETY: `name` holds `len` writable bytes per the API; n + 1 <= len.
    unsafe {
        ptr::copy_nonoverlapping(DEVICE_NAME.as_ptr().cast::<c_char>(), name, n);
        name.add(n).write(0);
    }
    CUDA_SUCCESS
}

/// # Safety
///
/// `pctx` is null or writable.
unsafe fn create_context(pctx: *mut CUcontext, dev: CUdevice) -> CUresult {
    if !initialized() {
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    if pctx.is_null() {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if dev != 0 {
        return CUDA_ERROR_INVALID_DEVICE;
    }
    let context = Box::into_raw(Box::new(Context {
        magic: CONTEXT_MAGIC,
        device: dev,
    }));
    // SAFETY: checked non-null; writable per the contract.
    unsafe { pctx.write(context.cast()) };
    CUDA_SUCCESS
}

#[unsafe(no_mangle)]
#[inline(never)]
pub unsafe extern "C" fn cuCtxCreate_v2(
    pctx: *mut CUcontext,
    flags: c_uint,
    dev: CUdevice,
) -> CUresult {
    count(Call::CtxCreate);
    black_box(flags);
    // SAFETY: per the API.
    unsafe { create_context(pctx, dev) }
}

#[unsafe(no_mangle)]
#[inline(never)]
pub unsafe extern "C" fn cuCtxCreate_v3(
    pctx: *mut CUcontext,
    params: *mut CUexecAffinityParam,
    num_params: c_int,
    flags: c_uint,
    dev: CUdevice,
) -> CUresult {
    count(Call::CtxCreateV3);
    black_box((params, num_params, flags));
    // SAFETY: per the API.
    unsafe { create_context(pctx, dev) }
}

#[unsafe(no_mangle)]
#[inline(never)]
pub unsafe extern "C" fn cuCtxCreate_v4(
    pctx: *mut CUcontext,
    params: *mut CUctxCreateParams,
    flags: c_uint,
    dev: CUdevice,
) -> CUresult {
    count(Call::CtxCreateV4);
    black_box((params, flags));
    // SAFETY: per the API.
    unsafe { create_context(pctx, dev) }
}

/// The device's primary context, the one the CUDA runtime (so PyTorch)
/// uses. Each retain makes a new record here; nothing tracks references.
#[unsafe(no_mangle)]
#[inline(never)]
pub unsafe extern "C" fn cuDevicePrimaryCtxRetain(pctx: *mut CUcontext, dev: CUdevice) -> CUresult {
    count(Call::PrimaryCtxRetain);
    // SAFETY: per the API.
    unsafe { create_context(pctx, dev) }
}

#[unsafe(no_mangle)]
#[inline(never)]
pub unsafe extern "C" fn cuCtxDestroy_v2(ctx: CUcontext) -> CUresult {
    count(Call::CtxDestroy);
    let context = ctx.cast::<Context>();
    // SAFETY: a non-null context is one of ours (per the API).
    if context.is_null() || unsafe { (*context).magic } != CONTEXT_MAGIC {
        return CUDA_ERROR_INVALID_CONTEXT;
    }
    // SAFETY: made by Box::into_raw in create_context; destroyed once per the API.
    black_box(unsafe { Box::from_raw(context) }.device);
    CUDA_SUCCESS
}

#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn cuCtxSynchronize() -> CUresult {
    count(Call::CtxSynchronize);
    if !initialized() {
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    CUDA_SUCCESS
}

#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn cuStreamSynchronize(stream: CUstream) -> CUresult {
    count(Call::StreamSynchronize);
    black_box(stream);
    if !initialized() {
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    CUDA_SUCCESS
}

#[unsafe(no_mangle)]
#[inline(never)]
pub unsafe extern "C" fn cuModuleLoadData(module: *mut CUmodule, image: *const c_void) -> CUresult {
    count(Call::ModuleLoadData);
    // SAFETY: per the API.
    unsafe { load_module(module, image) }
}

#[unsafe(no_mangle)]
#[inline(never)]
pub unsafe extern "C" fn cuModuleLoadDataEx(
    module: *mut CUmodule,
    image: *const c_void,
    num_options: c_uint,
    options: *mut CUjit_option,
    option_values: *mut *mut c_void,
) -> CUresult {
    count(Call::ModuleLoadDataEx);
    black_box((num_options, options, option_values));
    // SAFETY: per the API.
    unsafe { load_module(module, image) }
}

/// A fatbin that the runtime registered (`__cudaRegisterFatBinary`).
#[unsafe(no_mangle)]
#[inline(never)]
pub unsafe extern "C" fn cuModuleLoadFatBinary(
    module: *mut CUmodule,
    fat_cubin: *const c_void,
) -> CUresult {
    count(Call::ModuleLoadFatBinary);
    // SAFETY: per the API.
    unsafe { load_module(module, fat_cubin) }
}

#[unsafe(no_mangle)]
#[inline(never)]
pub unsafe extern "C" fn cuModuleGetFunction(
    hfunc: *mut CUfunction,
    hmod: CUmodule,
    name: *const c_char,
) -> CUresult {
    count(Call::ModuleGetFunction);
    // SAFETY: per the API.
    unsafe { get_function(hfunc, hmod, name) }
}

#[unsafe(no_mangle)]
#[inline(never)]
#[allow(clippy::too_many_arguments, reason = "the CUDA driver API's signature")]
pub unsafe extern "C" fn cuLibraryLoadData(
    library: *mut CUlibrary,
    code: *const c_void,
    jit_options: *mut CUjit_option,
    jit_option_values: *mut *mut c_void,
    num_jit_options: c_uint,
    library_options: *mut CUlibraryOption,
    library_option_values: *mut *mut c_void,
    num_library_options: c_uint,
) -> CUresult {
    count(Call::LibraryLoadData);
    black_box((jit_options, jit_option_values, num_jit_options));
    black_box((library_options, library_option_values, num_library_options));
    // SAFETY: per the API.
    unsafe { load_module(library, code) }
}

#[unsafe(no_mangle)]
#[inline(never)]
pub unsafe extern "C" fn cuLibraryGetKernel(
    kernel: *mut CUkernel,
    library: CUlibrary,
    name: *const c_char,
) -> CUresult {
    count(Call::LibraryGetKernel);
    // SAFETY: per the API.
    unsafe { get_function(kernel, library, name) }
}

/// # Safety
///
/// `dptr` is null or writable.
unsafe fn alloc(dptr: *mut CUdeviceptr, bytesize: usize) -> CUresult {
    if !initialized() {
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    if dptr.is_null() || bytesize == 0 {
        return CUDA_ERROR_INVALID_VALUE;
    }
    let size = bytesize as u64;
    let mut memory = MEMORY.lock().unwrap_or_else(|e| e.into_inner());
    if memory.used.saturating_add(size) > DEVICE_MEMORY {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    let base = memory.next;
    // Real allocations are at least 512-byte aligned; large ones start on
    // 2 MiB pages.
    let align = if size >= 2 << 20 { 2 << 20 } else { 512 };
    memory.next = (base + size).next_multiple_of(align).next_multiple_of(512);
    memory.used += size;
    memory.live.insert(base, size);
    // SAFETY: checked non-null; writable per the contract.
    unsafe { dptr.write(base) };
    CUDA_SUCCESS
}

#[unsafe(no_mangle)]
#[inline(never)]
pub unsafe extern "C" fn cuMemAlloc_v2(dptr: *mut CUdeviceptr, bytesize: usize) -> CUresult {
    count(Call::MemAlloc);
    // SAFETY: per the API.
    unsafe { alloc(dptr, bytesize) }
}

#[unsafe(no_mangle)]
#[inline(never)]
pub unsafe extern "C" fn cuMemAllocManaged(
    dptr: *mut CUdeviceptr,
    bytesize: usize,
    flags: c_uint,
) -> CUresult {
    count(Call::MemAllocManaged);
    black_box(flags);
    // SAFETY: per the API.
    unsafe { alloc(dptr, bytesize) }
}

#[unsafe(no_mangle)]
#[inline(never)]
pub unsafe extern "C" fn cuMemAllocAsync(
    dptr: *mut CUdeviceptr,
    bytesize: usize,
    h_stream: CUstream,
) -> CUresult {
    count(Call::MemAllocAsync);
    black_box(h_stream);
    // SAFETY: per the API.
    unsafe { alloc(dptr, bytesize) }
}

#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn cuMemFree_v2(dptr: CUdeviceptr) -> CUresult {
    count(Call::MemFree);
    if !initialized() {
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    let mut memory = MEMORY.lock().unwrap_or_else(|e| e.into_inner());
    match memory.live.remove(&dptr) {
        Some(size) => {
            memory.used -= size;
            CUDA_SUCCESS
        }
        None => CUDA_ERROR_INVALID_VALUE,
    }
}

#[unsafe(no_mangle)]
#[inline(never)]
pub unsafe extern "C" fn cuMemGetInfo_v2(free: *mut usize, total: *mut usize) -> CUresult {
    count(Call::MemGetInfo);
    if !initialized() {
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    if free.is_null() || total.is_null() {
        return CUDA_ERROR_INVALID_VALUE;
    }
    let used = MEMORY.lock().unwrap_or_else(|e| e.into_inner()).used;
    // SAFETY: checked non-null; writable per the API.
    unsafe {
        free.write((DEVICE_MEMORY - used) as usize);
        total.write(DEVICE_MEMORY as usize);
    }
    CUDA_SUCCESS
}

#[unsafe(no_mangle)]
#[inline(never)]
pub unsafe extern "C" fn cuMemcpyHtoD_v2(
    dst_device: CUdeviceptr,
    src_host: *const c_void,
    byte_count: usize,
) -> CUresult {
    count(Call::MemcpyHtoD);
    if !initialized() {
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    if byte_count == 0 {
        return CUDA_SUCCESS;
    }
    let inside = MEMORY
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .contains(dst_device, byte_count as u64);
    if src_host.is_null() || !inside {
        return CUDA_ERROR_INVALID_VALUE;
    }
    // Touch the source's ends, as a copy would read them.
    let src = src_host.cast::<u8>();
    // SAFETY: `src_host` holds `byte_count` readable bytes per the API.
    black_box(unsafe { (src.read(), src.add(byte_count - 1).read()) });
    CUDA_SUCCESS
}

/// Device-to-host copies of up to this many bytes zero-fill the host
/// buffer (results read back by a miner, a loss); larger ones leave it.
const ZERO_FILL_MAX: usize = 64 << 10;

#[unsafe(no_mangle)]
#[inline(never)]
pub unsafe extern "C" fn cuMemcpyDtoH_v2(
    dst_host: *mut c_void,
    src_device: CUdeviceptr,
    byte_count: usize,
) -> CUresult {
    count(Call::MemcpyDtoH);
    if !initialized() {
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    if byte_count == 0 {
        return CUDA_SUCCESS;
    }
    let inside = MEMORY
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .contains(src_device, byte_count as u64);
    if dst_host.is_null() || !inside {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if byte_count <= ZERO_FILL_MAX {
        // SAFETY: `dst_host` holds `byte_count` writable bytes per the API.
        unsafe { dst_host.cast::<u8>().write_bytes(0, byte_count) };
    }
    CUDA_SUCCESS
}

#[unsafe(no_mangle)]
#[inline(never)]
#[allow(clippy::too_many_arguments, reason = "the CUDA driver API's signature")]
pub unsafe extern "C" fn cuLaunchKernel(
    f: CUfunction,
    grid_dim_x: c_uint,
    grid_dim_y: c_uint,
    grid_dim_z: c_uint,
    block_dim_x: c_uint,
    block_dim_y: c_uint,
    block_dim_z: c_uint,
    shared_mem_bytes: c_uint,
    h_stream: CUstream,
    kernel_params: *mut *mut c_void,
    extra: *mut *mut c_void,
) -> CUresult {
    count(Call::LaunchKernel);
    black_box((shared_mem_bytes, h_stream, kernel_params, extra));
    // SAFETY: per the API.
    unsafe {
        launch(
            f,
            [grid_dim_x, grid_dim_y, grid_dim_z],
            [block_dim_x, block_dim_y, block_dim_z],
        )
    }
}

#[unsafe(no_mangle)]
#[inline(never)]
pub unsafe extern "C" fn cuLaunchKernelEx(
    config: *const CUlaunchConfig,
    f: CUfunction,
    kernel_params: *mut *mut c_void,
    extra: *mut *mut c_void,
) -> CUresult {
    count(Call::LaunchKernelEx);
    if config.is_null() {
        return CUDA_ERROR_INVALID_VALUE;
    }
    // SAFETY: checked non-null; readable per the API.
    let config = unsafe { config.read() };
    black_box((
        config.sharedMemBytes,
        config.hStream,
        config.attrs,
        config.numAttrs,
    ));
    black_box((kernel_params, extra));
    // SAFETY: per the API.
    unsafe {
        launch(
            f,
            [config.gridDimX, config.gridDimY, config.gridDimZ],
            [config.blockDimX, config.blockDimY, config.blockDimZ],
        )
    }
}

/// `cuLaunchKernel` on the per-thread default stream (what
/// `cuGetProcAddress` gives with CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM).
#[unsafe(no_mangle)]
#[inline(never)]
#[allow(clippy::too_many_arguments, reason = "the CUDA driver API's signature")]
pub unsafe extern "C" fn cuLaunchKernel_ptsz(
    f: CUfunction,
    grid_dim_x: c_uint,
    grid_dim_y: c_uint,
    grid_dim_z: c_uint,
    block_dim_x: c_uint,
    block_dim_y: c_uint,
    block_dim_z: c_uint,
    shared_mem_bytes: c_uint,
    h_stream: CUstream,
    kernel_params: *mut *mut c_void,
    extra: *mut *mut c_void,
) -> CUresult {
    count(Call::LaunchKernelPtsz);
    black_box((shared_mem_bytes, h_stream, kernel_params, extra));
    // SAFETY: per the API.
    unsafe {
        launch(
            f,
            [grid_dim_x, grid_dim_y, grid_dim_z],
            [block_dim_x, block_dim_y, block_dim_z],
        )
    }
}

/// `cuLaunchKernelEx` on the per-thread default stream.
#[unsafe(no_mangle)]
#[inline(never)]
pub unsafe extern "C" fn cuLaunchKernelEx_ptsz(
    config: *const CUlaunchConfig,
    f: CUfunction,
    kernel_params: *mut *mut c_void,
    extra: *mut *mut c_void,
) -> CUresult {
    count(Call::LaunchKernelExPtsz);
    if config.is_null() {
        return CUDA_ERROR_INVALID_VALUE;
    }
    // SAFETY: checked non-null; readable per the API.
    let config = unsafe { config.read() };
    black_box((
        config.sharedMemBytes,
        config.hStream,
        config.attrs,
        config.numAttrs,
    ));
    black_box((kernel_params, extra));
    // SAFETY: per the API.
    unsafe {
        launch(
            f,
            [config.gridDimX, config.gridDimY, config.gridDimZ],
            [config.blockDimX, config.blockDimY, config.blockDimZ],
        )
    }
}

/// The entry point `cuGetProcAddress` returns for a driver API name, as
/// the runtime (and so PyTorch) asks for it: the base name, which the
/// driver maps to its newest versioned symbol; exact names work too.
/// With the per-thread default stream flag, stream-taking calls resolve to
/// their `_ptsz` variants.
fn proc_address(symbol: &[u8], flags: u64) -> Option<*mut c_void> {
    let per_thread = flags & CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM != 0;
    let f: *const () = match symbol {
        b"cuLaunchKernel" if per_thread => cuLaunchKernel_ptsz as *const (),
        b"cuLaunchKernelEx" if per_thread => cuLaunchKernelEx_ptsz as *const (),
        b"cuInit" => cuInit as *const (),
        b"cuDriverGetVersion" => cuDriverGetVersion as *const (),
        b"cuDeviceGet" => cuDeviceGet as *const (),
        b"cuDeviceGetCount" => cuDeviceGetCount as *const (),
        b"cuDeviceGetName" => cuDeviceGetName as *const (),
        b"cuCtxCreate" | b"cuCtxCreate_v2" => cuCtxCreate_v2 as *const (),
        b"cuCtxCreate_v3" => cuCtxCreate_v3 as *const (),
        b"cuCtxCreate_v4" => cuCtxCreate_v4 as *const (),
        b"cuDevicePrimaryCtxRetain" => cuDevicePrimaryCtxRetain as *const (),
        b"cuCtxDestroy" | b"cuCtxDestroy_v2" => cuCtxDestroy_v2 as *const (),
        b"cuCtxSynchronize" => cuCtxSynchronize as *const (),
        b"cuStreamSynchronize" => cuStreamSynchronize as *const (),
        b"cuModuleLoadData" => cuModuleLoadData as *const (),
        b"cuModuleLoadDataEx" => cuModuleLoadDataEx as *const (),
        b"cuModuleLoadFatBinary" => cuModuleLoadFatBinary as *const (),
        b"cuModuleGetFunction" => cuModuleGetFunction as *const (),
        b"cuLibraryLoadData" => cuLibraryLoadData as *const (),
        b"cuLibraryGetKernel" => cuLibraryGetKernel as *const (),
        b"cuMemAlloc" | b"cuMemAlloc_v2" => cuMemAlloc_v2 as *const (),
        b"cuMemAllocManaged" => cuMemAllocManaged as *const (),
        b"cuMemAllocAsync" => cuMemAllocAsync as *const (),
        b"cuMemFree" | b"cuMemFree_v2" => cuMemFree_v2 as *const (),
        b"cuMemGetInfo" | b"cuMemGetInfo_v2" => cuMemGetInfo_v2 as *const (),
        b"cuMemcpyHtoD" | b"cuMemcpyHtoD_v2" => cuMemcpyHtoD_v2 as *const (),
        b"cuMemcpyDtoH" | b"cuMemcpyDtoH_v2" => cuMemcpyDtoH_v2 as *const (),
        b"cuLaunchKernel" => cuLaunchKernel as *const (),
        b"cuLaunchKernelEx" => cuLaunchKernelEx as *const (),
        b"cuLaunchKernel_ptsz" => cuLaunchKernel_ptsz as *const (),
        b"cuLaunchKernelEx_ptsz" => cuLaunchKernelEx_ptsz as *const (),
        b"cuGetProcAddress" | b"cuGetProcAddress_v2" => cuGetProcAddress_v2 as *const (),
        b"cuGetErrorName" => cuGetErrorName as *const (),
        _ => return None,
    };
    Some(f.cast_mut().cast())
}

/// `CUdriverProcAddress_flags`.
const CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM: u64 = 2;
/// `CUdriverProcAddressQueryResult`.
const CU_GET_PROC_ADDRESS_SUCCESS: c_int = 0;
const CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND: c_int = 1;

/// # Safety
///
/// `symbol` is null or NUL-terminated; `pfn` is null or writable.
unsafe fn get_proc_address(symbol: *const c_char, pfn: *mut *mut c_void, flags: u64) -> CUresult {
    if symbol.is_null() || pfn.is_null() {
        return CUDA_ERROR_INVALID_VALUE;
    }
    // SAFETY: NUL-terminated per the contract.
    let found = proc_address(unsafe { CStr::from_ptr(symbol) }.to_bytes(), flags);
    // SAFETY: checked non-null; writable per the contract.
    unsafe { pfn.write(found.unwrap_or(ptr::null_mut())) };
    if found.is_some() {
        CUDA_SUCCESS
    } else {
        CUDA_ERROR_NOT_FOUND
    }
}

/// The CUDA 11.3–11.8 signature (still exported by CUDA 12 drivers).
#[unsafe(no_mangle)]
#[inline(never)]
pub unsafe extern "C" fn cuGetProcAddress(
    symbol: *const c_char,
    pfn: *mut *mut c_void,
    cuda_version: c_int,
    flags: u64,
) -> CUresult {
    count(Call::GetProcAddress);
    black_box(cuda_version);
    // SAFETY: per the API.
    unsafe { get_proc_address(symbol, pfn, flags) }
}

/// CUDA 12's, which also says why a symbol was not found.
#[unsafe(no_mangle)]
#[inline(never)]
pub unsafe extern "C" fn cuGetProcAddress_v2(
    symbol: *const c_char,
    pfn: *mut *mut c_void,
    cuda_version: c_int,
    flags: u64,
    symbol_status: *mut c_int,
) -> CUresult {
    count(Call::GetProcAddressV2);
    black_box(cuda_version);
    // SAFETY: per the API.
    let result = unsafe { get_proc_address(symbol, pfn, flags) };
    if !symbol_status.is_null() {
        let status = if result == CUDA_SUCCESS {
            CU_GET_PROC_ADDRESS_SUCCESS
        } else {
            CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND
        };
        // SAFETY: checked non-null; writable per the API.
        unsafe { symbol_status.write(status) };
    }
    result
}

#[unsafe(no_mangle)]
#[inline(never)]
pub unsafe extern "C" fn cuGetErrorName(error: CUresult, name: *mut *const c_char) -> CUresult {
    count(Call::GetErrorName);
    if name.is_null() {
        return CUDA_ERROR_INVALID_VALUE;
    }
    let text: &CStr = match error {
        CUDA_SUCCESS => c"CUDA_SUCCESS",
        CUDA_ERROR_INVALID_VALUE => c"CUDA_ERROR_INVALID_VALUE",
        CUDA_ERROR_OUT_OF_MEMORY => c"CUDA_ERROR_OUT_OF_MEMORY",
        CUDA_ERROR_NOT_INITIALIZED => c"CUDA_ERROR_NOT_INITIALIZED",
        CUDA_ERROR_INVALID_DEVICE => c"CUDA_ERROR_INVALID_DEVICE",
        CUDA_ERROR_INVALID_IMAGE => c"CUDA_ERROR_INVALID_IMAGE",
        CUDA_ERROR_INVALID_CONTEXT => c"CUDA_ERROR_INVALID_CONTEXT",
        CUDA_ERROR_INVALID_HANDLE => c"CUDA_ERROR_INVALID_HANDLE",
        CUDA_ERROR_NOT_FOUND => c"CUDA_ERROR_NOT_FOUND",
        _ => {
            // SAFETY: checked non-null; writable per the API.
            unsafe { name.write(ptr::null()) };
            return CUDA_ERROR_INVALID_VALUE;
        }
    };
    // SAFETY: checked non-null; writable per the API; the text is static.
    unsafe { name.write(text.as_ptr()) };
    CUDA_SUCCESS
}
