#![allow(clippy::print_stderr, reason = "test output")]
//! End to end: the work-loop detector. A CPU miner speaking a line
//! protocol no catalogue knows (tests/fixtures/work_loop.py), in plain TCP
//! and, renamed and with no config, over TLS, is reported as pow-mining by
//! its rhythm alone; honest processes with some of a miner's traits (a
//! subscriber's small pushes, a build farm's cache requests, volunteer
//! computing, a hashing benchmark, a database client under CPU load, a
//! training job reading its dataset, a transcoder streaming) are not, at
//! any level.
//!
//! The machines these suites run on are shared: the CPU-bound processes
//! whose saturation the judgement needs run at a raised priority so that
//! other load does not starve them (a starved look-alike would pass for
//! the wrong reason, a starved miner would be missed).

use std::{
    fs::File,
    io::{BufRead, BufReader},
    os::unix::process::CommandExt,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use assay_tests::{
    Agent, TempDir, TestCgroup, evidence_kinds, finding_pid, free_port, is_for, require_root,
};
use serde_json::Value;

/// The bar: a renamed TLS miner found within two minutes.
const TLS_MINER_WITHIN: Duration = Duration::from_secs(120);
/// The plain one: the issue saw nothing in 90 s; its share luck is the
/// run's.
const PLAIN_MINER_WITHIN: Duration = Duration::from_secs(150);
/// How long the look-alikes of the second case run: longer than the
/// judged span and its first judgement.
const LOOK_ALIKES_RUN: Duration = Duration::from_secs(95);

fn fixture() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/work_loop.py")
}

/// Runs differ: the seed picks the miner's words, hash and nonce width,
/// and the pool's share target. Printed, to replay a failure.
fn seed() -> u64 {
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    eprintln!("seed {seed}");
    seed
}

struct WorkServer {
    child: Child,
    plain: u16,
    tls: u16,
    _dir: TempDir,
}

impl WorkServer {
    fn start(target_s: f64) -> Self {
        let dir = TempDir::new("work-loop");
        let (cert, key) = assay_tests::self_signed_cert(&dir.0, "work");
        let mut child = Command::new("/usr/bin/python3")
            .arg(fixture())
            .arg("server")
            .arg(&cert)
            .arg(&key)
            .arg(format!("{target_s:.2}"))
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the work-loop server");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        let ports: Vec<u16> = line
            .trim()
            .strip_prefix("listening ")
            .map(|p| p.split(' ').filter_map(|n| n.parse().ok()).collect())
            .unwrap_or_default();
        assert_eq!(ports.len(), 2, "the server said {line:?}");
        Self {
            child,
            plain: ports[0],
            tls: ports[1],
            _dir: dir,
        }
    }
}

impl Drop for WorkServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client of the fixture: `program` (python, or a renamed copy reading
/// the script from stdin) at `nice`.
fn client(
    cgroup: &TestCgroup,
    program: &Path,
    mode: &str,
    port: u16,
    tls: bool,
    seed: u64,
    nice: i32,
) -> Child {
    let mut cmd = Command::new(program);
    if program.ends_with("python3") {
        cmd.arg(fixture());
    } else {
        cmd.arg("-")
            .stdin(File::open(fixture()).expect("the fixture"));
    }
    cmd.args([mode, "127.0.0.1", &port.to_string()])
        .arg(if tls { "1" } else { "0" })
        .arg(seed.to_string())
        .stdout(Stdio::null());
    // SAFETY: setpriority is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setpriority(libc::PRIO_PROCESS, 0, nice) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cgroup.spawn(cmd);
    // With autogroup scheduling, the session the child leads (TestCgroup
    // starts it with setsid) is scheduled as a group whose own nice value
    // is what counts against other sessions: the same priority there.
    // Kernels without autogroup have no such file.
    let _ = std::fs::write(format!("/proc/{}/autogroup", child.id()), nice.to_string());
    child
}

/// The agent with the detector's judgements in its log, to say on failure
/// what each watched flow looked like.
fn start_agent(cgroup: &TestCgroup) -> Agent {
    Agent::start_with(cgroup, &["--log", "info,assay::agent::work_loop=debug"])
}

fn judgements(agent: &mut Agent) -> String {
    let logs = agent.logs_text();
    let lines: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("work-loop") || l.contains("bye"))
        .collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

fn assert_no_pow_mining(agent: &Agent, pids: &[(&str, u32)]) {
    for finding in &agent.seen {
        for (what, pid) in pids {
            assert!(
                !(finding_pid(finding) == Some(u64::from(*pid))
                    && finding["class"] == "pow-mining"),
                "the {what} (pid {pid}) was reported as pow-mining: {finding}"
            );
        }
    }
}

fn assert_work_loop_finding(finding: &Value, port: u16) {
    assert_eq!(finding["class"], "pow-mining", "{finding}");
    assert_eq!(
        finding["level"], "observed",
        "weak alone at first: {finding}"
    );
    assert_eq!(evidence_kinds(finding), ["cpu.work_loop"], "{finding}");
    let network = &finding["network"];
    assert_eq!(network["protocol"], "work-loop", "{finding}");
    assert_eq!(network["remote"], format!("127.0.0.1:{port}"), "{finding}");
    assert!(network["rounds"].as_u64().unwrap() >= 6, "{finding}");
    assert!(network["cores"].as_f64().unwrap() >= 0.85, "{finding}");
    assert!(network["span_s"].as_f64().unwrap() >= 60.0, "{finding}");
}

#[test]
fn miners_of_an_unknown_protocol_are_found_by_their_work_loop_and_idle_or_short_lived_look_alikes_are_not()
 {
    if !require_root() {
        return;
    }
    let seed = seed();
    // A share every 3 to 7 s, as this run's pool sets it.
    let target_s = 3.0 + (seed % 400) as f64 / 100.0;
    let server = WorkServer::start(target_s);
    let dir = TempDir::new("renamed");
    // A renamed interpreter that reads its program from stdin: no script
    // path, no config, nothing on the command line.
    let renamed = dir.0.join("kdmflush");
    std::fs::copy(std::fs::canonicalize("/usr/bin/python3").unwrap(), &renamed)
        .expect("copy python");
    let python = Path::new("/usr/bin/python3");

    let cgroup = TestCgroup::new("work-loop");
    let mut agent = start_agent(&cgroup);
    // The look-alikes at the lowest priority: the miner, one at a time,
    // gets a core on a shared machine.
    let mut children = vec![
        (
            "TLS subscriber",
            client(&cgroup, python, "sub", server.tls, true, seed, 19),
        ),
        (
            "build farm job",
            client(&cgroup, python, "build", server.plain, false, seed, 19),
        ),
        (
            "volunteer computing job",
            client(&cgroup, python, "volunteer", server.tls, true, seed, 19),
        ),
        (
            "hashing benchmark",
            client(&cgroup, python, "stress", 0, false, seed, 19),
        ),
    ];
    let pids: Vec<(&str, u32)> = children.iter().map(|(w, c)| (*w, c.id())).collect();

    let started = Instant::now();
    let mut tls_miner = client(&cgroup, &renamed, "miner", server.tls, true, seed + 1, -15);
    let tls = agent
        .wait_for_finding(TLS_MINER_WITHIN, |f| {
            is_for(tls_miner.id())(f) && f["class"] == "pow-mining"
        })
        .unwrap_or_else(|| {
            panic!(
                "no pow-mining finding for the renamed TLS miner within 2 minutes:\n{}",
                judgements(&mut agent)
            )
        });
    eprintln!("TLS miner found after {:?}", started.elapsed());
    assert_work_loop_finding(&tls, server.tls);
    assert!(
        tls["process"]["exe"]
            .as_str()
            .unwrap()
            .ends_with("kdmflush")
    );
    let _ = tls_miner.kill();
    let _ = tls_miner.wait();

    let started = Instant::now();
    let mut plain_miner = client(&cgroup, python, "miner", server.plain, false, seed, -15);
    let plain = agent
        .wait_for_finding(PLAIN_MINER_WITHIN, |f| {
            is_for(plain_miner.id())(f) && f["class"] == "pow-mining"
        })
        .unwrap_or_else(|| {
            panic!(
                "no pow-mining finding for the plain miner:\n{}",
                judgements(&mut agent)
            )
        });
    eprintln!("plain miner found after {:?}", started.elapsed());
    assert_work_loop_finding(&plain, server.plain);
    let decided = plain["decided_after_ms"].as_f64().unwrap();
    assert!(decided >= 60_000.0, "decided before the span: {plain}");
    let _ = plain_miner.kill();
    let _ = plain_miner.wait();

    for (_, child) in &mut children {
        let _ = child.kill();
        let _ = child.wait();
    }
    agent.stop_with(libc::SIGTERM);
    assert_no_pow_mining(&agent, &pids);
    let watched = agent.summary_field("work_loop_flows_watched");
    assert!(watched >= 2, "{}", judgements(&mut agent));
}

#[test]
fn cpu_bound_clients_of_varied_or_thick_flows_are_not_miners() {
    if !require_root() {
        return;
    }
    let seed = seed();
    let server = WorkServer::start(5.0);
    let redis_port = free_port();
    let mut redis = Command::new("redis-server")
        .args(["--port", &redis_port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn()
        .expect("start redis-server");
    let python = Path::new("/usr/bin/python3");
    let cgroup = TestCgroup::new("work-loop-benign");
    let mut agent = start_agent(&cgroup);
    // Redis takes a moment to listen; the client connects once.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", redis_port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not listen");
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut children = vec![
        (
            "redis client",
            client(&cgroup, python, "db", redis_port, false, seed, -15),
        ),
        (
            "training job",
            client(&cgroup, python, "ml", server.plain, false, seed, -15),
        ),
        (
            "transcoder",
            client(&cgroup, python, "transcode", server.tls, true, seed, 0),
        ),
    ];
    let pids: Vec<(&str, u32)> = children.iter().map(|(w, c)| (*w, c.id())).collect();
    let _ = agent.wait_for_finding(LOOK_ALIKES_RUN, |f| f["class"] == "pow-mining");
    for (what, child) in &mut children {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the {what} stopped early"
        );
        let _ = child.kill();
        let _ = child.wait();
    }
    let _ = redis.kill();
    let _ = redis.wait();
    agent.stop_with(libc::SIGTERM);
    assert_no_pow_mining(&agent, &pids);
    // The redis client was busy enough to be watched and judged: the
    // rules, not starvation, kept it out.
    let watched = agent.summary_field("work_loop_flows_watched");
    assert!(watched >= 1, "{}", judgements(&mut agent));
}
