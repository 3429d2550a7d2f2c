#![allow(clippy::print_stderr, reason = "test output")]
//! End to end: what a tuned miner does (an MSR device opened for writing,
//! the huge-page reservation written, a mapping of a RandomX dataset's size
//! while busy) is weak evidence for the process that did it, with its
//! lineage and CPU use; the honest versions (an MSR read, the reservation
//! read, a database-sized mapping) are nothing. A forked child (no exec) is
//! known with its parent's image.

use std::{
    io::{BufRead as _, BufReader},
    process::{Child, Stdio},
    time::Duration,
};

use assay_tests::{Agent, TestCgroup, emulator, finding_pid, require_root};
use serde_json::Value;

/// An MSR device node (char 202:0) for the test: this kernel has no msr
/// driver, but the kernel asks the device program before it looks for one.
/// On devtmpfs, since /tmp may be mounted nodev.
struct MsrNode(std::path::PathBuf);

impl MsrNode {
    fn new() -> Self {
        let path = std::path::PathBuf::from(format!("/dev/assay-test-msr-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid C string; makedev of constants.
        let rc = unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o600, libc::makedev(202, 0)) };
        assert_eq!(rc, 0, "mknod: {}", std::io::Error::last_os_error());
        Self(path)
    }
}

impl Drop for MsrNode {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn hygiene(cgroup: &TestCgroup, msr: &MsrNode, mode: &str, extra: &[&str]) -> Child {
    let mut cmd = emulator();
    cmd.args(["hygiene", "--mode", mode, "--hold-ms", "4000"])
        .arg("--msr-device")
        .arg(&msr.0)
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
    let msr = MsrNode::new();
    let mut agent = Agent::start(&cgroup);

    // The honest neighbour first, as busy as the miner.
    let mut benign = hygiene(&cgroup, &msr, "benign", &["--burn-ms", "4000"]);
    let benign_pid = wait_done(&mut benign);

    // Busy for 4 s, so that its CPU use is in the finding and its maps
    // are looked at.
    let mut miner = hygiene(&cgroup, &msr, "miner", &["--burn-ms", "4000"]);
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
        ["hugepage_reservation", "msr_write", "randomx_dataset"],
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
    let msr = MsrNode::new();
    let mut agent = Agent::start(&cgroup);
    let mut parent = hygiene(&cgroup, &msr, "miner", &["--fork"]);
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
