#![allow(clippy::print_stderr, reason = "test output")]
//! End to end: a miner's command line (pool URL, miner flags), and the
//! config file a renamed, argument-less miner reads next to its binary, are
//! weak evidence for it: observed, never more on their own. Ordinary
//! command lines with look-alike flags are nothing.

use std::{
    process::{Command, Stdio},
    time::Duration,
};

use assay_tests::{Agent, TempDir, TestCgroup, emulator_path, finding_pid, require_root};
use serde_json::Value;

/// A mainnet Monero address (valid checksum), as in an XMRig config.
const WALLET: &str = "42ey1afDFnn4886T7196doS9GPMzexD9gXpsZJDwVjeRVdFCSoHnv7KPbBeGpzJBzHRCAs9UxqeoyFQMYbqSWYTfJJQAWDm";

fn command_line_evidence(finding: &Value) -> Option<&Value> {
    finding["evidence"]
        .as_array()?
        .iter()
        .find(|e| e["kind"] == "process.command_line")
}

#[test]
fn a_miners_command_line_is_weak_evidence_and_look_alikes_are_nothing() {
    if !require_root() {
        return;
    }
    let cgroup = TestCgroup::new("cmdline");
    let mut agent = Agent::start(&cgroup);
    // `sh -c 'sleep 2' NAME ARGS…`: the shell's own argv carries ARGS.
    let shell = |args: &[&str]| {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "sleep 2"]).args(args).stdout(Stdio::null());
        cgroup.spawn(cmd)
    };
    let mut benign = [
        shell(&["gcc", "-o", "main", "main.c", "-O2"]),
        shell(&["ssh", "-o", "StrictHostKeyChecking=no", "build-7:22"]),
        shell(&["python3", "train.py", "-a", "adam", "--lr", "0.1"]),
    ];
    let benign_pids: Vec<u64> = benign.iter().map(|c| u64::from(c.id())).collect();
    let mut miner = shell(&[
        "kworker",
        "-o",
        "stratum+tcp://edge-7.example.net:3333",
        "-u",
        WALLET,
        "--donate-level",
        "1",
    ]);
    let pid = u64::from(miner.id());
    let finding = agent
        .wait_for_finding(Duration::from_secs(10), |f| finding_pid(f) == Some(pid))
        .unwrap_or_else(|| panic!("no finding for the miner's command line: {:?}", agent.seen));
    assert_eq!(finding["class"], "pow-mining", "{finding}");
    assert_eq!(finding["level"], "observed", "{finding}");
    let evidence = command_line_evidence(&finding).expect("command-line evidence");
    assert!(evidence["strength"].as_f64().unwrap() <= 0.5, "{evidence}");
    let kinds: Vec<&str> = evidence["attributes"]["hints"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["kind"].as_str())
        .collect();
    assert!(kinds.iter().any(|k| k.contains("pool")), "{kinds:?}");
    let _ = miner.wait();
    for child in &mut benign {
        let _ = child.wait();
    }
    assert!(
        !agent
            .seen
            .iter()
            .any(|f| finding_pid(f).is_some_and(|p| benign_pids.contains(&p))),
        "a benign command line made a finding: {:?}",
        agent.seen
    );
}

/// A process that predates the agent has no exec event: its command line
/// is read from /proc, on a worker (never on the event loop, where a
/// process holding its memory-map lock could stall it), and judged when
/// the read comes back.
#[test]
fn the_command_line_of_a_process_started_before_the_agent_is_read_and_judged() {
    if !require_root() {
        return;
    }
    let cgroup = TestCgroup::new("cmdline-before");
    let shell = |args: &[&str]| {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "sleep 20"])
            .args(args)
            .stdout(Stdio::null());
        cgroup.spawn(cmd)
    };
    let mut benign = shell(&["python3", "train.py", "-a", "adam", "--lr", "0.1"]);
    let mut miner = shell(&[
        "kworker",
        "-o",
        "stratum+tcp://edge-9.example.net:14444",
        "-u",
        WALLET,
        "--donate-level",
        "1",
    ]);
    let pid = u64::from(miner.id());
    let benign_pid = u64::from(benign.id());
    let mut agent = Agent::start(&cgroup);
    let finding = agent
        .wait_for_finding(Duration::from_secs(10), |f| finding_pid(f) == Some(pid))
        .unwrap_or_else(|| {
            panic!(
                "no finding for the older miner's command line: {:?}",
                agent.seen
            )
        });
    assert_eq!(finding["class"], "pow-mining", "{finding}");
    assert_eq!(finding["level"], "observed", "{finding}");
    assert!(command_line_evidence(&finding).is_some(), "{finding}");
    let _ = miner.kill();
    let _ = miner.wait();
    let _ = benign.kill();
    let _ = benign.wait();
    assert!(
        !agent
            .seen
            .iter()
            .any(|f| finding_pid(f) == Some(benign_pid)),
        "a benign command line made a finding: {:?}",
        agent.seen
    );
}

/// One miner-like command line, shown again and again: by the process,
/// by children it forks (the same argv) and by images it execs with the
/// same arguments. It is one sign: the workload's verdict never rises
/// past `observed`.
#[test]
fn a_command_line_repeated_across_forks_and_execs_stays_observed() {
    if !require_root() {
        return;
    }
    let cgroup = TestCgroup::new("cmdline-repeat");
    let mut agent = Agent::start(&cgroup);
    let args = [
        "kworker",
        "-o",
        "stratum+tcp://edge-3.example.net:5555",
        "-u",
        WALLET,
        "--donate-level",
        "1",
    ];
    // Forks children that exec `sh` with the same arguments, three rounds,
    // then execs itself with them once more.
    let script = r#"for round in 1 2 3; do
        for i in 1 2 3; do sh -c 'sleep 0.2' "$0" "$@" & done
        wait
    done
    exec sh -c 'for i in 1 2 3; do sh -c "sleep 0.2" "$0" "$@"; done; sleep 1' "$0" "$@""#;
    let mut cmd = Command::new("sh");
    cmd.args(["-c", script]).args(args).stdout(Stdio::null());
    let mut child = cgroup.spawn(cmd);
    let pid = u64::from(child.id());
    let first = agent
        .wait_for_finding(Duration::from_secs(10), |f| finding_pid(f) == Some(pid))
        .unwrap_or_else(|| panic!("no finding for the command line: {:?}", agent.seen));
    assert_eq!(first["level"], "observed", "{first}");
    let _ = child.wait();
    // Time for every repeat to have been judged.
    let _ = agent.wait_for_finding(Duration::from_secs(3), |f| {
        f["workload"] == first["workload"] && f["level"] != "observed"
    });
    let raised: Vec<&Value> = agent
        .seen
        .iter()
        .filter(|f| f["workload"] == first["workload"] && f["level"] != "observed")
        .collect();
    assert!(
        raised.is_empty(),
        "one sign, repeated, raised the verdict: {raised:?}"
    );
    let repeats = agent
        .seen
        .iter()
        .filter(|f| f["workload"] == first["workload"])
        .count();
    eprintln!("{repeats} finding lines for the workload");
}

#[test]
fn a_renamed_busy_miner_is_caught_by_the_config_next_to_its_binary() {
    if !require_root() {
        return;
    }
    let dir = TempDir::new("renamed-miner");
    let binary = dir.0.join("kworker-sync");
    std::fs::copy(emulator_path(), &binary).unwrap();
    std::fs::write(
        dir.0.join("config.json"),
        format!(
            r#"{{"autosave": true, "donate-level": 1, "randomx": {{"1gb-pages": true}},
 "pools": [{{"url": "edge-7.example.net:443", "user": "{WALLET}", "tls": true, "keepalive": true}}]}}"#
        ),
    )
    .unwrap();
    let cgroup = TestCgroup::new("config");
    let mut agent = Agent::start(&cgroup);
    // No arguments that say anything: it only keeps a core busy.
    let mut cmd = Command::new(&binary);
    cmd.args([
        "hygiene",
        "--mode",
        "benign",
        "--burn-ms",
        "6000",
        "--hold-ms",
        "0",
    ])
    .current_dir("/")
    .stdout(Stdio::null());
    let mut miner = cgroup.spawn(cmd);
    let pid = u64::from(miner.id());
    let finding = agent
        .wait_for_finding(Duration::from_secs(12), |f| {
            finding_pid(f) == Some(pid) && command_line_evidence(f).is_some()
        })
        .unwrap_or_else(|| panic!("the renamed miner's config was not read: {:?}", agent.seen));
    let evidence = command_line_evidence(&finding).unwrap();
    assert_eq!(
        evidence["attributes"]["signal"], "config_file",
        "{evidence}"
    );
    assert_eq!(
        evidence["attributes"]["config"],
        binary.with_file_name("config.json").display().to_string(),
        "{evidence}"
    );
    assert_eq!(finding["level"], "observed", "{finding}");
    let _ = miner.wait();
}

/// A busy process names, as its config files, a FIFO (an `open()` for
/// reading would wait for a writer forever) and a symlink to a file full of
/// miner hints. Neither is read, neither stalls the agent: a plaintext
/// miner started afterwards is reported within the usual second, and
/// SIGTERM stops the agent within a second.
#[test]
fn a_fifo_or_a_symlink_named_as_a_config_neither_stalls_nor_fools_the_agent() {
    if !require_root() {
        return;
    }
    let dir = TempDir::new("hostile-config");
    let fifo = dir.0.join("config.json");
    let c_fifo = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid path.
    assert_eq!(unsafe { libc::mkfifo(c_fifo.as_ptr(), 0o600) }, 0);
    let bait = dir.0.join("bait.json");
    std::fs::write(
        &bait,
        format!(r#"{{"pools": [{{"url": "stratum+tcp://edge-7.example.net:3333", "user": "{WALLET}"}}]}}"#),
    )
    .unwrap();
    let link = dir.0.join("pools.json");
    std::os::unix::fs::symlink(&bait, &link).unwrap();

    let cgroup = TestCgroup::new("hostile-config");
    let pool = assay_tests::Server::start("pool");
    let mut agent = Agent::start(&cgroup);
    // A busy loop whose command line names both as config files.
    let mut busy = Command::new("perl");
    busy.args([
        "-e",
        "my $t = time + 12; 1 while time < $t",
        "--",
        "--config",
    ])
    .arg(&fifo)
    .arg(&link)
    .stdout(Stdio::null());
    let mut busy = cgroup.spawn(busy);
    // Long enough for the CPU-time window to call it busy and for its
    // files to be looked at.
    std::thread::sleep(Duration::from_secs(8));

    let mut miner = assay_tests::emulator();
    miner
        .args(["stratum", "--variant", "st5", "--connect", &pool.addr])
        .stdout(Stdio::null());
    let mut miner = cgroup.spawn(miner);
    let pid = u64::from(miner.id());
    let finding = agent
        .wait_for_finding(Duration::from_secs(3), |f| finding_pid(f) == Some(pid))
        .unwrap_or_else(|| panic!("the miner was not reported: {}", agent.logs_text()));
    let decided = finding["decided_after_ms"].as_f64().unwrap_or(f64::MAX);
    assert!(decided < 1000.0, "decided after {decided} ms: {finding}");
    let _ = miner.kill();
    let _ = miner.wait();

    let busy_pid = u64::from(busy.id());
    let (status, took) = agent.stop_timed(libc::SIGTERM);
    assert!(status.success(), "agent exit: {status}");
    assert!(took < Duration::from_secs(1), "stopping took {took:?}");
    let _ = busy.kill();
    let _ = busy.wait();
    assert!(
        !agent
            .seen
            .iter()
            .any(|f| finding_pid(f) == Some(busy_pid) && command_line_evidence(f).is_some()),
        "a file behind a symlink was read: {:?}",
        agent.seen
    );
    let logs = agent.logs_text();
    let bye = logs
        .lines()
        .find(|l| l.contains("detached; bye"))
        .expect("summary line");
    let refused: u64 = bye
        .split_whitespace()
        .find_map(|w| w.strip_prefix("named_files_refused="))
        .and_then(|n| n.parse().ok())
        .expect("named_files_refused in the summary");
    assert_eq!(
        refused, 2,
        "the FIFO and the symlink were looked at and refused: {bye}"
    );
}
