#![allow(clippy::print_stderr, reason = "test output")]
//! End to end: a real Prometheus server (Debian's) scrapes the agent's
//! metrics endpoint; after an emulated miner, it has the agent's sensors,
//! the finding, the open verdict by class and level, and the agent's CPU
//! and RSS.

use std::{
    io::{Read as _, Write as _},
    net::TcpStream,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use assay_tests::{
    Agent, Killed, Server, TempDir, TestCgroup, emulator, finding_pid, free_port, require_root,
};
use serde_json::Value;

fn http_get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).ok()?;
    Some(reply.split_once("\r\n\r\n")?.1.to_owned())
}

/// The value of an instant query, once Prometheus has it.
fn query(port: u16, promql: &str, deadline: Instant) -> Option<f64> {
    let path = format!(
        "/api/v1/query?query={}",
        promql
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    );
    while Instant::now() < deadline {
        if let Some(body) = http_get(port, &path)
            && let Ok(json) = serde_json::from_str::<Value>(&body)
            && let Some(value) = json["data"]["result"][0]["value"][1].as_str()
        {
            return value.parse().ok();
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    None
}

#[test]
fn prometheus_scrapes_sensors_findings_and_verdicts() {
    if !require_root() {
        return;
    }
    assert!(
        std::path::Path::new("/usr/bin/prometheus").exists(),
        "prometheus not installed: `cargo xtask test` installs Debian's package"
    );
    let metrics_port = free_port();
    let cgroup = TestCgroup::new("metrics");
    let pool = Server::start("pool");
    let metrics_addr = format!("127.0.0.1:{metrics_port}");
    let mut agent = Agent::start_with(&cgroup, &["--metrics-listen", &metrics_addr]);
    // The endpoint itself, before Prometheus: text format, 404 elsewhere.
    let body = http_get(metrics_port, "/metrics").expect("metrics endpoint");
    assert!(body.contains("# TYPE assay_sensor_up gauge"), "{body}");
    assert!(
        body.contains("assay_sensor_up{sensor=\"flows\"} 1"),
        "{body}"
    );
    assert_eq!(http_get(metrics_port, "/other").as_deref(), Some(""));

    let dir = TempDir::new("prometheus");
    let config = dir.0.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: assay\n    static_configs:\n      - targets: ['{metrics_addr}']\n"
        ),
    )
    .unwrap();
    let prom_port = free_port();
    let _prometheus = Killed(
        Command::new("/usr/bin/prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.0.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus"),
    );

    let mut cmd = emulator();
    cmd.args(["stratum", "--variant", "st5", "--connect", &pool.addr])
        .args(["--hold-ms", "20000"])
        .stdout(Stdio::null());
    let miner = Killed(cgroup.spawn(cmd));
    let pid = u64::from(miner.0.id());
    let finding = agent
        .wait_for_finding(Duration::from_secs(10), |f| finding_pid(f) == Some(pid))
        .expect("a finding for the miner");
    assert_eq!(finding["level"], "confirmed");

    let deadline = Instant::now() + Duration::from_secs(45);
    let up = query(prom_port, "up{job=\"assay\"}", deadline);
    assert_eq!(up, Some(1.0), "Prometheus does not scrape the agent");
    let open = query(
        prom_port,
        "assay_open_verdicts{class=\"pow-mining\",level=\"confirmed\"} >= 1",
        deadline,
    );
    assert!(open >= Some(1.0), "open verdict not scraped: {open:?}");
    let findings = query(prom_port, "assay_findings_total >= 1", deadline);
    assert!(findings >= Some(1.0), "{findings:?}");
    let rss = query(prom_port, "assay_resident_memory_bytes", deadline).unwrap_or(0.0);
    assert!(rss > 1e6, "{rss}");
    let sensors = query(prom_port, "sum(assay_sensor_up)", deadline).unwrap_or(0.0);
    assert!(sensors >= 3.0, "{sensors}");
}
