#![allow(clippy::print_stderr, reason = "test output")]
//! End to end, the network catalogue: stratum V2 (plaintext and the Noise
//! opening's shape), pool names asked of DNS through the system resolver or
//! named in a TLS ClientHello, Monero nodes speaking Levin to each other,
//! and a miner whose pool connection predates the agent. Each is reported
//! with the pid that spoke; benign look-alikes on the same paths (ordinary
//! names, an HTTPS download) are not.
//!
//! Absence is checked by ordering, not by waiting: the benign client runs
//! first, a positive control after it, and once the control's finding is
//! out every earlier sample has been processed (one ring buffer, in order).

use std::{
    fs,
    io::{BufRead as _, BufReader, Read as _, Write as _},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use assay_tests::{
    Agent, Killed, Server, TempDir, TestCgroup, emulator, evidence_kinds, explains, finding_pid,
    free_port, is_for, listening, require_root,
};

const WAIT: Duration = Duration::from_secs(10);

fn wait_success(mut child: Child, what: &str) {
    let status = child.wait().unwrap();
    assert!(status.success(), "{what} failed: {status}");
}

fn assert_no_finding_for(agent: &Agent, pids: &[u32]) {
    for finding in &agent.seen {
        for pid in pids {
            assert_ne!(
                finding_pid(finding),
                Some(u64::from(*pid)),
                "benign pid {pid} was reported: {finding}"
            );
        }
    }
}

#[test]
fn stratum_v2_setup_is_confirmed_and_its_noise_opening_observed() {
    if !require_root() {
        return;
    }
    let cgroup = TestCgroup::new("sv2");
    let pool = Server::start("sv2-pool");
    let mut agent = Agent::start(&cgroup);

    let mut noise = emulator();
    noise.args(["sv2", "--mode", "noise", "--connect", &pool.addr]);
    let noise = cgroup.spawn(noise);
    let finding = agent
        .wait_for_finding(WAIT, is_for(noise.id()))
        .expect("no finding for the Noise opening");
    assert_eq!(finding["class"], "pow-mining", "{finding}");
    assert_eq!(
        finding["level"], "observed",
        "a handshake shape alone must not go further: {finding}"
    );
    assert_eq!(evidence_kinds(&finding), ["net.stratum_v2"]);
    assert_eq!(finding["network"]["protocol"], "stratum-v2-noise");

    let mut setup = emulator();
    setup.args(["sv2", "--mode", "setup", "--connect", &pool.addr]);
    let setup = cgroup.spawn(setup);
    let finding = agent
        .wait_for_finding(WAIT, is_for(setup.id()))
        .expect("no finding for the plaintext SetupConnection");
    assert_eq!(finding["class"], "pow-mining", "{finding}");
    assert_eq!(finding["level"], "confirmed", "{finding}");
    assert_eq!(finding["network"]["subprotocol"], "mining");
    assert_eq!(finding["network"]["agent"], "Bitmain");
    assert_eq!(finding["network"]["worker"], "rig-7");
    assert_eq!(finding["network"]["remote"], pool.addr.as_str());
    wait_success(noise, "the Noise client");
    wait_success(setup, "the SetupConnection client");
}

/// A network namespace whose /etc/resolv.conf (`ip netns exec` bind-mounts
/// /etc/netns/NAME/resolv.conf) points at a stub on its own loopback.
struct ResolverNamespace {
    name: String,
    stub: Child,
}

impl ResolverNamespace {
    fn new() -> Self {
        let name = format!("assay-dns-{}", std::process::id());
        let ip = |args: &[&str]| {
            let status = Command::new("ip").args(args).status().expect("run ip");
            assert!(status.success(), "ip {args:?}: {status}");
        };
        ip(&["netns", "add", &name]);
        ip(&["-n", &name, "link", "set", "lo", "up"]);
        let etc = PathBuf::from("/etc/netns").join(&name);
        fs::create_dir_all(&etc).unwrap();
        fs::write(
            etc.join("resolv.conf"),
            "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n",
        )
        .unwrap();
        let mut stub = Command::new("ip")
            .args(["netns", "exec", &name])
            .arg(emulator().get_program())
            .args(["dns-stub", "--bind", "127.0.0.1:53"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start DNS stub");
        let mut line = String::new();
        BufReader::new(stub.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "listening 53", "DNS stub did not start");
        Self { name, stub }
    }

    /// `cmd` run inside the namespace.
    fn exec(&self, program: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name])
            .arg(program)
            .args(args)
            .stdout(Stdio::null());
        cmd
    }
}

impl Drop for ResolverNamespace {
    fn drop(&mut self) {
        let _ = self.stub.kill();
        let _ = self.stub.wait();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
        let _ = fs::remove_dir_all(PathBuf::from("/etc/netns").join(&self.name));
    }
}

#[test]
fn pool_names_asked_of_dns_are_attributed_to_the_asking_process() {
    if !require_root() {
        return;
    }
    let cgroup = TestCgroup::new("dns");
    let ns = ResolverNamespace::new();
    let mut agent = Agent::start(&cgroup);
    let getent = Path::new("/usr/bin/getent");
    let emu = emulator().get_program().to_owned();

    // Benign first: the system resolver (glibc, connected UDP) and an
    // unconnected sender, asking for ordinary names.
    let benign_resolver = cgroup.spawn(ns.exec(getent, &["ahosts", "deb.debian.org"]));
    let benign_resolver_pid = benign_resolver.id();
    wait_success(benign_resolver, "getent for an ordinary name");
    let benign_sender = cgroup.spawn(ns.exec(
        Path::new(&emu),
        &[
            "dns-query",
            "--server",
            "127.0.0.1:53",
            "--unconnected",
            "crates.io",
            "www.kernel.org",
        ],
    ));
    let benign_sender_pid = benign_sender.id();
    wait_success(benign_sender, "unconnected query for ordinary names");

    // The system resolver asking for a pool: `ip netns exec` execs getent
    // in place, so the pid is the one spawned.
    let resolver = cgroup.spawn(ns.exec(getent, &["ahosts", "pool.supportxmr.com"]));
    let resolver_pid = resolver.id();
    wait_success(resolver, "getent for a pool name");
    let finding = agent
        .wait_for_finding(WAIT, is_for(resolver_pid))
        .expect("no finding for the pool lookup through glibc");
    assert_eq!(finding["class"], "pow-mining", "{finding}");
    assert_eq!(
        finding["level"], "suspected",
        "a name alone is not proof: {finding}"
    );
    assert_eq!(evidence_kinds(&finding)[0], "net.pool_name");
    assert_eq!(finding["network"]["query"], "pool.supportxmr.com");
    assert_eq!(finding["network"]["pool_domain"], "supportxmr.com");
    assert_eq!(finding["process"]["comm"], "getent");

    // An unconnected socket (sendto), the path discovery protocols and
    // some resolvers take.
    let sender = cgroup.spawn(ns.exec(
        Path::new(&emu),
        &[
            "dns-query",
            "--server",
            "127.0.0.1:53",
            "--unconnected",
            "xmr-eu1.nanopool.org",
        ],
    ));
    let sender_pid = sender.id();
    wait_success(sender, "unconnected query for a pool name");
    let finding = agent
        .wait_for_finding(WAIT, is_for(sender_pid))
        .expect("no finding for the unconnected pool lookup");
    assert_eq!(finding["network"]["pool_domain"], "nanopool.org");

    assert_no_finding_for(&agent, &[benign_resolver_pid, benign_sender_pid]);
}

/// Runs `cmd` (a DNS client) until it succeeds: the server it asks is
/// starting in the background.
fn retry_until_answered(cgroup: &TestCgroup, cmd: impl Fn() -> Command, what: &str) -> u32 {
    for _ in 0..20 {
        let mut child = cgroup.spawn(cmd());
        let pid = child.id();
        if child.wait().unwrap().success() {
            return pid;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!("{what}: never answered");
}

/// Resolver status is earned by answering others, not by receiving one
/// datagram: a miner that answers one query on a second socket still has
/// its own pool lookup reported; a real forwarding resolver (dnsmasq)
/// serving other workloads is not taken for the miner whose name it
/// forwards.
#[test]
fn one_query_received_makes_no_resolver_and_a_real_forwarder_is_not_the_miner() {
    if !require_root() {
        return;
    }
    let cgroup = TestCgroup::new("resolver");
    let ns = ResolverNamespace::new();
    let mut agent = Agent::start(&cgroup);
    let emu = emulator().get_program().to_owned();

    // The decoy answers one query from another workload, then looks up a
    // pool for itself.
    let decoy = cgroup.spawn(ns.exec(
        Path::new(&emu),
        &[
            "dns-decoy",
            "--bind",
            "127.0.0.3:5300",
            "--then-server",
            "127.0.0.1:53",
            "pool.supportxmr.com",
        ],
    ));
    let decoy_pid = decoy.id();
    retry_until_answered(
        &cgroup,
        || {
            ns.exec(
                Path::new(&emu),
                &["dns-query", "--server", "127.0.0.3:5300", "crates.io"],
            )
        },
        "the decoy",
    );
    wait_success(decoy, "the decoy's own lookup");
    let finding = agent
        .wait_for_finding(WAIT, is_for(decoy_pid))
        .expect("one received query exempted the decoy's pool lookup");
    assert_eq!(
        finding["network"]["pool_domain"], "supportxmr.com",
        "{finding}"
    );

    // dnsmasq, a real forwarder, serving two other workloads, then asked
    // for a pool by a third.
    let dnsmasq = ns.exec(
        Path::new("/usr/sbin/dnsmasq"),
        &[
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--server=127.0.0.1#53",
            "--listen-address=127.0.0.2",
            "--bind-interfaces",
            "--port=53",
            "--cache-size=0",
            "--user=root",
            "--pid-file=",
        ],
    );
    let mut dnsmasq = cgroup.spawn(dnsmasq);
    let dnsmasq_pid = dnsmasq.id();
    let ask = |name: &'static str| {
        let emu = emu.clone();
        let ns = &ns;
        move || {
            ns.exec(
                Path::new(&emu),
                &["dns-query", "--server", "127.0.0.2:53", name],
            )
        }
    };
    let benign = [
        retry_until_answered(&cgroup, ask("deb.debian.org"), "dnsmasq"),
        retry_until_answered(&cgroup, ask("www.kernel.org"), "dnsmasq"),
    ];
    let miner = retry_until_answered(&cgroup, ask("xmr-eu1.nanopool.org"), "dnsmasq");
    let finding = agent
        .wait_for_finding(WAIT, is_for(miner))
        .expect("no finding for the client asking dnsmasq for a pool");
    assert_eq!(
        finding["network"]["pool_domain"], "nanopool.org",
        "{finding}"
    );
    // Its verdict settles before the forwarder's absence is judged.
    std::thread::sleep(Duration::from_secs(1));
    let _ = dnsmasq.kill();
    let _ = dnsmasq.wait();
    let mut quiet = benign.to_vec();
    quiet.push(dnsmasq_pid);
    assert_no_finding_for(&agent, &quiet);
}

#[test]
fn tls_pools_are_found_by_name_or_by_their_job_beat_and_https_or_chat_are_not() {
    if !require_root() {
        return;
    }
    let dir = TempDir::new("tls");
    let (cert, key) = assay_tests::self_signed_cert(&dir.0, "pool");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/tls_pool.py");
    let mut server = Killed(
        Command::new("/usr/bin/python3")
            .arg(&fixture)
            .arg(&cert)
            .arg(&key)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the TLS pool fixture"),
    );
    let mut line = String::new();
    BufReader::new(server.0.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line
        .trim()
        .strip_prefix("listening ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("TLS fixture said {line:?}"));

    let cgroup = TestCgroup::new("tls");
    let mut agent = Agent::start(&cgroup);

    // Benign: a real HTTPS download (curl) of an ordinary name.
    let mut curl = Command::new("curl");
    curl.args(["-sSk", "-o", "/dev/null", "--resolve"])
        .arg(format!("deb.debian.org:{port}:127.0.0.1"))
        .arg(format!("https://deb.debian.org:{port}/debian/ls-lR.gz"));
    let curl = cgroup.spawn(curl);
    let curl_pid = curl.id();
    wait_success(curl, "curl");

    // Benign and long-lived: a chat session whose server pings every
    // second and whose client answers each ping. Long enough for the agent
    // to ask for more samples and see the beat.
    let chat_script = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/tls_chat.py");
    let mut chat = Command::new("/usr/bin/python3");
    chat.arg(&chat_script)
        .args([&port.to_string(), "chat.example.org", "14"]);
    let chat = cgroup.spawn(chat);
    let chat_pid = chat.id();
    wait_success(chat, "the TLS chat client");

    // A stratum+ssl client: OpenSSL's own client, SNI of a pool, a login
    // line on stdin, then a job push every second.
    let pool_client = |server_name: &str| {
        let mut client = Command::new("openssl");
        client
            .args(["s_client", "-quiet", "-servername", server_name])
            .args(["-connect", &format!("127.0.0.1:{port}")])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut client = cgroup.spawn(client);
        client
            .stdin
            .as_mut()
            .unwrap()
            .write_all(b"{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"login\",\"params\":{\"login\":\"x\",\"pass\":\"x\",\"agent\":\"XMRig/6.21.0\"}}\n")
            .unwrap();
        client
    };
    let mut named = pool_client("pool.supportxmr.com");
    let finding = agent
        .wait_for_finding(WAIT, is_for(named.id()))
        .expect("no finding for the TLS pool client");
    assert_eq!(finding["class"], "pow-mining", "{finding}");
    assert_eq!(finding["level"], "suspected", "{finding}");
    assert_eq!(finding["network"]["server_name"], "pool.supportxmr.com");
    assert_eq!(finding["network"]["source"], "tls_sni");
    assert!(
        finding["network"]["ja4"]
            .as_str()
            .is_some_and(|ja4| ja4.starts_with("t1")),
        "{finding}"
    );
    assert_eq!(
        finding["network"]["remote"],
        format!("127.0.0.1:{port}").as_str()
    );

    // The same pool under a name on no list, from a client that computes
    // between jobs: only its beat gives it away, and a beat alone is only
    // `observed`.
    let busy_script = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/tls_busy_client.py");
    let mut busy = Command::new("/usr/bin/python3");
    busy.arg(&busy_script)
        .args([&port.to_string(), "edge-7.example.net"])
        .arg(r#"{"id":1,"jsonrpc":"2.0","method":"login","params":{"login":"x","pass":"x","agent":"XMRig/6.21.0"}}"#)
        .stdout(Stdio::null());
    let mut unnamed = cgroup.spawn(busy);
    let finding = agent
        .wait_for_finding(Duration::from_secs(30), is_for(unnamed.id()))
        .expect("no finding for the busy pool client behind an unlisted name");
    assert_eq!(finding["class"], "pow-mining", "{finding}");
    assert_eq!(finding["level"], "observed", "{finding}");
    assert_eq!(evidence_kinds(&finding), ["net.job_cadence"]);
    let interval = finding["network"]["push_interval_s"].as_f64().unwrap();
    assert!((0.8..1.3).contains(&interval), "{finding}");
    // The same pushes to an idle client (an MQTT QoS-0 subscriber, a feed
    // reader): the beat is there, the work is not. Nothing.
    let mut idle = pool_client("feed.example.net");
    let idle_pid = idle.id();
    let _ = agent.wait_for_finding(Duration::from_secs(20), is_for(idle_pid));
    let _ = idle.kill();
    let _ = idle.wait();
    for client in [&mut named, &mut unnamed] {
        let _ = client.kill();
        let _ = client.wait();
    }
    drop(server);
    assert_no_finding_for(&agent, &[curl_pid, chat_pid, idle_pid]);
}

fn monerod_rpc_up(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let request = "GET /get_info HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    let mut reply = String::new();
    stream.write_all(request.as_bytes()).is_ok()
        && stream.read_to_string(&mut reply).is_ok()
        && reply.starts_with("HTTP/1.1 200")
}

/// A regtest monerod that talks only to the peer given.
fn start_monerod(cgroup: &TestCgroup, data: &Path, p2p: u16, rpc: u16, peer: u16) -> Child {
    let mut cmd = Command::new("/usr/bin/monerod");
    cmd.args(["--regtest", "--no-igd", "--non-interactive", "--no-zmq"])
        .args(["--disable-dns-checkpoints", "--check-updates", "disabled"])
        .args([
            "--p2p-bind-ip",
            "127.0.0.1",
            "--p2p-bind-port",
            &p2p.to_string(),
        ])
        .args([
            "--rpc-bind-ip",
            "127.0.0.1",
            "--rpc-bind-port",
            &rpc.to_string(),
        ])
        .args(["--add-exclusive-node", &format!("127.0.0.1:{peer}")])
        .arg("--data-dir")
        .arg(data)
        .args(["--log-level", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cgroup.spawn(cmd)
}

#[test]
fn two_monero_nodes_speaking_levin_are_both_chain_nodes() {
    if !require_root() {
        return;
    }
    assert!(
        Path::new("/usr/bin/monerod").exists(),
        "monerod not installed: `cargo xtask test` installs Debian's monero package"
    );
    let cgroup = TestCgroup::new("levin");
    let mut agent = Agent::start(&cgroup);
    let (data_a, data_b) = (TempDir::new("levin-a"), TempDir::new("levin-b"));
    let (p2p_a, p2p_b) = (free_port(), free_port());
    let (rpc_a, rpc_b) = (free_port(), free_port());
    let mut node_a = start_monerod(&cgroup, &data_a.0, p2p_a, rpc_a, p2p_b);
    let mut node_b = start_monerod(&cgroup, &data_b.0, p2p_b, rpc_b, p2p_a);
    let deadline = Instant::now() + Duration::from_secs(120);
    while !(monerod_rpc_up(rpc_a) && monerod_rpc_up(rpc_b)) {
        assert!(Instant::now() < deadline, "monerod RPC did not come up");
        std::thread::sleep(Duration::from_millis(250));
    }
    for node in [&node_a, &node_b] {
        let finding = agent
            .wait_for_finding(Duration::from_secs(60), |f| {
                is_for(node.id())(f) && f["class"] == "chain-node" && f["level"] == "confirmed"
            })
            .unwrap_or_else(|| panic!("no confirmed chain-node for monerod {}", node.id()));
        assert_eq!(finding["network"]["network"], "Monero p2p (Levin)");
        assert!(explains(&finding, &["Levin"]), "{finding}");
    }
    assert!(
        !agent.seen.iter().any(|f| f["class"] == "pow-mining"),
        "a node that does not mine is not a miner"
    );
    for node in [&mut node_a, &mut node_b] {
        let _ = node.kill();
        let _ = node.wait();
    }
}

#[test]
fn a_miner_connected_before_the_agent_started_is_found_from_its_shares() {
    if !require_root() {
        return;
    }
    let cgroup = TestCgroup::new("adopted");
    let pool = Server::start("pool");
    let mut miner = emulator();
    miner
        .args(["stratum", "--variant", "st5", "--connect", &pool.addr])
        .args(["--hold-ms", "30000", "--submit-every-ms", "300"])
        .stdout(Stdio::piped());
    let mut miner = cgroup.spawn(miner);
    let mut line = String::new();
    BufReader::new(miner.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "opened", "the miner did not log in");

    // Its login is history: only its shares are left to see.
    let mut agent = Agent::start(&cgroup);
    let finding = agent
        .wait_for_finding(WAIT, is_for(miner.id()))
        .expect("no finding for the miner whose flow predates the agent");
    assert_eq!(finding["class"], "pow-mining", "{finding}");
    assert_eq!(finding["level"], "confirmed");
    assert_eq!(finding["network"]["method"], "submit");
    assert_eq!(finding["network"]["role"], "client");
    assert_eq!(finding["network"]["remote"], pool.addr.as_str());
    let _ = miner.kill();
    let _ = miner.wait();
}

/// Waits until something accepts connections on `port` (a server started
/// outside the test cgroup, playing the remote end).
fn wait_listening(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not start listening");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn redis_and_grpc_over_h2c_are_not_reported_and_a_kaspa_grpc_opening_is_a_chain_node() {
    if !require_root() {
        return;
    }
    for tool in [
        "/usr/bin/redis-server",
        "/usr/bin/nghttp",
        "/usr/sbin/nghttpd",
    ] {
        assert!(
            Path::new(tool).exists(),
            "{tool} missing: `cargo xtask test` installs redis and nghttp2"
        );
    }
    let cgroup = TestCgroup::new("h2c");
    let dir = TempDir::new("h2c");
    let redis_port = free_port();
    let _redis = Killed(
        Command::new("/usr/bin/redis-server")
            .args(["--port", &redis_port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("start redis-server"),
    );
    let h2_port = free_port();
    let _h2 = Killed(
        Command::new("/usr/sbin/nghttpd")
            .arg("--no-tls")
            .arg("-d")
            .arg(&dir.0)
            .arg(h2_port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nghttpd"),
    );
    wait_listening(redis_port, "redis-server");
    wait_listening(h2_port, "nghttpd");
    let mut agent = Agent::start(&cgroup);

    // A chatty Redis client: thousands of small binary requests.
    let mut redis = Command::new("/usr/bin/redis-benchmark");
    redis
        .args([
            "-p",
            &redis_port.to_string(),
            "-n",
            "20000",
            "-c",
            "4",
            "-q",
        ])
        .args(["-t", "set,get,lpush"])
        .stdout(Stdio::null());
    let redis = cgroup.spawn(redis);
    let redis_pid = redis.id();
    wait_success(redis, "redis-benchmark");

    // A gRPC call over h2c (HTTP/2 prior knowledge), nghttp2's own client.
    let grpc_call = |path: &str| {
        let mut cmd = Command::new("/usr/bin/nghttp");
        cmd.args(["-H", "content-type: application/grpc", "-H", "te: trailers"])
            .arg(format!("http://127.0.0.1:{h2_port}{path}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cgroup.spawn(cmd)
    };
    let mut grpc = grpc_call("/helloworld.Greeter/SayHello");
    let grpc_pid = grpc.id();
    let _ = grpc.wait();

    // The same client opening Kaspa's p2p stream: its path travels
    // HPACK-Huffman-coded, as any real HTTP/2 stack sends it.
    let mut kaspa = grpc_call("/protowire.P2P/MessageStream");
    let finding = agent
        .wait_for_finding(WAIT, is_for(kaspa.id()))
        .expect("no finding for the Kaspa gRPC opening");
    assert_eq!(finding["class"], "chain-node", "{finding}");
    assert_eq!(finding["level"], "confirmed", "{finding}");
    assert!(
        finding["network"]["network"]
            .as_str()
            .is_some_and(|n| n.contains("Kaspa")),
        "{finding}"
    );
    let _ = kaspa.wait();
    assert_no_finding_for(&agent, &[redis_pid, grpc_pid]);
}

/// The python with py-libp2p that `cargo xtask test` prepares.
fn libp2p_python() -> Option<PathBuf> {
    let python = std::env::var_os("ASSAY_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-venv/bin/python")
        });
    if python.exists() {
        return Some(python);
    }
    let message = "py-libp2p missing: `cargo xtask test` installs it in target/test-venv";
    assert!(std::env::var_os("CI").is_none(), "{message}");
    eprintln!("skipping: {message}");
    None
}

/// A py-libp2p gossipsub node; returns it and its multiaddr.
fn gossip_node(
    python: &Path,
    seconds: u32,
    peers: &[String],
    cgroup: Option<&TestCgroup>,
) -> (Child, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/gossip_node.py");
    let mut cmd = Command::new(python);
    cmd.arg(script)
        .args(["assay-blocks", &seconds.to_string()])
        .args(peers)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = match cgroup {
        Some(cgroup) => cgroup.spawn(cmd),
        None => cmd.spawn().expect("start a gossip node"),
    };
    let addr = listening(&mut child, "gossip node");
    (child, addr)
}

#[test]
fn a_libp2p_gossip_node_with_many_peers_is_a_chain_node_and_a_single_libp2p_client_is_not() {
    if !require_root() {
        return;
    }
    let Some(python) = libp2p_python() else {
        return;
    };
    // Three peers outside the watched cgroup: the rest of the network.
    let peers: Vec<(Killed, String)> = (0..3)
        .map(|_| {
            let (child, addr) = gossip_node(&python, 60, &[], None);
            (Killed(child), addr)
        })
        .collect();
    let addrs: Vec<String> = peers.iter().map(|(_, a)| a.clone()).collect();
    let cgroup = TestCgroup::new("gossip");
    let mut agent = Agent::start(&cgroup);

    // One libp2p connection is any IPFS-style client: nothing.
    let (single, _) = gossip_node(&python, 3, &addrs[..1], Some(&cgroup));
    let single_pid = single.id();
    wait_success(single, "the single-peer libp2p client");

    // A node gossiping with all three: fan-out.
    let (node, _) = gossip_node(&python, 30, &addrs, Some(&cgroup));
    let mut node = Killed(node);
    let finding = agent
        .wait_for_finding(Duration::from_secs(30), is_for(node.0.id()))
        .expect("no finding for the gossiping libp2p node");
    assert_eq!(finding["class"], "chain-node", "{finding}");
    assert_eq!(
        finding["level"], "observed",
        "libp2p alone is not proof of a blockchain: {finding}"
    );
    assert_eq!(finding["network"]["network"], "libp2p multistream-select");
    assert!(
        finding["network"]["distinct_peers"].as_u64() >= Some(3),
        "{finding}"
    );
    let _ = node.0.kill();
    assert_no_finding_for(&agent, &[single_pid]);
}

#[test]
fn a_node_keeping_many_peers_of_an_unknown_binary_protocol_is_an_observed_chain_node() {
    if !require_root() {
        return;
    }
    let peers: Vec<Server> = (0..8).map(|_| Server::start("binary-peer")).collect();
    let addrs: Vec<String> = peers.iter().map(|p| p.addr.clone()).collect();
    let cgroup = TestCgroup::new("fanout");
    let mut agent = Agent::start(&cgroup);
    let node = |peers: &[String], hold_ms: &str| {
        let mut cmd = emulator();
        cmd.args([
            "binary-node",
            "--hold-ms",
            hold_ms,
            "--connect",
            &peers.join(","),
        ]);
        cgroup.spawn(cmd)
    };
    // A few long-lived binary connections: an app with a handful of
    // backends, not a gossip node.
    let few = node(&addrs[..3], "7000");
    let few_pid = few.id();
    wait_success(few, "the node with three peers");
    let mut many = node(&addrs, "12000");
    let finding = agent
        .wait_for_finding(Duration::from_secs(20), is_for(many.id()))
        .expect("no finding for the node with eight peers");
    assert_eq!(finding["class"], "chain-node", "{finding}");
    assert_eq!(finding["level"], "observed", "{finding}");
    assert_eq!(finding["network"]["distinct_peers"], 8);
    let _ = many.kill();
    let _ = many.wait();
    assert_no_finding_for(&agent, &[few_pid]);
}
