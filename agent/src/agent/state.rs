//! What the event loop drives: the tables, the sensors' user-space halves,
//! the workers, and the reporter; decoding, dispatch, the 1 s tick, and the
//! one place where a process's state is forgotten.

use std::{collections::HashSet, path::Path, time::Duration};

use assay_classify::flow::{CADENCE_AFTER_NS, FlowTable, Observed};
use assay_common::config::counter;
use aya::maps::{MapData, PerCpuArray, RingBuf};
use tracing::warn;

use super::work::Done;
use crate::{
    correlate::{Change, persist},
    evidence::Evidence,
    procfs::workers::Workers,
    sensors::{
        cpu_time::CpuTime,
        cuda::CudaSensor,
        decode::{self, DecodeError, Event},
        flow as flow_sensor,
        fpu::FpuSensor,
        pmu::HardwareCounters,
    },
    sinks::{
        Ancestor, CpuUse,
        report::{Context, Reporter},
    },
    tables::{
        peers::PeerBook,
        processes::{self, ProcessInfo, ProcessTable},
        resolvers::ResolverBook,
        workload::Workload,
    },
    time::monotonic_ns,
};

/// Flows idle this long are forgotten by user space.
const FLOW_IDLE: Duration = Duration::from_secs(600);
/// Ticks between two passes that forget idle flows: a pass walks the whole
/// flow table, whose boxes are cold once it is full (after a connection
/// storm, a pass every tick cost an idle agent 0.5 % of a core), and a flow
/// idle for [`FLOW_IDLE`] can wait a few seconds more.
const EXPIRE_EVERY_TICKS: u64 = 10;
const MAX_PROCESSES: usize = 65_536;
/// Seconds per CPU-fingerprint window.
const FPU_WINDOW_TICKS: u64 = 2;
/// Flows user space remembers: 7/8 of a power of two, so that the hash
/// table stays at 32 768 buckets (~10 MiB) instead of doubling. The oldest
/// go first; the kernel's own flow map (65 536, LRU) is separate.
const MAX_FLOWS: usize = 28_672;
/// Ancestors named in a finding.
pub(super) const ANCESTORS_IN_FINDING: usize = 8;
/// Records handled per drain, at most: under a storm the loop still gets
/// to its signals, ticks and workers between drains (the rest waits in the
/// rings, whose drops are counted).
const DRAIN_BUDGET: usize = 65_536;
/// Opaque flows asked for more samples per tick, at most.
const CADENCE_REQUESTS_PER_TICK: usize = 256;
/// Ticks between two decay passes of the correlator.
const DECAY_EVERY_TICKS: u64 = 10;
/// Ticks between listings of /proc that catch lost exits.
const RECONCILE_EVERY_TICKS: u64 = 30;

/// What the agent knows, kept up to date by the sensors.
pub(super) struct Tables {
    pub processes: ProcessTable,
    pub flows: FlowTable,
    pub peers: PeerBook,
    pub resolvers: ResolverBook,
}

/// What user space rejected, skipped or could not use; logged, never
/// silent.
#[derive(Debug, Default)]
pub(super) struct Stats {
    pub events: u64,
    pub decode_errors: u64,
    pub stratum_rejections: u64,
    /// Samples the kernel took past a flow's budget because its JSON text
    /// was still blank or had a line open.
    pub flow_samples_held: u64,
    /// Flow directions that reached the hold cap still blank or with a
    /// line open: what came after was not read (padding past the cap is
    /// how a client would hide its login).
    pub flow_holds_exhausted: u64,
    pub unattributed_stratum: u64,
    /// Observations on flows whose owner could not be found.
    pub unattributed_observations: u64,
    /// Snapshots of the socket tables taken to find adopted flows' owners.
    pub socket_snapshots: u64,
    /// Config files and other files processes name that were not read,
    /// and why is in the debug log (a FIFO, a symlink out of the root…).
    pub named_files_refused: u64,
    /// Processes ended by reconciliation with /proc: their exit event was
    /// lost.
    pub exits_reconciled: u64,
    /// Closed CUDA windows not judged: every worker was busy reading.
    pub cuda_windows_unjudged: u64,
    pub kernel_counters: [u64; counter::COUNT as usize],
}

pub(super) struct Agent {
    pub tables: Tables,
    pub reporter: Reporter,
    pub(super) workers: Workers<Done>,
    /// Names and pool domains evidence is reported with.
    pub(super) catalogue: &'static assay_classify::catalogue::Catalogue,
    counters: PerCpuArray<MapData, u64>,
    pub(super) fpu: FpuSensor,
    /// Where more samples of a flow are asked for.
    pub(super) rearm: Option<flow_sensor::Rearm>,
    /// On-CPU time per process (absent when the map could not be taken).
    pub cpu_time: Option<CpuTime>,
    /// Hardware counters of busy processes (absent without a PMU).
    pub pmu: Option<HardwareCounters>,
    /// The CUDA driver sensor (absent without uprobes).
    pub cuda: Option<CudaSensor>,
    /// GPU telemetry aggregated (absent without NVML or a replay).
    pub(super) gpu_window: Option<assay_classify::gpu::window::TelemetryWindow>,
    pub gpu_telemetry: bool,
    pub(super) gpu_errors: u64,
    /// Each sensor and whether it runs (for metrics).
    pub sensors: Vec<(&'static str, bool)>,
    /// Seconds between workload summaries on the fleet stream.
    pub summary_every_s: u64,
    /// Busy processes whose config file and mappings were looked at.
    pub(super) busy_checked: HashSet<u32>,
    /// What processes on TLS 1.3 links without ALPN run (storage proving).
    pub(super) storage: super::storage::StorageWatch,
    /// Observations waiting for an adopted flow's owner, with the number
    /// of lookups tried.
    pub(super) pending: Vec<(u64, Observed, u32)>,
    /// GPU libraries a worker's maps scan found, for the CUDA sensor to
    /// probe at the next drain (attaching needs the eBPF object).
    pub(super) found_cuda_libraries: Vec<crate::procfs::libraries::Mapped>,
    /// The record at the head of each ring, copied out (the merge needs
    /// all three at once), with its kernel time; the buffers are reused.
    heads: [(Option<u64>, Vec<u8>); 3],
    /// The work-loop detector's watched flows and CPU histories.
    pub(super) work_loop: super::work_loop::WorkLoopWatch,
    /// A socket-table snapshot is being taken on a worker.
    pub(super) snapshot_in_flight: bool,
    /// Evidence waiting for its process's command line.
    pub(super) held_for_command_line: Vec<super::work::AwaitingCommandLine>,
    /// The compute-use ledger's feed (`--state-dir`, unless `--no-ledger`).
    pub(super) ledger: Option<super::ledger::LedgerFeed>,
    pub(super) ticks: u64,
    pub stats: Stats,
}

impl Agent {
    pub(super) fn new(
        reporter: Reporter,
        workers: Workers<Done>,
        counters: PerCpuArray<MapData, u64>,
        fpu: FpuSensor,
        sample_segments: u32,
        catalogue: &'static assay_classify::catalogue::Catalogue,
    ) -> Self {
        Self {
            catalogue,
            tables: Tables {
                processes: ProcessTable::new(MAX_PROCESSES),
                flows: FlowTable::new(MAX_FLOWS, sample_segments),
                peers: PeerBook::default(),
                resolvers: ResolverBook::default(),
            },
            reporter,
            workers,
            counters,
            fpu,
            rearm: None,
            cpu_time: None,
            pmu: None,
            cuda: None,
            gpu_window: None,
            gpu_telemetry: false,
            gpu_errors: 0,
            sensors: Vec::new(),
            summary_every_s: 60,
            busy_checked: HashSet::new(),
            storage: Default::default(),
            pending: Vec::new(),
            found_cuda_libraries: Vec::new(),
            heads: Default::default(),
            work_loop: Default::default(),
            snapshot_in_flight: false,
            held_for_command_line: Vec::new(),
            ledger: None,
            ticks: 0,
            stats: Stats::default(),
        }
    }

    /// Before the loop: the processes that predate the agent, the verdicts
    /// a previous run left open, and the command lines already running.
    pub(super) fn start(&mut self, state_dir: Option<&Path>) {
        self.tables.processes.scan_proc();
        if self.gpu_telemetry {
            self.gpu_window = Some(assay_classify::gpu::window::TelemetryWindow::new(
                assay_classify::gpu::window::DEFAULT_SPAN,
            ));
        }
        if let Some(dir) = state_dir {
            // Before anything is acted on: what a killed agent left frozen
            // or throttled is undone.
            self.reporter.enforcer.recover(dir);
            let restored = persist::restore(&mut self.reporter.correlator, dir, |pid| {
                Path::new(&format!("/proc/{pid}")).exists()
            });
            for (id, level) in restored.reported {
                self.reporter.already_reported(id, level);
            }
            for verdict in restored.gone {
                self.reporter
                    .write(Change::Resolved, &verdict, None, Context::default());
            }
        }
        // Their command lines are read on workers, and judged as they come.
        self.read_command_lines();
    }

    /// Drains every ring, and handles what they held in the kernel's
    /// order. Each event family has its own ring, so a process's exec,
    /// its flow samples and its exit arrive in different rings: handled
    /// ring by ring, its exit would come before its last samples and they
    /// would find no process. A record is committed before the event that
    /// follows it in its task happens (a sample is sent before the process
    /// exits), so everything one drain reads sorts by timestamp into the
    /// kernel's order.
    ///
    /// The rings are merged as they are read, one record per ring at a
    /// time: memory stays at three records however full the rings are
    /// (copying whole rings out to sort them cost megabytes at a storm's
    /// peak).
    pub(super) fn drain(&mut self, mut rings: [&mut RingBuf<MapData>; 3]) {
        let mut heads = std::mem::take(&mut self.heads);
        for (ring, head) in rings.iter_mut().zip(heads.iter_mut()) {
            refill(ring, head);
        }
        for _ in 0..DRAIN_BUDGET {
            let next = heads
                .iter()
                .enumerate()
                .filter_map(|(i, (timestamp, _))| Some((timestamp.as_ref().copied()?, i)))
                .min();
            let Some((_, i)) = next else {
                break;
            };
            self.handle(&heads[i].1);
            refill(rings[i], &mut heads[i]);
        }
        // At the budget, the heads already taken off their rings cannot go
        // back: they are handled now, in their order, and the rest of the
        // rings waits for the next drain.
        let mut left: Vec<(u64, usize)> = heads
            .iter()
            .enumerate()
            .filter_map(|(i, (timestamp, _))| Some((timestamp.as_ref().copied()?, i)))
            .collect();
        left.sort_unstable();
        for (_, i) in left {
            self.handle(&heads[i].1);
            heads[i].0 = None;
        }
        self.heads = heads;
    }

    fn handle(&mut self, record: &[u8]) {
        self.stats.events += 1;
        match decode::decode(record) {
            Ok(event) => self.on_event(event),
            Err(err) => self.on_decode_error(err),
        }
    }

    fn on_decode_error(&mut self, err: DecodeError) {
        self.stats.decode_errors += 1;
        // The first few in full, then every thousandth: a flood of bad
        // records must not become a flood of logs.
        if self.stats.decode_errors <= 5 || self.stats.decode_errors.is_multiple_of(1000) {
            warn!(
                total = self.stats.decode_errors,
                "rejected ring buffer record: {err}"
            );
        }
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Exec(exec) => {
                self.tables.processes.on_exec(&exec);
                let tgid = exec.header.tgid;
                // A new program image: what was learnt of the old one's
                // files and mappings no longer holds.
                self.busy_checked.remove(&tgid);
                self.storage.forget(tgid);
                self.check_command_line(tgid);
                if let Some(cuda) = self.cuda.as_mut() {
                    cuda.on_exec(tgid);
                }
            }
            Event::Cuda(event) => {
                if let Some(cuda) = self.cuda.as_mut() {
                    cuda.on_event(&event);
                }
            }
            Event::Fork(fork) => self.tables.processes.on_fork(
                fork.header.tgid,
                fork.child_tgid,
                fork.header.timestamp_ns,
                fork.header.cgroup_id,
            ),
            Event::Hygiene(event) => self.on_hygiene(&event),
            Event::Exit(exit) => self.on_exit(exit.header.tgid),
            Event::Sample(sample) => {
                if let Some(owner) = flow_sensor::owner_of(&sample) {
                    let (tgid, cgroup_id) = (owner.tgid, owner.cgroup_id);
                    flow_sensor::on_owner(&mut self.tables.flows, &sample, owner);
                    self.tables.processes.note_cgroup(tgid, cgroup_id);
                    // Make sure the connecting process is known while it is
                    // alive.
                    let _ = self.tables.processes.get_or_load(tgid);
                }
                self.on_sample(&sample);
            }
        }
    }

    /// A process ended: its verdicts that named only it resolve, and every
    /// structure that keeps state per process forgets it, here and nowhere
    /// else.
    fn on_exit(&mut self, tgid: u32) {
        let process = self.tables.processes.on_exit(tgid);
        let unpolled = self.forget_process(tgid);
        self.ledger_exit(tgid, process.as_ref(), unpolled);
        for verdict in self.reporter.correlator.process_exited(tgid) {
            let context = Context {
                process: process.as_ref(),
                ..Context::default()
            };
            self.reporter
                .write(Change::Resolved, &verdict, None, context);
        }
    }

    /// Asks a worker for a listing of /proc, to catch exits that were lost.
    fn list_processes(&mut self) {
        let _ = self
            .workers
            .submit(|| Done::Listing(processes::list_proc()));
    }

    /// Processes the agent holds as running that a listing of /proc did not
    /// show, and that are still gone now, exited without an event reaching
    /// us (the process ring was full): they are ended as if it had come.
    pub(super) fn reconcile(&mut self, taken_ns: u64, listed: &HashSet<u32>) {
        let mut gone = self.tables.processes.missing_from(listed, taken_ns);
        gone.extend(
            self.reporter
                .correlator
                .named_pids()
                .filter(|pid| !listed.contains(pid) && self.tables.processes.get(*pid).is_none()),
        );
        gone.sort_unstable();
        gone.dedup();
        for tgid in gone {
            if !processes::in_proc(tgid) {
                self.stats.exits_reconciled += 1;
                self.on_exit(tgid);
            }
        }
    }

    /// Every per-process structure, forgotten in one place. Returns the
    /// CPU core-seconds it ran since the last poll.
    pub(super) fn forget_process(&mut self, tgid: u32) -> f64 {
        self.tables.peers.forget(tgid);
        self.tables.resolvers.forget(tgid);
        self.busy_checked.remove(&tgid);
        self.storage.forget(tgid);
        self.fpu.forget(tgid);
        self.work_loop.forget(tgid);
        if let Some(pmu) = self.pmu.as_mut() {
            pmu.forget(tgid);
        }
        if let Some(cuda) = self.cuda.as_mut() {
            cuda.on_exit(tgid);
        }
        let ledger = self.ledger.is_some();
        self.cpu_time
            .as_mut()
            .map_or(0.0, |cpu_time| cpu_time.process_exited(tgid, ledger))
    }

    /// Once a second.
    pub(super) fn tick(&mut self, ebpf: &mut aya::Ebpf) {
        self.ticks += 1;
        self.read_kernel_counters();
        self.enforce_pending();
        self.retry_pending();
        self.release_overdue();
        if let Some(cpu_time) = self.cpu_time.as_mut() {
            cpu_time.poll();
        }
        self.ledger_tick();
        self.work_loop_tick();
        self.check_busy_processes();
        self.read_command_lines();
        if self.ticks.is_multiple_of(RECONCILE_EVERY_TICKS) {
            self.list_processes();
        }
        if self
            .ticks
            .is_multiple_of(super::memory::RELEASE_EVERY_TICKS)
        {
            // Skipped when the workers are all busy: the next period will do.
            let _ = self.workers.submit(|| {
                super::memory::release_free_memory();
                Done::Undone
            });
        }
        self.cuda_tick(ebpf);
        if self.ticks.is_multiple_of(FPU_WINDOW_TICKS) {
            let processes = &self.tables.processes;
            // The root cgroup (id 1) and unknown ones (0) are no workload.
            let found = self.fpu.poll(|tgid| {
                processes
                    .get(tgid)
                    .map(|p| p.cgroup_id)
                    .filter(|&id| id > 1)
            });
            for finding in found.processes {
                self.on_randomx(finding);
            }
            for finding in found.workloads {
                self.on_randomx_workload(finding);
            }
        }
        let now_s = unix_now_s();
        if now_s.is_multiple_of(self.summary_every_s) {
            self.reporter
                .publish_summaries(now_s / self.summary_every_s);
        }
        // Verdicts whose evidence is all forgotten resolve.
        if self.ticks.is_multiple_of(DECAY_EVERY_TICKS) {
            for verdict in self.reporter.correlator.decay(monotonic_ns()) {
                let pid = verdict.evidence.last().map_or(0, |e| e.pid);
                let process = self.tables.processes.get(pid).cloned();
                let context = Context {
                    process: process.as_ref(),
                    ..Context::default()
                };
                self.reporter
                    .write(Change::Resolved, &verdict, None, context);
            }
        }
        let now = monotonic_ns();
        self.tables.resolvers.expire(now);
        for (cookie, limit) in
            self.tables
                .flows
                .request_cadence(now, CADENCE_AFTER_NS, CADENCE_REQUESTS_PER_TICK)
        {
            self.raise_sample_limit(cookie, limit);
            self.count_binary_peer(cookie);
        }
        if self.ticks.is_multiple_of(EXPIRE_EVERY_TICKS) {
            self.tables.flows.expire(now, FLOW_IDLE.as_nanos() as u64);
        }
    }

    fn read_kernel_counters(&mut self) {
        for index in 0..counter::COUNT {
            let Ok(values) = self.counters.get(&index, 0) else {
                continue;
            };
            let total: u64 = values.iter().sum();
            let slot = &mut self.stats.kernel_counters[index as usize];
            if total > *slot && counter::is_loss(index) {
                warn!(
                    counter = counter::NAMES[index as usize],
                    total,
                    new = total - *slot,
                    "kernel side dropped or skipped events"
                );
            }
            *slot = (*slot).max(total);
        }
    }

    /// Hands evidence to the correlator and writes the finding it yields;
    /// `first_packet_ns`: when the flow behind it first carried payload
    /// (the finding says how long after that it was decided).
    pub(super) fn report(&mut self, evidence: Evidence, first_packet_ns: Option<u64>) {
        if let Some((evidence, first_packet_ns)) =
            self.hold_for_command_line(evidence, first_packet_ns)
        {
            self.report_now(evidence, first_packet_ns);
        }
    }

    /// [`Self::report`], with nothing left to wait for.
    pub(super) fn report_now(&mut self, evidence: Evidence, first_packet_ns: Option<u64>) {
        let Some((change, verdict)) = self.reporter.observe(evidence.clone()) else {
            return;
        };
        let process = self
            .tables
            .processes
            .get_for_evidence(evidence.pid)
            .cloned();
        let context = Context {
            process: process.as_ref(),
            ancestors: process
                .as_ref()
                .map(|p| self.ancestors(p.pid))
                .unwrap_or_default(),
            cpu: process.as_ref().and_then(|p| self.cpu_use(p)),
            decided_after_ms: first_packet_ns
                .map(|ns| monotonic_ns().saturating_sub(ns) as f64 / 1e6),
        };
        self.reporter
            .write(change, &verdict, Some(&evidence), context);
        // AI verdicts of the same workload that this (chain) evidence
        // made incentivised compute.
        for marked in self.reporter.correlator.take_incentive_updates() {
            self.reporter
                .write(Change::Updated, &marked, None, Context::default());
        }
        self.enforce_pending();
    }

    /// Evidence about a live process, seen now: `what` follows "pid N
    /// (comm) " in the summary.
    pub(super) fn evidence_about(
        &mut self,
        tgid: u32,
        kind: crate::evidence::EvidenceKind,
        strength: f32,
        decisive: bool,
        what: &str,
        attributes: serde_json::Map<String, serde_json::Value>,
    ) -> Evidence {
        let process = self.tables.processes.get_for_evidence(tgid);
        let comm = process.map(|p| p.comm.as_str()).unwrap_or("?");
        Evidence::new(
            process
                .map(ProcessInfo::workload)
                .unwrap_or(Workload::Process { tgid }),
            tgid,
            kind,
            strength,
            decisive,
            format!("pid {tgid} ({comm}) {what}"),
            attributes,
            std::time::SystemTime::now(),
        )
    }

    fn ancestors(&self, pid: u32) -> Vec<Ancestor> {
        self.tables
            .processes
            .ancestors(pid, ANCESTORS_IN_FINDING)
            .into_iter()
            .map(|p| Ancestor {
                pid: p.pid,
                comm: p.comm.clone(),
                exe: p.exe.clone(),
            })
            .collect()
    }

    /// CPU use of the process and of every process in its cgroup, over the
    /// CPU-time window, with its hardware counters where a PMU exists.
    fn cpu_use(&mut self, process: &ProcessInfo) -> Option<CpuUse> {
        let counters = self.pmu.as_mut().and_then(|pmu| pmu.read(process.pid));
        let accounts = &self.cpu_time.as_ref()?.accounts;
        let process_cores = accounts.cores(process.pid).unwrap_or(0.0);
        let cgroup_cores = (process.cgroup_id != 0).then(|| {
            accounts
                .busy()
                .filter(|(tgid, _)| {
                    *tgid == process.pid
                        || self
                            .tables
                            .processes
                            .get(*tgid)
                            .is_some_and(|p| p.cgroup_id == process.cgroup_id)
                })
                .map(|(_, cores)| cores)
                .sum::<f64>()
        });
        let mut cpu = CpuUse::new(process_cores, cgroup_cores);
        cpu.hardware_counters = counters;
        Some(cpu)
    }

    /// After the loop: the kernel counters once more, verdicts saved, sinks
    /// closed, and the summary logged.
    pub(super) async fn stop(mut self, state_dir: Option<&Path>, grace: Duration) {
        self.read_kernel_counters();
        self.release_held(|_| true);
        // The agent's exit leaves nothing behind: frozen cgroups thawed,
        // cpu.max restored.
        self.reporter.enforcer.undo_all();
        if let Some(dir) = state_dir {
            persist::save(&self.reporter.correlator, dir);
        }
        self.ledger_finish(grace).await;
        self.log_summary();
        self.reporter.close(grace).await;
    }
}

/// Seconds since the epoch (for "every N seconds" on the 1 s tick).
fn unix_now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// Copies the next record of `ring` into `head` (its kernel time, and
/// its bytes in the reused buffer); `None` time when the ring is empty.
fn refill(ring: &mut RingBuf<MapData>, head: &mut (Option<u64>, Vec<u8>)) {
    head.1.clear();
    head.0 = ring.next().map(|record| {
        head.1.extend_from_slice(&record);
        decode::timestamp_of(&record)
    });
}
