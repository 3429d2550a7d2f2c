//! The running agent: drains the ring buffer, keeps the process and flow
//! tables, runs classifiers, feeds the correlator and writes findings.
//!
//! Single-threaded on purpose: events arrive in kernel order through one
//! ring buffer, and every table is touched by one owner, without locks.

use std::{
    collections::{HashMap, HashSet},
    fs,
    time::Duration,
};

use anyhow::{Context as _, Result, bail};
use assay_common::{config::counter, event::SampleEvent, flow::FlowState};
use aya::maps::{HashMap as BpfHashMap, MapData, PerCpuArray, PerCpuHashMap, RingBuf};
use serde_json::{Map, json};
use tokio::{
    io::unix::AsyncFd,
    signal::unix::{SignalKind, signal},
};
use tracing::{debug, info, warn};

use crate::{
    classify::flow::{CADENCE_AFTER_NS, FlowTable, Observation, Observed, Origin, Owner, Role},
    classify::{Direction, cmdline, dns::PoolDomains, p2p},
    correlate::{Change, Correlator, Verdict},
    evidence::hygiene,
    evidence::network::{self, FlowFacts},
    evidence::{Evidence, EvidenceKind},
    kernel::loader::{self, LoadOptions},
    procfs::sockets,
    sensors::cpu_time::CpuTime,
    sensors::cuda::{self, CudaSensor},
    sensors::decode::{self, DecodeError, Event, c_string},
    sensors::fpu::{self, FpuSensor},
    sinks::{Ancestor, CpuUse, Finding, Outputs, RotatingFile},
    tables::processes::{ProcessInfo, ProcessTable},
    tables::workload::Workload,
    time::{monotonic_ns, wall_of_monotonic},
};

/// Flows idle this long are forgotten by user space.
const FLOW_IDLE: Duration = Duration::from_secs(600);
const MAX_PROCESSES: usize = 65_536;
/// Seconds per CPU-fingerprint window.
const FPU_WINDOW_TICKS: u64 = 2;
/// How often the ring buffer is drained when the kernel did not wake us.
const DRAIN_PERIOD: Duration = Duration::from_millis(50);
/// Flows user space remembers: 7/8 of a power of two, so that the hash
/// table stays at 32 768 buckets (~10 MiB) instead of doubling. The oldest
/// go first; the kernel's own flow map (65 536, LRU) is separate.
const MAX_FLOWS: usize = 28_672;
/// Ticks an observation on an adopted flow waits for its owner.
const OWNER_LOOKUP_ATTEMPTS: u32 = 5;
/// How long a name asked of a local DNS server marks its forwarding.
const SERVED_NAME_TTL: Duration = Duration::from_secs(10);
/// Names remembered for that, at most.
const MAX_SERVED_NAMES: usize = 4096;
/// Local resolvers remembered (processes that received a DNS query).
const MAX_RESOLVERS: usize = 1024;
/// A process using at least this many cores gets its config file read
/// for pool URLs and wallets (once).
const CONFIG_CHECK_AT_CORES: f64 = 0.5;
/// Processes whose config was checked, remembered at most.
const MAX_CONFIG_CHECKED: usize = 16_384;
/// Config files larger than this are not miner configs.
const MAX_CONFIG_FILE: u64 = 1 << 20;
/// The saved open verdicts in `--state-dir`.
const STATE_FILE: &str = "verdicts.json";
/// Ancestors named in a finding.
const ANCESTORS_IN_FINDING: usize = 8;
/// Observations waiting for their flow's owner, at most.
const MAX_PENDING_OBSERVATIONS: usize = 1024;
/// Distinct libp2p peers remembered per process (gossip fan-out).
const MAX_PEERS_PER_PROCESS: usize = 256;

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub load: LoadOptions,
    pub host: Option<String>,
    /// Driver and NVRTC libraries to probe besides those found.
    pub cuda_libraries: Vec<std::path::PathBuf>,
    pub launch_duty: cuda::DutyCycle,
    /// Replay this GPU telemetry trace instead of polling NVML.
    pub gpu_replay: Option<std::path::PathBuf>,
    pub policy: crate::correlate::policy::Policy,
    /// Where open verdicts are kept across restarts.
    pub state_dir: Option<std::path::PathBuf>,
    pub format: crate::sinks::Format,
    /// Also write findings to this file, rotated at `output_file_max_bytes`
    /// keeping `output_file_keep` old ones.
    pub output_file: Option<std::path::PathBuf>,
    pub output_file_max_bytes: u64,
    pub output_file_keep: u32,
    /// Write findings to stdout.
    pub stdout: bool,
    /// Serve Prometheus metrics here.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Publish findings to NATS JetStream (URL, subject prefix, buffer).
    pub nats: Option<(String, String, usize)>,
    /// Seconds between workload summaries on the fleet stream.
    pub summary_every_s: u64,
    /// Write verdicts a policy `allow` rule suppressed as
    /// `verdict.suppressed` lines.
    pub log_suppressed: bool,
}

/// GPU telemetry: a source (NVML, or a replayed trace) and its window.
struct Telemetry {
    source: Box<dyn crate::sensors::gpu::telemetry::TelemetrySource>,
    window: assay_classify::gpu::window::TelemetryWindow,
    errors: u64,
}

/// What user space rejected or could not use; logged, never silent.
#[derive(Debug, Default)]
pub struct Stats {
    pub events: u64,
    pub decode_errors: u64,
    pub stratum_rejections: u64,
    pub unattributed_stratum: u64,
    /// Observations on flows whose owner could not be found.
    pub unattributed_observations: u64,
    /// Snapshots of the socket tables taken to find adopted flows' owners.
    pub socket_snapshots: u64,
    pub findings: u64,
    /// Verdict events a policy rule kept from being reported.
    pub suppressed: u64,
    pub kernel_counters: [u64; counter::COUNT as usize],
}

pub async fn run(options: RunOptions) -> Result<()> {
    let mut loaded = loader::load(&options.load)?;
    loader::log_plan(&loaded);
    if !loaded.anything_useful() {
        bail!("no sensor can run on this kernel; `assay doctor` says why");
    }
    let ring = RingBuf::try_from(
        loaded
            .ebpf
            .take_map("EVENTS")
            .context("map EVENTS missing")?,
    )?;
    let counters: PerCpuArray<MapData, u64> = PerCpuArray::try_from(
        loaded
            .ebpf
            .take_map("COUNTERS")
            .context("map COUNTERS missing")?,
    )?;
    let fpu_stats = BpfHashMap::try_from(
        loaded
            .ebpf
            .take_map("FPU_STATS")
            .context("map FPU_STATS missing")?,
    )?;
    let mut fpu = FpuSensor::new(fpu_stats);
    // SAFETY: the ring buffer owns its fd, and the AsyncFd owns the ring
    // buffer until it is dropped, before the object that created the map.
    let mut ring = unsafe { AsyncFd::register(ring) }
        .map_err(|err| anyhow::anyhow!("cannot poll the ring buffer: {err}"))?;

    let host = match options.host {
        Some(host) => host,
        None => hostname(),
    };
    let mut state = State::new(host, options.load.sample_segments);
    state.policy = options.policy.clone();
    state.sink.set_format(options.format);
    state.sink.set_stdout(options.stdout);
    state.summary_every_s = options.summary_every_s.max(1);
    if let Some((url, prefix, buffer)) = &options.nats {
        state.fleet = Some(crate::sinks::fleet::Fleet::start(
            crate::sinks::fleet::FleetOptions {
                url: url.clone(),
                prefix: prefix.clone(),
                host: state.host.clone(),
                buffer: *buffer,
            },
        ));
    }
    if let Some(path) = &options.output_file {
        let file = RotatingFile::open(
            path,
            options.output_file_max_bytes,
            options.output_file_keep,
        )
        .with_context(|| format!("cannot open the findings file {}", path.display()))?;
        state.sink.set_file(file);
    }
    state.log_suppressed = options.log_suppressed;
    state.kernel_flows = loaded
        .ebpf
        .take_map("FLOWS")
        .map(BpfHashMap::try_from)
        .transpose()?;
    state.cpu_time = loaded
        .ebpf
        .take_map("CPU_SAMPLES")
        .map(PerCpuHashMap::try_from)
        .transpose()?
        .map(CpuTime::new);
    if loaded.features.perf_hardware.is_available() {
        state.pmu = Some(crate::sensors::pmu::HardwareCounters::default());
    }
    state.telemetry = match &options.gpu_replay {
        Some(path) => match crate::sensors::gpu::replay::Replay::open(
            path,
            crate::sensors::gpu::replay::Pace::Fast,
        ) {
            Ok(replay) => {
                info!(sensor = "gpu-telemetry", trace = %path.display(), "on: replaying a trace");
                Some(Box::new(replay) as Box<dyn crate::sensors::gpu::telemetry::TelemetrySource>)
            }
            Err(err) => bail!("--gpu-replay {}: {err}", path.display()),
        },
        None => match crate::sensors::gpu::nvml::NvmlSource::open() {
            Ok(nvml) => {
                info!(
                    sensor = "gpu-telemetry",
                    devices = nvml.devices(),
                    "on: NVML"
                );
                Some(Box::new(nvml) as Box<dyn crate::sensors::gpu::telemetry::TelemetrySource>)
            }
            Err(why) => {
                warn!(sensor = "gpu-telemetry", "off: {why}");
                None
            }
        },
    }
    .map(|source| Telemetry {
        source,
        window: assay_classify::gpu::window::TelemetryWindow::new(
            assay_classify::gpu::window::DEFAULT_SPAN,
        ),
        errors: 0,
    });
    let cuda_on = loaded
        .sensors
        .iter()
        .any(|s| s.sensor == "cuda" && s.state.is_available());
    if cuda_on {
        match CudaSensor::new(
            &mut loaded.ebpf,
            options.launch_duty,
            &options.cuda_libraries,
        ) {
            Ok(sensor) => {
                info!(
                    libraries = sensor.libraries_probed(),
                    "CUDA sensor ready (libraries found later are probed when seen)"
                );
                state.cuda = Some(sensor);
            }
            Err(err) => warn!(sensor = "cuda", "off: {err:#}"),
        }
    }
    state.sensors = loaded
        .sensors
        .iter()
        .map(|s| (s.sensor, s.state.is_available()))
        .collect();
    // A port taken (another agent, another exporter) costs the metrics,
    // not the agent.
    let metrics = match options.metrics_listen {
        Some(addr) => match tokio::net::TcpListener::bind(addr).await {
            Ok(listener) => Some(listener),
            Err(err) => {
                warn!("cannot listen for metrics on {addr}: {err}; metrics off");
                None
            }
        },
        None => None,
    };
    if let Some(listener) = &metrics {
        info!(addr = %listener.local_addr()?, "metrics at http://{}/metrics", listener.local_addr()?);
    }
    // Handlers first: "ready" promises that a stop signal detaches cleanly.
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let known = state.processes.scan_proc();
    if let Some(dir) = &options.state_dir {
        state.restore_verdicts(dir);
    }
    state.check_command_lines_of_known_processes();
    info!(processes = known, "agent ready");

    let mut ticks: u64 = 0;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    // The kernel wakes us only when a burst piles up (see the eBPF side's
    // wakeup_flags); otherwise events wait at most one drain period.
    let mut drain = tokio::time::interval(DRAIN_PERIOD);
    drain.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            guard = ring.readable_mut() => {
                let mut guard = guard?;
                let ring = guard.get_inner_mut();
                while let Some(record) = ring.next() {
                    state.handle(&record);
                }
                guard.clear_ready();
            }
            _ = drain.tick() => {
                let ring = ring.get_mut();
                while let Some(record) = ring.next() {
                    state.handle(&record);
                }
                // The launch window closes within one drain period of its
                // end: a window held to the next 1 s tick would cost more
                // than its configured length.
                state.cuda_windows(&mut loaded.ebpf);
            }
            _ = tick.tick() => {
                state.tick(&counters);
                state.cuda_tick(&mut loaded.ebpf);
                state.telemetry_tick(ticks);
                ticks += 1;
                if ticks.is_multiple_of(FPU_WINDOW_TICKS) {
                    for finding in fpu.poll() {
                        state.on_randomx(finding);
                    }
                }
            }
            accepted = async {
                match &metrics {
                    Some(listener) => listener.accept().await,
                    None => std::future::pending().await,
                }
            } => {
                if let Ok((stream, _)) = accepted {
                    let body = state.metrics_body();
                    tokio::spawn(crate::sinks::metrics::serve(stream, body));
                }
            }
            _ = sigterm.recv() => { info!("SIGTERM: stopping"); break; }
            _ = sigint.recv() => { info!("SIGINT: stopping"); break; }
        }
    }
    state.tick(&counters);
    if let Some(fleet) = &state.fleet {
        // What the server has not acknowledged yet gets a moment.
        fleet.drain(Duration::from_secs(3)).await;
        info!(
            published = fleet
                .stats
                .published
                .load(std::sync::atomic::Ordering::Relaxed),
            dropped = fleet
                .stats
                .dropped
                .load(std::sync::atomic::Ordering::Relaxed),
            unpublished = fleet.pending(),
            "fleet stream"
        );
    }
    if let Some(dir) = &options.state_dir {
        state.save_verdicts(dir);
    }
    drop(ring);
    drop(counters);
    // Dropping the object closes every program and link fd: the kernel
    // detaches everything, nothing is pinned.
    drop(loaded);
    let s = &state.stats;
    info!(
        events = s.events,
        findings = s.findings,
        suppressed = s.suppressed,
        decode_errors = s.decode_errors,
        stratum_rejections = s.stratum_rejections,
        kernel_dropped = (0..counter::COUNT)
            .filter(|&i| counter::is_loss(i))
            .map(|i| s.kernel_counters[i as usize])
            .sum::<u64>(),
        flows_adopted = s.kernel_counters[counter::FLOW_ADOPTED as usize],
        unattributed_stratum = s.unattributed_stratum,
        unattributed_observations = s.unattributed_observations,
        socket_snapshots = s.socket_snapshots,
        flows_evicted = state.flows.evicted,
        processes = state.processes.len(),
        processes_not_tracked = state.processes.dropped,
        "detached; bye"
    );
    Ok(())
}

fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into())
}

pub struct State {
    host: String,
    processes: ProcessTable,
    flows: FlowTable,
    correlator: Correlator,
    sink: Outputs,
    /// The kernel's flow map, to raise a flow's sample limit.
    kernel_flows: Option<BpfHashMap<MapData, u64, FlowState>>,
    /// Distinct libp2p peers per process.
    libp2p_peers: HashMap<u32, HashSet<std::net::SocketAddr>>,
    /// Distinct peers of long-lived unrecognised binary flows per process.
    /// Per process, the peers of its random-binary flows, with the flow
    /// (socket cookie): a peer counts while its flow is in the table.
    binary_peers: HashMap<u32, HashMap<std::net::SocketAddr, u64>>,
    /// Names local DNS servers were asked for lately (when), so that their
    /// forwarding of them upstream is not taken for their own lookups.
    served_names: HashMap<String, u64>,
    /// Processes that received a DNS query: local resolvers (systemd-
    /// resolved, dnsmasq, CoreDNS). Their lookups are other processes'.
    resolvers: HashSet<u32>,
    policy: crate::correlate::policy::Policy,
    log_suppressed: bool,
    /// The level last reported per open verdict (policy downgrades can
    /// make a raise invisible: it is then not reported again).
    reported_levels: HashMap<String, crate::correlate::Level>,
    /// The fleet stream (absent without --nats).
    fleet: Option<crate::sinks::fleet::Fleet>,
    /// Seconds between workload summaries on the fleet stream.
    summary_every_s: u64,
    /// Each sensor and whether it runs (for metrics).
    sensors: Vec<(&'static str, bool)>,
    /// GPU telemetry (absent without NVML and without a replay).
    telemetry: Option<Telemetry>,
    /// Hardware counters of busy processes (absent without a PMU).
    pmu: Option<crate::sensors::pmu::HardwareCounters>,
    /// The CUDA driver sensor (absent without uprobes).
    cuda: Option<CudaSensor>,
    /// On-CPU time per process (absent when the map could not be taken).
    cpu_time: Option<CpuTime>,
    /// Busy processes whose config file was already looked at.
    config_checked: HashSet<u32>,
    /// Observations waiting for an adopted flow's owner, with the number
    /// of lookups tried.
    pending: Vec<(u64, Observed, u32)>,
    pub stats: Stats,
}

impl State {
    pub fn new(host: String, sample_segments: u32) -> Self {
        Self {
            correlator: Correlator::new(&host),
            host,
            processes: ProcessTable::new(MAX_PROCESSES),
            flows: FlowTable::new(MAX_FLOWS, sample_segments),
            sink: Outputs::stdout(),
            kernel_flows: None,
            libp2p_peers: HashMap::new(),
            binary_peers: HashMap::new(),
            pending: Vec::new(),
            served_names: HashMap::new(),
            resolvers: HashSet::new(),
            cpu_time: None,
            cuda: None,
            pmu: None,
            telemetry: None,
            policy: crate::correlate::policy::Policy::default(),
            sensors: Vec::new(),
            fleet: None,
            summary_every_s: 60,
            log_suppressed: false,
            reported_levels: HashMap::new(),
            config_checked: HashSet::new(),
            stats: Stats::default(),
        }
    }

    fn handle(&mut self, record: &[u8]) {
        self.stats.events += 1;
        match crate::sensors::decode::decode(record) {
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
                self.processes.on_exec(&exec);
                self.check_command_line(exec.header.tgid);
                if let Some(cuda) = self.cuda.as_mut() {
                    cuda.on_exec(exec.header.tgid);
                }
            }
            Event::Cuda(event) => {
                if let Some(cuda) = self.cuda.as_mut() {
                    cuda.on_event(&event);
                }
            }
            Event::Fork(fork) => {
                self.processes
                    .on_fork(fork.header.tgid, fork.child_tgid, fork.header.timestamp_ns)
            }
            Event::Hygiene(event) => self.on_hygiene(&event),
            Event::Exit(exit) => {
                let tgid = exit.header.tgid;
                let process = self.processes.on_exit(tgid);
                self.libp2p_peers.remove(&tgid);
                self.binary_peers.remove(&tgid);
                self.resolvers.remove(&tgid);
                self.config_checked.remove(&tgid);
                if let Some(pmu) = self.pmu.as_mut() {
                    pmu.forget(tgid);
                }
                if let Some(cpu_time) = self.cpu_time.as_mut() {
                    cpu_time.process_exited(tgid);
                }
                if let Some(cuda) = self.cuda.as_mut() {
                    cuda.on_exit(tgid);
                }
                for verdict in self.correlator.process_exited(tgid) {
                    self.write_finding(Change::Resolved, &verdict, None, process.as_ref(), None);
                }
            }
            Event::Connect(connect) => {
                crate::sensors::flow::on_connect(&mut self.flows, &connect);
                self.processes
                    .note_cgroup(connect.header.tgid, connect.header.cgroup_id);
                // Make sure the connecting process is known while it is alive.
                let _ = self.processes.get_or_load(connect.header.tgid);
            }
            Event::Sample(sample) => self.on_sample(&sample),
        }
    }

    fn on_sample(&mut self, sample: &SampleEvent) {
        let outcome = crate::sensors::flow::on_sample(&mut self.flows, sample);
        self.stats.stratum_rejections += outcome.rejections.len() as u64;
        for rejection in outcome.rejections {
            debug!(
                cookie = sample.cookie,
                "stratum-looking line rejected: {rejection}"
            );
        }
        if let Some(limit) = outcome.raised_limit {
            self.raise_sample_limit(sample.cookie, limit);
        }
        for observed in outcome.observations {
            self.on_observation(sample.cookie, observed);
        }
    }

    /// Lets the kernel sample more of a flow (a JSON line still open at its
    /// last sample, or an opaque flow's cadence). The flow may have left the
    /// LRU map meanwhile: then it is not re-created.
    fn raise_sample_limit(&mut self, cookie: u64, limit: u32) {
        let Some(map) = self.kernel_flows.as_mut() else {
            return;
        };
        let Ok(mut state) = map.get(&cookie, 0) else {
            return;
        };
        state.sample_limit = limit.min(u32::from(u16::MAX)) as u16;
        // A read-modify-write: packets counted by the kernel in between are
        // lost from the byte counters, which nothing decides on.
        const BPF_EXIST: u64 = 2;
        if let Err(err) = map.insert(cookie, state, BPF_EXIST) {
            debug!(cookie, "cannot raise the flow's sample limit: {err}");
        }
    }

    /// The owner of a flow; for a flow the kernel adopted, looked up in
    /// the socket tables (until found or given up on).
    fn flow_owner(
        &mut self,
        cookie: u64,
        sockets: Option<&sockets::Snapshot>,
        last_try: bool,
    ) -> Option<Owner> {
        let flow = self.flows.get(cookie)?;
        if flow.owner.is_some() || flow.owner_looked_up {
            return flow.owner.clone();
        }
        let sockets = sockets?;
        let (Some(transport), Some(local), Some(remote)) =
            (flow.transport, flow.local, flow.remote)
        else {
            return None;
        };
        let owner = sockets.owner(transport, local, remote).map(|found| {
            let comm = self
                .processes
                .get_or_load(found.tgid)
                .map(|p| p.comm.clone())
                .unwrap_or_default();
            Owner {
                pid: found.tgid,
                tgid: found.tgid,
                comm,
                cgroup_id: 0,
                role: found.role,
            }
        });
        if owner.is_some() || last_try {
            self.flows.set_owner(cookie, owner.clone());
        }
        owner
    }

    fn on_observation(&mut self, cookie: u64, observed: Observed) {
        // A query a local server received: if the same name leaves the host
        // next, it is that server forwarding it, not asking for itself.
        if let Observation::Dns(message) = &observed.observation
            && observed.direction == Direction::Inbound
            && !message.is_response
        {
            let now = monotonic_ns();
            // Every parent name too: a resolver minimising its queries
            // (RFC 9156) asks upstream for `minexmr.com` before
            // `pool.minexmr.com`.
            for question in message.questions.iter().take(8) {
                let mut name = question.name.as_str();
                for _ in 0..8 {
                    if self.served_names.len() >= MAX_SERVED_NAMES {
                        break;
                    }
                    self.served_names.insert(name.to_owned(), now);
                    match name.split_once('.') {
                        Some((_, parent)) if !parent.is_empty() => name = parent,
                        _ => break,
                    }
                }
            }
        }
        self.attribute_observation(cookie, observed, None, 0);
    }

    /// A flow that lived [`CADENCE_AFTER_NS`] with unrecognised binary
    /// content, opened by a known process: one more distinct peer for that
    /// process's fan-out.
    fn count_binary_peer(&mut self, cookie: u64) {
        let Some(flow) = self.flows.get(cookie) else {
            return;
        };
        let (Some(owner), Some(remote)) = (flow.owner.clone(), flow.remote) else {
            return;
        };
        if flow.protocol.is_some() || !flow.opens_random_binary() {
            return;
        }
        let facts = FlowFacts {
            tgid: owner.tgid,
            comm: owner.comm.clone(),
            role: owner.role,
            remote: flow.remote,
            local: flow.local,
            outbound_is_json_lines: false,
            forwarding: false,
        };
        let first_payload_ns = flow.first_payload_ns;
        let flows = &self.flows;
        let peers = self.binary_peers.entry(owner.tgid).or_default();
        // Peers whose flows are gone no longer count: fan-out is peers held
        // at the same time, not a history of sequential connections.
        peers.retain(|_, held| flows.get(*held).is_some());
        if peers.len() >= MAX_PEERS_PER_PROCESS || peers.insert(remote, cookie).is_some() {
            return;
        }
        let count = peers.len();
        // Once, when the threshold is crossed: more peers are more of the
        // same.
        if count != crate::evidence::network::GOSSIP_PEERS {
            return;
        }
        let Some(draft) = crate::evidence::network::fanout_evidence(&facts, count) else {
            return;
        };
        // Fan-out builds up over minutes: no detection latency to report.
        self.report_flow_draft(owner.tgid, draft, first_payload_ns, false);
    }

    /// Observations on adopted flows wait for the next tick, where one
    /// snapshot of the socket tables serves them all (a connection still in
    /// its listener's accept queue has no owner until the server accepts
    /// it: retried on later ticks, up to [`OWNER_LOOKUP_ATTEMPTS`]).
    fn retry_pending(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let snapshot = sockets::Snapshot::take();
        self.stats.socket_snapshots += 1;
        for (cookie, observed, attempts) in std::mem::take(&mut self.pending) {
            self.attribute_observation(cookie, observed, Some(&snapshot), attempts + 1);
        }
    }

    fn attribute_observation(
        &mut self,
        cookie: u64,
        observed: Observed,
        sockets: Option<&sockets::Snapshot>,
        attempts: u32,
    ) {
        let is_stratum = matches!(observed.observation, Observation::Stratum(_));
        let last_try = attempts >= OWNER_LOOKUP_ATTEMPTS;
        let Some(owner) = self.flow_owner(cookie, sockets, last_try) else {
            let adopted = self
                .flows
                .get(cookie)
                .is_some_and(|f| f.origin == Origin::Adopted && !f.owner_looked_up);
            if adopted && self.pending.len() < MAX_PENDING_OBSERVATIONS {
                self.pending.push((cookie, observed, attempts));
                return;
            }
            self.stats.unattributed_observations += 1;
            if is_stratum {
                self.stats.unattributed_stratum += 1;
            }
            debug!(
                cookie,
                protocol = observed.observation.protocol(),
                "observation on a flow whose owner is unknown: not attributed"
            );
            return;
        };
        if owner.tgid == std::process::id() {
            return;
        }
        if let Observation::Dns(message) = &observed.observation
            && observed.direction == Direction::Inbound
            && !message.is_response
            && self.resolvers.len() < MAX_RESOLVERS
        {
            self.resolvers.insert(owner.tgid);
        }
        let Some(flow) = self.flows.get(cookie) else {
            return;
        };
        let facts = FlowFacts {
            tgid: owner.tgid,
            comm: owner.comm.clone(),
            role: owner.role,
            remote: flow.remote,
            local: flow.local,
            outbound_is_json_lines: flow.outbound_is_json_lines(),
            forwarding: match &observed.observation {
                Observation::Dns(message) => {
                    self.resolvers.contains(&owner.tgid)
                        || message
                            .questions
                            .iter()
                            .any(|q| self.served_names.contains_key(&q.name))
                }
                _ => false,
            },
        };
        let first_payload_ns = flow.first_payload_ns;
        if let (Observation::P2p(opening), Some(remote)) = (&observed.observation, flow.remote)
            && opening.network == p2p::Network::Libp2p
        {
            let peers = self.libp2p_peers.entry(owner.tgid).or_default();
            if peers.len() < MAX_PEERS_PER_PROCESS {
                peers.insert(remote);
            }
        }
        let no_peers = HashSet::new();
        let peers = self.libp2p_peers.get(&owner.tgid).unwrap_or(&no_peers);
        let Some(draft) = crate::evidence::network::evidence_for(
            &observed.observation,
            observed.direction,
            &facts,
            PoolDomains::builtin(),
            peers,
        ) else {
            if is_stratum && owner.role == Role::Server {
                self.stats.unattributed_stratum += 1;
            }
            return;
        };
        self.report_flow_draft(owner.tgid, draft, first_payload_ns, true);
    }

    /// Flow evidence about its owner, first seen at the flow's first
    /// payload; `timed`: report how long after it the verdict came.
    fn report_flow_draft(
        &mut self,
        tgid: u32,
        draft: crate::evidence::network::Draft,
        first_payload_ns: Option<u64>,
        timed: bool,
    ) {
        let process = self.processes.get_for_evidence(tgid).cloned();
        let workload = process
            .as_ref()
            .map(|p| p.workload())
            .unwrap_or(Workload::Process { tgid });
        let now = std::time::SystemTime::now();
        let evidence = Evidence {
            workload,
            pid: tgid,
            kind: draft.kind,
            strength: draft.strength,
            decisive: draft.decisive,
            summary: draft.summary,
            attributes: draft.attributes,
            first_seen: first_payload_ns.map(wall_of_monotonic).unwrap_or(now),
            last_seen: now,
        };
        let decided_from = if timed { first_payload_ns } else { None };
        self.report(evidence, process.as_ref(), decided_from);
    }

    fn on_randomx(&mut self, finding: crate::sensors::fpu::Finding) {
        let Some(process) = self.processes.get_for_evidence(finding.tgid).cloned() else {
            return;
        };
        let crate::sensors::fpu::Finding {
            tgid,
            thread,
            window,
            marker,
        } = finding;
        let mut attributes = Map::new();
        attributes.insert(
            "nondefault_rounding_share".into(),
            json!((marker.share * 1000.0).round() / 1000.0),
        );
        attributes.insert("fpu_switches".into(), json!(window.switches));
        attributes.insert(
            "rounding_modes".into(),
            json!({
                "down": window.by_mode[1],
                "up": window.by_mode[2],
                "toward_zero": window.by_mode[3],
            }),
        );
        attributes.insert("thread".into(), json!(thread));
        attributes.insert(
            "cpu_cores".into(),
            json!((window.cpu_cores * 100.0).round() / 100.0),
        );
        attributes.insert("exe".into(), json!(process.exe));
        let summary = format!(
            "pid {tgid} ({}) has a thread that saved random non-default FPU rounding modes \
             (RandomX's CFROUND) in a large share of its context switches{}",
            process.comm,
            if marker.busy {
                " while keeping a CPU busy"
            } else {
                ""
            }
        );
        let now = std::time::SystemTime::now();
        let evidence = Evidence {
            workload: process.workload(),
            pid: tgid,
            kind: EvidenceKind::RandomxFpu,
            strength: if marker.decisive { 1.0 } else { 0.5 },
            decisive: marker.decisive,
            summary,
            attributes,
            first_seen: now,
            last_seen: now,
        };
        self.report(evidence, Some(&process), None);
    }

    /// Hands evidence to the correlator and writes the finding it yields.
    fn report(
        &mut self,
        evidence: Evidence,
        process: Option<&ProcessInfo>,
        first_packet_ns: Option<u64>,
    ) {
        let Some((change, verdict)) = self.correlator.observe(evidence.clone()) else {
            return;
        };
        let decided_after_ms =
            first_packet_ns.map(|ns| monotonic_ns().saturating_sub(ns) as f64 / 1e6);
        self.write_finding(change, &verdict, Some(&evidence), process, decided_after_ms);
    }

    fn write_finding(
        &mut self,
        change: Change,
        verdict: &Verdict,
        trigger: Option<&Evidence>,
        process: Option<&ProcessInfo>,
        decided_after_ms: Option<f64>,
    ) {
        let decision = self
            .policy
            .decide(verdict.class, verdict.level, &verdict.workload, process);
        let (level, rule) = match &decision {
            crate::correlate::policy::Decision::Report => (verdict.level, None),
            crate::correlate::policy::Decision::Downgrade { rule, to } => (*to, Some(rule.clone())),
            crate::correlate::policy::Decision::Suppress { rule, log } => {
                self.stats.suppressed += 1;
                if !(*log && self.log_suppressed) {
                    return;
                }
                (verdict.level, Some(rule.clone()))
            }
        };
        let suppressed = matches!(
            decision,
            crate::correlate::policy::Decision::Suppress { .. }
        );
        if !suppressed {
            // A raise the policy's cap hides is no news.
            let previous = match change {
                Change::Resolved => self.reported_levels.remove(&verdict.id),
                _ => self.reported_levels.insert(verdict.id.clone(), level),
            };
            if change == Change::Raised && previous == Some(level) {
                return;
            }
        }
        let cpu = process.and_then(|p| self.cpu_use(p));
        let mut finding = Finding::new(
            change,
            verdict,
            &self.host,
            trigger,
            process,
            decided_after_ms,
        );
        finding.cpu = cpu;
        finding.level = level;
        finding.policy_rule = rule;
        if suppressed {
            finding.event = "verdict.suppressed".into();
        }
        if let Some(process) = process {
            finding.ancestors = self
                .processes
                .ancestors(process.pid, ANCESTORS_IN_FINDING)
                .into_iter()
                .map(|p| Ancestor {
                    pid: p.pid,
                    comm: p.comm.clone(),
                    exe: p.exe.clone(),
                })
                .collect();
        }
        match self.sink.write(&finding) {
            Ok(line) => {
                self.stats.findings += 1;
                if let Some(fleet) = &self.fleet {
                    fleet.push(format!("{}:{}", verdict.id, finding.event), line);
                }
            }
            Err(err) => warn!("cannot write finding {}: {err}", verdict.id),
        }
    }

    /// The Prometheus exposition of the agent's state now.
    fn metrics_body(&self) -> String {
        use crate::sinks::metrics::Sample;
        let mut samples = Vec::new();
        let mut push = |name, help, kind, labels: Vec<(&'static str, String)>, value: f64| {
            samples.push(Sample {
                name,
                help,
                kind,
                labels,
                value,
            });
        };
        for (sensor, up) in &self.sensors {
            push(
                "assay_sensor_up",
                "Whether the sensor runs on this kernel (1) or is off (0); `assay doctor` says why.",
                "gauge",
                vec![("sensor", (*sensor).to_owned())],
                if *up { 1.0 } else { 0.0 },
            );
        }
        let s = &self.stats;
        push(
            "assay_events_total",
            "Ring buffer records read.",
            "counter",
            vec![],
            s.events as f64,
        );
        push(
            "assay_decode_errors_total",
            "Ring buffer records rejected.",
            "counter",
            vec![],
            s.decode_errors as f64,
        );
        for (i, name) in counter::NAMES.iter().enumerate() {
            push(
                "assay_kernel_events_total",
                "What the kernel side counted: losses (ring buffer full, table full, unparsable) and flow adoptions.",
                "counter",
                vec![("counter", (*name).to_owned())],
                s.kernel_counters[i] as f64,
            );
        }
        push(
            "assay_stratum_rejections_total",
            "Stratum-looking lines rejected by the classifier.",
            "counter",
            vec![],
            s.stratum_rejections as f64,
        );
        push(
            "assay_findings_total",
            "Finding lines written.",
            "counter",
            vec![],
            s.findings as f64,
        );
        push(
            "assay_suppressed_total",
            "Verdict events a policy rule kept from being reported.",
            "counter",
            vec![],
            s.suppressed as f64,
        );
        let mut open: HashMap<(&'static str, &'static str), u64> = HashMap::new();
        for verdict in self.correlator.open_verdicts() {
            let level = match verdict.level {
                crate::correlate::Level::Observed => "observed",
                crate::correlate::Level::Suspected => "suspected",
                crate::correlate::Level::Confirmed => "confirmed",
            };
            *open.entry((verdict.class.name(), level)).or_default() += 1;
        }
        for class in [
            "pow-mining",
            "chain-node",
            "zk-proving",
            "ai-training",
            "ai-inference",
            "general",
        ] {
            for level in ["observed", "suspected", "confirmed"] {
                push(
                    "assay_open_verdicts",
                    "Open verdicts by class and level.",
                    "gauge",
                    vec![("class", class.to_owned()), ("level", level.to_owned())],
                    open.get(&(class, level)).copied().unwrap_or(0) as f64,
                );
            }
        }
        push(
            "assay_processes_tracked",
            "Processes in the process table.",
            "gauge",
            vec![],
            self.processes.len() as f64,
        );
        push(
            "assay_workloads_tracked",
            "Workloads with evidence.",
            "gauge",
            vec![],
            self.correlator.workload_count() as f64,
        );
        let (cpu, rss) = crate::sinks::metrics::own_usage();
        push(
            "assay_cpu_seconds_total",
            "CPU time the agent used.",
            "counter",
            vec![],
            cpu,
        );
        push(
            "assay_resident_memory_bytes",
            "The agent's resident memory.",
            "gauge",
            vec![],
            rss,
        );
        crate::sinks::metrics::render(&samples)
    }

    /// Re-opens the verdicts a previous run saved (see `save_verdicts`);
    /// those whose processes are all gone are reported resolved. A state
    /// file that cannot be read is set aside (`.bad`), never fatal.
    fn restore_verdicts(&mut self, dir: &std::path::Path) {
        let path = dir.join(STATE_FILE);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return,
            Err(err) => {
                warn!(path = %path.display(), "cannot read saved verdicts: {err}");
                return;
            }
        };
        let saved: crate::correlate::SavedState = match serde_json::from_str(&text) {
            Ok(saved) => saved,
            Err(err) => {
                let aside = path.with_extension("json.bad");
                warn!(path = %path.display(), aside = %aside.display(), "saved verdicts unreadable ({err}): set aside");
                let _ = fs::rename(&path, &aside);
                return;
            }
        };
        if saved.version != crate::correlate::SAVED_STATE_VERSION {
            warn!(
                version = saved.version,
                "saved verdicts of another version: ignored"
            );
            return;
        }
        let count = saved.verdicts.len();
        for verdict in saved.verdicts.iter().map(|s| &s.verdict) {
            self.reported_levels
                .insert(verdict.id.clone(), verdict.level);
        }
        let gone = self.correlator.restore(saved, |pid| {
            std::path::Path::new(&format!("/proc/{pid}")).exists()
        });
        info!(
            saved = count,
            resolved = gone.len(),
            "verdicts restored from the last run"
        );
        for verdict in gone {
            self.write_finding(Change::Resolved, &verdict, None, None, None);
        }
    }

    /// Writes the open verdicts (atomically: a new file, then a rename).
    fn save_verdicts(&mut self, dir: &std::path::Path) {
        let saved = self.correlator.save();
        let result = (|| -> std::io::Result<()> {
            fs::create_dir_all(dir)?;
            let path = dir.join(STATE_FILE);
            let staged = dir.join(format!(".{STATE_FILE}.{}", std::process::id()));
            fs::write(&staged, serde_json::to_vec(&saved)?)?;
            fs::rename(&staged, &path)
        })();
        match result {
            Ok(()) => {
                info!(verdicts = saved.verdicts.len(), dir = %dir.display(), "open verdicts saved")
            }
            Err(err) => warn!(dir = %dir.display(), "cannot save open verdicts: {err}"),
        }
    }

    /// CPU use of the process and of every process in its cgroup, over the
    /// CPU-time window.
    fn cpu_use(&mut self, process: &ProcessInfo) -> Option<CpuUse> {
        let counters = self.pmu.as_mut().and_then(|pmu| pmu.read(process.pid));
        let mut cpu = self.cpu_share(process)?;
        cpu.hardware_counters = counters;
        Some(cpu)
    }

    fn cpu_share(&self, process: &ProcessInfo) -> Option<CpuUse> {
        let accounts = &self.cpu_time.as_ref()?.accounts;
        let process_cores = accounts.cores(process.pid).unwrap_or(0.0);
        let cgroup_cores = (process.cgroup_id != 0).then(|| {
            accounts
                .busy()
                .filter(|(tgid, _)| {
                    *tgid == process.pid
                        || self
                            .processes
                            .get(*tgid)
                            .is_some_and(|p| p.cgroup_id == process.cgroup_id)
                })
                .map(|(_, cores)| cores)
                .sum::<f64>()
        });
        Some(CpuUse::new(process_cores, cgroup_cores))
    }

    fn on_hygiene(&mut self, event: &assay_common::event::HygieneEvent) {
        let name = c_string(&event.path);
        let Some(sign) = hygiene::assess(event.what, event.flags, event.value, &name) else {
            return;
        };
        let tgid = event.header.tgid;
        // modprobe, run through a shell by the miner: the miner wanted it.
        let who = if event.what == assay_common::event::hygiene::MODULE_LOAD {
            match self.module_requester(tgid) {
                Some(requester) => requester,
                None => return,
            }
        } else {
            tgid
        };
        self.report_hygiene(who, sign);
    }

    /// A busy process mapping a RandomX dataset's exact size (read from
    /// its smaps, once per process when it becomes busy).
    fn check_dataset_mapping(&mut self, tgid: u32) {
        let Ok(smaps) = fs::read_to_string(format!("/proc/{tgid}/smaps")) else {
            return;
        };
        let Some((bytes, page_kib)) = hygiene::dataset_mapping(&smaps) else {
            return;
        };
        let what = assay_common::event::hygiene::DATASET_MAPPING;
        if let Some(sign) = hygiene::assess(what, page_kib, bytes, "") {
            self.report_hygiene(tgid, sign);
        }
    }

    /// The process that wanted a module: the loader's nearest ancestor that
    /// is not a module tool, a shell or sudo. None when that is init (boot
    /// and udev loading modules).
    fn module_requester(&self, loader: u32) -> Option<u32> {
        const GO_BETWEENS: [&str; 8] = [
            "modprobe", "insmod", "kmod", "sh", "bash", "dash", "sudo", "busybox",
        ];
        let is_go_between = |comm: &str| GO_BETWEENS.contains(&comm);
        let loader_info = self.processes.get(loader);
        if loader_info.is_none_or(|p| !is_go_between(&p.comm)) {
            return Some(loader);
        }
        self.processes
            .ancestors(loader, ANCESTORS_IN_FINDING)
            .into_iter()
            .find(|p| !is_go_between(&p.comm))
            .filter(|p| p.pid > 1)
            .map(|p| p.pid)
    }

    /// Evidence about a live process, seen now, reported: `what` follows
    /// "pid N (comm) " in the summary.
    fn report_about(
        &mut self,
        tgid: u32,
        kind: EvidenceKind,
        strength: f32,
        decisive: bool,
        what: String,
        attributes: Map<String, serde_json::Value>,
    ) {
        let process = self.processes.get_for_evidence(tgid).cloned();
        let comm = process.as_ref().map(|p| p.comm.as_str()).unwrap_or("?");
        let now = std::time::SystemTime::now();
        let evidence = Evidence {
            workload: process
                .as_ref()
                .map(|p| p.workload())
                .unwrap_or(Workload::Process { tgid }),
            pid: tgid,
            kind,
            strength,
            decisive,
            summary: format!("pid {tgid} ({comm}) {what}"),
            attributes,
            first_seen: now,
            last_seen: now,
        };
        self.report(evidence, process.as_ref(), None);
    }

    fn report_hygiene(&mut self, tgid: u32, sign: hygiene::HygieneSign) {
        self.report_about(
            tgid,
            hygiene::KIND,
            sign.strength,
            false,
            sign.summary,
            sign.attributes,
        );
    }

    /// Pool URLs, miner flags and wallets on a process's command line:
    /// weak evidence (never above `cmdline::MAX_COMBINED`).
    fn check_command_line(&mut self, tgid: u32) {
        let Some(process) = self.processes.get(tgid) else {
            return;
        };
        let hints = cmdline::argv_hints(&process.argv);
        if !hints.is_empty() {
            self.report_hints(tgid, hints, None);
        }
    }

    fn check_command_lines_of_known_processes(&mut self) {
        let with_hints: Vec<(u32, Vec<cmdline::Hint>)> = self
            .processes
            .iter()
            .filter(|p| p.pid != std::process::id())
            .map(|p| (p.pid, cmdline::argv_hints(&p.argv)))
            .filter(|(_, hints)| !hints.is_empty())
            .collect();
        for (tgid, hints) in with_hints {
            self.report_hints(tgid, hints, None);
        }
    }

    /// A process that keeps a core busy: its config file (named on its
    /// command line, or XMRig's default `config.json` next to its binary)
    /// is read once for pool URLs and wallets. A renamed miner with no
    /// arguments is caught this way.
    fn check_configs_of_busy_processes(&mut self) {
        let Some(cpu_time) = self.cpu_time.as_ref() else {
            return;
        };
        let busy: Vec<u32> = cpu_time
            .accounts
            .busy()
            .filter(|&(tgid, cores)| {
                cores >= CONFIG_CHECK_AT_CORES && !self.config_checked.contains(&tgid)
            })
            .map(|(tgid, _)| tgid)
            .collect();
        for tgid in busy {
            if self.config_checked.len() >= MAX_CONFIG_CHECKED {
                return;
            }
            self.config_checked.insert(tgid);
            if let Some(pmu) = self.pmu.as_mut()
                && pmu.follow(tgid).is_err()
            {
                pmu.open_errors += 1;
            }
            self.check_dataset_mapping(tgid);
            let Some(process) = self.processes.get_or_load(tgid).cloned() else {
                continue;
            };
            let root = std::path::PathBuf::from(format!("/proc/{tgid}/root"));
            let cwd = std::path::PathBuf::from(format!("/proc/{tgid}/cwd"));
            let mut candidates: Vec<std::path::PathBuf> = cmdline::config_paths(&process.argv)
                .into_iter()
                .map(|p| {
                    if p.is_absolute() {
                        root.join(p.strip_prefix("/").unwrap_or(&p))
                    } else {
                        cwd.join(p)
                    }
                })
                .collect();
            if let Some(dir) = std::path::Path::new(&process.exe).parent()
                && process.exe.starts_with('/')
            {
                candidates.push(
                    root.join(dir.strip_prefix("/").unwrap_or(dir))
                        .join("config.json"),
                );
            }
            for path in candidates {
                let Some(bytes) = read_small_file(&path) else {
                    continue;
                };
                let hints = cmdline::config_hints(&bytes);
                if !hints.is_empty() {
                    let shown = path
                        .strip_prefix(&root)
                        .map(|p| std::path::Path::new("/").join(p))
                        .unwrap_or_else(|_| path.clone());
                    self.report_hints(tgid, hints, Some(shown.display().to_string()));
                    break;
                }
            }
        }
    }

    fn report_hints(&mut self, tgid: u32, hints: Vec<cmdline::Hint>, config: Option<String>) {
        let strength = cmdline::combined_strength(&hints);
        if strength <= 0.0 {
            return;
        }
        let described: Vec<String> = hints.iter().map(cmdline::Hint::describe).collect();
        let mut attributes = Map::new();
        attributes.insert(
            "signal".into(),
            json!(if config.is_some() {
                "config_file"
            } else {
                "command_line"
            }),
        );
        attributes.insert("hints".into(), json!(hints));
        if let Some(path) = &config {
            attributes.insert("config".into(), json!(path));
        }
        let what = format!(
            "{}: {}",
            match &config {
                Some(path) => format!("reads a config file ({path}) with"),
                None => "was started with".into(),
            },
            described.join("; ")
        );
        self.report_about(
            tgid,
            EvidenceKind::CommandLine,
            strength,
            false,
            what,
            attributes,
        );
    }

    /// The CUDA sensor's scans and launch windows; after a window, each
    /// process that used the GPU is judged.
    fn cuda_tick(&mut self, ebpf: &mut aya::Ebpf) {
        let Some(cuda) = self.cuda.as_mut() else {
            return;
        };
        cuda.scan_due(ebpf);
        self.cuda_windows(ebpf);
    }

    /// Opens or closes the launch window when due; judges what a closed
    /// window saw.
    fn cuda_windows(&mut self, ebpf: &mut aya::Ebpf) {
        let Some(cuda) = self.cuda.as_mut() else {
            return;
        };
        for window in cuda.duty_cycle(ebpf) {
            self.on_cuda_window(window);
        }
    }

    fn on_cuda_window(&mut self, window: cuda::CudaWindow) {
        let activity = window.activity();
        let telemetry = self
            .telemetry
            .as_ref()
            .and_then(|t| t.window.summary(window.tgid));
        let verdict = assay_classify::gpu::classify::classify(&activity, telemetry.as_ref());
        debug!(
            tgid = window.tgid,
            class = verdict.class.name(),
            launches = activity.launches,
            "CUDA window judged"
        );
        self.report_gpu(window.tgid, &activity, &verdict);
    }

    /// One GPU verdict as evidence about the process.
    fn report_gpu(
        &mut self,
        tgid: u32,
        activity: &assay_classify::gpu::classify::CudaActivity,
        verdict: &assay_classify::gpu::classify::GpuVerdict,
    ) {
        use assay_classify::gpu::classify::GpuClass;
        let (kind, phrase) = match verdict.class {
            GpuClass::PowMining => (
                EvidenceKind::GpuHashing,
                "runs a GPU proof-of-work search loop",
            ),
            GpuClass::AiTraining => (EvidenceKind::GpuTraining, "trains a model on the GPU"),
            GpuClass::AiInference => (EvidenceKind::GpuInference, "serves inference on the GPU"),
            GpuClass::ZkProving => (
                EvidenceKind::GpuZkProving,
                "runs zero-knowledge proving kernels on the GPU",
            ),
            GpuClass::Unknown => return,
        };
        if verdict.strength <= 0.0 {
            return;
        }
        let mut attributes = Map::new();
        attributes.insert("gpu_class".into(), json!(verdict.class.name()));
        attributes.insert("reasons".into(), json!(verdict.reasons));
        attributes.insert("launches".into(), json!(activity.launches));
        attributes.insert(
            "watched_s".into(),
            json!((activity.window_s * 10.0).round() / 10.0),
        );
        attributes.insert("distinct_kernels".into(), json!(activity.distinct_kernels));
        attributes.insert(
            "kernels".into(),
            json!(
                activity
                    .kernels
                    .iter()
                    .take(5)
                    .map(|k| json!({"name": k.name, "launches": k.launches}))
                    .collect::<Vec<_>>()
            ),
        );
        attributes.insert("libraries".into(), json!(activity.libraries));
        attributes.insert("runtime_compiles".into(), json!(activity.runtime_compiles));
        attributes.insert("bytes_allocated".into(), json!(activity.bytes_allocated));
        // Stable per process and class (repeated windows refresh one
        // record); the facts with their numbers are in `reasons`.
        let what = format!(
            "{phrase}: {}",
            verdict.reasons.first().map(String::as_str).unwrap_or("")
        );
        self.report_about(
            tgid,
            kind,
            verdict.strength,
            verdict.decisive,
            what,
            attributes,
        );
    }

    /// Once a tick: the next telemetry poll; every 10 s, processes on a GPU
    /// the CUDA sensor has not judged are judged on telemetry alone (weak).
    fn telemetry_tick(&mut self, ticks: u64) {
        let Some(telemetry) = self.telemetry.as_mut() else {
            return;
        };
        match telemetry.source.poll() {
            Ok(Some(poll)) => telemetry.window.push(&poll),
            Ok(None) => {
                info!(sensor = "gpu-telemetry", "the replayed trace ended");
                self.telemetry = None;
                return;
            }
            Err(err) => {
                telemetry.errors += 1;
                if telemetry.errors <= 5 || telemetry.errors.is_multiple_of(1000) {
                    warn!(sensor = "gpu-telemetry", errors = telemetry.errors, "{err}");
                }
            }
        }
        if !ticks.is_multiple_of(10) {
            return;
        }
        let Some(telemetry) = self.telemetry.as_ref() else {
            return;
        };
        let judged: Vec<(u32, assay_classify::gpu::classify::GpuVerdict)> = telemetry
            .window
            .processes()
            .iter()
            .filter(|p| self.cuda.as_ref().is_none_or(|c| !c.follows(p.pid)))
            .filter_map(|p| {
                let summary = telemetry.window.summary(p.pid)?;
                let empty = assay_classify::gpu::classify::CudaActivity::default();
                Some((
                    p.pid,
                    assay_classify::gpu::classify::classify(&empty, Some(&summary)),
                ))
            })
            .collect();
        for (pid, verdict) in judged {
            if self.processes.get_or_load(pid).is_none() {
                continue;
            }
            let empty = assay_classify::gpu::classify::CudaActivity::default();
            self.report_gpu(pid, &empty, &verdict);
        }
    }

    fn tick(&mut self, counters: &PerCpuArray<MapData, u64>) {
        for index in 0..counter::COUNT {
            let Ok(values) = counters.get(&index, 0) else {
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
        self.retry_pending();
        if let Some(cpu_time) = self.cpu_time.as_mut() {
            cpu_time.poll();
        }
        self.check_configs_of_busy_processes();
        // Every minute, the fleet gets a summary of each workload with open
        // verdicts.
        if let Some(fleet) = &self.fleet
            && now_s().is_multiple_of(self.summary_every_s)
        {
            let minute = now_s() / self.summary_every_s;
            let mut by_workload: HashMap<&Workload, Vec<&crate::correlate::Verdict>> =
                HashMap::new();
            for verdict in self.correlator.open_verdicts() {
                by_workload
                    .entry(&verdict.workload)
                    .or_default()
                    .push(verdict);
            }
            for (workload, verdicts) in by_workload {
                let summary = json!({
                    "type": "workload.summary",
                    "host": self.host,
                    "time": humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
                    "workload": workload,
                    "verdicts": verdicts.iter().map(|v| json!({
                        "id": v.id, "class": v.class, "level": v.level, "score": v.score,
                        "active": v.active(),
                    })).collect::<Vec<_>>(),
                });
                if let Ok(line) = serde_json::to_vec(&summary) {
                    fleet.push_summary(format!("summary:{}:{minute}:{workload}", self.host), line);
                }
            }
        }
        // Verdicts whose evidence is all forgotten resolve.
        if now_s().is_multiple_of(10) {
            for verdict in self.correlator.decay(std::time::SystemTime::now()) {
                let process = self
                    .processes
                    .get(verdict.evidence.last().map_or(0, |e| e.pid))
                    .cloned();
                self.write_finding(Change::Resolved, &verdict, None, process.as_ref(), None);
            }
        }
        let now = monotonic_ns();
        self.served_names
            .retain(|_, at| now.saturating_sub(*at) < SERVED_NAME_TTL.as_nanos() as u64);
        for (cookie, limit) in self
            .flows
            .request_cadence(monotonic_ns(), CADENCE_AFTER_NS, 256)
        {
            self.raise_sample_limit(cookie, limit);
            self.count_binary_peer(cookie);
        }
        self.flows
            .expire(monotonic_ns(), FLOW_IDLE.as_nanos() as u64);
    }
}

/// The first bytes of a regular file no larger than [`MAX_CONFIG_FILE`].
fn read_small_file(path: &std::path::Path) -> Option<Vec<u8>> {
    use std::io::Read as _;
    let file = fs::File::open(path).ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.len() > MAX_CONFIG_FILE {
        return None;
    }
    let mut bytes = Vec::new();
    file.take(cmdline::MAX_CONFIG as u64)
        .read_to_end(&mut bytes)
        .ok()?;
    Some(bytes)
}

/// Seconds since the epoch (for "every N seconds" on the 1 s tick).
fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}
