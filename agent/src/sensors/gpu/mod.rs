//! GPU telemetry sources (docs/signatures.md, "GPU proof-of-work vs AI").
//!
//! - [`telemetry`]: the samples (per device, per process), the
//!   [`TelemetrySource`](telemetry::TelemetrySource) they come from, and the
//!   [`Recorder`](telemetry::Recorder) that writes them as a trace.
//! - [`nvml`]: the live source, NVML through `libnvidia-ml.so.1` loaded at
//!   run time. No driver: the sensor reports itself unavailable, nothing
//!   else changes.
//! - [`replay`]: the offline source, a recorded trace (JSON lines; the format
//!   is documented there and in `docs/gpu-trace-format.md`).
//!
//! The window over the samples and the GPU classifier are pure:
//! [`assay_classify::gpu`].

pub mod nvml;
pub mod replay;
pub mod telemetry;

#[cfg(test)]
mod fixtures;
