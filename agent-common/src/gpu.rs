//! The CUDA driver sensor's wire types: uprobes on `libcuda.so.1` and
//! `libnvrtc` report setup calls (modules, kernels, allocations, runtime
//! compiles) as [`CudaEvent`]s; launches are too hot for events and are
//! aggregated in the kernel per process and function ([`LaunchStats`]),
//! only while user space has the launch probes attached (duty cycle).

/// What a [`CudaEvent`] reports.
pub mod cuda_call {
    /// `cuCtxCreate*`.
    pub const CTX_CREATE: u32 = 1;
    /// `cuModuleLoadData`, `cuModuleLoadDataEx`, `cuLibraryLoadData`:
    /// `value` holds the image's first 8 bytes (ELF cubin, fatbin or PTX).
    pub const MODULE_LOAD: u32 = 2;
    /// `cuModuleGetFunction`, `cuLibraryGetKernel` returned: `handle` is
    /// the function, `name` its name.
    pub const GET_FUNCTION: u32 = 3;
    /// `cuMemAlloc*`: `value` is the size in bytes.
    pub const MEM_ALLOC: u32 = 4;
    /// `nvrtcCompileProgram`: a kernel compiled at run time.
    pub const RUNTIME_COMPILE: u32 = 5;
}

/// Bytes of a kernel name kept (C++ names are longer; their start says
/// enough: namespace and template).
pub const KERNEL_NAME_LEN: usize = 96;

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct CudaEvent {
    pub header: crate::event::EventHeader,
    /// One of [`cuda_call`].
    pub call: u32,
    pub _pad: u32,
    pub value: u64,
    pub handle: u64,
    /// NUL-terminated kernel name for [`cuda_call::GET_FUNCTION`].
    pub name: [u8; KERNEL_NAME_LEN],
}
const _: () = assert!(size_of::<CudaEvent>() == 152);

/// Launches of one function by one process, while the launch probes are
/// attached.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct LaunchKey {
    pub tgid: u32,
    pub _pad: u32,
    /// The `CUfunction` handle.
    pub function: u64,
}
const _: () = assert!(size_of::<LaunchKey>() == 16);

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LaunchStats {
    pub launches: u64,
    pub first_ns: u64,
    pub last_ns: u64,
    /// Sum of gaps between consecutive launches, and of their squares, in
    /// microseconds (saturating): the regularity of the launch beat.
    pub gap_sum_us: u64,
    pub gap_sq_sum_us: u64,
    /// Grid and block of the last launch (x, y, z each).
    pub grid: [u32; 3],
    pub block: [u32; 3],
    /// Launches whose grid or block differed from the previous one's.
    pub shape_changes: u64,
    /// One bit per [`SLOT_NS`] slot of monotonic time (modulo 64) in which
    /// the function was launched: how bursty launches are within a window.
    pub busy_slots: u64,
}
const _: () = assert!(size_of::<LaunchStats>() == 80);

/// Width of one [`LaunchStats::busy_slots`] slot: 100 ms.
pub const SLOT_NS: u64 = 100_000_000;

#[cfg(feature = "user")]
mod pod {
    // SAFETY: #[repr(C)], integers only, explicit padding.
    unsafe impl aya::Pod for super::LaunchKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::LaunchStats {}
}
