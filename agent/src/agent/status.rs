//! What the agent says about itself: the Prometheus metrics, and the
//! summary it logs when it stops.

use std::{collections::HashMap, sync::atomic::Ordering};

use assay_common::config::{counter, ring};
use tokio::sync::mpsc;
use tracing::info;

use super::state::Agent;
use crate::{
    correlate::{Class, Level},
    procfs::workers::WorkerStats,
    sensors::gpu::telemetry::Polled,
    sinks::metrics::{self, Sample},
};

/// The next connection to the metrics listener (never, without one).
pub(super) async fn accept(
    listener: Option<&tokio::net::TcpListener>,
) -> std::io::Result<tokio::net::TcpStream> {
    match listener {
        Some(listener) => listener.accept().await.map(|(stream, _)| stream),
        None => std::future::pending().await,
    }
}

/// The next telemetry poll; `None` once, when the source ended (then
/// never again).
pub(super) async fn next_poll(telemetry: &mut Option<mpsc::Receiver<Polled>>) -> Option<Polled> {
    let Some(receiver) = telemetry.as_mut() else {
        return std::future::pending().await;
    };
    let polled = receiver.recv().await;
    if polled.is_none() {
        *telemetry = None;
    }
    polled
}

impl Agent {
    /// Answers one metrics request, off the loop.
    pub(super) fn serve_metrics(&self, accepted: std::io::Result<tokio::net::TcpStream>) {
        if let Ok(stream) = accepted {
            tokio::spawn(metrics::serve(stream, self.metrics_body()));
        }
    }

    /// Losses per ring buffer: the loss counters of the events it carries.
    fn ring_dropped(&self, ring: &ring::Ring) -> u64 {
        ring.losses
            .iter()
            .map(|&i| self.stats.kernel_counters[i as usize])
            .sum()
    }

    /// The Prometheus exposition of the agent's state now.
    fn metrics_body(&self) -> String {
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
        for r in &ring::ALL {
            push(
                "assay_ring_dropped_total",
                "Events lost because their ring buffer was full, per ring (process, flow, sensor).",
                "counter",
                vec![("ring", r.name.to_owned())],
                self.ring_dropped(r) as f64,
            );
        }
        let workers = &self.workers.stats;
        for (outcome, counter) in [
            ("started", &workers.started),
            ("finished", &workers.finished),
            ("timed_out", &workers.timed_out),
            ("skipped", &workers.skipped),
        ] {
            push(
                "assay_worker_jobs_total",
                "Blocking reads (/proc, named files, socket tables) by outcome: started ones finish or time out; timed out and skipped ones are given up on.",
                "counter",
                vec![("outcome", outcome.to_owned())],
                WorkerStats::get(counter) as f64,
            );
        }
        for ((action, mode, result), n) in &self.reporter.enforcer.counts {
            push(
                "assay_enforcement_actions_total",
                "Rungs of [[enforce]] ladders, by action, mode (dry-run, enforce) and result (done, failed, skipped, would-do, disarmed).",
                "counter",
                vec![
                    ("action", (*action).to_owned()),
                    ("mode", (*mode).to_owned()),
                    ("result", (*result).to_owned()),
                ],
                *n as f64,
            );
        }
        push(
            "assay_enforcement_disarmed",
            "1 once the disarmer stood enforcement down (more than --max-actions-per-minute actions in a minute) until the agent restarts.",
            "gauge",
            vec![],
            if self.reporter.enforcer.disarmed() {
                1.0
            } else {
                0.0
            },
        );
        push(
            "assay_named_files_refused_total",
            "Files processes name (configs) not read: FIFOs, devices, symlinks, paths out of the process's root, too large.",
            "counter",
            vec![],
            s.named_files_refused as f64,
        );
        push(
            "assay_exits_reconciled_total",
            "Processes found gone by the periodic listing of /proc, whose exit event never came (a full process ring).",
            "counter",
            vec![],
            s.exits_reconciled as f64,
        );
        push(
            "assay_command_line_reads_dropped_total",
            "Processes found in /proc whose command line was never read: the queue of reads for the workers was full.",
            "counter",
            vec![],
            self.tables.processes.argv_reads_dropped as f64,
        );
        push(
            "assay_flow_rearm_errors_total",
            "Requests for more flow samples the kernel's re-arm map refused (it was full).",
            "counter",
            vec![],
            self.rearm.as_ref().map_or(0, |r| r.errors) as f64,
        );
        if let Some(cuda) = self.cuda.as_ref() {
            let identities = cuda.identities.stats();
            for (outcome, n) in [
                ("parsed", identities.parsed),
                ("cached", identities.cached),
                ("unidentified", identities.unidentified),
                ("unreadable", identities.unreadable),
            ] {
                push(
                    "assay_gpu_library_files_total",
                    "Files named like GPU libraries, by what reading their exports gave: parsed (unidentified: their content is no GPU library), answered from the cache, unreadable.",
                    "counter",
                    vec![("outcome", outcome.to_owned())],
                    n as f64,
                );
            }
        }
        push(
            "assay_cuda_windows_unjudged_total",
            "CUDA launch windows not judged because every worker was busy.",
            "counter",
            vec![],
            s.cuda_windows_unjudged as f64,
        );
        let writer = &self.reporter.outputs().writer().stats;
        push(
            "assay_finding_lines_dropped_total",
            "Finding lines dropped because stdout or the findings file was stuck.",
            "counter",
            vec![],
            writer.dropped.load(Ordering::Relaxed) as f64,
        );
        push(
            "assay_stratum_rejections_total",
            "Stratum-looking lines rejected by the classifier.",
            "counter",
            vec![],
            s.stratum_rejections as f64,
        );
        push(
            "assay_flow_samples_held_total",
            "Flow samples the kernel took past a flow's budget while its JSON text was blank or had a line open.",
            "counter",
            vec![],
            s.flow_samples_held as f64,
        );
        push(
            "assay_flow_holds_exhausted_total",
            "Flow directions that reached the hold cap still blank or with a line open: the rest was not read.",
            "counter",
            vec![],
            s.flow_holds_exhausted as f64,
        );
        push(
            "assay_findings_total",
            "Finding lines written.",
            "counter",
            vec![],
            self.reporter.findings as f64,
        );
        push(
            "assay_suppressed_total",
            "Verdict events a policy rule kept from being reported.",
            "counter",
            vec![],
            self.reporter.suppressed as f64,
        );
        let mut open: HashMap<(&'static str, &'static str), u64> = HashMap::new();
        for verdict in self.reporter.correlator.open_verdicts() {
            *open
                .entry((verdict.class.name(), level_name(verdict.level)))
                .or_default() += 1;
        }
        for class in Class::ALL.map(Class::name) {
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
            self.tables.processes.len() as f64,
        );
        push(
            "assay_workloads_tracked",
            "Workloads with evidence.",
            "gauge",
            vec![],
            self.reporter.correlator.workload_count() as f64,
        );
        if let Some(feed) = self.ledger.as_ref() {
            // Bounded: the classes, three sources, whatever the workloads.
            for class in Class::ALL.map(Class::name) {
                push(
                    "assay_workload_cpu_seconds_total",
                    "CPU core-seconds the workloads used, by the class of their verdicts \
                     (suspected or above; none: general), as the ledger records them.",
                    "counter",
                    vec![("class", class.to_owned())],
                    feed.cpu_by_class.get(class).copied().unwrap_or(0.0),
                );
            }
            let stats = feed.writer_stats();
            let energy = stats.energy.lock().map(|e| e.clone()).unwrap_or_default();
            for class in Class::ALL.map(Class::name) {
                for source in crate::ledger::ENERGY_SOURCES {
                    push(
                        "assay_workload_energy_joules_total",
                        "Energy the workloads used, by class and source (rapl: measured, \
                         shared by CPU time; nvml: GPU board power, shared by utilisation; \
                         estimated: from watts per core and GPU), as written to the ledger.",
                        "counter",
                        vec![("class", class.to_owned()), ("source", source.to_owned())],
                        energy
                            .get(&(class.to_owned(), source))
                            .copied()
                            .unwrap_or(0.0),
                    );
                }
            }
            use std::sync::atomic::Ordering::Relaxed;
            for (name, help, value) in [
                (
                    "assay_ledger_minutes_written_total",
                    "Workload-minutes batches written to the ledger.",
                    stats.minutes_written.load(Relaxed),
                ),
                (
                    "assay_ledger_write_errors_total",
                    "Ledger writes that failed (retried up to three times).",
                    stats.write_errors.load(Relaxed),
                ),
                (
                    "assay_ledger_minutes_dropped_total",
                    "Minutes dropped because the ledger's thread fell behind.",
                    stats.minutes_dropped.load(Relaxed),
                ),
            ] {
                push(name, help, "counter", vec![], value as f64);
            }
            push(
                "assay_ledger_unattributed_exits_total",
                "Exited processes whose CPU time no workload could be found for (their \
                 cgroup and session never read, no known parent or process in the same \
                 cgroup): recorded under their own pid.",
                "counter",
                vec![],
                feed.unattributed_exits as f64,
            );
            push(
                "assay_ledger_unattributed_cpu_seconds_total",
                "CPU core-seconds of those exited processes.",
                "counter",
                vec![],
                feed.unattributed_core_s,
            );
        }
        let (cpu, rss) = metrics::own_usage();
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
        metrics::render(&samples)
    }

    pub(super) fn log_summary(&self) {
        let s = &self.stats;
        let workers = &self.workers.stats;
        info!(
            events = s.events,
            findings = self.reporter.findings,
            suppressed = self.reporter.suppressed,
            enforcement_disarmed = self.reporter.enforcer.disarmed(),
            decode_errors = s.decode_errors,
            stratum_rejections = s.stratum_rejections,
            flow_samples_held = s.flow_samples_held,
            flow_holds_exhausted = s.flow_holds_exhausted,
            process_ring_dropped = self.ring_dropped(&ring::PROCESS),
            flow_ring_dropped = self.ring_dropped(&ring::FLOW),
            sensor_ring_dropped = self.ring_dropped(&ring::SENSOR),
            flows_adopted = s.kernel_counters[counter::FLOW_ADOPTED as usize],
            unattributed_stratum = s.unattributed_stratum,
            unattributed_observations = s.unattributed_observations,
            socket_snapshots = s.socket_snapshots,
            native_module_scans = self.storage.scanned,
            worker_timeouts = WorkerStats::get(&workers.timed_out),
            worker_skips = WorkerStats::get(&workers.skipped),
            named_files_refused = s.named_files_refused,
            command_line_reads_dropped = self.tables.processes.argv_reads_dropped,
            exits_reconciled = s.exits_reconciled,
            flow_rearm_errors = self.rearm.as_ref().map_or(0, |r| r.errors),
            cuda_windows_unjudged = s.cuda_windows_unjudged,
            gpu_libraries_unidentified = self
                .cuda
                .as_ref()
                .map_or(0, |c| c.identities.stats().unidentified),
            flows_evicted = self.tables.flows.evicted,
            work_loop_flows_watched = self.work_loop.watched,
            work_loop_watch_full = self.work_loop.watch_full,
            work_loop_flows_capped = self.work_loop.capped,
            work_loop_windows = self.work_loop.windows,
            work_loop_flows_exhausted = self.work_loop.exhausted,
            fpu_workload_processes_dropped = self.fpu.workload_counts().2,
            processes = self.tables.processes.len(),
            processes_not_tracked = self.tables.processes.dropped,
            "detached; bye"
        );
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Observed => "observed",
        Level::Suspected => "suspected",
        Level::Confirmed => "confirmed",
    }
}
