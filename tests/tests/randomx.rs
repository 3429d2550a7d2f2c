#![allow(clippy::print_stderr, reason = "test output")]
//! End to end: a real RandomX miner (monerod mining in regtest) is confirmed
//! as pow-mining from its CPU fingerprint alone, whatever its binary is
//! called; CPU-heavy benign work and brief rounding-mode changes are not.

use std::{
    io::{Read as _, Write as _},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use assay_tests::{
    Agent, TempDir, TestCgroup, finding_pid, free_port, load_workload, require_root,
};
use serde_json::Value;

/// Any mainnet address: regtest accepts it (monero's functional tests use it).
const MINER_ADDRESS: &str = "42ey1afDFnn4886T7196doS9GPMzexD9gXpsZJDwVjeRVdFCSoHnv7KPbBeGpzJBzHRCAs9UxqeoyFQMYbqSWYTfJJQAWDm";

fn monerod_path() -> PathBuf {
    let path = PathBuf::from("/usr/bin/monerod");
    assert!(
        path.exists(),
        "monerod not installed: `cargo xtask test` installs Debian's monero package"
    );
    path
}

fn rpc(port: u16, path: &str, body: &str) -> Option<Value> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).ok()?;
    serde_json::from_str(reply.split_once("\r\n\r\n")?.1).ok()
}

/// A regtest monerod mining with one thread. The difficulty is fixed high
/// so that the miner spends its time hashing, as on a real network, rather
/// than assembling a block after every hash.
struct Miner {
    child: Child,
    rpc_port: u16,
    _data: TempDir,
}

impl Miner {
    fn start(cgroup: &TestCgroup, exe: &Path, via_shell: bool) -> Self {
        let data = TempDir::new("monerod");
        let rpc_port = free_port();
        let args = [
            "--regtest".to_owned(),
            "--offline".into(),
            "--fixed-difficulty".into(),
            "100000000".into(),
            "--no-igd".into(),
            "--non-interactive".into(),
            "--p2p-bind-ip".into(),
            "127.0.0.1".into(),
            "--p2p-bind-port".into(),
            free_port().to_string(),
            "--rpc-bind-ip".into(),
            "127.0.0.1".into(),
            "--rpc-bind-port".into(),
            rpc_port.to_string(),
            "--data-dir".into(),
            data.0.display().to_string(),
            "--log-level".into(),
            "0".into(),
        ];
        let mut cmd = if via_shell {
            // A renamed miner started from a script, as droppers do.
            let script = data.0.join("start.sh");
            std::fs::write(
                &script,
                format!("#!/bin/sh\nexec \"{}\" {}\n", exe.display(), args.join(" ")),
            )
            .unwrap();
            let mut cmd = Command::new("/bin/sh");
            cmd.arg(script);
            cmd
        } else {
            let mut cmd = Command::new(exe);
            cmd.args(&args);
            cmd
        };
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        let child = cgroup.spawn(cmd);
        let miner = Self {
            child,
            rpc_port,
            _data: data,
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        while rpc(rpc_port, "/get_info", "{}").is_none() {
            assert!(Instant::now() < deadline, "monerod RPC did not come up");
            std::thread::sleep(Duration::from_millis(250));
        }
        let started = rpc(
            rpc_port,
            "/start_mining",
            &format!(
                r#"{{"miner_address":"{MINER_ADDRESS}","threads_count":1,"do_background_mining":false,"ignore_battery":true}}"#
            ),
        );
        assert_eq!(
            started.as_ref().map(|v| &v["status"]),
            Some(&Value::from("OK")),
            "{started:?}"
        );
        miner
    }

    /// Waits until the miner reports a hash rate (RandomX dataset ready).
    fn wait_hashing(&self) -> Instant {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let speed = rpc(self.rpc_port, "/mining_status", "{}")
                .and_then(|v| v["speed"].as_u64())
                .unwrap_or(0);
            if speed > 0 {
                return Instant::now();
            }
            assert!(Instant::now() < deadline, "monerod never started hashing");
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Miner {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn randomx_evidence_for(pid: u32) -> impl Fn(&Value) -> bool {
    move |f: &Value| {
        finding_pid(f) == Some(u64::from(pid))
            && f["evidence"]
                .as_array()
                .is_some_and(|e| e.iter().any(|e| e["kind"] == "cpu.randomx_fpu"))
    }
}

fn miner_is_confirmed_by_its_cpu_fingerprint(renamed: bool) {
    let cgroup = TestCgroup::new("randomx");
    let mut agent = Agent::start(&cgroup);
    let copy = TempDir::new("renamed");
    let exe = if renamed {
        let exe = copy.0.join("kworker-sync");
        std::fs::copy(monerod_path(), &exe).unwrap();
        exe
    } else {
        monerod_path()
    };
    let miner = Miner::start(&cgroup, &exe, renamed);
    // Benign, CPU-heavy neighbours running through the same windows, at
    // the lowest priority so that on a 2-core machine they still leave the
    // miner its core (and get preempted a lot, which is what the sensor sees).
    let nice = |mut cmd: Command| {
        let mut niced = Command::new("nice");
        niced
            .args(["-n", "19"])
            .arg(cmd.get_program())
            .args(cmd.get_args());
        niced.stdout(Stdio::null());
        let _ = &mut cmd;
        cgroup.spawn(niced)
    };
    let mut numeric = nice(load_workload("cpu", 240));
    let mut rounding = nice(load_workload("float-rounding", 240));
    let mut interval = nice(load_workload("interval-rounding", 240));
    let mut compression = nice({
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", "head -c 4000000000 /dev/zero | gzip -9 > /dev/null"]);
        cmd
    });

    let hashing = miner.wait_hashing();
    let pid = miner.child.id();
    let confirmed = |f: &Value| randomx_evidence_for(pid)(f) && f["level"] == "confirmed";
    let finding = agent
        .wait_for_finding(Duration::from_secs(60), confirmed)
        .unwrap_or_else(|| {
            panic!(
                "no RandomX evidence for monerod pid {pid}: {:?}",
                agent.seen
            )
        });
    let after = hashing.elapsed();
    eprintln!(
        "RandomX evidence {:.1} s after the miner reported a hash rate",
        after.as_secs_f64()
    );
    assert_eq!(finding["class"], "pow-mining");
    assert_eq!(finding["process"]["exe"], exe.display().to_string());
    let evidence = finding["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "cpu.randomx_fpu")
        .unwrap();
    assert!(
        evidence["attributes"]["nondefault_rounding_share"]
            .as_f64()
            .unwrap()
            >= 0.1
    );
    assert!(evidence["attributes"]["cpu_cores"].as_f64().unwrap() >= 0.25);
    // Measured apart from /proc, by the kernel's cpu-clock samples.
    assert!(
        finding["cpu"]["process_cores"].as_f64().unwrap_or(0.0) >= 0.2,
        "{finding}"
    );
    let modes = &evidence["attributes"]["rounding_modes"];
    for mode in ["down", "up", "toward_zero"] {
        assert!(modes[mode].as_u64().unwrap() > 0, "{modes}");
    }
    assert!(
        after < Duration::from_secs(10),
        "took {after:?} from the first hash"
    );

    // The neighbours ran through the same windows: none of them is marked.
    for child in [&numeric, &rounding, &interval] {
        let pid = child.id();
        assert!(
            !agent.seen.iter().any(randomx_evidence_for(pid)),
            "benign pid {pid} marked as RandomX: {:?}",
            agent.seen
        );
    }
    assert!(
        agent
            .seen
            .iter()
            .all(|f| finding_pid(f) == Some(u64::from(miner.child.id()))),
        "a finding about something else than the miner: {:?}",
        agent.seen
    );
    for child in [&mut numeric, &mut rounding, &mut interval, &mut compression] {
        let _ = child.kill();
        let _ = child.wait();
    }
}

#[test]
fn monerod_mining_is_confirmed_by_its_cpu_fingerprint() {
    if require_root() {
        miner_is_confirmed_by_its_cpu_fingerprint(false);
    }
}

#[test]
fn a_renamed_miner_started_from_a_script_is_confirmed_the_same() {
    if require_root() {
        miner_is_confirmed_by_its_cpu_fingerprint(true);
    }
}
