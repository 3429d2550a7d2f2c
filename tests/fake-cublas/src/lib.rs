//! A stand-in `libcublas.so.12` for tests on machines without a GPU.
//!
//! Deep-learning processes map cuBLAS (assay reads `/proc/<pid>/maps`) and
//! launch its GEMM kernels, whose names (`ampere_sgemm_128x64_nn`, …) say
//! what they are. Like the real library, this one reaches the driver by
//! `dlopen("libcuda.so.1")` (here only an already-loaded one, so that it can
//! never pick up a real driver), loads its kernels as a fatbin module when
//! a handle is created, and launches one named kernel per `cublasSgemm_v2`
//! through `cuLaunchKernel`, with the grid a tiled GEMM of that size uses.

#![allow(
    clippy::missing_safety_doc,
    reason = "the safety contracts are cuBLAS's, documented in cublas_api.h"
)]
#![allow(non_camel_case_types, reason = "names as cublas_api.h spells them")]

use std::{
    ffi::{CStr, c_char, c_int, c_uint, c_void},
    hint::black_box,
    ptr,
    sync::OnceLock,
};

pub type cublasStatus_t = c_uint;
pub type cublasHandle_t = *mut c_void;
pub type cublasOperation_t = c_int;

pub const CUBLAS_STATUS_SUCCESS: cublasStatus_t = 0;
pub const CUBLAS_STATUS_NOT_INITIALIZED: cublasStatus_t = 1;
pub const CUBLAS_STATUS_INVALID_VALUE: cublasStatus_t = 7;
pub const CUBLAS_STATUS_EXECUTION_FAILED: cublasStatus_t = 13;

pub const CUBLAS_OP_N: cublasOperation_t = 0;
pub const CUBLAS_OP_T: cublasOperation_t = 1;
pub const CUBLAS_OP_C: cublasOperation_t = 2;

type CuModuleLoadData = unsafe extern "C" fn(*mut *mut c_void, *const c_void) -> c_uint;
type CuModuleGetFunction =
    unsafe extern "C" fn(*mut *mut c_void, *mut c_void, *const c_char) -> c_uint;
type CuLaunchKernel = unsafe extern "C" fn(
    *mut c_void,
    c_uint,
    c_uint,
    c_uint,
    c_uint,
    c_uint,
    c_uint,
    c_uint,
    *mut c_void,
    *mut *mut c_void,
    *mut *mut c_void,
) -> c_uint;

/// The driver entry points cuBLAS uses.
struct Driver {
    module_load_data: CuModuleLoadData,
    module_get_function: CuModuleGetFunction,
    launch_kernel: CuLaunchKernel,
}

/// The driver, looked up once; `None` when no `libcuda.so.1` is loaded.
fn driver() -> Option<&'static Driver> {
    static DRIVER: OnceLock<Option<Driver>> = OnceLock::new();
    DRIVER
        .get_or_init(|| {
            // SAFETY: a constant C string; RTLD_NOLOAD only looks among the
            // objects already loaded (the fake driver matches by SONAME).
            let lib = unsafe {
                libc::dlopen(c"libcuda.so.1".as_ptr(), libc::RTLD_NOW | libc::RTLD_NOLOAD)
            };
            if lib.is_null() {
                return None;
            }
            let symbol = |name: &CStr| {
                // SAFETY: a live handle and a constant C string.
                let f = unsafe { libc::dlsym(lib, name.as_ptr()) };
                (!f.is_null()).then_some(f)
            };
            let (load, get, launch) = (
                symbol(c"cuModuleLoadData")?,
                symbol(c"cuModuleGetFunction")?,
                symbol(c"cuLaunchKernel")?,
            );
            // SAFETY: the driver exports these names with these signatures
            // (cuda.h).
            unsafe {
                Some(Driver {
                    module_load_data: std::mem::transmute::<*mut c_void, CuModuleLoadData>(load),
                    module_get_function: std::mem::transmute::<*mut c_void, CuModuleGetFunction>(
                        get,
                    ),
                    launch_kernel: std::mem::transmute::<*mut c_void, CuLaunchKernel>(launch),
                })
            }
        })
        .as_ref()
}

/// GEMM tiles, biggest first: (rows, columns, threads per block, split-k
/// slices), and the kernel name stem for each.
const TILES: [(u32, u32, u32, u32, &str); 3] = [
    (128, 64, 256, 1, "ampere_sgemm_128x64"),
    (64, 32, 128, 4, "ampere_sgemm_64x32_sliced1x4"),
    (32, 32, 128, 4, "ampere_sgemm_32x32_sliced1x4"),
];
const OPS: [&str; 4] = ["nn", "nt", "tn", "tt"];

/// A fatbin's header (magic 0xBA55ED50, version 1, header size 16, then
/// the payload's size) and a payload of no consequence.
static CUBLAS_FATBIN: [u8; 64] = {
    let mut image = [0u8; 64];
    let header = [0x50, 0xED, 0x55, 0xBA, 1, 0, 16, 0, 48, 0, 0, 0, 0, 0, 0, 0];
    let mut i = 0;
    while i < header.len() {
        image[i] = header[i];
        i += 1;
    }
    image
};

const HANDLE_MAGIC: u64 = 0xC0B1A5;

#[repr(C)]
struct Handle {
    magic: u64,
    stream: *mut c_void,
    /// `CUfunction`s by tile, then by operation pair (`OPS`).
    kernels: [[*mut c_void; 4]; 3],
}

/// # Safety
///
/// `handle` is null or one from `cublasCreate_v2`, not destroyed.
unsafe fn handle<'a>(handle: cublasHandle_t) -> Option<&'a mut Handle> {
    let h = handle.cast::<Handle>();
    // SAFETY: a non-null handle is one of our live records (per the contract).
    (!h.is_null() && unsafe { (*h).magic } == HANDLE_MAGIC).then(|| unsafe { &mut *h })
}

#[unsafe(no_mangle)]
#[inline(never)]
pub unsafe extern "C" fn cublasCreate_v2(out: *mut cublasHandle_t) -> cublasStatus_t {
    if out.is_null() {
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    let Some(driver) = driver() else {
        return CUBLAS_STATUS_NOT_INITIALIZED;
    };
    let mut module = ptr::null_mut();
    // SAFETY: a writable out-pointer and a fatbin image that outlives the
    // call.
    if unsafe { (driver.module_load_data)(&mut module, CUBLAS_FATBIN.as_ptr().cast()) } != 0 {
        return CUBLAS_STATUS_NOT_INITIALIZED;
    }
    let mut kernels = [[ptr::null_mut(); 4]; 3];
    for (tile, row) in TILES.iter().zip(&mut kernels) {
        for (op, kernel) in OPS.iter().zip(row.iter_mut()) {
            let name = format!("{}_{op}\0", tile.4);
            // SAFETY: a writable out-pointer, our module, a NUL-terminated
            // name.
            let status =
                unsafe { (driver.module_get_function)(kernel, module, name.as_ptr().cast()) };
            if status != 0 {
                return CUBLAS_STATUS_NOT_INITIALIZED;
            }
        }
    }
    let handle = Box::into_raw(Box::new(Handle {
        magic: HANDLE_MAGIC,
        stream: ptr::null_mut(),
        kernels,
    }));
    // SAFETY: checked non-null; writable per the API.
    unsafe { out.write(handle.cast()) };
    CUBLAS_STATUS_SUCCESS
}

#[unsafe(no_mangle)]
#[inline(never)]
pub unsafe extern "C" fn cublasDestroy_v2(h: cublasHandle_t) -> cublasStatus_t {
    // SAFETY: per the API.
    if unsafe { handle(h) }.is_none() {
        return CUBLAS_STATUS_NOT_INITIALIZED;
    }
    // SAFETY: made by Box::into_raw in cublasCreate_v2; destroyed once per
    // the API.
    drop(unsafe { Box::from_raw(h.cast::<Handle>()) });
    CUBLAS_STATUS_SUCCESS
}

#[unsafe(no_mangle)]
#[inline(never)]
pub unsafe extern "C" fn cublasSetStream_v2(
    h: cublasHandle_t,
    stream: *mut c_void,
) -> cublasStatus_t {
    // SAFETY: per the API.
    let Some(handle) = (unsafe { handle(h) }) else {
        return CUBLAS_STATUS_NOT_INITIALIZED;
    };
    handle.stream = stream;
    CUBLAS_STATUS_SUCCESS
}

fn op_index(op: cublasOperation_t) -> Option<usize> {
    match op {
        CUBLAS_OP_N => Some(0),
        CUBLAS_OP_T | CUBLAS_OP_C => Some(1),
        _ => None,
    }
}

/// C = alpha·op(A)·op(B) + beta·C, column-major, as one launch of the
/// kernel the size calls for.
#[unsafe(no_mangle)]
#[inline(never)]
#[allow(clippy::too_many_arguments, reason = "cuBLAS's signature")]
pub unsafe extern "C" fn cublasSgemm_v2(
    h: cublasHandle_t,
    transa: cublasOperation_t,
    transb: cublasOperation_t,
    m: c_int,
    n: c_int,
    k: c_int,
    alpha: *const f32,
    a: *const f32,
    lda: c_int,
    b: *const f32,
    ldb: c_int,
    beta: *const f32,
    c: *mut f32,
    ldc: c_int,
) -> cublasStatus_t {
    // SAFETY: per the API.
    let Some(handle) = (unsafe { handle(h) }) else {
        return CUBLAS_STATUS_NOT_INITIALIZED;
    };
    let (Some(ta), Some(tb)) = (op_index(transa), op_index(transb)) else {
        return CUBLAS_STATUS_INVALID_VALUE;
    };
    let (Ok(rows), Ok(cols), Ok(depth)) = (u32::try_from(m), u32::try_from(n), u32::try_from(k))
    else {
        return CUBLAS_STATUS_INVALID_VALUE;
    };
    if alpha.is_null() || beta.is_null() || lda < 1 || ldb < 1 || ldc < m.max(1) {
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    if rows == 0 || cols == 0 {
        return CUBLAS_STATUS_SUCCESS;
    }
    // SAFETY: host scalars (the default pointer mode), readable per the API.
    let (alpha_value, beta_value) = unsafe { (alpha.read(), beta.read()) };
    let Some(driver) = driver() else {
        return CUBLAS_STATUS_NOT_INITIALIZED;
    };
    let tile = TILES
        .iter()
        .position(|&(tm, tn, ..)| rows >= tm * 4 && cols >= tn * 4)
        .unwrap_or(TILES.len() - 1);
    let (tm, tn, threads, slices, _) = TILES[tile];
    let kernel = handle.kernels[tile][ta * 2 + tb];
    let mut args: [*mut c_void; 9] = [
        (&raw const a).cast_mut().cast(),
        (&raw const b).cast_mut().cast(),
        (&raw const c).cast_mut().cast(),
        (&raw const m).cast_mut().cast(),
        (&raw const n).cast_mut().cast(),
        (&raw const k).cast_mut().cast(),
        (&raw const alpha_value).cast_mut().cast(),
        (&raw const beta_value).cast_mut().cast(),
        (&raw const ldc).cast_mut().cast(),
    ];
    black_box(depth);
    // SAFETY: a function of the fake driver's, and a parameter array that
    // outlives the call.
    let status = unsafe {
        (driver.launch_kernel)(
            kernel,
            rows.div_ceil(tm),
            cols.div_ceil(tn),
            slices,
            threads,
            1,
            1,
            0,
            handle.stream,
            args.as_mut_ptr(),
            ptr::null_mut(),
        )
    };
    if status == 0 {
        CUBLAS_STATUS_SUCCESS
    } else {
        CUBLAS_STATUS_EXECUTION_FAILED
    }
}
