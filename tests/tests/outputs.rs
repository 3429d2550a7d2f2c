#![allow(clippy::print_stderr, reason = "test output")]
//! End to end, every output at once: an emulated miner's findings arrive,
//! valid against docs/finding.schema.json, on stdout, in the findings file
//! and at the NATS JetStream consumer, once each and with the same ids; the
//! Prometheus endpoint counts them.

use std::{
    io::{Read as _, Write as _},
    net::TcpStream,
    process::Stdio,
    time::{Duration, Instant},
};

use assay_tests::{
    Agent, NatsServer, Server, TempDir, TestCgroup, emulator, free_port, require_root,
    stream_contents, stream_subjects, validate_findings,
};
use serde_json::Value;

fn metrics(port: u16) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("metrics endpoint");
    write!(stream, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut reply = String::new();
    let _ = stream.read_to_string(&mut reply);
    reply
}

#[test]
fn one_finding_arrives_everywhere_once_with_the_same_id() {
    if !require_root() {
        return;
    }
    let dir = TempDir::new("outputs");
    let file = dir.0.join("findings.jsonl");
    let nats_port = free_port();
    let _nats = NatsServer::start(nats_port, &dir.0.join("js"));
    let metrics_port = free_port();
    let cgroup = TestCgroup::new("outputs");
    let pool = Server::start("pool");
    let mut agent = Agent::start_with(
        &cgroup,
        &[
            "--format",
            "ocsf",
            "--output-file",
            file.to_str().unwrap(),
            "--nats",
            &format!("nats://127.0.0.1:{nats_port}"),
            "--metrics-listen",
            &format!("127.0.0.1:{metrics_port}"),
            "--nats-summary-every",
            "1",
            "--host",
            "outputs-test",
        ],
    );
    let mut cmd = emulator();
    cmd.args(["stratum", "--variant", "st5", "--connect", &pool.addr])
        .args(["--hold-ms", "2500"])
        .stdout(Stdio::null());
    let mut miner = cgroup.spawn(cmd);
    let pid = u64::from(miner.id());
    let of_miner = |f: &Value| f["unmapped"]["assay"]["process"]["pid"] == pid;
    agent
        .wait_for_finding(Duration::from_secs(10), |f| {
            of_miner(f) && f["activity_id"] == 1
        })
        .expect("an opened finding on stdout");
    let _ = miner.wait();
    agent
        .wait_for_finding(Duration::from_secs(10), |f| {
            of_miner(f) && f["activity_id"] == 3
        })
        .expect("a closed finding on stdout");
    let uid = |f: &Value| f["metadata"]["uid"].as_str().unwrap().to_owned();
    let on_stdout: Vec<String> = agent.seen.iter().map(uid).collect();

    // NATS: every line, once (the payload is the same line as stdout's).
    let deadline = Instant::now() + Duration::from_secs(20);
    let in_nats = loop {
        let contents = stream_contents(nats_port).unwrap_or_default();
        if on_stdout.iter().all(|u| {
            let native = u.clone();
            contents.keys().any(|k| *k == native)
        }) || Instant::now() > deadline
        {
            break contents;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    // While the verdict was open, workload summaries went out too.
    let subjects = stream_subjects(nats_port);
    assert!(
        subjects.iter().any(|s| s == "assay.workloads.outputs-test"),
        "no workload summary: {subjects:?}"
    );
    assert!(subjects.iter().any(|s| s == "assay.findings.outputs-test"));
    // The metric, read before the agent stops.
    let text = metrics(metrics_port);
    agent.stop_with(libc::SIGTERM);

    validate_findings(&agent.seen);
    let in_file: Vec<Value> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    validate_findings(&in_file);
    assert_eq!(in_file.iter().map(uid).collect::<Vec<_>>(), on_stdout);
    for u in &on_stdout {
        assert_eq!(in_nats.get(u), Some(&1), "{u} in NATS: {in_nats:?}");
    }
    let counted = text
        .lines()
        .find_map(|l| l.strip_prefix("assay_findings_total "))
        .and_then(|v| v.trim().parse::<f64>().ok());
    assert_eq!(counted, Some(on_stdout.len() as f64), "{text}");
}
