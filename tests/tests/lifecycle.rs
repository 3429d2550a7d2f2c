#![allow(clippy::print_stderr, reason = "test output")]
//! The agent's lifecycle: it attaches its programs, and a stop by SIGTERM
//! or SIGINT leaves nothing behind in the kernel.

use std::time::{Duration, Instant};

use assay_tests::{
    Agent, TestCgroup, agent_binary, loaded_link_ids, loaded_program_names, require_root,
};

fn ours(names: &[String]) -> Vec<&String> {
    names.iter().filter(|n| n.starts_with("assay_")).collect()
}

/// Our programs the kernel still holds, after letting it finish freeing
/// them: tracing programs go after an RCU grace period, not at the close of
/// their last fd. Bounded: 10 s.
fn ours_left_after_grace() -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left: Vec<String> = ours(&loaded_program_names()).into_iter().cloned().collect();
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stop_detaches_everything(signal: i32) {
    let cgroup = TestCgroup::new("lifecycle");
    assert!(
        ours(&loaded_program_names()).is_empty(),
        "programs left by an earlier run"
    );
    let links_before = loaded_link_ids();
    let mut agent = Agent::start(&cgroup);
    let loaded = loaded_program_names();
    for expected in [
        "assay_exec_btf",
        "assay_fork_btf",
        "assay_exit_btf",
        // assay_cpu_sample: the kernel keeps 15 bytes of a program's name.
        "assay_cpu_sampl",
        // assay_dev_access, 15 bytes kept.
        "assay_dev_acces",
        "assay_sysctl",
        "assay_connect4",
        "assay_connect6",
        "assay_sendmsg4",
        "assay_sendmsg6",
        "assay_flow_out",
        "assay_flow_in",
    ] {
        assert!(
            loaded.iter().any(|n| n == expected),
            "{expected} not loaded: {loaded:?}"
        );
    }
    let status = agent.stop_with(signal);
    assert!(status.success(), "agent exit: {status}");
    let left = ours_left_after_grace();
    assert!(left.is_empty(), "left behind: {left:?}");
    let new_links: Vec<u32> = loaded_link_ids()
        .into_iter()
        .filter(|id| !links_before.contains(id))
        .collect();
    assert!(new_links.is_empty(), "links left behind: {new_links:?}");
}

#[test]
fn sigterm_detaches_every_program() {
    if require_root() {
        stop_detaches_everything(libc::SIGTERM);
    }
}

#[test]
fn sigint_detaches_every_program() {
    if require_root() {
        stop_detaches_everything(libc::SIGINT);
    }
}

#[test]
fn doctor_prints_the_plan_without_attaching() {
    if !require_root() {
        return;
    }
    let out = std::process::Command::new(agent_binary())
        .arg("doctor")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for row in [
        "tp_btf",
        "kprobes",
        "fentry/fexit",
        "LSM programs",
        "cgroup v2",
        "perf hardware",
        "cgroup.kill",
        "cgroup freezer",
    ] {
        assert!(text.contains(row), "no {row} row:\n{text}");
    }
    assert!(
        text.contains("process") && text.contains("would attach"),
        "{text}"
    );
    assert!(
        ours(&loaded_program_names()).is_empty(),
        "doctor left programs loaded"
    );
}

fn rss_kib(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Thousands of short processes a second and thousands of connections, for
/// a bounded time: the agent keeps running, its memory stays bounded, it
/// still detects afterwards, and its summary accounts for what it saw and
/// what the kernel dropped.
#[test]
fn an_exec_and_connection_storm_is_survived_with_bounded_memory() {
    if !require_root() {
        return;
    }
    let cgroup = TestCgroup::new("storm");
    let pool = assay_tests::Server::start("pool");
    let mut agent = Agent::start(&cgroup);
    let storm: Vec<_> = ["exec", "exec", "rr-connect"]
        .into_iter()
        .map(|w| cgroup.spawn(assay_tests::load_workload(w, 6)))
        .collect();
    let mut peak_kib = 0;
    for mut load in storm {
        while load.try_wait().unwrap().is_none() {
            peak_kib = peak_kib.max(rss_kib(agent.pid()).expect("agent alive"));
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(load.wait().unwrap().success(), "storm workload failed");
    }
    eprintln!("agent RSS peak during the storm: {} MiB", peak_kib / 1024);
    // Debug build; the release build's figure is in BENCHMARKS.md.
    assert!(peak_kib < 160 * 1024, "RSS peaked at {peak_kib} KiB");

    // Overloaded, the agent drops (and counts) what the ring buffer cannot
    // hold, including the samples of flows opened meanwhile: once it has
    // drained its backlog it detects again. A miner a second until one is.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let detected_after = loop {
        let mut miner = assay_tests::emulator();
        miner
            .args(["stratum", "--variant", "st5", "--connect", &pool.addr])
            .stdout(std::process::Stdio::null());
        let mut miner = cgroup.spawn(miner);
        let pid = u64::from(miner.id());
        let found = agent
            .wait_for_finding(Duration::from_secs(1), |f| {
                assay_tests::finding_pid(f) == Some(pid)
            })
            .is_some();
        let _ = miner.kill();
        let _ = miner.wait();
        if found {
            break deadline - Duration::from_secs(60);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no detection within 60 s of the storm:\n{}",
            agent.logs_text()
        );
    };
    eprintln!(
        "detecting again {:.1} s after the storm",
        detected_after.elapsed().as_secs_f64()
    );
    let status = agent.stop_with(libc::SIGTERM);
    assert!(status.success(), "agent exit: {status}");
    let mut field = |name: &str| agent.summary_field(name);
    assert!(field("events") > 5_000);
    for ring in ["process", "flow", "sensor"] {
        let _ = field(&format!("{ring}_ring_dropped"));
    }
    let _ = field("flows_evicted");
}

/// Each event family has its own ring buffer: an exec storm that overflows
/// the process ring (made small here, as on a host whose storm outgrows
/// it) costs exec events, counted, and not one flow sample. Miners that
/// connect during the storm are detected during the storm.
#[test]
fn an_exec_storm_overflows_the_process_ring_and_costs_no_flow_sample() {
    if !require_root() {
        return;
    }
    let cgroup = TestCgroup::new("exec-storm");
    let pool = assay_tests::Server::start("pool");
    let mut agent = Agent::start_with(&cgroup, &["--process-ring-kib", "16"]);
    let storm: Vec<_> = ["exec", "exec"]
        .into_iter()
        .map(|w| cgroup.spawn(assay_tests::load_workload(w, 8)))
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    let mut detected = 0;
    for variant in ["st5", "st1", "st3", "st5", "st1"] {
        let mut miner = assay_tests::emulator();
        miner
            .args(["stratum", "--variant", variant, "--connect", &pool.addr])
            .stdout(std::process::Stdio::null());
        let mut miner = cgroup.spawn(miner);
        let pid = u64::from(miner.id());
        if agent
            .wait_for_finding(Duration::from_secs(2), |f| {
                assay_tests::finding_pid(f) == Some(pid)
            })
            .is_some()
        {
            detected += 1;
        }
        let _ = miner.kill();
        let _ = miner.wait();
    }
    for mut load in storm {
        assert!(load.wait().unwrap().success(), "storm workload failed");
    }
    let status = agent.stop_with(libc::SIGTERM);
    assert!(status.success(), "agent exit: {status}");
    let mut field = |name: &str| agent.summary_field(name);
    assert!(
        field("process_ring_dropped") > 0,
        "the storm did not overflow the process ring"
    );
    assert_eq!(field("flow_ring_dropped"), 0);
    assert_eq!(detected, 5, "miners detected during the storm");
}

/// The state of a thread-group leader, from /proc/<pid>/stat (the letter
/// after the command name).
fn leader_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}

/// A process ends when its last thread does: a leader calling
/// `pthread_exit` while another thread keeps mining does not resolve the
/// verdict; the process's real end does.
#[test]
fn a_leader_that_calls_pthread_exit_does_not_end_its_process() {
    if !require_root() {
        return;
    }
    let cgroup = TestCgroup::new("leader-exit");
    let pool = assay_tests::Server::start("pool");
    let mut agent = Agent::start(&cgroup);
    let mut miner = assay_tests::emulator();
    miner
        .args(["stratum", "--variant", "st5", "--connect", &pool.addr])
        .args([
            "--leader-exits",
            "--hold-ms",
            "6000",
            "--submit-every-ms",
            "700",
        ])
        .stdout(std::process::Stdio::null());
    let mut miner = cgroup.spawn(miner);
    let pid = miner.id();
    let opened = agent
        .wait_for_finding(Duration::from_secs(5), |f| {
            assay_tests::finding_pid(f) == Some(u64::from(pid))
        })
        .expect("no finding for the miner");
    assert_eq!(opened["level"], "confirmed", "{opened}");
    // The leader is a zombie now, its other thread still mining.
    assert_eq!(
        leader_state(pid),
        Some('Z'),
        "the leader did not exit first"
    );
    let resolved =
        |f: &serde_json::Value| f["id"] == opened["id"] && f["event"] == "verdict.resolved";
    assert!(
        agent
            .wait_for_finding(Duration::from_secs(3), resolved)
            .is_none(),
        "resolved while a thread of the process was still mining"
    );
    assert!(miner.wait().unwrap().success(), "miner failed");
    assert!(
        agent
            .wait_for_finding(Duration::from_secs(5), resolved)
            .is_some(),
        "not resolved once the process really ended: {:?}",
        agent.seen
    );
}

/// In a PID namespace of its own the agent would name the wrong processes:
/// it refuses to start, and says how to run it.
#[test]
fn the_agent_refuses_a_pid_namespace_of_its_own() {
    if !require_root() {
        return;
    }
    for mount_proc in [true, false] {
        let mut cmd = std::process::Command::new("unshare");
        cmd.args(["--pid", "--fork"]);
        if mount_proc {
            cmd.arg("--mount-proc");
        }
        let out = cmd
            .arg(assay_tests::agent_binary())
            .arg("run")
            .output()
            .expect("unshare runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "started in its own PID namespace: {stderr}"
        );
        assert!(
            stderr.contains("PID namespace") && stderr.contains("hostPID"),
            "no clear reason (mount_proc {mount_proc}): {stderr}"
        );
    }
}
