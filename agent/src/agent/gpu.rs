//! GPU signs to evidence: each CUDA launch window judged with the process's
//! telemetry, and processes that telemetry shows on a GPU but the CUDA
//! sensor never saw, judged on telemetry alone (weak).

use std::{collections::BTreeSet, sync::Arc};

use assay_classify::gpu::{
    classify::{self, CudaActivity, GpuClass, GpuVerdict},
    window::TelemetryWindow,
};
use serde_json::{Map, json};
use tracing::{debug, info, warn};

use super::{state::Agent, work::Done};
use crate::{
    evidence::EvidenceKind,
    sensors::{
        cuda::{self, CudaWindow},
        gpu::telemetry::Polled,
    },
};

/// Ticks between two judgements on telemetry alone.
const TELEMETRY_JUDGED_EVERY_TICKS: u64 = 10;

impl Agent {
    /// The CUDA sensor's scans and launch windows; every 10 s, processes
    /// on a GPU the CUDA sensor has not judged.
    pub(super) fn cuda_tick(&mut self, ebpf: &mut aya::Ebpf) {
        if let Some(cuda) = self.cuda.as_mut()
            && let Some(request) = cuda.scans_due()
        {
            let identities = Arc::clone(&cuda.identities);
            let _ = self
                .workers
                .submit(move || Done::CudaLibraries(cuda::find_libraries(&request, &identities)));
        }
        self.cuda_windows(ebpf);
        if self.ticks.is_multiple_of(TELEMETRY_JUDGED_EVERY_TICKS) {
            self.judge_on_telemetry_alone();
        }
    }

    /// Opens or closes the launch window when due; what a closed window
    /// saw goes to a worker, which reads each process's libraries, and
    /// comes back to be judged ([`Done::CudaWindows`]).
    pub(super) fn cuda_windows(&mut self, ebpf: &mut aya::Ebpf) {
        let Some(cuda) = self.cuda.as_mut() else {
            return;
        };
        if !self.found_cuda_libraries.is_empty() {
            cuda.probe_found(ebpf, &std::mem::take(&mut self.found_cuda_libraries));
        }
        let windows = cuda.duty_cycle(ebpf);
        if windows.is_empty() {
            return;
        }
        let identities = Arc::clone(&cuda.identities);
        let submitted = self
            .workers
            .submit(move || Done::CudaWindows(cuda::with_libraries(windows, &identities)));
        if !submitted {
            // Every worker busy: judged without its libraries, a training
            // job could look like a miner. The next window judges again.
            self.stats.cuda_windows_unjudged += 1;
        }
    }

    pub(super) fn on_cuda_window(&mut self, window: &CudaWindow) {
        let activity = window.activity();
        let telemetry = self
            .gpu_window
            .as_ref()
            .and_then(|w| w.summary(window.tgid));
        let verdict = classify::classify(&activity, telemetry.as_ref());
        debug!(
            tgid = window.tgid,
            class = verdict.class.name(),
            launches = activity.launches,
            "CUDA window judged"
        );
        self.report_gpu(window.tgid, &activity, &verdict, &window.unidentified);
    }

    /// A poll from the telemetry thread; `None` when its source ended.
    pub(super) fn on_telemetry(&mut self, polled: Option<Polled>) {
        match polled {
            Some(Ok(poll)) => {
                if let Some(window) = self.gpu_window.as_mut() {
                    window.push(&poll);
                }
                self.ledger_gpu(&poll);
            }
            Some(Err(err)) => {
                self.gpu_errors += 1;
                if self.gpu_errors <= 5 || self.gpu_errors.is_multiple_of(1000) {
                    warn!(sensor = "gpu-telemetry", errors = self.gpu_errors, "{err}");
                }
            }
            None => info!(sensor = "gpu-telemetry", "the telemetry source ended"),
        }
    }

    fn judge_on_telemetry_alone(&mut self) {
        let Some(window) = self.gpu_window.as_ref() else {
            return;
        };
        let judged: Vec<(u32, GpuVerdict)> = judge_unseen(window, |pid| {
            self.cuda.as_ref().is_some_and(|c| c.follows(pid))
        });
        for (pid, verdict) in judged {
            if self.tables.processes.get_or_load(pid).is_none() {
                continue;
            }
            self.report_gpu(pid, &CudaActivity::default(), &verdict, &BTreeSet::new());
        }
    }

    /// One GPU verdict as evidence about the process.
    fn report_gpu(
        &mut self,
        tgid: u32,
        activity: &CudaActivity,
        verdict: &GpuVerdict,
        unidentified: &BTreeSet<String>,
    ) {
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
        // Named like GPU libraries, exporting none of their API: counted
        // for nothing, named for the analyst.
        attributes.insert("unidentified_libraries".into(), json!(unidentified));
        attributes.insert("runtime_compiles".into(), json!(activity.runtime_compiles));
        attributes.insert("bytes_allocated".into(), json!(activity.bytes_allocated));
        // Stable per process and class (repeated windows refresh one
        // record); the facts with their numbers are in `reasons`.
        let what = format!(
            "{phrase}: {}",
            verdict.reasons.first().map(String::as_str).unwrap_or("")
        );
        let evidence = self.evidence_about(
            tgid,
            kind,
            verdict.strength,
            verdict.decisive,
            &what,
            attributes,
        );
        self.report(evidence, None);
    }
}

/// The processes telemetry shows on a GPU that the CUDA sensor does not
/// follow, judged on their telemetry alone.
fn judge_unseen(
    window: &TelemetryWindow,
    followed: impl Fn(u32) -> bool,
) -> Vec<(u32, GpuVerdict)> {
    window
        .processes()
        .iter()
        .filter(|p| !followed(p.pid))
        .filter_map(|p| {
            let summary = window.summary(p.pid)?;
            Some((
                p.pid,
                classify::classify(&CudaActivity::default(), Some(&summary)),
            ))
        })
        .collect()
}
