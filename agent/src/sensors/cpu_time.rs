//! On-CPU time per process, from the kernel's `cpu-clock` samples.
//!
//! The kernel counts, per process, how often a [`CPU_SAMPLE_HZ`] sample on
//! any CPU found it running. Each second the agent reads the counts and
//! keeps the last [`WINDOW_POLLS`] deltas: samples in the window / (rate ×
//! seconds) is the process's CPU use in cores. Sampling, unlike /proc
//! deltas, costs nothing per process that does not run, and sees processes
//! too short-lived for a /proc walk.
//!
//! Only processes that ran are in the kernel map; exited ones are deleted
//! by the agent (an LRU bound keeps it safe if an exit is missed).

use std::collections::{HashMap, VecDeque};

use aya::maps::{MapData, PerCpuHashMap};

use crate::kernel::loader::CPU_SAMPLE_HZ;

/// Polls (one per second) in the sliding window.
pub const WINDOW_POLLS: usize = 5;

/// Processes followed at once; the kernel map holds 4096.
const MAX_TRACKED: usize = 4096;

#[derive(Debug, Default)]
struct Track {
    /// Samples at the last poll (summed over CPUs).
    last_total: u64,
    /// Samples gained at each of the last polls, newest last.
    deltas: VecDeque<u64>,
}

/// Pure accounting, fed by [`CpuTime::poll`] or by tests.
#[derive(Debug, Default)]
pub struct CpuAccounts {
    tracks: HashMap<u32, Track>,
    /// Seconds each poll in the window covered, newest last.
    intervals: VecDeque<f64>,
}

impl CpuAccounts {
    /// One poll: `totals` are the cumulative samples per process now,
    /// `interval_s` the seconds since the previous poll.
    pub fn record(&mut self, totals: &[(u32, u64)], interval_s: f64) {
        push_bounded(&mut self.intervals, interval_s);
        for track in self.tracks.values_mut() {
            push_bounded(&mut track.deltas, 0);
        }
        for &(tgid, total) in totals {
            if !self.tracks.contains_key(&tgid) && self.tracks.len() >= MAX_TRACKED {
                continue;
            }
            let track = self.tracks.entry(tgid).or_insert_with(|| Track {
                last_total: 0,
                deltas: std::iter::repeat_n(0, self.intervals.len()).collect(),
            });
            // A new process: everything it has is new. A counter that went
            // down is a reused pid: start over.
            let gained = total.saturating_sub(track.last_total);
            track.last_total = total;
            if let Some(newest) = track.deltas.back_mut() {
                *newest = gained;
            }
        }
        // Forget processes the kernel no longer counts (exited, or evicted):
        // the others keep their last total, or their next delta would be
        // their whole history.
        let counted: std::collections::HashSet<u32> = totals.iter().map(|&(t, _)| t).collect();
        self.tracks.retain(|tgid, _| counted.contains(tgid));
    }

    /// CPU use of `tgid` over the window, in cores (1.0 = one core busy).
    pub fn cores(&self, tgid: u32) -> Option<f64> {
        let track = self.tracks.get(&tgid)?;
        let seconds: f64 = self.intervals.iter().sum();
        if seconds <= 0.0 {
            return None;
        }
        let samples: u64 = track.deltas.iter().sum();
        Some(samples as f64 / (CPU_SAMPLE_HZ as f64 * seconds))
    }

    /// CPU use of `tgid` over the last poll alone: cores and the seconds
    /// the poll covered. What a per-process history (the work-loop
    /// detector's) records each tick.
    pub fn latest(&self, tgid: u32) -> Option<(f64, f64)> {
        let track = self.tracks.get(&tgid)?;
        let seconds = *self.intervals.back()?;
        if seconds <= 0.0 {
            return None;
        }
        let samples = *track.deltas.back()?;
        Some((samples as f64 / (CPU_SAMPLE_HZ as f64 * seconds), seconds))
    }

    /// Every process that ran in the last poll, with the core-seconds it
    /// gained there (what the ledger adds up).
    pub fn last_core_seconds(&self) -> impl Iterator<Item = (u32, f64)> + '_ {
        self.tracks.iter().filter_map(|(&tgid, track)| {
            let samples = *track.deltas.back()?;
            (samples > 0).then(|| (tgid, samples as f64 / CPU_SAMPLE_HZ as f64))
        })
    }

    /// Every process that ran in the window, with its cores.
    pub fn busy(&self) -> impl Iterator<Item = (u32, f64)> + '_ {
        self.tracks
            .keys()
            .filter_map(|&tgid| self.cores(tgid).map(|c| (tgid, c)))
            .filter(|&(_, cores)| cores > 0.0)
    }

    pub fn forget(&mut self, tgid: u32) -> bool {
        self.tracks.remove(&tgid).is_some()
    }
}

fn push_bounded<T>(queue: &mut VecDeque<T>, value: T) {
    if queue.len() >= WINDOW_POLLS {
        queue.pop_front();
    }
    queue.push_back(value);
}

/// The sensor: the kernel map and the accounts.
pub struct CpuTime {
    map: PerCpuHashMap<MapData, u32, u64>,
    pub accounts: CpuAccounts,
    last_poll: Option<std::time::Instant>,
    /// Read errors, counted and logged by the caller.
    pub read_errors: u64,
}

impl CpuTime {
    pub fn new(map: PerCpuHashMap<MapData, u32, u64>) -> Self {
        Self {
            map,
            accounts: CpuAccounts::default(),
            last_poll: None,
            read_errors: 0,
        }
    }

    pub fn poll(&mut self) {
        let now = std::time::Instant::now();
        let interval = self
            .last_poll
            .map(|t| now.duration_since(t).as_secs_f64())
            .unwrap_or(1.0);
        self.last_poll = Some(now);
        let mut totals = Vec::new();
        for item in self.map.iter() {
            match item {
                Ok((tgid, per_cpu)) => totals.push((tgid, per_cpu.iter().sum::<u64>())),
                Err(_) => self.read_errors += 1,
            }
        }
        self.accounts.record(&totals, interval);
    }

    /// A process exited: its counts leave the kernel map too. Returns the
    /// core-seconds it ran since the last poll (which no poll will see),
    /// all of them for a process that lived between two polls (a `gzip`
    /// in a loop): left in the map, they would be counted at the next poll
    /// for a pid no longer known. Only when `wanted` (the ledger is on):
    /// otherwise a process never polled costs no map lookup.
    pub fn process_exited(&mut self, tgid: u32, wanted: bool) -> f64 {
        if !wanted {
            if self.accounts.forget(tgid) {
                let _ = self.map.remove(&tgid);
            }
            return 0.0;
        }
        let last = self.accounts.tracks.get(&tgid).map_or(0, |t| t.last_total);
        let unpolled = match self.map.get(&tgid, 0) {
            Ok(per_cpu) => {
                let total: u64 = per_cpu.iter().sum();
                let _ = self.map.remove(&tgid);
                total.saturating_sub(last) as f64 / CPU_SAMPLE_HZ as f64
            }
            Err(_) => 0.0,
        };
        self.accounts.forget(tgid);
        unpolled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_over_the_window_are_cores() {
        let hz = CPU_SAMPLE_HZ;
        let mut accounts = CpuAccounts::default();
        // Process 10 keeps one core busy; 20 uses a quarter of one.
        for second in 1..=WINDOW_POLLS as u64 + 3 {
            accounts.record(&[(10, hz * second), (20, hz / 4 * second)], 1.0);
        }
        let busy = accounts.cores(10).unwrap();
        assert!((busy - 1.0).abs() < 0.01, "{busy}");
        let quarter = accounts.cores(20).unwrap();
        assert!((quarter - 0.25).abs() < 0.02, "{quarter}");
        assert_eq!(accounts.cores(30), None);
        let (latest, seconds) = accounts.latest(20).unwrap();
        assert!((latest - 0.25).abs() < 0.02 && seconds == 1.0, "{latest}");
        let mut last: Vec<(u32, f64)> = accounts.last_core_seconds().collect();
        last.sort_by_key(|(tgid, _)| *tgid);
        assert_eq!(last, vec![(10, 1.0), (20, (hz / 4) as f64 / hz as f64)]);
    }

    #[test]
    fn a_process_that_stops_running_decays_to_zero_and_exits_from_the_map() {
        let hz = CPU_SAMPLE_HZ;
        let mut accounts = CpuAccounts::default();
        accounts.record(&[(10, hz)], 1.0);
        accounts.record(&[(10, 2 * hz)], 1.0);
        // Then it sleeps: the kernel count stays.
        accounts.record(&[(10, 2 * hz)], 1.0);
        let partly = accounts.cores(10).unwrap();
        assert!((partly - 2.0 / 3.0).abs() < 0.01, "{partly}");
        for _ in 0..WINDOW_POLLS + 2 {
            accounts.record(&[(10, 2 * hz)], 1.0);
        }
        assert_eq!(accounts.cores(10), Some(0.0));
        assert_eq!(accounts.busy().count(), 0);
        // Deleted from the kernel map (exited): forgotten.
        accounts.record(&[], 1.0);
        assert_eq!(accounts.cores(10), None);
    }

    #[test]
    fn a_reused_pid_starts_over() {
        let hz = CPU_SAMPLE_HZ;
        let mut accounts = CpuAccounts::default();
        accounts.record(&[(10, 50 * hz)], 1.0);
        assert!(accounts.forget(10));
        accounts.record(&[], 1.0);
        accounts.record(&[(10, hz / 2)], 1.0);
        let cores = accounts.cores(10).unwrap();
        assert!(cores < 0.3, "{cores}");
    }
}
