#![allow(clippy::print_stderr, reason = "test output")]
//! End to end with a real NATS server (Debian's nats-server, JetStream on
//! disk): findings made while the server is down at the agent's start, and
//! while it restarts mid-run, all arrive in the stream, each once (the
//! agent's buffer holds them, `Nats-Msg-Id` dedupes the retries).

use std::{
    collections::HashMap,
    process::Stdio,
    time::{Duration, Instant},
};

use assay_tests::{
    Agent, NatsServer, Server, TempDir, TestCgroup, emulator, finding_pid, free_port, require_root,
    stream_contents,
};
use serde_json::Value;

fn wait_for_uid(port: u16, uid: &str, timeout: Duration) -> HashMap<String, usize> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(contents) = stream_contents(port)
            && contents.contains_key(uid)
        {
            return contents;
        }
        assert!(Instant::now() < deadline, "{uid} never reached the stream");
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn findings_reach_jetstream_across_a_late_start_and_a_restart_each_once() {
    if !require_root() {
        return;
    }
    assert!(
        std::path::Path::new("/usr/sbin/nats-server").exists(),
        "nats-server not installed: `cargo xtask test` installs Debian's package"
    );
    let port = free_port();
    let store = TempDir::new("jetstream");
    let cgroup = TestCgroup::new("fleet");
    let pool = Server::start("pool");
    let url = format!("nats://127.0.0.1:{port}");
    let mut agent = Agent::start_with(&cgroup, &["--nats", &url, "--host", "fleet-test"]);
    let miner = || {
        let mut cmd = emulator();
        cmd.args(["stratum", "--variant", "st5", "--connect", &pool.addr])
            .args(["--hold-ms", "200"])
            .stdout(Stdio::null());
        cgroup.spawn(cmd)
    };
    let uid_of = |f: &Value| {
        format!(
            "{}:{}",
            f["id"].as_str().unwrap(),
            f["event"].as_str().unwrap()
        )
    };

    // The server is down when the first finding is made.
    let mut first = miner();
    let pid = u64::from(first.id());
    let a = agent
        .wait_for_finding(Duration::from_secs(10), |f| finding_pid(f) == Some(pid))
        .expect("a finding for the first miner");
    let _ = first.wait();
    let server = NatsServer::start(port, &store.0);
    wait_for_uid(port, &uid_of(&a), Duration::from_secs(30));

    // Restarted mid-run: the finding made meanwhile arrives after.
    server.stop();
    let mut second = miner();
    let pid = u64::from(second.id());
    let b = agent
        .wait_for_finding(Duration::from_secs(10), |f| finding_pid(f) == Some(pid))
        .expect("a finding for the second miner");
    let _ = second.wait();
    std::thread::sleep(Duration::from_secs(1));
    let _server = NatsServer::start(port, &store.0);
    let contents = wait_for_uid(port, &uid_of(&b), Duration::from_secs(30));

    // Everything the agent wrote before now is there, once.
    std::thread::sleep(Duration::from_secs(2));
    let contents = stream_contents(port).unwrap_or(contents);
    for finding in &agent.seen {
        let uid = uid_of(finding);
        assert_eq!(contents.get(&uid), Some(&1), "{uid}: {contents:?}");
    }
    assert!(
        contents.values().all(|&n| n == 1),
        "duplicates: {contents:?}"
    );
}

fn report_json(args: &[&str]) -> Value {
    let out = std::process::Command::new(assay_tests::agent_binary())
        .arg("report")
        .args(args)
        .args(["--last", "2h", "--format", "json"])
        .output()
        .expect("run assay report");
    assert!(
        out.status.success(),
        "assay report {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("a JSON report")
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * a.abs().max(b.abs()).max(1.0)
}

/// Two agents (two hosts, two state directories, a cgroup each) publish
/// their ledgers to one server; one is restarted mid-run, so a minute may
/// be published twice. `assay report --nats` holds both hosts, each host
/// as its own ledger says (nothing counted twice), and totals that are
/// their sum.
#[test]
fn the_fleet_report_holds_every_host_and_sums_them() {
    if !require_root() {
        return;
    }
    let port = free_port();
    let store = TempDir::new("fleet-ledger-js");
    let _server = NatsServer::start(port, &store.0);
    let url = format!("nats://127.0.0.1:{port}");
    let pool = Server::start("pool");
    let (cg_a, cg_b) = (TestCgroup::new("fleet-a"), TestCgroup::new("fleet-b"));
    let (state_a, state_b) = (TempDir::new("fleet-a"), TempDir::new("fleet-b"));
    let agent = |cgroup: &TestCgroup, state: &TempDir, host: &str| {
        Agent::start_with(
            cgroup,
            &[
                "--state-dir",
                state.0.to_str().unwrap(),
                "--host",
                host,
                "--nats",
                &url,
                "--metrics-listen",
                "off",
            ],
        )
    };
    let mut a = agent(&cg_a, &state_a, "node-a");
    let mut b = agent(&cg_b, &state_b, "node-b");
    // node-a: a miner (a stratum client and a busy thread, one session);
    // node-b: compression.
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c").arg(format!(
        "'{}' stratum --variant st5 --connect {} --hold-ms 600000 & while :; do :; done",
        assay_tests::emulator_path().display(),
        pool.addr
    ));
    let miner = assay_tests::Killed(cg_a.spawn(cmd));
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg("while :; do head -c 4000000 /dev/urandom | gzip -6 > /dev/null; done");
    let zip = assay_tests::Killed(cg_b.spawn(cmd));
    let (miner_sid, zip_sid) = (miner.0.id(), zip.0.id());
    a.wait_for_finding(Duration::from_secs(15), |f| {
        f["class"] == "pow-mining" && f["workload"]["sid"] == u64::from(miner_sid)
    })
    .expect("the miner's verdict on node-a");
    std::thread::sleep(Duration::from_secs(5));
    // node-a restarts: the minute it stopped in is written (and published)
    // by both runs.
    a.stop_with(libc::SIGTERM);
    let mut a = agent(&cg_a, &state_a, "node-a");
    std::thread::sleep(Duration::from_secs(10));
    a.stop_with(libc::SIGTERM);
    b.stop_with(libc::SIGTERM);
    drop((miner, zip));

    let fleet = report_json(&["--nats", &url]);
    eprintln!("{fleet:#}");
    let hosts = fleet["hosts"].as_array().expect("a hosts section");
    let names: Vec<&str> = hosts.iter().map(|h| h["host"].as_str().unwrap()).collect();
    assert_eq!(names, ["node-a", "node-b"]);
    let workload = |host: &str, name: &str| -> &Value {
        fleet["workloads"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["host"] == host && w["workload"] == name)
            .unwrap_or_else(|| panic!("{name} on {host}: {fleet:#}"))
    };
    let mined = workload("node-a", &format!("session {miner_sid}"));
    assert_eq!(mined["mismatch"], true, "a verdict and no declaration");
    assert!(
        mined["classes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["class"] == "pow-mining" && c["cpu_core_seconds"].as_f64().unwrap() > 1.0),
        "{mined:#}"
    );
    let zipped = workload("node-b", &format!("session {zip_sid}"));
    assert_eq!(zipped["mismatch"], false);
    assert!(zipped["cpu_core_seconds"].as_f64().unwrap() > 1.0);
    assert!(
        fleet["workloads"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| w["host"] == "node-a" || w["host"] == "node-b")
    );

    // Each host as its own ledger has it: the restart's minute counted
    // once.
    for (host, state) in [(&hosts[0], &state_a), (&hosts[1], &state_b)] {
        let local = report_json(&["--state-dir", state.0.to_str().unwrap()]);
        for field in ["cpu_core_seconds", "gpu_seconds", "energy_joules"] {
            let (f, l) = (
                host["totals"][field].as_f64().unwrap(),
                local["totals"][field].as_f64().unwrap(),
            );
            assert!(
                close(f, l),
                "{}: {field} {f} on the stream, {l} in its ledger",
                host["host"]
            );
        }
        assert_eq!(host["totals"]["workloads"], local["totals"]["workloads"]);
    }
    // The fleet is their sum.
    for field in ["cpu_core_seconds", "energy_joules"] {
        let sum: f64 = hosts
            .iter()
            .map(|h| h["totals"][field].as_f64().unwrap())
            .sum();
        let total = fleet["totals"][field].as_f64().unwrap();
        assert!(close(total, sum), "{field}: total {total}, hosts {sum}");
    }
    let count: u64 = hosts
        .iter()
        .map(|h| h["totals"]["workloads"].as_u64().unwrap())
        .sum();
    assert_eq!(fleet["totals"]["workloads"].as_u64().unwrap(), count);
    assert_validates(&fleet);
}

/// The fleet report against docs/ledger-report.schema.json.
fn assert_validates(report: &Value) {
    use std::io::Write as _;
    let schema =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/ledger-report.schema.json");
    let script = "import json, sys, jsonschema\n\
        v = jsonschema.Draft202012Validator(json.load(open(sys.argv[1])))\n\
        for e in v.iter_errors(json.load(sys.stdin)):\n\
        \x20   print(f'{list(e.absolute_path)}: {e.message}'); sys.exit(1)\n\
        print('valid')\n";
    let mut child = std::process::Command::new(assay_tests::test_python())
        .args(["-c", script])
        .arg(&schema)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python with jsonschema (cargo xtask test installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(report.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.trim() == "valid",
        "the fleet report does not validate: {text}"
    );
}
