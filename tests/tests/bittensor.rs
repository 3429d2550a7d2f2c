#![allow(clippy::print_stderr, reason = "test output")]

//! Bittensor (issue 19, docs/grey-zone.md): the real SDK at 10.5.0, the
//! last with Axon and Dendrite, offline (its external-IP lookup replaced by
//! loopback; tests/fixtures/bittensor_pair.py). The axon serving signed
//! synapses and the dendrite sending them both take part in the network:
//! `chain-client` with `net.bittensor`, the SDK generation and the hotkey
//! named; neither is `pow-mining`. An axon with a model's inference load
//! beside it (the GPU emulator on the stand-in CUDA libraries) makes that
//! workload's `ai-inference` verdict incentivised compute, Bittensor named.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use assay_tests::{
    Agent, Killed, TempDir, TestCgroup, evidence_kinds, explains, gpu_emulator, is_for, listening,
    python_importing, require_root, test_python,
};

const WAIT: Duration = Duration::from_secs(45);

/// The python with the Bittensor SDK (`ASSAY_TEST_BITTENSOR_PYTHON`, else
/// the test venv's); None (a skip, a failure under CI) without it. `home`:
/// where the SDK may create its `~/.bittensor` on import.
fn bittensor_python(home: &Path) -> Option<PathBuf> {
    let python = std::env::var_os("ASSAY_TEST_BITTENSOR_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(test_python);
    python_importing(
        python,
        "bittensor",
        Some(home),
        "bittensor 10.5.0 missing: `cargo xtask test` installs it in target/test-venv",
    )
}

/// The fixture with `args[1]` (the wallet directory) as its home too: the
/// SDK creates `~/.bittensor` when imported, and the test leaves nothing.
fn fixture(python: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(python);
    cmd.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/bittensor_pair.py"))
        .args(args)
        .env("HOME", args[1])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    cmd
}

/// The axon (with `load` beside it), in `cgroup`; it and its port.
fn start_axon(
    python: &Path,
    cgroup: &TestCgroup,
    wallet_dir: &str,
    load: Option<&Command>,
) -> (Killed, String) {
    let mut args = vec!["axon".to_owned(), wallet_dir.to_owned()];
    if let Some(load) = load {
        args.push(load.get_program().to_string_lossy().into_owned());
        args.extend(load.get_args().map(|a| a.to_string_lossy().into_owned()));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut axon = Killed(cgroup.spawn(fixture(python, &args)));
    let port = listening(&mut axon.0, "the axon");
    (axon, port)
}

#[test]
fn an_axon_serving_a_model_on_the_gpu_is_incentivised_inference() {
    if !require_root() {
        return;
    }
    let wallets = TempDir::new("bittensor-ai");
    let Some(python) = bittensor_python(&wallets.0) else {
        return;
    };
    let wallet_dir = wallets.0.to_str().unwrap();
    let cgroup = TestCgroup::new("bittensor-ai");
    let mut agent = Agent::start_on_stand_in_driver(&cgroup, &[]);
    let load = gpu_emulator("inference", 40.0);
    let (axon, port) = start_axon(&python, &cgroup, wallet_dir, Some(&load));
    let session = u64::from(axon.0.id());
    let dendrite = Killed(cgroup.spawn(fixture(&python, &["dendrite", wallet_dir, &port, "20"])));
    let finding = agent
        .wait_for_finding(Duration::from_secs(60), |f| {
            f["class"] == "ai-inference"
                && f["workload"]["sid"] == session
                && f["incentive"]["network"] == "bittensor"
        })
        .expect("no incentivised ai-inference verdict for the axon's workload");
    assert!(
        finding["incentive"]["evidence"]
            .as_array()
            .is_some_and(|e| e.iter().any(|s| s["kind"] == "net.bittensor")),
        "{finding}"
    );
    assert!(
        explains(&finding, &["incentivised compute", "bittensor"]),
        "{finding}"
    );
    drop(dendrite);
    drop(axon);
    let _ = agent.stop_with(libc::SIGTERM);
    for f in &agent.seen {
        assert_ne!(f["class"], "pow-mining", "{f}");
    }
}

#[test]
fn an_axon_and_a_dendrite_of_the_real_sdk_take_part_in_bittensor() {
    if !require_root() {
        return;
    }
    let wallets = TempDir::new("bittensor");
    let Some(python) = bittensor_python(&wallets.0) else {
        return;
    };
    let wallet_dir = wallets.0.to_str().unwrap();
    let cgroup = TestCgroup::new("bittensor");
    let mut agent = Agent::start(&cgroup);
    let (axon, port) = start_axon(&python, &cgroup, wallet_dir, None);
    let dendrite = Killed(cgroup.spawn(fixture(&python, &["dendrite", wallet_dir, &port, "5"])));

    for (pid, role) in [(dendrite.0.id(), "dendrite"), (axon.0.id(), "axon")] {
        let finding = agent
            .wait_for_finding(WAIT, |f| is_for(pid)(f) && f["class"] == "chain-client")
            .unwrap_or_else(|| panic!("no chain-client finding for the {role}"));
        assert_eq!(evidence_kinds(&finding), ["net.bittensor"], "{finding}");
        assert_eq!(finding["network"]["network"], "bittensor", "{finding}");
        assert_eq!(finding["network"]["generation"], "bt_header", "{finding}");
        assert_eq!(finding["network"]["path"], "/Echo", "{finding}");
        assert!(explains(&finding, &[role]), "{finding}");
    }
    drop(dendrite);
    drop(axon);
    let _ = agent.stop_with(libc::SIGTERM);
    for f in &agent.seen {
        assert_ne!(f["class"], "pow-mining", "{f}");
    }
}
