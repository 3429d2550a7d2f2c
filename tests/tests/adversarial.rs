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

use assay_tests::{Agent, Server, TestCgroup, emulator, finding_pid, require_root};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(10);

fn is_for(pid: u32) -> impl Fn(&Value) -> bool {
    move |f| finding_pid(f) == Some(u64::from(pid))
}

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
