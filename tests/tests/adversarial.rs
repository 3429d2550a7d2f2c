#![allow(clippy::print_stderr, reason = "test output")]
//! End to end, the network part of the adversarial cases: a miner that
//! hides its login from a naive sampler is still confirmed as pow-mining,
//! by pid, within the usual second of its first packet:
//! - keys (and the method) written with `\u` escapes;
//! - whitespace-only writes before the login (more of them than the
//!   per-direction sample budget), each its own segment;
//! - a login of several KiB in one write (one loopback segment, longer
//!   than one kernel sample).

use std::time::Duration;

use assay_tests::{Agent, Server, TestCgroup, emulator, is_for, require_root};

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn a_hidden_login_is_still_confirmed_within_a_second() {
    if !require_root() {
        return;
    }
    let cgroup = TestCgroup::new("adversarial-net");
    let pool = Server::start("pool");
    let mut agent = Agent::start(&cgroup);
    for evasion in ["escaped-keys", "blank-writes", "long-login"] {
        let mut cmd = emulator();
        cmd.args(["evasive", "--evasion", evasion, "--connect", &pool.addr]);
        cmd.args(["--hold-ms", "300"]);
        let mut miner = cgroup.spawn(cmd);
        let pid = miner.id();
        let finding = agent
            .wait_for_finding(WAIT, is_for(pid))
            .unwrap_or_else(|| panic!("{evasion}: the miner (pid {pid}) was not reported"));
        assert_eq!(finding["class"], "pow-mining", "{evasion}: {finding}");
        assert_eq!(finding["level"], "confirmed", "{evasion}: {finding}");
        assert_eq!(
            finding["network"]["method"], "login",
            "{evasion}: {finding}"
        );
        assert!(
            finding["network"]["login"]
                .as_str()
                .is_some_and(|l| l.starts_with("44AFF")),
            "{evasion}: {finding}"
        );
        let after = finding["decided_after_ms"].as_f64().unwrap();
        assert!(
            after < 1000.0,
            "{evasion}: decided {after} ms after the first packet"
        );
        assert!(
            miner.wait().unwrap().success(),
            "{evasion}: the miner failed"
        );
    }
    agent.stop_with(libc::SIGTERM);
    // The blank writes were held, not given up on.
    assert!(agent.summary_field("flow_samples_held") > 0);
    assert_eq!(agent.summary_field("flow_holds_exhausted"), 0);
}

/// A miner that sends discovery packets to a hundred distinct peers (each a
/// cheap chain-node sign of its own) cannot flush its stratum evidence:
/// its pow-mining verdict is not resolved while it mines.
#[test]
fn a_flood_of_cheap_signs_does_not_flush_a_miners_verdict() {
    if !require_root() {
        return;
    }
    let cgroup = TestCgroup::new("flush");
    let pool = Server::start("pool");
    let mut agent = Agent::start(&cgroup);
    let emu = assay_tests::emulator_path();
    // One session: the miner and the flooder are one workload.
    let script = format!(
        "{emu} stratum --variant st5 --connect {pool} --hold-ms 16000 --submit-every-ms 900 & \
         sleep 1; {emu} discv4-flood --count 120; wait",
        emu = emu.display(),
        pool = pool.addr
    );
    let mut cmd = std::process::Command::new("sh");
    cmd.args(["-c", &script])
        .stdout(std::process::Stdio::null());
    let mut session = cgroup.spawn(cmd);
    let opened = agent
        .wait_for_finding(Duration::from_secs(5), |f| {
            f["class"] == "pow-mining" && f["level"] == "confirmed"
        })
        .expect("the miner was not confirmed");
    let workload = opened["workload"].clone();
    // The flood lands, and more than one decay pass (every 10 s) goes by.
    let resolved = agent.wait_for_finding(Duration::from_secs(13), |f| {
        f["id"] == opened["id"] && f["event"] == "verdict.resolved"
    });
    assert!(
        resolved.is_none(),
        "the flood flushed the verdict: {resolved:?}"
    );
    let chain_signs = agent
        .seen
        .iter()
        .filter(|f| f["workload"] == workload && f["class"] == "chain-node")
        .count();
    assert!(
        chain_signs > 0,
        "the flood was not seen at all: {:?}",
        agent.seen
    );
    let _ = session.kill();
    let _ = session.wait();
}
