//! The RandomX marker over a *workload* (a cgroup), for miners that rotate
//! whole processes: a supervisor that forks a hashing worker, lets it live
//! a second or so and replaces it is never judged per process, since no
//! worker lives through enough of the sensor's reads (every 2 s) and each
//! process's sums go with it at its exit. Here every worker's switches are
//! summed into its cgroup's decaying sums (the same half-life as a
//! process's), and the sums outlive the workers.
//!
//! Summing processes must not let a crowd of benign ones add up to the
//! marker: a build or test run starts hundreds of short processes, some of
//! which change the rounding mode. So the workload is held to the same
//! structure the per-process judgement requires, and to more:
//!
//! - **Fraction with a real denominator.** Only *measured* stretches count:
//!   switches in all and non-default ones over the same stretch of a
//!   thread (read alive twice, or first read when it began after the
//!   agent). A process never read alive, or the last stretch of one, is
//!   known by its non-default switches only; per process those lean high
//!   (see [`super::fpu`]), summed over a crowd they would make any share,
//!   so they are left out here.
//! - **Rate and busy-ness.** The same [`randomx::assess`]: enough measured
//!   switches in the decaying window, the marker's share, and the cgroup's
//!   CPU (its `cpu.stat`, which keeps what exited processes used) at
//!   [`randomx::BUSY_CORES`]; an idle workload is never reported here.
//! - **The mode mix within processes, not only across them.** CFROUND
//!   draws all three non-default modes in every process that hashes; a
//!   workload of single-mode jobs (one holds upward rounding, another
//!   downward, a third truncates) shows all three modes only when summed.
//!   At least [`MIN_MIXED_SHARE`] of the workload's non-default switches
//!   must come from processes that showed all three modes themselves.
//! - **Duration.** The marker must hold at [`HELD_POLLS`] reads in a row
//!   (a half-life): a burst of a test suite is not a miner.
//! - **Churn.** At least two processes contributed (one alone is judged per
//!   process), and those that exited are counted.
//!
//! A workload is a cgroup v2 id, from the exec and fork events (the root
//! cgroup, shared by unrelated processes, is none); its CPU is read from
//! the cgroup2 mount, so where none is mounted nothing is judged here.
//!
//! Bounded: at most [`MAX_MEMBERS`] processes are followed; when full,
//! the exited ones that weigh least make room, and live ones beyond are
//! counted and left out. An exited process is dropped once its share of
//! the sums decayed away, a workload once it has no process left.

use std::collections::HashMap;

use assay_classify::randomx::{self, FpuWindow, RandomxMarker};

/// Reads in a row at which a workload must show the marker.
pub const HELD_POLLS: u32 = 5;
/// Share of a workload's non-default switches that must come from
/// processes that showed all three non-default modes themselves.
pub const MIN_MIXED_SHARE: f64 = 0.5;
/// Processes followed at once.
pub const MAX_MEMBERS: usize = 4096;
/// A process's measured non-default switches smaller than this, once it
/// exited, are forgotten.
const NEGLIGIBLE: f64 = 0.5;

/// One process of a workload.
#[derive(Debug, Clone, Copy)]
struct Member {
    workload: u64,
    /// Its measured non-default switches, decaying as the workload's sums.
    nondefault: f64,
    /// Every non-default switch seen of it, by mode (down, up, toward
    /// zero), measured or not: whether it mixes the modes itself.
    life_modes: [u64; 3],
    exited: bool,
}

impl Member {
    fn mixed(&self) -> bool {
        self.life_modes.iter().all(|&n| n > 0)
    }
}

/// A workload's decaying sums over its measured stretches.
#[derive(Debug, Clone, Copy, Default)]
struct Group {
    switches: f64,
    by_mode: [f64; 4],
    /// Processes of it that contributed and exited.
    exited: u64,
    /// Reads in a row at which it showed the marker.
    held: u32,
}

/// What one thread's reading adds to its process's workload.
#[derive(Debug, Clone, Copy)]
pub struct Contribution {
    pub tgid: u32,
    /// Its new switches by mode (index 0 unused).
    pub by_mode: [u64; 4],
    /// Its switches in all over the same stretch, when measured.
    pub measured: Option<u64>,
}

/// A workload whose measured sums show the marker, with its CPU still to
/// fill (see [`Workloads::judge`]).
#[derive(Debug, Clone)]
pub struct WorkloadCandidate {
    pub workload: u64,
    pub window: FpuWindow,
    /// Its live processes that contributed, lowest first.
    pub live: Vec<u32>,
    /// Processes in its window (live and exited).
    pub processes: usize,
    pub exited: u64,
}

/// A workload that shows the RandomX marker across its processes.
#[derive(Debug, Clone)]
pub struct WorkloadFinding {
    pub candidate: WorkloadCandidate,
    pub marker: RandomxMarker,
    pub held_polls: u32,
}

/// Per-workload sums: pure, fed one poll's contributions at a time.
#[derive(Debug, Default)]
pub struct Workloads {
    members: HashMap<u32, Member>,
    groups: HashMap<u64, Group>,
    /// Processes left out because [`MAX_MEMBERS`] were followed.
    pub dropped: u64,
}

impl Workloads {
    /// One poll: the old sums keep `decay`; `workload_of` says the cgroup
    /// of a process not yet followed (`None`: not known, or one never
    /// summed, such as the root).
    pub fn update(
        &mut self,
        contributions: &[Contribution],
        decay: f64,
        workload_of: impl Fn(u32) -> Option<u64>,
    ) {
        for group in self.groups.values_mut() {
            group.switches *= decay;
            for n in &mut group.by_mode {
                *n *= decay;
            }
        }
        for member in self.members.values_mut() {
            member.nondefault *= decay;
        }
        for c in contributions {
            let known = self.members.get(&c.tgid).map(|m| m.exited);
            // A measured stretch of a pid whose process exited: the pid
            // was reused, a new process. An exited one's unmeasured
            // readings are its threads' last words, still its own.
            if known.is_none() || (known == Some(true) && c.measured.is_some()) {
                if known.is_none() && self.members.len() >= MAX_MEMBERS && !self.make_room() {
                    self.dropped += 1;
                    continue;
                }
                let Some(workload) = workload_of(c.tgid) else {
                    self.members.remove(&c.tgid);
                    continue;
                };
                self.groups.entry(workload).or_default();
                self.members.insert(
                    c.tgid,
                    Member {
                        workload,
                        nondefault: 0.0,
                        life_modes: [0; 3],
                        exited: false,
                    },
                );
            }
            let Some(member) = self.members.get_mut(&c.tgid) else {
                continue;
            };
            for (life, n) in member.life_modes.iter_mut().zip(&c.by_mode[1..]) {
                *life += n;
            }
            let Some(all) = c.measured else {
                continue;
            };
            let nondefault = c.by_mode[1] + c.by_mode[2] + c.by_mode[3];
            member.nondefault += nondefault as f64;
            let group = self.groups.entry(member.workload).or_default();
            group.switches += all.max(nondefault) as f64;
            for mode in 1..4 {
                group.by_mode[mode] += c.by_mode[mode] as f64;
            }
        }
        self.members
            .retain(|_, m| !m.exited || m.nondefault >= NEGLIGIBLE);
        let mut followed: HashMap<u64, bool> = HashMap::new();
        for m in self.members.values() {
            *followed.entry(m.workload).or_default() |= !m.exited;
        }
        self.groups.retain(|workload, g| {
            followed.get(workload).copied().unwrap_or(false) || g.switches >= NEGLIGIBLE
        });
        let groups = &self.groups;
        self.members.retain(|_, m| groups.contains_key(&m.workload));
    }

    /// Full: the exited processes that weigh least go, down to half the
    /// room (their part of the sums stays). False when none had exited.
    fn make_room(&mut self) -> bool {
        let mut exited: Vec<(f64, u32)> = self
            .members
            .iter()
            .filter(|(_, m)| m.exited)
            .map(|(&tgid, m)| (m.nondefault, tgid))
            .collect();
        if exited.is_empty() {
            return false;
        }
        exited.sort_by(|a, b| a.0.total_cmp(&b.0));
        let excess = self.members.len().saturating_sub(MAX_MEMBERS / 2).max(1);
        for (_, tgid) in exited.into_iter().take(excess) {
            self.members.remove(&tgid);
        }
        true
    }

    /// A process exited: its share of its workload's sums stays, and it is
    /// counted as churn.
    pub fn exited(&mut self, tgid: u32) {
        if let Some(m) = self.members.get_mut(&tgid)
            && !m.exited
        {
            m.exited = true;
            if let Some(g) = self.groups.get_mut(&m.workload) {
                g.exited += 1;
            }
        }
    }

    /// The workloads whose measured sums show the marker's share and the
    /// mode mix, within their processes too, with two processes or more.
    /// Every other workload's run of reads with the marker is broken.
    pub fn candidates(&mut self) -> Vec<WorkloadCandidate> {
        let mut per_group: HashMap<u64, (f64, f64, usize, Vec<u32>)> = HashMap::new();
        for (&tgid, m) in &self.members {
            let (all, mixed, processes, live) = per_group.entry(m.workload).or_default();
            *all += m.nondefault;
            if m.mixed() {
                *mixed += m.nondefault;
            }
            if m.nondefault >= NEGLIGIBLE {
                *processes += 1;
            }
            if !m.exited {
                live.push(tgid);
            }
        }
        let mut candidates = Vec::new();
        for (&workload, group) in &mut self.groups {
            let window = group.window();
            let Some((all, mixed, processes, mut live)) = per_group.remove(&workload) else {
                group.held = 0;
                continue;
            };
            let shows = processes >= 2
                && all > 0.0
                && mixed >= all * MIN_MIXED_SHARE
                && randomx::assess(&window).is_some();
            if !shows {
                group.held = 0;
                continue;
            }
            live.sort_unstable();
            candidates.push(WorkloadCandidate {
                workload,
                window,
                live,
                processes,
                exited: group.exited,
            });
        }
        candidates.sort_by_key(|c| c.workload);
        candidates
    }

    /// A candidate with its CPU filled (`None`: not known): counts a read
    /// with the marker when it is busy, and says whether it has held long
    /// enough.
    pub fn judge(
        &mut self,
        candidate: WorkloadCandidate,
        cpu_cores: Option<f64>,
    ) -> Option<WorkloadFinding> {
        let group = self.groups.get_mut(&candidate.workload)?;
        let mut candidate = candidate;
        candidate.window.cpu_cores = cpu_cores.unwrap_or(0.0);
        let marker = randomx::assess(&candidate.window).filter(|m| m.busy);
        let Some(marker) = marker else {
            group.held = 0;
            return None;
        };
        group.held += 1;
        (group.held >= HELD_POLLS).then_some(WorkloadFinding {
            candidate,
            marker,
            held_polls: group.held,
        })
    }

    /// Processes followed now.
    pub fn followed(&self) -> usize {
        self.members.len()
    }

    /// Whether a workload's sums are followed.
    pub fn follows(&self, workload: u64) -> bool {
        self.groups.contains_key(&workload)
    }

    /// Workloads followed now.
    pub fn workloads(&self) -> usize {
        self.groups.len()
    }
}

impl Group {
    fn window(&self) -> FpuWindow {
        let nondefault = self.by_mode[1] + self.by_mode[2] + self.by_mode[3];
        let mut by_mode = self.by_mode.map(|n| n.round() as u64);
        by_mode[0] = (self.switches - nondefault).max(0.0).round() as u64;
        FpuWindow {
            switches: self.switches.max(nondefault).round() as u64,
            by_mode,
            cpu_cores: 0.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WORKLOAD: u64 = 7;
    /// Half-life 10 s, read every 2 s.
    const POLL_DECAY: f64 = 0.870_550_563_296_124;

    fn measured(tgid: u32, by_mode: [u64; 4], all: u64) -> Contribution {
        Contribution {
            tgid,
            by_mode,
            measured: Some(all),
        }
    }

    fn unmeasured(tgid: u32, by_mode: [u64; 4]) -> Contribution {
        Contribution {
            tgid,
            by_mode,
            measured: None,
        }
    }

    /// One read: the contributions, then the judgement of every candidate
    /// at `cores` (the cgroup's CPU); the findings.
    fn read(
        workloads: &mut Workloads,
        contributions: &[Contribution],
        cores: Option<f64>,
    ) -> Vec<WorkloadFinding> {
        workloads.update(contributions, POLL_DECAY, |_| Some(WORKLOAD));
        workloads
            .candidates()
            .into_iter()
            .filter_map(|c| workloads.judge(c, cores))
            .collect()
    }

    /// A worker process's hashing thread: a third of its switches save one
    /// of the three non-default modes, drawn evenly (a little unevenly,
    /// as a draw is).
    fn hashing(poll: u32) -> [u64; 4] {
        let n = 5 + u64::from(poll % 3);
        [0, n, n + 1, n - 1]
    }

    #[test]
    fn processes_rotated_faster_than_the_sensor_reads_are_judged_over_their_workload() {
        let mut workloads = Workloads::default();
        let mut found_at = None;
        for poll in 0..12u32 {
            // A supervisor forks a worker that lives 1–1.5 s: it is read
            // alive once, newborn (its whole life so far measured: 45–60
            // switches), and exits before the next read, where only its
            // thread's kernel entry is left (unmeasured).
            let worker = 1_000 + poll;
            let mut contributions = vec![measured(
                worker,
                hashing(poll),
                45 + 5 * u64::from(poll % 4),
            )];
            if poll > 0 {
                contributions.push(unmeasured(worker - 1, [0, 3, 2, 4]));
            }
            let findings = read(&mut workloads, &contributions, Some(0.9));
            workloads.exited(worker);
            if let Some(f) = findings.first()
                && found_at.is_none()
            {
                found_at = Some(poll);
                assert!(f.marker.decisive && f.marker.busy, "{f:?}");
                assert!(
                    f.candidate.processes >= 2 && f.candidate.exited >= 2,
                    "{f:?}"
                );
                assert_eq!(f.candidate.workload, WORKLOAD);
                assert!(f.held_polls >= HELD_POLLS);
            }
        }
        // Two workers make the first candidate; it must hold a half-life.
        assert_eq!(found_at, Some(HELD_POLLS));
        // Idle, or of unknown CPU, it is never reported, and the run of
        // reads with the marker starts over.
        for cores in [Some(0.1), None] {
            let mut idle = Workloads::default();
            for poll in 0..12u32 {
                let worker = 1_000 + poll;
                let c = [measured(worker, hashing(poll), 50)];
                assert!(read(&mut idle, &c, cores).is_empty());
                idle.exited(worker);
            }
        }
    }

    /// A benign job mix: its name, and each read's contributions.
    type Jobs = (&'static str, fn(u32) -> Vec<Contribution>);

    #[test]
    fn benign_churn_never_sums_into_the_marker() {
        let cases: [Jobs; 5] = [
            // Jobs that each hold one mode for good (CGAL's upward rounding
            // in one, downward in the next, truncation in a third), busy,
            // rotated: every mode shows only when they are summed.
            ("single-mode jobs", |poll| {
                let mut by_mode = [0; 4];
                by_mode[1 + (poll % 3) as usize] = 40;
                vec![measured(2_000 + poll, by_mode, 60)]
            }),
            // Interval arithmetic (down and up held) beside jobs that
            // truncate toward zero for a moment.
            ("interval and truncation", |poll| {
                vec![
                    measured(3_000 + 2 * poll, [0, 30, 30, 0], 100),
                    measured(3_001 + 2 * poll, [0, 0, 0, 1], 400),
                ]
            }),
            // A test runner's jobs that try every mode for a moment among
            // thousands of switches with the default one.
            ("every mode for a moment", |poll| {
                vec![measured(4_000 + poll, [0, 1, 1, 1], 500)]
            }),
            // Short jobs never read alive, each with a few non-default
            // switches in every mode: known by those only, no denominator.
            ("never read alive", |poll| {
                (0..20)
                    .map(|j| unmeasured(5_000 + 20 * poll + j, [0, 2, 3, 2]))
                    .collect()
            }),
            // One process alone: judged per process, not here.
            ("one process", |_| {
                vec![measured(6_000, [0, 20, 20, 20], 200)]
            }),
        ];
        for (name, jobs) in cases {
            let mut workloads = Workloads::default();
            for poll in 0..30u32 {
                let contributions = jobs(poll);
                assert!(
                    read(&mut workloads, &contributions, Some(2.0)).is_empty(),
                    "{name}, read {poll}"
                );
                for c in &contributions {
                    if c.tgid != 6_000 {
                        workloads.exited(c.tgid);
                    }
                }
            }
        }
        // A burst of hashing-like jobs shorter than a half-life (a test of
        // the rounding modes, say) is not reported either.
        let mut workloads = Workloads::default();
        for poll in 0..HELD_POLLS {
            let c = [measured(7_000 + poll, hashing(poll), 50)];
            assert!(read(&mut workloads, &c, Some(1.0)).is_empty());
            workloads.exited(7_000 + poll);
        }
    }

    #[test]
    fn memory_stays_bounded_under_pid_churn() {
        let mut workloads = Workloads::default();
        // 200,000 short processes over 50 reads, in 1,000 cgroups, each
        // read alive once and gone.
        for poll in 0..50u32 {
            let contributions: Vec<Contribution> = (0..4_000u32)
                .map(|j| measured(poll * 4_000 + j, [0, 1, 1, 1], 30))
                .collect();
            workloads.update(&contributions, POLL_DECAY, |tgid| {
                Some(2 + u64::from(tgid % 1_000))
            });
            let _ = workloads.candidates();
            for c in &contributions {
                workloads.exited(c.tgid);
            }
            assert!(workloads.followed() <= MAX_MEMBERS);
            assert!(workloads.workloads() <= MAX_MEMBERS);
        }
        // 5,000 live at once: the excess is counted, not followed.
        let live: Vec<Contribution> = (0..5_000u32)
            .map(|j| measured(900_000 + j, [0, 1, 1, 1], 30))
            .collect();
        let dropped = workloads.dropped;
        workloads.update(&live, POLL_DECAY, |_| Some(3));
        assert_eq!(workloads.followed(), MAX_MEMBERS);
        assert!(workloads.dropped > dropped);
        // Once they exit and their sums decay, nothing is left.
        for c in &live {
            workloads.exited(c.tgid);
        }
        for _ in 0..120 {
            workloads.update(&[], POLL_DECAY, |_| Some(3));
        }
        assert_eq!((workloads.followed(), workloads.workloads()), (0, 0));
        // A process of unknown (or the root) cgroup is not followed.
        workloads.update(&[measured(1, [0, 9, 9, 9], 30)], 1.0, |_| None);
        assert_eq!(workloads.followed(), 0);
    }

    #[test]
    fn a_reused_pid_is_a_new_process_and_an_exited_ones_last_words_are_its_own() {
        let mut workloads = Workloads::default();
        workloads.update(&[measured(9, [0, 5, 0, 0], 20)], 1.0, |_| Some(WORKLOAD));
        workloads.exited(9);
        // Its thread's kernel entry, read after its exit: still process 9,
        // which now shows all three modes.
        workloads.update(&[unmeasured(9, [0, 0, 4, 4])], 1.0, |_| Some(99));
        assert!(workloads.members[&9].mixed() && workloads.members[&9].exited);
        assert_eq!(workloads.members[&9].workload, WORKLOAD);
        // A measured stretch: pid 9 is someone else's now.
        workloads.update(&[measured(9, [0, 1, 0, 0], 20)], 1.0, |_| Some(99));
        let m = workloads.members[&9];
        assert!(!m.exited && !m.mixed() && m.workload == 99);
        assert_eq!(workloads.groups[&WORKLOAD].exited, 1);
    }
}
