#![allow(clippy::print_stderr, reason = "test output")]
//! End to end: decisive means decisive about the process itself. JSON-lines
//! clients that are not miners (a wallet, an Ethereum RPC client) talk to a
//! hostile server that pushes pool-shaped lines at them (`mining.notify`,
//! `mining.set_difficulty`, a CryptoNote `job`) and answers with job-shaped
//! results: the agent must report no pow-mining verdict about them (the
//! Ethereum RPC client is a `chain-client`, which is what it is). A
//! miner emulator against the same server, after them, is the control: it
//! is confirmed, so the agent saw that server's lines, and (one ring, in
//! order) anything about the clients before it would be out by then.

use std::time::Duration;

use assay_tests::{Agent, Server, TestCgroup, emulator, is_for, require_root};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn json_lines_clients_of_a_hostile_server_are_not_miners() {
    if !require_root() {
        return;
    }
    let cgroup = TestCgroup::new("framing");
    let hostile = Server::start("hostile-pool");
    let mut agent = Agent::start(&cgroup);

    let mut clients = Vec::new();
    for kind in ["wallet", "eth-rpc", "wallet"] {
        let mut cmd = emulator();
        cmd.args([kind, "--connect", &hostile.addr]);
        let mut child = cgroup.spawn(cmd);
        assert!(child.wait().unwrap().success(), "{kind} client failed");
        clients.push((kind, child.id()));
    }
    // The control: a miner against the same server, whose pool-shaped
    // answers are now about a client that logged in itself.
    for variant in ["st5", "st1"] {
        let mut cmd = emulator();
        cmd.args(["stratum", "--variant", variant, "--connect", &hostile.addr]);
        cmd.args(["--hold-ms", "300"]);
        let mut miner = cgroup.spawn(cmd);
        let finding = agent
            .wait_for_finding(WAIT, is_for(miner.id()))
            .unwrap_or_else(|| panic!("the {variant} control miner was not reported"));
        assert_eq!(finding["class"], "pow-mining", "{finding}");
        assert_eq!(finding["level"], "confirmed", "{finding}");
        miner.wait().unwrap();
    }
    agent.stop_with(libc::SIGTERM);
    for (kind, pid) in clients {
        let about: Vec<&Value> = agent.seen.iter().filter(|f| is_for(pid)(f)).collect();
        // Nothing but what the client is: the Ethereum RPC client uses a
        // chain (docs/grey-zone.md), and is said to; no client is mining.
        assert!(
            about
                .iter()
                .all(|f| kind == "eth-rpc" && f["class"] == "chain-client"),
            "{kind} client {pid} was reported: {about:?}"
        );
        if kind == "eth-rpc" {
            assert!(
                !about.is_empty(),
                "the Ethereum RPC client {pid} was not recognised as a chain client"
            );
        }
    }
    // The pool-shaped lines the clients were sent were seen, as hints.
    assert!(agent.summary_field("events") > 0);
}

#[test]
fn a_wallet_whose_server_pushes_first_is_not_confirmed_by_the_push() {
    if !require_root() {
        return;
    }
    // The same, with the client holding its connection while the server
    // keeps pushing: more pool lines, still nothing about the client.
    let cgroup = TestCgroup::new("framing-hold");
    let hostile = Server::start("hostile-pool");
    let mut agent = Agent::start(&cgroup);
    let mut cmd = emulator();
    cmd.args(["wallet", "--connect", &hostile.addr, "--hold-ms", "1500"]);
    let mut wallet = cgroup.spawn(cmd);
    assert!(wallet.wait().unwrap().success());
    let mut cmd = emulator();
    cmd.args(["stratum", "--variant", "st5", "--connect", &hostile.addr]);
    cmd.args(["--hold-ms", "300"]);
    let mut miner = cgroup.spawn(cmd);
    assert!(
        agent.wait_for_finding(WAIT, is_for(miner.id())).is_some(),
        "the control miner was not reported"
    );
    miner.wait().unwrap();
    agent.stop_with(libc::SIGTERM);
    assert!(
        !agent.seen.iter().any(is_for(wallet.id())),
        "the wallet was reported: {:?}",
        agent.seen
    );
}
