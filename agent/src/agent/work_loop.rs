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
//! [`IDLE_TICKS`], or whose timeline got too thick for a work loop, is let
//! go.
//!
//! At the cap (~17 min of a miner's rounds) the flow is not let go: a
//! miner lives for days, and evidence not seen again fades (the
//! correlator's half-life) and is forgotten. It is sampled at a slower
//! duty instead: every [`WINDOW_EVERY_TICKS`] a *window* opens, its
//! timeline starts afresh, and it gets up to [`WINDOW_SAMPLES`] samples per
//! direction for at most [`WINDOW_TICKS`] (the kernel's limit cannot be
//! lowered, so the last step's samples may run on after it closes: about
//! a quarter of a miner's segments are sampled).
//! Each window is judged on its own, so no judgement spans a stretch where
//! nothing was sampled, and the timeline stays bounded; a window that
//! shows the loop again refreshes the evidence at the strength the loop
//! earned over its whole life. Between windows it is not judged (its
//! timeline is old, and the quieter direction may still be sampled alone).
//! The kernel's limit is a u16: once a window could not fit under it, the
//! flow is let go (counted).

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
/// Samples per direction a watched flow may take before it is sampled in
/// windows: ~17 min of rounds every 2 s; the segment index the kernel
/// reports is a u8, the limit a u16.
const MAX_SAMPLES: u32 = 1024;
/// Samples added per re-arm.
const SAMPLE_STEP: u32 = 64;
/// Past the cap: ticks from one window's opening to the next's…
const WINDOW_EVERY_TICKS: u64 = 900;
/// … how long a window lasts at most (above [`work_loop::MIN_SPAN_S`],
/// with room for its rounds) …
const WINDOW_TICKS: u64 = 180;
/// … and the samples per direction it takes at most (its timeline stays
/// within the table's).
const WINDOW_SAMPLES: u32 = 512;
/// The kernel's sample limit is a u16.
const KERNEL_MAX_LIMIT: u32 = u16::MAX as u32;
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

/// Where a watched flow's sampling stands.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// Every segment, up to [`MAX_SAMPLES`].
    Full,
    /// Capped, between windows: the next opens at `opens_at` (a tick).
    Resting { opens_at: u64 },
    /// Capped, in a window opened at `opened_at`, whose limit may rise to
    /// `limit`.
    Window { opened_at: u64, limit: u32 },
}

#[derive(Debug)]
struct Watched {
    tgid: u32,
    /// Strength last reported (0 before any report).
    reported: f32,
    reported_tick: u64,
    idle_ticks: u32,
    phase: Phase,
    /// Windows opened since the cap.
    windows: u32,
}

impl Watched {
    /// Judged now: its timeline is being sampled.
    fn judged(&self) -> bool {
        !matches!(self.phase, Phase::Resting { .. })
    }
}

/// A watched flow's sampling as the flow table has it.
#[derive(Debug, Clone, Copy)]
struct Budget {
    /// Samples taken, in the busier direction.
    used: u32,
    /// The kernel's limit now.
    limit: u32,
    /// Its timeline holds an exchange too thick for a work loop.
    thick: bool,
}

/// What a watched flow needs now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Wait,
    /// Raise the kernel's limit to this.
    Raise(u32),
    /// Capped: judge what its full timeline shows, once; it rests.
    Capped,
    /// A window opens: its timeline starts afresh, the limit rises to this.
    Open(u32),
    /// Let go, for good.
    Release,
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
    /// Windows opened on capped flows.
    pub windows: u64,
    /// Capped flows let go because a window no longer fit the kernel's
    /// limit.
    pub exhausted: u64,
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

    /// Whether another flow may be watched; a candidate turned away is
    /// counted.
    fn has_room(&mut self) -> bool {
        let room = self.flows.len() < MAX_WATCHED;
        if !room {
            self.watch_full += 1;
        }
        room
    }

    fn watch(&mut self, cookie: u64, tgid: u32) {
        self.watched += 1;
        self.flows.insert(
            cookie,
            Watched {
                tgid,
                reported: 0.0,
                reported_tick: 0,
                idle_ticks: 0,
                phase: Phase::Full,
                windows: 0,
            },
        );
    }

    /// One tick's CPU of `tgid`: kept in its ring, and its flows' idle
    /// count moves.
    fn record_cpu(&mut self, tgid: u32, sample: CpuSample) {
        let ring = self.cpu.entry(tgid).or_default();
        if ring.len() >= CPU_HISTORY {
            ring.pop_front();
        }
        ring.push_back(sample);
        let busy = f64::from(sample.cores) >= work_loop::BUSY_CORES;
        for w in self.flows.values_mut().filter(|w| w.tgid == tgid) {
            w.idle_ticks = if busy { 0 } else { w.idle_ticks + 1 };
        }
    }

    /// What flow `cookie` needs at `tick`, given its budget (`None`: gone
    /// from the flow table); moves its phase on.
    fn step(&mut self, cookie: u64, budget: Option<Budget>, tick: u64) -> Step {
        let (Some(budget), Some(w)) = (budget, self.flows.get_mut(&cookie)) else {
            return Step::Release;
        };
        if w.idle_ticks >= IDLE_TICKS || (budget.thick && w.judged()) {
            return Step::Release;
        }
        let Budget { used, limit, .. } = budget;
        let spent = used + SAMPLE_STEP / 2 >= limit;
        match w.phase {
            Phase::Full if !spent => Step::Wait,
            Phase::Full if limit < MAX_SAMPLES => {
                Step::Raise((limit + SAMPLE_STEP).min(MAX_SAMPLES))
            }
            Phase::Full => {
                if used < limit {
                    return Step::Wait;
                }
                // Its last samples are in.
                self.capped += 1;
                w.phase = Phase::Resting {
                    opens_at: tick + WINDOW_EVERY_TICKS - WINDOW_TICKS,
                };
                Step::Capped
            }
            Phase::Resting { opens_at } if tick < opens_at => Step::Wait,
            Phase::Resting { .. } => {
                let from = used.max(limit);
                if from + WINDOW_SAMPLES > KERNEL_MAX_LIMIT {
                    self.exhausted += 1;
                    return Step::Release;
                }
                self.windows += 1;
                w.windows += 1;
                w.phase = Phase::Window {
                    opened_at: tick,
                    limit: from + WINDOW_SAMPLES,
                };
                Step::Open(from + SAMPLE_STEP)
            }
            Phase::Window {
                opened_at,
                limit: most,
            } => {
                if tick >= opened_at + WINDOW_TICKS || (spent && limit >= most) {
                    w.phase = Phase::Resting {
                        opens_at: opened_at + WINDOW_EVERY_TICKS,
                    };
                    Step::Wait
                } else if spent {
                    Step::Raise((limit + SAMPLE_STEP).min(most))
                } else {
                    Step::Wait
                }
            }
        }
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
            if !self.work_loop.has_room() || !self.tables.flows.watch_work(cookie) {
                continue;
            }
            tracing::debug!(cookie, tgid, "work-loop watch");
            self.work_loop.watch(cookie, tgid);
        }
    }

    /// Watched flows near the end of their budget get another step, up to
    /// the cap, and past it in windows; flows gone from the table, idle or
    /// too thick to be a work loop are let go, for good.
    fn rearm_watched(&mut self) {
        let mut release = Vec::new();
        let mut raise = Vec::new();
        let mut capped = Vec::new();
        let cookies: Vec<u64> = self.work_loop.flows.keys().copied().collect();
        for cookie in cookies {
            let thick = self
                .tables
                .flows
                .work_timeline(cookie)
                .is_some_and(work_loop::too_thick);
            let budget = self.tables.flows.get(cookie).map(|flow| Budget {
                used: flow.segments[0].max(flow.segments[1]),
                limit: flow.sample_limit,
                thick,
            });
            match self.work_loop.step(cookie, budget, self.ticks) {
                Step::Wait => {}
                Step::Raise(limit) => raise.push((cookie, limit)),
                Step::Capped => capped.push(cookie),
                Step::Open(limit) => {
                    tracing::debug!(cookie, limit, "work-loop window");
                    self.tables.flows.restart_work_timeline(cookie);
                    raise.push((cookie, limit));
                }
                Step::Release => release.push(cookie),
            }
        }
        for (cookie, limit) in raise {
            if let Some(limit) = self.tables.flows.raise_limit(cookie, limit) {
                self.raise_sample_limit(cookie, limit);
            }
        }
        if !capped.is_empty() {
            // Its last samples are in: judged once more, before it rests.
            let others = self.owners_flows();
            for cookie in capped {
                self.judge_one(cookie, &others);
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
        // Nothing watched, nothing to walk: a full table's boxes are cold.
        if owners.is_empty() {
            return flows;
        }
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
        let cookies: Vec<u64> = self
            .work_loop
            .flows
            .iter()
            .filter(|(_, w)| w.judged())
            .map(|(&cookie, _)| cookie)
            .collect();
        for cookie in cookies {
            self.judge_one(cookie, &others);
        }
    }

    fn judge_one(&mut self, cookie: u64, others: &HashMap<u32, Vec<(u64, u64)>>) {
        let Some(w) = self.work_loop.flows.get(&cookie) else {
            return;
        };
        let tgid = w.tgid;
        let in_window = matches!(w.phase, Phase::Window { .. });
        let Some(cpu) = self.work_loop.cpu.get_mut(&tgid) else {
            return;
        };
        let cpu = cpu.make_contiguous();
        let Some(mut beats) = self.tables.flows.work_timeline(cookie) else {
            return;
        };
        if in_window {
            // A window's budget runs out one direction first: a result
            // sent after the last answer sampled is left out, not taken
            // for an unanswered round.
            let answered = beats
                .iter()
                .rposition(|b| b.direction == assay_classify::Direction::Inbound)
                .map_or(0, |i| i + 1);
            beats = &beats[..answered];
        }
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
        let Some(w) = self.work_loop.flows.get_mut(&cookie) else {
            return;
        };
        // In a window, the loop shown again keeps the strength it earned
        // over its whole life (a window alone is short).
        let strength = if in_window {
            found.strength().max(w.reported)
        } else {
            found.strength()
        };
        let windows = w.windows;
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
        if let Some(mut draft) = crate::evidence::work_loop::evidence(&found, &facts) {
            draft.strength = strength;
            if in_window {
                draft
                    .attributes
                    .insert("sampled_windows".into(), serde_json::json!(windows));
            }
            self.report_flow_draft(tgid, draft, first_payload_ns, first);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(cores: f32) -> CpuSample {
        CpuSample {
            at_ns: 0,
            seconds: 1.0,
            cores,
        }
    }

    fn budget(used: u32, limit: u32) -> Option<Budget> {
        Some(Budget {
            used,
            limit,
            thick: false,
        })
    }

    #[test]
    fn at_most_max_watched_flows_and_those_turned_away_are_counted() {
        let mut watch = WorkLoopWatch::default();
        for cookie in 0..MAX_WATCHED as u64 {
            assert!(watch.has_room());
            watch.watch(cookie, 100 + cookie as u32);
        }
        assert!(!watch.has_room() && !watch.has_room());
        assert_eq!((watch.watched, watch.watch_full), (MAX_WATCHED as u64, 2));
        watch.release(0);
        assert!(watch.has_room());
        assert_eq!(watch.watch_full, 2);
    }

    #[test]
    fn an_owners_cpu_history_is_bounded_and_goes_with_its_last_flow_or_its_exit() {
        let mut watch = WorkLoopWatch::default();
        watch.watch(1, 5);
        watch.watch(2, 5);
        watch.watch(3, 6);
        for _ in 0..CPU_HISTORY + 100 {
            watch.record_cpu(5, sample(1.0));
            watch.record_cpu(6, sample(1.0));
        }
        assert_eq!(watch.cpu[&5].len(), CPU_HISTORY);
        // One of 5's two flows let go: its history stays for the other.
        watch.release(1);
        assert!(watch.cpu.contains_key(&5));
        watch.release(2);
        assert!(!watch.cpu.contains_key(&5));
        // 6 exits: its flow and history go.
        watch.forget(6);
        assert!(watch.flows.is_empty() && watch.cpu.is_empty());
    }

    #[test]
    fn an_idle_owner_a_thick_timeline_or_a_flow_gone_is_let_go() {
        let mut watch = WorkLoopWatch::default();
        watch.watch(1, 5);
        for _ in 0..IDLE_TICKS - 1 {
            watch.record_cpu(5, sample(0.1));
        }
        assert_eq!(watch.step(1, budget(10, 64), 0), Step::Wait);
        // Busy again: the count starts over.
        watch.record_cpu(5, sample(1.0));
        for _ in 0..IDLE_TICKS - 1 {
            watch.record_cpu(5, sample(0.1));
        }
        assert_eq!(watch.step(1, budget(10, 64), 0), Step::Wait);
        watch.record_cpu(5, sample(0.1));
        assert_eq!(watch.step(1, budget(10, 64), 0), Step::Release);
        watch.watch(2, 6);
        let thick = Some(Budget {
            used: 10,
            limit: 64,
            thick: true,
        });
        assert_eq!(watch.step(2, thick, 0), Step::Release);
        watch.watch(3, 6);
        assert_eq!(watch.step(3, None, 0), Step::Release);
        assert_eq!(watch.step(99, budget(0, 64), 0), Step::Release);
    }

    /// A watched flow whose busier direction has `rate` segments a tick,
    /// from tick `from` to `to`: the kernel samples them while under its
    /// limit, and the steps are applied as the agent would. Returns the
    /// ticks at which a segment was sampled and the steps taken.
    fn run(
        watch: &mut WorkLoopWatch,
        used: &mut u32,
        limit: &mut u32,
        rate: u32,
        ticks: std::ops::Range<u64>,
    ) -> (Vec<u64>, Vec<(u64, Step)>) {
        let (mut sampled, mut steps) = (Vec::new(), Vec::new());
        for tick in ticks {
            for _ in 0..rate {
                if *used < *limit {
                    *used += 1;
                    sampled.push(tick);
                }
            }
            let step = watch.step(1, budget(*used, *limit), tick);
            match step {
                Step::Raise(l) | Step::Open(l) => {
                    assert!(l > *limit && l <= KERNEL_MAX_LIMIT, "{tick}: {step:?}");
                    *limit = l;
                }
                Step::Wait | Step::Capped => {}
                Step::Release => panic!("let go at {tick}"),
            }
            if step != Step::Wait {
                steps.push((tick, step));
            }
        }
        (sampled, steps)
    }

    #[test]
    fn the_budget_grows_in_steps_to_the_cap_and_then_in_windows_for_good() {
        let mut watch = WorkLoopWatch::default();
        watch.watch(1, 5);
        let (mut used, mut limit) = (0, SAMPLE_STEP);
        // A miner's flow: ~1 segment a tick in its busier direction.
        let (sampled, steps) = run(&mut watch, &mut used, &mut limit, 1, 0..1_100);
        let raises: Vec<u32> = steps
            .iter()
            .filter_map(|(_, s)| match s {
                Step::Raise(l) => Some(*l),
                _ => None,
            })
            .collect();
        assert_eq!(raises.first(), Some(&(2 * SAMPLE_STEP)));
        assert!(raises.windows(2).all(|w| w[1] == w[0] + SAMPLE_STEP));
        assert_eq!(raises.last(), Some(&MAX_SAMPLES));
        // Every segment up to the cap, then it rests, once capped.
        assert_eq!(sampled.len() as u32, MAX_SAMPLES);
        let capped_at = steps
            .iter()
            .find(|(_, s)| *s == Step::Capped)
            .map(|&(t, _)| t)
            .unwrap();
        assert_eq!(sampled.last(), Some(&(capped_at)));
        assert_eq!(watch.capped, 1);
        assert!(!watch.flows[&1].judged());

        // Then for a day: windows, each opening a fresh timeline.
        let day = 86_400;
        let (sampled, steps) = run(&mut watch, &mut used, &mut limit, 1, 1_100..1_100 + day);
        let opened: Vec<u64> = steps
            .iter()
            .filter(|(_, s)| matches!(s, Step::Open(_)))
            .map(|&(t, _)| t)
            .collect();
        assert_eq!(opened[0], capped_at + WINDOW_EVERY_TICKS - WINDOW_TICKS);
        assert!(opened.windows(2).all(|w| w[1] - w[0] == WINDOW_EVERY_TICKS));
        assert_eq!(watch.windows, opened.len() as u64);
        assert!(opened.len() as u64 >= day / WINDOW_EVERY_TICKS - 1);
        // Sampled only in windows (and what the last step left the kernel,
        // once closed), at most WINDOW_SAMPLES each: about a quarter of
        // the segments.
        let run_on = u64::from(2 * SAMPLE_STEP);
        for (i, &open) in opened.iter().enumerate() {
            let next = opened.get(i + 1).copied().unwrap_or(u64::MAX);
            let inside = sampled.iter().filter(|&&t| t > open && t < next);
            assert!(inside.clone().all(|&t| t <= open + WINDOW_TICKS + run_on));
            assert!(inside.count() as u32 <= WINDOW_SAMPLES);
        }
        assert!(sampled.iter().all(|&t| t > opened[0]));
        let duty = sampled.len() as f64 / day as f64;
        let least = WINDOW_TICKS as f64 / WINDOW_EVERY_TICKS as f64;
        let most = (WINDOW_TICKS + run_on) as f64 / WINDOW_EVERY_TICKS as f64;
        assert!(
            duty >= least * 0.95 && duty <= most && duty < 0.34,
            "{duty}"
        );
        assert!(watch.flows.contains_key(&1));
        assert_eq!(watch.capped, 1);
    }

    #[test]
    fn a_chatty_flow_spends_a_window_early_and_rests() {
        let mut watch = WorkLoopWatch::default();
        watch.watch(1, 5);
        let (mut used, mut limit) = (0, SAMPLE_STEP);
        run(&mut watch, &mut used, &mut limit, 40, 0..40);
        assert_eq!(watch.capped, 1);
        // 40 segments a tick: a window's 512 are spent within 13 ticks.
        let (sampled, steps) = run(&mut watch, &mut used, &mut limit, 40, 40..2_000);
        let opened: Vec<u64> = steps
            .iter()
            .filter(|(_, s)| matches!(s, Step::Open(_)))
            .map(|&(t, _)| t)
            .collect();
        assert_eq!(opened.len(), 2);
        for &open in &opened {
            let inside: Vec<&u64> = sampled
                .iter()
                .filter(|&&t| t >= open && t < open + WINDOW_EVERY_TICKS)
                .collect();
            assert!(inside.len() as u32 <= WINDOW_SAMPLES + SAMPLE_STEP);
            assert!(inside.iter().all(|&&t| t < open + 20));
        }
    }

    #[test]
    fn a_window_that_no_longer_fits_the_kernels_limit_lets_the_flow_go() {
        let mut watch = WorkLoopWatch::default();
        watch.watch(1, 5);
        watch.flows.get_mut(&1).unwrap().phase = Phase::Resting { opens_at: 10 };
        let near = KERNEL_MAX_LIMIT - WINDOW_SAMPLES;
        // A resting flow is not judged, and its stale timeline is not
        // taken for thick.
        let thick = Some(Budget {
            used: near,
            limit: near,
            thick: true,
        });
        assert_eq!(watch.step(1, thick, 5), Step::Wait);
        assert_eq!(
            watch.step(1, budget(near, near), 10),
            Step::Open(near + SAMPLE_STEP)
        );
        watch.flows.get_mut(&1).unwrap().phase = Phase::Resting { opens_at: 10 };
        assert_eq!(watch.step(1, budget(near + 1, near + 1), 10), Step::Release);
        assert_eq!((watch.windows, watch.exhausted), (1, 1));
    }
}
