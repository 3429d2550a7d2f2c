#![allow(clippy::print_stderr, reason = "test output")]
//! The deployment files: the systemd unit verifies with `systemd-analyze`,
//! grants exactly the capabilities the agent checks for, and with only
//! those the agent runs and detects a miner; without CAP_BPF it refuses,
//! naming it. The Kubernetes DaemonSet parses and asks for the host PID
//! namespace, the cgroup and BTF mounts and the same capabilities.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use assay::kernel::caps::REQUIRED;
use assay_tests::{
    Agent, Server, TempDir, TestCgroup, agent_binary, emulator, finding_pid, require_root,
};

fn deploy(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(file)
}

/// The unit's CapabilityBoundingSet.
fn unit_capabilities() -> Vec<String> {
    let unit = std::fs::read_to_string(deploy("assay.service")).unwrap();
    unit.lines()
        .find_map(|l| l.strip_prefix("CapabilityBoundingSet="))
        .expect("CapabilityBoundingSet")
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_unit_verifies_and_grants_exactly_what_the_agent_needs() {
    let caps = unit_capabilities();
    for (_, name, _) in REQUIRED {
        assert!(
            caps.iter().any(|c| c == name),
            "{name} not granted: {caps:?}"
        );
    }
    // Everything else it grants is CAP_SYS_RESOURCE (memlock, old kernels).
    assert_eq!(caps.len(), REQUIRED.len() + 1, "{caps:?}");
    assert!(caps.iter().any(|c| c == "CAP_SYS_RESOURCE"));
    let unit = std::fs::read_to_string(deploy("assay.service")).unwrap();
    assert!(unit.contains(&format!("AmbientCapabilities={}", caps.join(" "))));

    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(std::env::var_os("CI").is_none(), "systemd-analyze missing");
        return;
    }
    let dir = TempDir::new("unit");
    let unit_path = dir.0.join("assay.service");
    std::fs::write(
        &unit_path,
        unit.replace("/usr/local/bin/assay", agent_binary().to_str().unwrap()),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit_path)
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `setpriv` arguments that leave root with only `caps`.
fn only(caps: &[String]) -> Vec<String> {
    let set: Vec<String> = caps
        .iter()
        .map(|c| format!("+{}", c.trim_start_matches("CAP_").to_lowercase()))
        .collect();
    vec![
        "--bounding-set".into(),
        format!("-all,{}", set.join(",")),
        "--inh-caps".into(),
        "-all".into(),
    ]
}

#[test]
fn with_only_the_units_capabilities_the_agent_detects_and_without_cap_bpf_it_says_so() {
    if !require_root() {
        return;
    }
    let caps = unit_capabilities();
    let cgroup = TestCgroup::new("caps");
    let pool = Server::start("pool");
    let mut agent = Agent::start_wrapped(&cgroup, "setpriv", &only(&caps), &[]);
    let logs = agent.logs_text();
    let off: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains(" off: ") && !l.contains("gpu-telemetry"))
        .collect();
    assert!(
        off.is_empty(),
        "sensors off with the unit's capabilities: {off:?}"
    );
    let mut cmd = emulator();
    cmd.args(["stratum", "--variant", "st5", "--connect", &pool.addr])
        .stdout(Stdio::null());
    let mut miner = cgroup.spawn(cmd);
    let pid = u64::from(miner.id());
    let finding = agent
        .wait_for_finding(Duration::from_secs(10), |f| finding_pid(f) == Some(pid))
        .unwrap_or_else(|| panic!("no finding with the unit's capabilities: {:?}", agent.seen));
    assert_eq!(finding["level"], "confirmed");
    let _ = miner.wait();

    let without_bpf: Vec<String> = caps.iter().filter(|c| *c != "CAP_BPF").cloned().collect();
    let out = Command::new("setpriv")
        .args(only(&without_bpf))
        .arg(agent_binary())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("missing capabilities: CAP_BPF"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn the_daemonset_parses_with_host_pid_mounts_and_the_same_capabilities() {
    let python = std::env::var_os("ASSAY_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-venv/bin/python")
        });
    if !python.exists() {
        assert!(std::env::var_os("CI").is_none(), "test python missing");
        return;
    }
    let out = Command::new(python)
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))",
        ])
        .arg(deploy("kubernetes/daemonset.yaml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ds = &docs[0];
    assert_eq!(ds["apiVersion"], "apps/v1");
    assert_eq!(ds["kind"], "DaemonSet");
    let pod = &ds["spec"]["template"]["spec"];
    assert_eq!(
        ds["spec"]["selector"]["matchLabels"],
        ds["spec"]["template"]["metadata"]["labels"]
    );
    assert_eq!(pod["hostPID"], true);
    let container = &pod["containers"][0];
    assert_eq!(container["securityContext"]["privileged"], false);
    let added: Vec<String> = container["securityContext"]["capabilities"]["add"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| format!("CAP_{}", c.as_str().unwrap()))
        .collect();
    assert_eq!(
        added,
        unit_capabilities(),
        "the DaemonSet and the unit differ"
    );
    let mounts: Vec<&str> = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["mountPath"].as_str())
        .collect();
    for needed in ["/sys/fs/cgroup", "/sys/kernel/btf"] {
        assert!(mounts.contains(&needed), "{needed} not mounted: {mounts:?}");
    }
    let volumes: Vec<&str> = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    for mount in container["volumeMounts"].as_array().unwrap() {
        assert!(
            volumes.contains(&mount["name"].as_str().unwrap()),
            "{mount}"
        );
    }
}
