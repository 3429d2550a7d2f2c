//! User side of the CPU sensor: every few seconds, read the kernel's
//! per-thread FPU switch counters, fold them into decaying per-thread sums
//! (half-life [`HALF_LIFE_SECS`]), and hand the most strongly marked thread
//! of each process, with its own CPU use from /proc, to the RandomX
//! classifier.
//!
//! Decaying sums rather than fixed windows: a hashing thread that runs
//! alone on a core is switched out only a few times a second, so a short
//! window holds too few switches to judge, while a plain running total
//! would let an hour of idling hide a minute of mining.

use std::{collections::HashMap, time::Instant};

use assay_common::cpu::FpuStats;
use aya::maps::{HashMap as BpfHashMap, MapData};

use assay_classify::randomx::{self, FpuWindow, RandomxMarker};

/// Half-life of the per-thread sums.
pub const HALF_LIFE_SECS: f64 = 10.0;

#[derive(Debug, Clone, Copy)]
struct Thread {
    tgid: u32,
    /// Raw kernel counters at the last read.
    raw: FpuStats,
    /// Decaying sums: switches, and switches by saved rounding mode.
    switches: f64,
    by_mode: [f64; 4],
}

pub struct FpuSensor {
    map: BpfHashMap<MapData, u32, FpuStats>,
    threads: HashMap<u32, Thread>,
    /// CPU ticks per marked thread at the last read, for the busy test.
    cpu_ticks: HashMap<u32, u64>,
    last_poll: Option<Instant>,
    ticks_per_second: f64,
}

/// A process whose marked thread shows the RandomX fingerprint.
#[derive(Debug, Clone, Copy)]
pub struct Finding {
    pub tgid: u32,
    pub thread: u32,
    pub window: FpuWindow,
    pub marker: RandomxMarker,
}

impl FpuSensor {
    pub fn new(map: BpfHashMap<MapData, u32, FpuStats>) -> Self {
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        Self {
            map,
            threads: HashMap::new(),
            cpu_ticks: HashMap::new(),
            last_poll: None,
            ticks_per_second: if hz > 0 { hz as f64 } else { 100.0 },
        }
    }

    /// Reads the counters and returns every process that shows the marker.
    pub fn poll(&mut self) -> Vec<Finding> {
        let now = Instant::now();
        let elapsed = self
            .last_poll
            .map(|t| now.duration_since(t).as_secs_f64())
            .unwrap_or(0.0);
        self.last_poll = Some(now);
        let decay = 0.5f64.powf(elapsed / HALF_LIFE_SECS);

        let mut threads = HashMap::with_capacity(self.threads.len());
        for entry in self.map.iter() {
            let Ok((tid, raw)) = entry else { continue };
            // A tid seen twice in one walk (the map changed under it) keeps
            // its first reading.
            if threads.contains_key(&tid) {
                continue;
            }
            let thread = match self.threads.remove(&tid) {
                // The same thread (a reused tid has a new tgid or smaller counters).
                Some(old) if old.tgid == raw.tgid && raw.switches >= old.raw.switches => {
                    let mut by_mode = [0.0; 4];
                    for (mode, sum) in by_mode.iter_mut().enumerate() {
                        *sum = old.by_mode[mode] * decay
                            + raw.by_mode[mode].saturating_sub(old.raw.by_mode[mode]) as f64;
                    }
                    Thread {
                        tgid: raw.tgid,
                        raw,
                        switches: old.switches * decay + (raw.switches - old.raw.switches) as f64,
                        by_mode,
                    }
                }
                _ => Thread {
                    tgid: raw.tgid,
                    raw,
                    switches: raw.switches as f64,
                    by_mode: raw.by_mode.map(|n| n as f64),
                },
            };
            threads.insert(tid, thread);
        }
        self.threads = threads;

        // Per process, the thread with the strongest marker.
        let mut best: HashMap<u32, (u32, FpuWindow)> = HashMap::new();
        for (&tid, t) in &self.threads {
            let window = FpuWindow {
                switches: t.switches.round() as u64,
                by_mode: t.by_mode.map(|n| n.round() as u64),
                cpu_cores: 0.0,
            };
            if window.switches < randomx::MIN_SWITCHES
                || (window.nondefault() as f64) < window.switches as f64 * randomx::MARKER_SHARE
            {
                continue;
            }
            let share = |w: &FpuWindow| w.nondefault() as f64 / w.switches.max(1) as f64;
            match best.get(&t.tgid) {
                Some((_, w)) if share(w) >= share(&window) => {}
                _ => {
                    best.insert(t.tgid, (tid, window));
                }
            }
        }

        // /proc is read only for the marked threads: is the thread busy?
        let mut cpu_ticks = HashMap::with_capacity(best.len());
        let mut findings = Vec::new();
        for (tgid, (thread, mut window)) in best {
            let Some(ticks) = thread_cpu_ticks(tgid, thread) else {
                continue;
            };
            cpu_ticks.insert(thread, ticks);
            let Some(&before) = self.cpu_ticks.get(&thread) else {
                // First sight: CPU use is known from the next poll on.
                continue;
            };
            if elapsed > 0.0 {
                window.cpu_cores =
                    ticks.saturating_sub(before) as f64 / self.ticks_per_second / elapsed;
            }
            if let Some(marker) = randomx::assess(&window) {
                findings.push(Finding {
                    tgid,
                    thread,
                    window,
                    marker,
                });
            }
        }
        self.cpu_ticks = cpu_ticks;
        findings
    }
}

/// utime + stime of one thread, in clock ticks.
fn thread_cpu_ticks(tgid: u32, tid: u32) -> Option<u64> {
    use procfs::FromRead as _;
    let stat = procfs::process::Stat::from_file(format!("/proc/{tgid}/task/{tid}/stat")).ok()?;
    Some(stat.utime.saturating_add(stat.stime))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_threads_cpu_ticks_are_read_and_grow() {
        let tgid = std::process::id();
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() } as u32;
        let before = thread_cpu_ticks(tgid, tid).expect("own thread's stat");
        // Spin until a clock tick (10 ms at 100 Hz) of CPU is accounted
        // to this thread, for 10 s at most on a loaded machine.
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        let mut after = before;
        let mut x = 1u64;
        while after == before && Instant::now() < deadline {
            for i in 0..1_000_000u64 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
            }
            after = thread_cpu_ticks(tgid, tid).unwrap();
        }
        assert!(after > before, "{before} -> {after}");
        assert_eq!(thread_cpu_ticks(tgid, u32::MAX), None);
    }
}
