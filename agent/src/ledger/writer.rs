//! The ledger's own thread: the agent's loop hands it each finished minute
//! through a bounded channel and never waits; the thread attributes energy,
//! writes the minute in one transaction, and keeps the file rolled up and
//! within its retention once an hour. With `--nats`, it then publishes the
//! minute's stored rows to the fleet stream ([`super::fleet`]).
//!
//! If the thread falls behind (a slow disk), minutes wait in the loop's
//! hands, up to [`MAX_WAITING`], and are handed over at the next minute;
//! beyond that the oldest is dropped and counted, never the loop stalled.

use std::{
    collections::{BTreeMap, VecDeque},
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
        mpsc::{self, SyncSender, TrySendError},
    },
    thread::JoinHandle,
};

use tracing::{error, info, warn};

use super::{
    Minute, Options,
    energy::{self, HostCpu, Rapl},
    store::{self, Store},
};

/// Minutes the loop keeps while the thread is behind.
pub const MAX_WAITING: usize = 120;
/// Minutes between two maintenance passes.
const MAINTAIN_EVERY: u64 = 60;

/// What the thread did, for metrics and the stop summary.
#[derive(Debug, Default)]
pub struct Stats {
    pub minutes_written: AtomicU64,
    pub write_errors: AtomicU64,
    pub minutes_dropped: AtomicU64,
    /// Joules written, by (class, source).
    pub energy: Mutex<BTreeMap<(String, &'static str), f64>>,
}

/// Where the ledger's rows also go: the fleet stream, as this host.
pub struct Publish {
    pub fleet: crate::sinks::fleet::Fleet,
    pub host: String,
}

pub struct Writer {
    tx: Option<SyncSender<Minute>>,
    waiting: VecDeque<Minute>,
    thread: Option<JoinHandle<()>>,
    pub stats: Arc<Stats>,
}

impl Writer {
    /// Starts the thread; the ledger file is opened there (a check of a
    /// large file takes a while), and an error there is logged and turns
    /// the ledger off.
    pub fn start(dir: PathBuf, options: Options, publish: Option<Publish>) -> Self {
        let (tx, rx) = mpsc::sync_channel::<Minute>(4);
        let stats = Arc::new(Stats::default());
        let shared = Arc::clone(&stats);
        let thread = std::thread::Builder::new()
            .name("assay-ledger".into())
            .spawn(move || run(dir, options, rx, &shared, publish.as_ref()))
            .map_err(|err| error!("cannot start the ledger thread: {err}"))
            .ok();
        Self {
            tx: Some(tx),
            waiting: VecDeque::new(),
            thread,
            stats,
        }
    }

    /// Hands a finished minute over, with any that waited; never blocks.
    pub fn send(&mut self, minute: Minute) {
        if minute.workloads.is_empty() {
            return;
        }
        self.waiting.push_back(minute);
        while self.waiting.len() > MAX_WAITING {
            self.waiting.pop_front();
            self.stats.minutes_dropped.fetch_add(1, Ordering::Relaxed);
        }
        let Some(tx) = self.tx.as_ref() else {
            return;
        };
        while let Some(next) = self.waiting.pop_front() {
            match tx.try_send(next) {
                Ok(()) => {}
                Err(TrySendError::Full(next)) => {
                    self.waiting.push_front(next);
                    break;
                }
                Err(TrySendError::Disconnected(_)) => {
                    // The thread ended (its file could not be opened).
                    self.tx = None;
                    self.waiting.clear();
                    break;
                }
            }
        }
    }

    /// The last (partial) minute, then the thread finishes its writes; the
    /// caller bounds the wait.
    pub fn finish(mut self, last: Minute) -> Option<JoinHandle<()>> {
        if !last.workloads.is_empty() {
            self.waiting.push_back(last);
        }
        if let Some(tx) = self.tx.take() {
            for minute in self.waiting.drain(..) {
                // The loop has ended: waiting here is fine.
                if tx.send(minute).is_err() {
                    break;
                }
            }
        }
        self.thread.take()
    }
}

fn run(
    dir: PathBuf,
    options: Options,
    rx: mpsc::Receiver<Minute>,
    stats: &Stats,
    publish: Option<&Publish>,
) {
    let (mut store, aside) = match Store::open(&dir) {
        Ok(opened) => opened,
        Err(err) => {
            error!("{err}: the compute-use ledger is off");
            return;
        }
    };
    if let Some(aside) = aside {
        error!(
            aside = %aside.to.display(),
            "the ledger was corrupt or truncated ({}): set aside, a fresh one started",
            aside.reason
        );
    }
    info!(path = %dir.join(super::LEDGER_FILE).display(), "compute-use ledger open");
    let run_id = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
    );
    let mut rapl = Rapl::discover(&options.powercap);
    let mut host = HostCpu::new(&options.proc_stat);
    // Baselines: the first minute's counters start here.
    let _ = rapl.as_mut().map(Rapl::joules_since_last);
    let _ = host.busy_since_last();
    let host_root = crate::correlate::policy::host_root();
    let mut seq = 0u64;
    let mut last_maintained: Option<i64> = None;
    for mut minute in rx {
        for usage in minute.workloads.values_mut() {
            if let Some((path, running)) = usage.exe_check.take()
                && crate::correlate::policy::is_running_file(&host_root, &path, running)
            {
                usage.subject.exe = Some(path);
            }
        }
        let rapl_j = rapl.as_mut().and_then(Rapl::joules_since_last);
        energy::attribute(&mut minute, rapl_j, host.busy_since_last(), &options);
        seq += 1;
        let mut tries = 0;
        loop {
            match store.apply(&run_id, seq, &minute) {
                Ok(_) => {
                    stats.minutes_written.fetch_add(1, Ordering::Relaxed);
                    count_energy(stats, &minute);
                    if let Some(publish) = publish {
                        publish_minute(&store, publish, minute.minute);
                    }
                    break;
                }
                Err(err) => {
                    stats.write_errors.fetch_add(1, Ordering::Relaxed);
                    tries += 1;
                    if tries >= 3 {
                        warn!(
                            minute = minute.minute,
                            "ledger write failed, minute lost: {err}"
                        );
                        break;
                    }
                    warn!(
                        minute = minute.minute,
                        "ledger write failed, retrying: {err}"
                    );
                    std::thread::sleep(std::time::Duration::from_millis(500));
                }
            }
        }
        if last_maintained.is_none_or(|at| minute.minute - at >= MAINTAIN_EVERY as i64) {
            last_maintained = Some(minute.minute);
            match store.maintain(
                minute.minute,
                options.rollup_after_days,
                options.retention_days,
            ) {
                Ok((rolled, deleted)) if rolled + deleted > 0 => {
                    info!(rolled, deleted, "ledger rolled up and expired")
                }
                Ok(_) => {}
                Err(err) => warn!("ledger maintenance failed: {err}"),
            }
        }
    }
}

/// The minute as stored (with what an earlier run wrote of it) to the
/// fleet stream, one row per workload.
fn publish_minute(store: &Store, publish: &Publish, minute: i64) {
    match store.minute_rows(&publish.host, minute) {
        Ok(rows) => {
            for row in rows {
                publish.fleet.push_ledger(row.msg_id(), row.encode());
            }
        }
        Err(err) => warn!(
            minute,
            "cannot read the minute back for the fleet stream: {err}"
        ),
    }
}

fn count_energy(stats: &Stats, minute: &Minute) {
    let Ok(mut energy) = stats.energy.lock() else {
        return;
    };
    for usage in minute.workloads.values() {
        let classes = store::classes_of(usage);
        let n = classes.len() as f64;
        for class in classes {
            for (source, joules) in [
                ("rapl", usage.energy_rapl_j),
                ("nvml", usage.energy_nvml_j),
                ("estimated", usage.energy_estimated_j),
            ] {
                if joules > 0.0 {
                    *energy.entry((class.clone(), source)).or_insert(0.0) += joules / n;
                }
            }
        }
    }
}
