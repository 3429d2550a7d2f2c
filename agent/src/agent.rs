//! The running agent: drains the ring buffer, keeps the process and flow
//! tables, runs classifiers, feeds the correlator and writes findings.
//!
//! Single-threaded on purpose: events arrive in kernel order through one
//! ring buffer, and every table is touched by one owner, without locks.

use std::{fs, time::Duration};

use anyhow::{Context as _, Result, bail};
use assay_common::config::counter;
use aya::maps::{HashMap as BpfHashMap, MapData, PerCpuArray, RingBuf};
use serde_json::{Map, Value, json};
use tokio::{
    io::unix::AsyncFd,
    signal::unix::{SignalKind, signal},
};
use tracing::{debug, info, warn};

use crate::{
    classify::{Direction, stratum},
    correlate::{Change, Correlator, Verdict},
    cpu::{self, FpuSensor},
    events::{self, DecodeError, Event},
    evidence::{Evidence, EvidenceKind},
    flows::FlowTable,
    loader::{self, LoadOptions},
    process_table::{ProcessInfo, ProcessTable},
    sink::{Finding, JsonLines},
    time::{monotonic_ns, wall_of_monotonic},
    workload::Workload,
};

/// Flows idle this long are forgotten by user space.
const FLOW_IDLE: Duration = Duration::from_secs(600);
const MAX_PROCESSES: usize = 65_536;
/// Seconds per CPU-fingerprint window.
const FPU_WINDOW_TICKS: u64 = 2;
/// How often the ring buffer is drained when the kernel did not wake us.
const DRAIN_PERIOD: Duration = Duration::from_millis(50);
const MAX_FLOWS: usize = 65_536;

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub load: LoadOptions,
    pub host: Option<String>,
}

/// What user space rejected or could not use; logged, never silent.
#[derive(Debug, Default)]
pub struct Stats {
    pub events: u64,
    pub decode_errors: u64,
    pub stratum_rejections: u64,
    pub unattributed_stratum: u64,
    pub findings: u64,
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
    let known = state.processes.scan_proc();
    info!(processes = known, "agent ready");

    let mut ticks: u64 = 0;
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
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
            }
            _ = tick.tick() => {
                state.tick(&counters);
                ticks += 1;
                if ticks.is_multiple_of(FPU_WINDOW_TICKS) {
                    for finding in fpu.poll() {
                        state.on_randomx(finding);
                    }
                }
            }
            _ = sigterm.recv() => { info!("SIGTERM: stopping"); break; }
            _ = sigint.recv() => { info!("SIGINT: stopping"); break; }
        }
    }
    state.tick(&counters);
    drop(ring);
    drop(counters);
    // Dropping the object closes every program and link fd: the kernel
    // detaches everything, nothing is pinned.
    drop(loaded);
    let s = &state.stats;
    info!(
        events = s.events,
        findings = s.findings,
        decode_errors = s.decode_errors,
        stratum_rejections = s.stratum_rejections,
        kernel_dropped = (0..counter::COUNT)
            .filter(|&i| counter::is_loss(i))
            .map(|i| s.kernel_counters[i as usize])
            .sum::<u64>(),
        flows_adopted = s.kernel_counters[counter::FLOW_ADOPTED as usize],
        unattributed_stratum = s.unattributed_stratum,
        flows_evicted = state.flows.evicted,
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
    sink: JsonLines<std::io::Stdout>,
    pub stats: Stats,
}

impl State {
    pub fn new(host: String, sample_segments: u32) -> Self {
        Self {
            correlator: Correlator::new(&host),
            host,
            processes: ProcessTable::new(MAX_PROCESSES),
            flows: FlowTable::new(MAX_FLOWS, sample_segments),
            sink: JsonLines::stdout(),
            stats: Stats::default(),
        }
    }

    fn handle(&mut self, record: &[u8]) {
        self.stats.events += 1;
        match events::decode(record) {
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
            Event::Exec(exec) => self.processes.on_exec(&exec),
            Event::Exit(exit) => {
                let tgid = exit.header.tgid;
                let process = self.processes.on_exit(tgid);
                for verdict in self.correlator.process_exited(tgid) {
                    self.write_finding(Change::Resolved, &verdict, None, process.as_ref(), None);
                }
            }
            Event::Connect(connect) => {
                self.flows.on_connect(&connect);
                // Make sure the connecting process is known while it is alive.
                let _ = self.processes.get_or_load(connect.header.tgid);
            }
            Event::Sample(sample) => {
                let outcome = self.flows.on_sample(&sample);
                self.stats.stratum_rejections += outcome.rejections.len() as u64;
                for rejection in outcome.rejections {
                    debug!(
                        cookie = sample.cookie,
                        "stratum-looking line rejected: {rejection}"
                    );
                }
                let direction = if sample.direction == assay_common::event::direction::EGRESS {
                    Direction::Outbound
                } else {
                    Direction::Inbound
                };
                for message in outcome.messages {
                    self.on_stratum(sample.cookie, direction, message);
                }
            }
        }
    }

    fn on_stratum(&mut self, cookie: u64, direction: Direction, message: stratum::Message) {
        let Some(flow) = self.flows.get(cookie) else {
            return;
        };
        let Some(owner) = flow.owner.clone() else {
            // An accepted socket or one connected before the agent started:
            // the local process may be the pool, not the miner.
            self.stats.unattributed_stratum += 1;
            debug!(
                cookie,
                "stratum on a flow with no connect record: not attributed"
            );
            return;
        };
        let first_payload_ns = flow.first_payload_ns;
        // What the pool side says is decisive only on a flow whose client
        // side speaks JSON lines too: a server cannot frame a benign client
        // by sending it stratum-shaped lines.
        let mut message = message;
        if direction == Direction::Inbound && !flow.outbound_is_json_lines() {
            message.decisive = false;
        }
        let remote = flow.remote;
        let local = flow.local;
        let process = self.processes.get_or_load(owner.tgid).cloned();
        let workload = process
            .as_ref()
            .map(|p| p.workload())
            .unwrap_or(Workload::Process { tgid: owner.tgid });

        let variant = message.variant;
        let mut attributes = Map::new();
        attributes.insert("protocol".into(), json!("stratum-v1"));
        if let Some(variant) = variant {
            attributes.insert("variant".into(), json!(variant.id()));
            attributes.insert("variant_name".into(), json!(variant.describe()));
        }
        attributes.insert("method".into(), json!(message.method));
        attributes.insert("direction".into(), json!(direction));
        if let Some(remote) = remote {
            attributes.insert("remote".into(), json!(remote.to_string()));
        }
        if let Some(local) = local {
            attributes.insert("local".into(), json!(local.to_string()));
        }
        for (key, value) in [
            ("agent", &message.agent),
            ("login", &message.login),
            ("worker", &message.worker),
        ] {
            if let Some(value) = value {
                attributes.insert(key.into(), Value::String(value.clone()));
            }
        }
        if !message.algorithms.is_empty() {
            attributes.insert("algorithms".into(), json!(message.algorithms));
        }

        let who = format!(
            "pid {} ({})",
            owner.tgid,
            process
                .as_ref()
                .map(|p| p.comm.as_str())
                .unwrap_or(&owner.comm)
        );
        let verb = match direction {
            Direction::Outbound => "sent",
            Direction::Inbound => "received",
        };
        let mut summary = format!(
            "{who} {verb} a {} `{}` message {} {}",
            variant.map(|v| v.describe()).unwrap_or("stratum"),
            message.method,
            if direction == Direction::Outbound {
                "to"
            } else {
                "from"
            },
            remote
                .map(|r| r.to_string())
                .unwrap_or_else(|| "an unknown peer".into()),
        );
        if let Some(agent) = &message.agent {
            summary.push_str(&format!(", miner agent \"{agent}\""));
        }
        if let Some(login) = &message.login {
            summary.push_str(&format!(", login \"{login}\""));
        }

        let now = std::time::SystemTime::now();
        let evidence = Evidence {
            workload,
            pid: owner.tgid,
            kind: EvidenceKind::Stratum,
            strength: if message.decisive { 1.0 } else { 0.5 },
            decisive: message.decisive,
            summary,
            attributes,
            first_seen: first_payload_ns.map(wall_of_monotonic).unwrap_or(now),
            last_seen: now,
        };
        self.report(evidence, process.as_ref(), first_payload_ns);
    }

    fn on_randomx(&mut self, finding: cpu::Finding) {
        let Some(process) = self.processes.get_or_load(finding.tgid).cloned() else {
            return;
        };
        let cpu::Finding {
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
        let finding = Finding::new(
            change,
            verdict,
            &self.host,
            trigger,
            process,
            decided_after_ms,
        );
        match self.sink.write(&finding) {
            Ok(()) => self.stats.findings += 1,
            Err(err) => warn!("cannot write finding {}: {err}", verdict.id),
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
        self.flows
            .expire(monotonic_ns(), FLOW_IDLE.as_nanos() as u64);
    }
}
