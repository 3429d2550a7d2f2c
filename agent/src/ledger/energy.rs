//! Energy per workload, as Kepler attributes it: a package's RAPL energy
//! over the minute, shared by each workload's part of the host's busy CPU
//! time. GPU energy comes from NVML board power in the agent's loop. Where
//! neither counter exists, the joules are estimated from watts per busy
//! core and per busy GPU, and kept apart (`energy_estimated_j`) so that a
//! report says which figures are measured.
//!
//! Read on the ledger's thread, once a minute: sysfs and /proc/stat reads
//! never run on the agent's loop.

use std::path::{Path, PathBuf};

use super::{Minute, Options};

/// One RAPL zone (a package): its counter and where it wraps.
#[derive(Debug)]
struct Zone {
    energy: PathBuf,
    max_uj: u64,
    last_uj: Option<u64>,
}

/// The host's RAPL packages under a powercap tree.
#[derive(Debug)]
pub struct Rapl {
    zones: Vec<Zone>,
}

impl Rapl {
    /// The top-level zones (`intel-rapl:0`, `intel-rapl:1`, …: packages;
    /// their subzones, `intel-rapl:0:0`, are parts of them and not
    /// added again). `None` where there are none or they cannot be read
    /// (the counter is root-only on recent kernels).
    pub fn discover(root: &Path) -> Option<Self> {
        let mut zones = Vec::new();
        for entry in std::fs::read_dir(root).ok()?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some((_, index)) = name.split_once(':') else {
                continue;
            };
            if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            let dir = entry.path();
            let energy = dir.join("energy_uj");
            if read_u64(&energy).is_none() {
                continue;
            }
            let max_uj = read_u64(&dir.join("max_energy_range_uj")).unwrap_or(u64::MAX);
            zones.push(Zone {
                energy,
                max_uj,
                last_uj: None,
            });
        }
        (!zones.is_empty()).then_some(Self { zones })
    }

    /// Joules used since the previous call (`None` on the first, or when a
    /// counter could not be read).
    pub fn joules_since_last(&mut self) -> Option<f64> {
        let mut total_uj = 0u64;
        let mut complete = true;
        for zone in &mut self.zones {
            let Some(now) = read_u64(&zone.energy) else {
                complete = false;
                zone.last_uj = None;
                continue;
            };
            match zone.last_uj {
                Some(last) if now >= last => total_uj += now - last,
                // The counter wrapped at its range.
                Some(last) => total_uj += zone.max_uj.saturating_sub(last) + now,
                None => complete = false,
            }
            zone.last_uj = Some(now);
        }
        complete.then_some(total_uj as f64 / 1e6)
    }
}

/// The host's busy CPU time, from /proc/stat's first line.
#[derive(Debug)]
pub struct HostCpu {
    path: PathBuf,
    last_ticks: Option<u64>,
    ticks_per_s: f64,
}

impl HostCpu {
    pub fn new(path: &Path) -> Self {
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        Self {
            path: path.to_owned(),
            last_ticks: None,
            ticks_per_s: if hz > 0 { hz as f64 } else { 100.0 },
        }
    }

    /// Busy core-seconds since the previous call.
    pub fn busy_since_last(&mut self) -> Option<f64> {
        let text = std::fs::read_to_string(&self.path).ok()?;
        let now = busy_ticks(&text)?;
        let last = self.last_ticks.replace(now)?;
        Some(now.saturating_sub(last) as f64 / self.ticks_per_s)
    }
}

/// user + nice + system + irq + softirq + steal of the `cpu` line (idle
/// and iowait are not busy; guest time is already in user).
fn busy_ticks(stat: &str) -> Option<u64> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    let at = |i: usize| fields.get(i).copied().unwrap_or(0);
    Some(at(0) + at(1) + at(2) + at(5) + at(6) + at(7))
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Sets each workload's CPU energy: its share of `rapl_j` by CPU time (the
/// share's denominator is the host's busy time, or the workloads' own sum
/// if that is larger), or, without RAPL, the estimate; GPU time without an
/// NVML power figure is estimated too.
pub fn attribute(
    minute: &mut Minute,
    rapl_j: Option<f64>,
    host_busy_s: Option<f64>,
    options: &Options,
) {
    let summed: f64 = minute.workloads.values().map(|u| u.cpu_core_s).sum();
    let denominator = host_busy_s.unwrap_or(0.0).max(summed);
    for usage in minute.workloads.values_mut() {
        usage.energy_rapl_j = 0.0;
        usage.energy_estimated_j = 0.0;
        match rapl_j {
            Some(joules) if denominator > 0.0 => {
                usage.energy_rapl_j = joules * usage.cpu_core_s / denominator;
            }
            Some(_) => {}
            None => usage.energy_estimated_j += usage.cpu_core_s * options.watts_per_core,
        }
        if usage.gpu_s > 0.0 && usage.energy_nvml_j <= 0.0 {
            usage.energy_estimated_j += usage.gpu_s * options.watts_per_gpu;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::Usage;

    #[test]
    fn rapl_packages_are_summed_and_wraps_handled_subzones_skipped() {
        let root = std::env::temp_dir().join(format!("assay-rapl-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for (zone, uj) in [("intel-rapl:0", 1_000_000), ("intel-rapl:1", 999_000_000)] {
            std::fs::create_dir_all(root.join(zone)).unwrap();
            std::fs::write(root.join(zone).join("energy_uj"), format!("{uj}\n")).unwrap();
            std::fs::write(root.join(zone).join("max_energy_range_uj"), "1000000000\n").unwrap();
        }
        // A subzone (the cores of package 0) is part of its package.
        std::fs::create_dir_all(root.join("intel-rapl:0:0")).unwrap();
        std::fs::write(root.join("intel-rapl:0:0/energy_uj"), "5\n").unwrap();
        let mut rapl = Rapl::discover(&root).unwrap();
        assert_eq!(
            rapl.joules_since_last(),
            None,
            "the first read is a baseline"
        );
        std::fs::write(root.join("intel-rapl:0/energy_uj"), "31000000\n").unwrap();
        // Package 1 wrapped: 1 J to the top, then 2 J.
        std::fs::write(root.join("intel-rapl:1/energy_uj"), "2000000\n").unwrap();
        std::fs::write(root.join("intel-rapl:0:0/energy_uj"), "999999999\n").unwrap();
        let joules = rapl.joules_since_last().unwrap();
        assert!((joules - 33.0).abs() < 1e-9, "{joules}");
        assert!(Rapl::discover(&root.join("absent")).is_none());
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn busy_time_leaves_idle_and_iowait_out() {
        let stat = "cpu  100 5 50 1000 40 3 2 1 0 0\ncpu0 1 1 1 1 1 1 1 1 0 0\n";
        assert_eq!(busy_ticks(stat), Some(161));
        assert_eq!(busy_ticks("intr 1 2 3\n"), None);
        assert_eq!(busy_ticks("cpu  1 x\n"), None);
    }

    fn minute_of(cpus: &[f64], gpu_s: f64) -> Minute {
        let mut minute = Minute::default();
        for (i, cpu) in cpus.iter().enumerate() {
            minute.workloads.insert(
                format!("w{i}"),
                Usage {
                    cpu_core_s: *cpu,
                    gpu_s,
                    ..Usage::default()
                },
            );
        }
        minute
    }

    #[test]
    fn rapl_is_shared_by_cpu_time_else_estimated() {
        let options = Options::default();
        let mut minute = minute_of(&[30.0, 10.0], 0.0);
        // The host was busy 80 core-seconds: the two workloads had half.
        attribute(&mut minute, Some(1600.0), Some(80.0), &options);
        assert_eq!(minute.workloads["w0"].energy_rapl_j, 600.0);
        assert_eq!(minute.workloads["w1"].energy_rapl_j, 200.0);
        assert_eq!(minute.workloads["w0"].energy_estimated_j, 0.0);
        // /proc/stat read less than the samples: the shares still add up
        // to at most the whole.
        let mut minute = minute_of(&[30.0, 10.0], 0.0);
        attribute(&mut minute, Some(400.0), Some(20.0), &options);
        assert_eq!(minute.workloads["w0"].energy_rapl_j, 300.0);
        // No RAPL: estimated from watts per core; GPU time likewise.
        let mut minute = minute_of(&[30.0], 12.0);
        attribute(&mut minute, None, None, &options);
        let w = &minute.workloads["w0"];
        assert_eq!(w.energy_rapl_j, 0.0);
        assert_eq!(
            w.energy_estimated_j,
            30.0 * options.watts_per_core + 12.0 * options.watts_per_gpu
        );
    }
}
