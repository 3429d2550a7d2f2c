//! The correlator: evidence in, per-workload verdicts out.
//!
//! This is the minimal first cut of docs/design.md's model: evidence is merged per
//! workload and class; decisive evidence confirms a verdict alone, other
//! evidence adds up (`1 - Π(1 - strength)`) to `observed` or `suspected`.
//! A verdict is reported when it opens, when its level rises, and when its
//! evidence names something new (a wallet after a subscribe), never on every
//! repeated message.

pub mod incentive;
pub mod persist;
pub mod policy;

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, SystemTime, UNIX_EPOCH},
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
    /// A consensus client that signs: duties, attestations, blocks.
    PosValidator,
    /// Proof-of-space or proof-of-replication farming.
    StorageProving,
    /// A process that uses a chain (reads it, submits transactions)
    /// without being a node: not wrongdoing, but what makes a workload's
    /// purpose legible.
    ChainClient,
    ZkProving,
    AiTraining,
    AiInference,
    General,
}

impl Class {
    /// Every class, in the order reports list them (the open-verdict
    /// gauges have a series for each).
    pub const ALL: [Class; 9] = [
        Self::PowMining,
        Self::ChainNode,
        Self::PosValidator,
        Self::StorageProving,
        Self::ChainClient,
        Self::ZkProving,
        Self::AiTraining,
        Self::AiInference,
        Self::General,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::PowMining => "pow-mining",
            Self::ChainNode => "chain-node",
            Self::PosValidator => "pos-validator",
            Self::StorageProving => "storage-proving",
            Self::ChainClient => "chain-client",
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

impl Level {
    /// As written in findings (`observed`, `suspected`, `confirmed`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Observed => "observed",
            Self::Suspected => "suspected",
            Self::Confirmed => "confirmed",
        }
    }
}

/// The class each kind of evidence speaks for.
fn class_of(kind: EvidenceKind) -> Class {
    match kind {
        EvidenceKind::Stratum
        | EvidenceKind::RandomxFpu
        | EvidenceKind::StratumV2
        | EvidenceKind::PoolName
        | EvidenceKind::JobCadence
        | EvidenceKind::WorkLoop
        | EvidenceKind::MinerHygiene
        | EvidenceKind::CommandLine
        | EvidenceKind::GpuHashing => Class::PowMining,
        EvidenceKind::P2p => Class::ChainNode,
        EvidenceKind::ChainRpc | EvidenceKind::Bittensor => Class::ChainClient,
        EvidenceKind::Validator => Class::PosValidator,
        EvidenceKind::StorageProving => Class::StorageProving,
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
/// Evidence records (distinct signs) kept per workload, all kinds together.
const EVIDENCE_PER_WORKLOAD: usize = 64;
/// … and of one kind: a flood of one cheap sign (discovery datagrams to
/// ever new peers) can only push out its own kind, never a stratum login.
const EVIDENCE_PER_KIND: usize = 16;
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
    /// An AI verdict in a workload that also takes part in a chain
    /// ([`incentive`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incentive: Option<incentive::Incentive>,
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
        if let Some(incentive) = &self.incentive {
            text.push_str(&incentive.explain());
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
    /// AI verdicts that gained the incentive marker (or whose network
    /// changed) through evidence of another class, to be reported as
    /// updated ([`Correlator::take_incentive_updates`]).
    incentive_updates: Vec<Verdict>,
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
            incentive_updates: Vec::new(),
            next_id: 1,
            // Unique across hosts and agent restarts.
            id_prefix: format!("{host}-{started:x}"),
        }
    }

    /// Every open verdict.
    pub fn open_verdicts(&self) -> impl Iterator<Item = &Verdict> {
        self.workloads.values().flat_map(|s| s.verdicts.values())
    }

    /// Every process that evidence named and that has not exited.
    pub fn named_pids(&self) -> impl Iterator<Item = u32> + '_ {
        self.workloads
            .values()
            .flat_map(|s| s.live_pids.iter().copied())
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
        for SavedVerdict { mut verdict, pids } in saved.verdicts {
            let live: HashSet<u32> = pids.into_iter().filter(|&p| alive(p)).collect();
            if live.is_empty() {
                gone.push(verdict);
                continue;
            }
            let state = self.workloads.entry(verdict.workload.clone()).or_default();
            state.live_pids.extend(live);
            for e in &mut verdict.evidence {
                restored(e);
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
    /// `now_ns`: CLOCK_MONOTONIC ([`crate::time::monotonic_ns`]).
    pub fn decay(&mut self, now_ns: u64) -> Vec<Verdict> {
        let mut resolved = Vec::new();
        self.workloads.retain(|_, state| {
            state.evidence.retain(|e| {
                age(e, now_ns)
                    < if e.decisive {
                        FORGET_DECISIVE_AFTER
                    } else {
                        FORGET_AFTER
                    }
            });
            let classes: Vec<Class> = state.verdicts.keys().copied().collect();
            for class in classes {
                let (score, _, evidence) = assess(&state.evidence, class, now_ns);
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

        let (score, level, evidence) = assess(&state.evidence, class, crate::time::monotonic_ns());

        let change = match state.verdicts.get_mut(&class) {
            Some(verdict) => {
                let raised = level > verdict.level;
                verdict.level = verdict.level.max(level);
                verdict.score = score;
                verdict.evidence = evidence;
                if raised {
                    Some(Change::Raised)
                } else if news {
                    Some(Change::Updated)
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
                    incentive: None,
                };
                self.next_id += 1;
                state.verdicts.insert(class, verdict);
                Some(Change::Opened)
            }
        };
        // The incentive marker follows the workload's chain verdicts: an
        // AI verdict that gains it (or whose network changes) is news.
        let marker = incentive::of(&state.verdicts);
        let mut change = change;
        if marker.is_some() {
            for (ai_class, verdict) in state
                .verdicts
                .iter_mut()
                .filter(|(c, _)| incentive::is_ai(**c))
            {
                let network =
                    |i: &Option<incentive::Incentive>| i.as_ref().map(|i| i.network.clone());
                let newly = network(&verdict.incentive) != network(&marker);
                verdict.incentive.clone_from(&marker);
                if !newly {
                    continue;
                }
                if *ai_class == class {
                    change.get_or_insert(Change::Updated);
                } else {
                    self.incentive_updates.push(verdict.clone());
                }
            }
        }
        change.map(|change| (change, state.verdicts[&class].clone()))
    }

    /// AI verdicts that gained the incentive marker since the last call,
    /// through another class's evidence: each to be reported updated.
    pub fn take_incentive_updates(&mut self) -> Vec<Verdict> {
        std::mem::take(&mut self.incentive_updates)
    }
}

fn decisive_or_enough(level: Level, score: f32) -> bool {
    level == Level::Confirmed || score >= OPENS_AT
}

/// A class's score and level from a workload's evidence at `now`:
/// `1 - Π(1 - strength × decay)`, decay halving every [`HALF_LIFE`] since
/// the evidence was last seen; decisive evidence confirms while it is kept.
fn assess(all: &[Evidence], class: Class, now_ns: u64) -> (f32, Level, Vec<Evidence>) {
    let relevant: Vec<&Evidence> = all.iter().filter(|e| class_of(e.kind) == class).collect();
    let decayed = |e: &Evidence| {
        e.strength * 0.5f32.powf(age(e, now_ns).as_secs_f32() / HALF_LIFE.as_secs_f32())
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

/// How long ago evidence was last seen, on the monotonic clock.
fn age(e: &Evidence, now_ns: u64) -> Duration {
    Duration::from_nanos(now_ns.saturating_sub(e.seen_ns))
}

/// Evidence read back from a saved state: its monotonic time from its
/// wall-clock one (all that survives a reboot), and its key, which states
/// saved before keys existed lack.
fn restored(e: &mut Evidence) {
    let ago = SystemTime::now()
        .duration_since(e.last_seen)
        .unwrap_or_default();
    e.seen_ns = crate::time::monotonic_ns().saturating_sub(ago.as_nanos() as u64);
    if e.key.is_empty() {
        e.key = crate::evidence::sign_key(e.kind, e.pid, &e.attributes);
    }
}

/// The same sign again ([`Evidence::key`]) only refreshes its one record:
/// repeating, re-forking or re-exec'ing cannot add up. A new sign is kept
/// within [`EVIDENCE_PER_KIND`] and [`EVIDENCE_PER_WORKLOAD`]; past them
/// the weakest goes, which may be the new one: decisive evidence is never
/// given up for weak, and weak for weak only the stalest.
fn merge(list: &mut Vec<Evidence>, new: Evidence) {
    if let Some(old) = list.iter_mut().find(|e| e.key == new.key) {
        refresh(old, new);
        return;
    }
    let same_kind = list.iter().filter(|e| e.kind == new.kind).count();
    let full = if same_kind >= EVIDENCE_PER_KIND {
        Some(Some(new.kind))
    } else if list.len() >= EVIDENCE_PER_WORKLOAD {
        Some(None)
    } else {
        None
    };
    if let Some(kind) = full {
        let weakest = list
            .iter()
            .enumerate()
            .filter(|(_, e)| kind.is_none_or(|k| e.kind == k))
            .min_by(|(_, a), (_, b)| keep_order(a, b))
            .map(|(i, e)| (i, keep_order(e, &new).is_lt()));
        match weakest {
            Some((i, true)) => {
                list.remove(i);
            }
            // The newcomer is the weakest: the list stays as it is.
            _ => return,
        }
    }
    list.push(new);
}

/// Which of two records is worth less: weak before decisive, then the
/// lower strength, then the one seen longer ago.
fn keep_order(a: &Evidence, b: &Evidence) -> std::cmp::Ordering {
    a.decisive
        .cmp(&b.decisive)
        .then(a.strength.total_cmp(&b.strength))
        .then(a.seen_ns.cmp(&b.seen_ns))
}

/// `new` is the same sign as `old`, seen again: the latest times, the
/// latest process, the strongest strength with its words. Attributes
/// accumulate (a login after a subscribe), the stronger observation's
/// values winning where both have one.
fn refresh(old: &mut Evidence, new: Evidence) {
    old.first_seen = old.first_seen.min(new.first_seen);
    old.last_seen = old.last_seen.max(new.last_seen);
    old.seen_ns = old.seen_ns.max(new.seen_ns);
    old.pid = new.pid;
    old.decisive |= new.decisive;
    if new.strength >= old.strength {
        old.strength = new.strength;
        old.summary = new.summary;
        old.attributes.extend(new.attributes);
    } else {
        for (key, value) in new.attributes {
            old.attributes.entry(key).or_insert(value);
        }
    }
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

    /// Stratum evidence from `pid` on its flow to a pool.
    fn stratum(pid: u32, summary: &str, decisive: bool, strength: f32) -> Evidence {
        on_flow(pid, "203.0.113.9:3333", summary, decisive, strength)
    }

    fn on_flow(pid: u32, remote: &str, summary: &str, decisive: bool, strength: f32) -> Evidence {
        let mut attributes = serde_json::Map::new();
        attributes.insert("remote".into(), remote.into());
        Evidence::new(
            Workload::Session { sid: 100 },
            pid,
            EvidenceKind::Stratum,
            strength,
            decisive,
            summary.into(),
            attributes,
            SystemTime::now(),
        )
    }

    #[test]
    fn every_class_is_listed_once_under_the_name_it_serialises_to() {
        let names: HashSet<&str> = Class::ALL.iter().map(|c| c.name()).collect();
        assert_eq!(names.len(), Class::ALL.len());
        for class in Class::ALL {
            assert_eq!(serde_json::to_value(class).unwrap(), class.name());
        }
    }

    #[test]
    fn chain_rpc_and_validator_evidence_speak_for_their_own_classes() {
        assert_eq!(class_of(EvidenceKind::ChainRpc), Class::ChainClient);
        assert_eq!(class_of(EvidenceKind::Validator), Class::PosValidator);
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
        // The same sign again, stronger: one record, the stronger counts.
        assert!(c.observe(stratum(7, "keepalive", false, 0.5)).is_none());
        // Another sign (another peer) adds up.
        let (change, v) = c
            .observe(on_flow(7, "198.51.100.4:443", "other", false, 0.5))
            .unwrap();
        assert_eq!((change, v.level), (Change::Raised, Level::Suspected));
        let (change, v) = c.observe(stratum(8, "login", true, 1.0)).unwrap();
        assert_eq!((change, v.level), (Change::Raised, Level::Confirmed));
        // The login went to the first pool: that record is now decisive.
        assert_eq!(v.evidence.len(), 2);
        assert!(v.evidence[0].decisive && v.evidence[0].pid == 8);
    }

    #[test]
    fn a_flood_of_cheap_signs_cannot_push_out_decisive_evidence() {
        let mut c = Correlator::new("h");
        let (_, mining) = c.observe(stratum(7, "login", true, 1.0)).unwrap();
        // Discovery datagrams to ever new peers, many times the cap.
        for i in 0..(4 * EVIDENCE_PER_WORKLOAD) {
            let mut attributes = serde_json::Map::new();
            attributes.insert(
                "remote".into(),
                format!("192.0.2.{}:{}", i % 250, 30000 + i).into(),
            );
            let _ = c.observe(Evidence::new(
                Workload::Session { sid: 100 },
                7,
                EvidenceKind::P2p,
                0.1,
                false,
                format!("discovery datagram {i}"),
                attributes,
                SystemTime::now(),
            ));
        }
        let state = c.workloads.values().next().unwrap();
        let p2p = state
            .evidence
            .iter()
            .filter(|e| e.kind == EvidenceKind::P2p);
        assert_eq!(p2p.count(), EVIDENCE_PER_KIND);
        assert!(state.evidence.len() <= EVIDENCE_PER_WORKLOAD);
        // The next decay keeps the verdict open and confirmed.
        assert!(c.decay(crate::time::monotonic_ns()).is_empty());
        let open = c.open_verdicts().find(|v| v.id == mining.id).unwrap();
        assert_eq!(open.level, Level::Confirmed);
        assert!(open.evidence.iter().any(|e| e.decisive));
    }

    #[test]
    fn the_total_cap_gives_up_the_weakest_sign_or_the_newcomer() {
        let mut list = Vec::new();
        let sign = |i: usize, strength: f32, decisive: bool| {
            let mut attributes = serde_json::Map::new();
            attributes.insert("remote".into(), format!("192.0.2.1:{i}").into());
            let kind = [
                EvidenceKind::Stratum,
                EvidenceKind::JobCadence,
                EvidenceKind::P2p,
                EvidenceKind::StratumV2,
                EvidenceKind::GpuHashing,
            ][i % 5];
            Evidence::new(
                Workload::Session { sid: 1 },
                i as u32,
                kind,
                strength,
                decisive,
                String::new(),
                attributes,
                SystemTime::now(),
            )
        };
        for i in 0..EVIDENCE_PER_WORKLOAD {
            merge(&mut list, sign(i, 0.5, i == 3));
        }
        assert_eq!(list.len(), EVIDENCE_PER_WORKLOAD);
        // Weaker than everything kept: not taken.
        merge(&mut list, sign(1000, 0.1, false));
        assert!(!list.iter().any(|e| e.pid == 1000));
        // Stronger: takes the place of the stalest weak one, never the decisive.
        merge(&mut list, sign(1001, 0.9, false));
        assert!(list.iter().any(|e| e.pid == 1001));
        assert!(list.iter().any(|e| e.pid == 3 && e.decisive));
        assert!(!list.iter().any(|e| e.pid == 0));
        assert_eq!(list.len(), EVIDENCE_PER_WORKLOAD);
    }

    /// One weak sign, as process `pid` shows it: the words (and for huge
    /// pages the sysctl) vary with the process, the sign does not.
    fn weak_sign(which: usize, pid: u32) -> Evidence {
        let mut attributes = serde_json::Map::new();
        let (kind, strength, summary) = match which {
            0 => {
                attributes.insert("signal".into(), "command_line".into());
                attributes.insert("hints".into(), serde_json::json!([{"kind": "pool_url"}]));
                (
                    EvidenceKind::CommandLine,
                    0.3,
                    format!("pid {pid} was started with -o stratum+tcp://…"),
                )
            }
            1 => {
                attributes.insert("signal".into(), "hugepage_reservation".into());
                let sysctl = if pid.is_multiple_of(2) {
                    "nr_hugepages"
                } else {
                    "nr_overcommit_hugepages"
                };
                attributes.insert("sysctl".into(), sysctl.into());
                (
                    EvidenceKind::MinerHygiene,
                    0.15,
                    format!("pid {pid} set {sysctl} to 1280"),
                )
            }
            2 => {
                attributes.insert("pool_domain".into(), "supportxmr.com".into());
                attributes.insert(
                    "source".into(),
                    if pid.is_multiple_of(2) {
                        "dns"
                    } else {
                        "tls_sni"
                    }
                    .into(),
                );
                (
                    EvidenceKind::PoolName,
                    0.4,
                    format!("pid {pid} asked for pool.supportxmr.com"),
                )
            }
            _ => {
                attributes.insert("signal".into(), "msr_write".into());
                (
                    EvidenceKind::MinerHygiene,
                    0.3,
                    format!("pid {pid} opened an MSR for writing"),
                )
            }
        };
        Evidence::new(
            Workload::Session { sid: 42 },
            pid,
            kind,
            strength,
            false,
            summary,
            attributes,
            SystemTime::now(),
        )
    }

    /// The highest pow-mining level a stream of evidence reached, and the
    /// score it ended with.
    fn outcome(stream: impl IntoIterator<Item = Evidence>) -> (Option<Level>, f32) {
        let mut c = Correlator::new("h");
        let mut highest = None;
        for e in stream {
            if let Some((_, v)) = c.observe(e) {
                highest = highest.max(Some(v.level));
            }
        }
        let score = c.open_verdicts().map(|v| v.score).fold(0.0, f32::max);
        (highest, score)
    }

    proptest::proptest! {
        /// The property: a sign shown again, by the same process
        /// (repeat), by a child (re-fork: a new pid) or by a new image
        /// (re-exec: new words), never raises a verdict above what each
        /// sign shown once gives.
        #[test]
        fn repeating_reforking_or_reexecing_a_sign_never_raises_a_verdict(
            shown in proptest::collection::vec((0usize..4, 100u32..140), 1..60),
        ) {
            let distinct: std::collections::BTreeSet<usize> =
                shown.iter().map(|&(which, _)| which).collect();
            let (once_level, once_score) =
                outcome(distinct.iter().map(|&which| weak_sign(which, 100)));
            let (level, score) =
                outcome(shown.iter().map(|&(which, pid)| weak_sign(which, pid)));
            proptest::prop_assert_eq!(level, once_level);
            proptest::prop_assert!((score - once_score).abs() < 1e-3, "{} vs {}", score, once_score);
        }
    }

    fn evidence(
        kind: EvidenceKind,
        pid: u32,
        strength: f32,
        decisive: bool,
        summary: &str,
    ) -> Evidence {
        Evidence::new(
            Workload::Container {
                runtime: "containerd",
                id: "c".repeat(64),
                pod_uid: None,
            },
            pid,
            kind,
            strength,
            decisive,
            summary.into(),
            serde_json::Map::new(),
            SystemTime::now(),
        )
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
        // 0.7, not the threshold itself: evidence of exactly 0.6 decays
        // below "suspected" once 52 µs pass (f32), and a replay on a loaded
        // machine takes longer than that.
        let levels = replay(vec![
            evidence(
                EvidenceKind::GpuTraining,
                5,
                0.7,
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
        old.seen_ns -= (FORGET_AFTER / 2).as_nanos() as u64;
        // The wall clock says otherwise (it was set back): ages are
        // measured on the monotonic clock.
        old.last_seen = SystemTime::now() + FORGET_AFTER;
        let (_, v) = c.observe(old).unwrap();
        // Half-life 10 min: seen 15 minutes ago, it counts for about a third.
        assert!(v.score < 0.3 && v.level == Level::Observed, "{}", v.score);
        let now = crate::time::monotonic_ns();
        let later = |d: Duration| now + d.as_nanos() as u64;
        assert!(c.decay(now).is_empty());
        let resolved = c.decay(later(FORGET_AFTER));
        assert_eq!(resolved.len(), 1);
        assert_eq!(c.workload_count(), 0);
        // Decisive evidence is kept longer.
        let _ = c.observe(evidence(EvidenceKind::Stratum, 4, 1.0, true, "login"));
        assert!(c.decay(later(FORGET_AFTER)).is_empty());
        assert_eq!(
            c.decay(later(FORGET_DECISIVE_AFTER + Duration::from_secs(1)))
                .len(),
            1
        );
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
