//! Per-thread CPU fingerprint counters kept by the kernel in `FPU_STATS`,
//! keyed by thread id. Per thread, not per process: a miner's hashing
//! threads carry the fingerprint, its idle helper threads dilute it.

/// Context switches that saved FPU state, by the MXCSR rounding mode they
/// saved. RandomX executes CFROUND, which sets a random mode all the time,
/// so all three non-default modes show up; benign code that changes rounding
/// (interval arithmetic) uses one or two modes, and most code none
/// (docs/signatures.md, CPU proof-of-work).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FpuStats {
    /// The thread's process.
    pub tgid: u32,
    pub _pad: u32,
    pub switches: u64,
    /// Switches saved with each rounding mode, indexed by MXCSR bits 13–14:
    /// [nearest (default), down, up, toward zero].
    pub by_mode: [u64; 4],
}
const _: () = assert!(size_of::<FpuStats>() == 48);

impl FpuStats {
    /// Switches saved with any rounding mode other than the default.
    pub fn nondefault(&self) -> u64 {
        self.by_mode[1] + self.by_mode[2] + self.by_mode[3]
    }
}

/// MXCSR bits 13–14: rounding control. 0 = round to nearest (the default).
pub const MXCSR_ROUNDING_SHIFT: u32 = 13;

#[cfg(feature = "user")]
// SAFETY: #[repr(C)], integers only, no padding.
unsafe impl aya::Pod for FpuStats {}
