//! Workload emulators for the end-to-end suites: a stratum pool, stratum
//! clients in each protocol variant, and benign look-alikes (JSON-RPC and
//! HTTP clients on long-lived connections, and the server they talk to).
//!
//! Also: a DNS stub resolver and query client (RFC 1035 wire format), and
//! a stratum V2 pool and client (plaintext SetupConnection, or the Noise NX
//! handshake sizes followed by small encrypted-looking records).
//!
//! Every message is written from the public specs (docs/signatures.md), with the
//! key orders and spacing real clients use, not from assay's classifier.
//! Servers listen on an ephemeral loopback port and print it on stdout as
//! `listening <port>`.

use std::{
    io::{self, BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpListener, TcpStream, UdpSocket},
    thread,
    time::Duration,
};

use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};

#[path = "../emu/framing.rs"]
mod framing;

#[derive(Debug, Parser)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Variant {
    /// Bitcoin stratum (cgminer).
    St1,
    /// EthereumStratum/1.0.0 (NiceHash).
    St3,
    /// EthProxy (Claymore/ethminer).
    St4,
    /// CryptoNote (XMRig).
    St5,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// A stratum pool: answers every variant's opening.
    Pool,
    /// A plain server for the benign clients: answers JSON-RPC lines and HTTP requests.
    Server,
    /// A miner's opening in one stratum variant, then shares and keepalives.
    Stratum {
        #[arg(long)]
        variant: Variant,
        #[arg(long)]
        connect: String,
        /// Wait for a line on stdin before connecting.
        #[arg(long)]
        wait_stdin: bool,
        /// After the session, wait for a line on stdin and log in again on
        /// a new connection (as a miner does after its pool drops it).
        #[arg(long)]
        again_on_stdin: bool,
        /// Keep the connection open this long after the opening (ms).
        #[arg(long, default_value_t = 1500)]
        hold_ms: u64,
        /// While holding, submit a share this often (ms; 0: never), as a
        /// miner that found one does.
        #[arg(long, default_value_t = 0)]
        submit_every_ms: u64,
        /// Mine on a second thread while the main thread (the thread-group
        /// leader) calls `pthread_exit`: the process lives on in it.
        #[arg(long)]
        leader_exits: bool,
        /// When the pool drops the session, do what a miner does: try the
        /// pool again, then a fallback (this address); each attempt's
        /// outcome is written to stdout (`connect ADDR: ok` or `connect
        /// ADDR: errno N`), so that a test sees the errno.
        #[arg(long)]
        after_drop: Option<String>,
    },
    /// A server that pushes pool-shaped lines at whoever connects and
    /// answers every line with a job-shaped result.
    HostilePool,
    /// A wallet speaking newline-delimited JSON-RPC to its daemon.
    Wallet {
        #[arg(long)]
        connect: String,
        #[arg(long, default_value_t = 500)]
        hold_ms: u64,
    },
    /// An Ethereum execution-API client on a line-delimited connection.
    EthRpc {
        #[arg(long)]
        connect: String,
        #[arg(long, default_value_t = 500)]
        hold_ms: u64,
    },
    /// An XMRig-style login hidden from a naive sampler.
    Evasive {
        #[arg(long)]
        connect: String,
        #[arg(long, value_enum)]
        evasion: framing::Evasion,
        #[arg(long, default_value_t = 1500)]
        hold_ms: u64,
    },
    /// A JSON-RPC API client (node RPC, generic login/subscribe APIs).
    JsonRpc {
        #[arg(long)]
        connect: String,
    },
    /// An HTTP/1.1 keep-alive client posting JSON.
    Http {
        #[arg(long)]
        connect: String,
    },
    /// Malformed stratum-looking lines: a JSON bomb, bad UTF-8, a truncated
    /// line, an oversized line.
    Garbage {
        #[arg(long)]
        connect: String,
    },
    /// Sends devp2p discovery (discv4) packets with intact keccak hashes to
    /// `count` distinct loopback peers: cheap chain-node signs, each its own
    /// record, as a process trying to flush its other evidence would.
    Discv4Flood {
        #[arg(long, default_value_t = 100)]
        count: u16,
    },
    /// A DNS stub resolver on UDP: answers every A question with 127.0.0.1.
    DnsStub {
        /// Address to bind; port 0 picks one (printed as `listening <port>`).
        #[arg(long, default_value = "127.0.0.1:0")]
        bind: SocketAddr,
    },
    /// A decoy that answers `answer` DNS queries like a stub, then asks a
    /// server for `names` itself (a miner trying to pass for a resolver).
    DnsDecoy {
        #[arg(long)]
        bind: SocketAddr,
        #[arg(long, default_value_t = 1)]
        answer: usize,
        #[arg(long)]
        then_server: SocketAddr,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Asks a DNS server for the A record of each name, one query each.
    DnsQuery {
        #[arg(long)]
        server: SocketAddr,
        /// Send with sendto on an unconnected socket (as many resolvers and
        /// discovery protocols do) instead of connect + send.
        #[arg(long)]
        unconnected: bool,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// A peer of an unrecognised encrypted p2p protocol: answers every
    /// random-looking message with another.
    BinaryPeer,
    /// A node of that protocol: keeps a connection to each peer and trades
    /// random-looking messages with all of them every 500 ms.
    BinaryNode {
        /// Peers, comma separated.
        #[arg(long, value_delimiter = ',')]
        connect: Vec<String>,
        #[arg(long, default_value_t = 10_000)]
        hold_ms: u64,
    },
    /// A stratum V2 pool: answers a plaintext SetupConnection with
    /// SetupConnection.Success, or a 64-byte Noise opening with 234 bytes,
    /// then echoes small records.
    Sv2Pool,
    /// Miner-hygiene system calls (they may fail: it is the attempt that
    /// the kernel sees), after keeping a core busy for a while, then holds.
    /// Prints `done` when they were made.
    Hygiene {
        #[arg(long, value_enum)]
        mode: HygieneMode,
        /// The MSR device to open (char 202:N; tests make one with mknod,
        /// as this kernel has no msr driver).
        #[arg(long, default_value = "/dev/cpu/0/msr")]
        msr_device: std::path::PathBuf,
        /// Busy-loop this long first (ms).
        #[arg(long, default_value_t = 0)]
        burn_ms: u64,
        /// Make the calls from a forked child (no exec) instead.
        #[arg(long)]
        fork: bool,
        #[arg(long, default_value_t = 3000)]
        hold_ms: u64,
    },
    /// A stratum V2 mining device.
    Sv2 {
        #[arg(long)]
        connect: String,
        /// `setup`: plaintext SetupConnection (trusted LAN style); `noise`:
        /// the encrypted opening's sizes, then small records.
        #[arg(long, value_enum)]
        mode: Sv2Mode,
        /// Keep the connection open this long after the opening (ms).
        #[arg(long, default_value_t = 1500)]
        hold_ms: u64,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum HygieneMode {
    /// What a tuned miner does: an MSR device opened read-write, the
    /// huge-page reservation written (with its current value: nothing
    /// changes), a mapping the size of a RandomX dataset held while busy.
    Miner,
    /// The honest neighbours: an MSR read (turbostat), the reservation
    /// read, a 2 GiB mapping (a database's buffers).
    Benign,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Sv2Mode {
    Setup,
    Noise,
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Cmd::Pool => serve(pool_session),
        Cmd::Server => serve(plain_session),
        Cmd::Stratum {
            variant,
            connect,
            wait_stdin,
            again_on_stdin,
            hold_ms,
            submit_every_ms,
            leader_exits,
            after_drop,
        } => {
            if leader_exits {
                std::thread::spawn(move || {
                    let hold = Duration::from_millis(hold_ms);
                    let every = Duration::from_millis(submit_every_ms);
                    let code = i32::from(stratum_client(variant, &connect, hold, every).is_err());
                    std::process::exit(code);
                });
                // The exit system call ends only the calling thread, as
                // pthread_exit does at its end (pthread_exit itself unwinds,
                // which Rust's main does not allow).
                // SAFETY: the other thread owns everything it uses and
                // ends the process.
                unsafe { libc::syscall(libc::SYS_exit, 0) };
                unreachable!("the leader thread exited");
            }
            if wait_stdin {
                let mut line = String::new();
                io::stdin().read_line(&mut line)?;
            }
            let session = || {
                stratum_client(
                    variant,
                    &connect,
                    Duration::from_millis(hold_ms),
                    Duration::from_millis(submit_every_ms),
                )
            };
            if let Some(fallback) = after_drop {
                if let Err(err) = session() {
                    println!("dropped: {err:#}");
                    for addr in [&connect, &fallback] {
                        match TcpStream::connect(addr) {
                            Ok(_) => println!("connect {addr}: ok"),
                            Err(e) => {
                                println!("connect {addr}: errno {}", e.raw_os_error().unwrap_or(0));
                            }
                        }
                    }
                }
                io::stdout().flush()?;
                // Stays until told (stdin closes), so that the test sees
                // its cgroup while the pool is still denied to it.
                let mut line = String::new();
                io::stdin().read_line(&mut line)?;
                return Ok(());
            }
            session()?;
            if again_on_stdin {
                let mut line = String::new();
                io::stdin().read_line(&mut line)?;
                session()?;
            }
            Ok(())
        }
        Cmd::JsonRpc { connect } => json_rpc_client(&connect),
        Cmd::HostilePool => serve(framing::hostile_session),
        Cmd::Wallet { connect, hold_ms } => {
            framing::wallet_client(&connect, Duration::from_millis(hold_ms))
        }
        Cmd::EthRpc { connect, hold_ms } => {
            framing::eth_rpc_client(&connect, Duration::from_millis(hold_ms))
        }
        Cmd::Evasive {
            connect,
            evasion,
            hold_ms,
        } => framing::evasive_miner(&connect, evasion, Duration::from_millis(hold_ms)),
        Cmd::Http { connect } => http_client(&connect),
        Cmd::Garbage { connect } => garbage_client(&connect),
        Cmd::Discv4Flood { count } => discv4_flood(count),
        Cmd::DnsStub { bind } => dns_stub(bind),
        Cmd::DnsDecoy {
            bind,
            answer,
            then_server,
            names,
        } => {
            let socket = UdpSocket::bind(bind)?;
            let mut buf = [0u8; 1500];
            let mut answered = 0;
            while answered < answer {
                let (n, from) = socket.recv_from(&mut buf)?;
                if let Some(reply) = dns_answer(&buf[..n]) {
                    socket.send_to(&reply, from)?;
                    answered += 1;
                }
            }
            dns_query(then_server, false, &names)
        }
        Cmd::DnsQuery {
            server,
            unconnected,
            names,
        } => dns_query(server, unconnected, &names),
        Cmd::Sv2Pool => serve(sv2_pool_session),
        Cmd::Hygiene {
            mode,
            msr_device,
            burn_ms,
            fork,
            hold_ms,
        } => hygiene(
            mode,
            &msr_device,
            Duration::from_millis(burn_ms),
            fork,
            Duration::from_millis(hold_ms),
        ),
        Cmd::BinaryPeer => serve(binary_peer_session),
        Cmd::BinaryNode { connect, hold_ms } => {
            binary_node(&connect, Duration::from_millis(hold_ms))
        }
        Cmd::Sv2 {
            connect,
            mode,
            hold_ms,
        } => sv2_client(&connect, mode, Duration::from_millis(hold_ms)),
    }
}

/// A standard query for `name`, type A, class IN, recursion desired
/// (RFC 1035 4.1).
fn dns_question(id: u16, name: &str) -> Vec<u8> {
    let mut packet = Vec::new();
    packet.extend_from_slice(&id.to_be_bytes());
    packet.extend_from_slice(&[0x01, 0x00]); // RD
    packet.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]); // 1 question
    for label in name.trim_end_matches('.').split('.') {
        packet.push(label.len() as u8);
        packet.extend_from_slice(label.as_bytes());
    }
    packet.push(0);
    packet.extend_from_slice(&[0, 1, 0, 1]); // A, IN
    packet
}

/// A discv4 packet (devp2p rlpx/discv4 spec): keccak256 of the rest, a
/// 65-byte signature (random here: the hash is what a receiver checks
/// first), the packet type (1: ping) and RLP data (random, 40–200 bytes).
fn discv4_packet() -> Result<Vec<u8>> {
    use sha3::{Digest as _, Keccak256};
    let extra = usize::from(random_bytes(1)?[0]) % 160 + 40;
    let mut rest = random_bytes(65)?;
    rest.push(1);
    rest.extend(random_bytes(extra)?);
    let mut packet = Keccak256::digest(&rest).to_vec();
    packet.extend(rest);
    Ok(packet)
}

fn discv4_flood(count: u16) -> Result<()> {
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    for i in 0..count {
        let peer = SocketAddr::from(([127, 0, 1, (i % 250) as u8 + 1], 30303 + i));
        socket.send_to(&discv4_packet()?, peer)?;
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

fn dns_stub(bind: SocketAddr) -> Result<()> {
    let socket = UdpSocket::bind(bind)?;
    println!("listening {}", socket.local_addr()?.port());
    io::stdout().flush()?;
    let mut buf = [0u8; 1500];
    loop {
        let (n, from) = socket.recv_from(&mut buf)?;
        if let Some(answer) = dns_answer(&buf[..n]) {
            socket.send_to(&answer, from)?;
        }
    }
}

/// The stub's answer to a query: every A question is 127.0.0.1; None for
/// what is not a query.
fn dns_answer(query: &[u8]) -> Option<Vec<u8>> {
    let n = query.len();
    // Header (12) + at least a root name and type/class.
    if n < 17 || query[2] & 0x80 != 0 {
        return None;
    }
    let mut end = 12;
    while end < n && query[end] != 0 {
        end += usize::from(query[end]) + 1;
    }
    let question_end = end + 5;
    if question_end > n {
        return None;
    }
    let qtype = u16::from_be_bytes([query[end + 1], query[end + 2]]);
    let mut answer = query[..question_end].to_vec();
    answer[2] = 0x81; // QR, RD
    answer[3] = 0x80; // RA, NOERROR
    answer[4..12].copy_from_slice(&[0, 1, 0, u8::from(qtype == 1), 0, 0, 0, 0]);
    if qtype == 1 {
        answer.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1]);
    }
    Some(answer)
}

fn dns_query(server: SocketAddr, unconnected: bool, names: &[String]) -> Result<()> {
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    socket.set_read_timeout(Some(Duration::from_secs(2)))?;
    if !unconnected {
        socket.connect(server)?;
    }
    let mut buf = [0u8; 1500];
    for (i, name) in names.iter().enumerate() {
        let query = dns_question(0x1000 + i as u16, name);
        if unconnected {
            socket.send_to(&query, server)?;
        } else {
            socket.send(&query)?;
        }
        let n = socket.recv(&mut buf).context("no DNS answer")?;
        println!("answered {name} ({n} bytes)");
    }
    Ok(())
}

fn random_bytes(n: usize) -> Result<Vec<u8>> {
    let mut bytes = vec![0u8; n];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes)
}

/// Extension type 0, message type, 24-bit little-endian length, payload
/// (sv2-spec 03-Protocol-Overview.md, framing).
fn sv2_frame(msg_type: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![0, 0, msg_type];
    frame.extend_from_slice(&(payload.len() as u32).to_le_bytes()[..3]);
    frame.extend_from_slice(payload);
    frame
}

fn str0_255(out: &mut Vec<u8>, text: &str) {
    out.push(text.len() as u8);
    out.extend_from_slice(text.as_bytes());
}

/// Length-prefixed random bytes, as an encrypted transport's records look.
fn binary_record() -> Result<Vec<u8>> {
    let mut record = vec![0x00, 0x60];
    record.extend_from_slice(&random_bytes(0x60)?);
    Ok(record)
}

fn binary_peer_session(mut stream: TcpStream) -> Result<()> {
    let mut buf = [0u8; 512];
    loop {
        if stream.read(&mut buf)? == 0 {
            return Ok(());
        }
        stream.write_all(&binary_record()?)?;
    }
}

fn binary_node(peers: &[String], hold: Duration) -> Result<()> {
    let mut streams = peers
        .iter()
        .map(|p| TcpStream::connect(p).with_context(|| format!("connect {p}")))
        .collect::<Result<Vec<_>>>()?;
    let deadline = std::time::Instant::now() + hold;
    let mut buf = [0u8; 512];
    while std::time::Instant::now() < deadline {
        for stream in &mut streams {
            stream.write_all(&binary_record()?)?;
            let _ = stream.read(&mut buf)?;
        }
        thread::sleep(Duration::from_millis(500));
    }
    Ok(())
}

fn sv2_pool_session(mut stream: TcpStream) -> Result<()> {
    let mut opening = [0u8; 6];
    stream.read_exact(&mut opening)?;
    if opening[..3] == [0, 0, 0] {
        // Plaintext SetupConnection: read its payload, answer Success
        // (used_version 2, flags 0).
        let len = u32::from_le_bytes([opening[3], opening[4], opening[5], 0]) as usize;
        let mut payload = vec![0u8; len];
        stream.read_exact(&mut payload)?;
        let mut success = 2u16.to_le_bytes().to_vec();
        success.extend_from_slice(&0u32.to_le_bytes());
        stream.write_all(&sv2_frame(0x01, &success))?;
    } else {
        // Noise NX act 1 is 64 bytes (an ElligatorSwift key); act 2 is 234.
        let mut rest = [0u8; 58];
        stream.read_exact(&mut rest)?;
        stream.write_all(&random_bytes(234)?)?;
    }
    let mut buf = [0u8; 512];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        stream.write_all(&random_bytes(22 + 48)?)?;
    }
}

fn sv2_client(addr: &str, mode: Sv2Mode, hold: Duration) -> Result<()> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    match mode {
        Sv2Mode::Setup => {
            // SetupConnection: protocol 0 (mining), min/max version 2,
            // flags (REQUIRES_STANDARD_JOBS), endpoint host and port, vendor,
            // hardware version, firmware, device id.
            let mut payload = vec![0u8];
            payload.extend_from_slice(&2u16.to_le_bytes());
            payload.extend_from_slice(&2u16.to_le_bytes());
            payload.extend_from_slice(&1u32.to_le_bytes());
            str0_255(&mut payload, "pool.example.net");
            payload.extend_from_slice(&34254u16.to_le_bytes());
            str0_255(&mut payload, "Bitmain");
            str0_255(&mut payload, "S19 Pro");
            str0_255(&mut payload, "braiins-os-2023-11");
            str0_255(&mut payload, "rig-7");
            stream.write_all(&sv2_frame(0x00, &payload))?;
            let mut reply = [0u8; 12];
            stream.read_exact(&mut reply)?;
        }
        Sv2Mode::Noise => {
            stream.write_all(&random_bytes(64)?)?;
            let mut reply = [0u8; 234];
            stream.read_exact(&mut reply)?;
        }
    }
    // Shares as small encrypted records: 22-byte header + ciphertext.
    let deadline = std::time::Instant::now() + hold;
    let mut buf = [0u8; 512];
    while std::time::Instant::now() < deadline {
        stream.write_all(&random_bytes(22 + 32)?)?;
        let _ = stream.read(&mut buf)?;
        thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

fn serve(session: fn(TcpStream) -> Result<()>) -> Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    println!("listening {}", listener.local_addr()?.port());
    io::stdout().flush()?;
    for stream in listener.incoming() {
        let stream = stream?;
        thread::spawn(move || {
            let _ = session(stream);
        });
    }
    Ok(())
}

fn send(stream: &mut TcpStream, line: &str) -> Result<()> {
    stream.write_all(line.as_bytes())?;
    stream.write_all(b"\n")?;
    Ok(())
}

/// Reads one reply line (pools answer every request).
fn expect_reply(reader: &mut BufReader<TcpStream>) -> Result<String> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        bail!("peer closed the connection");
    }
    Ok(line)
}

fn pool_session(stream: TcpStream) -> Result<()> {
    let mut out = stream.try_clone()?;
    for line in BufReader::new(stream).lines() {
        let line = line?;
        // Blank lines between messages are no requests.
        if line.trim().is_empty() {
            continue;
        }
        let id = line
            .split("\"id\"")
            .nth(1)
            .and_then(|rest| rest.trim_start_matches([':', ' ']).split([',', '}']).next())
            .unwrap_or("1")
            .trim()
            .to_owned();
        if line.contains("mining.subscribe") {
            send(
                &mut out,
                &format!(
                    r#"{{"id":{id},"result":[[["mining.set_difficulty","b4b6693b72a50c7116db18d6497cac52"],["mining.notify","ae6812eb4cd7735a302a8a9dd95cf71f"]],"08000002",4],"error":null}}"#
                ),
            )?;
            send(
                &mut out,
                r#"{"id":null,"method":"mining.set_difficulty","params":[2]}"#,
            )?;
            send(
                &mut out,
                r#"{"params":["bf","4d16b6f85af6e2198f44ae2a6de67f78487ae5611b77c6c0440b921e00000000","01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff20020862062f503253482f04b8864e5008","072f736c7573682f000000000100f2052a010000001976a914d23fcdf86f7e756a64a7a9688ef9903327048ed988ac00000000",[],"00000002","1c2ac4af","504e86b9",false],"id":null,"method":"mining.notify"}"#,
            )?;
        } else if line.contains("\"login\"") {
            send(
                &mut out,
                &format!(
                    r#"{{"id":{id},"jsonrpc":"2.0","error":null,"result":{{"id":"79b4b4d4","job":{{"blob":"0e0ed9e5fbb2068fc9a9ebd4d34d8b8c44fd4bd2b2f2f1c0c6a0e1f3a9c0b7b6a1f6d8e4c3b2a10000000008c4a7e1a0e6ff5c","job_id":"406425532","target":"b88d0600","algo":"rx/0","height":2800000,"seed_hash":"3e4a8f1c2b5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7"}},"extensions":["algo","nicehash","connect","tls","keepalive"],"status":"OK"}}}}"#
                ),
            )?;
        } else if line.contains("eth_getWork") {
            send(
                &mut out,
                &format!(
                    r#"{{"id":{id},"jsonrpc":"2.0","result":["0x1f3a9c0b7b6a1f6d8e4c3b2a1f3a9c0b7b6a1f6d8e4c3b2a1f3a9c0b7b6a1f6d","0x3e4a8f1c2b5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7","0x0000000112e0be826d694b2e62d01511f12a6061fbaec8bc02357593e70e52ba"]}}"#
                ),
            )?;
        } else {
            send(
                &mut out,
                &format!(r#"{{"id":{id},"jsonrpc":"2.0","result":true,"error":null}}"#),
            )?;
        }
    }
    Ok(())
}

fn plain_session(stream: TcpStream) -> Result<()> {
    let mut out = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    while reader.read_line(&mut line)? > 0 {
        if line.starts_with("POST ") || line.starts_with("GET ") {
            // Read headers and a Content-Length body, answer with JSON.
            let mut length = 0usize;
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header)? == 0 || header == "\r\n" {
                    break;
                }
                if let Some(v) = header.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body)?;
            let reply = r#"{"status":"ok","items":[1,2,3]}"#;
            write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{reply}",
                reply.len()
            )?;
        } else {
            send(
                &mut out,
                r#"{"jsonrpc":"2.0","id":1,"result":{"version":"1.2.3","height":100}}"#,
            )?;
        }
        line.clear();
    }
    Ok(())
}

fn stratum_client(
    variant: Variant,
    addr: &str,
    hold: Duration,
    submit_every: Duration,
) -> Result<()> {
    let mut stream = TcpStream::connect(addr).with_context(|| format!("connect {addr}"))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let opening: Vec<String> = match variant {
        // cgminer: spaces after separators, id first.
        Variant::St1 => vec![
            r#"{"id": 1, "method": "mining.subscribe", "params": ["cgminer/4.11.1"]}"#.into(),
            r#"{"id": 2, "method": "mining.authorize", "params": ["bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq.rig01", "x"]}"#.into(),
        ],
        Variant::St3 => vec![
            r#"{"id": 1, "method": "mining.subscribe", "params": ["ethminer/0.19.0", "EthereumStratum/1.0.0"]}"#.into(),
            r#"{"id": 2, "method": "mining.authorize", "params": ["0x5a0b54d5dc17e0aadc383d2db43b0a0d3e029c4c.rig02", "x"]}"#.into(),
        ],
        // Claymore style: "worker" first.
        Variant::St4 => vec![
            r#"{"worker": "rig03", "jsonrpc": "2.0", "params": ["0x5a0b54d5dc17e0aadc383d2db43b0a0d3e029c4c", "x"], "id": 1, "method": "eth_submitLogin"}"#.into(),
            r#"{"id":3,"jsonrpc":"2.0","method":"eth_getWork","params":[]}"#.into(),
        ],
        // XMRig: compact, jsonrpc before method, every supported algorithm listed.
        Variant::St5 => vec![format!(
            r#"{{"id":1,"jsonrpc":"2.0","method":"login","params":{{"login":"44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2wfn3RVGQBEP3A","pass":"x","agent":"XMRig/6.21.0 (Linux x86_64) libuv/1.44.2 gcc/12.2.0","rigid":"","algo":[{}]}}}}"#,
            [
                "cn/1", "cn/2", "cn/r", "cn/fast", "cn/half", "cn/xao", "cn/rto", "cn/rwz",
                "cn/zls", "cn/double", "cn/ccx", "cn-lite/1", "cn-heavy/0", "cn-heavy/tube",
                "cn-heavy/xhv", "cn-pico", "cn-pico/tlo", "cn/upx2", "rx/0", "rx/wow", "rx/arq",
                "rx/graft", "rx/sfx", "rx/keva", "argon2/chukwa", "argon2/chukwav2",
                "argon2/ninja", "ghostrider",
            ]
            .map(|a| format!("\"{a}\""))
            .join(",")
        )],
    };
    for line in &opening {
        send(&mut stream, line)?;
        let _ = expect_reply(&mut reader)?;
    }
    println!("opened");
    io::stdout().flush()?;
    if submit_every.is_zero() {
        thread::sleep(hold);
        return Ok(());
    }
    let deadline = std::time::Instant::now() + hold;
    let mut id = 10;
    while std::time::Instant::now() < deadline {
        thread::sleep(submit_every);
        id += 1;
        let nonce = format!("{:08x}", 0x1f00_0000u32 + id);
        let share = match variant {
            // XMRig: the job's id, a 4-byte nonce and the 32-byte result.
            Variant::St5 => format!(
                r#"{{"id":{id},"jsonrpc":"2.0","method":"submit","params":{{"id":"8e3c5d2a","job_id":"Z2FtZS0xNzM{id}","nonce":"{nonce}","result":"{}","algo":"rx/0"}}}}"#,
                "a1".repeat(32)
            ),
            _ => format!(
                r#"{{"id": {id}, "method": "mining.submit", "params": ["rig01", "6a{id}", "00000001", "6553f100", "{nonce}"]}}"#
            ),
        };
        send(&mut stream, &share)?;
        let _ = expect_reply(&mut reader)?;
    }
    Ok(())
}

fn json_rpc_client(addr: &str) -> Result<()> {
    let mut stream = TcpStream::connect(addr)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    for line in [
        r#"{"jsonrpc":"2.0","id":1,"method":"getinfo","params":[]}"#,
        r#"{"jsonrpc":"2.0","id":2,"method":"login","params":{"login":"alice","pass":"hunter2"}}"#,
        r#"{"jsonrpc":"2.0","id":3,"method":"subscribe","params":["ticker","BTC-USD"]}"#,
        r#"{"jsonrpc":"2.0","id":4,"method":"submit","params":{"form":"contact","text":"hello"}}"#,
        r#"{"jsonrpc":"2.0","id":5,"method":"getblockcount","params":[]}"#,
        r#"{"jsonrpc":"2.0","id":6,"method":"eth_blockNumber","params":[]}"#,
    ] {
        send(&mut stream, line)?;
        let _ = expect_reply(&mut reader)?;
        thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

fn http_client(addr: &str) -> Result<()> {
    let mut stream = TcpStream::connect(addr)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    for (i, body) in [
        r#"{"method":"status"}"#,
        r#"{"user":"bob","action":"login"}"#,
        r#"{"query":"jobs","limit":10}"#,
    ]
    .iter()
    .enumerate()
    {
        write!(
            stream,
            "POST /api/v1/rpc HTTP/1.1\r\nHost: example.internal\r\nContent-Type: application/json\r\nConnection: keep-alive\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )?;
        // Status line, headers, body.
        let mut length = 0usize;
        loop {
            let line = expect_reply(&mut reader)?;
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse()?;
            }
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        if i < 2 {
            thread::sleep(Duration::from_millis(50));
        }
    }
    Ok(())
}

fn garbage_client(addr: &str) -> Result<()> {
    let mut stream = TcpStream::connect(addr)?;
    let bomb = format!(
        r#"{{"id":1,"method":"mining.subscribe","params":{}{}}}"#,
        "[".repeat(1000),
        "]".repeat(1000)
    );
    stream.write_all(bomb.as_bytes())?;
    stream.write_all(b"\n")?;
    stream.write_all(
        b"{\"id\":2,\"method\":\"mining.authorize\",\"params\":[\"\xff\xfe\",\"x\"]}\n",
    )?;
    stream.write_all(b"{\"id\":3,\"method\":\"mining.subscribe\",\"params\":[\n")?;
    stream.flush()?;
    thread::sleep(Duration::from_millis(300));
    Ok(())
}

fn hygiene(
    mode: HygieneMode,
    msr_device: &std::path::Path,
    burn: Duration,
    fork: bool,
    hold: Duration,
) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    if fork {
        // SAFETY: single-threaded here; the child only makes system calls
        // and exits.
        let child = unsafe { libc::fork() };
        if child < 0 {
            anyhow::bail!("fork: {}", io::Error::last_os_error());
        }
        if child > 0 {
            println!("child {child}");
            io::stdout().flush()?;
            let mut status = 0;
            // SAFETY: waits for our own child.
            unsafe { libc::waitpid(child, &mut status, 0) };
            return Ok(());
        }
    }
    let write = matches!(mode, HygieneMode::Miner);
    // The device may have no driver behind it (ENXIO): the open is what
    // the kernel is asked about.
    let _ = std::fs::OpenOptions::new()
        .read(true)
        .write(write)
        .custom_flags(libc::O_NONBLOCK)
        .open(msr_device);
    let reservation = "/proc/sys/vm/nr_hugepages";
    let pages = std::fs::read_to_string(reservation)?;
    if write {
        std::fs::write(reservation, pages.trim())?;
    }
    let bytes: usize = match mode {
        HygieneMode::Miner => (2usize << 30) + 33_554_432, // 2080 MiB
        HygieneMode::Benign => 2usize << 30,
    };
    // SAFETY: an anonymous, never-touched mapping, unmapped before return.
    let region = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            bytes,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if region == libc::MAP_FAILED {
        anyhow::bail!("mmap: {}", io::Error::last_os_error());
    }
    let start = std::time::Instant::now();
    let mut x: u64 = 1;
    while start.elapsed() < burn {
        for _ in 0..100_000 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
    println!("done {}", std::process::id());
    io::stdout().flush()?;
    thread::sleep(hold);
    // SAFETY: the mapping made above.
    unsafe { libc::munmap(region, bytes) };
    Ok(())
}
