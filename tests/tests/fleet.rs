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
