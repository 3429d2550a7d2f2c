//! GPU telemetry samples, where they come from, and how they are recorded.
//!
//! A [`TelemetrySource`] is polled at most once a second
//! ([`POLL_INTERVAL`]); each poll gives one [`DeviceSample`] per GPU and,
//! when process enumeration is due (every [`PROCESS_INTERVAL`]), the
//! [`ProcessSample`]s of the processes using them. Sources: [`super::nvml`]
//! (live) and [`super::replay`] (a recorded trace). A [`Recorder`] writes
//! polls in the trace format the replay reads, so a trace recorded on a GPU
//! host replays anywhere.
//!
//! Cost (docs/design.md: NVML polling under 0.5 % of one core): a device poll is
//! about ten NVML queries, each a few to a few tens of microseconds, so a
//! 1 Hz poll of eight GPUs stays well under a millisecond per second
//! (0.1 %). Process enumeration takes milliseconds and a driver lock, hence
//! only every 10 s.

use std::{
    io::{self, Write},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

pub use assay_classify::gpu::samples::{DeviceSample, Poll, ProcessSample, TraceRecord};

/// How often a live source is polled, at most (docs/design.md: ≤ 1 Hz per
/// device; NVML's own utilisation counters are averaged over 1/6 s to 1 s,
/// so polling faster would only re-read them).
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// How often processes are enumerated, at most: NVML's process queries take
/// milliseconds and a driver lock (docs/design.md).
pub const PROCESS_INTERVAL: Duration = Duration::from_secs(10);

/// Why a poll failed.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("NVML: {0}")]
    Nvml(String),
    #[error("reading the trace: {0}")]
    Io(#[from] io::Error),
}

/// A source of GPU telemetry.
pub trait TelemetrySource: Send {
    /// Short name for logs and `doctor`: "nvml", "replay".
    fn name(&self) -> &'static str;

    /// The least time between two polls: [`POLL_INTERVAL`] for a live
    /// source; zero for a replay, which paces itself.
    fn interval(&self) -> Duration;

    /// The next samples; `Ok(None)` once the source has no more (the end of
    /// a trace; a live source never ends).
    fn poll(&mut self) -> Result<Option<Poll>, TelemetryError>;
}

/// Decides when process enumeration is due: at the first poll, then every
/// `every` (a pure schedule; the caller passes the time).
#[derive(Debug, Clone)]
pub struct ProcessSchedule {
    every: Duration,
    last: Option<Instant>,
}

impl ProcessSchedule {
    pub fn new(every: Duration) -> Self {
        Self { every, last: None }
    }

    /// Whether enumeration is due at `now`; if so, counts it as done.
    pub fn due(&mut self, now: Instant) -> bool {
        let due = self
            .last
            .is_none_or(|last| now.saturating_duration_since(last) >= self.every);
        if due {
            self.last = Some(now);
        }
        due
    }
}

/// Wall-clock now, milliseconds since the Unix epoch.
pub fn unix_ms_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Writes polls as trace lines (one JSON object per line, devices first),
/// flushing after each poll so that an interrupted recording keeps every
/// complete poll.
pub struct Recorder<W: Write> {
    out: W,
    lines: u64,
}

impl<W: Write> Recorder<W> {
    pub fn new(out: W) -> Self {
        Self { out, lines: 0 }
    }

    pub fn write(&mut self, poll: &Poll) -> io::Result<()> {
        let devices = poll.devices.iter().cloned().map(TraceRecord::Device);
        let processes = poll
            .processes
            .iter()
            .flatten()
            .cloned()
            .map(TraceRecord::Process);
        for record in devices.chain(processes) {
            serde_json::to_writer(&mut self.out, &record)?;
            self.out.write_all(b"\n")?;
            self.lines += 1;
        }
        self.out.flush()
    }

    /// Lines written so far.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// What [`record`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordStats {
    pub polls: u64,
    pub lines: u64,
}

/// Polls `source` for `duration` (or until it ends) at its own interval,
/// writing every poll to `out` in the trace format. What `assay gpu-record`
/// runs.
pub fn record(
    source: &mut dyn TelemetrySource,
    out: impl Write,
    duration: Duration,
) -> Result<RecordStats, TelemetryError> {
    let mut recorder = Recorder::new(out);
    let start = Instant::now();
    let interval = source.interval();
    let mut polls = 0u64;
    while start.elapsed() < duration {
        let Some(poll) = source.poll()? else {
            break;
        };
        recorder.write(&poll)?;
        polls += 1;
        if !interval.is_zero() {
            // Ticks on a fixed grid from the start, so slow polls do not
            // drift the rate.
            let next = start + interval.saturating_mul(u32::try_from(polls).unwrap_or(u32::MAX));
            let now = Instant::now();
            if next > now {
                std::thread::sleep((next - now).min(duration.saturating_sub(start.elapsed())));
            }
        }
    }
    Ok(RecordStats {
        polls,
        lines: recorder.lines(),
    })
}

/// What the poller thread hands the event loop: a poll, or why one failed.
pub type Polled = Result<Poll, TelemetryError>;

/// Polls `source` on a thread of its own, once per `every` (NVML calls take
/// a driver lock and may stall: never on the event loop). The thread ends
/// when the source does (the end of a trace) or the receiver is dropped.
pub fn spawn_poller(
    mut source: Box<dyn TelemetrySource>,
    every: Duration,
) -> io::Result<tokio::sync::mpsc::Receiver<Polled>> {
    let (sender, receiver) = tokio::sync::mpsc::channel(16);
    std::thread::Builder::new()
        .name("assay-gpu-telemetry".into())
        .spawn(move || {
            loop {
                let polled = match source.poll() {
                    Ok(Some(poll)) => Ok(poll),
                    Ok(None) => return,
                    Err(err) => Err(err),
                };
                if sender.blocking_send(polled).is_err() {
                    return;
                }
                std::thread::sleep(every);
            }
        })?;
    Ok(receiver)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(t_ms: u64) -> DeviceSample {
        DeviceSample {
            t_ms,
            index: 0,
            uuid: "GPU-0".into(),
            name: "NVIDIA A100-SXM4-80GB".into(),
            gpu_util_pct: Some(97),
            mem_util_pct: Some(41),
            mem_used_bytes: Some(60 << 30),
            mem_total_bytes: Some(80 << 30),
            power_mw: Some(350_000),
            power_limit_mw: Some(400_000),
            sm_clock_mhz: Some(1410),
            mem_clock_mhz: Some(1593),
            pcie_tx_kbps: Some(12_000),
            pcie_rx_kbps: Some(800_000),
        }
    }

    #[test]
    fn a_record_round_trips_through_its_json_line() {
        let records = [
            TraceRecord::Device(device(1_000)),
            TraceRecord::Process(ProcessSample {
                t_ms: 1_000,
                device_index: 0,
                pid: 4242,
                used_mem_bytes: Some(59 << 30),
                sm_util_pct: None,
                mem_util_pct: Some(40),
            }),
        ];
        for record in records {
            let line = serde_json::to_string(&record).unwrap();
            assert!(!line.contains('\n'));
            assert_eq!(serde_json::from_str::<TraceRecord>(&line).unwrap(), record);
        }
    }

    #[test]
    fn unsupported_fields_are_left_out_of_the_line() {
        let mut sample = device(5);
        sample.pcie_tx_kbps = None;
        sample.power_limit_mw = None;
        let line = serde_json::to_string(&TraceRecord::Device(sample)).unwrap();
        assert!(line.starts_with(r#"{"type":"device","t_ms":5,"#), "{line}");
        assert!(!line.contains("pcie_tx_kbps") && !line.contains("power_limit_mw"));
    }

    #[test]
    fn processes_are_enumerated_at_the_first_poll_then_every_ten_seconds() {
        let mut schedule = ProcessSchedule::new(PROCESS_INTERVAL);
        let t0 = Instant::now();
        let due: Vec<u64> = (0..=30)
            .filter(|s| schedule.due(t0 + Duration::from_secs(*s)))
            .collect();
        assert_eq!(due, [0, 10, 20, 30]);
    }

    struct Counting(u64);

    impl TelemetrySource for Counting {
        fn name(&self) -> &'static str {
            "counting"
        }
        fn interval(&self) -> Duration {
            Duration::ZERO
        }
        fn poll(&mut self) -> Result<Option<Poll>, TelemetryError> {
            if self.0 == 3 {
                return Ok(None);
            }
            self.0 += 1;
            Ok(Some(Poll {
                devices: vec![device(self.0 * 1000)],
                processes: (self.0 == 1).then(Vec::new),
            }))
        }
    }

    #[test]
    fn record_writes_every_poll_until_the_source_ends() {
        let mut out = Vec::new();
        let stats = record(&mut Counting(0), &mut out, Duration::from_secs(60)).unwrap();
        assert_eq!(stats, RecordStats { polls: 3, lines: 3 });
        let text = String::from_utf8(out).unwrap();
        let times: Vec<u64> = text
            .lines()
            .map(|l| serde_json::from_str::<TraceRecord>(l).unwrap().t_ms())
            .collect();
        assert_eq!(times, [1000, 2000, 3000]);
    }
}
