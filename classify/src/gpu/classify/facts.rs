//! The facts the rules read: from the launches (dominance, shape, busy
//! slices, the names seen) and from the telemetry window (pinned, idle,
//! busy, static or changing), each telemetry fact kept as the sentence
//! that states it, so that a reason quotes what was measured.

use super::{
    BURST_MIN_PEAK_PCT, BURSTY_MAX_BUSY_SHARE, COMPUTE_PINNED_MAX_STDDEV, COMPUTE_PINNED_MIN_PCT,
    CudaActivity, KernelLaunches, MAX_KERNEL_NAMES, MAX_SHAPE_CHANGE_SHARE, MEM_CHANGING_MIN_CV,
    MEM_PINNED_MAX_STDDEV, MEM_PINNED_MIN_PCT, MEM_STATIC_MAX_CV, MEM_UTIL_VARYING_MIN_STDDEV,
    MIN_PROCESS_SAMPLES, MIN_SLICES, MIN_TELEMETRY_SAMPLES, MINING_MAX_KERNELS, MINING_MAX_SHAPES,
    MINING_MIN_DOMINANT_SHARE, PCIE_BUSY_MIN_KBPS, PCIE_IDLE_MAX_KBPS, STEADY_MAX_IDLE_SHARE,
    STEADY_MIN_UTIL_PCT, SUSTAINED_MIN_BUSY_SHARE, TELEMETRY_BURSTY_MIN_IDLE_SHARE,
    names::{is_dl_name, is_pow_name, is_training_name, is_zk_name},
    wording::{bytes, pct, rate, secs},
};
use crate::gpu::window::TelemetrySummary;
/// Facts about the launches.
pub(super) struct KernelFacts {
    pub(super) distinct: usize,
    /// Share of launches by the top one or two kernels, and how many of
    /// them that takes.
    pub(super) dominant_share: f64,
    pub(super) dominant: usize,
    pub(super) constant_shape: bool,
    /// Rule 2's shape (module doc).
    pub(super) mining_shape: bool,
    pub(super) busy_share: Option<f64>,
    pub(super) pow_names: Vec<String>,
    pub(super) zk_names: Vec<String>,
    pub(super) zk_share: f64,
    pub(super) training_names: Vec<String>,
    pub(super) dl_names: Vec<String>,
    pub(super) dl_libraries: Vec<&'static str>,
}

impl KernelFacts {
    pub(super) fn of(a: &CudaActivity) -> Self {
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

    pub(super) fn ai_stack(&self) -> bool {
        !self.dl_libraries.is_empty() || self.dl_names.len() >= 2
    }

    pub(super) fn sustained(&self) -> bool {
        self.busy_share
            .is_some_and(|s| s >= SUSTAINED_MIN_BUSY_SHARE)
    }

    pub(super) fn bursty(&self) -> bool {
        self.busy_share
            .is_some_and(|s| s > 0.0 && s <= BURSTY_MAX_BUSY_SHARE)
    }
}

/// Facts from the telemetry window, each as the sentence that states it.
#[derive(Debug, Default)]
pub(super) struct TelemetryFacts {
    pub(super) mem_pinned: Option<String>,
    pub(super) compute_pinned: Option<String>,
    pub(super) pcie_idle: Option<String>,
    pub(super) pcie_busy: Option<String>,
    pub(super) mem_static: Option<String>,
    pub(super) mem_changing: Option<String>,
    pub(super) bursty: Option<String>,
    pub(super) steady_busy: Option<String>,
    pub(super) mem_util_varying: Option<String>,
    pub(super) shared: Option<String>,
}

impl TelemetryFacts {
    pub(super) fn of(t: &TelemetrySummary) -> Self {
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
