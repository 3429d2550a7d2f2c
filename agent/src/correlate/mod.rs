//! The correlator: evidence in, per-workload verdicts out.
//!
//! This is the minimal first cut of docs/design.md's model: evidence is merged per
//! workload and class; decisive evidence confirms a verdict alone, other
//! evidence adds up (`1 - Π(1 - strength)`) to `observed` or `suspected`.
//! A verdict is reported when it opens, when its level rises, and when its
//! evidence names something new (a wallet after a subscribe), never on every
//! repeated message.

pub mod persist;
pub mod policy;

use std::{
    collections::{HashMap, HashSet},
    time::{SystemTime, UNIX_EPOCH},
};

use serde::{Deserialize, Serialize};

use crate::{
    evidence::{Evidence, EvidenceKind},
    tables::workload::Workload,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Class {
    PowMining,
    ChainNode,
    ZkProving,
    AiTraining,
    AiInference,
    General,
}

impl Class {
    pub fn name(self) -> &'static str {
        match self {
            Self::PowMining => "pow-mining",
            Self::ChainNode => "chain-node",
            Self::ZkProving => "zk-proving",
            Self::AiTraining => "ai-training",
            Self::AiInference => "ai-inference",
            Self::General => "general",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Observed,
    Suspected,
    Confirmed,
}

/// The class each kind of evidence speaks for.
fn class_of(kind: EvidenceKind) -> Class {
    match kind {
        EvidenceKind::Stratum
        | EvidenceKind::RandomxFpu
        | EvidenceKind::StratumV2
        | EvidenceKind::PoolName
        | EvidenceKind::JobCadence
        | EvidenceKind::MinerHygiene
        | EvidenceKind::CommandLine
        | EvidenceKind::GpuHashing => Class::PowMining,
        EvidenceKind::P2p => Class::ChainNode,
        EvidenceKind::GpuTraining => Class::AiTraining,
        EvidenceKind::GpuInference => Class::AiInference,
        EvidenceKind::GpuZkProving => Class::ZkProving,
    }
}

/// Score at or above which non-decisive evidence makes a verdict `suspected`.
pub const SUSPECTED_AT: f32 = 0.6;
/// Score below which evidence does not open a verdict by itself: it is
/// kept, and counts once anything else about the workload does (a huge-page
/// reservation says little alone, more next to a pool connection).
pub const OPENS_AT: f32 = 0.2;
/// Evidence records kept per workload; the oldest go first.
const EVIDENCE_PER_WORKLOAD: usize = 64;
/// Non-decisive evidence counts half after this long without being seen
/// again (a miner's flows and FPU marks keep refreshing theirs).
pub const HALF_LIFE: std::time::Duration = std::time::Duration::from_secs(600);
/// Evidence not seen again for this long is dropped; a verdict left with
/// no evidence resolves. Decisive evidence (a stratum login, the RandomX
/// marker) stays longer: it was proof when it was seen.
pub const FORGET_AFTER: std::time::Duration = std::time::Duration::from_secs(1800);
pub const FORGET_DECISIVE_AFTER: std::time::Duration = std::time::Duration::from_secs(3600);

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Verdict {
    pub id: String,
    pub workload: Workload,
    pub class: Class,
    pub level: Level,
    pub score: f32,
    /// Every piece of evidence behind the verdict, newest last.
    pub evidence: Vec<Evidence>,
}

/// Bumped when [`SavedState`]'s shape changes; another version is not read.
pub const SAVED_STATE_VERSION: u32 = 1;

/// Open verdicts across an agent restart (`--state-dir`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedState {
    pub version: u32,
    pub verdicts: Vec<SavedVerdict>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedVerdict {
    pub verdict: Verdict,
    /// Processes the evidence named that had not exited.
    pub pids: Vec<u32>,
}

/// When a verdict's evidence was seen: first and last. A workload that
/// alternates (mining, then training) gets one verdict per class, each
/// with its own range.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Active {
    #[serde(with = "crate::time::rfc3339")]
    pub from: SystemTime,
    #[serde(with = "crate::time::rfc3339")]
    pub to: SystemTime,
}

impl Verdict {
    pub fn active(&self) -> Option<Active> {
        let from = self.evidence.iter().map(|e| e.first_seen).min()?;
        let to = self.evidence.iter().map(|e| e.last_seen).max()?;
        Some(Active { from, to })
    }

    /// The verdict in plain words, from its evidence alone.
    pub fn explanation(&self) -> String {
        let mut text = format!(
            "{} is {} {} (score {:.2})",
            self.workload,
            match self.level {
                Level::Confirmed => "confirmed as",
                Level::Suspected => "suspected of",
                Level::Observed => "observed with signs of",
            },
            self.class.name(),
            self.score
        );
        let decisive: Vec<&str> = self
            .evidence
            .iter()
            .filter(|e| e.decisive)
            .map(|e| e.summary.as_str())
            .collect();
        if !decisive.is_empty() {
            text.push_str(": decisive evidence: ");
            text.push_str(&decisive.join("; "));
        } else {
            // No single proof: the strongest signs, which together make it.
            let mut signs: Vec<&Evidence> = self.evidence.iter().collect();
            signs.sort_by(|a, b| b.strength.total_cmp(&a.strength));
            let strongest: Vec<String> = signs
                .iter()
                .take(3)
                .map(|e| format!("{} (strength {:.2})", e.summary, e.strength))
                .collect();
            if !strongest.is_empty() {
                text.push_str(": ");
                text.push_str(&strongest.join("; "));
                if signs.len() > 3 {
                    text.push_str(&format!("; and {} weaker signs", signs.len() - 3));
                }
            }
        }
        text
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    Opened,
    Raised,
    /// Same level, but the evidence named something new about the workload
    /// (a login, wallet, worker, agent or algorithm).
    Updated,
    /// Every process the evidence named has exited: the verdict is closed.
    Resolved,
}

/// Attributes that identify what a workload is doing and for whom: a new
/// value for one of them is worth an update; more of the same is not.
const IDENTITY_ATTRIBUTES: [&str; 7] = [
    "login",
    "worker",
    "agent",
    "algorithms",
    "network",
    "pool_domain",
    // A new kind of miner-hygiene or command-line sign.
    "signal",
];

/// True when `new` carries an identity attribute value none of `old` has.
fn names_something_new(old: &[Evidence], new: &Evidence) -> bool {
    IDENTITY_ATTRIBUTES.iter().any(|key| {
        new.attributes
            .get(*key)
            .is_some_and(|value| !old.iter().any(|e| e.attributes.get(*key) == Some(value)))
    })
}

#[derive(Debug, Default)]
struct WorkloadState {
    evidence: Vec<Evidence>,
    verdicts: HashMap<Class, Verdict>,
    /// Processes named by the evidence that have not exited yet.
    live_pids: HashSet<u32>,
}

#[derive(Debug)]
pub struct Correlator {
    workloads: HashMap<Workload, WorkloadState>,
    next_id: u64,
    id_prefix: String,
}

impl Correlator {
    pub fn new(host: &str) -> Self {
        let started = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        Self {
            workloads: HashMap::new(),
            next_id: 1,
            // Unique across hosts and agent restarts.
            id_prefix: format!("{host}-{started:x}"),
        }
    }

    /// Every open verdict.
    pub fn open_verdicts(&self) -> impl Iterator<Item = &Verdict> {
        self.workloads.values().flat_map(|s| s.verdicts.values())
    }

    pub fn workload_count(&self) -> usize {
        self.workloads.len()
    }

    /// A process exited. Verdicts of workloads with no process left that
    /// their evidence named are resolved and returned, and the workload's
    /// state is dropped: memory stays bounded by the live workloads.
    pub fn process_exited(&mut self, pid: u32) -> Vec<Verdict> {
        let mut resolved = Vec::new();
        self.workloads.retain(|_, state| {
            if !state.live_pids.remove(&pid) || !state.live_pids.is_empty() {
                return true;
            }
            resolved.extend(state.verdicts.drain().map(|(_, v)| v));
            false
        });
        resolved
    }

    /// The open verdicts with the processes they are about, to save across
    /// a restart.
    pub fn save(&self) -> SavedState {
        SavedState {
            version: SAVED_STATE_VERSION,
            verdicts: self
                .workloads
                .values()
                .flat_map(|state| {
                    state.verdicts.values().map(|v| SavedVerdict {
                        verdict: v.clone(),
                        pids: state.live_pids.iter().copied().collect(),
                    })
                })
                .collect(),
        }
    }

    /// Re-opens saved verdicts whose processes still run (`alive`), without
    /// reporting them again; returns those whose processes are all gone,
    /// to be reported resolved.
    pub fn restore(&mut self, saved: SavedState, alive: impl Fn(u32) -> bool) -> Vec<Verdict> {
        let mut gone = Vec::new();
        for SavedVerdict { verdict, pids } in saved.verdicts {
            let live: HashSet<u32> = pids.into_iter().filter(|&p| alive(p)).collect();
            if live.is_empty() {
                gone.push(verdict);
                continue;
            }
            let state = self.workloads.entry(verdict.workload.clone()).or_default();
            state.live_pids.extend(live);
            for e in &verdict.evidence {
                merge(&mut state.evidence, e.clone());
            }
            state.verdicts.insert(verdict.class, verdict);
        }
        gone
    }

    /// Drops evidence not seen for [`FORGET_AFTER`] ([`FORGET_DECISIVE_AFTER`]
    /// if decisive) and resolves verdicts left with none: a workload that
    /// stopped mining but kept running is cleared. Levels never go down
    /// while a verdict is open; scores do.
    pub fn decay(&mut self, now: SystemTime) -> Vec<Verdict> {
        let mut resolved = Vec::new();
        self.workloads.retain(|_, state| {
            state.evidence.retain(|e| {
                let age = now.duration_since(e.last_seen).unwrap_or_default();
                age < if e.decisive {
                    FORGET_DECISIVE_AFTER
                } else {
                    FORGET_AFTER
                }
            });
            let classes: Vec<Class> = state.verdicts.keys().copied().collect();
            for class in classes {
                let (score, _, evidence) = assess(&state.evidence, class, now);
                if evidence.is_empty() {
                    if let Some(verdict) = state.verdicts.remove(&class) {
                        resolved.push(verdict);
                    }
                } else if let Some(verdict) = state.verdicts.get_mut(&class) {
                    verdict.score = score;
                    verdict.evidence = evidence;
                }
            }
            !state.evidence.is_empty() || !state.verdicts.is_empty()
        });
        resolved
    }

    /// Adds evidence; returns the verdict when it opened or its level rose.
    pub fn observe(&mut self, evidence: Evidence) -> Option<(Change, Verdict)> {
        let class = class_of(evidence.kind);
        let workload = evidence.workload.clone();
        let state = self.workloads.entry(workload.clone()).or_default();
        state.live_pids.insert(evidence.pid);
        let news = state
            .verdicts
            .get(&class)
            .is_some_and(|v| names_something_new(&v.evidence, &evidence));
        merge(&mut state.evidence, evidence);

        let now = SystemTime::now();
        let (score, level, evidence) = assess(&state.evidence, class, now);

        match state.verdicts.get_mut(&class) {
            Some(verdict) => {
                let raised = level > verdict.level;
                verdict.level = verdict.level.max(level);
                verdict.score = score;
                verdict.evidence = evidence;
                if raised {
                    Some((Change::Raised, verdict.clone()))
                } else if news {
                    Some((Change::Updated, verdict.clone()))
                } else {
                    None
                }
            }
            None if !decisive_or_enough(level, score) => None,
            None => {
                let verdict = Verdict {
                    id: format!("{}-{}", self.id_prefix, self.next_id),
                    workload,
                    class,
                    level,
                    score,
                    evidence,
                };
                self.next_id += 1;
                state.verdicts.insert(class, verdict.clone());
                Some((Change::Opened, verdict))
            }
        }
    }
}

fn decisive_or_enough(level: Level, score: f32) -> bool {
    level == Level::Confirmed || score >= OPENS_AT
}

/// A class's score and level from a workload's evidence at `now`:
/// `1 - Π(1 - strength × decay)`, decay halving every [`HALF_LIFE`] since
/// the evidence was last seen; decisive evidence confirms while it is kept.
fn assess(all: &[Evidence], class: Class, now: SystemTime) -> (f32, Level, Vec<Evidence>) {
    let relevant: Vec<&Evidence> = all.iter().filter(|e| class_of(e.kind) == class).collect();
    let decayed = |e: &Evidence| {
        let age = now.duration_since(e.last_seen).unwrap_or_default();
        e.strength * 0.5f32.powf(age.as_secs_f32() / HALF_LIFE.as_secs_f32())
    };
    let score = 1.0 - relevant.iter().fold(1.0, |acc, e| acc * (1.0 - decayed(e)));
    let level = if relevant.iter().any(|e| e.decisive) {
        Level::Confirmed
    } else if score >= SUSPECTED_AT {
        Level::Suspected
    } else {
        Level::Observed
    };
    (score, level, relevant.into_iter().cloned().collect())
}

/// The same observation (kind, pid, summary) again only refreshes the one
/// record; evidence lists stay short and readable.
fn merge(list: &mut Vec<Evidence>, new: Evidence) {
    if let Some(old) = list
        .iter_mut()
        .find(|e| e.kind == new.kind && e.pid == new.pid && e.summary == new.summary)
    {
        old.last_seen = new.last_seen;
        old.strength = old.strength.max(new.strength);
        old.decisive |= new.decisive;
        // Latest measurements win (shares, rates); identity values are
        // the same by construction of the summary.
        old.attributes.extend(new.attributes);
        return;
    }
    if list.len() >= EVIDENCE_PER_WORKLOAD {
        list.remove(0);
    }
    list.push(new);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_login(mut e: Evidence, login: &str) -> Evidence {
        e.attributes.insert("login".into(), login.into());
        e
    }

    #[test]
    fn a_new_login_updates_an_open_verdict_once() {
        let mut c = Correlator::new("h");
        let (_, opened) = c.observe(stratum(7, "subscribe", true, 1.0)).unwrap();
        let (change, v) = c
            .observe(with_login(stratum(7, "authorize", true, 1.0), "w1"))
            .unwrap();
        assert_eq!((change, &v.id), (Change::Updated, &opened.id));
        assert!(
            c.observe(with_login(stratum(7, "submit", true, 1.0), "w1"))
                .is_none()
        );
    }

    fn stratum(pid: u32, summary: &str, decisive: bool, strength: f32) -> Evidence {
        Evidence {
            workload: Workload::Session { sid: 100 },
            pid,
            kind: EvidenceKind::Stratum,
            strength,
            decisive,
            summary: summary.into(),
            attributes: serde_json::Map::new(),
            first_seen: SystemTime::now(),
            last_seen: SystemTime::now(),
        }
    }

    #[test]
    fn decisive_evidence_confirms_alone_and_is_reported_once() {
        let mut c = Correlator::new("h");
        let (change, v) = c.observe(stratum(7, "login", true, 1.0)).unwrap();
        assert_eq!(
            (change, v.level, v.class),
            (Change::Opened, Level::Confirmed, Class::PowMining)
        );
        assert!(v.explanation().contains("confirmed as pow-mining"));
        assert!(c.observe(stratum(7, "submit", true, 1.0)).is_none());
        assert!(c.observe(stratum(7, "login", true, 1.0)).is_none());
    }

    #[test]
    fn a_verdict_resolves_when_the_last_named_process_exits() {
        let mut c = Correlator::new("h");
        let (_, opened) = c.observe(stratum(7, "login", true, 1.0)).unwrap();
        let _ = c.observe(stratum(8, "login", true, 1.0));
        assert!(c.process_exited(7).is_empty(), "pid 8 still runs");
        assert!(c.process_exited(99).is_empty());
        let resolved = c.process_exited(8);
        assert_eq!(resolved.len(), 1);
        assert_eq!(resolved[0].id, opened.id);
        assert_eq!(c.workload_count(), 0);
        // New evidence after that opens a new verdict.
        let (change, again) = c.observe(stratum(9, "login", true, 1.0)).unwrap();
        assert_eq!(change, Change::Opened);
        assert_ne!(again.id, opened.id);
    }

    #[test]
    fn weak_evidence_opens_observed_then_rises() {
        let mut c = Correlator::new("h");
        let (change, v) = c.observe(stratum(7, "keepalive", false, 0.3)).unwrap();
        assert_eq!((change, v.level), (Change::Opened, Level::Observed));
        let (change, v) = c.observe(stratum(7, "other", false, 0.5)).unwrap();
        assert_eq!((change, v.level), (Change::Raised, Level::Suspected));
        let (change, v) = c.observe(stratum(8, "login", true, 1.0)).unwrap();
        assert_eq!((change, v.level), (Change::Raised, Level::Confirmed));
        assert_eq!(v.evidence.len(), 3);
    }

    fn evidence(
        kind: EvidenceKind,
        pid: u32,
        strength: f32,
        decisive: bool,
        summary: &str,
    ) -> Evidence {
        Evidence {
            workload: Workload::Container {
                runtime: "containerd",
                id: "c".repeat(64),
                pod_uid: None,
            },
            pid,
            kind,
            strength,
            decisive,
            summary: summary.into(),
            attributes: serde_json::Map::new(),
            first_seen: SystemTime::now(),
            last_seen: SystemTime::now(),
        }
    }

    /// Feeds a recorded evidence stream; returns the last state of each
    /// class's verdict.
    fn replay(stream: Vec<Evidence>) -> HashMap<Class, Level> {
        let mut c = Correlator::new("h");
        let mut levels = HashMap::new();
        for e in stream {
            if let Some((_, v)) = c.observe(e) {
                levels.insert(v.class, v.level);
            }
        }
        levels
    }

    #[test]
    fn scenario_a_renamed_randomx_miner_over_tls_to_an_odd_port_is_confirmed() {
        let levels = replay(vec![
            evidence(EvidenceKind::CommandLine, 9, 0.2, false, "kworker -c cfg"),
            evidence(
                EvidenceKind::JobCadence,
                9,
                0.35,
                false,
                "TLS beat to 203.0.113.7:8443",
            ),
            evidence(
                EvidenceKind::RandomxFpu,
                9,
                1.0,
                true,
                "CFROUND on a busy thread",
            ),
        ]);
        assert_eq!(levels.get(&Class::PowMining), Some(&Level::Confirmed));
        assert_eq!(levels.len(), 1);
    }

    #[test]
    fn scenario_a_monero_node_that_also_mines_is_both() {
        let levels = replay(vec![
            evidence(EvidenceKind::P2p, 3, 1.0, true, "Levin handshake"),
            evidence(
                EvidenceKind::RandomxFpu,
                3,
                1.0,
                true,
                "CFROUND on a busy thread",
            ),
        ]);
        assert_eq!(levels.get(&Class::ChainNode), Some(&Level::Confirmed));
        assert_eq!(levels.get(&Class::PowMining), Some(&Level::Confirmed));
    }

    #[test]
    fn scenario_ai_training_next_to_a_chain_node_is_not_mining() {
        let levels = replay(vec![
            evidence(
                EvidenceKind::GpuTraining,
                5,
                0.6,
                false,
                "trains on the GPU",
            ),
            evidence(
                EvidenceKind::P2p,
                6,
                1.0,
                true,
                "libp2p + substrate block announces",
            ),
            evidence(
                EvidenceKind::GpuInference,
                5,
                0.4,
                false,
                "serves inference",
            ),
        ]);
        assert!(!levels.contains_key(&Class::PowMining), "{levels:?}");
        assert_eq!(levels.get(&Class::ChainNode), Some(&Level::Confirmed));
        assert_eq!(levels.get(&Class::AiTraining), Some(&Level::Suspected));
    }

    #[test]
    fn scenario_a_long_lived_tls_client_on_a_busy_cpu_stays_observed() {
        let levels = replay(vec![evidence(
            EvidenceKind::JobCadence,
            4,
            0.35,
            false,
            "unanswered pushes every 30 s",
        )]);
        assert_eq!(levels.get(&Class::PowMining), Some(&Level::Observed));
    }

    #[test]
    fn evidence_decays_and_a_verdict_with_none_left_resolves() {
        let mut c = Correlator::new("h");
        let mut old = evidence(EvidenceKind::PoolName, 4, 0.7, false, "pool lookup");
        old.last_seen = SystemTime::now() - FORGET_AFTER / 2;
        let (_, v) = c.observe(old).unwrap();
        // Half-life 10 min: seen 15 minutes ago, it counts for about a third.
        assert!(v.score < 0.3 && v.level == Level::Observed, "{}", v.score);
        assert!(c.decay(SystemTime::now()).is_empty());
        let resolved = c.decay(SystemTime::now() + FORGET_AFTER);
        assert_eq!(resolved.len(), 1);
        assert_eq!(c.workload_count(), 0);
        // Decisive evidence is kept longer.
        let _ = c.observe(evidence(EvidenceKind::Stratum, 4, 1.0, true, "login"));
        assert!(c.decay(SystemTime::now() + FORGET_AFTER).is_empty());
        assert_eq!(c.decay(SystemTime::now() + FORGET_DECISIVE_AFTER).len(), 1);
    }

    #[test]
    fn a_workload_that_alternates_gets_both_classes_with_their_ranges() {
        let mut c = Correlator::new("h");
        let t0 = SystemTime::now() - std::time::Duration::from_secs(120);
        let mut mining = evidence(EvidenceKind::RandomxFpu, 8, 1.0, true, "CFROUND");
        mining.first_seen = t0;
        mining.last_seen = t0 + std::time::Duration::from_secs(30);
        let (_, mined) = c.observe(mining).unwrap();
        let (_, trained) = c
            .observe(evidence(
                EvidenceKind::GpuTraining,
                8,
                0.6,
                false,
                "training",
            ))
            .unwrap();
        assert_ne!(mined.id, trained.id);
        let (m, t) = (mined.active().unwrap(), trained.active().unwrap());
        assert!(m.to < t.from, "mining ended before training began");
    }

    #[test]
    fn open_verdicts_survive_a_restart_and_gone_ones_resolve() {
        let mut before = Correlator::new("h");
        let (_, mining) = before.observe(stratum(7, "login", true, 1.0)).unwrap();
        let mut other = evidence(EvidenceKind::RandomxFpu, 8, 1.0, true, "CFROUND");
        other.workload = Workload::Process { tgid: 8 };
        let (_, gone) = before.observe(other).unwrap();
        let text = serde_json::to_string(&before.save()).unwrap();

        let mut after = Correlator::new("h");
        let saved: SavedState = serde_json::from_str(&text).unwrap();
        let resolved = after.restore(saved, |pid| pid == 7);
        assert_eq!(resolved.len(), 1);
        assert_eq!(resolved[0].id, gone.id);
        // Still open, same id, not re-reported; its process exiting resolves it.
        assert!(after.observe(stratum(7, "submit", true, 1.0)).is_none());
        let closed = after.process_exited(7);
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].id, mining.id);
    }
}
