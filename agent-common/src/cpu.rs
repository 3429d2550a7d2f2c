//! Per-thread CPU fingerprint counters kept by the kernel in `FPU_STATS`,
//! keyed by thread id. Per thread, not per process: a miner's hashing
//! threads carry the fingerprint, its idle helper threads dilute it.

/// Context switches that saved FPU state, and how many of them found the
/// MXCSR rounding-control bits (`mxcsr & 0x6000`) away from the default
/// round-to-nearest. RandomX executes CFROUND, which changes them all the
/// time; almost nothing else keeps them changed (SIGNATURES.md, CPU
/// proof-of-work).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FpuStats {
    /// The thread's process.
    pub tgid: u32,
    pub _pad: u32,
    pub switches: u64,
    pub nondefault_rounding: u64,
}
const _: () = assert!(size_of::<FpuStats>() == 24);

/// MXCSR bits 13–14: rounding control. 0 = round to nearest (the default).
pub const MXCSR_ROUNDING_MASK: u32 = 0x6000;

#[cfg(feature = "user")]
// SAFETY: #[repr(C)], integers only, no padding.
unsafe impl aya::Pod for FpuStats {}
