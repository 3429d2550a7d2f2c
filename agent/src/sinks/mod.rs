//! Findings out: one JSON object per line.
//!
//! This first shape carries everything an analyst needs to act (host, time,
//! process, workload, remote endpoint, protocol and extracted fields, the
//! evidence and how fast it was decided). The OCSF Detection Finding shape
//! (class_uid 2004) wraps the same content in the outputs issue.

pub mod fleet;
pub mod metrics;
pub mod ocsf;

use std::{
    io::{self, Write},
    time::SystemTime,
};

use serde::Serialize;

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
    /// "verdict.resolved", or "verdict.suppressed" (a policy rule allowed
    /// it; written only with --log-suppressed).
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
    pub explanation: String,
    pub evidence: &'a [Evidence],
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
            active: verdict.active(),
            explanation: verdict.explanation(),
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

/// Writes each finding as one JSON line to stdout, a rotating file, or
/// both; flushed line by line so that a reader at the other end of a pipe
/// sees each as soon as it is decided.
pub struct Outputs {
    format: Format,
    stdout: bool,
    file: Option<RotatingFile>,
}

impl Outputs {
    pub fn stdout() -> Self {
        Self {
            format: Format::default(),
            stdout: true,
            file: None,
        }
    }

    pub fn set_format(&mut self, format: Format) {
        self.format = format;
    }

    pub fn set_stdout(&mut self, on: bool) {
        self.stdout = on;
    }

    pub fn set_file(&mut self, file: RotatingFile) {
        self.file = Some(file);
    }

    /// Writes to every output; the first error is returned after all were
    /// tried (a full disk must not silence stdout).
    /// Returns the line written (for the fleet stream).
    pub fn write(&mut self, finding: &Finding<'_>) -> io::Result<Vec<u8>> {
        let mut line = match self.format {
            Format::Native => serde_json::to_vec(finding)?,
            Format::Ocsf => {
                let native = serde_json::to_value(finding)?;
                serde_json::to_vec(&crate::sinks::ocsf::detection_finding(&native))?
            }
        };
        line.push(b'\n');
        let mut result = Ok(());
        if self.stdout {
            let mut out = io::stdout().lock();
            result = out.write_all(&line).and_then(|()| out.flush());
        }
        if let Some(file) = self.file.as_mut()
            && let Err(err) = file.write_line(&line)
        {
            result = result.and(Err(err));
        }
        result.map(|()| line)
    }
}

/// An append-only file of lines, rotated when it would grow past
/// `max_bytes`: `PATH` → `PATH.1` → … → `PATH.<keep>` (the oldest goes).
pub struct RotatingFile {
    path: std::path::PathBuf,
    max_bytes: u64,
    keep: u32,
    file: std::fs::File,
    size: u64,
}

impl RotatingFile {
    pub fn open(path: &std::path::Path, max_bytes: u64, keep: u32) -> io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let size = file.metadata()?.len();
        Ok(Self {
            path: path.to_path_buf(),
            max_bytes: max_bytes.max(1),
            keep,
            file,
            size,
        })
    }

    pub fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        if self.size > 0 && self.size + line.len() as u64 > self.max_bytes {
            self.rotate()?;
        }
        self.file.write_all(line)?;
        self.file.flush()?;
        self.size += line.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        let numbered = |n: u32| {
            let mut name = self.path.clone().into_os_string();
            name.push(format!(".{n}"));
            std::path::PathBuf::from(name)
        };
        if self.keep == 0 {
            std::fs::remove_file(&self.path)?;
        } else {
            let _ = std::fs::remove_file(numbered(self.keep));
            for n in (1..self.keep).rev() {
                let _ = std::fs::rename(numbered(n), numbered(n + 1));
            }
            std::fs::rename(&self.path, numbered(1))?;
        }
        self.file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_rotates_at_its_size_keeping_the_newest() {
        let dir = std::env::temp_dir().join(format!("assay-rotate-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("findings.jsonl");
        let mut file = RotatingFile::open(&path, 25, 2).unwrap();
        for i in 0..7 {
            file.write_line(format!("{{\"n\":{i:04}}}\n").as_bytes())
                .unwrap();
        }
        // 11-byte lines, 25 bytes a file: two lines each; 7 lines → the
        // current file has the 7th, .1 the 5th-6th, .2 the 3rd-4th.
        let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap();
        assert_eq!(read(&path), "{\"n\":0006}\n");
        assert_eq!(
            read(&dir.join("findings.jsonl.1")),
            "{\"n\":0004}\n{\"n\":0005}\n"
        );
        assert_eq!(
            read(&dir.join("findings.jsonl.2")),
            "{\"n\":0002}\n{\"n\":0003}\n"
        );
        assert!(!dir.join("findings.jsonl.3").exists());
        // Reopened, it appends.
        let mut again = RotatingFile::open(&path, 25, 2).unwrap();
        again.write_line(b"{\"n\":0007}\n").unwrap();
        assert_eq!(read(&path), "{\"n\":0006}\n{\"n\":0007}\n");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
