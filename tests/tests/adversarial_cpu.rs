#![allow(clippy::print_stderr, reason = "test output")]
//! End to end: CPU miners that try to slip past the RandomX marker
//! (issue #15). Real RandomX hashing (Debian's librandomx, the library
//! monerod links) on hashing threads that each live under the sensor's
//! 2 s read, new ones replacing them: judged over the process, the miner
//! is still pow-mining, and its benign neighbours are not. Whole hashing
//! processes replaced as fast are judged over their workload (cgroup),
//! and a churn of benign jobs that change the rounding mode is not.

use std::{
    io::{BufRead as _, BufReader},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use assay_tests::{Agent, TestCgroup, finding_pid, load_workload, require_root};
use serde_json::Value;

/// One of this package's binaries, next to the test's.
fn package_bin(name: &str) -> std::path::PathBuf {
    std::env::current_exe()
        .unwrap()
        .parent()
        .and_then(std::path::Path::parent)
        .unwrap()
        .join(name)
}

/// The rotating-thread RandomX miner (`assay-randomx`), started in the
/// test's cgroup; returns once its cache is built and it hashes.
fn start_miner(cgroup: &TestCgroup, args: &[&str]) -> (Child, u32) {
    let exe = package_bin("assay-randomx");
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

/// Waits up to `seconds` (from now, when the miner `what` has just
/// started) for a confirmed pow-mining verdict with RandomX evidence about
/// `pid`, and says how long it took: that evidence. The test fails
/// without it.
fn confirmed_randomx(agent: &mut Agent, pid: u32, seconds: u64, what: &str) -> Value {
    let started = Instant::now();
    let confirmed = |f: &Value| {
        finding_pid(f) == Some(u64::from(pid))
            && f["class"] == "pow-mining"
            && f["level"] == "confirmed"
            && randomx_evidence(f).is_some()
    };
    let finding = agent
        .wait_for_finding(Duration::from_secs(seconds), confirmed)
        .unwrap_or_else(|| panic!("{what} {pid} was not confirmed: {:?}", agent.seen));
    eprintln!(
        "confirmed {:.1} s after the miner hashed",
        started.elapsed().as_secs_f64()
    );
    randomx_evidence(&finding).unwrap().clone()
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
    let evidence = confirmed_randomx(&mut agent, pid, 60, "the rotating-thread miner");
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

#[test]
fn hashing_processes_replaced_faster_than_the_sensor_reads_are_mining_in_their_workload() {
    if !require_root() {
        return;
    }
    let cgroup = TestCgroup::new("randomx-processes");
    let mut agent = Agent::start(&cgroup);
    // A supervisor forks a hashing worker, one at a time, each living
    // 1–1.5 s (drawn anew for each): none is read alive twice. Each worker
    // hashes on every CPU, as a miner does. (One hashing thread on an
    // otherwise idle host is never switched out, so its rounding is never
    // saved where the sensor reads it: a limit of the FPU marker, which
    // the CPU-time and work-loop signs have to cover. On this VM's two
    // CPUs, one thread passed only while other work ran beside it.)
    let cpus = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .to_string();
    let (mut miner, pid) = start_miner(
        &cgroup,
        &[
            "--processes",
            "--threads",
            &cpus,
            "--min-life-ms",
            "1000",
            "--max-life-ms",
            "1500",
            "--seconds",
            "120",
        ],
    );
    let evidence = confirmed_randomx(&mut agent, pid, 90, "the process-rotating miner");
    let attributes = &evidence["attributes"];
    assert_eq!(attributes["scope"], "workload", "{evidence}");
    assert!(
        attributes["processes_exited"].as_u64().unwrap() >= 2,
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
    let _ = miner.kill();
    let _ = miner.wait();
}

/// xorshift64, for the benign jobs' lengths.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn a_churn_of_benign_jobs_that_change_rounding_is_not_mining() {
    if !require_root() {
        return;
    }
    let cgroup = TestCgroup::new("rounding-churn");
    let mut agent = Agent::start(&cgroup);
    // A job runner in one cgroup: two short jobs at a time, for 80 s, of
    // lengths drawn anew. Interval arithmetic (up and down held), code
    // that truncates for whole stretches, a moment of truncation now and
    // then, numeric Python, and C compiles: summed, every non-default mode
    // shows, busy, for minutes, though no job mixes them.
    let source = std::env::temp_dir().join(format!("assay-rounding-{}.c", std::process::id()));
    std::fs::write(
        &source,
        "#include <fenv.h>\n#include <math.h>\n\
         double f(double x) { fesetround(FE_UPWARD); double y = sqrt(x) * 3.1; \
         fesetround(FE_TONEAREST); return y; }\n",
    )
    .unwrap();
    let compiler = ["cc", "gcc"].into_iter().find(|c| {
        Command::new(c)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    let mut rng = u64::from(std::process::id()) | 1 << 40;
    let job = |n: u64, rng: &mut u64| -> Command {
        let secs = format!("{:.2}", 0.4 + (next(rng) % 120) as f64 / 100.0);
        match (n % 5, compiler) {
            (0, _) => {
                let mut c = Command::new(package_bin("assay-load"));
                c.args(["interval-rounding", &secs]);
                c
            }
            (1, _) => {
                let mut c = Command::new(package_bin("assay-load"));
                c.args(["truncating-rounding", &secs]);
                c
            }
            (2, _) => {
                let mut c = Command::new(package_bin("assay-load"));
                c.args(["float-rounding", &secs]);
                c
            }
            (3, Some(cc)) => {
                let mut c = Command::new(cc);
                c.args(["-O2", "-c", "-o", "/dev/null"]).arg(&source);
                c
            }
            _ => {
                let mut c = Command::new(assay_tests::test_python());
                let loops = 200_000 + next(rng) % 800_000;
                c.args([
                    "-c",
                    &format!(
                        "import math\ns = 0.0\nfor i in range(1, {loops}):\n    \
                         s += math.log(i) * 1.0000001 / math.sqrt(i)\nprint(round(s, 3))"
                    ),
                ]);
                c
            }
        }
    };
    let deadline = Instant::now() + Duration::from_secs(80);
    let mut running: Vec<Child> = Vec::new();
    let mut started = 0u64;
    let mut pids = Vec::new();
    while Instant::now() < deadline {
        running.retain_mut(|c| !matches!(c.try_wait(), Ok(Some(_))));
        while running.len() < 2 {
            let mut cmd = job(started, &mut rng);
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
            let child = cgroup.spawn(cmd);
            pids.push(u64::from(child.id()));
            running.push(child);
            started += 1;
        }
        if let Some(f) = agent.wait_for_finding(Duration::from_millis(100), |f| {
            randomx_evidence(f).is_some()
                || (f["class"] == "pow-mining" && finding_pid(f).is_some_and(|p| pids.contains(&p)))
        }) {
            panic!("benign jobs marked as mining: {f}");
        }
    }
    for mut child in running {
        let _ = child.kill();
        let _ = child.wait();
    }
    let _ = std::fs::remove_file(&source);
    eprintln!("{started} jobs");
    assert!(started >= 40, "{started} jobs");
}
