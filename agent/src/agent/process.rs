//! Process signs to evidence: the RandomX FPU marker, miner hygiene,
//! command-line and config-file hints, and what busy processes' files and
//! mappings say (read on a worker).

use assay_classify::{
    cmdline,
    randomx::{FpuWindow, RandomxMarker},
};
use assay_common::event::{HygieneEvent, hygiene as hygiene_event};
use serde_json::{Map, json};

use super::{
    state::{ANCESTORS_IN_FINDING, Agent},
    work::{self, BusyFindings, Done},
};
use crate::{
    evidence::{EvidenceKind, hygiene},
    sensors::{decode::c_string, fpu, fpu_workload},
};

/// A process using at least this many cores gets its config file and
/// mappings read (once per program image).
const BUSY_CHECK_AT_CORES: f64 = 0.5;
/// Processes whose files were checked, remembered at most.
const MAX_BUSY_CHECKED: usize = 16_384;

/// What the RandomX marker's evidence says of the rounding modes seen,
/// for a process and for a workload alike.
fn rounding_attributes(
    marker: &RandomxMarker,
    window: &FpuWindow,
) -> Map<String, serde_json::Value> {
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
    attributes
}

impl Agent {
    pub(super) fn on_randomx(&mut self, finding: fpu::Finding) {
        let fpu::Finding {
            tgid,
            thread,
            threads,
            exited_threads,
            window,
            marker,
        } = finding;
        let Some(process) = self.tables.processes.get_for_evidence(tgid).cloned() else {
            return;
        };
        let mut attributes = rounding_attributes(&marker, &window);
        // Summed over the process's threads, those that exited included.
        attributes.insert("thread".into(), json!(thread));
        attributes.insert("threads".into(), json!(threads));
        attributes.insert("threads_exited".into(), json!(exited_threads));
        attributes.insert(
            "cpu_cores".into(),
            json!((window.cpu_cores * 100.0).round() / 100.0),
        );
        attributes.insert("exe".into(), json!(process.exe));
        let what = format!(
            "has threads that saved random non-default FPU rounding modes \
             (RandomX's CFROUND) in a large share of their context switches{}",
            if marker.busy {
                " while keeping a CPU busy"
            } else {
                ""
            }
        );
        self.report_randomx(tgid, &marker, &what, attributes);
    }

    /// A workload (cgroup) whose processes together show the marker: the
    /// evidence is about the process that heads it (the root of its
    /// process tree in the table, a miner's supervisor), or else one of
    /// the live processes that contributed, and names those.
    pub(super) fn on_randomx_workload(&mut self, finding: fpu_workload::WorkloadFinding) {
        let fpu_workload::WorkloadFinding {
            candidate,
            marker,
            held_polls,
        } = finding;
        let in_it: Vec<(u32, u32)> = self
            .tables
            .processes
            .iter()
            .filter(|p| p.cgroup_id == candidate.workload)
            .map(|p| (p.pid, p.ppid))
            .collect();
        let head = in_it
            .iter()
            .filter(|&&(_, ppid)| !in_it.iter().any(|&(pid, _)| pid == ppid))
            .map(|&(pid, _)| pid)
            .min();
        let Some(tgid) = head
            .into_iter()
            .chain(candidate.live.iter().copied())
            .find(|&tgid| self.tables.processes.get_for_evidence(tgid).is_some())
        else {
            return;
        };
        let window = candidate.window;
        let mut attributes = rounding_attributes(&marker, &window);
        // Summed over the workload's processes, those that exited included.
        attributes.insert("scope".into(), json!("workload"));
        attributes.insert("cgroup_id".into(), json!(candidate.workload));
        attributes.insert("pids".into(), json!(candidate.live));
        attributes.insert("processes".into(), json!(candidate.processes));
        attributes.insert("processes_exited".into(), json!(candidate.exited));
        attributes.insert("held_reads".into(), json!(held_polls));
        let exe = self.tables.processes.get(tgid).map(|p| p.exe.clone());
        attributes.insert("exe".into(), json!(exe.unwrap_or_default()));
        attributes.insert(
            "cpu_cores".into(),
            json!((window.cpu_cores * 100.0).round() / 100.0),
        );
        let what = format!(
            "heads a workload whose processes, {} of them exited, together saved \
             random non-default FPU rounding modes (RandomX's CFROUND) in a large \
             share of their context switches while keeping a CPU busy",
            candidate.exited
        );
        self.report_randomx(tgid, &marker, &what, attributes);
    }

    /// Reports the RandomX marker about `tgid`: decisive, full-weight
    /// evidence where the marker is decisive, half-weight otherwise.
    fn report_randomx(
        &mut self,
        tgid: u32,
        marker: &RandomxMarker,
        what: &str,
        attributes: Map<String, serde_json::Value>,
    ) {
        let evidence = self.evidence_about(
            tgid,
            EvidenceKind::RandomxFpu,
            if marker.decisive { 1.0 } else { 0.5 },
            marker.decisive,
            what,
            attributes,
        );
        self.report(evidence, None);
    }

    pub(super) fn on_hygiene(&mut self, event: &HygieneEvent) {
        let name = c_string(&event.path);
        let Some(sign) = hygiene::assess(event.what, event.flags, event.value, &name) else {
            return;
        };
        let tgid = event.header.tgid;
        // modprobe, run through a shell by the miner: the miner wanted it.
        let who = if event.what == hygiene_event::MODULE_LOAD {
            match self.module_requester(tgid) {
                Some(requester) => requester,
                None => return,
            }
        } else {
            tgid
        };
        self.report_hygiene(who, sign);
    }

    /// The process that wanted a module: the loader's nearest ancestor that
    /// is not a module tool, a shell or sudo. None when that is init (boot
    /// and udev loading modules).
    fn module_requester(&self, loader: u32) -> Option<u32> {
        const GO_BETWEENS: [&str; 8] = [
            "modprobe", "insmod", "kmod", "sh", "bash", "dash", "sudo", "busybox",
        ];
        let is_go_between = |comm: &str| GO_BETWEENS.contains(&comm);
        let processes = &self.tables.processes;
        if processes
            .get(loader)
            .is_none_or(|p| !is_go_between(&p.comm))
        {
            return Some(loader);
        }
        processes
            .ancestors(loader, ANCESTORS_IN_FINDING)
            .into_iter()
            .find(|p| !is_go_between(&p.comm))
            .filter(|p| p.pid > 1)
            .map(|p| p.pid)
    }

    fn report_hygiene(&mut self, tgid: u32, sign: hygiene::HygieneSign) {
        let evidence = self.evidence_about(
            tgid,
            hygiene::KIND,
            sign.strength,
            false,
            &sign.summary,
            sign.attributes,
        );
        self.report(evidence, None);
    }

    /// Pool URLs, miner flags and wallets on a process's command line:
    /// weak evidence (never above `cmdline::MAX_COMBINED`).
    pub(super) fn check_command_line(&mut self, tgid: u32) {
        let Some(process) = self.tables.processes.get(tgid) else {
            return;
        };
        let hints = cmdline::argv_hints(&process.argv);
        if !hints.is_empty() {
            self.report_hints(tgid, hints, None);
        }
    }

    /// A process that keeps a core busy gets its files looked at once per
    /// program image, on a worker: its config file (a renamed miner with no
    /// arguments is caught this way) and its mappings (a RandomX dataset).
    pub(super) fn check_busy_processes(&mut self) {
        let Some(cpu_time) = self.cpu_time.as_ref() else {
            return;
        };
        let busy: Vec<u32> = cpu_time
            .accounts
            .busy()
            .filter(|&(tgid, cores)| {
                cores >= BUSY_CHECK_AT_CORES
                    && !self.busy_checked.contains(&tgid)
                    && tgid != std::process::id()
            })
            .map(|(tgid, _)| tgid)
            .collect();
        for tgid in busy {
            if self.busy_checked.len() >= MAX_BUSY_CHECKED {
                return;
            }
            if let Some(pmu) = self.pmu.as_mut()
                && pmu.follow(tgid).is_err()
            {
                pmu.open_errors += 1;
            }
            let Some(process) = self.tables.processes.get_or_load(tgid) else {
                continue;
            };
            let argv = process.argv_known.then(|| process.argv.clone());
            let exe = process.exe.clone();
            // Only marked as checked once a worker took the job: skipped
            // ones are tried again on the next tick.
            if self
                .workers
                .submit(move || Done::Busy(work::look_at_busy_process(tgid, argv.as_deref(), &exe)))
            {
                self.busy_checked.insert(tgid);
            }
        }
    }

    pub(super) fn on_busy_findings(&mut self, found: BusyFindings) {
        self.stats.named_files_refused += u64::from(found.refused);
        // The process may have exited, or exec'd, meanwhile.
        if !self.busy_checked.contains(&found.tgid) {
            return;
        }
        if let Some((bytes, page_kib)) = found.dataset_mapping
            && let Some(sign) = hygiene::assess(hygiene_event::DATASET_MAPPING, page_kib, bytes, "")
        {
            self.report_hygiene(found.tgid, sign);
        }
        if let Some((path, hints)) = found.config {
            self.report_hints(found.tgid, hints, Some(path));
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
        let evidence = self.evidence_about(
            tgid,
            EvidenceKind::CommandLine,
            strength,
            false,
            &what,
            attributes,
        );
        self.report(evidence, None);
    }
}
