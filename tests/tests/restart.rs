#![allow(clippy::print_stderr, reason = "test output")]
//! End to end: with --state-dir, open verdicts survive an agent restart. A
//! miner still running keeps its verdict (same id, not reported again) and
//! its exit resolves it; a miner that exited while the agent was down is
//! reported resolved when the agent comes back.

use std::{process::Stdio, time::Duration};

use assay_tests::{Agent, Server, TempDir, TestCgroup, emulator, finding_pid, require_root};

#[test]
fn open_verdicts_survive_a_restart() {
    if !require_root() {
        return;
    }
    let state = TempDir::new("state");
    let state_arg = state.0.to_str().unwrap().to_owned();
    let cgroup = TestCgroup::new("restart");
    let pool = Server::start("pool");
    let miner = |hold_ms: &str| {
        let mut cmd = emulator();
        cmd.args(["stratum", "--variant", "st5", "--connect", &pool.addr])
            .args(["--hold-ms", hold_ms])
            .stdout(Stdio::null());
        cgroup.spawn(cmd)
    };
    let mut agent = Agent::start_with(&cgroup, &["--state-dir", &state_arg]);
    let mut staying = miner("30000");
    let mut leaving = miner("30000");
    let (staying_pid, leaving_pid) = (u64::from(staying.id()), u64::from(leaving.id()));
    let mut opened = |pid: u64| {
        agent
            .wait_for_finding(Duration::from_secs(10), |f| {
                finding_pid(f) == Some(pid) && f["event"] == "verdict.opened"
            })
            .unwrap_or_else(|| panic!("no verdict for miner {pid}"))["id"]
            .clone()
    };
    let (staying_id, leaving_id) = (opened(staying_pid), opened(leaving_pid));
    agent.stop_with(libc::SIGTERM);
    assert!(agent.logs_text().contains("open verdicts saved"));

    // While the agent is down, one miner exits.
    let _ = leaving.kill();
    let _ = leaving.wait();

    let mut agent = Agent::start_with(&cgroup, &["--state-dir", &state_arg]);
    let resolved = agent
        .wait_for_finding(Duration::from_secs(5), |f| {
            f["id"] == leaving_id && f["event"] == "verdict.resolved"
        })
        .unwrap_or_else(|| {
            panic!(
                "the gone miner's verdict was not resolved: {:?}",
                agent.seen
            )
        });
    assert_eq!(resolved["class"], "pow-mining");
    let _ = staying.kill();
    let _ = staying.wait();
    let closed = agent
        .wait_for_finding(Duration::from_secs(5), |f| {
            f["event"] == "verdict.resolved" && f["id"] == staying_id
        })
        .unwrap_or_else(|| panic!("the running miner's verdict was not kept: {:?}", agent.seen));
    assert_eq!(closed["class"], "pow-mining");
    assert!(
        !agent
            .seen
            .iter()
            .any(|f| finding_pid(f) == Some(staying_pid) && f["event"] == "verdict.opened"),
        "the kept verdict was reported again: {:?}",
        agent.seen
    );
}
