//! The compute-use ledger: what each workload's compute was used for,
//! minute by minute, kept in `--state-dir` and read back by `assay report`.
//!
//! Regulators ask data centres to tell mining apart from other compute and
//! to say what power it used; a colocation operator cannot see inside its
//! tenants' machines, but the agent can. The ledger turns what the agent
//! already measures (CPU time per process, GPU activity, the verdicts) into
//! a durable record:
//! - the agent's loop adds up, per workload and per minute, CPU
//!   core-seconds, GPU busy-seconds and memory, and the verdicts active
//!   ([`Minute`]); at each minute boundary it hands the minute to a thread
//!   of its own ([`writer`]), never waiting on it;
//! - that thread attributes energy ([`energy`]: RAPL by CPU share, NVML by
//!   GPU share, otherwise an estimate marked as such) and writes the minute
//!   in one SQLite transaction ([`store`]), exactly once;
//! - `assay report` compares what was observed with what operators declared
//!   ([`declarations`]) and writes JSON, CSV or a self-contained HTML page
//!   ([`report`], [`html`]).

pub mod declarations;
pub mod energy;
pub mod fleet;
mod hours;
pub mod html;
pub mod report;
pub mod store;
pub mod writer;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What identifies a workload to the declarations' matchers, as last seen:
/// recorded with its usage, so that a report needs no live process.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    /// The container id, for a container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// The systemd unit, for a service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// The cgroup v2 path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
    /// The executable's path, only when the file at that path on the host
    /// was the one running (as the policy's `exe` matcher requires).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exe: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
}

/// A verdict active in a minute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerdictSeen {
    pub id: String,
    /// Its class name (`pow-mining`, …).
    pub class: String,
    /// Its highest level in the minute (`observed`, `suspected`,
    /// `confirmed`).
    pub level: String,
    pub explanation: String,
    /// The chain network an AI verdict's workload also takes part in
    /// (`crate::correlate::incentive`), when it is incentivised.
    pub incentive: Option<String>,
}

/// One workload's use in one minute, as the agent measured it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    pub subject: Subject,
    pub cpu_core_s: f64,
    pub gpu_s: f64,
    /// The most GPU memory it held in the minute.
    pub gpu_mem_bytes: u64,
    /// GPU energy from NVML board power, shared by per-process
    /// utilisation (the agent's loop has it; CPU energy is the writer's).
    pub energy_nvml_j: f64,
    /// CPU energy from RAPL, by CPU share (set by the writer).
    pub energy_rapl_j: f64,
    /// Energy estimated from watts per core and per GPU where neither
    /// counter exists (set by the writer).
    pub energy_estimated_j: f64,
    pub verdicts: Vec<VerdictSeen>,
    /// The resolved executable and the file the process ran, checked on
    /// the writer's thread (a file-system lookup) before `subject.exe` is
    /// set.
    #[serde(skip)]
    pub exe_check: Option<(String, crate::tables::processes::ExeInode)>,
}

/// One minute of the whole host: workload key (the workload as the agent
/// names it, e.g. `session 4242`, `container docker://…`) to its usage.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Minute {
    /// Unix time of the minute's start, in minutes.
    pub minute: i64,
    pub workloads: BTreeMap<String, Usage>,
}

/// Where a joule figure came from (the metrics' `source` label).
pub const ENERGY_SOURCES: [&str; 3] = ["rapl", "nvml", "estimated"];

/// The ledger's settings (`--ledger-*` options).
#[derive(Debug, Clone)]
pub struct Options {
    /// Minutes older than this are deleted.
    pub retention_days: u32,
    /// Minutes older than this are folded into hours.
    pub rollup_after_days: u32,
    /// The estimate where no RAPL counter exists: watts per busy core.
    pub watts_per_core: f64,
    /// The estimate where NVML has no power reading: watts per busy GPU.
    pub watts_per_gpu: f64,
    /// Where the powercap tree is (`/sys/class/powercap`; a directory in
    /// tests).
    pub powercap: std::path::PathBuf,
    /// Where /proc/stat is (the host's busy CPU time, for RAPL shares).
    pub proc_stat: std::path::PathBuf,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            retention_days: 400,
            rollup_after_days: 30,
            watts_per_core: 10.0,
            watts_per_gpu: 250.0,
            powercap: "/sys/class/powercap".into(),
            proc_stat: "/proc/stat".into(),
        }
    }
}

/// The file in the state directory.
pub const LEDGER_FILE: &str = "ledger.sqlite";
