//! User side of the CPU sensor: every few seconds, read the kernel's
//! per-thread FPU switch counters, fold them into decaying sums per
//! *process* (half-life [`HALF_LIFE_SECS`]), and hand each process's sums,
//! with the CPU the whole process used (from /proc), to the RandomX
//! classifier.
//!
//! Decaying sums rather than fixed windows: a hashing thread that runs
//! alone on a core is switched out only a few times a second, so a short
//! window holds too few switches to judge, while a plain running total
//! would let an hour of idling hide a minute of mining.
//!
//! Per process, not per thread: judged thread by thread, a miner could
//! replace its hashing threads faster than the sensor reads (every 2 s),
//! so that no thread is ever read twice and none judged, or spread its
//! hashing over many throttled threads, each too idle to count as busy
//! and too quiet to have enough switches. So every thread's switches are
//! summed into its process's window, and a thread that exits hands over
//! what the kernel counted for it since the last read: the kernel's entry
//! outlives the thread, and is deleted once read. Busy-ness is the
//! process's CPU (`/proc/<pid>/stat`, which keeps what exited threads
//! used), not one thread's.
//!
//! What is not known of a thread: its switches in all before its first
//! read that matter (a thread's life before it hashed, or before the agent
//! started, would only dilute), and between its last read and its exit
//! (its /proc entry went with it). The first count as its non-default
//! ones, as when the marker was judged per thread; the last stretch is
//! reckoned at the thread's own measured ratio of switches in all to
//! non-default ones (its whole life up to its last read, when it began
//! after the agent), or at least its non-default ones when nothing was
//! measured (a thread that lived between two reads). The share of such a thread leans high, which
//! the marker's mode mix (all three non-default modes, as CFROUND draws
//! them) keeps from marking benign rounding changes.
//!
//! Per workload too: a miner can rotate whole processes as well as
//! threads, and a process's sums go with it at its exit. The measured
//! part of every reading is also summed per cgroup ([`fpu_workload`]),
//! held to the same structure and more.

use std::{
    collections::{HashMap, HashSet},
    path::{Path, PathBuf},
    time::Instant,
};

use assay_common::cpu::FpuStats;
use aya::maps::{HashMap as BpfHashMap, MapData};

use assay_classify::randomx::{self, FpuWindow, RandomxMarker};

use super::fpu_workload::{Contribution, WorkloadFinding, Workloads};
use crate::kernel::cgroup;

/// Half-life of the per-process sums.
pub const HALF_LIFE_SECS: f64 = 10.0;
/// A process's sums smaller than this, with no thread left, are forgotten.
const NEGLIGIBLE: f64 = 0.5;

/// A thread's raw counters at its last read, to tell what is new.
#[derive(Debug, Clone, Copy)]
struct Thread {
    tgid: u32,
    /// Raw kernel counters: the non-default switches, by mode.
    raw: FpuStats,
    /// Its context switches in all (/proc).
    raw_total: u64,
    /// Its non-default switches, decaying: which thread marks the process
    /// most, for the evidence.
    nondefault: f64,
    /// Its switches in all and non-default ones over the stretches where
    /// both were measured: their ratio is what its last stretch, after its
    /// last read and before its exit, is reckoned at.
    measured: (u64, u64),
}

impl Thread {
    /// Switches in all per non-default one, as measured of this thread.
    fn ratio(&self) -> Option<f64> {
        let (all, nondefault) = self.measured;
        (nondefault > 0).then(|| all as f64 / nondefault as f64)
    }
}

/// A process's decaying sums over all its threads, live and exited.
#[derive(Debug, Clone, Copy, Default)]
struct Sums {
    switches: f64,
    by_mode: [f64; 4],
    /// Threads that exited and handed over their counts, since first seen.
    exited_threads: u64,
}

pub struct FpuSensor {
    map: BpfHashMap<MapData, u32, FpuStats>,
    windows: ThreadWindows,
    /// CPU ticks per marked process at the last read, for the busy test.
    cpu_ticks: HashMap<u32, u64>,
    last_poll: Option<Instant>,
    ticks_per_second: f64,
    /// When the agent started, in clock ticks since boot: a thread started
    /// after it had every switch counted by the kernel.
    started_ticks: u64,
    /// The same readings summed per workload (cgroup id).
    workloads: Workloads,
    /// The cgroup2 mount, to read a workload's CPU.
    cgroup_root: Option<PathBuf>,
    /// Followed workloads' cgroup directories, once found.
    cgroup_paths: HashMap<u64, PathBuf>,
    /// CPU (µs) per marked workload at the last read, for the busy test.
    cgroup_usec: HashMap<u64, u64>,
}

/// What one read found: processes and workloads with the marker.
#[derive(Debug, Default)]
pub struct Findings {
    pub processes: Vec<Finding>,
    /// Workloads with the marker over their processes where no process of
    /// theirs showed it alone.
    pub workloads: Vec<WorkloadFinding>,
}

/// A process that shows the RandomX fingerprint over its threads.
#[derive(Debug, Clone, Copy)]
pub struct Finding {
    pub tgid: u32,
    /// Its live thread with the most non-default switches, if any is.
    pub thread: Option<u32>,
    /// Its threads read in this poll, alive.
    pub threads: usize,
    /// Its threads that exited and handed their counts over.
    pub exited_threads: u64,
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
            // Unknown: every thread counts as older than the agent.
            started_ticks: start_ticks(std::process::id(), std::process::id()).unwrap_or(u64::MAX),
            workloads: Workloads::default(),
            cgroup_root: cgroup::cgroup2_mount().ok(),
            cgroup_paths: HashMap::new(),
            cgroup_usec: HashMap::new(),
        }
    }

    /// Processes and workloads whose sums are followed, and processes left
    /// out of the workload sums for want of room.
    pub fn workload_counts(&self) -> (usize, usize, u64) {
        (
            self.workloads.followed(),
            self.workloads.workloads(),
            self.workloads.dropped,
        )
    }

    /// A process exited: its sums go with it (its threads' kernel entries
    /// are deleted at the next read, uncounted).
    pub fn forget(&mut self, tgid: u32) {
        self.windows.forget(tgid);
        self.cpu_ticks.remove(&tgid);
        // Its workload's sums keep what it did.
        self.workloads.exited(tgid);
    }

    /// Reads the counters and returns every process, and every workload,
    /// that shows the marker. `workload_of` says the cgroup id of a live
    /// process (`None` where it is unknown or not to be summed).
    pub fn poll(&mut self, workload_of: impl Fn(u32) -> Option<u64>) -> Findings {
        let now = Instant::now();
        let elapsed = self
            .last_poll
            .map(|t| now.duration_since(t).as_secs_f64())
            .unwrap_or(0.0);
        self.last_poll = Some(now);
        let decay = 0.5f64.powf(elapsed / HALF_LIFE_SECS);

        // The kernel counts only the switches that saved non-default
        // rounding; all of them, the kernel's own task counters say.
        let mut readings = Vec::new();
        let mut stale = Vec::new();
        let mut seen = HashSet::new();
        for entry in self.map.iter() {
            let Ok((tid, raw)) = entry else { continue };
            // A tid seen twice in one walk (the map changed under it) keeps
            // its first reading.
            if !seen.insert(tid) {
                continue;
            }
            let total = thread_switches(raw.tgid, tid);
            if total.is_none() && !Path::new(&format!("/proc/{}", raw.tgid)).exists() {
                // Its process is gone: nothing more to say of it.
                stale.push(tid);
                continue;
            }
            // A thread first read: born after the agent, its /proc total
            // covers what the kernel counted.
            let since_birth = total.is_some()
                && !self.windows.knows(tid, raw.tgid)
                && start_ticks(raw.tgid, tid).is_some_and(|t| t > self.started_ticks);
            readings.push(Reading {
                tid,
                raw,
                total,
                since_birth,
            });
        }
        stale.extend(self.windows.update(readings, decay));
        self.workloads
            .update(&self.windows.contributions, decay, workload_of);
        // Read and handed over: the kernel's entries of exited threads go,
        // so that the map holds live threads (and a reused tid starts over).
        for tid in stale {
            let _ = self.map.remove(&tid);
        }

        // /proc is read only for the marked processes: are they busy?
        let mut cpu_ticks = HashMap::new();
        let mut findings = Vec::new();
        for candidate in self.windows.candidates() {
            let Candidate {
                tgid,
                mut window,
                thread,
                threads,
                exited_threads,
            } = candidate;
            let Some(ticks) = process_cpu_ticks(tgid) else {
                continue;
            };
            cpu_ticks.insert(tgid, ticks);
            let Some(&before) = self.cpu_ticks.get(&tgid) else {
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
                    threads,
                    exited_threads,
                    window,
                    marker,
                });
            }
        }
        self.cpu_ticks = cpu_ticks;
        let workloads = self.poll_workloads(&findings, elapsed);
        Findings {
            processes: findings,
            workloads,
        }
    }

    /// The workloads that show the marker, busy, for long enough, none of
    /// whose live processes was found alone in this read.
    fn poll_workloads(&mut self, found: &[Finding], elapsed: f64) -> Vec<WorkloadFinding> {
        let mut usec = HashMap::new();
        let mut findings = Vec::new();
        for candidate in self.workloads.candidates() {
            let now = self.workload_usec(candidate.workload, &candidate.live);
            let cores = match (now, self.cgroup_usec.get(&candidate.workload)) {
                (Some(now), Some(&before)) if elapsed > 0.0 => {
                    Some(now.saturating_sub(before) as f64 / 1e6 / elapsed)
                }
                _ => None,
            };
            if let Some(now) = now {
                usec.insert(candidate.workload, now);
            }
            let alone = found.iter().any(|f| candidate.live.contains(&f.tgid));
            if let Some(finding) = self.workloads.judge(candidate, cores)
                && !alone
            {
                findings.push(finding);
            }
        }
        self.cgroup_usec = usec;
        let workloads = &self.workloads;
        self.cgroup_paths.retain(|&id, _| workloads.follows(id));
        findings
    }

    /// CPU a workload used in all, in µs (its cgroup's `cpu.stat`, which
    /// keeps what exited processes used). Its directory is found from a
    /// live process's /proc entry and checked by inode (the cgroup id).
    fn workload_usec(&mut self, workload: u64, live: &[u32]) -> Option<u64> {
        let root = self.cgroup_root.as_ref()?;
        let is_it = |path: &Path| cgroup::cgroup_id(path).is_ok_and(|id| id == workload);
        let path = match self.cgroup_paths.get(&workload) {
            Some(path) if is_it(path) => path.clone(),
            _ => live.iter().find_map(|&tgid| {
                let relative = cgroup::process_cgroup(tgid)?;
                let path = root.join(relative.trim_start_matches('/'));
                is_it(&path).then_some(path)
            })?,
        };
        let stat = std::fs::read_to_string(path.join("cpu.stat")).ok();
        self.cgroup_paths.insert(workload, path);
        cgroup_usage_usec(&stat?)
    }
}

/// `usage_usec` of a cgroup's `cpu.stat`.
fn cgroup_usage_usec(stat: &str) -> Option<u64> {
    stat.lines()
        .find_map(|line| line.strip_prefix("usage_usec "))
        .and_then(|n| n.trim().parse().ok())
}

/// One thread's entry in the kernel's map, with its switches in all when
/// it is still alive to say (`None`: it exited).
#[derive(Debug, Clone, Copy)]
struct Reading {
    tid: u32,
    raw: FpuStats,
    total: Option<u64>,
    /// First read, and started after the agent: `total` and the kernel's
    /// counts cover the same stretch, its whole life (for its ratio).
    since_birth: bool,
}

/// A process whose sums may show the marker.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    tgid: u32,
    window: FpuWindow,
    thread: Option<u32>,
    threads: usize,
    exited_threads: u64,
}

/// Decaying per-process sums of context switches, in all and with each
/// non-default rounding mode, over every thread the process had: pure, fed
/// one reading per thread per poll.
#[derive(Debug, Default)]
struct ThreadWindows {
    threads: HashMap<u32, Thread>,
    processes: HashMap<u32, Sums>,
    /// What the last update's readings added, for the workload sums.
    contributions: Vec<Contribution>,
}

impl ThreadWindows {
    /// One poll's readings; `decay` is what the old sums keep (0.5 per
    /// half-life). A thread read as exited hands its counts since its last
    /// read to its process; threads not read at all are forgotten. Returns
    /// the exited threads, whose kernel entries are done with.
    fn update(&mut self, readings: impl IntoIterator<Item = Reading>, decay: f64) -> Vec<u32> {
        for sums in self.processes.values_mut() {
            sums.switches *= decay;
            for n in &mut sums.by_mode {
                *n *= decay;
            }
        }
        let mut threads = HashMap::with_capacity(self.threads.len());
        let mut exited = Vec::new();
        self.contributions.clear();
        for Reading {
            tid,
            raw,
            total,
            since_birth,
        } in readings
        {
            let old = self.threads.remove(&tid).filter(|old| {
                // The same thread (a reused tid has a new tgid or smaller
                // counters).
                old.tgid == raw.tgid
                    && raw.switches >= old.raw.switches
                    && total.is_none_or(|t| t >= old.raw_total)
                    && (0..4).all(|m| raw.by_mode[m] >= old.raw.by_mode[m])
            });
            if total.is_none() && !self.processes.contains_key(&raw.tgid) {
                // Exited, of a process never seen (or forgotten at its
                // exit): no window to hand its counts to; its workload
                // learns which modes it used.
                exited.push(tid);
                self.contributions.push(Contribution {
                    tgid: raw.tgid,
                    by_mode: raw.by_mode,
                    measured: None,
                });
                continue;
            }
            let mut new = [0u64; 4];
            for (mode, n) in new.iter_mut().enumerate() {
                *n = raw.by_mode[mode] - old.map_or(0, |o| o.raw.by_mode[mode]);
            }
            let new_nondefault = new[1] + new[2] + new[3];
            // What was measured of the thread: since its last read, or on
            // first sight, its whole life when it began after the agent.
            let measured = match (old, total) {
                (Some(old), Some(total)) => Some(total - old.raw_total),
                (None, Some(total)) if since_birth => Some(total),
                _ => None,
            };
            let new_switches = match (old, total) {
                (Some(old), Some(total)) => (total - old.raw_total) as f64,
                // First sight: at least its non-default switches. Not its
                // whole life: what a miner's thread did before it hashed
                // (monerod's builds the 2 GiB dataset) would dilute the
                // share for tens of seconds.
                (None, _) => new_nondefault as f64,
                // Exited: its last stretch at its own measured ratio.
                (Some(old), None) => old
                    .ratio()
                    .map_or(new_nondefault as f64, |r| new_nondefault as f64 * r),
            }
            .max(new_nondefault as f64);
            self.contributions.push(Contribution {
                tgid: raw.tgid,
                by_mode: new,
                measured,
            });
            let sums = self.processes.entry(raw.tgid).or_default();
            sums.switches += new_switches;
            for (sum, n) in sums.by_mode.iter_mut().zip(new) {
                *sum += n as f64;
            }
            match total {
                Some(total) => {
                    let nondefault = old.map_or(0.0, |o| o.nondefault) * decay;
                    let (all, nondefault_measured) = old.map_or((0, 0), |o| o.measured);
                    let measured = match measured {
                        Some(n) => (all + n, nondefault_measured + new_nondefault),
                        None => (all, nondefault_measured),
                    };
                    threads.insert(
                        tid,
                        Thread {
                            tgid: raw.tgid,
                            raw,
                            raw_total: total,
                            nondefault: nondefault + new_nondefault as f64,
                            measured,
                        },
                    );
                }
                None => {
                    sums.exited_threads += 1;
                    exited.push(tid);
                }
            }
        }
        self.threads = threads;
        let live: HashSet<u32> = self.threads.values().map(|t| t.tgid).collect();
        self.processes
            .retain(|tgid, sums| live.contains(tgid) || sums.switches >= NEGLIGIBLE);
        exited
    }

    /// Whether `tid` was read before, as a thread of `tgid`.
    fn knows(&self, tid: u32, tgid: u32) -> bool {
        self.threads.get(&tid).is_some_and(|t| t.tgid == tgid)
    }

    fn forget(&mut self, tgid: u32) {
        self.processes.remove(&tgid);
        self.threads.retain(|_, t| t.tgid != tgid);
    }

    /// The processes whose sums have at least [`randomx::MIN_SWITCHES`]
    /// switches and the marker's share, with their CPU use still to fill.
    fn candidates(&self) -> Vec<Candidate> {
        let mut live: HashMap<u32, (usize, Option<(u32, f64)>)> = HashMap::new();
        for (&tid, t) in &self.threads {
            let (count, strongest) = live.entry(t.tgid).or_default();
            *count += 1;
            if strongest.is_none_or(|(other, n)| (t.nondefault, tid) > (n, other)) {
                *strongest = Some((tid, t.nondefault));
            }
        }
        let mut candidates = Vec::new();
        for (&tgid, sums) in &self.processes {
            let nondefault = sums.by_mode[1] + sums.by_mode[2] + sums.by_mode[3];
            // Switches with the default rounding: the rest of them (a
            // non-default switch counted by the kernel before /proc's
            // counter moved can make the difference briefly negative).
            let mut by_mode = sums.by_mode.map(|n| n.round() as u64);
            by_mode[0] = (sums.switches - nondefault).max(0.0).round() as u64;
            let window = FpuWindow {
                switches: sums.switches.max(nondefault).round() as u64,
                by_mode,
                cpu_cores: 0.0,
            };
            if window.switches < randomx::MIN_SWITCHES
                || (window.nondefault() as f64) < window.switches as f64 * randomx::MARKER_SHARE
            {
                continue;
            }
            let (threads, strongest) = live.get(&tgid).copied().unwrap_or_default();
            candidates.push(Candidate {
                tgid,
                window,
                thread: strongest.map(|(tid, _)| tid),
                threads,
                exited_threads: sums.exited_threads,
            });
        }
        candidates.sort_by_key(|c| c.tgid);
        candidates
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

/// When a thread started, in clock ticks since boot.
fn start_ticks(tgid: u32, tid: u32) -> Option<u64> {
    use procfs::FromRead as _;
    let stat = procfs::process::Stat::from_file(format!("/proc/{tgid}/task/{tid}/stat")).ok()?;
    Some(stat.starttime)
}

/// utime + stime of a whole process, in clock ticks: its live threads'
/// and those that exited (the kernel keeps theirs in the process's
/// signal struct).
fn process_cpu_ticks(tgid: u32) -> Option<u64> {
    use procfs::FromRead as _;
    let stat = procfs::process::Stat::from_file(format!("/proc/{tgid}/stat")).ok()?;
    Some(stat.utime.saturating_add(stat.stime))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_cpu_ticks_keep_its_exited_threads_and_threads_have_a_start() {
        let tgid = std::process::id();
        let before = process_cpu_ticks(tgid).expect("own stat");
        // A thread spins until a clock tick (10 ms at 100 Hz) of CPU is
        // accounted to the process, for 10 s at most on a loaded machine,
        // and exits: its time stays with the process.
        let spun = std::thread::spawn(move || {
            let deadline = Instant::now() + std::time::Duration::from_secs(10);
            let mut x = 1u64;
            let mut seen = before;
            while seen == before && Instant::now() < deadline {
                for i in 0..1_000_000u64 {
                    x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
                }
                seen = process_cpu_ticks(tgid).unwrap();
            }
            seen
        })
        .join()
        .unwrap();
        assert!(spun > before, "{before} -> {spun}");
        assert!(process_cpu_ticks(tgid).unwrap() >= spun);
        assert_eq!(process_cpu_ticks(u32::MAX), None);
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() } as u32;
        assert!(start_ticks(tgid, tid).is_some());
        assert_eq!(start_ticks(tgid, u32::MAX), None);
    }

    fn counters(tgid: u32, by_mode: [u64; 4]) -> FpuStats {
        FpuStats {
            tgid,
            _pad: 0,
            switches: by_mode[1] + by_mode[2] + by_mode[3],
            by_mode,
        }
    }

    /// A live thread's reading: its switches in all.
    fn live(tid: u32, tgid: u32, by_mode: [u64; 4], total: u64) -> Reading {
        Reading {
            tid,
            raw: counters(tgid, by_mode),
            total: Some(total),
            since_birth: false,
        }
    }

    /// A thread started after the agent, read for the first time.
    fn newborn(tid: u32, tgid: u32, by_mode: [u64; 4], total: u64) -> Reading {
        Reading {
            since_birth: true,
            ..live(tid, tgid, by_mode, total)
        }
    }

    /// The kernel's entry of a thread that exited.
    fn exited(tid: u32, tgid: u32, by_mode: [u64; 4]) -> Reading {
        Reading {
            tid,
            raw: counters(tgid, by_mode),
            total: None,
            since_birth: false,
        }
    }

    fn candidate(windows: &ThreadWindows, tgid: u32) -> Option<Candidate> {
        windows.candidates().into_iter().find(|c| c.tgid == tgid)
    }

    /// The marker as the sensor would assess it with the process's CPU.
    fn judged(windows: &ThreadWindows, tgid: u32, cpu_cores: f64) -> Option<RandomxMarker> {
        let mut window = candidate(windows, tgid)?.window;
        window.cpu_cores = cpu_cores;
        randomx::assess(&window)
    }

    /// Half-life 10 s, read every 2 s.
    const POLL_DECAY: f64 = 0.870_550_563_296_124;

    #[test]
    fn the_threads_of_a_process_are_summed_and_the_sums_decay() {
        let mut windows = ThreadWindows::default();
        // Thread 11 of process 10 switches 100 times, 30 of them with
        // random non-default rounding; thread 12 now and then.
        windows.update(
            [
                live(11, 10, [0, 10, 10, 10], 1_000),
                live(12, 10, [0, 2, 0, 0], 50),
            ],
            1.0,
        );
        windows.update(
            [
                live(11, 10, [0, 20, 20, 20], 1_100),
                live(12, 10, [0, 2, 0, 0], 70),
            ],
            1.0,
        );
        let c = candidate(&windows, 10).unwrap();
        assert_eq!(c.thread, Some(11));
        assert_eq!(c.threads, 2);
        // First sight: 30 + 2 (non-default, older than the agent); since:
        // 100 + 20 switches, 30 of them non-default.
        assert_eq!(c.window.switches, 152);
        assert_eq!(c.window.nondefault(), 62);
        assert_eq!(c.window.by_mode, [90, 22, 20, 20]);
        // A half-life later with nothing new, every sum is halved; thread
        // 12's entry is gone, its switches stay with its process.
        windows.update([live(11, 10, [0, 20, 20, 20], 1_100)], 0.5);
        let c = candidate(&windows, 10).unwrap();
        assert_eq!((c.window.switches, c.window.nondefault()), (76, 31));
        assert_eq!(c.threads, 1);
    }

    #[test]
    fn a_reused_tid_starts_over_and_an_exited_process_is_forgotten() {
        let mut windows = ThreadWindows::default();
        windows.update([live(7, 5, [0, 40, 40, 40], 400)], 1.0);
        // The tid now belongs to another process, with fewer switches:
        // process 6 starts from its own counts, 5 keeps its own.
        windows.update([live(7, 6, [0, 1, 1, 1], 10)], 1.0);
        assert!(candidate(&windows, 6).is_none());
        assert_eq!(candidate(&windows, 5).unwrap().window.nondefault(), 120);
        // Process 5 exits: forgotten, and its threads' entries, read
        // after, are done with and hand nothing over.
        windows.forget(5);
        let done = windows.update([exited(8, 5, [0, 9, 9, 9])], 1.0);
        assert_eq!(done, [8]);
        assert!(candidate(&windows, 5).is_none());
        // Sums that decayed to nothing, of a process without threads, go.
        windows.update([], 1e-6);
        assert!(windows.processes.is_empty() && windows.threads.is_empty());
    }

    #[test]
    fn a_thread_with_default_rounding_only_is_never_a_candidate() {
        let mut windows = ThreadWindows::default();
        // The kernel keeps no entry for such a thread; one with a single
        // non-default switch among thousands stays below the marker.
        windows.update([live(3, 3, [0, 1, 0, 0], 10_000)], 1.0);
        windows.update([live(3, 3, [0, 1, 0, 0], 20_000)], 1.0);
        assert!(windows.candidates().is_empty());
    }

    /// RandomX-like: a third of a hashing thread's switches save one of
    /// the three non-default modes, drawn evenly.
    fn hashing(n: u64) -> [u64; 4] {
        [0, n, n, n]
    }

    #[test]
    fn hashing_threads_replaced_faster_than_the_sensor_reads_are_judged_together() {
        let mut windows = ThreadWindows::default();
        // Process 40's hashing threads each live under 2 s: one is read
        // alive once (60 switches, 18 non-default so far), then only its
        // kernel entry is left (17 more); another lives and dies between
        // two reads. No thread is ever read alive twice, none has enough
        // switches of its own, and each poll hands the exited ones over.
        let mut judged_at = None;
        for poll in 0..12u32 {
            let born = 1_000 + 3 * poll;
            let mut readings = vec![
                newborn(born, 40, hashing(6), 60),
                exited(born + 2, 40, [0, 5, 6, 5]),
            ];
            if poll > 0 {
                readings.push(exited(born - 3, 40, [0, 12, 11, 12]));
            }
            let done = windows.update(readings, POLL_DECAY);
            assert!(done.contains(&(born + 2)) || poll == 0);
            for thread in windows.threads.values() {
                assert!(thread.raw.switches < randomx::MIN_SWITCHES);
            }
            if judged_at.is_none() && judged(&windows, 40, 1.0).is_some_and(|m| m.decisive) {
                judged_at = Some(poll);
            }
        }
        // Decisive within a few reads: a third of the switches, every mode.
        assert!(judged_at.is_some_and(|p| p <= 3), "{judged_at:?}");
        let c = candidate(&windows, 40).unwrap();
        assert!(c.exited_threads >= 20, "{}", c.exited_threads);
        let share = c.window.nondefault() as f64 / c.window.switches as f64;
        // The exited threads' last stretches were reckoned at their own
        // measured ratio (~0.3), not at 1; their first read and the
        // never-read threads lean high: about 0.56 (51 of 91 a poll).
        assert!((0.5..0.62).contains(&share), "{share}");
    }

    #[test]
    fn many_throttled_threads_add_up_and_the_process_is_busy_not_each_thread() {
        let mut windows = ThreadWindows::default();
        // 16 hashing threads, each throttled to a few switches per read,
        // none with enough of its own; the process's CPU is what is busy
        // (16 threads at 0.05 cores each: 0.8 cores).
        for poll in 0..6u64 {
            let readings = (0..16u32).map(|t| {
                let n = poll + 1;
                live(2_000 + t, 50, hashing(n), 10 * n)
            });
            windows.update(readings, POLL_DECAY);
        }
        assert!(
            windows
                .threads
                .values()
                .all(|t| t.raw.switches < randomx::MIN_SWITCHES)
        );
        let marker = judged(&windows, 50, 0.8).unwrap();
        assert!(marker.decisive && marker.busy, "{marker:?}");
        // One such thread's CPU alone (0.05 cores) would not be busy.
        assert!(!judged(&windows, 50, 0.05).unwrap().busy);
    }

    #[test]
    fn benign_rounding_changes_stay_silent_summed_over_threads_or_rotated() {
        let mut windows = ThreadWindows::default();
        for poll in 0..10u64 {
            let n = poll + 1;
            let born = 5_000 + 2 * poll as u32;
            let mut readings = vec![
                // fesetround(FE_UPWARD) once, held for good (CGAL's
                // Protect_FPU_rounding): every switch non-default, one mode.
                live(60, 60, [0, 0, 100 * n, 0], 100 * n),
                // Interval arithmetic (down and up held for long stretches)
                // beside a thread that truncates toward zero for a moment
                // now and then, in one process.
                live(71, 70, [0, 50 * n, 50 * n, 0], 200 * n),
                live(72, 70, [0, 0, 0, n], 1_000 * n),
                // A pool whose interval-arithmetic workers are replaced
                // faster than the sensor reads.
                newborn(born, 80, [0, 20, 20, 0], 80),
                // A process that set a random mode once in a while and
                // restored it at once: a handful of switches among many.
                live(91, 90, [0, n, n, n], 5_000 * n),
            ];
            if poll > 0 {
                readings.push(exited(born - 2, 80, [0, 35, 35, 0]));
            }
            windows.update(readings, POLL_DECAY);
            for tgid in [60, 70, 80, 90] {
                assert_eq!(judged(&windows, tgid, 1.0), None, "pid {tgid} poll {poll}");
            }
        }
    }

    #[test]
    fn an_exited_threads_last_stretch_is_reckoned_at_its_own_ratio() {
        let mut windows = ThreadWindows::default();
        // Born after the agent: 400 switches, 40 non-default (1 in 10).
        windows.update([newborn(9, 9, [0, 20, 10, 10], 400)], 1.0);
        // It exits after 30 more non-default switches: about 300 in all.
        // (Its first read counted 40, its non-default ones.)
        let done = windows.update([exited(9, 9, [0, 30, 20, 20])], 1.0);
        assert_eq!(done, [9]);
        let c = candidate(&windows, 9).unwrap();
        assert_eq!((c.window.switches, c.window.nondefault()), (340, 70));
        assert_eq!((c.threads, c.thread, c.exited_threads), (0, None, 1));
    }

    #[test]
    fn a_cgroups_cpu_use_is_read_from_its_cpu_stat() {
        let stat = "usage_usec 1234567\nuser_usec 1000000\nsystem_usec 234567\n";
        assert_eq!(cgroup_usage_usec(stat), Some(1_234_567));
        assert_eq!(cgroup_usage_usec("user_usec 5\n"), None);
        assert_eq!(cgroup_usage_usec("usage_usec x\n"), None);
        assert_eq!(cgroup_usage_usec(""), None);
    }

    #[test]
    fn readings_hand_their_measured_stretches_to_the_workload_sums() {
        let mut windows = ThreadWindows::default();
        windows.update(
            [
                newborn(1, 1, [0, 3, 3, 3], 30),
                live(2, 1, [0, 4, 0, 0], 500),
                exited(3, 9, [0, 1, 1, 1]),
            ],
            1.0,
        );
        let measured = |windows: &ThreadWindows, tgid: u32| {
            windows
                .contributions
                .iter()
                .filter(|c| c.tgid == tgid)
                .map(|c| (c.by_mode, c.measured))
                .collect::<Vec<_>>()
        };
        // A newborn's whole life is measured; an older thread's first read
        // and a thread of a process never seen are not.
        assert_eq!(
            measured(&windows, 1),
            [([0, 3, 3, 3], Some(30)), ([0, 4, 0, 0], None)]
        );
        assert_eq!(measured(&windows, 9), [([0, 1, 1, 1], None)]);
        // Read again: what is new, over the same stretch.
        windows.update(
            [live(1, 1, [0, 5, 4, 3], 60), live(2, 1, [0, 4, 0, 1], 700)],
            1.0,
        );
        assert_eq!(
            measured(&windows, 1),
            [([0, 2, 1, 0], Some(30)), ([0, 0, 0, 1], Some(200))]
        );
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
