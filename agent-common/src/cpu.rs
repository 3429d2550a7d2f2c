//! Per-thread CPU fingerprint counters kept by the kernel in `FPU_STATS`,
//! keyed by thread id: only switches that saved non-default rounding are
//! counted (the default one is left at once, which keeps the program cheap
//! on every context switch of the host); the thread's total switches come
//! from the kernel's per-task counters in /proc.

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
    /// Switches that saved non-default rounding.
    pub switches: u64,
    /// Those switches by the rounding mode saved, indexed by MXCSR bits
    /// 13–14: [nearest (default, always 0), down, up, toward zero].
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
