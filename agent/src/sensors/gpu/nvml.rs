//! The live telemetry source: NVML, through nvml-wrapper.
//!
//! `libnvidia-ml.so.1` is loaded at run time (it ships with the driver, not
//! with assay), so the agent builds and starts on hosts without one: there
//! [`NvmlSource::open`] says why the sensor is unavailable and nothing else
//! changes.
//!
//! Each poll reads, per device, the cheap queries (utilisation, memory,
//! power and limit, clocks, PCIe throughput); when due
//! ([`PROCESS_INTERVAL`]), it also enumerates compute processes and their
//! utilisation since the previous enumeration. A query the device does not
//! support leaves its field empty; a device that fails to answer at all is
//! left out of that poll.

use std::{
    collections::{BTreeMap, HashMap},
    ffi::OsStr,
    time::{Duration, Instant},
};

use nvml_wrapper::{
    Device, Nvml,
    enum_wrappers::device::{Clock, PcieUtilCounter},
    enums::device::UsedGpuMemory,
    error::NvmlError,
};

use super::telemetry::{
    DeviceSample, POLL_INTERVAL, PROCESS_INTERVAL, Poll, ProcessSample, ProcessSchedule,
    TelemetryError, TelemetrySource, unix_ms_now,
};

/// Library names tried in order: the driver's soname first (always
/// installed with the driver), then the unversioned development link.
pub const LIBRARY_NAMES: [&str; 2] = ["libnvidia-ml.so.1", "libnvidia-ml.so"];

/// Why the NVML sensor cannot run, in words for `doctor` and the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Unavailable {
    pub reason: String,
}

pub struct NvmlSource {
    nvml: Nvml,
    devices: u32,
    schedule: ProcessSchedule,
    /// Per device, the newest process-utilisation timestamp seen (NVML's
    /// CPU microseconds): the next enumeration asks only for newer samples.
    last_util_us: HashMap<u32, u64>,
}

impl NvmlSource {
    /// Loads NVML and counts the GPUs. Fails, with the reason, when the
    /// library or driver is missing, access is denied, or there is no GPU.
    pub fn open() -> Result<Self, Unavailable> {
        let mut failures = Vec::new();
        for name in LIBRARY_NAMES {
            match Nvml::builder().lib_path(OsStr::new(name)).init() {
                Ok(nvml) => return Self::with(nvml),
                Err(err) => failures.push(format!("{name}: {}", describe(&err))),
            }
        }
        Err(Unavailable {
            reason: format!(
                "NVML could not be loaded ({}); GPU telemetry off: install the NVIDIA driver \
                 or run where its libnvidia-ml.so.1 is visible",
                failures.join("; ")
            ),
        })
    }

    fn with(nvml: Nvml) -> Result<Self, Unavailable> {
        let devices = nvml.device_count().map_err(|err| Unavailable {
            reason: format!("NVML loaded but could not count GPUs: {}", describe(&err)),
        })?;
        if devices == 0 {
            return Err(Unavailable {
                reason: "NVML loaded but reports no GPU; GPU telemetry off".into(),
            });
        }
        Ok(Self {
            nvml,
            devices,
            schedule: ProcessSchedule::new(PROCESS_INTERVAL),
            last_util_us: HashMap::new(),
        })
    }

    /// GPUs NVML saw at open.
    pub fn devices(&self) -> u32 {
        self.devices
    }

    /// The driver's version string, for `doctor`.
    pub fn driver_version(&self) -> Option<String> {
        self.nvml.sys_driver_version().ok()
    }
}

/// The processes on one device: memory from the compute process list,
/// utilisation from NVML's samples since the previous enumeration.
fn processes(
    index: u32,
    device: &Device<'_>,
    t_ms: u64,
    last_util_us: &mut HashMap<u32, u64>,
) -> Vec<ProcessSample> {
    let mut by_pid: BTreeMap<u32, ProcessSample> = BTreeMap::new();
    let blank = |pid| ProcessSample {
        t_ms,
        device_index: index,
        pid,
        used_mem_bytes: None,
        sm_util_pct: None,
        mem_util_pct: None,
    };
    for info in device.running_compute_processes().unwrap_or_default() {
        let sample = by_pid.entry(info.pid).or_insert_with(|| blank(info.pid));
        if let UsedGpuMemory::Used(bytes) = info.used_gpu_memory {
            sample.used_mem_bytes = Some(bytes);
        }
    }
    let since = last_util_us.get(&index).copied();
    if let Ok(stats) = device.process_utilization_stats(since) {
        // Several samples per process since `since`: keep their means.
        let mut sums: BTreeMap<u32, (u64, u64, u64)> = BTreeMap::new();
        for s in &stats {
            let e = sums.entry(s.pid).or_default();
            e.0 += u64::from(s.sm_util);
            e.1 += u64::from(s.mem_util);
            e.2 += 1;
        }
        if let Some(newest) = stats.iter().map(|s| s.timestamp).max() {
            last_util_us.insert(index, newest);
        }
        for (pid, (sm, mem, n)) in sums {
            let sample = by_pid.entry(pid).or_insert_with(|| blank(pid));
            sample.sm_util_pct = u32::try_from(sm / n).ok();
            sample.mem_util_pct = u32::try_from(mem / n).ok();
        }
    }
    by_pid.into_values().collect()
}

impl TelemetrySource for NvmlSource {
    fn name(&self) -> &'static str {
        "nvml"
    }

    fn interval(&self) -> Duration {
        POLL_INTERVAL
    }

    fn poll(&mut self) -> Result<Option<Poll>, TelemetryError> {
        let t_ms = unix_ms_now();
        let enumerate = self.schedule.due(Instant::now());
        let mut poll = Poll {
            devices: Vec::with_capacity(self.devices as usize),
            processes: enumerate.then(Vec::new),
        };
        let mut reached = 0;
        for index in 0..self.devices {
            // A device that has fallen off the bus fails here; the others
            // are still reported.
            let Ok(device) = self.nvml.device_by_index(index) else {
                continue;
            };
            reached += 1;
            poll.devices.push(device_sample(index, &device, t_ms));
            if enumerate {
                let processes = processes(index, &device, t_ms, &mut self.last_util_us);
                poll.processes
                    .get_or_insert_with(Vec::new)
                    .extend(processes);
            }
        }
        if reached == 0 {
            return Err(TelemetryError::Nvml(format!(
                "none of the {} GPUs answered",
                self.devices
            )));
        }
        Ok(Some(poll))
    }
}

fn device_sample(index: u32, device: &Device<'_>, t_ms: u64) -> DeviceSample {
    let utilization = device.utilization_rates().ok();
    let memory = device.memory_info().ok();
    DeviceSample {
        t_ms,
        index,
        uuid: device.uuid().unwrap_or_default(),
        name: device.name().unwrap_or_default(),
        gpu_util_pct: utilization.as_ref().map(|u| u.gpu),
        mem_util_pct: utilization.as_ref().map(|u| u.memory),
        mem_used_bytes: memory.as_ref().map(|m| m.used),
        mem_total_bytes: memory.as_ref().map(|m| m.total),
        power_mw: device.power_usage().ok(),
        power_limit_mw: device.enforced_power_limit().ok(),
        sm_clock_mhz: device.clock_info(Clock::SM).ok(),
        mem_clock_mhz: device.clock_info(Clock::Memory).ok(),
        pcie_tx_kbps: device.pcie_throughput(PcieUtilCounter::Send).ok(),
        pcie_rx_kbps: device.pcie_throughput(PcieUtilCounter::Receive).ok(),
    }
}

/// An NVML error in words, with what to do for the common ones.
fn describe(err: &NvmlError) -> String {
    match err {
        NvmlError::LibloadingError(e) => format!("library not loadable: {e}"),
        NvmlError::DriverNotLoaded => "the NVIDIA kernel driver is not loaded".into(),
        NvmlError::NoPermission => "no permission to talk to the driver".into(),
        NvmlError::LibraryNotFound => "library not found".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_driver_the_sensor_says_why_and_with_one_it_polls() {
        match NvmlSource::open() {
            Err(unavailable) => {
                assert!(
                    unavailable.reason.contains("libnvidia-ml.so.1")
                        || unavailable.reason.contains("NVML"),
                    "{unavailable}"
                );
            }
            Ok(mut source) => {
                let poll = source.poll().unwrap().unwrap();
                assert!(!poll.devices.is_empty());
                assert!(poll.processes.is_some(), "first poll enumerates processes");
                let second = source.poll().unwrap().unwrap();
                assert!(second.processes.is_none(), "not again within 10 s");
            }
        }
    }
}
