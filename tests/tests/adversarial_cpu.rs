#![allow(clippy::print_stderr, reason = "test output")]
//! End to end: CPU miners that try to slip past the RandomX marker
//! (issue #15). Real RandomX hashing (Debian's librandomx, the library
//! monerod links) on hashing threads that each live under the sensor's
//! 2 s read, new ones replacing them: judged over the process, the miner
//! is still pow-mining, and its benign neighbours are not.

use std::{
    io::{BufRead as _, BufReader},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use assay_tests::{Agent, TestCgroup, finding_pid, load_workload, require_root};
use serde_json::Value;

/// The rotating-thread RandomX miner (`assay-randomx`), started in the
/// test's cgroup; returns once its cache is built and it hashes.
fn start_miner(cgroup: &TestCgroup, args: &[&str]) -> (Child, u32) {
    let exe = std::env::current_exe()
        .unwrap()
        .parent()
        .and_then(std::path::Path::parent)
        .unwrap()
        .join("assay-randomx");
    assert!(exe.exists(), "{} not built", exe.display());
    let mut cmd = Command::new(exe);
    cmd.args(args).stdout(Stdio::piped());
    let mut child = cgroup.spawn(cmd);
    let pid = child.id();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .expect("miner output");
    assert_eq!(line.trim(), format!("ready {pid}"));
    (child, pid)
}

fn randomx_evidence(finding: &Value) -> Option<&Value> {
    finding["evidence"]
        .as_array()?
        .iter()
        .find(|e| e["kind"] == "cpu.randomx_fpu")
}

#[test]
fn hashing_threads_replaced_faster_than_the_sensor_reads_are_still_mining() {
    if !require_root() {
        return;
    }
    let cgroup = TestCgroup::new("randomx-rotation");
    let mut agent = Agent::start(&cgroup);
    // Benign neighbours through the same windows: rounding held up and
    // down, and toward zero for a moment now and then.
    let nice = |cmd: Command| {
        let mut niced = Command::new("nice");
        niced
            .args(["-n", "19"])
            .arg(cmd.get_program())
            .args(cmd.get_args())
            .stdout(Stdio::null());
        cgroup.spawn(niced)
    };
    let mut rounding = nice(load_workload("float-rounding", 120));
    let mut interval = nice(load_workload("interval-rounding", 120));
    // Two hashing threads at once, each living 0.3–1.7 s.
    let (mut miner, pid) = start_miner(
        &cgroup,
        &[
            "--threads",
            "2",
            "--min-life-ms",
            "300",
            "--max-life-ms",
            "1700",
            "--seconds",
            "90",
        ],
    );
    let started = Instant::now();
    let confirmed = |f: &Value| {
        finding_pid(f) == Some(u64::from(pid))
            && f["class"] == "pow-mining"
            && f["level"] == "confirmed"
            && randomx_evidence(f).is_some()
    };
    let finding = agent
        .wait_for_finding(Duration::from_secs(60), confirmed)
        .unwrap_or_else(|| {
            panic!(
                "the rotating-thread miner {pid} was not confirmed: {:?}",
                agent.seen
            )
        });
    eprintln!(
        "confirmed {:.1} s after the miner hashed",
        started.elapsed().as_secs_f64()
    );
    let evidence = randomx_evidence(&finding).unwrap();
    let attributes = &evidence["attributes"];
    // Judged over the process: threads that exited handed their counts over.
    assert!(
        attributes["threads_exited"].as_u64().unwrap() >= 1,
        "{evidence}"
    );
    assert!(
        attributes["nondefault_rounding_share"].as_f64().unwrap() >= 0.1,
        "{evidence}"
    );
    assert!(
        attributes["cpu_cores"].as_f64().unwrap() >= 0.25,
        "{evidence}"
    );
    for mode in ["down", "up", "toward_zero"] {
        assert!(
            attributes["rounding_modes"][mode].as_u64().unwrap() > 0,
            "{evidence}"
        );
    }
    for child in [&rounding, &interval] {
        let benign = child.id();
        assert!(
            !agent
                .seen
                .iter()
                .any(|f| finding_pid(f) == Some(u64::from(benign)) && randomx_evidence(f).is_some()),
            "benign pid {benign} marked as RandomX: {:?}",
            agent.seen
        );
    }
    for child in [&mut miner, &mut rounding, &mut interval] {
        let _ = child.kill();
        let _ = child.wait();
    }
}
