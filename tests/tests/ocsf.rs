#![allow(clippy::print_stderr, reason = "test output")]
//! End to end: with `--format ocsf`, every finding the agent writes is an
//! OCSF Detection Finding that validates against docs/finding.schema.json
//! (checked with Python's `jsonschema`, which `cargo xtask test` installs),
//! names T1496 for mining, and carries the native finding unchanged; the
//! same lines arrive in the --output-file, once each.

use std::{process::Stdio, time::Duration};

use assay_tests::{Agent, Server, TempDir, TestCgroup, emulator, require_root, validate_findings};
use serde_json::Value;

#[test]
fn ocsf_findings_validate_against_the_schema() {
    if !require_root() {
        return;
    }
    let cgroup = TestCgroup::new("ocsf");
    let pool = Server::start("pool");
    let dir = TempDir::new("ocsf");
    let file = dir.0.join("findings.jsonl");
    let mut agent = Agent::start_with(
        &cgroup,
        &["--format", "ocsf", "--output-file", file.to_str().unwrap()],
    );
    let mut cmd = emulator();
    cmd.args(["stratum", "--variant", "st5", "--connect", &pool.addr])
        .args(["--hold-ms", "300"])
        .stdout(Stdio::null());
    let mut miner = cgroup.spawn(cmd);
    let pid = u64::from(miner.id());
    let of_miner = |f: &Value| f["unmapped"]["assay"]["process"]["pid"] == pid;
    let opened = agent
        .wait_for_finding(Duration::from_secs(10), of_miner)
        .unwrap_or_else(|| panic!("no OCSF finding for the miner: {:?}", agent.seen));
    let _ = miner.wait();
    let closed = agent
        .wait_for_finding(Duration::from_secs(10), |f| {
            of_miner(f) && f["activity_id"] == 3
        })
        .unwrap_or_else(|| panic!("no Close for the miner: {:?}", agent.seen));
    assert_eq!(opened["class_uid"], 2004);
    assert_eq!(opened["activity_id"], 1);
    assert_eq!(opened["severity_id"], 4, "confirmed is High");
    assert_eq!(
        opened["finding_info"]["attacks"][0]["technique"]["uid"],
        "T1496"
    );
    assert_eq!(opened["evidences"][0]["process"]["pid"], pid);
    assert_eq!(
        opened["evidences"][0]["dst_endpoint"]["port"].as_u64(),
        pool.addr.rsplit(':').next().and_then(|p| p.parse().ok())
    );
    assert_eq!(opened["unmapped"]["assay"]["class"], "pow-mining");
    assert_eq!(closed["finding_info"]["uid"], opened["finding_info"]["uid"]);
    agent.stop_with(libc::SIGTERM);
    validate_findings(&agent.seen);
    // The file holds the same lines as stdout, once each.
    let in_file: Vec<Value> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let uids = |lines: &[Value]| {
        lines
            .iter()
            .map(|f| f["metadata"]["uid"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(uids(&in_file), uids(&agent.seen));
    let mut unique = uids(&in_file);
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), in_file.len(), "a line written twice");
}
