#![allow(clippy::print_stderr, reason = "test output")]

//! Bittensor (issue 19, docs/grey-zone.md): the real SDK at 10.5.0, the
//! last with Axon and Dendrite, offline (its external-IP lookup replaced by
//! loopback; tests/fixtures/bittensor_pair.py). The axon serving signed
//! synapses and the dendrite sending them both take part in the network:
//! `chain-client` with `net.bittensor`, the SDK generation and the hotkey
//! named; neither is `pow-mining`.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use assay_tests::{Agent, TempDir, TestCgroup, evidence_kinds, is_for, require_root, test_python};

const WAIT: Duration = Duration::from_secs(45);

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The python with the Bittensor SDK (`ASSAY_TEST_BITTENSOR_PYTHON`, else
/// the test venv's); None (a skip, a failure under CI) without it.
fn bittensor_python() -> Option<PathBuf> {
    let python = std::env::var_os("ASSAY_TEST_BITTENSOR_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(test_python);
    let ready = Command::new(&python)
        .args(["-c", "import bittensor"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ready {
        return Some(python);
    }
    let message = "bittensor 10.5.0 missing: `cargo xtask test` installs it in target/test-venv";
    assert!(std::env::var_os("CI").is_none(), "{message}");
    eprintln!("skipping: {message}");
    None
}

fn fixture(python: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(python);
    cmd.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/bittensor_pair.py"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    cmd
}

#[test]
fn an_axon_and_a_dendrite_of_the_real_sdk_take_part_in_bittensor() {
    if !require_root() {
        return;
    }
    let Some(python) = bittensor_python() else {
        return;
    };
    let wallets = TempDir::new("bittensor");
    let wallet_dir = wallets.0.to_str().unwrap();
    let cgroup = TestCgroup::new("bittensor");
    let mut agent = Agent::start(&cgroup);
    let mut axon = Killed(cgroup.spawn(fixture(&python, &["axon", wallet_dir])));
    let mut line = String::new();
    BufReader::new(axon.0.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .trim()
        .strip_prefix("listening ")
        .unwrap_or_else(|| panic!("the axon said {line:?}"))
        .to_owned();
    let dendrite = Killed(cgroup.spawn(fixture(&python, &["dendrite", wallet_dir, &port, "5"])));

    for (pid, role) in [(dendrite.0.id(), "dendrite"), (axon.0.id(), "axon")] {
        let finding = agent
            .wait_for_finding(WAIT, |f| is_for(pid)(f) && f["class"] == "chain-client")
            .unwrap_or_else(|| panic!("no chain-client finding for the {role}"));
        assert_eq!(evidence_kinds(&finding), ["net.bittensor"], "{finding}");
        assert_eq!(finding["network"]["network"], "bittensor", "{finding}");
        assert_eq!(finding["network"]["generation"], "bt_header", "{finding}");
        assert_eq!(finding["network"]["path"], "/Echo", "{finding}");
        assert!(
            finding["explanation"]
                .as_str()
                .is_some_and(|e| e.contains(role)),
            "{finding}"
        );
    }
    drop(dendrite);
    drop(axon);
    let _ = agent.stop_with(libc::SIGTERM);
    for f in &agent.seen {
        assert_ne!(f["class"], "pow-mining", "{f}");
    }
}
