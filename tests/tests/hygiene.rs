#![allow(clippy::print_stderr, reason = "test output")]
//! End to end: the system calls of a tuned miner (an MSR opened for
//! writing, a huge-page mapping the size of a RandomX dataset, the huge-page
//! reservation opened for writing) are weak evidence for the process that
//! made them, with its lineage and CPU use; the honest versions (an MSR
//! read, a database-sized huge-page buffer, the setting read) are nothing.
//! A forked child (no exec) is known with its parent's image.

use std::{
    io::{BufRead as _, BufReader},
    process::{Child, Stdio},
    time::Duration,
};

use assay_tests::{Agent, TestCgroup, emulator, finding_pid, require_root};
use serde_json::Value;

fn hygiene(cgroup: &TestCgroup, mode: &str, extra: &[&str]) -> Child {
    let mut cmd = emulator();
    cmd.args(["hygiene", "--mode", mode, "--hold-ms", "4000"])
        .args(extra)
        .stdout(Stdio::piped());
    cgroup.spawn(cmd)
}

/// The pid printed on the `done <pid>` line: the process that made the
/// calls (a forked child prints `child <pid>` first).
fn wait_done(child: &mut Child) -> u32 {
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.expect("emulator output");
        if let Some(pid) = line.strip_prefix("done ") {
            return pid.trim().parse().unwrap();
        }
    }
    panic!("the hygiene emulator ended without saying done");
}

fn hygiene_signals(finding: &Value) -> Vec<String> {
    finding["evidence"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["kind"] == "cpu.miner_hygiene")
        .filter_map(|e| e["attributes"]["signal"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn a_tuned_miners_system_calls_are_weak_evidence_and_honest_ones_are_nothing() {
    if !require_root() {
        return;
    }
    let cgroup = TestCgroup::new("hygiene");
    let mut agent = Agent::start(&cgroup);

    // The honest neighbours first: the agent handles events in order, so
    // when the miner's finding is in, theirs would have been too.
    let mut benign = hygiene(&cgroup, "benign", &[]);
    let benign_pid = wait_done(&mut benign);

    // Busy for 3 s first, so that its CPU use is in the finding.
    let mut miner = hygiene(&cgroup, "miner", &["--burn-ms", "3000"]);
    let miner_pid = miner.id();
    assert_eq!(wait_done(&mut miner), miner_pid);
    let finding = agent
        .wait_for_finding(Duration::from_secs(10), |f| {
            finding_pid(f) == Some(u64::from(miner_pid)) && hygiene_signals(f).len() >= 3
        })
        .unwrap_or_else(|| panic!("no hygiene evidence for the miner: {:?}", agent.seen));
    assert_eq!(finding["class"], "pow-mining", "{finding}");
    // Weak alone: never confirmed, never decisive.
    assert_eq!(finding["level"], "observed", "{finding}");
    let mut signals = hygiene_signals(&finding);
    signals.sort();
    assert_eq!(
        signals,
        [
            "hugepage_reservation",
            "msr_write",
            "randomx_dataset_hugetlb"
        ],
        "{finding}"
    );
    assert!(
        finding["cpu"]["process_cores"].as_f64().unwrap_or(0.0) >= 0.3,
        "the 3 s busy loop is not in the CPU use: {finding}"
    );
    assert!(
        finding["ancestors"]
            .as_array()
            .is_some_and(|a| !a.is_empty()),
        "no lineage: {finding}"
    );
    assert!(
        !agent
            .seen
            .iter()
            .any(|f| finding_pid(f) == Some(u64::from(benign_pid))),
        "honest MSR read / huge pages made a finding: {:?}",
        agent.seen
    );
    let _ = benign.wait();
    let _ = miner.wait();
}

#[test]
fn a_forked_child_is_known_with_its_parents_image_and_lineage() {
    if !require_root() {
        return;
    }
    let cgroup = TestCgroup::new("fork");
    let mut agent = Agent::start(&cgroup);
    let mut parent = hygiene(&cgroup, "miner", &["--fork"]);
    let parent_pid = parent.id();
    let child_pid = wait_done(&mut parent);
    assert_ne!(child_pid, parent_pid);
    let finding = agent
        .wait_for_finding(Duration::from_secs(10), |f| {
            finding_pid(f) == Some(u64::from(child_pid))
        })
        .unwrap_or_else(|| panic!("no finding for the forked child: {:?}", agent.seen));
    let process = &finding["process"];
    assert_eq!(process["source"], "fork", "{finding}");
    assert!(process["started"].is_string(), "{finding}");
    assert!(process["exe_inode"]["ino"].as_u64().is_some(), "{finding}");
    assert_eq!(process["ppid"], parent_pid, "{finding}");
    assert!(
        process["exe"]
            .as_str()
            .is_some_and(|e| e.ends_with("assay-emu")),
        "{finding}"
    );
    assert_eq!(finding["ancestors"][0]["pid"], parent_pid, "{finding}");
    let _ = parent.wait();
}
