//! The GPU workload classifier (docs/signatures.md, "GPU proof-of-work vs
//! AI") and the telemetry it reads.
//!
//! - [`samples`]: one device's or one process's telemetry at one instant.
//! - [`window`]: telemetry aggregated over a sliding window, per device and
//!   per process.
//! - [`classify`]: a pure function from what a process did on the CUDA
//!   driver (plus, optionally, its telemetry window) to a verdict:
//!   pow-mining, ai-training, ai-inference, zk-proving or unknown, with the
//!   reasons.

pub mod classify;
pub mod samples;
pub mod window;
