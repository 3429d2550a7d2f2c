//! The work-loop detector's live half: which flows are watched, the CPU
//! history of their owners, and the judgement on the tick.
//!
//! A flow is watched when its owner keeps a core busy
//! ([`WATCH_AT_CORES`] over the CPU-time window), it is TCP whose content
//! no classifier recognised (opaque, or plain text of an unknown
//! protocol), it has lived [`CADENCE_AFTER_NS`], and the process is the
//! client end. Its kernel sample budget then grows in steps of
//! [`SAMPLE_STEP`] as it is used, up to [`MAX_SAMPLES`] per direction: the
//! existing re-arm path, no new kernel hook. At most [`MAX_WATCHED`] flows
//! are watched at once; a candidate turned away and a flow that reached its
//! cap are counted. Each watched owner's CPU use is recorded once a tick
//! in a ring of [`CPU_HISTORY`] polls.
//!
//! Every [`JUDGE_EVERY_TICKS`] ticks each watched flow is judged
//! ([`assay_classify::work_loop::judge`]); evidence is reported when its
//! strength grew by [`REPORT_STEP`] or, to keep it fresh, every
//! [`REFRESH_TICKS`]. A flow whose owner stopped being busy for
//! [`IDLE_TICKS`], or that reached its cap, is let go.

use std::collections::{HashMap, HashSet, VecDeque};

use assay_classify::{
    flow::{CADENCE_AFTER_NS, Role},
    work_loop::{self, CpuSample},
};

use super::state::Agent;
use crate::{evidence::network::FlowFacts, time::monotonic_ns};

/// Cores (over the CPU-time window) from which a process's unrecognised
/// flows are watched: below [`work_loop::MIN_CORES`], so that watching
/// starts before the judgement can hold.
const WATCH_AT_CORES: f64 = 0.7;
/// Flows watched at once.
const MAX_WATCHED: usize = 32;
/// Samples per direction a watched flow may take, at most: ~17 min of
/// rounds every 2 s; the segment index the kernel reports is a u8, the
/// limit a u16.
const MAX_SAMPLES: u32 = 1024;
/// Samples added per re-arm.
const SAMPLE_STEP: u32 = 64;
/// CPU polls kept per watched owner: 20 minutes of ticks.
const CPU_HISTORY: usize = 1200;
/// Ticks between candidate scans and between judgements.
const WATCH_EVERY_TICKS: u64 = 5;
const JUDGE_EVERY_TICKS: u64 = 5;
/// Strength gained before evidence is reported again.
const REPORT_STEP: f32 = 0.05;
/// Ticks after which unchanged evidence is reported again (refreshed).
const REFRESH_TICKS: u64 = 60;
/// Ticks an owner may stay below [`work_loop::BUSY_CORES`] before its flow
/// is let go.
const IDLE_TICKS: u32 = 120;

#[derive(Debug)]
struct Watched {
    tgid: u32,
    /// Strength last reported (0 before any report).
    reported: f32,
    reported_tick: u64,
    idle_ticks: u32,
    capped: bool,
}

/// What the detector keeps: bounded by [`MAX_WATCHED`] flows and their
/// owners.
#[derive(Debug, Default)]
pub(super) struct WorkLoopWatch {
    flows: HashMap<u64, Watched>,
    cpu: HashMap<u32, VecDeque<CpuSample>>,
    /// Candidates turned away because [`MAX_WATCHED`] flows were watched.
    pub watch_full: u64,
    /// Watched flows that reached [`MAX_SAMPLES`].
    pub capped: u64,
    /// Flows ever watched.
    pub watched: u64,
}

impl WorkLoopWatch {
    /// A process exited: its CPU history goes (its flows follow when the
    /// flow table forgets them).
    pub(super) fn forget(&mut self, tgid: u32) {
        self.cpu.remove(&tgid);
        self.flows.retain(|_, w| w.tgid != tgid);
    }

    fn record_cpu(&mut self, tgid: u32, sample: CpuSample) {
        let ring = self.cpu.entry(tgid).or_default();
        if ring.len() >= CPU_HISTORY {
            ring.pop_front();
        }
        ring.push_back(sample);
    }

    fn release(&mut self, cookie: u64) {
        if let Some(w) = self.flows.remove(&cookie)
            && !self.flows.values().any(|o| o.tgid == w.tgid)
        {
            self.cpu.remove(&w.tgid);
        }
    }
}

impl Agent {
    /// Once a tick, after the CPU-time poll.
    pub(super) fn work_loop_tick(&mut self) {
        let Some(cpu_time) = self.cpu_time.as_ref() else {
            return;
        };
        let now = monotonic_ns();
        let accounts = &cpu_time.accounts;
        // The owners' CPU over the last poll.
        let owners: HashSet<u32> = self.work_loop.flows.values().map(|w| w.tgid).collect();
        for tgid in owners {
            let (cores, seconds) = accounts.latest(tgid).unwrap_or((0.0, 1.0));
            self.work_loop.record_cpu(
                tgid,
                CpuSample {
                    at_ns: now,
                    seconds: seconds as f32,
                    cores: cores as f32,
                },
            );
            for w in self.work_loop.flows.values_mut().filter(|w| w.tgid == tgid) {
                w.idle_ticks = if cores >= work_loop::BUSY_CORES {
                    0
                } else {
                    w.idle_ticks + 1
                };
            }
        }
        if self.ticks.is_multiple_of(WATCH_EVERY_TICKS) {
            self.watch_candidates(now);
        }
        self.rearm_watched();
        if self.ticks.is_multiple_of(JUDGE_EVERY_TICKS) {
            self.judge_watched();
        }
    }

    /// Unrecognised client flows of busy processes, old enough: watched
    /// while there is room.
    fn watch_candidates(&mut self, now: u64) {
        let Some(cpu_time) = self.cpu_time.as_ref() else {
            return;
        };
        let own = std::process::id();
        let busiest = cpu_time
            .accounts
            .busy()
            .filter(|&(tgid, _)| tgid != own)
            .max_by(|a, b| a.1.total_cmp(&b.1));
        let busy: HashSet<u32> = cpu_time
            .accounts
            .busy()
            .filter(|&(tgid, cores)| cores >= WATCH_AT_CORES && tgid != own)
            .map(|(tgid, _)| tgid)
            .collect();
        tracing::debug!(busy = busy.len(), ?busiest, "work-loop candidates");
        if busy.is_empty() {
            return;
        }
        let candidates: Vec<(u64, u32)> = self
            .tables
            .flows
            .iter()
            .filter_map(|(&cookie, flow)| {
                let owner = flow.owner.as_ref()?;
                let old_enough = flow
                    .first_payload_ns
                    .is_some_and(|t| now.saturating_sub(t) >= CADENCE_AFTER_NS);
                (busy.contains(&owner.tgid)
                    && owner.role == Role::Client
                    && old_enough
                    && flow.content_unrecognised()
                    && flow.work_watchable())
                .then_some((cookie, owner.tgid))
            })
            .collect();
        for (cookie, tgid) in candidates {
            if self.work_loop.flows.len() >= MAX_WATCHED {
                self.work_loop.watch_full += 1;
                continue;
            }
            if !self.tables.flows.watch_work(cookie) {
                continue;
            }
            self.work_loop.watched += 1;
            tracing::debug!(cookie, tgid, "work-loop watch");
            self.work_loop.flows.insert(
                cookie,
                Watched {
                    tgid,
                    reported: 0.0,
                    reported_tick: 0,
                    idle_ticks: 0,
                    capped: false,
                },
            );
        }
    }

    /// Watched flows near the end of their budget get another step, up to
    /// the cap; flows gone from the table, idle, capped or too thick to be
    /// a work loop are let go, for good.
    fn rearm_watched(&mut self) {
        let mut release = Vec::new();
        let mut raise = Vec::new();
        let cookies: Vec<u64> = self.work_loop.flows.keys().copied().collect();
        for cookie in cookies {
            let thick = self
                .tables
                .flows
                .work_timeline(cookie)
                .is_some_and(work_loop::too_thick);
            let (Some(flow), Some(w)) = (
                self.tables.flows.get(cookie),
                self.work_loop.flows.get_mut(&cookie),
            ) else {
                release.push(cookie);
                continue;
            };
            if w.idle_ticks >= IDLE_TICKS || thick {
                release.push(cookie);
                continue;
            }
            let used = flow.segments[0].max(flow.segments[1]);
            if used + SAMPLE_STEP / 2 < flow.sample_limit {
                continue;
            }
            if flow.sample_limit >= MAX_SAMPLES {
                if !w.capped {
                    w.capped = true;
                    self.work_loop.capped += 1;
                }
                // Its last samples are in: judged once more, then let go.
                if used >= flow.sample_limit {
                    release.push(cookie);
                }
                continue;
            }
            raise.push((cookie, (flow.sample_limit + SAMPLE_STEP).min(MAX_SAMPLES)));
        }
        for (cookie, limit) in raise {
            if let Some(limit) = self.tables.flows.raise_limit(cookie, limit) {
                self.raise_sample_limit(cookie, limit);
            }
        }
        if release
            .iter()
            .any(|c| self.work_loop.flows.get(c).is_some_and(|w| w.capped))
        {
            let others = self.owners_flows();
            for &cookie in &release {
                if self.work_loop.flows.get(&cookie).is_some_and(|w| w.capped) {
                    self.judge_one(cookie, &others);
                }
            }
        }
        for cookie in release {
            self.tables.flows.unwatch_work(cookie);
            self.work_loop.release(cookie);
        }
    }

    /// The watched owners' flows, each with when it was last seen: one
    /// pass over the flow table.
    fn owners_flows(&self) -> HashMap<u32, Vec<(u64, u64)>> {
        let owners: HashSet<u32> = self.work_loop.flows.values().map(|w| w.tgid).collect();
        let mut flows: HashMap<u32, Vec<(u64, u64)>> = HashMap::new();
        for (&cookie, flow) in self.tables.flows.iter() {
            if let Some(owner) = flow.owner.as_ref()
                && owners.contains(&owner.tgid)
            {
                flows
                    .entry(owner.tgid)
                    .or_default()
                    .push((cookie, flow.last_seen_ns));
            }
        }
        flows
    }

    fn judge_watched(&mut self) {
        let others = self.owners_flows();
        let cookies: Vec<u64> = self.work_loop.flows.keys().copied().collect();
        for cookie in cookies {
            self.judge_one(cookie, &others);
        }
    }

    fn judge_one(&mut self, cookie: u64, others: &HashMap<u32, Vec<(u64, u64)>>) {
        let Some(w) = self.work_loop.flows.get(&cookie) else {
            return;
        };
        let tgid = w.tgid;
        let Some(cpu) = self.work_loop.cpu.get_mut(&tgid) else {
            return;
        };
        let cpu = cpu.make_contiguous();
        let Some(beats) = self.tables.flows.work_timeline(cookie) else {
            return;
        };
        let Some(start) = beats.first().map(|b| b.at_ns) else {
            return;
        };
        let other_flows = others.get(&tgid).map_or(0, |flows| {
            flows
                .iter()
                .filter(|&&(key, last_seen)| key != cookie && last_seen >= start)
                .count()
        });
        let judged = work_loop::judge(beats, cpu, other_flows);
        tracing::debug!(
            cookie,
            tgid,
            beats = beats.len(),
            span_s = beats.last().map_or(0, |b| b.at_ns - start) / 1_000_000_000,
            cpu_polls = cpu.len(),
            cores = cpu.last().map_or(0.0, |c| c.cores),
            other_flows,
            found = judged.is_some(),
            "work-loop judgement"
        );
        let Some(found) = judged else {
            return;
        };
        let strength = found.strength();
        let Some(w) = self.work_loop.flows.get_mut(&cookie) else {
            return;
        };
        let first = w.reported == 0.0;
        if !first
            && strength < w.reported + REPORT_STEP
            && self.ticks.saturating_sub(w.reported_tick) < REFRESH_TICKS
        {
            return;
        }
        w.reported = w.reported.max(strength);
        w.reported_tick = self.ticks;
        let Some(flow) = self.tables.flows.get(cookie) else {
            return;
        };
        let Some(owner) = flow.owner.clone() else {
            return;
        };
        let facts = FlowFacts::of(&owner, flow);
        let first_payload_ns = flow.first_payload_ns;
        if let Some(draft) = crate::evidence::work_loop::evidence(&found, &facts) {
            self.report_flow_draft(tgid, draft, first_payload_ns, first);
        }
    }
}
