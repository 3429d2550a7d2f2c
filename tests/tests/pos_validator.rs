//! PoS validators (issue 19, docs/grey-zone.md): no consensus client
//! installs from a registry here (Lodestar's npm packages do not resolve),
//! so the exchanges are emulated from the public specs on real HTTP stacks
//! (tests/fixtures/pos_validator.py): a validator client polling its
//! beacon node's validator API and publishing signed attestations is a
//! confirmed `pos-validator`; a consensus client driving an execution
//! engine over the JWT-authenticated Engine API is an observed one. The
//! beacon node and the execution engine serving them, a REST client of
//! other APIs and of the beacon node's non-validator reads, and a plain
//! JSON-RPC client get nothing.

use std::{
    path::Path,
    process::{Command, Stdio},
    time::Duration,
};

use assay_tests::{
    Agent, Killed, TestCgroup, evidence_kinds, explains, finding_pid, is_for, listening,
    require_root, test_python,
};

const WAIT: Duration = Duration::from_secs(30);
const SECRET: &str = "5c3f1d0a9b8e7f6a5c3f1d0a9b8e7f6a5c3f1d0a9b8e7f6a5c3f1d0a9b8e7f6a";

fn fixture(args: &[&str]) -> Command {
    let mut cmd = Command::new(test_python());
    cmd.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/pos_validator.py"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    cmd
}

/// A server of the fixture, in `cgroup`; its URL.
fn server(cgroup: &TestCgroup, args: &[&str]) -> (Killed, String) {
    let mut child = cgroup.spawn(fixture(args));
    let port = listening(&mut child, &format!("{args:?}"));
    (Killed(child), format!("http://127.0.0.1:{port}/"))
}

#[test]
fn a_validator_client_and_a_consensus_client_are_pos_validators_and_their_servers_are_not() {
    if !require_root() {
        return;
    }
    let cgroup = TestCgroup::new("pos-validator");
    let mut agent = Agent::start(&cgroup);
    let (beacon, beacon_url) = server(&cgroup, &["beacon"]);
    let (engine_server, engine_url) = server(&cgroup, &["engine-server", SECRET]);
    let servers = [beacon.0.id(), engine_server.0.id()];

    // Look-alikes first, so their samples are read before the findings
    // the test waits for.
    let mut rest = cgroup.spawn(fixture(&["rest", &beacon_url]));
    let rest_pid = rest.id();
    assert!(rest.wait().unwrap().success(), "the REST client failed");

    let validator = Killed(cgroup.spawn(fixture(&["validator", &beacon_url, "12"])));
    let finding = agent
        .wait_for_finding(WAIT, |f| {
            is_for(validator.0.id())(f)
                && f["class"] == "pos-validator"
                && f["level"] == "confirmed"
        })
        .expect("no confirmed pos-validator finding for the validator client");
    assert!(
        evidence_kinds(&finding)
            .iter()
            .all(|k| k == "net.validator"),
        "{finding}"
    );
    assert!(explains(&finding, &["BLS-signed"]), "{finding}");

    let engine = Killed(cgroup.spawn(fixture(&["engine", &engine_url, SECRET, "6"])));
    let finding = agent
        .wait_for_finding(WAIT, |f| {
            is_for(engine.0.id())(f) && f["class"] == "pos-validator"
        })
        .expect("no pos-validator finding for the Engine API client");
    assert_eq!(finding["level"], "observed", "{finding}");
    assert_eq!(finding["network"]["protocol"], "engine-api", "{finding}");
    assert_eq!(finding["network"]["jwt_alg"], "HS256", "{finding}");

    drop(validator);
    drop(engine);
    let _ = agent.stop_with(libc::SIGTERM);
    for f in &agent.seen {
        assert_ne!(f["class"], "pow-mining", "{f}");
        let pid = finding_pid(f).unwrap_or(0) as u32;
        assert!(
            pid != rest_pid && !servers.contains(&pid),
            "a server or look-alike was reported: {f}"
        );
    }
}
