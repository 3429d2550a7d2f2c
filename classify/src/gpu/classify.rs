//! The GPU workload classifier (SIGNATURES.md, "GPU proof-of-work vs AI"):
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

use serde::{Deserialize, Serialize};

use super::window::TelemetrySummary;

/// Kernel names the sensor reports per process, at most (most launched
/// first).
pub const MAX_KERNEL_NAMES: usize = 16;

/// Fewer launches in a window say nothing about the kernels' shape.
pub const MIN_LAUNCHES: u64 = 100;
/// Share of launches the top one or two kernels carry in a mining loop
/// (SIGNATURES.md: 1–2 distinct kernels).
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

/// Kernel names that are proof-of-work algorithms (open-source miners:
/// ethminer `ethash_search`, kawpowminer `progpow_search`, ccminer,
/// xmrig-cuda, …). Closed miners obfuscate: never required.
const POW_NAMES: &[&str] = &[
    "ethash",
    "etchash",
    "progpow",
    "kawpow",
    "firopow",
    "meowpow",
    "cryptonight",
    "randomx",
    "equihash",
    "zhash",
    "beamhash",
    "cuckoo",
    "cuckatoo",
    "cuckaroo",
    "autolykos",
    "heavyhash",
    "octopus",
    "verthash",
    "lyra2",
    "neoscrypt",
    "x16r",
    "sha256d",
    "nexapow",
    "fishhash",
];

/// Substrings of zero-knowledge provers' kernel names (bellman-cuda,
/// sppark, icicle, Aleo provers): curves, hashes, proof systems.
const ZK_NAMES: &[&str] = &[
    "poseidon",
    "groth16",
    "plonk",
    "bn254",
    "bn128",
    "bls12",
    "bls381",
    "pippenger",
    "halo2",
    "sppark",
    "icicle",
    "goldilocks",
    "babybear",
];

/// Short prover words (multi-scalar multiplication, number-theoretic
/// transforms), matched only at the start of a name part: parts split at
/// anything but a letter, so `_Z10msm_kernel` and `ntt::forward` match and
/// `attention` does not.
const ZK_PARTS: &[&str] = &["msm", "ntt", "intt"];

/// Substrings of backward-pass and optimizer kernels: training, not
/// inference.
const TRAINING_NAMES: &[&str] = &[
    "backward",
    "bwd",
    "wgrad",
    "dgrad",
    "grad_input",
    "grad_weight",
    "adam",
    "multi_tensor_apply",
    "sgd",
];

/// Substrings of deep-learning libraries' kernels (cuBLAS, cutlass, cuDNN,
/// PyTorch, Triton, attention).
const DL_NAMES: &[&str] = &[
    "gemm",
    "cutlass",
    "cudnn",
    "cublas",
    "at::native",
    "xmma",
    "fmha",
    "flash",
    "softmax",
    "layer_norm",
    "layernorm",
    "triton",
    "elementwise",
    "nchw",
    "nhwc",
    "attention",
];

/// Launches of one kernel in the window.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelLaunches {
    /// As `cuModuleGetFunction` named it (mangled C++ names as they are);
    /// empty when the sensor did not see the name.
    pub name: String,
    pub launches: u64,
}

/// The GPU libraries a process maps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MappedLibraries {
    /// `libcuda.so.1`, the driver API.
    pub libcuda: bool,
    /// `libnvrtc`: run-time kernel compilation.
    pub nvrtc: bool,
    pub cublas: bool,
    pub cublas_lt: bool,
    pub cudnn: bool,
    pub nccl: bool,
    /// `libnvinfer`.
    pub tensorrt: bool,
    /// `libtorch_cuda`, `libc10_cuda`.
    pub torch: bool,
    /// CuPy: a numeric array library, not a deep-learning one; it compiles
    /// its kernels with NVRTC.
    pub cupy: bool,
    pub onnxruntime: bool,
    /// XLA (JAX, jaxlib's CUDA plugin).
    pub xla: bool,
    pub tensorflow: bool,
}

impl MappedLibraries {
    /// The deep-learning libraries mapped, by name: training and inference
    /// map them, a miner does not.
    pub fn deep_learning(&self) -> Vec<&'static str> {
        [
            (self.cublas, "cuBLAS"),
            (self.cublas_lt, "cuBLASLt"),
            (self.cudnn, "cuDNN"),
            (self.nccl, "NCCL"),
            (self.tensorrt, "TensorRT"),
            (self.torch, "PyTorch"),
            (self.onnxruntime, "ONNX Runtime"),
            (self.xla, "XLA"),
            (self.tensorflow, "TensorFlow"),
        ]
        .into_iter()
        .filter_map(|(mapped, name)| mapped.then_some(name))
        .collect()
    }

    /// Inference runtimes mapped.
    fn inference_runtimes(&self) -> Vec<&'static str> {
        [
            (self.tensorrt, "TensorRT"),
            (self.onnxruntime, "ONNX Runtime"),
        ]
        .into_iter()
        .filter_map(|(mapped, name)| mapped.then_some(name))
        .collect()
    }
}

/// What one process did on the CUDA driver during a window (the CUDA
/// sensor fills it; setup counters cover the process's life so far).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CudaActivity {
    /// Seconds the launch probes watched (summed over duty-cycle windows).
    pub window_s: f64,
    pub launches: u64,
    pub distinct_kernels: usize,
    /// Most launched first, at most [`MAX_KERNEL_NAMES`].
    pub kernels: Vec<KernelLaunches>,
    /// Distinct grid × block combinations launched (0: not known).
    pub distinct_launch_shapes: usize,
    /// Launches whose grid or block differed from the same kernel's
    /// previous launch.
    pub shape_changes: u64,
    /// Coefficient of variation of the gaps between launches.
    pub launch_gap_cv: Option<f64>,
    /// The window cut into slices (sub-windows, or successive duty-cycle
    /// windows); those with at least one launch. `slices == 0`: not known.
    pub busy_slices: u32,
    pub slices: u32,
    /// `cuModuleLoadData*` / `cuLibraryLoadData` calls.
    pub modules_loaded: u64,
    /// `nvrtcCompileProgram` calls.
    pub runtime_compiles: u64,
    pub bytes_allocated: u64,
    pub largest_alloc: u64,
    pub allocations: u64,
    pub libraries: MappedLibraries,
}

/// What the GPU work is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GpuClass {
    PowMining,
    AiTraining,
    AiInference,
    ZkProving,
    Unknown,
}

impl GpuClass {
    /// The class name used in findings.
    pub fn name(self) -> &'static str {
        match self {
            Self::PowMining => "pow-mining",
            Self::AiTraining => "ai-training",
            Self::AiInference => "ai-inference",
            Self::ZkProving => "zk-proving",
            Self::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GpuVerdict {
    pub class: GpuClass,
    /// 0..=1: how strongly the facts point at the class (0 for unknown).
    pub strength: f32,
    /// Enough alone to confirm (only ever for pow-mining).
    pub decisive: bool,
    /// The facts, in words with their numbers.
    pub reasons: Vec<String>,
}

impl GpuVerdict {
    fn new(class: GpuClass, strength: f32, decisive: bool, reasons: Vec<String>) -> Self {
        let strength = if strength.is_finite() {
            strength.clamp(0.0, 1.0)
        } else {
            0.0
        };
        Self {
            class,
            strength: if class == GpuClass::Unknown {
                0.0
            } else {
                strength
            },
            decisive: decisive && class == GpuClass::PowMining,
            reasons,
        }
    }
}

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

/// Facts about the launches.
struct KernelFacts {
    distinct: usize,
    /// Share of launches by the top one or two kernels, and how many of
    /// them that takes.
    dominant_share: f64,
    dominant: usize,
    constant_shape: bool,
    /// Rule 2's shape (module doc).
    mining_shape: bool,
    busy_share: Option<f64>,
    pow_names: Vec<String>,
    zk_names: Vec<String>,
    zk_share: f64,
    training_names: Vec<String>,
    dl_names: Vec<String>,
    dl_libraries: Vec<&'static str>,
}

impl KernelFacts {
    fn of(a: &CudaActivity) -> Self {
        let launches = a.launches.max(1) as f64;
        let share = |n: u64| (n as f64 / launches).clamp(0.0, 1.0);
        let top: Vec<&KernelLaunches> = a.kernels.iter().take(MAX_KERNEL_NAMES).collect();
        let distinct = a.distinct_kernels.max(top.len());
        let (dominant_share, dominant) = if top.is_empty() {
            // No names, only a count: all launches are theirs.
            (if distinct <= 2 { 1.0 } else { 0.0 }, distinct.min(2))
        } else {
            let first = share(top[0].launches);
            if first >= MINING_MIN_DOMINANT_SHARE || top.len() == 1 {
                (first, 1)
            } else {
                (share(top[0].launches.saturating_add(top[1].launches)), 2)
            }
        };
        let shape_change_share = share(a.shape_changes);
        let constant_shape = (1..=MINING_MAX_SHAPES).contains(&a.distinct_launch_shapes)
            && shape_change_share <= MAX_SHAPE_CHANGE_SHARE;
        let busy_share = (a.slices >= MIN_SLICES)
            .then(|| (f64::from(a.busy_slices) / f64::from(a.slices)).clamp(0.0, 1.0));
        let named = |test: fn(&str) -> bool| -> Vec<String> {
            top.iter()
                .filter(|k| test(&k.name))
                .map(|k| k.name.clone())
                .collect()
        };
        let zk_share = share(
            top.iter()
                .filter(|k| is_zk_name(&k.name))
                .fold(0u64, |sum, k| sum.saturating_add(k.launches)),
        );
        let dl_libraries = a.libraries.deep_learning();
        Self {
            mining_shape: dominant_share >= MINING_MIN_DOMINANT_SHARE
                && distinct <= MINING_MAX_KERNELS
                && constant_shape,
            distinct,
            dominant_share,
            dominant,
            constant_shape,
            busy_share,
            pow_names: named(is_pow_name),
            zk_names: named(is_zk_name),
            zk_share,
            training_names: named(is_training_name),
            dl_names: named(is_dl_name),
            dl_libraries,
        }
    }

    fn ai_stack(&self) -> bool {
        !self.dl_libraries.is_empty() || self.dl_names.len() >= 2
    }

    fn sustained(&self) -> bool {
        self.busy_share
            .is_some_and(|s| s >= SUSTAINED_MIN_BUSY_SHARE)
    }

    fn bursty(&self) -> bool {
        self.busy_share
            .is_some_and(|s| s > 0.0 && s <= BURSTY_MAX_BUSY_SHARE)
    }
}

/// Facts from the telemetry window, each as the sentence that states it.
#[derive(Debug, Default)]
struct TelemetryFacts {
    mem_pinned: Option<String>,
    compute_pinned: Option<String>,
    pcie_idle: Option<String>,
    pcie_busy: Option<String>,
    mem_static: Option<String>,
    mem_changing: Option<String>,
    bursty: Option<String>,
    steady_busy: Option<String>,
    mem_util_varying: Option<String>,
    shared: Option<String>,
}

impl TelemetryFacts {
    fn of(t: &TelemetrySummary) -> Self {
        let d = &t.device;
        let gpu = format!("GPU {}", d.index);
        // Device-wide figures are the process's own only when it had the
        // device to itself, and mean something only over enough samples.
        let own = !t.shared_device && d.samples >= MIN_TELEMETRY_SAMPLES;
        let over = format!("over {} samples ({})", d.samples, secs(d.span_s));
        let mut f = Self::default();
        if t.shared_device {
            f.shared = Some(format!(
                "{gpu} was shared with other processes: its device-wide figures were not used"
            ));
        }
        if own {
            if let Some(m) = d.mem_util_pct
                && m.mean >= MEM_PINNED_MIN_PCT
                && m.stddev <= MEM_PINNED_MAX_STDDEV
            {
                f.mem_pinned = Some(format!(
                    "memory utilisation of {gpu} pinned at {:.0} % (± {:.1}) {over}",
                    m.mean, m.stddev
                ));
            }
            if let Some(m) = d.mem_util_pct
                && m.stddev >= MEM_UTIL_VARYING_MIN_STDDEV
            {
                f.mem_util_varying = Some(format!(
                    "memory utilisation of {gpu} varies ({:.0} % ± {:.0}) {over}",
                    m.mean, m.stddev
                ));
            }
            if let Some(g) = d.gpu_util_pct
                && g.mean >= COMPUTE_PINNED_MIN_PCT
                && g.stddev <= COMPUTE_PINNED_MAX_STDDEV
            {
                f.compute_pinned = Some(format!(
                    "utilisation of {gpu} pinned at {:.0} % (± {:.1}) {over}",
                    g.mean, g.stddev
                ));
            }
            if let Some(kbps) = d.pcie_kbps_mean() {
                if kbps <= PCIE_IDLE_MAX_KBPS {
                    f.pcie_idle = Some(format!("PCIe of {gpu} nearly idle ({})", rate(kbps)));
                } else if kbps >= PCIE_BUSY_MIN_KBPS {
                    f.pcie_busy = Some(format!("PCIe of {gpu} busy ({})", rate(kbps)));
                }
            }
            if let (Some(idle), Some(g)) = (d.gpu_idle_share, d.gpu_util_pct) {
                if idle >= TELEMETRY_BURSTY_MIN_IDLE_SHARE && g.max >= BURST_MIN_PEAK_PCT {
                    f.bursty = Some(format!(
                        "{gpu} idle in {} of {} samples, busy in bursts up to {:.0} %",
                        pct(idle),
                        d.samples,
                        g.max
                    ));
                } else if idle <= STEADY_MAX_IDLE_SHARE && g.mean >= STEADY_MIN_UTIL_PCT {
                    f.steady_busy = Some(format!(
                        "{gpu} busy throughout (mean {:.0} %) {over}",
                        g.mean
                    ));
                }
            }
        }
        // Memory in use: the process's own samples first.
        let memory = t
            .process
            .as_ref()
            .and_then(|p| p.used_mem_bytes)
            .filter(|s| s.n >= MIN_PROCESS_SAMPLES)
            .map(|s| (s, "held by the process"))
            .or_else(|| {
                d.mem_used_bytes
                    .filter(|_| own)
                    .map(|s| (s, "in use on the GPU"))
            });
        if let Some((s, whose)) = memory
            && let Some(cv) = s.cv()
        {
            if cv <= MEM_STATIC_MAX_CV {
                f.mem_static = Some(format!("memory {whose} static at {}", bytes(s.mean)));
            } else if cv >= MEM_CHANGING_MIN_CV {
                f.mem_changing = Some(format!(
                    "memory {whose} changing ({} to {})",
                    bytes(s.min),
                    bytes(s.max)
                ));
            }
        }
        f
    }
}

/// Lean from pinned memory utilisation alone (memory-hard PoW's mark).
pub const TELEMETRY_MEM_PINNED_LEAN: f32 = 0.3;
/// Lean from pinned GPU utilisation with idle PCIe (compute-bound PoW).
pub const TELEMETRY_COMPUTE_PINNED_LEAN: f32 = 0.2;
/// Lean towards an AI class from utilisation shape.
pub const TELEMETRY_AI_LEAN: f32 = 0.2;

fn telemetry_only(a: &CudaActivity, t: &TelemetryFacts) -> GpuVerdict {
    let mut reasons = vec![match a.launches {
        0 if a.window_s.is_finite() && a.window_s > 0.0 => {
            format!("no kernel launches seen in {}", secs(a.window_s))
        }
        0 => "no kernel launches seen".to_owned(),
        n => format!(
            "only {} launch{}{}: too few to judge the kernels",
            count(n),
            if n == 1 { "" } else { "es" },
            in_window(a.window_s)
        ),
    }];
    reasons.extend(t.shared.clone());
    let dl = a.libraries.deep_learning();
    let mining_lean = t.pcie_busy.is_none()
        && t.mem_changing.is_none()
        && (t.mem_pinned.is_some() || (t.compute_pinned.is_some() && t.pcie_idle.is_some()));
    let lean = |class, strength: f32, facts: &[&Option<String>], mut reasons: Vec<String>| {
        reasons.extend(facts.iter().filter_map(|f| (*f).clone()));
        reasons.push("telemetry alone is only a lean, never a verdict".to_owned());
        GpuVerdict::new(
            class,
            strength.min(TELEMETRY_ONLY_MAX_STRENGTH),
            false,
            reasons,
        )
    };
    if mining_lean {
        if dl.is_empty() {
            let strength = if t.mem_pinned.is_some() {
                TELEMETRY_MEM_PINNED_LEAN
            } else {
                TELEMETRY_COMPUTE_PINNED_LEAN
            };
            reasons.push(
                "the GPU looks like a mining loop's, but so does any memory- or compute-bound \
                 job alone on a GPU"
                    .to_owned(),
            );
            return lean(
                GpuClass::PowMining,
                strength,
                &[
                    &t.mem_pinned,
                    &t.compute_pinned,
                    &t.pcie_idle,
                    &t.mem_static,
                ],
                reasons,
            );
        }
        reasons.push(format!(
            "the GPU looks like a mining loop's, but {} {} mapped",
            dl.join(", "),
            is_are(dl.len())
        ));
    }
    if t.bursty.is_some() {
        return lean(
            GpuClass::AiInference,
            TELEMETRY_AI_LEAN,
            &[&t.bursty],
            reasons,
        );
    }
    if t.steady_busy.is_some()
        && (t.pcie_busy.is_some() || t.mem_changing.is_some() || t.mem_util_varying.is_some())
    {
        return lean(
            GpuClass::AiTraining,
            TELEMETRY_AI_LEAN,
            &[
                &t.steady_busy,
                &t.pcie_busy,
                &t.mem_changing,
                &t.mem_util_varying,
            ],
            reasons,
        );
    }
    GpuVerdict::new(GpuClass::Unknown, 0.0, false, reasons)
}

/// "one kernel (`search`) made 99 % of 48 000 launches in 5 s, all with
/// the same grid"
fn dominance(a: &CudaActivity, k: &KernelFacts) -> String {
    let names: Vec<String> = a
        .kernels
        .iter()
        .take(k.dominant)
        .map(|kl| code(&kl.name))
        .collect();
    let who = match names.as_slice() {
        [one] => format!("one kernel ({one})"),
        [first, second] => format!("two kernels ({first} and {second})"),
        _ => format!(
            "{} distinct kernel{}",
            k.distinct,
            plural(k.distinct as u64)
        ),
    };
    let grid = if a.shape_changes == 0 {
        if a.distinct_launch_shapes <= 1 {
            "all with the same grid".to_owned()
        } else {
            "each with a constant grid".to_owned()
        }
    } else {
        format!(
            "the grid changed in only {} launch{}",
            count(a.shape_changes),
            if a.shape_changes == 1 { "" } else { "es" }
        )
    };
    let others = if k.distinct > k.dominant && !names.is_empty() {
        format!(" ({} distinct kernels in all)", k.distinct)
    } else {
        String::new()
    };
    format!(
        "{who} made {} of {} launches{}{others}, {grid}",
        pct(k.dominant_share),
        count(a.launches),
        in_window(a.window_s)
    )
}

fn mining(a: &CudaActivity, k: &KernelFacts, t: &TelemetryFacts) -> GpuVerdict {
    let mut reasons = vec![dominance(a, k)];
    let pow_name = k.pow_names.first().map(|n| {
        format!(
            "{} is named like a proof-of-work algorithm's kernel",
            code(n)
        )
    });
    if !k.dl_libraries.is_empty() {
        let libs = k.dl_libraries.join(", ");
        let verb = is_are(k.dl_libraries.len());
        if let Some(pow_name) = pow_name {
            reasons.push(pow_name);
            reasons.push(format!(
                "but {libs} {verb} mapped, as in no miner: not decisive"
            ));
            return GpuVerdict::new(GpuClass::PowMining, MINING_WITH_DL_STRENGTH, false, reasons);
        }
        reasons.push(format!(
            "but {libs} {verb} mapped: a GEMM benchmark or a stress test (gpu-burn) launches \
             this way too"
        ));
        return GpuVerdict::new(GpuClass::Unknown, 0.0, false, reasons);
    }
    let l = &a.libraries;
    let mapped: Vec<&str> = [(l.libcuda, "libcuda"), (l.nvrtc, "NVRTC"), (l.cupy, "CuPy")]
        .into_iter()
        .filter_map(|(m, n)| m.then_some(n))
        .collect();
    reasons.push(if mapped.is_empty() {
        "no deep-learning library mapped".to_owned()
    } else {
        format!(
            "no deep-learning library mapped (only {})",
            mapped.join(" and ")
        )
    });
    let (mut extras, mut minors) = (0usize, 0usize);
    if a.runtime_compiles > 0 {
        let what = format!(
            "{} program{} compiled at run time by NVRTC",
            count(a.runtime_compiles),
            plural(a.runtime_compiles)
        );
        if l.cupy {
            reasons.push(format!("{what}, as CuPy does for its own kernels"));
        } else {
            extras += 1;
            reasons.push(what);
        }
    } else if a.modules_loaded > 0 {
        minors += 1;
        reasons.push(format!(
            "code loaded from {} module image{} at run time",
            count(a.modules_loaded),
            plural(a.modules_loaded)
        ));
    }
    if let Some(r) = &t.mem_pinned {
        extras += 1;
        reasons.push(format!("{r}, as memory-hard proof-of-work keeps it"));
    }
    if let Some(r) = pow_name {
        extras += 1;
        reasons.push(r);
    }
    for r in [&t.compute_pinned, &t.pcie_idle, &t.mem_static]
        .into_iter()
        .flatten()
    {
        minors += 1;
        reasons.push(r.clone());
    }
    if let Some(cv) = a.launch_gap_cv.filter(|cv| cv.is_finite())
        && cv <= REGULAR_GAP_MAX_CV
    {
        minors += 1;
        reasons.push(format!(
            "launches on a regular beat (gap variation {cv:.2})"
        ));
    }
    if k.sustained() {
        minors += 1;
        reasons.push(format!(
            "launches in {} of {} slices of the window",
            a.busy_slices, a.slices
        ));
    }
    if (1..=FEW_ALLOCATIONS).contains(&a.allocations) && a.largest_alloc >= LARGE_ALLOCATION {
        minors += 1;
        reasons.push(format!(
            "only {} allocation{}, the largest {}: a buffer set up once",
            a.allocations,
            plural(a.allocations),
            bytes(a.largest_alloc as f64)
        ));
    }
    let mut strength = MINING_BASE_STRENGTH
        + MINING_EXTRA_STRENGTH * extras as f32
        + MINING_MINOR_STRENGTH * minors as f32;
    let mut decisive = a.launches >= DECISIVE_MIN_LAUNCHES && extras >= DECISIVE_MIN_EXTRAS;
    if let Some(busy) = k.busy_share
        && busy < SUSTAINED_MIN_BUSY_SHARE
    {
        decisive = false;
        reasons.push(format!(
            "but launches paused: only {} of {} slices busy",
            a.busy_slices, a.slices
        ));
    }
    if let Some(r) = &t.pcie_busy {
        decisive = false;
        strength -= MINING_EXTRA_STRENGTH;
        reasons.push(format!("but {r}, which a mining loop does not need"));
    }
    reasons.extend(t.shared.clone());
    if decisive {
        reasons.push(format!(
            "decisive: a mining loop's shape, no deep-learning library, and {extras} \
             independent mining facts agree"
        ));
    } else if extras >= DECISIVE_MIN_EXTRAS && a.launches < DECISIVE_MIN_LAUNCHES {
        reasons.push(format!(
            "not decisive: fewer than {} launches",
            count(DECISIVE_MIN_LAUNCHES)
        ));
    }
    GpuVerdict::new(GpuClass::PowMining, strength, decisive, reasons)
}

fn zk_proving(a: &CudaActivity, k: &KernelFacts) -> Option<GpuVerdict> {
    if k.zk_share < ZK_MIN_SHARE && k.zk_names.len() < 2 {
        return None;
    }
    let mut reasons = vec![format!(
        "kernels named like a zero-knowledge prover's ({}) made {} of {} launches{}",
        list(&k.zk_names),
        pct(k.zk_share),
        count(a.launches),
        in_window(a.window_s)
    )];
    let mut strength = ZK_BASE_STRENGTH;
    if k.ai_stack() {
        reasons.push(if k.dl_libraries.is_empty() {
            "deep-learning kernels run too".to_owned()
        } else {
            format!(
                "{} {} mapped too",
                k.dl_libraries.join(", "),
                is_are(k.dl_libraries.len())
            )
        });
    } else {
        strength += AI_MARK_STRENGTH;
        reasons.push("no deep-learning library mapped".to_owned());
    }
    if k.mining_shape {
        reasons.push(
            "launched like a mining loop (few kernels, one grid), but not enough for a mining \
             verdict"
                .to_owned(),
        );
    }
    reasons.push("kernel names are weak evidence".to_owned());
    Some(GpuVerdict::new(
        GpuClass::ZkProving,
        strength.min(ZK_MAX_STRENGTH),
        false,
        reasons,
    ))
}

fn ai(a: &CudaActivity, k: &KernelFacts, t: &TelemetryFacts) -> GpuVerdict {
    let mut reasons = vec![
        if k.dl_libraries.is_empty() {
            format!(
                "kernels named like deep-learning libraries' ({})",
                list(&k.dl_names)
            )
        } else {
            format!(
                "deep-learning libraries mapped: {}",
                k.dl_libraries.join(", ")
            )
        },
        format!(
            "{} distinct kernels made {} launches{}",
            k.distinct,
            count(a.launches),
            in_window(a.window_s)
        ),
    ];
    let slices = format!("{} of {} slices", a.busy_slices, a.slices);
    let mut training = Vec::new();
    let strong_training = !k.training_names.is_empty();
    if strong_training {
        training.push(format!(
            "backward-pass or optimizer kernels launched ({})",
            list(&k.training_names)
        ));
    }
    if a.libraries.nccl && k.sustained() {
        training.push(format!(
            "NCCL mapped (gradients exchanged between GPUs), launches in {slices}"
        ));
    }
    if k.distinct >= TRAINING_MIN_KERNELS && k.sustained() {
        training.push(format!(
            "{} distinct kernels launched in {slices}: a steady training loop",
            k.distinct
        ));
    }
    training.extend(
        [&t.pcie_busy, &t.mem_changing]
            .into_iter()
            .flatten()
            .cloned(),
    );
    let mut inference = Vec::new();
    if k.bursty() {
        inference.push(format!(
            "launches in only {slices}: bursts with idle gaps, as requests come"
        ));
    }
    let runtimes = a.libraries.inference_runtimes();
    if !runtimes.is_empty() {
        inference.push(format!(
            "{} {} mapped (an inference runtime)",
            runtimes.join(", "),
            is_are(runtimes.len())
        ));
    }
    inference.extend(t.bursty.clone());
    let bursty_or_runtime = !inference.is_empty();
    if k.distinct < TRAINING_MIN_KERNELS {
        inference.push(format!(
            "{} distinct kernels: fewer than a training step runs",
            k.distinct
        ));
    }
    let (class, marks) = if strong_training {
        (GpuClass::AiTraining, training)
    } else if bursty_or_runtime {
        (GpuClass::AiInference, inference)
    } else if !training.is_empty() {
        (GpuClass::AiTraining, training)
    } else {
        reasons.extend(inference);
        reasons.push(
            "steady, but no backward pass seen and too few kernels for a training step".to_owned(),
        );
        return GpuVerdict::new(GpuClass::AiInference, AI_UNCLEAR_STRENGTH, false, reasons);
    };
    let strength = AI_BASE_STRENGTH + AI_MARK_STRENGTH * marks.len().saturating_sub(1) as f32;
    reasons.extend(marks);
    reasons.extend(t.shared.clone());
    GpuVerdict::new(class, strength.min(AI_MAX_STRENGTH), false, reasons)
}

fn general(a: &CudaActivity, k: &KernelFacts, t: &TelemetryFacts) -> GpuVerdict {
    let mut reasons = vec![
        format!(
            "{} distinct kernels made {} launches{}",
            k.distinct,
            count(a.launches),
            in_window(a.window_s)
        ),
        "no deep-learning library mapped".to_owned(),
    ];
    if !k.pow_names.is_empty() {
        reasons.push(format!(
            "{} {} named like proof-of-work kernels",
            list(&k.pow_names),
            is_are(k.pow_names.len())
        ));
        if !k.constant_shape {
            reasons.push(format!(
                "but launched with {} shapes ({} changes): not a mining loop's constant grid",
                a.distinct_launch_shapes,
                count(a.shape_changes)
            ));
        }
        reasons.extend(t.mem_pinned.clone());
        return GpuVerdict::new(
            GpuClass::PowMining,
            MINING_NAME_ONLY_STRENGTH,
            false,
            reasons,
        );
    }
    reasons.push(if k.distinct > MINING_MAX_KERNELS {
        "a general CUDA application: neither a mining loop nor a deep-learning stack".to_owned()
    } else if !k.constant_shape {
        format!(
            "few kernels, but the launch shape changes ({} shapes, {} changes): not a mining \
             loop's constant grid",
            a.distinct_launch_shapes,
            count(a.shape_changes)
        )
    } else {
        format!(
            "the top kernels made only {} of the launches: not a single loop",
            pct(k.dominant_share)
        )
    });
    GpuVerdict::new(GpuClass::Unknown, 0.0, false, reasons)
}

fn is_pow_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    POW_NAMES.iter().any(|p| lower.contains(p))
}

fn is_zk_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    ZK_NAMES.iter().any(|z| lower.contains(z))
        || lower
            .split(|c: char| !c.is_ascii_alphabetic())
            .any(|part| ZK_PARTS.iter().any(|z| part.starts_with(z)))
}

fn is_training_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    TRAINING_NAMES.iter().any(|p| lower.contains(p))
}

fn is_dl_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    DL_NAMES.iter().any(|p| lower.contains(p))
}

/// `48 000`
fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// `99 %` (rounded down, so that 99.6 % of launches does not read "all").
fn pct(share: f64) -> String {
    let p = share * 100.0;
    if !p.is_finite() || p <= 0.0 {
        "0 %".to_owned()
    } else if p >= 100.0 {
        "100 %".to_owned()
    } else if p < 1.0 {
        "under 1 %".to_owned()
    } else {
        format!("{} %", p.floor())
    }
}

fn secs(s: f64) -> String {
    if !s.is_finite() || s < 0.0 {
        "an unknown time".to_owned()
    } else if s >= 10.0 || s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{s:.1} s")
    }
}

fn in_window(s: f64) -> String {
    if s.is_finite() && s > 0.0 {
        format!(" in {}", secs(s))
    } else {
        String::new()
    }
}

fn bytes(b: f64) -> String {
    match b {
        b if b >= 1e9 => format!("{:.1} GB", b / 1e9),
        b if b >= 1e6 => format!("{:.0} MB", b / 1e6),
        b if b >= 1e3 => format!("{:.0} kB", b / 1e3),
        b => format!("{b:.0} B"),
    }
}

/// A rate given in kilobytes per second.
fn rate(kbps: f64) -> String {
    match kbps {
        k if k >= 1e6 => format!("{:.1} GB/s", k / 1e6),
        k if k >= 1e3 => format!("{:.0} MB/s", k / 1e3),
        k => format!("{k:.0} kB/s"),
    }
}

/// Longest kernel name quoted in a reason (C++ template names run to
/// hundreds of characters; their start says enough).
const NAME_CHARS: usize = 60;

fn code(name: &str) -> String {
    if name.is_empty() {
        return "an unnamed kernel".to_owned();
    }
    let mut short: String = name.chars().take(NAME_CHARS).collect();
    if short.len() < name.len() {
        short.push('…');
    }
    format!("`{short}`")
}

/// Up to three names, quoted.
fn list(names: &[String]) -> String {
    let mut out: Vec<String> = names.iter().take(3).map(|n| code(n)).collect();
    if names.len() > 3 {
        out.push("…".to_owned());
    }
    out.join(", ")
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn is_are(n: usize) -> &'static str {
    if n == 1 { "is" } else { "are" }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::gpu::{
        samples::{DeviceSample, ProcessSample},
        window::TelemetryWindow,
    };

    const GB: u64 = 1_000_000_000;

    fn kernels(list: &[(&str, u64)]) -> Vec<KernelLaunches> {
        list.iter()
            .map(|(name, launches)| KernelLaunches {
                name: (*name).to_owned(),
                launches: *launches,
            })
            .collect()
    }

    fn miner_libraries() -> MappedLibraries {
        MappedLibraries {
            libcuda: true,
            nvrtc: true,
            ..MappedLibraries::default()
        }
    }

    /// One search kernel in a loop, identical grid, sustained.
    fn miner(name: &str, launches: u64) -> CudaActivity {
        CudaActivity {
            window_s: 5.0,
            launches,
            distinct_kernels: 1,
            kernels: kernels(&[(name, launches)]),
            distinct_launch_shapes: 1,
            shape_changes: 0,
            launch_gap_cv: Some(0.05),
            busy_slices: 10,
            slices: 10,
            modules_loaded: 1,
            runtime_compiles: 0,
            bytes_allocated: 5 * GB,
            largest_alloc: 5 * GB,
            allocations: 3,
            libraries: MappedLibraries {
                libcuda: true,
                ..MappedLibraries::default()
            },
        }
    }

    fn torch_libraries() -> MappedLibraries {
        MappedLibraries {
            libcuda: true,
            cublas: true,
            cublas_lt: true,
            cudnn: true,
            torch: true,
            ..MappedLibraries::default()
        }
    }

    /// A PyTorch training loop: hundreds of kernels, one elementwise kernel
    /// most launched, GEMMs, backward and optimizer kernels.
    fn training(distinct: usize, top_share: f64) -> CudaActivity {
        let launches = 200_000u64;
        let top = (launches as f64 * top_share) as u64;
        let rest = (launches - top) / 15;
        let names = [
            "void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<float>>",
            "ampere_sgemm_128x64_nn",
            "ampere_sgemm_128x64_tn",
            "void at::native::(anonymous namespace)::softmax_warp_forward<float, float, float, 10>",
            "void at::native::(anonymous namespace)::softmax_warp_backward<float, float, float, 10>",
            "sm80_xmma_wgrad_implicit_gemm_indexed_f32f32_tf32f32_f32_nhwckrsc_nhwc",
            "sm80_xmma_dgrad_implicit_gemm_indexed_f32f32_tf32f32_f32_nhwckrsc_nchw",
            "void at::native::reduce_kernel<512, 1, at::native::ReduceOp<float>>",
            "void cutlass::Kernel<cutlass_80_tensorop_s1688gemm_128x128_32x3_nn_align4>",
            "void at::native::(anonymous namespace)::multi_tensor_apply_kernel<AdamFunctor>",
            "void cudnn::bn_fw_tr_1C11_kernel_NCHW<float, float, int, 512, true, 1>",
            "void cudnn::bn_bw_1C11_kernel_new<float, float, float2, 512, true, 1>",
            "void at::native::unrolled_elementwise_kernel<at::native::copy_>",
            "ampere_sgemm_64x64_nt",
            "void at::native::nll_loss_backward_reduce_cuda_kernel_2d<float, long>",
            "void at::native::(anonymous namespace)::layer_norm_grad_input_kernel<float>",
        ];
        let mut list = vec![(names[0], top)];
        list.extend(names[1..].iter().map(|n| (*n, rest)));
        CudaActivity {
            window_s: 5.0,
            launches,
            distinct_kernels: distinct,
            kernels: kernels(&list),
            distinct_launch_shapes: 240,
            shape_changes: 90_000,
            launch_gap_cv: Some(2.4),
            busy_slices: 10,
            slices: 10,
            modules_loaded: 0,
            runtime_compiles: 0,
            bytes_allocated: 60 * GB,
            largest_alloc: 2 * GB,
            allocations: 900,
            libraries: torch_libraries(),
        }
    }

    /// A model server: forward kernels only, in bursts.
    fn inference() -> CudaActivity {
        CudaActivity {
            window_s: 5.0,
            launches: 6_000,
            distinct_kernels: 24,
            kernels: kernels(&[
                (
                    "ampere_fp16_s16816gemm_fp16_128x128_ldg8_f2f_stages_32x5_tn",
                    2_400,
                ),
                (
                    "void at::native::vectorized_elementwise_kernel<4, at::native::GeluCUDAKernelImpl>",
                    1_200,
                ),
                (
                    "void at::native::(anonymous namespace)::vectorized_layer_norm_kernel<c10::Half, float>",
                    1_000,
                ),
                ("fmha_cutlassF_f16_aligned_64x64_rf_sm80", 800),
            ]),
            distinct_launch_shapes: 40,
            shape_changes: 3_000,
            launch_gap_cv: Some(3.1),
            busy_slices: 3,
            slices: 10,
            modules_loaded: 0,
            runtime_compiles: 0,
            bytes_allocated: 14 * GB,
            largest_alloc: 2 * GB,
            allocations: 300,
            libraries: torch_libraries(),
        }
    }

    /// A GPU prover: MSM and NTT kernels.
    fn prover() -> CudaActivity {
        CudaActivity {
            window_s: 5.0,
            launches: 4_000,
            distinct_kernels: 9,
            kernels: kernels(&[
                ("msm_pippenger_bucket_accumulate_bls12_377", 1_500),
                ("_Z10ntt_kernelPN6icicle7scalarEj", 1_200),
                ("poseidon_hash_batch", 700),
                ("batch_inverse", 600),
            ]),
            distinct_launch_shapes: 12,
            shape_changes: 800,
            launch_gap_cv: Some(1.2),
            busy_slices: 8,
            slices: 10,
            modules_loaded: 2,
            runtime_compiles: 0,
            bytes_allocated: 20 * GB,
            largest_alloc: 8 * GB,
            allocations: 40,
            libraries: MappedLibraries {
                libcuda: true,
                ..MappedLibraries::default()
            },
        }
    }

    /// `seconds` of 1 Hz telemetry for one process alone on GPU 0.
    fn telemetry(
        seconds: u64,
        gpu: fn(u64) -> u32,
        mem: fn(u64) -> u32,
        pcie_kbps: u32,
    ) -> TelemetrySummary {
        let mut w = TelemetryWindow::new(Duration::from_secs(seconds));
        for s in 0..seconds {
            w.push_device(DeviceSample {
                t_ms: s * 1000,
                index: 0,
                uuid: "GPU-test".into(),
                name: "test".into(),
                gpu_util_pct: Some(gpu(s)),
                mem_util_pct: Some(mem(s)),
                mem_used_bytes: Some(5 * GB),
                mem_total_bytes: Some(24 * GB),
                power_mw: Some(220_000),
                power_limit_mw: Some(250_000),
                sm_clock_mhz: Some(1_400),
                mem_clock_mhz: Some(9_501),
                pcie_tx_kbps: Some(pcie_kbps / 2),
                pcie_rx_kbps: Some(pcie_kbps / 2),
            });
            if s % 10 == 0 {
                w.push_process(ProcessSample {
                    t_ms: s * 1000,
                    device_index: 0,
                    pid: 42,
                    used_mem_bytes: Some(5 * GB - 200_000_000),
                    sm_util_pct: Some(gpu(s)),
                    mem_util_pct: Some(mem(s)),
                });
            }
        }
        w.summary(42).unwrap()
    }

    /// Memory-hard PoW on its own GPU: memory utilisation 96–98 %, PCIe idle.
    fn pinned() -> TelemetrySummary {
        telemetry(60, |_| 100, |s| 96 + (s % 3) as u32, 20)
    }

    fn assert_well_formed(v: &GpuVerdict) {
        assert!(
            v.strength.is_finite() && (0.0..=1.0).contains(&v.strength),
            "{v:?}"
        );
        assert!(!v.reasons.is_empty(), "{v:?}");
        assert!(!v.decisive || v.class == GpuClass::PowMining, "{v:?}");
        assert!(v.class != GpuClass::Unknown || v.strength == 0.0, "{v:?}");
        for r in &v.reasons {
            assert!(
                !r.contains("NaN") && !r.split_whitespace().any(|w| w.ends_with("inf")),
                "{r}"
            );
        }
    }

    #[test]
    fn kawpowminer_compiling_progpow_search_with_nvrtc_on_a_pinned_gpu_is_decisive_mining() {
        let mut a = miner("progpow_search", 48_000);
        a.runtime_compiles = 1;
        a.libraries = miner_libraries();
        let v = classify(&a, Some(&pinned()));
        assert_well_formed(&v);
        assert_eq!(v.class, GpuClass::PowMining);
        assert!(v.decisive, "{v:#?}");
        assert_eq!(v.strength, 1.0);
        assert_eq!(
            v.reasons[0],
            "one kernel (`progpow_search`) made 100 % of 48 000 launches in 5 s, all with the same grid"
        );
        assert!(
            v.reasons
                .iter()
                .any(|r| r == "no deep-learning library mapped (only libcuda and NVRTC)")
        );
        assert!(
            v.reasons
                .iter()
                .any(|r| r.starts_with("memory utilisation of GPU 0 pinned at 97 %"))
        );
    }

    #[test]
    fn ethminer_with_a_dag_kernel_beside_ethash_search_is_mining_and_decisive_only_with_telemetry()
    {
        let mut a = miner("ethash_search", 30_000);
        a.distinct_kernels = 2;
        a.kernels = kernels(&[("ethash_search", 29_990), ("ethash_calculate_dag_item", 10)]);
        a.distinct_launch_shapes = 2;
        let alone = classify(&a, None);
        assert_well_formed(&alone);
        assert_eq!(alone.class, GpuClass::PowMining);
        assert!(!alone.decisive, "a name is one strong fact: {alone:#?}");
        assert!(alone.reasons[0].starts_with(
            "one kernel (`ethash_search`) made 99 % of 30 000 launches in 5 s (2 distinct kernels in all)"
        ), "{}", alone.reasons[0]);
        let with = classify(&a, Some(&pinned()));
        assert!(with.decisive, "{with:#?}");
        assert!(with.strength > alone.strength);
    }

    #[test]
    fn a_sha256_loop_is_mining_but_not_decisive() {
        let v = classify(&miner("sha256_kernel", 12_000), None);
        assert_well_formed(&v);
        assert_eq!(v.class, GpuClass::PowMining);
        assert!(!v.decisive);
        assert!(
            v.strength >= MINING_BASE_STRENGTH && v.strength < 0.9,
            "{v:#?}"
        );
    }

    #[test]
    fn a_closed_miner_with_obfuscated_names_is_decisive_from_behaviour() {
        let mut a = miner("_Z2k7Pj", 20_000);
        a.runtime_compiles = 3;
        a.libraries = miner_libraries();
        let v = classify(&a, Some(&pinned()));
        assert_eq!(v.class, GpuClass::PowMining);
        assert!(v.decisive, "{v:#?}");
    }

    #[test]
    fn a_single_kernel_stencil_pinning_memory_is_only_suspected() {
        // One strong fact (pinned memory utilisation) is what a memory-bound
        // loop shows too: never decisive alone.
        let v = classify(&miner("lbm_stream_collide", 50_000), Some(&pinned()));
        assert_eq!(v.class, GpuClass::PowMining);
        assert!(!v.decisive, "{v:#?}");
    }

    #[test]
    fn few_launches_are_never_decisive() {
        let mut a = miner("progpow_search", 500);
        a.runtime_compiles = 1;
        let v = classify(&a, Some(&pinned()));
        assert_eq!(v.class, GpuClass::PowMining);
        assert!(!v.decisive);
        assert!(
            v.reasons
                .iter()
                .any(|r| r == "not decisive: fewer than 1 000 launches")
        );
    }

    #[test]
    fn a_miner_that_pauses_or_moves_data_is_not_decisive() {
        let mut a = miner("progpow_search", 48_000);
        a.runtime_compiles = 1;
        a.busy_slices = 5;
        assert!(!classify(&a, Some(&pinned())).decisive);
        let mut a = miner("progpow_search", 48_000);
        a.runtime_compiles = 1;
        let busy_pcie = telemetry(60, |_| 100, |s| 96 + (s % 3) as u32, 400_000);
        let v = classify(&a, Some(&busy_pcie));
        assert!(!v.decisive, "{v:#?}");
        assert!(
            v.reasons
                .iter()
                .any(|r| r.starts_with("but PCIe of GPU 0 busy (400 MB/s)"))
        );
    }

    #[test]
    fn a_gemm_stress_test_with_cublas_is_not_mining() {
        let mut a = miner("ampere_sgemm_128x64_nn", 20_000);
        a.libraries.cublas = true;
        let v = classify(&a, Some(&pinned()));
        assert_well_formed(&v);
        assert_eq!(v.class, GpuClass::Unknown, "{v:#?}");
        assert!(v.reasons[1].contains("gpu-burn"));
    }

    #[test]
    fn a_proof_of_work_kernel_beside_cublas_is_suspected_not_decisive() {
        let mut a = miner("ethash_search", 20_000);
        a.runtime_compiles = 1;
        a.libraries.cublas = true;
        let v = classify(&a, Some(&pinned()));
        assert_eq!(v.class, GpuClass::PowMining);
        assert!(!v.decisive);
        assert_eq!(v.strength, MINING_WITH_DL_STRENGTH);
    }

    #[test]
    fn cupy_compiling_its_own_kernels_does_not_count_as_a_miners_nvrtc() {
        let mut a = miner("cupy_multiply__float_float_float", 20_000);
        a.runtime_compiles = 40;
        a.libraries.cupy = true;
        a.libraries.nvrtc = true;
        let v = classify(&a, Some(&pinned()));
        assert!(!v.decisive, "{v:#?}");
    }

    #[test]
    fn a_pytorch_training_loop_is_training() {
        let v = classify(&training(320, 0.4), None);
        assert_well_formed(&v);
        assert_eq!(v.class, GpuClass::AiTraining, "{v:#?}");
        assert!(!v.decisive);
        assert_eq!(
            v.reasons[0],
            "deep-learning libraries mapped: cuBLAS, cuBLASLt, cuDNN, PyTorch"
        );
        assert!(
            v.reasons
                .iter()
                .any(|r| r.starts_with("backward-pass or optimizer kernels launched"))
        );
    }

    #[test]
    fn a_training_loop_is_never_mining_even_when_one_kernel_dominates() {
        for distinct in [5, 30, 60, 320, 5000] {
            for share in [0.5, 0.9, 0.96, 0.99, 0.999] {
                for libraries in [torch_libraries(), MappedLibraries::default()] {
                    for telemetry in [None, Some(pinned())] {
                        let mut a = training(distinct, share);
                        a.libraries = libraries;
                        let v = classify(&a, telemetry.as_ref());
                        assert_well_formed(&v);
                        assert_ne!(v.class, GpuClass::PowMining, "{distinct} {share}: {v:#?}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_training_loop_with_the_same_shape_every_launch_is_still_not_mining() {
        let mut a = training(80, 0.97);
        a.distinct_launch_shapes = 1;
        a.shape_changes = 0;
        a.runtime_compiles = 5; // torch.compile / NVRTC fusions
        let v = classify(&a, Some(&pinned()));
        assert_eq!(v.class, GpuClass::AiTraining, "{v:#?}");
    }

    #[test]
    fn bursty_forward_only_kernels_are_inference() {
        let v = classify(&inference(), None);
        assert_well_formed(&v);
        assert_eq!(v.class, GpuClass::AiInference, "{v:#?}");
        assert!(
            v.reasons
                .iter()
                .any(|r| r.starts_with("launches in only 3 of 10 slices"))
        );
    }

    #[test]
    fn tensorrt_serving_steadily_is_inference() {
        let mut a = inference();
        a.busy_slices = 10;
        a.libraries = MappedLibraries {
            libcuda: true,
            tensorrt: true,
            cublas_lt: true,
            ..MappedLibraries::default()
        };
        let v = classify(&a, None);
        assert_eq!(v.class, GpuClass::AiInference, "{v:#?}");
        assert!(
            v.reasons
                .iter()
                .any(|r| r == "TensorRT is mapped (an inference runtime)")
        );
    }

    #[test]
    fn a_statically_linked_framework_is_recognised_by_its_kernel_names() {
        let mut a = training(120, 0.3);
        a.libraries = MappedLibraries {
            libcuda: true,
            ..MappedLibraries::default()
        };
        let v = classify(&a, None);
        assert_eq!(v.class, GpuClass::AiTraining, "{v:#?}");
        assert!(v.reasons[0].starts_with("kernels named like deep-learning libraries'"));
    }

    #[test]
    fn msm_and_ntt_kernels_are_zk_proving_and_never_decisive() {
        let v = classify(&prover(), Some(&pinned()));
        assert_well_formed(&v);
        assert_eq!(v.class, GpuClass::ZkProving, "{v:#?}");
        assert!(!v.decisive);
        assert!(v.strength <= ZK_MAX_STRENGTH);
    }

    #[test]
    fn prover_names_match_and_lookalikes_do_not() {
        for name in [
            "msm_kernel",
            "_Z10msm_kernelPj",
            "icicle::ntt::forward",
            "bn254_g1_add",
            "poseidon2_hash",
            "groth16_prove",
            "intt_inplace",
        ] {
            assert!(is_zk_name(name), "{name}");
        }
        for name in [
            "flash_attention_forward",
            "fmha_attention_fwd",
            "ampere_sgemm_128x64_nn",
            "ethash_search",
            "transmission_kernel",
        ] {
            assert!(!is_zk_name(name), "{name}");
        }
    }

    #[test]
    fn a_miner_disguised_with_a_prover_name_still_gets_its_decisive_verdict() {
        let mut a = miner("msm_kernel", 48_000);
        a.runtime_compiles = 1;
        a.libraries = miner_libraries();
        let v = classify(&a, Some(&pinned()));
        assert_eq!(v.class, GpuClass::PowMining);
        assert!(v.decisive);
    }

    #[test]
    fn nothing_launched_is_unknown() {
        let v = classify(&CudaActivity::default(), None);
        assert_well_formed(&v);
        assert_eq!(v.class, GpuClass::Unknown);
        assert_eq!(v.reasons, ["no kernel launches seen"]);
        let one = CudaActivity {
            window_s: 1.0,
            launches: 1,
            distinct_kernels: 1,
            kernels: kernels(&[("ethash_search", 1)]),
            distinct_launch_shapes: 1,
            ..CudaActivity::default()
        };
        let v = classify(&one, None);
        assert_eq!(v.class, GpuClass::Unknown);
        assert_eq!(
            v.reasons[0],
            "only 1 launch in 1 s: too few to judge the kernels"
        );
    }

    #[test]
    fn huge_and_nonsense_numbers_give_a_well_formed_verdict() {
        let mut cases = Vec::new();
        let mut a = miner("progpow_search", u64::MAX);
        a.kernels = kernels(&[("progpow_search", u64::MAX), ("x", u64::MAX)]);
        a.distinct_kernels = 2;
        a.window_s = f64::NAN;
        a.launch_gap_cv = Some(f64::NAN);
        a.shape_changes = u64::MAX;
        a.bytes_allocated = u64::MAX;
        a.largest_alloc = u64::MAX;
        a.allocations = u64::MAX;
        a.runtime_compiles = u64::MAX;
        a.modules_loaded = u64::MAX;
        cases.push(a.clone());
        a.window_s = f64::INFINITY;
        a.shape_changes = 0;
        a.busy_slices = u32::MAX;
        a.slices = 4;
        cases.push(a.clone());
        a.window_s = -3.0;
        a.distinct_kernels = usize::MAX;
        a.distinct_launch_shapes = usize::MAX;
        a.kernels = kernels(&[("k", 7); 40]);
        cases.push(a);
        let mut t = training(usize::MAX, 1.0);
        t.busy_slices = 0;
        cases.push(t);
        let mut long = miner(&"x".repeat(10_000), 2_000);
        long.kernels[0].name.push('é');
        cases.push(long);
        for a in &cases {
            for telemetry in [None, Some(pinned())] {
                assert_well_formed(&classify(a, telemetry.as_ref()));
            }
        }
    }

    #[test]
    fn telemetry_alone_is_a_weak_lean_never_decisive() {
        let idle = CudaActivity {
            window_s: 1.0,
            ..CudaActivity::default()
        };
        let v = classify(&idle, Some(&pinned()));
        assert_well_formed(&v);
        assert_eq!(v.class, GpuClass::PowMining);
        assert!(!v.decisive);
        assert!(v.strength <= TELEMETRY_ONLY_MAX_STRENGTH);
        assert_eq!(v.reasons[0], "no kernel launches seen in 1 s");
        // The same GPU, but the process maps PyTorch: no mining lean.
        let mut torch = idle.clone();
        torch.libraries = torch_libraries();
        assert_ne!(classify(&torch, Some(&pinned())).class, GpuClass::PowMining);
        // Bursts between idle seconds lean to inference.
        let bursty = telemetry(
            60,
            |s| if s % 10 < 3 { 80 } else { 0 },
            |s| if s % 10 < 3 { 30 } else { 0 },
            5_000,
        );
        let v = classify(&idle, Some(&bursty));
        assert_eq!(v.class, GpuClass::AiInference, "{v:#?}");
        assert!(v.strength <= TELEMETRY_ONLY_MAX_STRENGTH);
    }

    #[test]
    fn a_shared_gpus_figures_are_not_held_against_one_process() {
        let mut w = TelemetryWindow::new(Duration::from_secs(60));
        for s in 0..60 {
            w.push_device(DeviceSample {
                t_ms: s * 1000,
                index: 0,
                uuid: String::new(),
                name: String::new(),
                gpu_util_pct: Some(100),
                mem_util_pct: Some(97),
                mem_used_bytes: None,
                mem_total_bytes: None,
                power_mw: None,
                power_limit_mw: None,
                sm_clock_mhz: None,
                mem_clock_mhz: None,
                pcie_tx_kbps: None,
                pcie_rx_kbps: None,
            });
        }
        for pid in [42, 43] {
            w.push_process(ProcessSample {
                t_ms: 0,
                device_index: 0,
                pid,
                used_mem_bytes: None,
                sm_util_pct: None,
                mem_util_pct: None,
            });
        }
        let v = classify(&CudaActivity::default(), w.summary(42).as_ref());
        assert_eq!(v.class, GpuClass::Unknown, "{v:#?}");
        assert!(v.reasons[1].contains("shared with other processes"));
    }

    #[test]
    fn benign_workloads_are_never_mining() {
        let mut steady_inference = inference();
        steady_inference.busy_slices = 10;
        let benign = [
            training(320, 0.4),
            training(40, 0.95),
            inference(),
            steady_inference,
            prover(),
        ];
        for a in &benign {
            for t in [None, Some(pinned())] {
                let v = classify(a, t.as_ref());
                assert_ne!(v.class, GpuClass::PowMining, "{a:#?}\n{v:#?}");
            }
        }
    }

    #[test]
    fn numbers_read_as_a_person_writes_them() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(48_000), "48 000");
        assert_eq!(count(1_234_567), "1 234 567");
        assert_eq!(pct(0.996), "99 %");
        assert_eq!(pct(1.0), "100 %");
        assert_eq!(pct(0.001), "under 1 %");
        assert_eq!(pct(f64::NAN), "0 %");
        assert_eq!(secs(5.0), "5 s");
        assert_eq!(secs(2.5), "2.5 s");
        assert_eq!(bytes(5.2e9), "5.2 GB");
        assert_eq!(rate(12.0), "12 kB/s");
        assert_eq!(rate(820_000.0), "820 MB/s");
        assert_eq!(code(""), "an unnamed kernel");
        assert!(code(&"y".repeat(100)).ends_with("…`"));
    }

    #[test]
    fn the_class_names_are_the_findings_names() {
        for (class, name) in [
            (GpuClass::PowMining, "pow-mining"),
            (GpuClass::AiTraining, "ai-training"),
            (GpuClass::AiInference, "ai-inference"),
            (GpuClass::ZkProving, "zk-proving"),
            (GpuClass::Unknown, "unknown"),
        ] {
            assert_eq!(class.name(), name);
            assert_eq!(serde_json::to_value(class).unwrap(), name);
        }
    }
}
