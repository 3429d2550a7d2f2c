//! The last legs of the data flow: evidence into the correlator, the
//! verdict it yields through the policy, and the finding out to every sink
//! (lines, the fleet stream).
//!
//! A level the policy's cap hides is not reported again (a raise from
//! suspected to confirmed under a `max_level = "suspected"` rule is no
//! news); suppressed verdicts are counted and, when asked, written as
//! `verdict.suppressed`.

use std::collections::HashMap;

use serde_json::json;
use tracing::warn;

use crate::{
    correlate::{
        Change, Correlator, Level, Verdict,
        policy::{Decision, Policy},
    },
    enforce::{Enforcer, Options as EnforceOptions, Ran},
    evidence::Evidence,
    sinks::{Ancestor, CpuUse, Enforcement, Finding, Outputs, fleet::Fleet},
    tables::{processes::ProcessInfo, workload::Workload},
};

/// What a finding says about its process besides the verdict.
#[derive(Debug, Default)]
pub struct Context<'a> {
    pub process: Option<&'a ProcessInfo>,
    pub ancestors: Vec<Ancestor>,
    pub cpu: Option<CpuUse>,
    pub decided_after_ms: Option<f64>,
}

pub struct Reporter {
    host: String,
    pub correlator: Correlator,
    policy: Policy,
    log_suppressed: bool,
    /// The level last reported per open verdict.
    reported_levels: HashMap<String, Level>,
    outputs: Outputs,
    fleet: Option<Fleet>,
    /// Finding lines written.
    pub findings: u64,
    /// Verdict events a policy rule kept from being reported.
    pub suppressed: u64,
    /// What `[[enforce]]` rules do about reported verdicts.
    pub enforcer: Enforcer,
}

impl Reporter {
    pub fn new(host: String, policy: Policy, log_suppressed: bool, outputs: Outputs) -> Self {
        Self {
            correlator: Correlator::new(&host),
            host,
            policy,
            log_suppressed,
            reported_levels: HashMap::new(),
            outputs,
            fleet: None,
            findings: 0,
            suppressed: 0,
            enforcer: Enforcer::new(EnforceOptions::default(), None)
                .expect("the default protect globs compile"),
        }
    }

    pub fn set_enforcer(&mut self, enforcer: Enforcer) {
        self.enforcer = enforcer;
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn set_fleet(&mut self, fleet: Fleet) {
        self.fleet = Some(fleet);
    }

    pub fn fleet(&self) -> Option<&Fleet> {
        self.fleet.as_ref()
    }

    pub fn outputs(&self) -> &Outputs {
        &self.outputs
    }

    /// Verdicts restored from a previous run were reported then.
    pub fn already_reported(&mut self, id: String, level: Level) {
        self.reported_levels.insert(id, level);
    }

    /// Evidence into the correlator: the verdict it changed, if any.
    pub fn observe(&mut self, evidence: Evidence) -> Option<(Change, Verdict)> {
        self.correlator.observe(evidence)
    }

    /// Writes one verdict event, as the policy decides.
    pub fn write(
        &mut self,
        change: Change,
        verdict: &Verdict,
        trigger: Option<&Evidence>,
        context: Context<'_>,
    ) {
        let mut decision = self.policy.decide(
            verdict.class,
            verdict.level,
            &verdict.workload,
            context.process,
        );
        // A rule that lets AI compute through covers the chain side of an
        // incentivised verdict only where it covers those classes too: a
        // workload declared as inference that also earns tokens is dual-use,
        // reported at its level with the rule named.
        let mut dual_use = None;
        if let (
            Some(incentive),
            Decision::Suppress { rule, .. } | Decision::Downgrade { rule, .. },
        ) = (&verdict.incentive, &decision)
        {
            let covered = incentive.evidence.iter().all(|sign| {
                self.policy.decide(
                    sign.class,
                    verdict.level,
                    &verdict.workload,
                    context.process,
                ) != Decision::Report
            });
            if !covered {
                dual_use = Some(format!(
                    "declared {} by policy rule \"{rule}\", but the workload also takes part in \
                     the {} network, which the rule does not cover",
                    verdict.class.name(),
                    incentive.network
                ));
                decision = Decision::Report;
            }
        }
        let (level, rule) = match &decision {
            Decision::Report => (verdict.level, None),
            Decision::Downgrade { rule, to } => (*to, Some(rule.clone())),
            Decision::Suppress { rule, log } => {
                self.suppressed += 1;
                if !(*log && self.log_suppressed) {
                    return;
                }
                (verdict.level, Some(rule.clone()))
            }
        };
        let suppressed = matches!(decision, Decision::Suppress { .. });
        // Enforcement follows what is reported, at the level reported: an
        // allowed or downgraded verdict is not acted on beyond its cap.
        match change {
            Change::Resolved => self.enforcer.resolved(verdict),
            _ if !suppressed => {
                self.enforcer
                    .consider(&self.policy, verdict, level, context.process);
            }
            _ => {}
        }
        if !suppressed {
            let previous = match change {
                Change::Resolved => self.reported_levels.remove(&verdict.id),
                _ => self.reported_levels.insert(verdict.id.clone(), level),
            };
            if change == Change::Raised && previous == Some(level) {
                return;
            }
        }
        let mut finding = Finding::new(
            change,
            verdict,
            &self.host,
            trigger,
            context.process,
            context.decided_after_ms,
        );
        finding.cpu = context.cpu;
        finding.level = level;
        finding.policy_rule = rule;
        finding.dual_use = dual_use;
        finding.ancestors = context.ancestors;
        if suppressed {
            finding.event = "verdict.suppressed".into();
        }
        match self.outputs.write(&finding) {
            Ok(line) => {
                self.findings += 1;
                if let Some(fleet) = &self.fleet {
                    fleet.push(format!("{}:{}", verdict.id, finding.event), line);
                }
            }
            Err(err) => warn!("cannot write finding {}: {err}", verdict.id),
        }
    }

    /// Writes what a ladder did, as a `verdict.enforced` finding naming its
    /// rule, and counts it.
    pub fn write_enforced(&mut self, ran: &Ran, process: Option<&ProcessInfo>) {
        self.enforcer.finish(ran);
        let mut finding = Finding::new(
            Change::Updated,
            &ran.verdict,
            &self.host,
            None,
            process,
            None,
        );
        finding.event = "verdict.enforced".into();
        finding.enforcement = Some(Enforcement {
            rule: &ran.rule,
            actions: &ran.records,
        });
        match self.outputs.write(&finding) {
            Ok(line) => {
                self.findings += 1;
                if let Some(fleet) = &self.fleet {
                    let at = ran.records.first().map(|r| r.at).unwrap_or(finding.time);
                    let at = humantime::format_rfc3339_millis(at);
                    fleet.push(format!("{}:verdict.enforced:{at}", ran.verdict.id), line);
                }
            }
            Err(err) => warn!("cannot write enforcement of {}: {err}", ran.verdict.id),
        }
    }

    /// A summary of each workload with open verdicts, on the fleet stream
    /// (`slot`: the summary period's number, which makes its id).
    pub fn publish_summaries(&self, slot: u64) {
        let Some(fleet) = &self.fleet else {
            return;
        };
        let mut by_workload: HashMap<&Workload, Vec<&Verdict>> = HashMap::new();
        for verdict in self.correlator.open_verdicts() {
            by_workload
                .entry(&verdict.workload)
                .or_default()
                .push(verdict);
        }
        for (workload, verdicts) in by_workload {
            let summary = json!({
                "type": "workload.summary",
                "host": self.host,
                "time": humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
                "workload": workload,
                "verdicts": verdicts.iter().map(|v| json!({
                    "id": v.id, "class": v.class, "level": v.level, "score": v.score,
                    "active": v.active(),
                })).collect::<Vec<_>>(),
            });
            if let Ok(line) = serde_json::to_vec(&summary) {
                fleet.push_summary(format!("summary:{}:{slot}:{workload}", self.host), line);
            }
        }
    }

    /// Stops the sinks: the fleet stream gets `grace` to drain, the line
    /// writer as long.
    pub async fn close(self, grace: std::time::Duration) {
        if let Some(fleet) = &self.fleet {
            fleet.drain(grace).await;
            tracing::info!(
                published = fleet
                    .stats
                    .published
                    .load(std::sync::atomic::Ordering::Relaxed),
                dropped = fleet
                    .stats
                    .dropped
                    .load(std::sync::atomic::Ordering::Relaxed),
                unpublished = fleet.pending(),
                "fleet stream"
            );
        }
        self.outputs.close(grace);
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use serde_json::Map;

    use super::*;
    use crate::{
        correlate::Class,
        evidence::EvidenceKind,
        sinks::{Format, LineWriter},
    };

    fn reporter(policy: Policy) -> Reporter {
        let writer = LineWriter::start(false, None).unwrap();
        Reporter::new(
            "h".into(),
            policy,
            false,
            Outputs::new(Format::Native, writer),
        )
    }

    fn stratum(pid: u32) -> Evidence {
        Evidence::new(
            Workload::Process { tgid: pid },
            pid,
            EvidenceKind::Stratum,
            1.0,
            true,
            format!("pid {pid} logged in to a pool"),
            Map::new(),
            SystemTime::now(),
        )
    }

    #[test]
    fn an_open_verdict_is_written_once_and_its_resolution_once() {
        let mut r = reporter(Policy::default());
        let (change, verdict) = r.observe(stratum(5)).unwrap();
        assert_eq!(change, Change::Opened);
        assert_eq!(verdict.class, Class::PowMining);
        r.write(change, &verdict, None, Context::default());
        // The same sign again changes nothing.
        assert!(r.observe(stratum(5)).is_none());
        for verdict in r.correlator.process_exited(5) {
            r.write(Change::Resolved, &verdict, None, Context::default());
        }
        assert_eq!(r.findings, 2);
    }

    #[test]
    fn a_raise_the_policy_caps_is_not_reported_again() {
        let mut r = reporter(Policy::default());
        let (_, verdict) = r.observe(stratum(6)).unwrap();
        r.write(Change::Opened, &verdict, None, Context::default());
        // Reported at confirmed: a "raise" to the same level is no news.
        r.write(Change::Raised, &verdict, None, Context::default());
        assert_eq!(r.findings, 1);
    }

    #[test]
    fn only_reported_verdicts_at_their_reported_level_are_enforced() {
        let enforce = "[[enforce]]\nname = \"e\"\nclass = [\"pow-mining\"]\n\
                       min_level = \"confirmed\"\nactions = [\"kill\"]\n";
        let capped = format!(
            "[[rule]]\naction = \"downgrade\"\nclass = [\"pow-mining\"]\n\
             max_level = \"observed\"\n\n{enforce}"
        );
        let allowed =
            format!("[[rule]]\naction = \"allow\"\nclass = [\"pow-mining\"]\n\n{enforce}");
        for text in [capped, allowed] {
            let mut r = reporter(Policy::parse(&text, "p.toml", &[]).unwrap());
            let (change, verdict) = r.observe(stratum(8)).unwrap();
            r.write(change, &verdict, None, Context::default());
            assert!(r.enforcer.take_wanted().is_empty(), "{text}");
        }
        // Reported at confirmed: wanted once, however often it is written.
        let mut r = reporter(Policy::parse(enforce, "p.toml", &[]).unwrap());
        let (change, verdict) = r.observe(stratum(9)).unwrap();
        r.write(change, &verdict, None, Context::default());
        r.write(Change::Updated, &verdict, None, Context::default());
        let wanted = r.enforcer.take_wanted();
        assert_eq!(wanted.len(), 1);
        assert_eq!(wanted[0].rule, "e");
    }

    /// An inference verdict that also takes part in a chain, as the
    /// correlator marks it.
    fn incentivised_inference(r: &mut Reporter) -> Verdict {
        let sign = |kind, strength, attributes: serde_json::Value| {
            Evidence::new(
                Workload::Session { sid: 3 },
                3,
                kind,
                strength,
                false,
                format!("{kind:?}"),
                attributes.as_object().cloned().unwrap_or_default(),
                SystemTime::now(),
            )
        };
        let _ = r.observe(sign(EvidenceKind::GpuInference, 0.5, json!({})));
        let _ = r.observe(sign(
            EvidenceKind::Bittensor,
            0.8,
            json!({"network": "bittensor", "remote": "127.0.0.1:9"}),
        ));
        let [verdict] = r.correlator.take_incentive_updates().try_into().unwrap();
        verdict
    }

    #[test]
    fn inference_allowed_by_policy_that_also_earns_tokens_is_reported_as_dual_use() {
        let ai_only =
            "[[rule]]\nname = \"inference farm\"\naction = \"allow\"\nclass = [\"ai-inference\"]\n";
        let mut r = reporter(Policy::parse(ai_only, "p.toml", &[]).unwrap());
        let verdict = incentivised_inference(&mut r);
        r.write(Change::Updated, &verdict, None, Context::default());
        assert_eq!((r.findings, r.suppressed), (1, 0));
        // A rule that covers the chain side too is a plain match.
        let both = "[[rule]]\nname = \"subnet miner\"\naction = \"allow\"\n\
                    class = [\"ai-inference\", \"chain-client\"]\n";
        let mut r = reporter(Policy::parse(both, "p.toml", &[]).unwrap());
        let verdict = incentivised_inference(&mut r);
        r.write(Change::Updated, &verdict, None, Context::default());
        assert_eq!((r.findings, r.suppressed), (0, 1));
    }
}
