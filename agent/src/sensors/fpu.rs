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
    /// Raw kernel counters at the last read: the non-default switches.
    raw: FpuStats,
    /// The thread's context switches in all at the last read (/proc).
    raw_total: u64,
    /// Decaying sums: switches in all, and non-default ones by mode.
    switches: f64,
    by_mode: [f64; 4],
}

pub struct FpuSensor {
    map: BpfHashMap<MapData, u32, FpuStats>,
    windows: ThreadWindows,
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
            windows: ThreadWindows::default(),
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

        // The kernel counts only the switches that saved non-default
        // rounding; all of them, the kernel's own task counters say. A
        // thread gone meanwhile has nothing more to say.
        let mut readings = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for entry in self.map.iter() {
            let Ok((tid, raw)) = entry else { continue };
            // A tid seen twice in one walk (the map changed under it) keeps
            // its first reading.
            if !seen.insert(tid) {
                continue;
            }
            if let Some(total) = thread_switches(raw.tgid, tid) {
                readings.push((tid, raw, total));
            }
        }
        self.windows.update(readings, decay);
        let best = self.windows.strongest_per_process();

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

/// Decaying per-thread sums of context switches, in all and with each
/// non-default rounding mode: pure, fed one reading per thread per poll.
#[derive(Debug, Default)]
struct ThreadWindows {
    threads: HashMap<u32, Thread>,
}

impl ThreadWindows {
    /// One poll's readings, `(tid, kernel counters, switches in all)`;
    /// `decay` is what the old sums keep (0.5 per half-life). Threads not
    /// read are forgotten.
    fn update(&mut self, readings: impl IntoIterator<Item = (u32, FpuStats, u64)>, decay: f64) {
        let mut threads = HashMap::with_capacity(self.threads.len());
        for (tid, raw, total) in readings {
            let thread = match self.threads.remove(&tid) {
                // The same thread (a reused tid has a new tgid or smaller counters).
                Some(old)
                    if old.tgid == raw.tgid
                        && raw.switches >= old.raw.switches
                        && total >= old.raw_total =>
                {
                    let mut by_mode = [0.0; 4];
                    for (mode, sum) in by_mode.iter_mut().enumerate() {
                        *sum = old.by_mode[mode] * decay
                            + raw.by_mode[mode].saturating_sub(old.raw.by_mode[mode]) as f64;
                    }
                    Thread {
                        tgid: raw.tgid,
                        raw,
                        raw_total: total,
                        switches: old.switches * decay + (total - old.raw_total) as f64,
                        by_mode,
                    }
                }
                // First sight: the window starts here, its total at the
                // non-default switches the kernel saw so far.
                _ => Thread {
                    tgid: raw.tgid,
                    raw,
                    raw_total: total,
                    switches: raw.switches as f64,
                    by_mode: raw.by_mode.map(|n| n as f64),
                },
            };
            threads.insert(tid, thread);
        }
        self.threads = threads;
    }

    /// Per process, the thread with the strongest marker (at least
    /// [`randomx::MIN_SWITCHES`] switches and the marker's share).
    fn strongest_per_process(&self) -> HashMap<u32, (u32, FpuWindow)> {
        let mut best: HashMap<u32, (u32, FpuWindow)> = HashMap::new();
        for (&tid, t) in &self.threads {
            let nondefault = t.by_mode[1] + t.by_mode[2] + t.by_mode[3];
            // Switches with the default rounding: the rest of them (a
            // non-default switch counted by the kernel before /proc's
            // counter moved can make the difference briefly negative).
            let mut by_mode = t.by_mode.map(|n| n.round() as u64);
            by_mode[0] = (t.switches - nondefault).max(0.0).round() as u64;
            let window = FpuWindow {
                switches: t.switches.max(nondefault).round() as u64,
                by_mode,
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
        best
    }
}

/// Context switches of one thread in all (voluntary and not), from the
/// kernel's per-task counters.
fn thread_switches(tgid: u32, tid: u32) -> Option<u64> {
    use procfs::FromRead as _;
    let status =
        procfs::process::Status::from_file(format!("/proc/{tgid}/task/{tid}/status")).ok()?;
    Some(status.voluntary_ctxt_switches? + status.nonvoluntary_ctxt_switches?)
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

    fn counters(tgid: u32, by_mode: [u64; 4]) -> FpuStats {
        FpuStats {
            tgid,
            _pad: 0,
            switches: by_mode[1] + by_mode[2] + by_mode[3],
            by_mode,
        }
    }

    #[test]
    fn a_hashing_thread_is_the_strongest_of_its_process_and_its_sums_decay() {
        let mut windows = ThreadWindows::default();
        // Thread 11 of process 10 switches 100 times, 30 of them with
        // random non-default rounding; thread 12 once in a while.
        windows.update(
            [
                (11, counters(10, [0, 10, 10, 10]), 1_000),
                (12, counters(10, [0, 1, 0, 0]), 50),
            ],
            1.0,
        );
        windows.update(
            [
                (11, counters(10, [0, 20, 20, 20]), 1_100),
                (12, counters(10, [0, 1, 0, 0]), 60),
            ],
            1.0,
        );
        let best = windows.strongest_per_process();
        let (tid, window) = best[&10];
        assert_eq!(tid, 11);
        // 30 first seen + 100 switches since, 60 of them non-default.
        assert_eq!(window.switches, 130);
        assert_eq!(window.nondefault(), 60);
        assert_eq!(window.by_mode[0], 70);
        // A half-life later with nothing new, every sum is halved.
        windows.update([(11, counters(10, [0, 20, 20, 20]), 1_100)], 0.5);
        let (_, window) = windows.strongest_per_process()[&10];
        assert_eq!((window.switches, window.nondefault()), (65, 30));
    }

    #[test]
    fn a_reused_tid_starts_over_and_a_thread_not_read_is_forgotten() {
        let mut windows = ThreadWindows::default();
        windows.update([(7, counters(5, [0, 40, 40, 40]), 400)], 1.0);
        // The tid now belongs to another process, with fewer switches.
        windows.update([(7, counters(6, [0, 1, 1, 1]), 10)], 1.0);
        assert_eq!(windows.strongest_per_process().get(&5), None);
        windows.update([], 1.0);
        assert!(windows.threads.is_empty());
    }

    #[test]
    fn a_thread_with_default_rounding_only_is_never_a_candidate() {
        let mut windows = ThreadWindows::default();
        // The kernel keeps no entry for such a thread; one with a single
        // non-default switch among thousands stays below the marker.
        windows.update([(3, counters(3, [0, 1, 0, 0]), 10_000)], 1.0);
        windows.update([(3, counters(3, [0, 1, 0, 0]), 20_000)], 1.0);
        assert!(windows.strongest_per_process().is_empty());
    }

    #[test]
    fn a_threads_context_switches_are_read_and_grow() {
        let tgid = std::process::id();
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() } as u32;
        let before = thread_switches(tgid, tid).expect("own thread's status");
        // Every sleep is a voluntary switch.
        for _ in 0..3 {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let after = thread_switches(tgid, tid).unwrap();
        assert!(after >= before + 3, "{before} -> {after}");
        assert_eq!(thread_switches(tgid, u32::MAX), None);
    }
}
