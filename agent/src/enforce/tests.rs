//! The enforcer end to end without a kernel: dry runs only (they touch
//! nothing), so the rules, the once-only bookkeeping and the disarmer are
//! checked here and the cgroup writes by the privileged suite.

use std::time::SystemTime;

use serde_json::Map;

use super::*;
use crate::{
    correlate::Correlator,
    evidence::{Evidence, EvidenceKind},
    tables::workload::Workload,
};

fn policy(text: &str) -> Policy {
    Policy::parse(text, "p.toml", &[]).unwrap()
}

const FREEZE_MINERS: &str = r#"
[[enforce]]
name = "no mining"
class = ["pow-mining"]
min_level = "confirmed"
actions = ["freeze", "kill"]
"#;

fn verdict(pid: u32) -> Verdict {
    let mut c = Correlator::new("h");
    let (_, mut v) = c
        .observe(Evidence::new(
            Workload::Session { sid: pid },
            pid,
            EvidenceKind::Stratum,
            1.0,
            true,
            format!("pid {pid} logged in to a pool"),
            Map::new(),
            SystemTime::now(),
        ))
        .unwrap();
    // One correlator per verdict here: give each its own id.
    v.id = format!("v{pid}");
    v
}

fn own(pid: u32) -> Facts {
    Facts {
        cgroup: Ok(format!("/t/miner-{pid}.scope")),
        pids: vec![pid],
        gpu: None,
        endpoints: Vec::new(),
    }
}

fn enforcer() -> Enforcer {
    Enforcer::new(
        Options::default(),
        Some("/system.slice/assay.service".into()),
    )
    .unwrap()
}

/// Considers `v` at `level` and runs what it wants, at `now_s`.
fn act(e: &mut Enforcer, p: &Policy, v: &Verdict, level: Level, now_s: u64) -> Vec<Ran> {
    e.consider(p, v, level, None);
    let pid = v.evidence[0].pid;
    e.take_wanted()
        .into_iter()
        .map(|w| {
            let ran = run(e.prepare(w, &own(pid), now_s * 1_000_000_000));
            e.finish(&ran);
            ran
        })
        .collect()
}

#[test]
fn a_dry_run_records_the_rung_it_would_take_and_touches_nothing() {
    let (p, mut e) = (policy(FREEZE_MINERS), enforcer());
    let v = verdict(10);
    let ran = act(&mut e, &p, &v, Level::Confirmed, 0);
    assert_eq!(ran.len(), 1);
    let r = &ran[0].records;
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(
        (r[0].action, r[0].mode, r[0].result),
        (EnforceAction::Freeze, Mode::DryRun, Outcome::WouldDo)
    );
    assert_eq!(r[0].target, "cgroup /t/miner-10.scope");
    assert_eq!(ran[0].rule, "no mining");
    assert!(ran[0].undo.is_empty());
    assert_eq!(e.counts[&("freeze", "dry-run", "would-do")], 1);
}

#[test]
fn below_min_level_or_another_class_nothing_is_wanted() {
    let (p, mut e) = (policy(FREEZE_MINERS), enforcer());
    assert!(act(&mut e, &p, &verdict(11), Level::Suspected, 0).is_empty());
    let chain = policy(
        "[[enforce]]\nname = \"n\"\nclass = [\"chain-node\"]\nmin_level = \"observed\"\n\
         actions = [\"kill\"]\n",
    );
    assert!(act(&mut e, &chain, &verdict(12), Level::Confirmed, 0).is_empty());
}

#[test]
fn a_verdict_or_policy_change_never_reapplies_an_action() {
    let (p, mut e) = (policy(FREEZE_MINERS), enforcer());
    let v = verdict(13);
    assert_eq!(act(&mut e, &p, &v, Level::Confirmed, 0).len(), 1);
    // The same verdict raised or updated again: the rule already acted.
    assert!(act(&mut e, &p, &v, Level::Confirmed, 1).is_empty());
    // A new rule for the same workload: freeze was done, kill is next.
    let reloaded = policy(&FREEZE_MINERS.replace("no mining", "renamed"));
    let ran = act(&mut e, &reloaded, &v, Level::Confirmed, 2);
    let r = &ran[0].records;
    assert_eq!(r[0].result, Outcome::Skipped, "{r:?}");
    assert!(r[0].reason.contains("already done"));
    assert_eq!(
        (r[1].action, r[1].result),
        (EnforceAction::Kill, Outcome::WouldDo)
    );
}

#[test]
fn the_sixth_action_in_a_minute_is_not_taken_and_enforcement_stands_down() {
    let (p, mut e) = (policy(FREEZE_MINERS), enforcer());
    for pid in 0..5 {
        let ran = act(
            &mut e,
            &p,
            &verdict(100 + pid),
            Level::Confirmed,
            u64::from(pid),
        );
        assert_eq!(ran[0].records[0].result, Outcome::WouldDo);
    }
    assert!(!e.disarmed());
    let ran = act(&mut e, &p, &verdict(200), Level::Confirmed, 10);
    let r = &ran[0].records;
    assert!(r.iter().all(|r| r.result == Outcome::Disarmed), "{r:?}");
    assert!(e.disarmed());
    assert_eq!(e.counts[&("freeze", "dry-run", "disarmed")], 1);
    // An hour later it is still down.
    let later = act(&mut e, &p, &verdict(201), Level::Confirmed, 3600);
    assert_eq!(later[0].records[0].result, Outcome::Disarmed);
}

#[test]
fn a_cuda_process_is_not_frozen_the_next_rung_is_recorded() {
    let (p, mut e) = (policy(FREEZE_MINERS), enforcer());
    let v = verdict(14);
    e.consider(&p, &v, Level::Confirmed, None);
    let w = e.take_wanted().remove(0);
    let facts = Facts {
        gpu: Some("pid 14 holds a CUDA context".into()),
        ..own(14)
    };
    let ran = run(e.prepare(w, &facts, 0));
    let r = &ran.records;
    assert_eq!(
        (r[0].action, r[0].result),
        (EnforceAction::Freeze, Outcome::Skipped)
    );
    assert!(r[0].reason.contains("CUDA"));
    assert_eq!(
        (r[1].action, r[1].result),
        (EnforceAction::Kill, Outcome::WouldDo)
    );
}

#[test]
fn records_serialise_with_their_names() {
    let r = record(
        EnforceAction::DenyEgress,
        Mode::DryRun,
        "cgroup /x".into(),
        Outcome::WouldDo,
        "why".into(),
    );
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(v["action"], "deny-egress");
    assert_eq!(v["mode"], "dry-run");
    assert_eq!(v["result"], "would-do");
    assert!(v["at"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn a_deny_that_cannot_be_put_in_force_says_why_and_the_next_rung_applies() {
    // Enforcing, on a "cgroup root" that is a plain directory with an
    // empty process list: no deny map is loaded in a unit test, and the
    // kill finds no process. The pid is above any pid_max (2^22): no real
    // process is ever signalled.
    const PID: u32 = 2_000_000_001;
    let root = std::env::temp_dir().join(format!("assay-deny-fail-{}", std::process::id()));
    let own_dir = root.join(format!("t/miner-{PID}.scope"));
    std::fs::create_dir_all(&own_dir).unwrap();
    std::fs::write(own_dir.join("cgroup.procs"), "").unwrap();
    let mut e = Enforcer::new(
        Options {
            mode: Mode::Enforce,
            cgroup_root: Some(root.clone()),
            ..Options::default()
        },
        None,
    )
    .unwrap();
    let p = policy(&FREEZE_MINERS.replace("[\"freeze\", \"kill\"]", "[\"deny-egress\", \"kill\"]"));
    let v = verdict(PID);
    e.consider(&p, &v, Level::Confirmed, None);
    let facts = Facts {
        endpoints: vec![deny::Endpoint {
            addr: "198.51.100.7".parse().unwrap(),
            port: 3333,
        }],
        ..own(PID)
    };
    let wanted = e.take_wanted().pop().unwrap();
    let ran = run(e.prepare(wanted, &facts, 0));
    let r = &ran.records;
    assert_eq!(
        (r[0].action, r[0].result),
        (EnforceAction::DenyEgress, Outcome::Failed),
        "{r:?}"
    );
    assert!(r[0].reason.contains("deny map is not loaded"), "{r:?}");
    assert!(r[0].target.contains("198.51.100.7:3333"), "{r:?}");
    // The next rung was tried (and failed here too: not a real cgroup).
    assert_eq!(r[1].action, EnforceAction::Kill, "{r:?}");
    assert_eq!(r[1].result, Outcome::Failed, "{r:?}");
    e.finish(&ran);
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_throttle_is_journalled_undone_when_its_verdict_resolves_and_the_journal_emptied() {
    // cgroup files as plain files: what the ladder writes and restores,
    // without a cpu controller (the privileged suite skips where cgroup v2
    // has none). The process list is empty: no process is signalled.
    const PID: u32 = 2_000_000_002;
    let root = std::env::temp_dir().join(format!("assay-throttle-{}", std::process::id()));
    let own_dir = root.join(format!("t/miner-{PID}.scope"));
    let state = root.join("state");
    std::fs::create_dir_all(&own_dir).unwrap();
    std::fs::write(own_dir.join("cgroup.procs"), "").unwrap();
    std::fs::write(own_dir.join("cpu.max"), "max 100000\n").unwrap();
    let mut e = Enforcer::new(
        Options {
            mode: Mode::Enforce,
            cgroup_root: Some(root.clone()),
            ..Options::default()
        },
        None,
    )
    .unwrap();
    e.recover(&state);
    let p = policy(&FREEZE_MINERS.replace("[\"freeze\", \"kill\"]", "[\"throttle\"]"));
    let v = verdict(PID);
    e.consider(&p, &v, Level::Confirmed, None);
    let wanted = e.take_wanted().pop().unwrap();
    let ran = run(e.prepare(wanted, &own(PID), 0));
    assert_eq!(ran.records[0].result, Outcome::Done, "{:?}", ran.records);
    e.finish(&ran);
    let cpu_max = || std::fs::read_to_string(own_dir.join("cpu.max")).unwrap();
    assert_eq!(cpu_max(), actions::THROTTLED_CPU_MAX);
    let journal = std::fs::read_to_string(state.join(journal::FILE)).unwrap();
    assert!(
        journal.contains("CpuMax") && journal.contains("max 100000"),
        "{journal}"
    );
    // A killed agent's successor restores it from the journal alone.
    let mut next = Enforcer::new(Options::default(), None).unwrap();
    next.recover(&state);
    assert_eq!(cpu_max(), "max 100000");
    assert!(!state.join(journal::FILE).exists());
    // And in the first agent, the verdict's resolution undoes it.
    std::fs::write(own_dir.join("cpu.max"), actions::THROTTLED_CPU_MAX).unwrap();
    e.resolved(&v);
    for undo in e.take_undo_due() {
        undo_logged(&undo);
    }
    assert_eq!(cpu_max(), "max 100000");
    assert!(!state.join(journal::FILE).exists());
    let _ = std::fs::remove_dir_all(&root);
}
