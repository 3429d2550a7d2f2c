#![allow(clippy::print_stderr, reason = "test output")]
//! The agent's lifecycle: it attaches its programs, and a stop by SIGTERM
//! or SIGINT leaves nothing behind in the kernel.

use std::time::{Duration, Instant};

use assay_tests::{
    Agent, TestCgroup, agent_binary, loaded_link_ids, loaded_program_names, require_root,
};

fn ours(names: &[String]) -> Vec<&String> {
    names.iter().filter(|n| n.starts_with("assay_")).collect()
}

/// Our programs the kernel still holds, after letting it finish freeing
/// them: tracing programs go after an RCU grace period, not at the close of
/// their last fd. Bounded: 10 s.
fn ours_left_after_grace() -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left: Vec<String> = ours(&loaded_program_names()).into_iter().cloned().collect();
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stop_detaches_everything(signal: i32) {
    let cgroup = TestCgroup::new("lifecycle");
    assert!(
        ours(&loaded_program_names()).is_empty(),
        "programs left by an earlier run"
    );
    let links_before = loaded_link_ids();
    let mut agent = Agent::start(&cgroup);
    let loaded = loaded_program_names();
    for expected in [
        "assay_exec_btf",
        "assay_exit_btf",
        "assay_connect4",
        "assay_connect6",
        "assay_sendmsg4",
        "assay_sendmsg6",
        "assay_flow_out",
        "assay_flow_in",
    ] {
        assert!(
            loaded.iter().any(|n| n == expected),
            "{expected} not loaded: {loaded:?}"
        );
    }
    let status = agent.stop_with(signal);
    assert!(status.success(), "agent exit: {status}");
    let left = ours_left_after_grace();
    assert!(left.is_empty(), "left behind: {left:?}");
    let new_links: Vec<u32> = loaded_link_ids()
        .into_iter()
        .filter(|id| !links_before.contains(id))
        .collect();
    assert!(new_links.is_empty(), "links left behind: {new_links:?}");
}

#[test]
fn sigterm_detaches_every_program() {
    if require_root() {
        stop_detaches_everything(libc::SIGTERM);
    }
}

#[test]
fn sigint_detaches_every_program() {
    if require_root() {
        stop_detaches_everything(libc::SIGINT);
    }
}

#[test]
fn doctor_prints_the_plan_without_attaching() {
    if !require_root() {
        return;
    }
    let out = std::process::Command::new(agent_binary())
        .arg("doctor")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for row in [
        "tp_btf",
        "kprobes",
        "fentry/fexit",
        "LSM programs",
        "cgroup v2",
        "perf hardware",
    ] {
        assert!(text.contains(row), "no {row} row:\n{text}");
    }
    assert!(
        text.contains("process") && text.contains("would attach"),
        "{text}"
    );
    assert!(
        ours(&loaded_program_names()).is_empty(),
        "doctor left programs loaded"
    );
}
