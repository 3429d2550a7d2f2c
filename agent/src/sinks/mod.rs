//! Findings out: one JSON object per line.
//!
//! This first shape carries everything an analyst needs to act (host, time,
//! process, workload, remote endpoint, protocol and extracted fields, the
//! evidence and how fast it was decided). The OCSF Detection Finding shape
//! (class_uid 2004) wraps the same content in the outputs issue.

pub mod fleet;
pub mod metrics;
pub mod ocsf;
pub mod report;
pub mod writer;

use std::{io, time::SystemTime};

use serde::Serialize;

pub use writer::{LineWriter, RotatingFile};

use crate::{
    correlate::{Change, Class, Level, Verdict},
    evidence::Evidence,
    tables::processes::ProcessInfo,
    tables::workload::Workload,
};

#[derive(Debug, Serialize)]
pub struct Finding<'a> {
    pub id: &'a str,
    /// "verdict.opened", "verdict.raised", "verdict.updated",
    /// "verdict.resolved", "verdict.suppressed" (a policy rule allowed
    /// it; written only with --log-suppressed), or "verdict.enforced"
    /// (what an `[[enforce]]` rule did or, in a dry run, would have done).
    pub event: String,
    #[serde(with = "crate::time::rfc3339")]
    pub time: SystemTime,
    pub host: &'a str,
    pub class: Class,
    pub level: Level,
    pub score: f32,
    pub workload: &'a Workload,
    /// The process whose evidence opened or raised the verdict.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process: Option<&'a ProcessInfo>,
    /// The decisive network facts, when the trigger was a flow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<&'a serde_json::Map<String, serde_json::Value>>,
    /// Milliseconds from the first packet of the triggering flow to this finding.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_after_ms: Option<f64>,
    /// The process's parents, nearest first, as far as the agent knows.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ancestors: Vec<Ancestor>,
    /// CPU use over the last seconds, from the kernel's cpu-clock samples.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<CpuUse>,
    /// When the verdict's evidence was first and last seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active: Option<crate::correlate::Active>,
    /// The policy rule that downgraded or suppressed this verdict.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_rule: Option<String>,
    /// What an `[[enforce]]` rule did (`verdict.enforced` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enforcement: Option<Enforcement<'a>>,
    pub explanation: String,
    /// An AI verdict in a workload that also takes part in a chain: the
    /// network and the chain evidence (docs/grey-zone.md).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incentive: Option<&'a crate::correlate::incentive::Incentive>,
    /// A policy rule let this AI verdict through, but not the chain
    /// participation that makes it incentivised: said in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dual_use: Option<String>,
    pub evidence: &'a [Evidence],
}

/// The rule that acted and each rung of its ladder, in order.
#[derive(Debug, Clone, Serialize)]
pub struct Enforcement<'a> {
    pub rule: &'a str,
    pub actions: &'a [crate::enforce::ActionRecord],
}

#[derive(Debug, Clone, Serialize)]
pub struct Ancestor {
    pub pid: u32,
    pub comm: String,
    pub exe: String,
}

/// Cores in use (1.0 = one core fully busy).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct CpuUse {
    pub process_cores: f64,
    /// Every process in the same cgroup together (absent when the
    /// process's cgroup is unknown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup_cores: Option<f64>,
    pub window_s: u64,
    /// IPC and MPKI of the process's main thread since it became busy,
    /// where the host has a PMU (facts only; nothing decides on them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hardware_counters: Option<crate::sensors::pmu::Fingerprint>,
}

impl CpuUse {
    pub fn new(process_cores: f64, cgroup_cores: Option<f64>) -> Self {
        let round = |c: f64| (c * 100.0).round() / 100.0;
        Self {
            process_cores: round(process_cores),
            cgroup_cores: cgroup_cores.map(round),
            window_s: crate::sensors::cpu_time::WINDOW_POLLS as u64,
            hardware_counters: None,
        }
    }
}

impl<'a> Finding<'a> {
    pub fn new(
        change: Change,
        verdict: &'a Verdict,
        host: &'a str,
        trigger: Option<&'a Evidence>,
        process: Option<&'a ProcessInfo>,
        decided_after_ms: Option<f64>,
    ) -> Self {
        Self {
            id: &verdict.id,
            event: format!(
                "verdict.{}",
                match change {
                    Change::Opened => "opened",
                    Change::Raised => "raised",
                    Change::Updated => "updated",
                    Change::Resolved => "resolved",
                }
            ),
            time: SystemTime::now(),
            host,
            class: verdict.class,
            level: verdict.level,
            score: verdict.score,
            workload: &verdict.workload,
            process,
            network: trigger
                .map(|t| &t.attributes)
                .filter(|attributes| attributes.contains_key("remote")),
            decided_after_ms,
            ancestors: Vec::new(),
            cpu: None,
            policy_rule: None,
            enforcement: None,
            active: verdict.active(),
            explanation: verdict.explanation(),
            incentive: verdict.incentive.as_ref(),
            dual_use: None,
            evidence: &verdict.evidence,
        }
    }
}

/// The shape of each finding line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// assay's own finding (README, "Reading a finding").
    Native,
    /// An OCSF 1.3 Detection Finding (class_uid 2004) carrying the native
    /// finding in `unmapped.assay` (docs/finding.schema.json): the default,
    /// what SOC pipelines ingest.
    #[default]
    Ocsf,
}

/// Formats each finding as one JSON line and hands it to the [`LineWriter`]
/// (stdout, a rotating file, or both), which writes and flushes it line by
/// line off the event loop.
pub struct Outputs {
    format: Format,
    writer: LineWriter,
}

impl Outputs {
    pub fn new(format: Format, writer: LineWriter) -> Self {
        Self { format, writer }
    }

    /// The line for a finding, queued for writing. Returns the line (for
    /// the fleet stream); a line the writer had no room for is counted in
    /// its stats.
    pub fn write(&mut self, finding: &Finding<'_>) -> io::Result<Vec<u8>> {
        let mut line = match self.format {
            Format::Native => serde_json::to_vec(finding)?,
            Format::Ocsf => {
                let native = serde_json::to_value(finding)?;
                serde_json::to_vec(&crate::sinks::ocsf::detection_finding(&native))?
            }
        };
        line.push(b'\n');
        self.writer.push(line.clone());
        Ok(line)
    }

    pub fn writer(&self) -> &LineWriter {
        &self.writer
    }

    /// Lets the writer finish what is queued, for at most `grace`.
    pub fn close(self, grace: std::time::Duration) {
        self.writer.close(grace);
    }
}
