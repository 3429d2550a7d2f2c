//! GPU telemetry samples: one per device and one per process per poll, and
//! a trace's lines. The sources (NVML, a replayed trace) live in the agent;
//! these are the plain data the window and the classifier read.

use serde::{Deserialize, Serialize};

/// One GPU at one instant. Every field NVML may not support on a device
/// (consumer boards, vGPUs, MIG instances) is optional.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceSample {
    /// Wall-clock time of the sample, milliseconds since the Unix epoch.
    pub t_ms: u64,
    /// NVML's device index (not necessarily CUDA's).
    pub index: u32,
    #[serde(default)]
    pub uuid: String,
    #[serde(default)]
    pub name: String,
    /// Share of the last sample period (1/6 s to 1 s) in which a kernel ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_util_pct: Option<u32>,
    /// Share of the last sample period in which device memory was read or
    /// written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_util_pct: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_used_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_total_bytes: Option<u64>,
    /// Board power draw, milliwatts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_mw: Option<u32>,
    /// Enforced power limit, milliwatts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_limit_mw: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sm_clock_mhz: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_clock_mhz: Option<u32>,
    /// PCIe bytes sent by the GPU, in kilobytes (1000 bytes) per second,
    /// NVML's unit, over its 20 ms sample.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pcie_tx_kbps: Option<u32>,
    /// PCIe bytes received by the GPU, kilobytes per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pcie_rx_kbps: Option<u32>,
}

/// One process on one GPU, from process enumeration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessSample {
    /// Wall-clock time of the enumeration, milliseconds since the Unix
    /// epoch.
    pub t_ms: u64,
    pub device_index: u32,
    /// Process id as the host sees it (NVML reports host pids, also for
    /// processes in containers).
    pub pid: u32,
    /// Device memory the process holds (unavailable under some drivers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_mem_bytes: Option<u64>,
    /// The process's SM (kernel) utilisation since the previous
    /// enumeration, mean of NVML's samples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sm_util_pct: Option<u32>,
    /// The process's memory utilisation since the previous enumeration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_util_pct: Option<u32>,
}

/// One line of a trace (see [`super::replay`] for the format).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TraceRecord {
    Device(DeviceSample),
    Process(ProcessSample),
}

impl TraceRecord {
    pub fn t_ms(&self) -> u64 {
        match self {
            Self::Device(d) => d.t_ms,
            Self::Process(p) => p.t_ms,
        }
    }
}

/// What one poll gave.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Poll {
    pub devices: Vec<DeviceSample>,
    /// `Some` when processes were enumerated in this poll (possibly none
    /// running), `None` when enumeration was not due.
    pub processes: Option<Vec<ProcessSample>>,
}
