#![allow(clippy::print_stderr, reason = "test output")]
//! End to end, `assay pcap`: a capture that tshark records on loopback of
//! miners talking to a pool, a benign JSON-RPC client and a DNS lookup is
//! classified offline as the agent classifies live traffic: each miner's
//! flow as stratum v1 with its variant and login, the DNS flow with the name
//! asked, the benign flow as nothing.

use std::{
    env,
    io::{BufRead as _, BufReader},
    net::UdpSocket,
    path::Path,
    process::{Child, Command, Stdio},
    sync::mpsc::{self, Receiver},
    thread,
    time::{Duration, Instant},
};

use assay_tests::{Server, TempDir, agent_binary, emulator, require_root};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(20);

/// True when tshark is installed. Skipped locally without it; in CI (where
/// `CI` is set) a missing tshark fails the test.
fn tshark_available() -> bool {
    let found = Command::new("tshark")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if found {
        return true;
    }
    assert!(
        env::var_os("CI").is_none(),
        "tshark missing: run `cargo xtask test` which installs it"
    );
    eprintln!("skipped: tshark missing: run `cargo xtask test` which installs it");
    false
}

/// tshark capturing loopback into a pcapng file, printing a summary line
/// per packet as it writes it; killed on drop.
struct Tshark {
    child: Child,
    packets: Receiver<String>,
    stderr: Receiver<String>,
}

fn lines_of(stream: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, lines) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    lines
}

impl Tshark {
    /// Starts capturing and waits until tshark says it is.
    fn start(file: &Path, filter: &str) -> Self {
        let mut child = Command::new("tshark")
            .args(["-i", "lo", "-f", filter, "-l", "-P", "-w"])
            .arg(file)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tshark");
        let packets = lines_of(child.stdout.take().unwrap());
        let stderr = lines_of(child.stderr.take().unwrap());
        let tshark = Self {
            child,
            packets,
            stderr,
        };
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tshark.stderr.recv_timeout(left) {
                Ok(line) => {
                    eprintln!("tshark: {line}");
                    if line.contains("Capturing on") {
                        return tshark;
                    }
                }
                Err(_) => panic!("tshark did not start capturing on lo"),
            }
        }
    }

    /// Sends `probe` datagrams until tshark shows one captured: "Capturing
    /// on" comes before the capture really starts, and packets still in
    /// the kernel's ring at a stop may be lost. Packets are captured in
    /// order, so once the probe is in, so is every packet before it.
    fn sync(&self, probe: &UdpSocket, sink: &UdpSocket) {
        let from = probe.local_addr().unwrap().port().to_string();
        let to = sink.local_addr().unwrap().port().to_string();
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            probe
                .send_to(b"assay-pcap-probe", sink.local_addr().unwrap())
                .unwrap();
            let round = Instant::now() + Duration::from_millis(200);
            while let Ok(line) = self
                .packets
                .recv_timeout(round.saturating_duration_since(Instant::now()))
            {
                if line.contains(&from) && line.contains(&to) {
                    return;
                }
            }
        }
        panic!("tshark did not capture a probe from port {from} to {to}");
    }

    /// Stops the capture as Ctrl-C does (the file is complete after it).
    fn stop(mut self) {
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let deadline = Instant::now() + WAIT;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "tshark did not stop on SIGINT");
            thread::sleep(Duration::from_millis(50));
        };
        while let Ok(line) = self.stderr.recv_timeout(Duration::from_secs(1)) {
            eprintln!("tshark: {line}");
        }
        assert!(status.success(), "tshark: {status}");
    }
}

impl Drop for Tshark {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn port(addr: &str) -> &str {
    addr.rsplit(':').next().unwrap()
}

fn run_to_success(mut cmd: Command, what: &str) {
    let status = cmd
        .stdout(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("start {what}: {e}"));
    assert!(status.success(), "{what} failed: {status}");
}

#[test]
fn a_tshark_capture_of_miners_and_a_benign_client_is_classified_like_live_traffic() {
    if !require_root() || !tshark_available() {
        return;
    }
    let pool = Server::start("pool");
    let server = Server::start("server");
    let resolver = Server::start("dns-stub");
    let dir = TempDir::new("pcap");
    let file = dir.0.join("cap.pcapng");
    let sink = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (first, last) = (
        UdpSocket::bind("127.0.0.1:0").unwrap(),
        UdpSocket::bind("127.0.0.1:0").unwrap(),
    );
    let filter = format!(
        "tcp port {} or tcp port {} or udp port {} or udp port {}",
        port(&pool.addr),
        port(&server.addr),
        port(&resolver.addr),
        sink.local_addr().unwrap().port(),
    );
    let tshark = Tshark::start(&file, &filter);
    tshark.sync(&first, &sink);

    for variant in ["st1", "st5"] {
        let mut miner = emulator();
        miner.args([
            "stratum",
            "--variant",
            variant,
            "--connect",
            &pool.addr,
            "--hold-ms",
            "200",
        ]);
        run_to_success(miner, variant);
    }
    let mut benign = emulator();
    benign.args(["json-rpc", "--connect", &server.addr]);
    run_to_success(benign, "json-rpc client");
    let mut lookup = emulator();
    lookup.args([
        "dns-query",
        "--server",
        &resolver.addr,
        "pool.supportxmr.com",
    ]);
    run_to_success(lookup, "dns query");
    tshark.sync(&last, &sink);
    tshark.stop();

    let output = Command::new(agent_binary())
        .arg("pcap")
        .arg(&file)
        .arg("--json")
        .output()
        .expect("run assay pcap");
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("assay pcap stderr: {stderr}");
    assert!(output.status.success(), "assay pcap: {}", output.status);
    assert!(stderr.contains("packets read, 0 skipped"), "{stderr}");
    let flows: Vec<Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            eprintln!("flow: {line}");
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON: {line:?}: {e}"))
        })
        .collect();
    let to = |addr: &str| -> Vec<&Value> {
        flows
            .iter()
            .filter(|f| f["responder"]["addr"] == addr)
            .collect()
    };

    let miners = to(&pool.addr);
    assert_eq!(miners.len(), 2, "one flow per miner: {flows:?}");
    for (flow, variant, method, login) in [
        (
            miners[0],
            "ST1",
            "mining.subscribe",
            "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",
        ),
        (
            miners[1],
            "ST5",
            "login",
            "44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2wfn3RVGQBEP3A",
        ),
    ] {
        assert_eq!(flow["transport"], "tcp", "{flow}");
        assert_eq!(flow["handshake_seen"], true, "{flow}");
        assert_eq!(flow["protocol"], "stratum-v1", "{flow}");
        assert_eq!(flow["stratum"]["variant"], variant, "{flow}");
        assert_eq!(flow["stratum"]["methods"][0], method, "{flow}");
        assert_eq!(flow["stratum"]["decisive"], true, "{flow}");
        assert!(
            flow["stratum"]["login"]
                .as_str()
                .is_some_and(|l| l.starts_with(login)),
            "{flow}"
        );
        assert!(flow["initiator"]["sampled"].as_u64() > Some(0), "{flow}");
        assert!(flow["responder"]["bytes"].as_u64() > Some(0), "{flow}");
    }

    // The probes: datagrams of no known protocol.
    let sink_addr = sink.local_addr().unwrap().to_string();
    assert!(to(&sink_addr).iter().all(|f| f["protocol"].is_null()));

    let benign = to(&server.addr);
    assert_eq!(benign.len(), 1, "{flows:?}");
    assert!(benign[0]["protocol"].is_null(), "{}", benign[0]);
    assert!(benign[0].get("stratum").is_none(), "{}", benign[0]);

    let dns = to(&resolver.addr);
    assert_eq!(dns.len(), 1, "{flows:?}");
    assert_eq!(dns[0]["transport"], "udp");
    assert_eq!(dns[0]["protocol"], "dns");
    assert_eq!(dns[0]["dns"]["names"][0], "pool.supportxmr.com");
    assert_eq!(dns[0]["dns"]["addresses"][0], "127.0.0.1");

    // The same capture as a table, for a person.
    let table = Command::new(agent_binary())
        .arg("pcap")
        .arg(&file)
        .output()
        .expect("run assay pcap");
    assert!(table.status.success());
    let table = String::from_utf8(table.stdout).unwrap();
    eprintln!("{table}");
    assert!(table.starts_with("FLOW"), "{table}");
    assert_eq!(
        table.lines().filter(|l| l.contains("stratum-v1")).count(),
        2,
        "{table}"
    );
}

#[test]
fn a_file_that_is_not_a_capture_exits_2_naming_it() {
    let dir = TempDir::new("not-pcap");
    let file = dir.0.join("notes.txt");
    std::fs::write(&file, "these are notes, not packets\n").unwrap();
    let output = Command::new(agent_binary())
        .arg("pcap")
        .arg(&file)
        .output()
        .expect("run assay pcap");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&file.display().to_string()), "{stderr}");
    assert!(stderr.contains("not a pcap or pcapng file"), "{stderr}");
}
