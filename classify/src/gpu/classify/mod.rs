//! The GPU workload classifier (docs/signatures.md, "GPU proof-of-work vs AI"):
//! from what one process did on the CUDA driver ([`CudaActivity`], filled by
//! the CUDA sensor) and, when there is one, its telemetry window
//! ([`TelemetrySummary`]), to a [`GpuVerdict`]: pow-mining, ai-training,
//! ai-inference, zk-proving or unknown, with the facts that drove it.
//!
//! Pure: no I/O, no clock. Every threshold is a named constant below.
//!
//! # Rules, in order
//!
//! 1. **Too few launches** (under [`MIN_LAUNCHES`]): the kernels cannot be
//!    judged; telemetry alone gives at most a lean of strength
//!    [`TELEMETRY_ONLY_MAX_STRENGTH`], never decisive (a memory-bound job
//!    pins memory utilisation as a memory-hard miner does).
//! 2. **Mining loop shape**: the top one or two kernels carry at least
//!    [`MINING_MIN_DOMINANT_SHARE`] of the launches, there are at most
//!    [`MINING_MAX_KERNELS`] distinct kernels, at most [`MINING_MAX_SHAPES`]
//!    launch shapes and at most [`MAX_SHAPE_CHANGE_SHARE`] of launches
//!    changing shape. A training loop has dozens of kernels even when one
//!    dominates, so it never has this shape.
//!    - With a deep-learning library mapped: pow-mining only if a kernel is
//!      named like a proof-of-work algorithm (weak), otherwise unknown (a
//!      GEMM benchmark or a stress test such as gpu-burn runs this way).
//!    - Otherwise pow-mining, strength [`MINING_BASE_STRENGTH`] plus
//!      [`MINING_EXTRA_STRENGTH`] for each *strong extra*: kernels compiled
//!      at run time by NVRTC (not counted when CuPy, which compiles its own
//!      kernels with NVRTC, is mapped); memory utilisation pinned on a
//!      device the process has to itself; a kernel named like a
//!      proof-of-work algorithm. Minor facts (modules loaded, PCIe idle,
//!      memory static, a regular launch beat, sustained launches, a few
//!      large allocations) add [`MINING_MINOR_STRENGTH`] each.
//!    - **Decisive** only when all of: the shape above, no deep-learning
//!      library mapped, at least [`DECISIVE_MIN_LAUNCHES`] launches, at
//!      least [`DECISIVE_MIN_EXTRAS`] strong extras, launches in at least
//!      [`SUSTAINED_MIN_BUSY_SHARE`] of the window's slices (when slices
//!      were counted), and PCIe not busy. One strong extra is not enough: a
//!      single-kernel memory-bound loop (a stencil, a benchmark) pins memory
//!      utilisation too.
//! 3. **ZK proving**: kernels named like provers' (MSM, NTT, Poseidon,
//!    Groth16, PLONK, BN254, BLS12-381…) carry at least
//!    [`ZK_MIN_SHARE`] of the launches, or two of them appear. Names are
//!    weak: at most [`ZK_MAX_STRENGTH`], never decisive, and a decisive
//!    mining verdict from rule 2 wins over them.
//! 4. **AI**: a deep-learning library mapped (cuBLAS, cuDNN, NCCL,
//!    TensorRT, PyTorch, ONNX Runtime, XLA, TensorFlow), or at least two of
//!    the top kernels named like theirs (GEMM, cutlass, `at::native`…).
//!    Training when backward-pass or optimizer kernels are launched, or
//!    NCCL is mapped and launches are sustained, or at least
//!    [`TRAINING_MIN_KERNELS`] distinct kernels run steadily; inference
//!    when launches come in bursts (busy slices at most
//!    [`BURSTY_MAX_BUSY_SHARE`]) or an inference runtime (TensorRT, ONNX
//!    Runtime) is mapped. Strength [`AI_BASE_STRENGTH`] up to
//!    [`AI_MAX_STRENGTH`]; never decisive (benign classes are reports).
//! 5. Anything else is unknown, with the facts seen.
//!
//! The parts: `activity` is what the CUDA sensor saw, `verdict` what comes
//! out; `names` tells kernel names apart, `facts` turns the activity and the
//! telemetry into the facts the rules read; `lean` is rule 1, `mining`
//! rule 2, `zk_ai` rules 3 to 5; `wording` writes the numbers and names of
//! a reason as a person reads them.

mod activity;
mod facts;
mod lean;
mod mining;
mod names;
#[cfg(test)]
mod tests;
mod verdict;
mod wording;
mod zk_ai;

pub use activity::{CudaActivity, KernelLaunches, MappedLibraries};
pub use verdict::{GpuClass, GpuVerdict};

use self::{
    facts::{KernelFacts, TelemetryFacts},
    lean::telemetry_only,
    mining::mining,
    zk_ai::{ai, general, zk_proving},
};
use super::window::TelemetrySummary;

/// Kernel names the sensor reports per process, at most (most launched
/// first).
pub const MAX_KERNEL_NAMES: usize = 16;

/// Fewer launches in a window say nothing about the kernels' shape.
pub const MIN_LAUNCHES: u64 = 100;
/// Share of launches the top one or two kernels carry in a mining loop
/// (docs/signatures.md: 1–2 distinct kernels).
pub const MINING_MIN_DOMINANT_SHARE: f64 = 0.95;
/// Distinct kernels a mining loop may show in a window: its search kernel
/// or two, plus a rare setup kernel (DAG generation) launched a few times.
pub const MINING_MAX_KERNELS: usize = 4;
/// Distinct launch shapes (grid × block) of a mining loop: one per search
/// kernel.
pub const MINING_MAX_SHAPES: usize = 2;
/// Share of launches whose shape differs from the kernel's previous one,
/// at most: a miner launches with an identical grid every time.
pub const MAX_SHAPE_CHANGE_SHARE: f64 = 0.01;
/// Launches needed for a decisive verdict: enough that a constant shape is
/// no coincidence.
pub const DECISIVE_MIN_LAUNCHES: u64 = 1000;
/// Strong extras (run-time compile, pinned memory utilisation, a
/// proof-of-work kernel name) a decisive verdict needs.
pub const DECISIVE_MIN_EXTRAS: usize = 2;
/// Share of slices with launches for "sustained": a miner never pauses.
pub const SUSTAINED_MIN_BUSY_SHARE: f64 = 0.8;
/// Slices needed before the busy share means anything.
pub const MIN_SLICES: u32 = 4;
/// Inter-launch gap variation at most this is a regular beat.
pub const REGULAR_GAP_MAX_CV: f64 = 0.5;
/// Allocations "few" for a miner: its DAG or scratchpad and a result
/// buffer, allocated once.
pub const FEW_ALLOCATIONS: u64 = 16;
/// A large allocation, bytes (a DAG is gigabytes).
pub const LARGE_ALLOCATION: u64 = 1 << 30;

pub const MINING_BASE_STRENGTH: f32 = 0.5;
pub const MINING_EXTRA_STRENGTH: f32 = 0.15;
pub const MINING_MINOR_STRENGTH: f32 = 0.05;
/// Mining shape with a deep-learning library mapped and a proof-of-work
/// kernel name: suspicious, not more.
pub const MINING_WITH_DL_STRENGTH: f32 = 0.4;
/// Mining-like names without the mining shape.
pub const MINING_NAME_ONLY_STRENGTH: f32 = 0.3;

/// Share of launches by prover-named kernels for zk-proving.
pub const ZK_MIN_SHARE: f64 = 0.3;
pub const ZK_BASE_STRENGTH: f32 = 0.4;
pub const ZK_MAX_STRENGTH: f32 = 0.5;

/// "Dozens" of distinct kernels: a training step runs forward, backward and
/// optimizer kernels.
pub const TRAINING_MIN_KERNELS: usize = 30;
/// Share of slices with launches at most this is bursty (idle gaps between
/// requests).
pub const BURSTY_MAX_BUSY_SHARE: f64 = 0.7;
pub const AI_BASE_STRENGTH: f32 = 0.4;
/// Each further mark of the chosen AI class.
pub const AI_MARK_STRENGTH: f32 = 0.1;
pub const AI_MAX_STRENGTH: f32 = 0.8;
/// A deep-learning stack whose phase (training or inference) is unclear.
pub const AI_UNCLEAR_STRENGTH: f32 = 0.25;

/// Telemetry without launches: a lean, never more.
pub const TELEMETRY_ONLY_MAX_STRENGTH: f32 = 0.3;
/// Telemetry samples needed before device figures are used (10 s at 1 Hz).
pub const MIN_TELEMETRY_SAMPLES: usize = 10;
/// Memory utilisation pinned: mean at least this…
pub const MEM_PINNED_MIN_PCT: f64 = 80.0;
/// …with a standard deviation at most this (memory-hard PoW: "pinned high,
/// very low variance").
pub const MEM_PINNED_MAX_STDDEV: f64 = 3.0;
/// GPU utilisation pinned: mean at least this, stddev at most the next.
pub const COMPUTE_PINNED_MIN_PCT: f64 = 95.0;
pub const COMPUTE_PINNED_MAX_STDDEV: f64 = 2.0;
/// PCIe both ways at most this is idle, kilobytes per second (a miner
/// reads back a result now and then).
pub const PCIE_IDLE_MAX_KBPS: f64 = 2_000.0;
/// PCIe both ways at least this is busy (data loading, NCCL over PCIe).
pub const PCIE_BUSY_MIN_KBPS: f64 = 50_000.0;
/// Memory in use varying at most this (coefficient of variation) is
/// static…
pub const MEM_STATIC_MAX_CV: f64 = 0.01;
/// …and at least this is changing.
pub const MEM_CHANGING_MIN_CV: f64 = 0.05;
/// Idle samples (see `window::IDLE_UTIL_PCT`) at least this share: bursty.
pub const TELEMETRY_BURSTY_MIN_IDLE_SHARE: f64 = 0.2;
/// A burst reaches at least this GPU utilisation.
pub const BURST_MIN_PEAK_PCT: f64 = 30.0;
/// Busy throughout: mean GPU utilisation at least this…
pub const STEADY_MIN_UTIL_PCT: f64 = 60.0;
/// …and idle samples at most this share.
pub const STEADY_MAX_IDLE_SHARE: f64 = 0.05;
/// Memory utilisation varies with phases: stddev at least this.
pub const MEM_UTIL_VARYING_MIN_STDDEV: f64 = 5.0;
/// Process memory samples (one per 10 s) needed to judge its memory.
pub const MIN_PROCESS_SAMPLES: usize = 3;

/// Lean from pinned memory utilisation alone (memory-hard PoW's mark).
pub const TELEMETRY_MEM_PINNED_LEAN: f32 = 0.3;
/// Lean from pinned GPU utilisation with idle PCIe (compute-bound PoW).
pub const TELEMETRY_COMPUTE_PINNED_LEAN: f32 = 0.2;
/// Lean towards an AI class from utilisation shape.
pub const TELEMETRY_AI_LEAN: f32 = 0.2;

/// Judges one process's GPU work.
pub fn classify(activity: &CudaActivity, telemetry: Option<&TelemetrySummary>) -> GpuVerdict {
    let t = telemetry.map(TelemetryFacts::of).unwrap_or_default();
    if activity.launches < MIN_LAUNCHES {
        return telemetry_only(activity, &t);
    }
    let k = KernelFacts::of(activity);
    let zk = zk_proving(activity, &k);
    if k.mining_shape {
        let verdict = mining(activity, &k, &t);
        if verdict.decisive || zk.is_none() {
            return verdict;
        }
    }
    if let Some(verdict) = zk {
        return verdict;
    }
    if k.ai_stack() {
        return ai(activity, &k, &t);
    }
    general(activity, &k, &t)
}
