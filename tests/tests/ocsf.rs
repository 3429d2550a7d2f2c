#![allow(clippy::print_stderr, reason = "test output")]
//! End to end: with `--format ocsf`, every finding the agent writes is an
//! OCSF Detection Finding that validates against docs/finding.schema.json
//! (checked with Python's `jsonschema`, which `cargo xtask test` installs),
//! names T1496 for mining, and carries the native finding unchanged; the
//! same lines arrive in the --output-file, once each.

use std::{
    io::Write as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use assay_tests::{Agent, Server, TempDir, TestCgroup, emulator, require_root};
use serde_json::Value;

fn python() -> PathBuf {
    std::env::var_os("ASSAY_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-venv/bin/python")
        })
}

/// Validates every line against the schema; panics naming the first error.
fn validate(lines: &[Value]) {
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/finding.schema.json");
    let script = "import json, sys, jsonschema\n\
        schema = json.load(open(sys.argv[1]))\n\
        v = jsonschema.Draft202012Validator(schema)\n\
        n = 0\n\
        for line in sys.stdin:\n\
        \x20   for e in v.iter_errors(json.loads(line)):\n\
        \x20       print(f'{list(e.absolute_path)}: {e.message}'); sys.exit(1)\n\
        \x20   n += 1\n\
        print(n)\n";
    let mut child = Command::new(python())
        .args(["-c", script])
        .arg(&schema)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python with jsonschema (cargo xtask test installs it)");
    let mut stdin = child.stdin.take().unwrap();
    for line in lines {
        writeln!(stdin, "{line}").unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "a finding does not validate: {text}");
    assert_eq!(text.trim(), lines.len().to_string());
}

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
    validate(&agent.seen);
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
