#![allow(clippy::print_stderr, reason = "test output")]

//! Chain clients (issue 19, docs/grey-zone.md): a real Ethereum JSON-RPC
//! client (web3.py) against a local chain (eth-tester on py-evm, served
//! over HTTP) is a `chain-client`, never `pow-mining`; so is a hand-written
//! call whose key is escaped and whose request is written in pieces. Next
//! to them, in the same cgroup, nothing new is said about the chain's own
//! server, a client of another JSON-RPC 2.0 service, chain words in bodies
//! that are not JSON-RPC, an HTTPS client of the same chain, or a real
//! Prometheus scraping the agent.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use assay_tests::{
    Agent, Killed, TempDir, TestCgroup, evidence_kinds, explains, finding_pid, free_port, is_for,
    listening, python_importing, require_root, self_signed_cert, test_python,
};

const WAIT: Duration = Duration::from_secs(30);

/// The test venv's python, with web3.py and eth-tester (`cargo xtask
/// test` installs them); None (a skip, a failure under CI) without.
fn chain_python() -> Option<PathBuf> {
    python_importing(
        test_python(),
        "web3, eth_tester",
        None,
        "web3.py missing: `cargo xtask test` installs it in target/test-venv",
    )
}

fn fixture(python: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(python);
    cmd.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/chain_rpc.py"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    cmd
}

/// The local chain, in `cgroup`; its URL.
fn node(python: &Path, cgroup: &TestCgroup, tls: Option<(&Path, &Path)>) -> (Killed, String) {
    let mut cmd = fixture(python, &["node"]);
    if let Some((cert, key)) = tls {
        cmd.arg(cert).arg(key);
    }
    let mut child = cgroup.spawn(cmd);
    let port = listening(&mut child, "the chain node");
    let scheme = if tls.is_some() { "https" } else { "http" };
    (Killed(child), format!("{scheme}://127.0.0.1:{port}/"))
}

fn run(cgroup: &TestCgroup, cmd: Command, what: &str) -> u32 {
    let mut child = cgroup.spawn(cmd);
    let pid = child.id();
    let status = child.wait().unwrap();
    assert!(status.success(), "{what} failed: {status}");
    pid
}

#[test]
fn a_web3_client_is_a_chain_client_and_its_neighbours_are_not() {
    if !require_root() {
        return;
    }
    let Some(python) = chain_python() else {
        return;
    };
    let cgroup = TestCgroup::new("chain-client");
    let metrics = format!("127.0.0.1:{}", free_port());
    let mut agent = Agent::start_with(&cgroup, &["--metrics-listen", &metrics]);
    let (chain, url) = node(&python, &cgroup, None);
    let node_pid = chain.0.id();
    let dir = TempDir::new("chain-client");
    let (cert, key) = self_signed_cert(&dir.0, "localhost");
    let (tls_chain, tls_url) = node(&python, &cgroup, Some((&cert, &key)));
    let tls_node_pid = tls_chain.0.id();

    // The neighbours first: what they sent is processed before the
    // clients' findings arrive.
    let lsp = run(
        &cgroup,
        fixture(&python, &["lsp", &url]),
        "the JSON-RPC 2.0 client",
    );
    let words = run(
        &cgroup,
        fixture(&python, &["words", &url]),
        "the chain-words client",
    );
    let https = run(
        &cgroup,
        fixture(&python, &["https", &tls_url]),
        "the HTTPS client",
    );
    let config = dir.0.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: assay\n    static_configs:\n      - targets: ['{metrics}']\n"
        ),
    )
    .unwrap();
    let mut prometheus = Command::new("/usr/bin/prometheus");
    prometheus
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.0.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{}", free_port()))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let prometheus = Killed(cgroup.spawn(prometheus));
    let prometheus_pid = prometheus.0.id();

    // A real web3.py client: chain id, blocks, balances, transactions.
    let client = Killed(cgroup.spawn(fixture(&python, &["web3", &url, "8"])));
    let finding = agent
        .wait_for_finding(WAIT, |f| {
            is_for(client.0.id())(f) && f["class"] == "chain-client"
        })
        .expect("no chain-client finding for the web3.py client");
    assert!(
        matches!(finding["level"].as_str(), Some("suspected" | "confirmed")),
        "{finding}"
    );
    assert_eq!(finding["network"]["network"], "ethereum", "{finding}");
    assert_eq!(finding["network"]["protocol"], "chain-rpc", "{finding}");
    assert!(
        evidence_kinds(&finding)
            .iter()
            .all(|k| k == "net.chain_rpc"),
        "{finding}"
    );
    assert!(explains(&finding, &["Ethereum JSON-RPC API"]), "{finding}");

    // By hand: the key escaped, the request written in 3–5 pieces.
    let split = Killed(cgroup.spawn(fixture(&python, &["split", &url])));
    let finding = agent
        .wait_for_finding(WAIT, |f| {
            is_for(split.0.id())(f) && f["class"] == "chain-client"
        })
        .expect("no chain-client finding for the split, escaped call");
    assert_eq!(finding["network"]["method"], "eth_getBalance", "{finding}");

    drop(prometheus);
    drop(client);
    drop(split);
    let _ = agent.stop_with(libc::SIGTERM);
    for f in &agent.seen {
        assert_ne!(
            f["class"], "pow-mining",
            "a chain client is not mining: {f}"
        );
        let pid = finding_pid(f).unwrap_or(0) as u32;
        assert!(
            ![node_pid, tls_node_pid, lsp, words, https, prometheus_pid].contains(&pid),
            "a neighbour was reported: {f}"
        );
    }
}
