//! `assay report`: declared versus observed, per workload, from the ledger.
//!
//! A workload's compute is split by class as the ledger recorded it (a
//! minute goes to the classes of its verdicts at `suspected` or above, else
//! `general`). Its share of a class is that class's compute (CPU
//! core-seconds plus GPU busy-seconds: a busy GPU-second counts as a busy
//! core-second) over the workload's. A workload is a **mismatch** when:
//! - it is declared for one purpose and another class, other than
//!   `general`, holds at least the material share (`--material-share`,
//!   default 10 %) of its compute; `general` compute is what the agent
//!   found no purpose for, which contradicts no declaration;
//! - it has a verdict (any level) and no declaration;
//! - its declaration's `valid_until` passed before its last use.
//!
//! A workload declared for AI (`ai-training`, `ai-inference`) whose AI
//! verdict is incentivised (it also takes part in a chain network, see
//! `crate::correlate::incentive`) is **dual-use**: `dual_use` says so in
//! words, whether or not its compute also makes it a mismatch. It is never
//! reported as a plain match.
//!
//! JSON (docs/ledger-report.schema.json), CSV (one row per workload and
//! class) and HTML ([`super::html`]) carry the same figures.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{
    Subject,
    declarations::{Declarations, Declared},
    store::{Store, StoreError},
};

/// The JSON's `schema` value; bumped with an incompatible change.
pub const SCHEMA: &str = "assay.ledger-report/1";

/// Points a chart has at most: the bucket grows with the range.
const CHART_POINTS: i64 = 120;

#[derive(Debug, Clone)]
pub struct Options {
    /// [`from`, `to`) in Unix minutes.
    pub from: i64,
    pub to: i64,
    pub material_share: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ClassUse {
    pub class: String,
    pub cpu_core_seconds: f64,
    pub gpu_seconds: f64,
    pub gpu_memory_bytes_max: u64,
    pub energy_joules: f64,
    /// Joules by source: `rapl`, `nvml`, `estimated`.
    pub energy_by_source: BTreeMap<&'static str, f64>,
    /// Whether any of the joules are an estimate.
    pub energy_estimated: bool,
    /// Of the workload's compute (CPU core-seconds + GPU seconds).
    pub share: f64,
}

impl ClassUse {
    fn compute(&self) -> f64 {
        self.cpu_core_seconds + self.gpu_seconds
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerdictRef {
    pub id: String,
    pub class: String,
    pub level: String,
    pub explanation: String,
    /// The chain network an incentivised AI verdict's workload takes part in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incentive: Option<String>,
    pub first_seen: String,
    pub last_seen: String,
}

/// One bucket of a chart: per class, core-seconds and joules.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Point {
    pub start: String,
    #[serde(skip)]
    pub minute: i64,
    pub cpu_core_seconds: BTreeMap<String, f64>,
    pub gpu_seconds: BTreeMap<String, f64>,
    pub energy_joules: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkloadReport {
    /// The host it ran on, in a fleet report (`--nats`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    pub workload: String,
    pub subject: Subject,
    pub declared: Option<Declared>,
    pub cpu_core_seconds: f64,
    pub gpu_seconds: f64,
    pub energy_joules: f64,
    pub classes: Vec<ClassUse>,
    pub mismatch: bool,
    /// Why, in words (empty when no mismatch).
    pub reasons: Vec<String>,
    /// Declared for AI, and its AI verdict is incentivised by a chain
    /// network: in words. Absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dual_use: Option<String>,
    pub verdicts: Vec<VerdictRef>,
    pub series: Vec<Point>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Totals {
    pub workloads: usize,
    pub mismatched_workloads: usize,
    pub undeclared_workloads: usize,
    pub cpu_core_seconds: f64,
    pub gpu_seconds: f64,
    pub energy_joules: f64,
    pub energy_estimated_joules: f64,
    pub classes: Vec<ClassUse>,
    /// Of the host's compute: in workloads with no declaration.
    pub undeclared_share: f64,
    /// Of the host's compute: in mismatched workloads.
    pub mismatched_share: f64,
    pub undeclared_energy_share: f64,
    pub mismatched_energy_share: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub schema: &'static str,
    pub generated_at: String,
    pub from: String,
    pub to: String,
    /// Minutes per chart point.
    pub bucket_minutes: i64,
    pub material_share: f64,
    pub totals: Totals,
    /// Each host's totals, in a fleet report (`--nats`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hosts: Option<Vec<HostTotals>>,
    pub series: Vec<Point>,
    pub workloads: Vec<WorkloadReport>,
}

/// One host of a fleet report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostTotals {
    pub host: String,
    pub totals: Totals,
}

pub fn rfc3339_of_minute(minute: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs((minute.max(0) as u64) * 60);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// A chart bucket of 1, 5, 15, 60, 360 or 1440 minutes, whichever keeps a
/// chart within [`CHART_POINTS`].
pub fn bucket_for(minutes: i64) -> i64 {
    [1, 5, 15, 60, 360, 1440]
        .into_iter()
        .find(|b| minutes / b <= CHART_POINTS)
        .unwrap_or(((minutes / CHART_POINTS) / 1440 + 1) * 1440)
}

fn add_energy(into: &mut ClassUse, rapl: f64, nvml: f64, estimated: f64) {
    for (source, joules) in [("rapl", rapl), ("nvml", nvml), ("estimated", estimated)] {
        if joules > 0.0 {
            *into.energy_by_source.entry(source).or_insert(0.0) += joules;
        }
    }
    into.energy_joules += rapl + nvml + estimated;
    into.energy_estimated |= estimated > 0.0;
}

fn ratio(part: f64, whole: f64) -> f64 {
    if whole > 0.0 { part / whole } else { 0.0 }
}

pub fn build(
    store: &Store,
    declarations: &Declarations,
    options: &Options,
) -> Result<Report, StoreError> {
    let (from, to) = (options.from, options.to);
    let subjects = store.subjects()?;
    let bucket = bucket_for(to - from);
    let mut workloads: BTreeMap<String, WorkloadReport> = BTreeMap::new();
    let mut last_use: BTreeMap<String, i64> = BTreeMap::new();
    let mut host_series: BTreeMap<i64, Point> = BTreeMap::new();
    let point = |minute: i64| Point {
        start: rfc3339_of_minute(minute),
        minute,
        cpu_core_seconds: BTreeMap::new(),
        gpu_seconds: BTreeMap::new(),
        energy_joules: BTreeMap::new(),
    };
    for (row, end) in store.series(from, to, bucket)? {
        let report = workloads
            .entry(row.workload.clone())
            .or_insert_with(|| WorkloadReport {
                host: None,
                workload: row.workload.clone(),
                subject: subjects.get(&row.workload).cloned().unwrap_or_default(),
                declared: None,
                cpu_core_seconds: 0.0,
                gpu_seconds: 0.0,
                energy_joules: 0.0,
                classes: Vec::new(),
                mismatch: false,
                reasons: Vec::new(),
                dual_use: None,
                verdicts: Vec::new(),
                series: Vec::new(),
            });
        let at = match report.classes.iter().position(|c| c.class == row.class) {
            Some(at) => at,
            None => {
                report.classes.push(ClassUse {
                    class: row.class.clone(),
                    ..ClassUse::default()
                });
                report.classes.len() - 1
            }
        };
        let class = &mut report.classes[at];
        class.cpu_core_seconds += row.cpu_core_s;
        class.gpu_seconds += row.gpu_s;
        class.gpu_memory_bytes_max = class.gpu_memory_bytes_max.max(row.gpu_mem_bytes);
        add_energy(
            class,
            row.energy_rapl_j,
            row.energy_nvml_j,
            row.energy_estimated_j,
        );
        let energy = row.energy_rapl_j + row.energy_nvml_j + row.energy_estimated_j;
        report.cpu_core_seconds += row.cpu_core_s;
        report.gpu_seconds += row.gpu_s;
        report.energy_joules += energy;
        let last = last_use.entry(row.workload.clone()).or_insert(end);
        *last = (*last).max(end);
        let add = |target: &mut Point| {
            *target
                .cpu_core_seconds
                .entry(row.class.clone())
                .or_insert(0.0) += row.cpu_core_s;
            if row.gpu_s > 0.0 {
                *target.gpu_seconds.entry(row.class.clone()).or_insert(0.0) += row.gpu_s;
            }
            *target.energy_joules.entry(row.class.clone()).or_insert(0.0) += energy;
        };
        if report.series.last().is_none_or(|p| p.minute != row.minute) {
            report.series.push(point(row.minute));
        }
        if let Some(last) = report.series.last_mut() {
            add(last);
        }
        add(host_series
            .entry(row.minute)
            .or_insert_with(|| point(row.minute)));
    }
    for verdict in store.verdicts(from, to)? {
        if let Some(report) = workloads.get_mut(&verdict.workload) {
            report.verdicts.push(VerdictRef {
                id: verdict.id,
                class: verdict.class,
                level: verdict.level,
                explanation: verdict.explanation,
                incentive: verdict.incentive,
                first_seen: rfc3339_of_minute(verdict.first_minute),
                last_seen: rfc3339_of_minute(verdict.last_minute + 1),
            });
        }
    }
    for report in workloads.values_mut() {
        let declaration = declarations.for_subject(&report.subject);
        report.declared = declaration.map(|d| d.shown());
        let compute = report.cpu_core_seconds + report.gpu_seconds;
        for class in &mut report.classes {
            class.share = ratio(class.compute(), compute);
        }
        report
            .classes
            .sort_by(|a, b| b.share.total_cmp(&a.share).then(a.class.cmp(&b.class)));
        judge(
            report,
            declaration,
            last_use.get(&report.workload).copied(),
            options,
        );
    }
    let workloads: Vec<WorkloadReport> = workloads.into_values().collect();
    Ok(Report {
        schema: SCHEMA,
        generated_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        from: rfc3339_of_minute(from),
        to: rfc3339_of_minute(to),
        bucket_minutes: bucket,
        material_share: options.material_share,
        totals: totals(&workloads),
        hosts: None,
        series: host_series.into_values().collect(),
        workloads,
    })
}

/// A fleet report from each host's report (built over the same period):
/// every host's workloads, named with their host; the totals and series
/// over all of them; and each host's totals in `hosts`. A workload is
/// judged on its own host, with its own declaration, as in a host's
/// report.
pub fn merge(empty: Report, per_host: Vec<(String, Report)>) -> Report {
    let mut merged = empty;
    let mut hosts = Vec::with_capacity(per_host.len());
    let mut series: BTreeMap<i64, Point> = BTreeMap::new();
    merged.workloads.clear();
    merged.series.clear();
    for (host, report) in per_host {
        for mut w in report.workloads {
            w.host = Some(host.clone());
            merged.workloads.push(w);
        }
        for p in report.series {
            let into = series.entry(p.minute).or_insert_with(|| Point {
                start: p.start.clone(),
                minute: p.minute,
                cpu_core_seconds: BTreeMap::new(),
                gpu_seconds: BTreeMap::new(),
                energy_joules: BTreeMap::new(),
            });
            for (into, from) in [
                (&mut into.cpu_core_seconds, p.cpu_core_seconds),
                (&mut into.gpu_seconds, p.gpu_seconds),
                (&mut into.energy_joules, p.energy_joules),
            ] {
                for (class, v) in from {
                    *into.entry(class).or_insert(0.0) += v;
                }
            }
        }
        hosts.push(HostTotals {
            host,
            totals: report.totals,
        });
    }
    merged.totals = totals(&merged.workloads);
    merged.series = series.into_values().collect();
    merged.hosts = Some(hosts);
    merged
}

/// A workload declared for AI whose AI verdict of that class is
/// incentivised: what it takes part in, in words.
fn dual_use(
    report: &WorkloadReport,
    declared: &super::declarations::Declaration,
) -> Option<String> {
    if !matches!(declared.purpose.as_str(), "ai-training" | "ai-inference") {
        return None;
    }
    let verdict = report
        .verdicts
        .iter()
        .find(|v| v.class == declared.purpose && v.incentive.is_some())?;
    Some(format!(
        "declared {} as \"{}\", and it is: but its {} verdict {} ({}) also shows it taking \
         part in the {} network, which pays for that compute (incentivised compute). {}",
        declared.purpose,
        declared.name,
        verdict.class,
        verdict.id,
        verdict.level,
        verdict.incentive.as_deref().unwrap_or("?"),
        verdict.explanation
    ))
}

/// Sets `mismatch` and its reasons, in words.
fn judge(
    report: &mut WorkloadReport,
    declaration: Option<&super::declarations::Declaration>,
    last_use: Option<i64>,
    options: &Options,
) {
    let evidence = |report: &WorkloadReport, class: &str| -> String {
        let behind: Vec<String> = report
            .verdicts
            .iter()
            .filter(|v| v.class == class)
            .map(|v| format!("verdict {} ({}): {}", v.id, v.level, v.explanation))
            .collect();
        if behind.is_empty() {
            String::new()
        } else {
            format!(" Evidence: {}", behind.join(" "))
        }
    };
    let mut reasons = Vec::new();
    match declaration {
        Some(declared) => {
            for class in &report.classes {
                if class.class != declared.purpose
                    && class.class != "general"
                    && class.share >= options.material_share
                {
                    reasons.push(format!(
                        "declared {} as \"{}\", but {:.0}% of its compute ({:.1} CPU core-seconds, \
                         {:.1} GPU seconds, {:.0} J) was {}.{}",
                        declared.purpose,
                        declared.name,
                        class.share * 100.0,
                        class.cpu_core_seconds,
                        class.gpu_seconds,
                        class.energy_joules,
                        class.class,
                        evidence(report, &class.class)
                    ));
                }
            }
            if let (Some(until), Some(last)) = (declared.valid_until_minute, last_use)
                && last > until + 1
            {
                reasons.push(format!(
                    "its declaration \"{}\" was valid until {}, and it ran until {}.",
                    declared.name,
                    declared.valid_until.as_deref().unwrap_or("?"),
                    rfc3339_of_minute(last)
                ));
            }
        }
        None if !report.verdicts.is_empty() => {
            let mut classes: Vec<&str> = report.verdicts.iter().map(|v| v.class.as_str()).collect();
            classes.sort_unstable();
            classes.dedup();
            let mut text = format!(
                "no declaration names it, and the agent found {} in it.",
                classes.join(", ")
            );
            for class in classes {
                text.push_str(&evidence(report, class));
            }
            reasons.push(text);
        }
        None => {}
    }
    report.mismatch = !reasons.is_empty();
    report.reasons = reasons;
    report.dual_use = declaration.and_then(|declared| dual_use(report, declared));
}

fn totals(workloads: &[WorkloadReport]) -> Totals {
    let mut classes: BTreeMap<String, ClassUse> = BTreeMap::new();
    let (mut undeclared, mut mismatched) = (0.0, 0.0);
    let (mut undeclared_j, mut mismatched_j) = (0.0, 0.0);
    for w in workloads {
        let compute = w.cpu_core_seconds + w.gpu_seconds;
        if w.declared.is_none() {
            undeclared += compute;
            undeclared_j += w.energy_joules;
        }
        if w.mismatch {
            mismatched += compute;
            mismatched_j += w.energy_joules;
        }
        for c in &w.classes {
            let total = classes.entry(c.class.clone()).or_insert_with(|| ClassUse {
                class: c.class.clone(),
                ..ClassUse::default()
            });
            total.cpu_core_seconds += c.cpu_core_seconds;
            total.gpu_seconds += c.gpu_seconds;
            total.gpu_memory_bytes_max = total.gpu_memory_bytes_max.max(c.gpu_memory_bytes_max);
            for (source, joules) in &c.energy_by_source {
                *total.energy_by_source.entry(source).or_insert(0.0) += joules;
            }
            total.energy_joules += c.energy_joules;
            total.energy_estimated |= c.energy_estimated;
        }
    }
    let cpu: f64 = workloads.iter().map(|w| w.cpu_core_seconds).sum();
    let gpu: f64 = workloads.iter().map(|w| w.gpu_seconds).sum();
    let energy: f64 = workloads.iter().map(|w| w.energy_joules).sum();
    let mut classes: Vec<ClassUse> = classes.into_values().collect();
    for class in &mut classes {
        class.share = ratio(class.compute(), cpu + gpu);
    }
    classes.sort_by(|a, b| b.share.total_cmp(&a.share).then(a.class.cmp(&b.class)));
    Totals {
        workloads: workloads.len(),
        mismatched_workloads: workloads.iter().filter(|w| w.mismatch).count(),
        undeclared_workloads: workloads.iter().filter(|w| w.declared.is_none()).count(),
        cpu_core_seconds: cpu,
        gpu_seconds: gpu,
        energy_joules: energy,
        energy_estimated_joules: classes
            .iter()
            .filter_map(|c| c.energy_by_source.get("estimated"))
            .sum(),
        classes,
        undeclared_share: ratio(undeclared, cpu + gpu),
        mismatched_share: ratio(mismatched, cpu + gpu),
        undeclared_energy_share: ratio(undeclared_j, energy),
        mismatched_energy_share: ratio(mismatched_j, energy),
    }
}

/// One CSV row per workload and class.
pub fn to_csv(report: &Report) -> String {
    let mut out = String::from(
        "workload,declared_name,declared_purpose,registration,class,cpu_core_seconds,\
         gpu_seconds,energy_joules,energy_estimated,share,mismatch,reason,verdict_ids,\
         dual_use,host\n",
    );
    for w in &report.workloads {
        let declared = w.declared.as_ref();
        let ids: Vec<&str> = w.verdicts.iter().map(|v| v.id.as_str()).collect();
        for c in &w.classes {
            let fields = [
                w.workload.clone(),
                declared.map(|d| d.name.clone()).unwrap_or_default(),
                declared.map(|d| d.purpose.clone()).unwrap_or_default(),
                declared
                    .and_then(|d| d.registration.clone())
                    .unwrap_or_default(),
                c.class.clone(),
                format!("{:.3}", c.cpu_core_seconds),
                format!("{:.3}", c.gpu_seconds),
                format!("{:.3}", c.energy_joules),
                c.energy_estimated.to_string(),
                format!("{:.4}", c.share),
                w.mismatch.to_string(),
                w.reasons.join(" "),
                ids.join(" "),
                w.dual_use.clone().unwrap_or_default(),
                w.host.clone().unwrap_or_default(),
            ];
            let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
            out.push_str(&line.join(","));
            out.push('\n');
        }
    }
    out
}

/// RFC 4180: quoted when it holds a comma, quote or line break; a leading
/// `=`, `+`, `-` or `@` is prefixed with `'` so a spreadsheet does not run
/// it as a formula (workload names come from the host).
fn csv_field(field: &str) -> String {
    let field = if field.starts_with(['=', '+', '@'])
        || (field.starts_with('-') && field.parse::<f64>().is_err())
    {
        format!("'{field}")
    } else {
        field.to_owned()
    };
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field
    }
}

#[cfg(test)]
#[path = "report_tests.rs"]
mod tests;
