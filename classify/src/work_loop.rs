//! The work loop of a miner, by behaviour alone: whatever the protocol,
//! the algorithm or the encryption, a CPU miner keeps its cores busy,
//! holds one long-lived, thin flow to its pool, and on that flow the same
//! rhythm repeats: work arrives (a job push, or the answer to a small
//! request), the process computes, and a small, fixed-format result (a
//! share) goes back and is acknowledged.
//!
//! Input: one flow's timeline ([`Beat`]s: time, direction, payload length)
//! and its owner's CPU use over the same span ([`CpuSample`]s, one per
//! agent tick, from the cpu-clock sensor), plus how many other flows the
//! owner had meanwhile. Output: a [`WorkLoop`] with its numbers, or
//! nothing. No I/O, no clock.
//!
//! How the timeline is read. Segments closer than [`EXCHANGE_GAP_NS`] are
//! one *exchange*; the quiet gaps between exchanges are where a miner
//! computes. A *round* is an exchange, after such a gap, that the process
//! opens (it speaks first: a share, or a share and the next job request)
//! and that the peer answers (a pool acknowledges every share). What it
//! sends before the answer is the round's *result*. Exchanges the peer opens (job
//! pushes) are work; their size is reported, not required to be regular,
//! since a push-style pool mixes job pushes with share answers.
//!
//! The rules, each chosen to keep honest workloads out (a pow-mining
//! verdict on an honest workload, even `observed`, is a bug):
//! - **CPU-saturated while the flow lives**: over the judged span the
//!   owner averaged at least [`MIN_CORES`] cores, at least
//!   [`MIN_BUSY_SHARE`] of the time at [`BUSY_CORES`] or more, with CPU
//!   samples covering [`MIN_CPU_COVERAGE`] of the span. A chat, MQTT or
//!   WebSocket client with the same small pushes idles.
//! - **Long-lived**: the judged span is at least [`MIN_SPAN_S`]; build
//!   farms' cache requests and volunteer computing's one upload per work
//!   unit live on short flows.
//! - **Thin**: no exchange carries more than [`MAX_EXCHANGE_BYTES`] either
//!   way, and the flow carries at most [`MAX_BYTES_PER_CPU_S`] per
//!   CPU-second: a share is ~100 bytes per several CPU-seconds. Dataset
//!   reads, video streams and database result sets are far above.
//! - **Rounds with fixed-size results**: at least [`MIN_ROUNDS`] rounds,
//!   results of mean at most [`MAX_RESULT_BYTES`] with a coefficient of
//!   variation at most [`MAX_RESULT_VARIATION`] (a share is a fixed-format
//!   message; TLS adds a constant per record). Queries of varied sizes
//!   (a database client) are not.
//! - **Not on a clock**: the intervals between rounds vary (coefficient of
//!   variation at least [`MIN_ROUND_VARIATION`]): shares come when the
//!   search is lucky, exponentially spaced, while heartbeats and keepalives
//!   of a busy process (a Kafka or ZooKeeper client) tick like a clock.
//!   A miner that submits on a fixed timer escapes this rule (the job
//!   cadence detector still sees its pool's pushes).
//! - **Answered**: every round gets inbound payload; a one-way push of
//!   metrics or logs (graphite, syslog over TCP) does not.
//! - **Little else on the network**: the owner had at most
//!   [`MAX_OTHER_FLOWS`] other flows during the span; a Kafka consumer or a
//!   distributed worker talks to many peers.
//!
//! Strength ([`WorkLoop::strength`]) starts at [`OPENING_STRENGTH`], enough
//! to open an `observed` verdict, and grows with persistence to
//! [`PERSISTED_STRENGTH`] only when the loop has lasted
//! [`PERSISTED_SPAN_S`] and [`PERSISTED_ROUNDS`] rounds: ten minutes of
//! saturated CPU in lockstep with one thin flow is what a miner does and
//! little else does. Next to any other sign the correlator's noisy-OR
//! reaches `suspected` sooner.
//!
//! What remains alike: a CPU-bound worker that, after each unit of work,
//! sends one fixed-size, acknowledged message to one server at
//! irregular times and talks to nothing else. That is what a miner is;
//! the evidence stays weak until it has persisted.

use serde::Serialize;

use crate::{Direction, cadence::Beat};

/// Segments closer than this are one exchange.
pub const EXCHANGE_GAP_NS: u64 = 1_000_000_000;
/// Rounds needed before the loop means anything.
pub const MIN_ROUNDS: usize = 6;
/// Seconds the timeline must span.
pub const MIN_SPAN_S: f64 = 60.0;
/// Mean cores the owner used over the span, at least.
pub const MIN_CORES: f64 = 0.85;
/// A CPU sample at or above this many cores is busy.
pub const BUSY_CORES: f64 = 0.6;
/// Share of the sampled time that was busy, at least.
pub const MIN_BUSY_SHARE: f64 = 0.8;
/// Share of the span CPU samples cover, at least.
pub const MIN_CPU_COVERAGE: f64 = 0.8;
/// Bytes one exchange carries in one direction, at most.
pub const MAX_EXCHANGE_BYTES: u64 = 4096;
/// Payload bytes per CPU-second over the span, at most.
pub const MAX_BYTES_PER_CPU_S: f64 = 1024.0;
/// Mean result bytes, at most.
pub const MAX_RESULT_BYTES: f64 = 1024.0;
/// Coefficient of variation of result sizes, at most.
pub const MAX_RESULT_VARIATION: f64 = 0.25;
/// Coefficient of variation of the intervals between rounds, at least.
pub const MIN_ROUND_VARIATION: f64 = 0.2;
/// Other flows of the owner during the span, at most.
pub const MAX_OTHER_FLOWS: usize = 3;
/// Strength when the rules first hold.
pub const OPENING_STRENGTH: f32 = 0.3;
/// Strength once the loop persisted: `suspected` alone.
pub const PERSISTED_STRENGTH: f32 = 0.6;
/// Seconds, and rounds, the loop must last to reach [`PERSISTED_STRENGTH`].
pub const PERSISTED_SPAN_S: f64 = 600.0;
pub const PERSISTED_ROUNDS: usize = 20;

/// The owner's CPU use over one poll.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuSample {
    /// End of the poll.
    pub at_ns: u64,
    /// Seconds the poll covered.
    pub seconds: f32,
    /// Cores busy over it (1.0 = one core).
    pub cores: f32,
}

/// A work loop and the numbers that made it one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkLoop {
    pub rounds: usize,
    pub span_s: f64,
    /// Mean seconds between rounds.
    pub round_interval_s: f64,
    /// Coefficient of variation of those intervals.
    pub round_variation: f64,
    pub mean_result_bytes: f64,
    pub result_variation: f64,
    /// Mean inbound bytes per exchange (work, and answers).
    pub mean_work_bytes: f64,
    pub work_variation: f64,
    /// Mean cores busy over the span, and the share of it that was busy.
    pub cores: f64,
    pub busy_share: f64,
    pub bytes_per_cpu_s: f64,
    pub other_flows: usize,
}

impl WorkLoop {
    /// Grows with persistence: [`OPENING_STRENGTH`] at first,
    /// [`PERSISTED_STRENGTH`] only when both span and rounds reached
    /// theirs.
    pub fn strength(&self) -> f32 {
        let progress =
            |value: f64, from: f64, to: f64| ((value - from) / (to - from)).clamp(0.0, 1.0);
        let span = progress(self.span_s, MIN_SPAN_S, PERSISTED_SPAN_S);
        let rounds = progress(
            self.rounds as f64,
            MIN_ROUNDS as f64,
            PERSISTED_ROUNDS as f64,
        );
        let done = span.min(rounds);
        if done >= 1.0 {
            return PERSISTED_STRENGTH;
        }
        OPENING_STRENGTH + (PERSISTED_STRENGTH - OPENING_STRENGTH) * done as f32
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Exchange {
    start: u64,
    end: u64,
    opened_by: Option<Direction>,
    bytes: [u64; 2],
    /// Outbound bytes before the first inbound: the process's message
    /// (a share, or a share and a job request), without what follows the
    /// answer when a short computation joins two rounds into one.
    leading_out: u64,
}

/// True when some exchange of `beats` carries more than
/// [`MAX_EXCHANGE_BYTES`] one way: a flow [`judge`] cannot take for a work
/// loop while that exchange is in its timeline, not worth more samples.
pub fn too_thick(beats: &[Beat]) -> bool {
    exchanges(beats)
        .iter()
        .any(|e| e.bytes.iter().any(|&b| b > MAX_EXCHANGE_BYTES))
}

/// Judges a flow's timeline against its owner's CPU use. `beats` and `cpu`
/// in time order (out-of-order input judges nothing); `other_flows`: the
/// owner's other flows during the span.
pub fn judge(beats: &[Beat], cpu: &[CpuSample], other_flows: usize) -> Option<WorkLoop> {
    if other_flows > MAX_OTHER_FLOWS || !beats.is_sorted_by_key(|b| b.at_ns) {
        return None;
    }
    let (first, last) = (beats.first()?.at_ns, beats.last()?.at_ns);
    let span_s = (last - first) as f64 / 1e9;
    if span_s < MIN_SPAN_S {
        return None;
    }
    let (cores, busy_share, cpu_seconds) = cpu_over(cpu, first, last, span_s)?;
    if cores < MIN_CORES || busy_share < MIN_BUSY_SHARE {
        return None;
    }
    if too_thick(beats) {
        return None;
    }
    let exchanges = exchanges(beats);
    let total: u64 = exchanges.iter().map(|e| e.bytes[0] + e.bytes[1]).sum();
    let bytes_per_cpu_s = total as f64 / cpu_seconds;
    if bytes_per_cpu_s > MAX_BYTES_PER_CPU_S {
        return None;
    }
    // The first exchange's quiet gap before it is not in the timeline.
    let rounds: Vec<&Exchange> = exchanges
        .iter()
        .skip(1)
        .filter(|e| e.opened_by == Some(Direction::Outbound))
        .collect();
    if rounds.len() < MIN_ROUNDS || rounds.iter().any(|e| e.bytes[1] == 0) {
        return None;
    }
    let results: Vec<f64> = rounds.iter().map(|e| e.leading_out as f64).collect();
    let (mean_result_bytes, result_variation) = mean_and_variation(&results);
    if mean_result_bytes > MAX_RESULT_BYTES || result_variation > MAX_RESULT_VARIATION {
        return None;
    }
    let intervals: Vec<f64> = rounds
        .windows(2)
        .map(|w| (w[1].start - w[0].start) as f64 / 1e9)
        .collect();
    let (round_interval_s, round_variation) = mean_and_variation(&intervals);
    if round_variation < MIN_ROUND_VARIATION {
        return None;
    }
    let work: Vec<f64> = exchanges
        .iter()
        .filter(|e| e.bytes[1] > 0)
        .map(|e| e.bytes[1] as f64)
        .collect();
    let (mean_work_bytes, work_variation) = mean_and_variation(&work);
    Some(WorkLoop {
        rounds: rounds.len(),
        span_s,
        round_interval_s,
        round_variation,
        mean_result_bytes,
        result_variation,
        mean_work_bytes,
        work_variation,
        cores,
        busy_share,
        bytes_per_cpu_s,
        other_flows,
    })
}

/// Mean cores, busy share and CPU-seconds over `(first, last]`; `None`
/// when the samples cover too little of it.
fn cpu_over(cpu: &[CpuSample], first: u64, last: u64, span_s: f64) -> Option<(f64, f64, f64)> {
    let (mut seconds, mut busy, mut cpu_seconds) = (0.0f64, 0.0f64, 0.0f64);
    for sample in cpu.iter().filter(|s| s.at_ns > first && s.at_ns <= last) {
        let (s, c) = (f64::from(sample.seconds), f64::from(sample.cores));
        if !(s.is_finite() && c.is_finite()) || s <= 0.0 || c < 0.0 {
            continue;
        }
        seconds += s;
        cpu_seconds += c * s;
        if c >= BUSY_CORES {
            busy += s;
        }
    }
    if seconds < MIN_CPU_COVERAGE * span_s || cpu_seconds <= 0.0 {
        return None;
    }
    Some((cpu_seconds / seconds, busy / seconds, cpu_seconds))
}

fn exchanges(beats: &[Beat]) -> Vec<Exchange> {
    let mut out: Vec<Exchange> = Vec::new();
    for beat in beats {
        let joins = out
            .last()
            .is_some_and(|e| beat.at_ns - e.end < EXCHANGE_GAP_NS);
        if !joins {
            out.push(Exchange {
                start: beat.at_ns,
                end: beat.at_ns,
                opened_by: Some(beat.direction),
                bytes: [0, 0],
                leading_out: 0,
            });
        }
        if let Some(e) = out.last_mut() {
            e.end = beat.at_ns;
            e.bytes[beat.direction as usize] += u64::from(beat.len);
            if beat.direction == Direction::Outbound && e.bytes[1] == 0 {
                e.leading_out += u64::from(beat.len);
            }
        }
    }
    out
}

fn mean_and_variation(values: &[f64]) -> (f64, f64) {
    if values.is_empty() {
        return (0.0, 0.0);
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    let variation = if mean > 0.0 {
        variance.sqrt() / mean
    } else {
        0.0
    };
    (mean, variation)
}

#[cfg(test)]
mod tests;
