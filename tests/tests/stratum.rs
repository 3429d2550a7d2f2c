#![allow(clippy::print_stderr, reason = "test output")]
//! End to end: processes that speak stratum to a pool on loopback are
//! reported by pid, within a second of their first packet; benign JSON-RPC
//! and HTTP clients on the same kind of long-lived connection are not.

use std::{process::Stdio, time::Duration};

use assay_tests::{
    Agent, Server, TestCgroup, emulator, finding_pid, is_for, release, require_root,
};

const WAIT: Duration = Duration::from_secs(10);

fn stratum_client(variant: &str, pool: &Server) -> std::process::Command {
    let mut cmd = emulator();
    cmd.args(["stratum", "--variant", variant, "--connect", &pool.addr]);
    cmd
}

#[test]
fn every_stratum_variant_is_reported_with_its_pid_within_a_second() {
    if !require_root() {
        return;
    }
    let cgroup = TestCgroup::new("variants");
    let pool = Server::start("pool");
    let mut agent = Agent::start(&cgroup);

    for (variant, id, login) in [
        ("st1", "ST1", "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"),
        ("st3", "ST3", "0x5a0b54d5dc17e0aadc383d2db43b0a0d3e029c4c"),
        ("st4", "ST4", "0x5a0b54d5dc17e0aadc383d2db43b0a0d3e029c4c"),
        (
            "st5",
            "ST5",
            "44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2wfn3RVGQBEP3A",
        ),
    ] {
        let mut client = cgroup.spawn(stratum_client(variant, &pool));
        let pid = client.id();
        let finding = agent
            .wait_for_finding(WAIT, is_for(pid))
            .unwrap_or_else(|| panic!("no finding for {variant} client pid {pid}"));
        assert_eq!(finding["class"], "pow-mining", "{finding}");
        assert_eq!(finding["level"], "confirmed");
        assert_eq!(finding["network"]["variant"], id, "{finding}");
        assert_eq!(finding["network"]["remote"], pool.addr.as_str());
        assert_eq!(finding["workload"]["kind"], "session");
        assert_eq!(
            finding["workload"]["sid"],
            u64::from(pid),
            "its own session"
        );
        assert_eq!(
            finding["process"]["cgroup"],
            format!("/{}", cgroup.path.file_name().unwrap().to_str().unwrap())
        );
        assert!(
            finding["process"]["exe"]
                .as_str()
                .unwrap()
                .ends_with("assay-emu"),
            "{finding}"
        );
        assert_eq!(finding["event"], "verdict.opened");
        let after = finding["decided_after_ms"].as_f64().unwrap();
        assert!(
            after < 1000.0,
            "{variant} decided {after} ms after the first packet"
        );
        // Where the login comes after the subscribe (ST1, ST3), the open
        // verdict is updated once with it; where it comes first, it is in
        // the opening finding already. The login may be user.worker: the
        // user part is the wallet.
        let id = finding["id"].clone();
        let logged = agent.wait_for_finding(WAIT, |f| {
            f["id"] == id
                && f["evidence"]
                    .as_array()
                    .is_some_and(|e| e.iter().any(|e| e["attributes"]["login"] == login))
        });
        assert!(
            logged.is_some(),
            "{variant}: login {login} not reported: {:?}",
            agent.seen
        );
        // The miner stops: its verdict is resolved, once.
        client.wait().unwrap();
        let resolved =
            agent.wait_for_finding(WAIT, |f| f["id"] == id && f["event"] == "verdict.resolved");
        assert!(
            resolved.is_some(),
            "{variant}: verdict not resolved at exit: {:?}",
            agent.seen
        );
    }

    // One verdict per client, opened once: the pool's job pushes and the
    // client's repeated messages add evidence without repeating it.
    agent.stop_with(libc::SIGTERM);
    let opened: Vec<u64> = agent
        .seen
        .iter()
        .filter(|f| f["event"] == "verdict.opened")
        .filter_map(finding_pid)
        .collect();
    assert_eq!(opened.len(), 4, "{:?}", agent.seen);
    let ids: std::collections::HashSet<&str> =
        agent.seen.iter().filter_map(|f| f["id"].as_str()).collect();
    assert_eq!(ids.len(), 4, "one verdict id per client: {:?}", agent.seen);
    let count = |event: &str| agent.seen.iter().filter(|f| f["event"] == event).count();
    assert_eq!(count("verdict.resolved"), 4, "{:?}", agent.seen);
    assert!(
        count("verdict.updated") <= 4,
        "at most one update per verdict: {:?}",
        agent.seen
    );
}

#[test]
fn benign_json_rpc_and_http_clients_are_not_reported() {
    if !require_root() {
        return;
    }
    let cgroup = TestCgroup::new("benign");
    let server = Server::start("server");
    let pool = Server::start("pool");
    let mut agent = Agent::start(&cgroup);

    let mut benign = Vec::new();
    for kind in ["json-rpc", "http"] {
        let mut cmd = emulator();
        cmd.args([kind, "--connect", &server.addr]);
        let mut child = cgroup.spawn(cmd);
        assert!(child.wait().unwrap().success(), "{kind} client failed");
        benign.push(child.id());
    }
    // Control: a miner after the benign clients. The agent handles events
    // in order, so once its finding is out, any finding about the benign
    // clients would be out too.
    let mut miner = cgroup.spawn(stratum_client("st5", &pool));
    let control = agent.wait_for_finding(WAIT, is_for(miner.id()));
    assert!(control.is_some(), "the control miner was not reported");
    miner.wait().unwrap();
    // The JSON-RPC client's `getblockcount` and `eth_blockNumber` are
    // chain calls: a chain-client verdict is what it is (docs/grey-zone.md);
    // nothing else, mining least of all.
    for pid in benign {
        assert!(
            !agent
                .seen
                .iter()
                .any(|f| is_for(pid)(f) && f["class"] != "chain-client"),
            "benign client {pid} was reported: {:?}",
            agent.seen
        );
    }
}

#[test]
fn a_process_started_before_the_agent_is_attributed_when_it_connects() {
    if !require_root() {
        return;
    }
    let cgroup = TestCgroup::new("preexisting");
    let pool = Server::start("pool");
    let mut cmd = stratum_client("st1", &pool);
    cmd.arg("--wait-stdin").stdin(Stdio::piped());
    let mut client = cgroup.spawn(cmd);
    let pid = client.id();

    let mut agent = Agent::start(&cgroup);
    release(client.stdin.as_mut().unwrap());
    let finding = agent
        .wait_for_finding(WAIT, is_for(pid))
        .expect("the pre-existing process was not reported");
    assert_eq!(finding["process"]["source"], "proc-scan", "{finding}");
    assert!(
        finding["process"]["argv"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "--wait-stdin"),
        "{finding}"
    );
    client.wait().unwrap();
}

#[test]
fn malformed_stratum_lines_are_counted_and_the_agent_keeps_going() {
    if !require_root() {
        return;
    }
    let cgroup = TestCgroup::new("garbage");
    let pool = Server::start("pool");
    // Not the pool: a pool would (rightly) answer the bomb's method with a
    // real subscription, and the answer is decisive on its own.
    let server = Server::start("server");
    let mut agent = Agent::start(&cgroup);

    let mut cmd = emulator();
    cmd.args(["garbage", "--connect", &server.addr]);
    let mut garbage = cgroup.spawn(cmd);
    let garbage_pid = garbage.id();
    garbage.wait().unwrap();

    let mut miner = cgroup.spawn(stratum_client("st3", &pool));
    assert!(
        agent.wait_for_finding(WAIT, is_for(miner.id())).is_some(),
        "the agent stopped detecting after malformed input"
    );
    miner.wait().unwrap();
    assert!(!agent.seen.iter().any(is_for(garbage_pid)));

    let status = agent.stop_with(libc::SIGTERM);
    assert!(status.success(), "agent exit: {status}");
    let logs = agent.logs_text();
    let bye = logs
        .lines()
        .find(|l| l.contains("detached; bye"))
        .expect("summary line");
    let rejections: u64 = bye
        .split_whitespace()
        .find_map(|w| w.strip_prefix("stratum_rejections="))
        .and_then(|n| n.parse().ok())
        .expect("stratum_rejections in the summary");
    // The JSON bomb and the non-UTF-8 line.
    assert!(rejections >= 2, "{bye}");
}
