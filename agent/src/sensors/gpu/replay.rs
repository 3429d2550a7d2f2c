//! The offline telemetry source: a recorded trace, replayed.
//!
//! # Trace format (also in `docs/gpu-trace-format.md`)
//!
//! JSON lines: one object per line, UTF-8, in time order. Each object has a
//! `"type"`:
//!
//! ```text
//! {"type":"device","t_ms":1767225600000,"index":0,"uuid":"GPU-…","name":"NVIDIA A100-SXM4-80GB",
//!  "gpu_util_pct":97,"mem_util_pct":41,"mem_used_bytes":64424509440,"mem_total_bytes":85899345920,
//!  "power_mw":351000,"power_limit_mw":400000,"sm_clock_mhz":1410,"mem_clock_mhz":1593,
//!  "pcie_tx_kbps":12000,"pcie_rx_kbps":800000}
//! {"type":"process","t_ms":1767225600000,"device_index":0,"pid":4242,
//!  "used_mem_bytes":63350767616,"sm_util_pct":95,"mem_util_pct":40}
//! ```
//!
//! (shown wrapped; in a trace each object is on one line). Fields are those
//! of [`DeviceSample`](super::telemetry::DeviceSample) and
//! [`ProcessSample`](super::telemetry::ProcessSample): `t_ms` is wall-clock
//! milliseconds since the Unix epoch; every measurement is optional and
//! left out when the device does not support it; fields this version does
//! not know are ignored. Blank lines are skipped.
//!
//! # Replay
//!
//! Consecutive records within [`TICK_GROUP_MS`] of the first one of a group
//! make one poll (a recorder stamps all samples of one poll with the same
//! time). A poll carries processes when its group holds process records.
//! [`Pace::Fast`] returns the next poll at once; [`Pace::Recorded`] sleeps
//! so that polls come as far apart as their `t_ms`.
//!
//! Malformed lines (not JSON, an unknown `type`, a missing `t_ms`, longer
//! than [`MAX_LINE_BYTES`]) and records older than the current poll are
//! counted and skipped; a bad trace never panics.

use std::{
    fs::File,
    io::{self, BufRead, BufReader, Read},
    path::Path,
    time::{Duration, Instant},
};

use super::telemetry::{Poll, TelemetryError, TelemetrySource, TraceRecord};

/// Records this close to the first record of a poll belong to that poll.
/// Half the poll interval: samples of one poll of several devices may be
/// stamped a few milliseconds apart, the next poll is a second later.
pub const TICK_GROUP_MS: u64 = 500;

/// Longest line read; longer ones are skipped as malformed (a real record
/// is a few hundred bytes; this bounds memory on a corrupt file).
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// How a replay is paced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// Every poll returns the next recorded one at once.
    Fast,
    /// Polls come as far apart as they were recorded.
    Recorded,
}

/// What a replay skipped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayStats {
    pub records: u64,
    /// Lines that were not a valid record.
    pub malformed: u64,
    /// Records older than the poll before them.
    pub out_of_order: u64,
}

pub struct Replay<R> {
    reader: R,
    pace: Pace,
    /// The first record of the next poll, read ahead.
    pending: Option<TraceRecord>,
    /// Start of the last poll returned (records before it are late).
    last_tick_ms: Option<u64>,
    /// When the first poll was returned, and its trace time.
    started: Option<(Instant, u64)>,
    stats: ReplayStats,
    line: Vec<u8>,
    ended: bool,
}

impl Replay<BufReader<File>> {
    pub fn open(path: &Path, pace: Pace) -> io::Result<Self> {
        Ok(Self::new(BufReader::new(File::open(path)?), pace))
    }
}

impl<R: BufRead> Replay<R> {
    pub fn new(reader: R, pace: Pace) -> Self {
        Self {
            reader,
            pace,
            pending: None,
            last_tick_ms: None,
            started: None,
            stats: ReplayStats::default(),
            line: Vec::new(),
            ended: false,
        }
    }

    pub fn stats(&self) -> ReplayStats {
        self.stats
    }

    /// The next well-formed, in-order record, or `None` at the end.
    fn next_record(&mut self) -> io::Result<Option<TraceRecord>> {
        loop {
            if self.ended {
                return Ok(None);
            }
            self.line.clear();
            let limit = MAX_LINE_BYTES as u64 + 1;
            let read = (&mut self.reader)
                .take(limit)
                .read_until(b'\n', &mut self.line)?;
            if read == 0 {
                self.ended = true;
                return Ok(None);
            }
            if self.line.len() > MAX_LINE_BYTES && self.line.last() != Some(&b'\n') {
                // Too long: drop the rest of the line too.
                self.reader.skip_until(b'\n')?;
                self.stats.malformed += 1;
                continue;
            }
            if self.line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let Ok(record) = serde_json::from_slice::<TraceRecord>(&self.line) else {
                self.stats.malformed += 1;
                continue;
            };
            if self.last_tick_ms.is_some_and(|tick| record.t_ms() < tick) {
                self.stats.out_of_order += 1;
                continue;
            }
            self.stats.records += 1;
            return Ok(Some(record));
        }
    }

    /// The records of the next poll, in trace order.
    fn next_group(&mut self) -> io::Result<Option<(u64, Vec<TraceRecord>)>> {
        let first = match self.pending.take() {
            Some(record) => record,
            None => match self.next_record()? {
                Some(record) => record,
                None => return Ok(None),
            },
        };
        let tick = first.t_ms();
        self.last_tick_ms = Some(tick);
        let mut group = vec![first];
        while let Some(record) = self.next_record()? {
            if record.t_ms() >= tick.saturating_add(TICK_GROUP_MS) {
                self.pending = Some(record);
                break;
            }
            group.push(record);
        }
        Ok(Some((tick, group)))
    }

    fn wait_for(&mut self, tick_ms: u64) {
        if self.pace != Pace::Recorded {
            return;
        }
        let (start, t0) = *self.started.get_or_insert((Instant::now(), tick_ms));
        let due = start + Duration::from_millis(tick_ms.saturating_sub(t0));
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
    }
}

impl<R: BufRead + Send> TelemetrySource for Replay<R> {
    fn name(&self) -> &'static str {
        "replay"
    }

    fn interval(&self) -> Duration {
        Duration::ZERO
    }

    fn poll(&mut self) -> Result<Option<Poll>, TelemetryError> {
        let Some((tick, group)) = self.next_group()? else {
            return Ok(None);
        };
        self.wait_for(tick);
        let mut poll = Poll::default();
        for record in group {
            match record {
                TraceRecord::Device(d) => poll.devices.push(d),
                TraceRecord::Process(p) => poll.processes.get_or_insert_with(Vec::new).push(p),
            }
        }
        Ok(Some(poll))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replay(text: &str) -> Replay<&[u8]> {
        Replay::new(text.as_bytes(), Pace::Fast)
    }

    fn drain<R: BufRead + Send>(replay: &mut Replay<R>) -> Vec<Poll> {
        std::iter::from_fn(|| replay.poll().unwrap()).collect()
    }

    const TRACE: &str = r#"{"type":"device","t_ms":1000,"index":0,"gpu_util_pct":99}
{"type":"device","t_ms":1003,"index":1,"gpu_util_pct":98}
{"type":"process","t_ms":1003,"device_index":0,"pid":7,"used_mem_bytes":1024}
{"type":"device","t_ms":2000,"index":0,"gpu_util_pct":97}
{"type":"device","t_ms":2001,"index":1}
"#;

    #[test]
    fn records_of_one_tick_make_one_poll() {
        let polls = drain(&mut replay(TRACE));
        assert_eq!(polls.len(), 2);
        assert_eq!(polls[0].devices.len(), 2);
        assert_eq!(polls[0].processes.as_ref().map(Vec::len), Some(1));
        assert_eq!(polls[1].devices.len(), 2);
        assert_eq!(polls[1].processes, None);
        assert_eq!(polls[1].devices[1].gpu_util_pct, None);
    }

    #[test]
    fn malformed_and_late_lines_are_counted_and_skipped() {
        let text = "\
{\"type\":\"device\",\"t_ms\":1000,\"index\":0}
not json at all
{\"type\":\"fan\",\"t_ms\":1000}
{\"type\":\"device\",\"index\":0}

\u{0}\u{ff}garbage
{\"type\":\"device\",\"t_ms\":3000,\"index\":0}
{\"type\":\"device\",\"t_ms\":500,\"index\":0}
{\"type\":\"device\",\"t_ms\":4000,\"index\":0,\"gpu_util_pct\":-1}
{\"type\":\"device\",\"t_ms\":4000,\"index\":0,\"future_field\":[1,2]}
{\"type\":\"process\",\"t_ms\":4000";
        let mut r = replay(text);
        let polls = drain(&mut r);
        let times: Vec<u64> = polls.iter().map(|p| p.devices[0].t_ms).collect();
        assert_eq!(times, [1000, 3000, 4000]);
        assert_eq!(polls[2].devices.len(), 1, "unknown fields are ignored");
        let stats = r.stats();
        assert_eq!(stats.records, 3);
        // not json, unknown type, no t_ms, garbage, negative util, truncated
        assert_eq!(stats.malformed, 6);
        assert_eq!(stats.out_of_order, 1);
    }

    #[test]
    fn an_overlong_line_is_skipped_whole() {
        let long = format!(
            "{{\"type\":\"device\",\"t_ms\":1,\"index\":0,\"name\":\"{}\"}}\n{{\"type\":\"device\",\"t_ms\":2000,\"index\":0}}\n",
            "x".repeat(MAX_LINE_BYTES)
        );
        let mut r = replay(&long);
        let polls = drain(&mut r);
        assert_eq!(polls.len(), 1);
        assert_eq!(polls[0].devices[0].t_ms, 2000);
        assert_eq!(r.stats().malformed, 1);
    }

    #[test]
    fn an_empty_trace_ends_at_once() {
        assert!(drain(&mut replay("")).is_empty());
        assert!(drain(&mut replay("\n\n")).is_empty());
    }

    #[test]
    fn recorded_pace_waits_as_long_as_the_trace_did() {
        let text = "{\"type\":\"device\",\"t_ms\":1000,\"index\":0}\n{\"type\":\"device\",\"t_ms\":1150,\"index\":0}\n";
        let mut r = Replay::new(text.as_bytes(), Pace::Recorded);
        // Polls more than TICK_GROUP_MS apart are separate; these two are
        // one poll 150 ms wide, so use a wider trace for the wait.
        assert_eq!(drain(&mut r).len(), 1);
        let text = "{\"type\":\"device\",\"t_ms\":1000,\"index\":0}\n{\"type\":\"device\",\"t_ms\":1600,\"index\":0}\n";
        let mut r = Replay::new(text.as_bytes(), Pace::Recorded);
        let start = Instant::now();
        assert_eq!(drain(&mut r).len(), 2);
        assert!(start.elapsed() >= Duration::from_millis(600));
    }

    #[test]
    fn a_recording_replays_as_it_was_recorded() {
        let polls = drain(&mut replay(TRACE));
        let mut recorder = crate::sensors::gpu::telemetry::Recorder::new(Vec::new());
        for poll in &polls {
            recorder.write(poll).unwrap();
        }
        let text = String::from_utf8(recorder.into_inner()).unwrap();
        assert_eq!(drain(&mut replay(&text)), polls);
    }
}
