//! GPU telemetry and the GPU workload classifier (SIGNATURES.md, "GPU
//! proof-of-work vs AI").
//!
//! - [`telemetry`]: the samples (per device, per process), the
//!   [`TelemetrySource`](telemetry::TelemetrySource) they come from, and the
//!   [`Recorder`](telemetry::Recorder) that writes them as a trace.
//! - [`nvml`]: the live source, NVML through `libnvidia-ml.so.1` loaded at
//!   run time. No driver: the sensor reports itself unavailable, nothing
//!   else changes.
//! - [`replay`]: the offline source, a recorded trace (JSON lines; the format
//!   is documented there and in `docs/gpu-trace-format.md`).
//! - [`window`]: telemetry aggregated over a sliding window, per device and
//!   per process.
//! - [`classify`]: pure function from what a process did on the CUDA driver
//!   (plus, optionally, its telemetry window) to a verdict: pow-mining,
//!   ai-training, ai-inference, zk-proving or unknown, with the reasons.

pub mod classify;
pub mod nvml;
pub mod replay;
pub mod telemetry;
pub mod window;

#[cfg(test)]
mod fixtures;
