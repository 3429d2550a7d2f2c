//! Flow behaviour where content is unreadable (TLS, Noise, unknown binary):
//! does the server push small messages on a regular beat that the client
//! never answers? That is how a mining pool sends jobs (docs/signatures.md,
//! "Stratum over TLS": server records at job cadence, seconds to a minute,
//! tiny and regular).
//!
//! Input is the flow's timeline: when each payload segment passed, which
//! way, how long. A *push* is inbound payload that does not follow the
//! client's own payload closely (not a reply to a request); segments within
//! [`BURST_GAP_NS`] of each other are one push. A push is *answered* when
//! the client sends payload within [`ANSWER_WINDOW_NS`]: a WebSocket or
//! application ping gets its pong, a job notification gets nothing (a share
//! comes much later, when one is found).
//!
//! Alone this is weak: a dashboard fed by server-sent events every few
//! seconds has the same shape. The evidence it yields is never decisive.

use serde::Serialize;

use super::Direction;

/// One payload segment of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Beat {
    pub at_ns: u64,
    pub direction: Direction,
    pub len: u32,
}

/// Inbound segments closer than this belong to one push.
pub const BURST_GAP_NS: u64 = 50_000_000;
/// Inbound payload this soon after the client's is a reply, not a push.
pub const REPLY_WINDOW_NS: u64 = 250_000_000;
/// Client payload this soon after a push answers it.
pub const ANSWER_WINDOW_NS: u64 = 250_000_000;

/// Pushes needed before the beat means anything.
pub const MIN_PUSHES: usize = 5;
/// Coefficient of variation of the intervals between pushes, at most.
pub const MAX_VARIATION: f64 = 0.35;
/// Share of pushes the client answers, at most.
pub const MAX_ANSWERED: f64 = 0.25;
/// Job notifications are a few hundred bytes: bounds on the mean push.
pub const PUSH_BYTES: std::ops::RangeInclusive<f64> = 60.0..=4096.0;
/// Intervals shorter than this are streaming, not a job beat.
pub const MIN_INTERVAL_S: f64 = 0.5;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PushCadence {
    pub pushes: usize,
    /// Mean seconds between pushes.
    pub interval_s: f64,
    /// Standard deviation over mean of those intervals.
    pub variation: f64,
    pub mean_push_bytes: f64,
    /// Share of pushes the client answered at once.
    pub answered_share: f64,
}

impl PushCadence {
    /// The shape of a pool's job notifications.
    pub fn is_job_like(&self) -> bool {
        self.pushes >= MIN_PUSHES
            && self.variation <= MAX_VARIATION
            && self.answered_share <= MAX_ANSWERED
            && PUSH_BYTES.contains(&self.mean_push_bytes)
            && self.interval_s >= MIN_INTERVAL_S
    }
}

/// Measures the server-push cadence of a timeline (in time order). `None`
/// when there are fewer than two pushes.
pub fn measure(beats: &[Beat]) -> Option<PushCadence> {
    let mut pushes: Vec<(u64, u64)> = Vec::new(); // (start, bytes)
    let mut last_out: Option<u64> = None;
    let mut last_in: Option<u64> = None;
    let mut answered = 0usize;
    let mut awaiting_answer: Option<u64> = None;
    for beat in beats {
        match beat.direction {
            Direction::Outbound => {
                if let Some(push_at) = awaiting_answer.take()
                    && beat.at_ns.saturating_sub(push_at) <= ANSWER_WINDOW_NS
                {
                    answered += 1;
                }
                last_out = Some(beat.at_ns);
            }
            Direction::Inbound => {
                let continues_burst =
                    last_in.is_some_and(|t| beat.at_ns.saturating_sub(t) <= BURST_GAP_NS);
                let is_reply =
                    last_out.is_some_and(|t| beat.at_ns.saturating_sub(t) <= REPLY_WINDOW_NS);
                match pushes.last_mut() {
                    Some((_, bytes)) if continues_burst => *bytes += u64::from(beat.len),
                    _ if is_reply => {}
                    _ => {
                        pushes.push((beat.at_ns, u64::from(beat.len)));
                        awaiting_answer = Some(beat.at_ns);
                    }
                }
                last_in = Some(beat.at_ns);
            }
        }
    }
    if pushes.len() < 2 {
        return None;
    }
    let intervals: Vec<f64> = pushes
        .windows(2)
        .map(|w| w[1].0.saturating_sub(w[0].0) as f64 / 1e9)
        .collect();
    let mean = intervals.iter().sum::<f64>() / intervals.len() as f64;
    let variance =
        intervals.iter().map(|i| (i - mean).powi(2)).sum::<f64>() / intervals.len() as f64;
    Some(PushCadence {
        pushes: pushes.len(),
        interval_s: mean,
        variation: if mean > 0.0 {
            variance.sqrt() / mean
        } else {
            f64::INFINITY
        },
        mean_push_bytes: pushes.iter().map(|p| p.1 as f64).sum::<f64>() / pushes.len() as f64,
        answered_share: answered as f64 / pushes.len() as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;
    const MS: u64 = 1_000_000;

    fn beat(at_ns: u64, direction: Direction, len: u32) -> Beat {
        Beat {
            at_ns,
            direction,
            len,
        }
    }

    #[test]
    fn regular_unanswered_pushes_are_job_like() {
        // A job every 30 s, ±1 s, of ~400 bytes, and one share in between.
        let mut beats = Vec::new();
        for i in 0..8u64 {
            beats.push(beat(i * 30 * S + (i % 3) * S, Direction::Inbound, 420));
        }
        beats.push(beat(95 * S, Direction::Outbound, 180));
        beats.push(beat(95 * S + 40 * MS, Direction::Inbound, 90)); // the share's answer
        beats.sort_by_key(|b| b.at_ns);
        let cadence = measure(&beats).unwrap();
        assert_eq!(cadence.pushes, 8);
        assert!((cadence.interval_s - 30.0).abs() < 1.5, "{cadence:?}");
        assert!(cadence.is_job_like(), "{cadence:?}");
    }

    #[test]
    fn pings_answered_by_pongs_are_not() {
        let beats: Vec<Beat> = (0..10u64)
            .flat_map(|i| {
                [
                    beat(i * 2 * S, Direction::Inbound, 90),
                    beat(i * 2 * S + 3 * MS, Direction::Outbound, 90),
                ]
            })
            .collect();
        let cadence = measure(&beats).unwrap();
        assert_eq!(cadence.answered_share, 1.0);
        assert!(!cadence.is_job_like());
    }

    #[test]
    fn request_response_traffic_has_no_pushes() {
        let beats: Vec<Beat> = (0..10u64)
            .flat_map(|i| {
                [
                    beat(i * S, Direction::Outbound, 300),
                    beat(i * S + 20 * MS, Direction::Inbound, 1400),
                    beat(i * S + 21 * MS, Direction::Inbound, 1400),
                ]
            })
            .collect();
        assert!(measure(&beats).is_none());
    }

    #[test]
    fn irregular_or_bulky_or_streaming_pushes_are_not() {
        let irregular: Vec<Beat> = [0u64, 1, 9, 11, 30, 31, 60]
            .iter()
            .map(|s| beat(s * S, Direction::Inbound, 400))
            .collect();
        assert!(!measure(&irregular).unwrap().is_job_like());
        let bulky: Vec<Beat> = (0..8u64)
            .map(|i| beat(i * 10 * S, Direction::Inbound, 60_000))
            .collect();
        assert!(!measure(&bulky).unwrap().is_job_like());
        let streaming: Vec<Beat> = (0..40u64)
            .map(|i| beat(i * 100 * MS, Direction::Inbound, 400))
            .collect();
        assert!(!measure(&streaming).unwrap().is_job_like());
    }

    #[test]
    fn a_burst_of_segments_is_one_push() {
        let beats: Vec<Beat> = (0..6u64)
            .flat_map(|i| {
                [
                    beat(i * 5 * S, Direction::Inbound, 1400),
                    beat(i * 5 * S + MS, Direction::Inbound, 200),
                ]
            })
            .collect();
        let cadence = measure(&beats).unwrap();
        assert_eq!(cadence.pushes, 6);
        assert_eq!(cadence.mean_push_bytes, 1600.0);
    }
}
