//! The loop's side of enforcement: the facts a ladder needs, gathered
//! from the tables and the CUDA sensor, and the ladders and undos handed
//! to the workers (a dry run touches nothing, so it runs here).

use super::{state::Agent, work::Done};
use crate::{
    enforce::{self, Mode, Wanted, ladder::Facts},
    tables::{processes::ProcessInfo, workload::Workload},
};

/// Processes of one tree looked at, at most.
const MAX_TREE: usize = 1024;

impl Agent {
    /// Starts the ladders and undos that are due, as far as free workers
    /// allow; the rest wait for the next tick.
    pub(super) fn enforce_pending(&mut self) {
        for undo in self.reporter.enforcer.take_undo_due() {
            if self.workers.available() == 0 {
                self.reporter.enforcer.defer_undo(undo);
                continue;
            }
            let _ = self.workers.submit(move || {
                enforce::undo_logged(&undo);
                Done::Undone
            });
        }
        for wanted in self.reporter.enforcer.take_wanted() {
            let dry = self.reporter.enforcer.mode() == Mode::DryRun;
            if !dry && self.workers.available() == 0 {
                self.reporter.enforcer.defer(wanted);
                continue;
            }
            let facts = self.enforcement_facts(&wanted);
            let job = self
                .reporter
                .enforcer
                .prepare(wanted, &facts, crate::time::monotonic_ns());
            if dry {
                self.on_enforced(enforce::run(job));
            } else {
                let _ = self
                    .workers
                    .submit(move || Done::Enforced(enforce::run(job)));
            }
        }
    }

    /// A ladder ran: its record written.
    pub(super) fn on_enforced(&mut self, ran: enforce::Ran) {
        let pid = ran.verdict.evidence.last().map_or(0, |e| e.pid);
        let process = self.tables.processes.get(pid).cloned();
        self.reporter.write_enforced(&ran, process.as_ref());
    }

    /// Its own cgroup (or why none), its process tree as the rails allow,
    /// and whether any of it holds a CUDA context.
    fn enforcement_facts(&self, wanted: &Wanted) -> Facts {
        let rails = &self.reporter.enforcer.rails;
        let pid = wanted.verdict.evidence.last().map_or(0, |e| e.pid);
        let process = wanted
            .process
            .as_ref()
            .or_else(|| self.tables.processes.get(pid));
        let Some(process) = process else {
            return refused(format!("pid {pid} is gone"));
        };
        if let Some(why) = rails.process_refused(process.pid, process.ppid) {
            return refused(why);
        }
        let table = &self.tables.processes;
        let same_cgroup = |p: &ProcessInfo| {
            (process.cgroup_id != 0 && p.cgroup_id == process.cgroup_id)
                || (p.cgroup.is_some() && p.cgroup == process.cgroup)
        };
        let cgroup = match process.cgroup.as_deref() {
            None => Err(format!("the cgroup of pid {} is not known", process.pid)),
            // A lone process's cgroup is whatever it was started in.
            Some(_) if matches!(wanted.verdict.workload, Workload::Process { .. }) => Err(format!(
                "pid {} is a workload of its own, not its cgroup",
                process.pid
            )),
            Some(path) => match rails.cgroup_refused(path) {
                Some(why) => Err(why),
                // Own only when every process in it is this workload's
                // (checked again against the kernel's list before acting).
                None => match table
                    .iter()
                    .find(|p| same_cgroup(p) && p.workload() != wanted.verdict.workload)
                {
                    Some(other) => Err(format!(
                        "{path} also holds pid {} ({}), another workload",
                        other.pid, other.comm
                    )),
                    None => Ok(path.to_owned()),
                },
            },
        };
        let mut tree = vec![process.pid];
        let mut next = 0;
        while next < tree.len() && tree.len() < MAX_TREE {
            let parent = tree[next];
            tree.extend(
                table
                    .iter()
                    .filter(|p| p.ppid == parent && !tree.contains(&p.pid))
                    .map(|p| p.pid)
                    .collect::<Vec<_>>(),
            );
            next += 1;
        }
        let allowed = |p: &ProcessInfo| {
            rails.process_refused(p.pid, p.ppid).is_none()
                && p.cgroup
                    .as_deref()
                    .is_none_or(|c| rails.cgroup_protected(c).is_none())
        };
        tree.retain(|pid| table.get(*pid).is_none_or(allowed));
        let in_cgroup = |p: &&ProcessInfo| tree.contains(&p.pid) || same_cgroup(p);
        let gpu = self.cuda.as_ref().and_then(|cuda| {
            table
                .iter()
                .filter(in_cgroup)
                .find(|p| cuda.follows(p.pid))
                .map(|p| {
                    format!(
                        "pid {} ({}) uses the CUDA driver: a frozen GPU context can stall the \
                         device for every other tenant, so it is never frozen",
                        p.pid, p.comm
                    )
                })
        });
        Facts {
            cgroup,
            pids: tree,
            gpu,
            endpoints: enforce::deny::endpoints(&wanted.verdict),
        }
    }
}

fn refused(why: String) -> Facts {
    Facts {
        cgroup: Err(why),
        pids: Vec::new(),
        gpu: None,
        endpoints: Vec::new(),
    }
}
