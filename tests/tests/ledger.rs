#![allow(clippy::print_stderr, reason = "test output")]
//! End to end: the compute-use ledger and `assay report`.
//!
//! Two declared cgroups: one declared `ai-inference` runs a miner (a
//! stratum client and a busy thread in one session), one declared
//! `general` runs compression (gzip over random data). The agent keeps the
//! ledger in --state-dir and is restarted mid-run; `assay report` in JSON,
//! CSV and HTML shows the miner's workload as pow-mining and a mismatch,
//! the compressor as declared, and CPU core-seconds that agree with the
//! kernel's own accounting of each cgroup (cpu.stat) over the time an
//! agent ran: counted once, not twice, across the restart. Then: a bad
//! declarations file is refused with its line, and a corrupt ledger is
//! named by the report and set aside by the agent. The HTML report is
//! opened in headless Chromium and checked as rendered.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
    time::{Duration, Instant},
};

use assay_tests::{
    Agent, Server, TestCgroup, agent_binary, emulator_path, free_port, is_for, require_root,
};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(15);
/// How long each agent run watches the workloads.
const RUN: Duration = Duration::from_secs(20);

/// The cgroup's CPU time so far, by the kernel's own accounting.
fn cpu_seconds(cgroup: &TestCgroup) -> f64 {
    let stat = std::fs::read_to_string(cgroup.path.join("cpu.stat")).expect("cpu.stat");
    stat.lines()
        .find_map(|l| l.strip_prefix("usage_usec "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .expect("usage_usec")
        / 1e6
}

/// The cgroup as processes see it (`/assay-test-…/miner`).
fn relative(cgroup: &TestCgroup) -> String {
    let root = assay::kernel::cgroup::cgroup2_mount().unwrap();
    format!(
        "/{}",
        cgroup.path.strip_prefix(&root).unwrap().to_str().unwrap()
    )
}

fn report(state: &Path, declarations: &Path, format: &str) -> Output {
    Command::new(agent_binary())
        .args(["report", "--state-dir"])
        .arg(state)
        .arg("--declarations")
        .arg(declarations)
        .args(["--last", "2h", "--format", format])
        .output()
        .expect("run assay report")
}

fn stdout_of(output: &Output) -> String {
    assert!(
        output.status.success(),
        "assay report failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("assay-ledger-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// One agent run over the workloads: the cgroups' CPU time while it
/// watched (from ready to the stop signal).
fn watch(
    parent: &TestCgroup,
    state: &Path,
    cgroups: [&TestCgroup; 2],
    metrics: &str,
    during: impl FnOnce(&mut Agent),
) -> [f64; 2] {
    let mut agent = Agent::start_with(
        parent,
        &[
            "--state-dir",
            state.to_str().unwrap(),
            "--metrics-listen",
            metrics,
        ],
    );
    let start = cgroups.map(cpu_seconds);
    let until = Instant::now() + RUN;
    during(&mut agent);
    std::thread::sleep(until.saturating_duration_since(Instant::now()));
    let end = cgroups.map(cpu_seconds);
    agent.stop_with(libc::SIGTERM);
    [end[0] - start[0], end[1] - start[1]]
}

fn scrape(port: u16) -> String {
    use std::io::{Read as _, Write as _};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ =
        stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let mut body = String::new();
    let _ = stream.read_to_string(&mut body);
    body
}

/// The value of the sample `name{labels}` in a scrape (0 when absent).
fn metric(scraped: &str, sample: &str) -> f64 {
    scraped
        .lines()
        .find_map(|l| l.strip_prefix(sample)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// The JSON report against docs/ledger-report.schema.json.
fn validate(report: &str) {
    use std::io::Write as _;
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/ledger-report.schema.json");
    let script = "import json, sys, jsonschema\n\
        v = jsonschema.Draft202012Validator(json.load(open(sys.argv[1])))\n\
        for e in v.iter_errors(json.load(sys.stdin)):\n\
        \x20   print(f'{list(e.absolute_path)}: {e.message}'); sys.exit(1)\n\
        print('valid')\n";
    let mut child = Command::new(assay_tests::test_python())
        .args(["-c", script])
        .arg(&schema)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python with jsonschema (cargo xtask test installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(report.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.trim() == "valid",
        "the report does not validate: {text}"
    );
}

fn workload_in<'a>(report: &'a Value, cgroup: &str) -> &'a Value {
    let found: Vec<&Value> = report["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["subject"]["cgroup"] == cgroup)
        .collect();
    assert_eq!(found.len(), 1, "one workload in {cgroup}: {report:#}");
    found[0]
}

fn class<'a>(workload: &'a Value, name: &str) -> Option<&'a Value> {
    workload["classes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["class"] == name)
}

#[test]
fn declared_versus_observed_across_a_restart_in_every_format() {
    if !require_root() {
        return;
    }
    let parent = TestCgroup::new("ledger");
    let miner_cg = parent.nested("tenant-a");
    let zip_cg = parent.nested("tenant-b");
    let state = temp_dir("state");
    let declarations = state.join("declarations.toml");
    std::fs::write(
        &declarations,
        format!(
            "[[declare]]\nname = \"tenant-a inference\"\npurpose = \"ai-inference\"\n\
             registration = \"REG-A-1\"\ncgroup = \"{}\"\n\n\
             [[declare]]\nname = \"tenant-b batch\"\npurpose = \"general\"\ncgroup = \"{}\"\n",
            relative(&miner_cg),
            relative(&zip_cg)
        ),
    )
    .unwrap();
    let pool = Server::start("pool");

    let mut miner = None;
    let mut verdict_id = Value::Null;
    let first = watch(&parent, &state, [&miner_cg, &zip_cg], "off", |agent| {
        // The miner: a stratum client and one busy thread, one session.
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(format!(
            "'{}' stratum --variant st5 --connect {} --hold-ms 600000 & while :; do :; done",
            emulator_path().display(),
            pool.addr
        ));
        let child = miner_cg.spawn(cmd);
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg("while :; do head -c 4000000 /dev/urandom | gzip -6 > /dev/null; done");
        let zip = zip_cg.spawn(cmd);
        let finding = agent
            .wait_for_finding(WAIT, |f| {
                f["class"] == "pow-mining" && f["workload"]["sid"] == u64::from(child.id())
            })
            .expect("the miner's verdict");
        verdict_id = finding["id"].clone();
        assert!(
            !agent.seen.iter().any(is_for(zip.id())),
            "the compressor has no verdict"
        );
        miner = Some((child, zip));
    });
    // Between the runs nothing watches: what the workloads do now is in
    // neither run.
    std::thread::sleep(Duration::from_secs(3));
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut scraped = String::new();
    let second = watch(&parent, &state, [&miner_cg, &zip_cg], &listen, |_| {
        // The verdict came back from the state directory: this run's CPU
        // time goes to pow-mining from its first seconds.
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_secs(1));
            scraped = scrape(port);
            if metric(
                &scraped,
                "assay_workload_cpu_seconds_total{class=\"pow-mining\"}",
            ) > 1.0
            {
                break;
            }
        }
    });
    assert!(
        metric(
            &scraped,
            "assay_workload_cpu_seconds_total{class=\"pow-mining\"}"
        ) > 1.0,
        "{scraped}"
    );
    assert!(
        metric(
            &scraped,
            "assay_workload_cpu_seconds_total{class=\"general\"}"
        ) > 0.0
    );
    // Bounded label sets: one series per class, and three sources for
    // energy.
    let classes = assay::correlate::Class::ALL.len();
    let series = |name: &str| {
        scraped
            .lines()
            .filter(|l| l.starts_with(&format!("{name}{{")))
            .count()
    };
    assert_eq!(
        series("assay_workload_cpu_seconds_total"),
        classes,
        "{scraped}"
    );
    assert_eq!(
        series("assay_workload_energy_joules_total"),
        classes * 3,
        "{scraped}"
    );
    let (mut miner_child, mut zip_child) = miner.unwrap();
    let miner_sid = miner_child.id();

    let text = stdout_of(&report(&state, &declarations, "json"));
    validate(&text);
    let json: Value = serde_json::from_str(&text).expect("the JSON report");
    eprintln!("{json:#}");
    assert_eq!(json["schema"], "assay.ledger-report/1");
    let mined = workload_in(&json, &relative(&miner_cg));
    assert_eq!(mined["workload"], format!("session {miner_sid}"));
    assert_eq!(mined["declared"]["purpose"], "ai-inference");
    assert_eq!(mined["declared"]["registration"], "REG-A-1");
    assert_eq!(mined["mismatch"], true);
    let reason = mined["reasons"][0].as_str().unwrap();
    assert!(reason.contains("pow-mining"), "{reason}");
    assert!(
        mined["verdicts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["id"] == verdict_id && v["class"] == "pow-mining"),
        "{mined:#}"
    );
    let mining = class(mined, "pow-mining").expect("pow-mining compute");
    assert!(mining["share"].as_f64().unwrap() > 0.8, "{mined:#}");
    // The ledger's CPU time against the kernel's over both runs: counted
    // once (a double count across the restart would be ~1.5x), within the
    // sampler's error (start-up and the last second of each run).
    let kernel = first[0] + second[0];
    let ledger = mined["cpu_core_seconds"].as_f64().unwrap();
    eprintln!("miner: ledger {ledger:.1} core-s, kernel {kernel:.1} (runs {first:?} {second:?})");
    assert!(
        ledger >= kernel * 0.85 - 2.0 && ledger <= kernel * 1.1 + 4.0,
        "miner: ledger {ledger:.1} core-s, kernel {kernel:.1}"
    );
    // The seconds its threads ran (the kernel's count: on a shared host a
    // busy thread does not get a whole core), nearly all as pow-mining:
    // only what came before the verdict is general.
    assert!(
        mining["cpu_core_seconds"].as_f64().unwrap() >= kernel * 0.8 - 3.0,
        "{mined:#}"
    );

    let zipped = workload_in(&json, &relative(&zip_cg));
    assert_eq!(zipped["declared"]["purpose"], "general");
    assert_eq!(zipped["mismatch"], false, "{zipped:#}");
    assert_eq!(zipped["classes"].as_array().unwrap().len(), 1);
    assert!(class(zipped, "general").is_some());
    let kernel = first[1] + second[1];
    let ledger = zipped["cpu_core_seconds"].as_f64().unwrap();
    eprintln!("compressor: ledger {ledger:.1} core-s, kernel {kernel:.1}");
    assert!(
        ledger >= kernel * 0.8 - 2.0 && ledger <= kernel * 1.1 + 4.0,
        "compressor: ledger {ledger:.1} core-s, kernel {kernel:.1}"
    );
    assert!(json["totals"]["mismatched_share"].as_f64().unwrap() > 0.0);

    let csv = stdout_of(&report(&state, &declarations, "csv"));
    let miner_row = csv
        .lines()
        .find(|l| l.starts_with(&format!("session {miner_sid},")) && l.contains(",pow-mining,"))
        .unwrap_or_else(|| panic!("no pow-mining row for the miner:\n{csv}"));
    assert!(
        miner_row.contains("tenant-a inference,ai-inference,REG-A-1"),
        "{miner_row}"
    );
    assert!(miner_row.contains(",true,"), "{miner_row}");
    let zip_rows: Vec<&str> = csv
        .lines()
        .filter(|l| l.contains("tenant-b batch,general"))
        .collect();
    assert_eq!(zip_rows.len(), 1, "{csv}");
    assert!(zip_rows[0].contains(",general,") && zip_rows[0].contains(",false,"));

    let html = stdout_of(&report(&state, &declarations, "html"));
    assert!(html.contains("<svg class=\"chart\""));
    let marked = html
        .lines()
        .find(|l| l.contains(&format!("<td>session {miner_sid}</td>")))
        .expect("the miner's row");
    assert!(marked.starts_with("<tr class=\"mismatch\""), "{marked}");
    assert!(!html.contains("<script"));
    // As a browser shows it: headless Chromium's rendered page.
    let page = state.join("report.html");
    std::fs::write(&page, &html).unwrap();
    let rendered = assay_tests::render_in_chromium(&page);
    let zip_sid = zip_child.id();
    if let Err(err) = assay_tests::check_rendered_report(
        &rendered,
        "pow-mining",
        &[&format!("session {miner_sid}")],
        &[&format!("session {zip_sid}")],
    ) {
        panic!("the rendered report: {err}\n{}", rendered.dom);
    }

    let _ = miner_child.kill();
    let _ = zip_child.kill();
    let _ = miner_child.wait();
    let _ = zip_child.wait();
    let _ = std::fs::remove_dir_all(&state);
}

#[test]
fn bad_declarations_are_refused_with_their_line_and_a_corrupt_ledger_set_aside() {
    if !require_root() {
        return;
    }
    let parent = TestCgroup::new("ledger-bad");
    let state = temp_dir("bad");
    // A ledger with something in it: one short agent run.
    let mut agent = Agent::start_with(
        &parent,
        &[
            "--state-dir",
            state.to_str().unwrap(),
            "--metrics-listen",
            "off",
        ],
    );
    let mut busy = parent.spawn({
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "while :; do :; done"]);
        cmd
    });
    std::thread::sleep(Duration::from_secs(3));
    agent.stop_with(libc::SIGTERM);
    let _ = busy.kill();
    let _ = busy.wait();

    let bad = state.join("bad.toml");
    std::fs::write(
        &bad,
        "[[declare]]\nname = \"x\"\npurpose = \"crypto\"\ncgroup = \"/x\"\n",
    )
    .unwrap();
    let refused = report(&state, &bad, "json");
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("line 3") && stderr.contains("\"crypto\" is not one of"),
        "{stderr}"
    );

    // The ledger cut to a third of its size.
    let good = state.join("good.toml");
    std::fs::write(&good, "").unwrap();
    assert!(report(&state, &good, "json").status.success());
    let path = state.join("ledger.sqlite");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.truncate(bytes.len() / 3);
    std::fs::write(&path, &bytes).unwrap();
    let refused = report(&state, &good, "json");
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("corrupt"), "{stderr}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "a report leaves it as it was"
    );

    let mut agent = Agent::start_with(
        &parent,
        &[
            "--state-dir",
            state.to_str().unwrap(),
            "--metrics-listen",
            "off",
        ],
    );
    agent.stop_with(libc::SIGTERM);
    // Said before "ready": the ledger opens while the agent starts.
    let logs = agent.logs_text();
    assert!(
        logs.lines()
            .any(|l| l.contains("corrupt or truncated") && l.contains("set aside")),
        "not reported: {logs}"
    );
    let aside: Vec<PathBuf> = std::fs::read_dir(&state)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.starts_with("ledger.sqlite.corrupt-")
                && !name.ends_with("-wal")
                && !name.ends_with("-shm")
        })
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(std::fs::read(&aside[0]).unwrap(), bytes, "kept as it was");
    // A fresh ledger took its place.
    assert!(report(&state, &good, "json").status.success());
    let _ = std::fs::remove_dir_all(&state);
}
