//! The loop's half of the ledger: each tick adds the CPU time every
//! process gained in the last poll to its workload's minute, with the
//! verdicts open; GPU telemetry adds busy-seconds, memory and NVML energy.
//! At each minute boundary the finished minute goes to the ledger's thread
//! ([`crate::ledger::writer`]) without waiting; nothing here touches a file.
//!
//! Off (and costing nothing) without `--state-dir`, or with `--no-ledger`.

use std::collections::{BTreeMap, HashMap};

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
    /// The workload last seen in each cgroup (by id) and when (Unix
    /// minute), from processes whose cgroup and session were read: an
    /// exited process that never had its own read is attributed by its
    /// cgroup id, which every event carries. Entries unused for
    /// [`CGROUP_MEMORY_MINUTES`] are forgotten.
    by_cgroup: HashMap<u64, (Workload, Subject, i64)>,
    /// Exited processes whose CPU time no workload could be found for
    /// (recorded under their own pid), and that CPU time.
    pub unattributed_exits: u64,
    pub unattributed_core_s: f64,
}

/// How long a cgroup's workload is remembered after its last use.
const CGROUP_MEMORY_MINUTES: i64 = 10;

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
            by_cgroup: HashMap::new(),
            unattributed_exits: 0,
            unattributed_core_s: 0.0,
        }
    }

    pub(super) fn writer_stats(&self) -> &crate::ledger::writer::Stats {
        &self.writer.stats
    }

    /// The usage entry of the workload `process` (or, unknown, pid `tgid`)
    /// belongs to, with its subject set when it first appears.
    fn usage_of(&mut self, tgid: u32, process: Option<&ProcessInfo>) -> &mut Usage {
        let workload = process.map_or(Workload::Process { tgid }, ProcessInfo::workload);
        if let Some(p) = process.filter(|p| p.cgroup_id != 0 && p.context_known()) {
            let subject = subject_of(&workload, p);
            self.by_cgroup
                .insert(p.cgroup_id, (workload.clone(), subject, self.minute.minute));
        }
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
        self.count_classes(classes, core_s);
    }

    /// Adds CPU time to the workload last seen in cgroup `cgroup_id`, if
    /// one was: false when none was.
    fn add_cpu_by_cgroup(&mut self, cgroup_id: u64, core_s: f64) -> bool {
        let Some((workload, subject, _)) = self.by_cgroup.get(&cgroup_id) else {
            return false;
        };
        let usage = self
            .minute
            .workloads
            .entry(workload.to_string())
            .or_default();
        if usage.subject == Subject::default() {
            usage.subject = subject.clone();
        }
        usage.cpu_core_s += core_s;
        let classes = store::classes_of(usage);
        self.count_classes(classes, core_s);
        true
    }

    /// See [`Agent::ledger_exit`]: `parent` is what the table holds of the
    /// process's parent, if anything.
    fn exited(
        &mut self,
        tgid: u32,
        process: Option<&ProcessInfo>,
        parent: Option<&ProcessInfo>,
        core_s: f64,
    ) {
        if core_s <= 0.0 {
            return;
        }
        let Some(child) = process.filter(|p| !p.context_known()) else {
            if process.is_none() {
                self.unattributed_exits += 1;
                self.unattributed_core_s += core_s;
            }
            self.add_cpu(tgid, process, core_s);
            return;
        };
        let parent = parent.filter(|p| {
            p.context_known() && (child.cgroup_id == 0 || p.cgroup_id == child.cgroup_id)
        });
        if let Some(parent) = parent {
            self.add_cpu(tgid, Some(parent), core_s);
        } else if child.cgroup_id == 0 || !self.add_cpu_by_cgroup(child.cgroup_id, core_s) {
            self.unattributed_exits += 1;
            self.unattributed_core_s += core_s;
            self.add_cpu(tgid, Some(child), core_s);
        }
    }

    /// The metrics' CPU by class: `core_s` shared among `classes`.
    fn count_classes(&mut self, classes: Vec<String>, core_s: f64) {
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
            feed.by_cgroup
                .retain(|_, (_, _, seen)| now - *seen < CGROUP_MEMORY_MINUTES);
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
    /// and session read, and it is gone now: nothing is read from /proc
    /// here (on the loop, for a process that may be one of thousands
    /// exiting). Its CPU time goes to its parent's workload when the table
    /// knows the parent's context and the child stayed in the parent's
    /// cgroup; else to the workload last seen in the cgroup it ran in (the
    /// cgroup id its events carried); else it is counted as unattributed
    /// and recorded under its own pid.
    pub(super) fn ledger_exit(&mut self, tgid: u32, process: Option<&ProcessInfo>, core_s: f64) {
        let Some(feed) = self.ledger.as_mut() else {
            return;
        };
        let parent = process.and_then(|p| self.tables.processes.get(p.ppid));
        feed.exited(tgid, process, parent, core_s);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(name: &str) -> (LedgerFeed, std::path::PathBuf) {
        let dir =
            std::env::temp_dir().join(format!("assay-ledger-feed-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let writer = Writer::start(dir.clone(), crate::ledger::Options::default(), None);
        (LedgerFeed::new(writer), dir)
    }

    fn process(pid: u32, ppid: u32, cgroup: &str, cgroup_id: u64) -> ProcessInfo {
        let mut info = ProcessInfo::for_tests(pid);
        info.ppid = ppid;
        info.cgroup = Some(cgroup.into());
        info.cgroup_id = cgroup_id;
        info.session = Some(4242);
        info
    }

    fn cpu_of(feed: &LedgerFeed) -> BTreeMap<String, f64> {
        feed.minute
            .workloads
            .iter()
            .map(|(k, u)| (k.clone(), u.cpu_core_s))
            .collect()
    }

    /// A short-lived child whose context was never read is attributed
    /// from what the table holds, never from /proc: its parent when it
    /// stayed in the parent's cgroup, else the workload last seen in its
    /// cgroup, else it is counted as unattributed (under its own pid).
    #[test]
    fn an_exited_process_is_attributed_without_proc_and_the_rest_is_counted() {
        let (mut feed, dir) = feed("exit");
        let tenant = &format!("/system.slice/docker-{}.scope", "a".repeat(64));
        let other = &format!("/system.slice/docker-{}.scope", "b".repeat(64));
        let shell = process(10, 1, tenant, 7);
        // A process polled in `other` makes that cgroup's workload known.
        let polled = process(20, 1, other, 8);
        feed.add_cpu(20, Some(&polled), 1.0);
        let tenant_key = shell.workload().to_string();
        let other_key = polled.workload().to_string();
        assert_ne!(tenant_key, other_key);

        // Stayed in its parent's cgroup: the parent's workload.
        let child = process(11, 10, tenant, 7).with_context_unread();
        feed.exited(11, Some(&child), Some(&shell), 2.0);
        // Moved to `other` before it ran: not the parent's, but `other`'s.
        let moved = process(12, 10, other, 8).with_context_unread();
        feed.exited(12, Some(&moved), Some(&shell), 3.0);
        // Its parent unknown, its cgroup's workload known: that one.
        let orphan = process(13, 99, other, 8).with_context_unread();
        feed.exited(13, Some(&orphan), None, 0.5);
        // The parent's context unread too, and a cgroup never seen: counted.
        let unread_parent = process(30, 1, "/x", 9).with_context_unread();
        let lost = process(31, 30, "/x", 9).with_context_unread();
        feed.exited(31, Some(&lost), Some(&unread_parent), 0.25);
        // Not in the table at all: counted.
        feed.exited(40, None, None, 0.125);
        // A process with its own context: its own workload, not counted.
        feed.exited(10, Some(&shell), None, 4.0);

        let cpu = cpu_of(&feed);
        assert_eq!(cpu[&tenant_key], 6.0, "{cpu:?}");
        assert_eq!(cpu[&other_key], 4.5, "{cpu:?}");
        assert_eq!(cpu["process 31"], 0.25, "{cpu:?}");
        assert_eq!(cpu["process 40"], 0.125, "{cpu:?}");
        assert_eq!(feed.unattributed_exits, 2);
        assert_eq!(feed.unattributed_core_s, 0.375);
        let total: f64 = feed.cpu_by_class.values().sum();
        assert_eq!(total, 10.875, "every second is counted once");
        drop(feed);
        let _ = std::fs::remove_dir_all(dir);
    }
}
