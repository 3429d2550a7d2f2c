//! The loop's half of the ledger: each tick adds the CPU time every
//! process gained in the last poll to its workload's minute, with the
//! verdicts open; GPU telemetry adds busy-seconds, memory and NVML energy.
//! At each minute boundary the finished minute goes to the ledger's thread
//! ([`crate::ledger::writer`]) without waiting; nothing here touches a file.
//!
//! Off (and costing nothing) without `--state-dir`, or with `--no-ledger`.

use std::collections::BTreeMap;

use assay_classify::gpu::samples::Poll;

use super::state::Agent;
use crate::{
    ledger::{Minute, Subject, Usage, VerdictSeen, store, writer::Writer},
    tables::{processes::ProcessInfo, workload::Workload},
};

pub(super) struct LedgerFeed {
    writer: Writer,
    minute: Minute,
    /// When processes were last enumerated on the GPU (ms since the epoch).
    last_enumeration_ms: Option<u64>,
    /// CPU core-seconds since the start, by class (the metrics').
    pub cpu_by_class: BTreeMap<String, f64>,
}

impl LedgerFeed {
    pub(super) fn new(writer: Writer) -> Self {
        Self {
            writer,
            minute: Minute {
                minute: unix_minute(),
                ..Minute::default()
            },
            last_enumeration_ms: None,
            cpu_by_class: BTreeMap::new(),
        }
    }

    pub(super) fn writer_stats(&self) -> &crate::ledger::writer::Stats {
        &self.writer.stats
    }

    /// The usage entry of the workload `process` (or, unknown, pid `tgid`)
    /// belongs to, with its subject set when it first appears.
    fn usage_of(&mut self, tgid: u32, process: Option<&ProcessInfo>) -> &mut Usage {
        let workload = process.map_or(Workload::Process { tgid }, ProcessInfo::workload);
        let usage = self
            .minute
            .workloads
            .entry(workload.to_string())
            .or_default();
        if usage.subject == Subject::default()
            && let Some(p) = process
        {
            usage.subject = subject_of(&workload, p);
            usage.exe_check = p.resolved_exe.clone().zip(p.exe_inode);
        }
        usage
    }

    /// Adds CPU time to a workload's minute and to its classes' totals.
    fn add_cpu(&mut self, tgid: u32, process: Option<&ProcessInfo>, core_s: f64) {
        let usage = self.usage_of(tgid, process);
        usage.cpu_core_s += core_s;
        let classes = store::classes_of(usage);
        let share = core_s / classes.len() as f64;
        for class in classes {
            *self.cpu_by_class.entry(class).or_insert(0.0) += share;
        }
    }
}

/// What the declarations' matchers look at, as the process shows it.
fn subject_of(workload: &Workload, process: &ProcessInfo) -> Subject {
    let (container, pod, service) = match workload {
        Workload::Container { id, pod_uid, .. } => (Some(id.clone()), pod_uid.clone(), None),
        Workload::Service { unit } => (None, None, Some(unit.clone())),
        _ => (None, None, None),
    };
    Subject {
        container,
        pod,
        service,
        cgroup: process.cgroup.clone(),
        exe: None,
        uid: Some(process.uid),
    }
}

fn unix_minute() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (now.as_secs() / 60) as i64
}

impl Agent {
    /// Once a second, after the CPU-time poll.
    pub(super) fn ledger_tick(&mut self) {
        let Some(feed) = self.ledger.as_mut() else {
            return;
        };
        let now = unix_minute();
        if now != feed.minute.minute {
            let done = std::mem::replace(
                &mut feed.minute,
                Minute {
                    minute: now,
                    ..Minute::default()
                },
            );
            feed.writer.send(done);
        }
        // Verdicts first: the CPU time of this tick goes to their classes.
        for verdict in self.reporter.correlator.open_verdicts() {
            let usage = feed
                .minute
                .workloads
                .entry(verdict.workload.to_string())
                .or_default();
            let level = verdict.level.name();
            let incentive = verdict.incentive.as_ref().map(|i| i.network.clone());
            match usage.verdicts.iter_mut().find(|v| v.id == verdict.id) {
                Some(seen) if seen.level != level || seen.incentive != incentive => {
                    level.clone_into(&mut seen.level);
                    seen.explanation = verdict.explanation();
                    seen.incentive = incentive;
                }
                Some(_) => {}
                None => usage.verdicts.push(VerdictSeen {
                    id: verdict.id.clone(),
                    class: verdict.class.name().to_owned(),
                    level: level.to_owned(),
                    explanation: verdict.explanation(),
                    incentive,
                }),
            }
        }
        let Some(cpu_time) = self.cpu_time.as_ref() else {
            return;
        };
        // A process that ran is looked up with its cgroup and session (an
        // exec'd process's are read lazily): once per process, while it is
        // alive, as a connect's owner is.
        for (tgid, core_s) in cpu_time.accounts.last_core_seconds() {
            feed.add_cpu(tgid, self.tables.processes.get_or_load(tgid), core_s);
        }
    }

    /// A process exited with CPU time no poll saw. One that lived between
    /// two polls (a `gzip` in a shell loop) may never have had its cgroup
    /// and session read: it is counted with its parent's workload, which it
    /// shares unless it left its parent's session or cgroup in between.
    pub(super) fn ledger_exit(&mut self, tgid: u32, process: Option<&ProcessInfo>, core_s: f64) {
        let Some(feed) = self.ledger.as_mut() else {
            return;
        };
        if core_s <= 0.0 {
            return;
        }
        let unread = process.filter(|p| p.cgroup.is_none() && p.session.is_none());
        match unread {
            Some(child) => {
                let parent = self.tables.processes.get_or_load(child.ppid);
                feed.add_cpu(tgid, parent.or(process), core_s);
            }
            None => feed.add_cpu(tgid, process, core_s),
        }
    }

    /// GPU busy-seconds, memory and NVML energy per workload, from each
    /// process enumeration (every 10 s): a process's SM utilisation over
    /// the time since the previous one, and its device's board power shared
    /// by the processes' utilisation.
    pub(super) fn ledger_gpu(&mut self, poll: &Poll) {
        let Some(feed) = self.ledger.as_mut() else {
            return;
        };
        let Some(processes) = poll.processes.as_ref() else {
            return;
        };
        let Some(t_ms) = processes.iter().map(|p| p.t_ms).max() else {
            return;
        };
        let previous = feed.last_enumeration_ms.replace(t_ms);
        let Some(seconds) = previous
            .filter(|p| *p < t_ms)
            .map(|p| (t_ms - p) as f64 / 1000.0)
        else {
            return;
        };
        for sample in processes {
            let util = f64::from(sample.sm_util_pct.unwrap_or(0)) / 100.0;
            let on_device: f64 = processes
                .iter()
                .filter(|p| p.device_index == sample.device_index)
                .map(|p| f64::from(p.sm_util_pct.unwrap_or(0)) / 100.0)
                .sum();
            let power_w = poll
                .devices
                .iter()
                .find(|d| d.index == sample.device_index)
                .and_then(|d| d.power_mw)
                .map(|mw| f64::from(mw) / 1000.0);
            let process = self.tables.processes.get(sample.pid);
            let usage = feed.usage_of(sample.pid, process);
            usage.gpu_s += util * seconds;
            usage.gpu_mem_bytes = usage.gpu_mem_bytes.max(sample.used_mem_bytes.unwrap_or(0));
            if let Some(power_w) = power_w
                && on_device > 0.0
            {
                usage.energy_nvml_j += power_w * seconds * util / on_device;
            }
        }
    }

    /// At stop: the partial minute is written and the thread finishes,
    /// within `grace`.
    pub(super) async fn ledger_finish(&mut self, grace: std::time::Duration) {
        let Some(feed) = self.ledger.take() else {
            return;
        };
        let LedgerFeed { writer, minute, .. } = feed;
        let finished = tokio::task::spawn_blocking(move || {
            if let Some(thread) = writer.finish(minute) {
                let _ = thread.join();
            }
        });
        if tokio::time::timeout(grace, finished).await.is_err() {
            tracing::warn!("the ledger did not finish its writes in time");
        }
    }
}
