//! What one process did on the CUDA driver in a window: its kernel
//! launches and the GPU libraries it maps, as the CUDA sensor fills them.
//! The classifier's only input besides the telemetry window.

use serde::{Deserialize, Serialize};
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
    /// Files mapped that are named like one of the above but whose content
    /// is none of them (the agent reads their exports): evidence of
    /// nothing, never of deep learning, and each flag above counts only a
    /// library identified by its content.
    #[serde(default)]
    pub unidentified: u32,
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
    pub(super) fn inference_runtimes(&self) -> Vec<&'static str> {
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
    /// Most launched first, at most [`MAX_KERNEL_NAMES`](super::MAX_KERNEL_NAMES).
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
