//! Enforcement: what the agent does about a verdict when the operator
//! asked for it, opt-in and evidence-gated.
//!
//! Policy `[[enforce]]` rules name a ladder of actions (throttle, freeze,
//! kill) for verdicts at or above a level; nothing is done unless the agent
//! runs with `--enforce`, and without it every action that would have been
//! taken is recorded with `mode: "dry-run"`, so that an operator can watch
//! a week of what it would do before letting it act.
//!
//! The flow: the reporter asks the policy whether a reported verdict is
//! one to act on ([`Enforcer::consider`]); the loop gathers the facts the
//! ladder needs from its tables and the CUDA sensor
//! ([`ladder::Facts`]) and [`Enforcer::prepare`]s a [`Job`], which runs on
//! a worker ([`run`]: cgroup writes and waits never block the loop); its
//! [`Ran`] comes back to [`Enforcer::finish`] and is written as a
//! `verdict.enforced` finding.
//!
//! The rails ([`rails`]) keep it off what must never be touched; the
//! disarmer stands it down for the rest of the run when it acts more than
//! `--max-actions-per-minute` times; each `(verdict, rule)` is acted on
//! once, and an action already taken on a workload is never taken again.
//! What can be undone is, when its verdict resolves or the agent exits:
//! frozen cgroups are thawed, `cpu.max` restored, deny-egress entries
//! removed. With `--state-dir`, what is in force is also kept on disk
//! ([`journal`]), and the next start undoes what an agent killed without
//! its exit path left behind.

pub mod actions;
pub mod deny;
pub mod destroy;
pub mod journal;
pub mod ladder;
pub mod rails;

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    path::{Path, PathBuf},
    time::SystemTime,
};

use serde::Serialize;
use tracing::{info, warn};

use self::{
    actions::Undo,
    ladder::{Facts, Step},
    rails::{Disarmer, Rails},
};
use crate::{
    correlate::{
        Level, Verdict,
        policy::{EnforceAction, Policy},
    },
    tables::processes::ProcessInfo,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    DryRun,
    Enforce,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Self::DryRun => "dry-run",
            Self::Enforce => "enforce",
        }
    }
}

/// How one rung ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Taken, and it held.
    Done,
    /// Tried, and the kernel refused or it did not hold: the next rung
    /// applies.
    Failed,
    /// Not tried (the rails, a GPU context, already done): the next rung
    /// applies.
    Skipped,
    /// Dry run: the rung that would have been taken.
    WouldDo,
    /// Not taken: the disarmer has stood enforcement down.
    Disarmed,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
            Self::WouldDo => "would-do",
            Self::Disarmed => "disarmed",
        }
    }
}

/// One rung, as recorded.
#[derive(Debug, Clone, Serialize)]
pub struct ActionRecord {
    pub action: EnforceAction,
    pub mode: Mode,
    pub target: String,
    pub result: Outcome,
    pub reason: String,
    #[serde(with = "crate::time::rfc3339")]
    pub at: SystemTime,
}

/// What the agent was set to do.
#[derive(Debug, Clone)]
pub struct Options {
    pub mode: Mode,
    /// cgroup globs never acted on ([`rails::DEFAULT_PROTECT`] when none).
    pub protect: Vec<String>,
    pub max_actions_per_minute: u32,
    /// The cgroup2 mount (None: no cgroup action can be taken).
    pub cgroup_root: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            mode: Mode::DryRun,
            protect: Vec::new(),
            max_actions_per_minute: rails::DEFAULT_MAX_ACTIONS_PER_MINUTE,
            cgroup_root: None,
        }
    }
}

/// A verdict a rule wants acted on, waiting for the loop's facts.
#[derive(Debug, Clone)]
pub struct Wanted {
    pub verdict: Verdict,
    pub rule: String,
    pub actions: Vec<EnforceAction>,
    /// The process whose evidence made the verdict reportable.
    pub process: Option<ProcessInfo>,
}

/// A planned ladder, ready to run.
#[derive(Debug)]
pub struct Job {
    verdict: Verdict,
    rule: String,
    mode: Mode,
    root: Option<PathBuf>,
    steps: Vec<Step>,
    /// Records decided before running (the disarmer's).
    decided: Vec<ActionRecord>,
    /// Thaws put in force before the freeze ran.
    registered: Vec<Undo>,
    guard: actions::Guard,
}

/// A ladder that ran.
#[derive(Debug)]
pub struct Ran {
    pub verdict: Verdict,
    pub rule: String,
    pub records: Vec<ActionRecord>,
    undo: Vec<Undo>,
    registered: Vec<Undo>,
}

pub struct Enforcer {
    options: Options,
    pub rails: Rails,
    disarmer: Disarmer,
    wanted: Vec<Wanted>,
    /// `(verdict id, rule)` pairs already acted on (or planned).
    considered: HashSet<(String, String)>,
    /// Actions taken (or, in a dry run, that would have been) per workload.
    done: HashMap<String, Vec<EnforceAction>>,
    /// How to undo what is in force, per verdict id.
    in_force: HashMap<String, Vec<Undo>>,
    /// Undos due now (their verdict resolved).
    undo_due: Vec<Undo>,
    /// Rungs recorded, by (action, mode, result).
    pub counts: BTreeMap<(&'static str, &'static str, &'static str), u64>,
    /// Where what is in force is kept ([`journal`]), with `--state-dir`.
    state_dir: Option<PathBuf>,
}

impl Enforcer {
    pub fn new(options: Options, agent_cgroup: Option<String>) -> Result<Self, String> {
        let protect = if options.protect.is_empty() {
            rails::DEFAULT_PROTECT
                .iter()
                .map(|s| (*s).to_owned())
                .collect()
        } else {
            options.protect.clone()
        };
        Ok(Self {
            rails: Rails::new(&protect, agent_cgroup, std::process::id())?,
            disarmer: Disarmer::new(options.max_actions_per_minute),
            options,
            wanted: Vec::new(),
            considered: HashSet::new(),
            done: HashMap::new(),
            in_force: HashMap::new(),
            undo_due: Vec::new(),
            counts: BTreeMap::new(),
            state_dir: None,
        })
    }

    /// Keeps what is in force in `dir` from now on, after undoing what a
    /// previous run left there (it died without its exit path).
    pub fn recover(&mut self, dir: &Path) {
        let _ = std::fs::create_dir_all(dir);
        match journal::load(dir) {
            Ok(left) => {
                for undo in &left {
                    match actions::undo(undo) {
                        Ok(()) => info!(
                            "enforcement undone at start (left by a previous run): {}",
                            undo.describe()
                        ),
                        Err(err) => warn!("enforcement left by a previous run not undone: {err}"),
                    }
                }
            }
            Err(err) => warn!("enforcement journal ignored: {err}"),
        }
        self.state_dir = Some(dir.to_owned());
        self.persist();
    }

    /// Writes what is in force to the journal (with `--state-dir`).
    fn persist(&self) {
        if let Some(dir) = &self.state_dir
            && let Err(err) =
                journal::save(dir, self.in_force.values().flatten().chain(&self.undo_due))
        {
            warn!("enforcement journal not written: {err}");
        }
    }

    pub fn mode(&self) -> Mode {
        self.options.mode
    }

    pub fn disarmed(&self) -> bool {
        self.disarmer.tripped()
    }

    /// A verdict reported at `level`: queued when an `[[enforce]]` rule
    /// wants it acted on and that rule has not acted on it yet.
    pub fn consider(
        &mut self,
        policy: &Policy,
        verdict: &Verdict,
        level: Level,
        process: Option<&ProcessInfo>,
    ) {
        let Some(rule) = policy.enforcement(verdict.class, level, &verdict.workload, process)
        else {
            return;
        };
        if !self
            .considered
            .insert((verdict.id.clone(), rule.name.clone()))
        {
            return;
        }
        self.wanted.push(Wanted {
            verdict: verdict.clone(),
            rule: rule.name.clone(),
            actions: rule.actions.clone(),
            process: process.cloned(),
        });
    }

    /// The verdict resolved: what was done about it is to be undone, and
    /// once undone it is no longer done (a later verdict about the same
    /// workload starts the ladder again; a kill stays done).
    pub fn resolved(&mut self, verdict: &Verdict) {
        if let Some(undo) = self.in_force.remove(&verdict.id) {
            self.undo_due.extend(undo);
            if let Some(done) = self.done.get_mut(&verdict.workload.to_string()) {
                done.retain(|a| *a == EnforceAction::Kill);
            }
            self.persist();
        }
    }

    pub fn take_wanted(&mut self) -> Vec<Wanted> {
        std::mem::take(&mut self.wanted)
    }

    /// Puts back what could not be started now (no free worker).
    pub fn defer(&mut self, wanted: Wanted) {
        self.wanted.push(wanted);
    }

    /// The undos due, handed to a worker that runs them at once.
    pub fn take_undo_due(&mut self) -> Vec<Undo> {
        let due = std::mem::take(&mut self.undo_due);
        if !due.is_empty() {
            self.persist();
        }
        due
    }

    /// Puts back an undo that could not be started now.
    pub fn defer_undo(&mut self, undo: Undo) {
        self.undo_due.push(undo);
    }

    /// The ladder for `wanted` given `facts`, the disarmer asked at
    /// `now_ns` (monotonic) when a rung is to be tried.
    pub fn prepare(&mut self, wanted: Wanted, facts: &Facts, now_ns: u64) -> Job {
        let key = wanted.verdict.workload.to_string();
        let wanted_workload = wanted.verdict.workload.clone();
        let done = self.done.get(&key).map(Vec::as_slice).unwrap_or_default();
        let mut steps = ladder::plan(&wanted.actions, facts, done);
        let mut decided = Vec::new();
        if steps.iter().any(|s| matches!(s, Step::Try { .. })) {
            match self.disarmer.take(now_ns) {
                Ok(()) => {}
                Err(first) => {
                    if first {
                        warn!(
                            limit = self.options.max_actions_per_minute,
                            "enforcement disarmed: more actions in a minute than \
                             --max-actions-per-minute allows; nothing more is done until the \
                             agent restarts"
                        );
                    }
                    let reason = format!(
                        "enforcement is disarmed: more than {} actions in a minute",
                        self.options.max_actions_per_minute
                    );
                    for step in steps.drain(..) {
                        if let Step::Try { action, target } = step {
                            decided.push(record(
                                action,
                                self.options.mode,
                                target.describe(),
                                Outcome::Disarmed,
                                reason.clone(),
                            ));
                        }
                    }
                }
            }
        }
        // A freeze about to run is thawed at exit even if its result never
        // comes back (the agent stopped while it ran); [`Self::finish`]
        // forgets it when the freeze did not hold.
        let mut registered = Vec::new();
        if self.options.mode == Mode::Enforce
            && let Some(root) = &self.options.cgroup_root
        {
            for step in &steps {
                if let Step::Try {
                    action: EnforceAction::Freeze,
                    target: ladder::Target::Cgroup(path),
                } = step
                {
                    let thaw = Undo::Thaw(actions::dir(root, path));
                    self.in_force
                        .entry(wanted.verdict.id.clone())
                        .or_default()
                        .push(thaw.clone());
                    registered.push(thaw);
                }
            }
            if !registered.is_empty() {
                self.persist();
            }
        }
        Job {
            verdict: wanted.verdict,
            rule: wanted.rule,
            mode: self.options.mode,
            root: self.options.cgroup_root.clone(),
            steps,
            decided,
            registered,
            guard: actions::Guard {
                session: match wanted_workload {
                    crate::tables::workload::Workload::Session { sid } => Some(sid),
                    _ => None,
                },
                tree: facts.pids.clone(),
            },
        }
    }

    /// A ladder's records counted, and what it did remembered.
    pub fn finish(&mut self, ran: &Ran) {
        let key = ran.verdict.workload.to_string();
        for r in &ran.records {
            *self
                .counts
                .entry((r.action.name(), r.mode.name(), r.result.name()))
                .or_default() += 1;
            if matches!(r.result, Outcome::Done | Outcome::WouldDo) {
                self.done.entry(key.clone()).or_default().push(r.action);
            }
            info!(
                rule = %ran.rule, verdict = %ran.verdict.id, action = r.action.name(),
                mode = r.mode.name(), result = r.result.name(), target = %r.target,
                "enforcement: {}", r.reason
            );
        }
        let in_force = self.in_force.entry(ran.verdict.id.clone()).or_default();
        // Thaws registered before the freeze ran hold only if it did.
        for stale in ran.registered.iter().filter(|u| !ran.undo.contains(u)) {
            if let Some(at) = in_force.iter().position(|u| u == stale) {
                in_force.remove(at);
            }
        }
        for undo in &ran.undo {
            if !in_force.contains(undo) {
                in_force.push(undo.clone());
            }
        }
        if in_force.is_empty() {
            self.in_force.remove(&ran.verdict.id);
        }
        self.persist();
    }

    /// Undoes everything still in force, now (the agent is exiting).
    pub fn undo_all(&mut self) {
        let mut all = self.take_undo_due();
        all.extend(self.in_force.drain().flat_map(|(_, undo)| undo));
        for undo in all {
            undo_logged(&undo);
        }
        self.persist();
    }
}

/// Undoes one action and says so.
pub fn undo_logged(undo: &Undo) {
    match actions::undo(undo) {
        Ok(()) => info!("enforcement undone: {}", undo.describe()),
        Err(err) => warn!("enforcement not undone: {err}"),
    }
}

fn record(
    action: EnforceAction,
    mode: Mode,
    target: String,
    result: Outcome,
    reason: String,
) -> ActionRecord {
    ActionRecord {
        action,
        mode,
        target,
        result,
        reason,
        at: SystemTime::now(),
    }
}

/// Runs a ladder: rungs in order until one holds. A dry run touches
/// nothing and records the rung it would have taken.
pub fn run(job: Job) -> Ran {
    let mut records = job.decided;
    let mut undo = Vec::new();
    for step in job.steps {
        match step {
            Step::Skip { action, reason } => {
                records.push(record(
                    action,
                    job.mode,
                    String::new(),
                    Outcome::Skipped,
                    reason,
                ));
            }
            Step::Try { action, target } => {
                let what = target.describe();
                if job.mode == Mode::DryRun {
                    records.push(record(
                        action,
                        job.mode,
                        what,
                        Outcome::WouldDo,
                        "dry run: run the agent with --enforce to act".into(),
                    ));
                    break;
                }
                let Some(root) = job.root.as_deref() else {
                    records.push(record(
                        action,
                        job.mode,
                        what,
                        Outcome::Failed,
                        "cgroup v2 is not mounted".into(),
                    ));
                    continue;
                };
                match actions::apply(root, action, &target, &job.guard) {
                    Ok((done, how)) => {
                        records.push(record(action, job.mode, what, Outcome::Done, done));
                        undo.extend(how);
                        break;
                    }
                    Err(err) => {
                        records.push(record(action, job.mode, what, Outcome::Failed, err));
                    }
                }
            }
        }
    }
    Ran {
        verdict: job.verdict,
        rule: job.rule,
        records,
        undo,
        registered: job.registered,
    }
}

#[cfg(test)]
mod tests;
