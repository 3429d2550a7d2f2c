#![allow(clippy::print_stderr, reason = "test output")]
//! End to end, Bitcoin-derived chain nodes found by the structure of their
//! protocol, not by a list of magics: two real Litecoin nodes (Debian's
//! litecoind) on their main network, and peers of forks on magics the
//! agent's name table leaves out (from the forks' public chainparams) and on
//! one nobody uses. Each peer is a `chain-node` finding with its pid and the
//! network's magic; none is ever `pow-mining`. A look-alike whose
//! checksums do not match is nothing.
//!
//! Absence is checked by ordering, not by waiting: the look-alike runs
//! first, and once the later peers' findings are out every earlier sample
//! has been processed (one ring buffer, in order).

use std::{
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use assay_tests::{
    Agent, Killed, TempDir, TestCgroup, explains, finding_pid, free_port, require_root,
};
use serde_json::Value;

const LITECOIND: &str = "/usr/bin/litecoind";

/// The confirmed chain-node finding about `pid`, waited for: confirmed,
/// because each end sends a `version` itself (what it only received
/// leaves it `observed`).
fn chain_node_of(agent: &mut Agent, pid: u32, what: &str) -> Value {
    agent
        .wait_for_finding(Duration::from_secs(60), |f| {
            finding_pid(f) == Some(u64::from(pid))
                && f["class"] == "chain-node"
                && f["level"] == "confirmed"
        })
        .unwrap_or_else(|| panic!("no confirmed chain-node finding for {what} (pid {pid})"))
}

fn assert_no_mining(agent: &Agent) {
    assert!(
        !agent.seen.iter().any(|f| f["class"] == "pow-mining"),
        "a chain node is not a miner: {:?}",
        agent.seen
    );
}

/// A mainnet litecoind that listens on `port` of loopback and dials only
/// `peer`, if given; no DNS seeds, no RPC, no UPnP, no Tor.
fn litecoind(cgroup: &TestCgroup, data: &Path, port: u16, peer: Option<u16>) -> Killed {
    let mut cmd = Command::new(LITECOIND);
    cmd.arg(format!("-datadir={}", data.display()))
        .arg(format!("-port={port}"))
        .args(["-bind=127.0.0.1", "-listen=1", "-server=0", "-dnsseed=0"])
        .args(["-discover=0", "-upnp=0", "-listenonion=0", "-onlynet=ipv4"])
        .args(["-printtoconsole=0", "-daemon=0"])
        .arg(match peer {
            Some(peer) => format!("-connect=127.0.0.1:{peer}"),
            None => "-connect=0".into(),
        })
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    Killed(cgroup.spawn(cmd))
}

#[test]
fn two_litecoin_nodes_on_their_main_network_are_chain_nodes_and_not_miners() {
    if !require_root() {
        return;
    }
    assert!(
        Path::new(LITECOIND).exists(),
        "litecoind not installed: `cargo xtask test` installs Debian's litecoind"
    );
    let cgroup = TestCgroup::new("litecoin");
    let mut agent = Agent::start(&cgroup);
    let (data_a, data_b) = (TempDir::new("ltc-a"), TempDir::new("ltc-b"));
    let (port_a, port_b) = (free_port(), free_port());
    let listener = litecoind(&cgroup, &data_a.0, port_a, None);
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port_a)).is_err() {
        assert!(
            Instant::now() < deadline,
            "litecoind did not start listening"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let dialer = litecoind(&cgroup, &data_b.0, port_b, Some(port_a));
    for (node, what) in [
        (&dialer, "the dialing litecoind"),
        (&listener, "the listening litecoind"),
    ] {
        let finding = chain_node_of(&mut agent, node.0.id(), what);
        assert_eq!(finding["network"]["magic"], "fbc0b6db", "{finding}");
        assert_eq!(finding["network"]["chain"], "Litecoin mainnet", "{finding}");
    }
    assert_no_mining(&agent);
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/btc_peer.py")
}

/// A listening and a dialing peer on `magic`; returns them once the
/// listener's port is known.
fn peers(cgroup: &TestCgroup, dir: &Path, magic: &str, seed: u32, forge: bool) -> (Killed, Killed) {
    let port_file = dir.join(format!("{magic}-{seed}.port"));
    let peer = |role: &str, extra: &[String]| {
        let mut cmd = Command::new("/usr/bin/python3");
        cmd.arg(fixture())
            .arg(role)
            .args(["--magic", magic, "--seconds", "40"])
            .args(["--seed", &seed.to_string()])
            .args(extra)
            .stdout(Stdio::null());
        if forge {
            cmd.arg("--forge-checksum");
        }
        Killed(cgroup.spawn(cmd))
    };
    let listener = peer(
        "listen",
        &["--port-file".into(), port_file.display().to_string()],
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let port = loop {
        if let Ok(port) = std::fs::read_to_string(&port_file) {
            break port;
        }
        assert!(
            Instant::now() < deadline,
            "the {magic} listener did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let dialer = peer("dial", &["--connect".into(), format!("127.0.0.1:{port}")]);
    (listener, dialer)
}

/// Magics from public chainparams that the agent's name table does not
/// list, and one that no network uses.
const UNLISTED: [(&str, &str); 5] = [
    ("e6e8e9e5", "Peercoin"),
    ("f1cfa6d3", "Qtum"),
    ("e1476d44", "Bitcoin Gold"),
    ("0f68c6cb", "Viacoin"),
    ("a7c35e19", "a made-up network"),
];

#[test]
fn bitcoin_fork_peers_on_unlisted_magics_are_chain_nodes_and_a_look_alike_is_not() {
    if !require_root() {
        return;
    }
    let cgroup = TestCgroup::new("btc-forks");
    let dir = TempDir::new("btc-forks");
    let mut agent = Agent::start(&cgroup);
    // First the look-alike: the same session with checksums that do not
    // match, on a magic nobody lists.
    let (forged_listener, forged_dialer) = peers(&cgroup, &dir.0, UNLISTED[4].0, 99, true);
    let forged = [forged_listener.0.id(), forged_dialer.0.id()];
    let mut running = vec![forged_listener, forged_dialer];
    for (seed, (magic, what)) in UNLISTED.into_iter().enumerate() {
        let (listener, dialer) = peers(&cgroup, &dir.0, magic, seed as u32, false);
        for (peer, role) in [(&listener, "listener"), (&dialer, "dialer")] {
            let finding = chain_node_of(&mut agent, peer.0.id(), &format!("the {what} {role}"));
            assert_eq!(finding["network"]["magic"], magic, "{finding}");
            assert!(finding["network"].get("chain").is_none(), "{finding}");
            assert!(
                explains(&finding, &[&format!("magic {magic}")]),
                "{finding}"
            );
        }
        running.extend([listener, dialer]);
    }
    for finding in &agent.seen {
        for pid in forged {
            assert_ne!(
                finding_pid(finding),
                Some(u64::from(pid)),
                "the look-alike was reported: {finding}"
            );
        }
    }
    assert_no_mining(&agent);
    drop(running);
}

/// An operator's catalogue (`--catalogue`) names a fork the built-in one
/// does not, without a rebuild; `assay doctor` shows it loaded; a bad file
/// is refused with its reason.
#[test]
fn an_operators_catalogue_names_an_unlisted_fork() {
    if !require_root() {
        return;
    }
    let dir = TempDir::new("catalogue");
    let file = dir.0.join("catalogue.toml");
    std::fs::write(
        &file,
        "version = 1\n[[bitcoin_magic]]\nmagic = \"e6e8e9e5\"\nname = \"Peercoin mainnet\"\n",
    )
    .unwrap();
    let doctor = Command::new(assay_tests::agent_binary())
        .arg("doctor")
        .arg("--catalogue")
        .arg(&file)
        .output()
        .expect("doctor runs");
    let text = String::from_utf8_lossy(&doctor.stdout);
    assert!(
        text.contains(&file.display().to_string())
            && text.contains("added 0 pool domains, 1 magics"),
        "{text}"
    );
    let bad = dir.0.join("bad.toml");
    std::fs::write(&bad, "version = 7\n").unwrap();
    let refused = Command::new(assay_tests::agent_binary())
        .arg("doctor")
        .arg("--catalogue")
        .arg(&bad)
        .output()
        .expect("doctor runs");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && stderr.contains("version 7"),
        "{stderr}"
    );

    let cgroup = TestCgroup::new("catalogue");
    let catalogue = file.display().to_string();
    let mut agent = Agent::start_with(&cgroup, &["--catalogue", &catalogue]);
    let (listener, dialer) = peers(&cgroup, &dir.0, "e6e8e9e5", 7, false);
    let finding = chain_node_of(&mut agent, dialer.0.id(), "the Peercoin dialer");
    assert_eq!(finding["network"]["chain"], "Peercoin mainnet", "{finding}");
    assert_no_mining(&agent);
    drop((listener, dialer));
}
